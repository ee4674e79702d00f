"""Raw logits from a trained model, for use from Python.

    clf = Classifier.from_checkpoint('checkpoints/alexnet')            # this project's runs
    clf = Classifier.from_weights('bvlc_alexnet.npy', 'alexnet')        # Caffe's AlexNet
    clf = Classifier.from_weights('vgg16_weights_tf_dim_ordering_tf_kernels.h5', 'vgg-d')
    z = clf.logits(batch)       # float32 [n, size, size, channels], already preprocessed

"Already preprocessed" means the model's own input convention: a checkpoint of this project
takes crops minus its data set's mean image (RGB); the published weights take Caffe's BGR
minus the mean (importers.caffe_input does it from RGB 0-255). `clf.config.input_size` is the
crop size.
"""
import numpy as np

from . import checkpoints, devices, graph, importers, models
from .config import defaults_for
from .tf_compat import session, tf1


class Classifier:
    def __init__(self, g, sess, config, convention):
        self.g, self.sess, self.config, self.convention = g, sess, config, convention

    @classmethod
    def from_checkpoint(cls, path, gpus='cpu'):
        """A checkpoint prefix or a train directory (its newest checkpoint)."""
        from .evaluate import Restored
        r = Restored(checkpoints.resolve(checkpoint=path), gpus)
        return cls(r.g, r.sess, r.config, "crops minus the training data's mean image (RGB)")

    @classmethod
    def from_weights(cls, path, model, gpus='cpu', config=None):
        """bvlc_alexnet.npy for 'alexnet'; a Keras VGG16 / VGG19 .h5 for 'vgg-d' / 'vgg-e'."""
        if model == 'alexnet':
            config = config or importers.caffe_alexnet_config()
            weights = importers.load_caffe_alexnet_npy(path, config)
            load, mean = importers.assign_alexnet, importers.CAFFE_MEAN_BGR
        elif model.startswith('vgg-'):
            config = config or defaults_for(model)
            weights = importers.load_keras_vgg_h5(path, model, config)
            load, mean = importers.assign_vgg, importers.KERAS_VGG_MEAN_BGR
        else:
            raise ValueError(f'no published weight format for {model!r}; use alexnet, vgg-d or '
                             f'vgg-e')
        placement = devices.resolve(gpus, towers=models.get(model).TOWERS)
        g = graph.build(config, placement, train=False)
        sess = session(g.graph, placement.session_config())
        with g.graph.as_default():
            sess.run(tf1.global_variables_initializer())
        load(sess, g.net, weights)
        return cls(g, sess, config, f'BGR minus the per-channel mean {mean} (caffe_input)')

    def logits(self, batch, batch_size=64):
        """Raw logits [n, num_classes] of a float32 NHWC batch, run in slices of batch_size."""
        batch = np.asarray(batch, np.float32)
        if len(batch) == 0:
            return np.zeros((0, self.config.num_classes), np.float32)
        run = lambda x: self.sess.run(self.g.logits, {self.g.images: x})
        return np.concatenate([run(batch[i:i + batch_size])
                               for i in range(0, len(batch), batch_size)])

    def close(self):
        self.sess.close()
