"""Published pretrained weights in and out, and --init-from.

Formats read (each reader checks every layer's name and shape against the model and raises
WeightFileError with one line naming the file and the layer):
- caffe_npy: bvlc_alexnet.npy / bvlc_reference_caffenet.npy (alexnet, caffenet) and
  bvlc_googlenet.npy (googlenet), caffe-tensorflow's converted layout;
- keras_vgg: Keras-applications VGG16 / VGG19 (vgg-d, vgg-e), Keras 1, 2 and 3 files;
- keras_inception: Keras-applications InceptionV3 / InceptionResNetV2 (inception-v3,
  inception-resnet-v2), Keras 2 and 3 files, which take RGB (x / 127.5 - 1) as they are;
- a VGG checkpoint or train dir of this project (VGG B-E from A, as the paper started them).

The Caffe and VGG files take Caffe's input, BGR. Every path here (load_into, Classifier.from_weights,
--init-from) reverses the first conv's input channels, so the loaded net takes this project's
one convention: RGB, 0-255, minus the mean that goes with the weights (weights/imagenet.py).
"""
import os

import numpy as np

from alexnet_tf1.weights import keras_vgg, keras_inception
from alexnet_tf1.weights.caffe_npy import (alexnet_towers, caffe_alexnet_config, caffe_alexnet_shapes,  # noqa: F401
                        export_caffe_alexnet_npy, export_caffe_googlenet_npy,
                        load_caffe_alexnet_npy, load_caffe_googlenet_npy)
from alexnet_tf1.config import CAFFE_LRN, ModelConfig
from alexnet_tf1.weights.keras_vgg import (export_keras_vgg_h5, keras_name, keras_vgg_shapes,  # noqa: F401
                       load_keras_vgg_h5)
from alexnet_tf1.tf_compat import tf
from alexnet_tf1.weights.files import WeightFileError, assign  # noqa: F401

# Caffe's ilsvrc_2012_mean.npy averaged per channel, BGR (Caffe's classification example
# prints 104.00698793, 116.66876762, 122.67891434); weights/imagenet.py reads the RGB copy shipped
# in weights/means.txt
CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)
# keras.applications.vgg16.preprocess_input ('caffe' mode): the VGG authors' mean, BGR
KERAS_VGG_MEAN_BGR = (103.939, 116.779, 123.68)

# the models a published file is read for, and what file each takes
PUBLISHED = {'alexnet': 'bvlc_alexnet.npy', 'caffenet': 'bvlc_reference_caffenet.npy',
             'googlenet': 'bvlc_googlenet.npy', 'vgg-d': "Keras' VGG16 .h5 / .weights.h5",
             'vgg-e': "Keras' VGG19 .h5 / .weights.h5",
             'inception-v3': "Keras' InceptionV3 .h5 / .weights.h5",
             'inception-resnet-v2': "Keras' InceptionResNetV2 .h5 / .weights.h5"}


def caffe_input(rgb, mean_bgr=CAFFE_MEAN_BGR):
    """float32 NHWC RGB in 0-255 -> Caffe's convention: BGR order, per-channel mean subtracted
    (what the files take before load_into reverses their first conv)."""
    return (np.asarray(rgb, np.float32)[..., ::-1] - np.asarray(mean_bgr, np.float32))


def published_config(config):
    """The configuration a model takes published weights with: Caffe's LRN, over all maps,
    for bvlc_alexnet and CaffeNet (one LRN layer after the group concat)."""
    if config.model in ('alexnet', 'caffenet'):
        return config.with_(lrn=CAFFE_LRN, lrn_span='all')
    return config


def published_arrays(path, config, net):
    """{(layer, tower): {key: array}} of a published file for `config`'s model, checked at the
    file's own class count, a BGR file's first conv's input channels reversed to take RGB."""
    full = config.with_(num_classes=None)
    if config.model in ('alexnet', 'caffenet'):
        return alexnet_towers(load_caffe_alexnet_npy(path, full, rgb_input=True), net)
    if config.model == 'googlenet':
        return load_caffe_googlenet_npy(path, rgb_input=True)
    if config.model in ('vgg-d', 'vgg-e'):
        return keras_vgg.vgg_params(load_keras_vgg_h5(path, config.model, full, rgb_input=True))
    if config.model in ('inception-v3', 'inception-resnet-v2'):
        return keras_inception.load_keras_inception(path, net, config.model)
    raise not_published(config.model)


