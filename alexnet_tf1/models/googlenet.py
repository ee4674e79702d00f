"""GoogLeNet, Inception v1 (Szegedy et al., "Going deeper with convolutions", CVPR 2015).

TABLE is the paper's Table 1: the stem as layers, then one row per Inception module with its
six numbers (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj); a module concatenates
its four branches. Convolutions and max-pools use 'SAME' padding as the reference
implementations do, so the maps are 112-56-28-14-7 at 224; the final 7x7 average pool is
VALID. ReLU everywhere, dropout config.dropout = 0.4 before the linear classifier.

The two auxiliary heads (on 4a and 4d: avgpool 5x5/3 -> 1x1 conv 128 -> FC 1024 -> dropout
0.7 -> linear) exist only in a training graph (`training` not False); they are returned as
Net.aux_logits = [(0.3, head 1), (0.3, head 2)], which the loss adds. A graph built with
training=False has neither the heads nor their variables, so a checkpoint trained with them
restores into it.

Init (the paper gives none): bvlc_googlenet's - Caffe 'xavier', uniform +-sqrt(3 / fan_in),
biases config.init_bias = 0.2, classifier biases 0; config.init = 'glorot' for Glorot-uniform.
LRN: config.lrn, bvlc_googlenet's (local_size 5, alpha 1e-4 / 5, k = 1) by default.
"""
from dataclasses import dataclass

from alexnet_tf1.nn import ops
from alexnet_tf1.tf_compat import tf, tf1
from alexnet_tf1.models import alexnet
from alexnet_tf1.models.spec import ModelSpec


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str               # 'conv', 'maxpool', 'avgpool', 'lrn', 'dropout', 'fc'
    units: int = 0          # maps / units; 0 = config.num_classes
    k: int = 1
    stride: int = 1
    padding: object = 'SAME'    # 'SAME', 'VALID' or pixels on every side
    relu: bool = True


@dataclass(frozen=True)
class Inception:
    name: str
    b1x1: int
    b3x3_reduce: int
    b3x3: int
    b5x5_reduce: int
    b5x5: int
    pool_proj: int
    aux: str = ''           # name of an auxiliary head reading this module's output

    @property
    def out(self):
        return self.b1x1 + self.b3x3 + self.b5x5 + self.pool_proj


TABLE = (
    #     name            kind       units k  stride padding
    Layer('conv1',        'conv',    64,   7, 2,      3),
    Layer('pool1',        'maxpool', 0,    3, 2),
    Layer('lrn1',         'lrn'),
    Layer('conv2_reduce', 'conv',    64,   1),
    Layer('conv2',        'conv',    192,  3),
    Layer('lrn2',         'lrn'),
    Layer('pool2',        'maxpool', 0,    3, 2),
    #         name            1x1  3x3r  3x3  5x5r  5x5  pool proj
    Inception('inception_3a',  64,  96,  128,  16,   32,  32),
    Inception('inception_3b', 128, 128,  192,  32,   96,  64),
    Layer('pool3',        'maxpool', 0,    3, 2),
    Inception('inception_4a', 192,  96,  208,  16,   48,  64, aux='aux1'),
    Inception('inception_4b', 160, 112,  224,  24,   64,  64),
    Inception('inception_4c', 128, 128,  256,  24,   64,  64),
    Inception('inception_4d', 112, 144,  288,  32,   64,  64, aux='aux2'),
    Inception('inception_4e', 256, 160,  320,  32,  128, 128),
    Layer('pool4',        'maxpool', 0,    3, 2),
    Inception('inception_5a', 256, 160,  320,  32,  128, 128),
    Inception('inception_5b', 384, 192,  384,  48,  128, 128),
    Layer('pool5',        'avgpool', 0,    7, 1, 'VALID'),
    Layer('dropout',      'dropout'),
    Layer('classifier',   'fc',      0,    relu=False),
)

AUX_WEIGHT = 0.3
AUX_DROPOUT = 0.7
AUX = (
    Layer('pool',       'avgpool', 0,    5, 3, 'VALID'),
    Layer('conv',       'conv',    128,  1),
    Layer('fc',         'fc',      1024),
    Layer('dropout',    'dropout'),
    Layer('classifier', 'fc',      0,    relu=False),
)

