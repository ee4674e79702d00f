"""VGG (Simonyan and Zisserman, "Very deep convolutional networks for large-scale image
recognition", ICLR 2015): configurations A, A-LRN, B, C, D (VGG16) and E (VGG19).

CONFIGS is the paper's Table 1, one string per block: '64' is a 3x3 conv with 64 maps
(stride 1, pad 1), '1x1-256' configuration C's 1x1 conv ('5x5-64' a 5x5 one, for the
shallower B of section 4.1), 'LRN' A-LRN's normalisation (the
AlexNet paper's constants, config.lrn, as the VGG paper used Krizhevsky's). Every block ends in
a 2x2/2 max-pool; then FC-4096, FC-4096, FC-num_classes, ReLU everywhere, dropout 0.5 after
the first two FC layers. Init: N(0, config.init_std = 0.01) weights and config.init_bias = 0
biases (the paper's for A), or Glorot-uniform with config.init = 'glorot'.

fc6 reads pool5 flattened in (h, w, c) order, so its weight matrix, reshaped, is a
(input_size/32)^2 conv kernel: build(..., dense=True) is the paper's dense evaluation - fc6 a
7x7 conv, fc7 and fc8 1x1 convs over the same variables, on an image of any size >= the
training size, class scores averaged over the spatial map.
"""
from dataclasses import dataclass
from functools import partial

from alexnet_tf1.nn import ops
from alexnet_tf1.tf_compat import tf, tf1
from alexnet_tf1.models import alexnet
from alexnet_tf1.models.spec import ModelSpec

CONFIGS = {
    #             block 1    2          3                  4                  5
    'vgg-a':     ('64',     '128',     '256 256',         '512 512',         '512 512'),
    'vgg-a-lrn': ('64 LRN', '128',     '256 256',         '512 512',         '512 512'),
    'vgg-b':     ('64 64',  '128 128', '256 256',         '512 512',         '512 512'),
    'vgg-c':     ('64 64',  '128 128', '256 256 1x1-256', '512 512 1x1-512', '512 512 1x1-512'),
    'vgg-d':     ('64 64',  '128 128', '256 256 256',     '512 512 512',     '512 512 512'),
    'vgg-e':     ('64 64',  '128 128', '256 256 256 256', '512 512 512 512', '512 512 512 512'),
    # section 4.1's shallow comparison: B "with each pair of 3x3 conv. layers replaced with a
    # single 5x5 conv. layer (which has the same receptive field)"
    'vgg-b-5x5': ('5x5-64', '5x5-128', '5x5-256',         '5x5-512',         '5x5-512'),
}
FC = (4096, 4096)

# The paper's Table 2, exact: trainable parameters with 1000 classes at 224x224.
PAPER_TOTAL = {'vgg-a': 132_863_336, 'vgg-a-lrn': 132_863_336, 'vgg-b': 133_047_848,
               'vgg-c': 133_638_952, 'vgg-d': 138_357_544, 'vgg-e': 143_667_240,
               'vgg-b-5x5': 134_503_528}    # no published count: derived in tests/test_vgg.py

# (source, set, top-1 error %, top-5 error %); single scale is S = Q = 256.
_SINGLE = {'vgg-a': (29.6, 10.4), 'vgg-a-lrn': (29.7, 10.5), 'vgg-b': (28.7, 9.9),
           'vgg-c': (28.1, 9.4), 'vgg-d': (27.0, 8.8), 'vgg-e': (27.3, 9.0)}
PUBLISHED = {name: (('paper, single scale S = Q = 256', 'ILSVRC-2012 val') + _SINGLE[name],)
             for name in _SINGLE}
PUBLISHED['vgg-b-5x5'] = (('paper, section 4.1: 7 points more top-1 error than B (centre crop)',
                           'ILSVRC-2012 val', None, None),)
PUBLISHED['vgg-d'] += (
    ('paper, scale jittering S in [256, 512]', 'ILSVRC-2012 val', 25.6, 8.1),
    ('paper, multi-crop + dense', 'ILSVRC-2012 val', 24.4, 7.2),
    ('torchvision vgg16', 'ILSVRC-2012 val', 28.41, 9.62))
PUBLISHED['vgg-e'] += (
    ('paper, scale jittering S in [256, 512]', 'ILSVRC-2012 val', 25.5, 8.0),
    ('paper, multi-crop + dense', 'ILSVRC-2012 val', 24.4, 7.1),
    ('torchvision vgg19', 'ILSVRC-2012 val', 27.62, 9.12))


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str           # 'conv', 'lrn', 'pool' or 'fc'
    units: int = 0      # maps / units; 0 = config.num_classes
    k: int = 3
    relu: bool = True
    dropout: bool = False