def not_published(model):
    """The one-line error for a model no published file is read for."""
    return WeightFileError(f"no published weight format is read for {model}; --init-from takes: "
                           + ', '.join(f'{m} ({f})' for m, f in PUBLISHED.items()))


# Simonyan and Zisserman 2015, section 3.1: the deeper nets start from a trained A's "first four
# convolutional layers and the last three fully-connected layers" (by name: D's conv1_1,
# conv2_1, conv3_1, conv3_2 are A's; D's conv1_2, conv2_2, conv3_3, ... stay random).
VGG_FROM_A = ('conv1_1', 'conv2_1', 'conv3_1', 'conv3_2', 'fc6', 'fc7', 'fc8')


def is_checkpoint(path):
    """A train directory or a checkpoint prefix of this project, not a published weight file."""
    return os.path.isdir(path) or os.path.exists(path + '.index')


def load_checkpoint_layers(sess, net, config, path):
    """--init-from a VGG checkpoint of this project into a VGG `net`: VGG_FROM_A's layers, each
    only where the source has it with the same shapes (fc8 is left out for another class
    count). Returns (layers loaded, layers left at their initialisation)."""
    from alexnet_tf1.training import checkpoints
    prefix = checkpoints.resolve(checkpoint=path)
    state = checkpoints.read_state(prefix)
    if not (config.model.startswith('vgg') and state['model'].startswith('vgg')):
        raise WeightFileError(f"--init-from a checkpoint: VGG from VGG (the paper's way to "
                              f"start B-E from A); {prefix} is {state['model']}, the model "
                              f"{config.model}")
    source = ModelConfig.from_dict(state['config'])
    if source.input_size != config.input_size:
        raise WeightFileError(f'{prefix} was trained at {source.input_size} px, the model takes '
                              f'{config.input_size}: fc6 would not fit')
    reader = tf.train.load_checkpoint(prefix)
    have = reader.get_variable_to_shape_map()
    arrays, loaded = {}, []
    for (name, tower), p in net.params.items():
        if name not in VGG_FROM_A or not all(
                have.get(v.op.name) == list(v.shape) for v in p.values()):
            continue
        arrays[(name, tower)] = {k: reader.get_tensor(v.op.name) for k, v in p.items()}
        loaded.append(name)
    assign(sess, {k: net.params[k] for k in arrays}, arrays)
    return loaded, [name for name, _ in net.params if name not in loaded]


def load_into(sess, net, config, path):
    """--init-from: a published file (published_arrays) or a VGG checkpoint of this project
    into `net`. A layer the file lacks, or holds with other shapes (the classifier, for other
    than 1000 classes), keeps its initialisation. Returns one note per such layer."""
    if is_checkpoint(path):
        return [f'{name} (not one of the layers the paper takes from A)'
                for name in load_checkpoint_layers(sess, net, config, path)[1]]
    arrays = published_arrays(path, config, net)
    take, left = {}, {}
    for key, p in net.params.items():
        a = arrays.get(key)
        if a is None:
            left.setdefault(key[0], 'not in the file')
            continue
        bad = [k for k, v in p.items() if k not in a or tuple(a[k].shape) != tuple(v.shape)]
        if bad:
            k = bad[0]
            left.setdefault(key[0], f'the file has {tuple(a[k].shape) if k in a else None}, '
                                    f'the model {tuple(p[k].shape)}')
        else:
            take[key] = a
    assign(sess, {k: net.params[k] for k in take}, take)
    return [f'{name} ({why})' for name, why in left.items()]


def describe_left(notes):
    """The one line every command prints when layers keep their initialisation."""
    return 'note: left at their initialisation, not loaded: ' + '; '.join(notes)