PAPER_TOTAL = 6_998_552                 # docs/reference.md section 4, without the auxiliary heads
PAPER_TOTAL_WITH_AUX = 13_378_280
PUBLISHED = (
    ('paper, 1 model, 1 crop', 'ILSVRC-2014 val', None, 10.07),
    ('paper, 1 model, 10 crops', 'ILSVRC-2014 val', None, 9.15),
    ('paper, 1 model, 144 crops', 'ILSVRC-2014 val', None, 7.89),
    ('paper, 7 models, 144 crops', 'ILSVRC-2014 test', None, 6.67),
)


@dataclass
class Net(alexnet.Net):
    aux_logits: tuple = ()          # ((0.3, head-1 logits), (0.3, head-2 logits)) when training


def build(images, config, devices, training=False):
    """images: float32 [batch, 224, 224, 3]. Aux heads only when `training` is not False."""
    if config.init == 'glorot':
        init = tf1.glorot_uniform_initializer()
    else:   # Caffe's xavier: uniform with variance 1 / fan_in
        init = tf1.variance_scaling_initializer(1.0, 'fan_in', 'uniform')
    end, params, aux = {}, {}, []
    x = images
    with tf1.device(devices[0]), alexnet.tower_scope(0):
        for row in TABLE:
            with tf1.variable_scope(row.name):
                if isinstance(row, Inception):
                    x, params[(row.name, 0)] = _inception(row, x, config, init)
                else:
                    x, p = _layer(row, x, config, init, config.dropout, training)
                    if p:
                        params[(row.name, 0)] = p
            end[row.name] = [x]
            if isinstance(row, Inception) and row.aux and training is not False:
                aux.append((AUX_WEIGHT, _aux_head(row.aux, x, config, init, training, end,
                                                  params)))
        logits = tf.identity(x, name='logits')
    return Net(logits, end, params, tuple(devices[:1]), tuple(aux))


def _layer(layer, x, config, init, dropout, training):
    if layer.kind == 'conv':
        p = ops.variables([layer.k, layer.k, int(x.shape[-1]), layer.units], init,
                          config.init_bias)
        return ops.conv(x, p, layer.stride, layer.padding, layer.relu), p
    if layer.kind == 'maxpool':
        return ops.max_pool(x, layer.k, layer.stride, layer.padding), None
    if layer.kind == 'avgpool':
        return ops.avg_pool(x, layer.k, layer.stride, layer.padding), None
    if layer.kind == 'lrn':
        return (ops.lrn(x, config.lrn) if config.use_lrn else x), None
    if layer.kind == 'dropout':
        return ops.dropout(x, dropout, training), None
    if layer.kind == 'fc':
        if x.shape.rank == 4:
            x = ops.flatten(x)
        units = layer.units or config.num_classes
        bias = config.init_bias if layer.relu else 0.0      # classifiers start at 0
        p = ops.variables([int(x.shape[-1]), units], init, bias)
        return ops.fc(x, p, layer.relu), p
    raise ValueError(f'unknown layer kind {layer.kind!r}')


def _inception(m, x, config, init):
    """Four branches over x, concatenated: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | maxpool 3x3 -> 1x1."""
    params = {}
    def conv(name, inp, units, k):
        with tf1.variable_scope(name):
            p = ops.variables([k, k, int(inp.shape[-1]), units], init, config.init_bias)
        params[f'{name}/w'], params[f'{name}/b'] = p['w'], p['b']
        return ops.conv(inp, p)
    b1 = conv('1x1', x, m.b1x1, 1)
    b3 = conv('3x3', conv('3x3_reduce', x, m.b3x3_reduce, 1), m.b3x3, 3)
    b5 = conv('5x5', conv('5x5_reduce', x, m.b5x5_reduce, 1), m.b5x5, 5)
    bp = conv('pool_proj', ops.max_pool(x, 3, 1, 'SAME'), m.pool_proj, 1)
    return tf.concat([b1, b3, b5, bp], axis=-1, name='concat'), params


def _aux_head(name, x, config, init, training, end, params):
    for layer in AUX:
        full = f'{name}_{layer.name}'
        with tf1.variable_scope(full):
            x, p = _layer(layer, x, config, init, AUX_DROPOUT, training)
        end[full] = [x]
        if p:
            params[(full, 0)] = p
    return x


# config.use_lrn keeps or drops lrn1 and lrn2
SPECS = (ModelSpec('googlenet', 1, TABLE, build, PAPER_TOTAL, published=PUBLISHED,
                   switches=frozenset({'use_lrn'})),)