def table(variant):
    """CONFIGS[variant] as layers: conv1_1, ..., pool1, ..., fc6, fc7, fc8."""
    layers = []
    for b, block in enumerate(CONFIGS[variant], 1):
        i = 0
        for token in block.split():
            if token == 'LRN':
                layers.append(Layer(f'lrn{b}', 'lrn'))
                continue
            i += 1
            k, units = (int(token[0]), token[4:]) if '-' in token else (3, token)
            layers.append(Layer(f'conv{b}_{i}', 'conv', int(units), k))
        layers.append(Layer(f'pool{b}', 'pool'))
    layers += [Layer('fc6', 'fc', FC[0], dropout=True), Layer('fc7', 'fc', FC[1], dropout=True),
               Layer('fc8', 'fc', 0, relu=False)]
    return tuple(layers)


def build(images, config, devices, training=False, dense=False, variant=None):
    """images: float32 NHWC; Returns Net with logits [batch, num_classes].

    dense=False: images must be config.input_size square (224). dense=True: any size >= it;
    fc6/fc7/fc8 run as convolutions over the same variables and the class-score map is
    averaged. Variables are shared with an earlier build in the same graph (AUTO_REUSE), so a
    dense graph can sit beside the training one.
    """
    variant = variant or config.model
    if variant not in CONFIGS:
        raise ValueError(f"unknown VGG configuration {variant!r}; one of {', '.join(CONFIGS)}")
    window = config.input_size // 32         # pool5's size at the training input: fc6's window
    init = (tf1.glorot_uniform_initializer() if config.init == 'glorot'
            else tf1.random_normal_initializer(stddev=config.init_std))
    end, params = {}, {}
    x = images
    with tf1.device(devices[0]), alexnet.tower_scope(0, reuse=tf1.AUTO_REUSE):
        for layer in table(variant):
            if layer.kind == 'lrn':
                with tf.name_scope(layer.name):
                    x = ops.lrn(x, config.lrn)
            elif layer.kind == 'pool':
                with tf.name_scope(layer.name):
                    x = ops.max_pool(x, 2, 2)
            else:
                with tf1.variable_scope(layer.name):
                    x, params[(layer.name, 0)] = _weighted(layer, x, config, init, window, dense,
                                                          training)
            end[layer.name] = [x]
        logits = tf.identity(tf.reduce_mean(x, axis=[1, 2]) if dense else x,
                             name='dense_logits' if dense else 'logits')
    return alexnet.Net(logits, end, params, tuple(devices[:1]))


def _weighted(layer, x, config, init, window, dense, training):
    units = layer.units or config.num_classes
    if layer.kind == 'conv':
        p = ops.variables([layer.k, layer.k, int(x.shape[-1]), units], init, config.init_bias)
        return ops.conv(x, p, 1, 'SAME'), p
    if layer.name == 'fc6':
        c = int(x.shape[-1])
        if not dense and (x.shape[1] != window or x.shape[2] != window):
            raise ValueError(f'pool5 is {x.shape[1]}x{x.shape[2]}, fc6 reads {window}x{window} '
                             f'(input_size {config.input_size}): use dense=True for other sizes')
        p = ops.variables([window * window * c, units], init, config.init_bias)
        if dense:
            w = tf.reshape(p['w'], [window, window, c, units])    # rows were (h, w, c)
            y = ops.conv(x, {'w': w, 'b': p['b']}, 1, 'VALID', layer.relu)
        else:
            y = ops.fc(ops.flatten(x), p, layer.relu)
    else:
        n_in = int(x.shape[-1])
        p = ops.variables([n_in, units], init, config.init_bias)
        if dense:
            y = ops.conv(x, {'w': tf.reshape(p['w'], [1, 1, n_in, units]), 'b': p['b']}, 1,
                         'VALID', layer.relu)
        else:
            y = ops.fc(x, p, layer.relu)
    if layer.dropout:
        y = ops.dropout(y, config.dropout, training)
    return y, p


def dense_logits(images, config, devices):
    """The paper's dense evaluation (inference): class scores averaged over the map."""
    return build(images, config, devices, training=False, dense=True).logits


SPECS = tuple(ModelSpec(name, 1, table(name), partial(build, variant=name), PAPER_TOTAL[name],
                        published=PUBLISHED[name],
                        build_dense=partial(build, variant=name, dense=True))
              for name in CONFIGS)
