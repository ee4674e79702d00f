"""Raw logits from a trained model, for use from Python.

    clf = Classifier.from_checkpoint('checkpoints/alexnet')            # this project's runs
    clf = Classifier.from_weights('bvlc_alexnet.npy', 'alexnet')        # Caffe's AlexNet
    clf = Classifier.from_weights('bvlc_googlenet.npy', 'googlenet')    # or caffenet
    clf = Classifier.from_weights('vgg16_weights_tf_dim_ordering_tf_kernels.h5', 'vgg-d')
    z = clf.logits(batch)       # float32 [n, size, size, channels], already preprocessed

precision='bf16' runs the model in bfloat16 (a CPU with AVX512_BF16 or AMX); a checkpoint's
default is the precision its run trained in, published weights' fp32. The logits are fp32.

"Already preprocessed" means RGB 0-255 crops minus a mean: a checkpoint of this project takes
its data set's mean image; published weights take the mean that goes with them
(`imagenet.mean_rgb(model)`, or the mean their fine-tuned checkpoint recorded).
`clf.config.input_size` is the crop size, `clf.convention` says which mean in words.
"""
import sys

import numpy as np

from alexnet_tf1.training import checkpoints

from alexnet_tf1.weights import importers, imagenet


class Classifier:
    def __init__(self, g, sess, config, convention, precision='fp32'):
        self.g, self.sess, self.config, self.convention = g, sess, config, convention
        self.precision = precision

    @classmethod
    def from_checkpoint(cls, path, gpus='cpu', precision=None):
        """A checkpoint prefix or a train directory (its newest checkpoint)."""
        from alexnet_tf1.evaluation.evaluate import Restored
        r = Restored(checkpoints.resolve(checkpoint=path), gpus, precision=precision)
        mean = r.state.get('input_mean')
        return cls(r.g, r.sess, r.config, "RGB crops minus the training data's mean image"
                   if not mean else f"RGB crops minus {imagenet.describe_mean(mean)}",
                   r.precision)

    @classmethod
    def from_weights(cls, path, model, gpus='cpu', config=None, precision='fp32'):
        """A published file for `model` (importers.PUBLISHED): bvlc_alexnet.npy for 'alexnet',
        bvlc_reference_caffenet.npy for 'caffenet', bvlc_googlenet.npy for 'googlenet', a Keras
        VGG16 / VGG19 file for 'vgg-d' / 'vgg-e', a Keras InceptionV3 / InceptionResNetV2 file
        for 'inception-v3' / 'inception-resnet-v2' (RGB minus 127.5; the net scales by 1/127.5
        itself). The same loader as --init-from."""
        from alexnet_tf1.evaluation.evaluate import Restored
        r = Restored.from_weights(path, model, gpus=gpus, config=config, precision=precision)
        if r.left:
            print(importers.describe_left(r.left), file=sys.stderr)
        return cls(r.g, r.sess, r.config, f'RGB crops minus {imagenet.describe_mean(model)}',
                   r.precision)

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

