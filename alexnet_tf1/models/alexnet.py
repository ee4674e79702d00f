"""AlexNet (Krizhevsky, Sutskever, Hinton, NIPS 2012) in two towers, one per device, and
CaffeNet (bvlc_reference_caffenet), the same towers with pooling before LRN.

One table describes one tower; the builder makes both towers from it, each on its own device
with its own variables, as the paper split the net over two GTX 580s. `reads` is the paper's
Figure 2: 'own' sees only this tower's previous layer, 'both' crosses to the other device.

LRN's window stays inside its tower (config.lrn_span 'tower', the paper's) or spans all maps
('all', Caffe's one LRN layer after the group concat: bvlc_alexnet, CaffeNet). For 'all' each
tower's LRN runs on its own device over its maps plus the depth_radius maps just across the
boundary; those few maps are sliced on the other tower's device, so only they cross.

alexnet-one-tower is the paper's "one GPU" net of section 3.2: half of each conv layer's
kernels in one tower, except conv5, which keeps all 256 ("we did not halve the size of the
final convolutional layer (nor the fully-connected layers which follow)", so that the two
nets have about the same number of parameters). The paper's ablations are config switches:
use_lrn, pool ('3x3' overlapping or '2x2'), activation ('relu' or 'tanh').
"""
import contextlib
from dataclasses import dataclass, replace
from functools import partial
from alexnet_tf1.nn import ops
from alexnet_tf1.models.spec import ModelSpec
from alexnet_tf1.tf_compat import tf, tf1


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str               # 'conv' or 'fc'
    units: int              # kernels / units per tower; 0 = num_classes split over the towers
    k: int = 0
    stride: int = 1
    padding: str = 'SAME'   # SAME at stride 1 is the paper's pad (k - 1) / 2
    reads: str = 'own'      # 'image', 'own' or 'both'
    bias: int = 0           # 0, or 1 = config.init_bias (the paper's 1, Caffe's 0.1)
    relu: bool = True
    lrn: bool = False       # conv -> ReLU -> LRN -> pool, the paper's order
    pool: bool = False      # max 3x3 stride 2: overlapping pooling
    dropout: bool = False
    pool_first: bool = False    # conv -> ReLU -> pool -> LRN (CaffeNet)

    @property
    def after(self):
        """The steps after conv/fc and ReLU, in order: 'lrn', 'pool'."""
        steps = [s for s in ('lrn', 'pool') if getattr(self, s)]
        return steps[::-1] if self.pool_first else steps


TOWERS = 2
TABLE = (
    #     name     kind    units  k   stride padding  reads    bias
    Layer('conv1', 'conv', 48,   11, 4,     'VALID', 'image', 0, lrn=True, pool=True),
    Layer('conv2', 'conv', 128,   5, 1,     'SAME',  'own',   1, lrn=True, pool=True),
    Layer('conv3', 'conv', 192,   3, 1,     'SAME',  'both',  0),
    Layer('conv4', 'conv', 192,   3, 1,     'SAME',  'own',   1),
    Layer('conv5', 'conv', 128,   3, 1,     'SAME',  'own',   1, pool=True),
    Layer('fc6',   'fc',   2048, reads='both', bias=1, dropout=True),
    Layer('fc7',   'fc',   2048, reads='both', bias=1, dropout=True),
    Layer('fc8',   'fc',   0,    reads='both', bias=0, relu=False),
)

# The paper's section 3.5: neurons per layer (both towers), and parameters per layer.
# Its conv1 figure, 253,440, is the 224-input erratum; at 227 it is 290,400.
PAPER = {
    'conv1': (290_400, 34_944), 'conv2': (186_624, 307_456), 'conv3': (64_896, 885_120),
    'conv4': (64_896, 663_936), 'conv5': (43_264, 442_624), 'fc6': (4096, 37_752_832),
    'fc7': (4096, 16_781_312), 'fc8': (1000, 4_097_000),
}
PAPER_TOTAL = 60_965_224

# bvlc_reference_caffenet: "the order of pooling and normalization layers is switched"
CAFFENET_TABLE = tuple(replace(layer, pool_first=True) if layer.lrn else layer for layer in TABLE)
# section 3.2's one-GPU net: TABLE's per-tower half of conv1-conv4, conv5 and fc6-fc7 whole
ONE_TOWER_TABLE = tuple(replace(layer, units=2 * layer.units)
                        if layer.name in ('conv5', 'fc6', 'fc7') else layer for layer in TABLE)
ONE_TOWER_TOTAL = 59_798_312    # derived in tests/test_ablations.py; the paper gives none
SPANS = ('tower', 'all')
POOLS = {'3x3': (3, 2), '2x2': (2, 2)}      # (z, s): section 3.4's overlapping, and not


@dataclass
class Net:
    logits: tf.Tensor
    end_points: dict        # layer name -> [tensor of tower 0, tensor of tower 1] (None: not on it)
    params: dict            # (layer name, tower) -> {'w', 'b'}
    devices: tuple


@contextlib.contextmanager
def tower_scope(t, reuse=None):
    """Tower t's name and variable scope. Op names go under the caller's name scope, so a
    data-parallel replica r > 0 builds 'replica{r}/tower{t}/...' over the same variables while
    replica 0 (and every one-replica graph) keeps the plain 'tower{t}/...' names."""
    prefix = tf1.get_default_graph().get_name_scope()
    with tf.name_scope(f'{prefix}/tower{t}/' if prefix else f'tower{t}/'), \
            tf1.variable_scope(f'tower{t}', reuse=reuse, auxiliary_name_scope=False):
        yield


def _towers_of(layer, config, towers):
    """fc8 lives whole on tower 0 (cuda-convnet2) unless config.fc8 == 'split'."""
    if layer.name == 'fc8' and config.fc8 != 'split':
        return (0,)
    return tuple(range(towers))


def _units(layer, config, towers):
    if layer.units:
        return layer.units
    if config.num_classes % len(towers):
        raise ValueError(f'fc8 split over {len(towers)} towers needs an even class count')
    return config.num_classes // len(towers)


def build(images, config, devices, training=False, table=TABLE, towers=TOWERS):
    """images: float32 NHWC (mean-subtracted). Returns Net with logits [batch, num_classes]."""
    if len(devices) != towers:
        raise ValueError(f'AlexNet needs {towers} tower devices, got {devices}')
    if config.lrn_span not in SPANS:
        raise ValueError(f"lrn_span {config.lrn_span!r}: choose from {', '.join(SPANS)}")
    if config.pool not in POOLS:
        raise ValueError(f"pool {config.pool!r}: choose from {', '.join(POOLS)}")
    end, params = {}, {}
    prev = [images] * towers
    for layer in table:
        on = _towers_of(layer, config, towers)
        outs = [None] * towers
        for t in on:
            with tf1.device(devices[t]), tower_scope(t):
                x = tf.concat(prev, axis=-1, name=f'{layer.name}_input') if layer.reads == 'both' \
                    else prev[t]
                outs[t] = _apply(layer, x, config, _units(layer, config, on), params, t,
                                 end, training, devices)
        for step in [s for s in layer.after if s != 'lrn' or config.use_lrn]:
            outs = _lrn(layer, outs, config, devices, end) if step == 'lrn' else \
                _pool(layer, outs, config, devices, end)
        prev = outs
    logits = prev[0] if len(_towers_of(table[-1], config, towers)) == 1 else tf.concat(prev, -1)
    return Net(tf.identity(logits, name='logits'), end, params, tuple(devices))


def _apply(layer, x, config, units, params, t, end, training, devices):
    bias = layer.bias * config.init_bias
    if layer.kind == 'fc' and x.shape.rank == 4:
        x = ops.flatten(x)          # (h, w, c) order, as Caffe's fc6 rows
    with tf1.variable_scope(layer.name):
        if layer.kind == 'conv':
            p = ops.params([layer.k, layer.k, int(x.shape[-1]), units], config.init_std, bias)
            y = ops.conv(x, p, layer.stride, layer.padding, layer.relu, config.activation)
        else:
            p = ops.params([int(x.shape[-1]), units], config.init_std, bias)
            y = ops.fc(x, p, layer.relu, config.activation)
            if layer.dropout:
                y = ops.dropout(y, config.dropout, training)
    params[(layer.name, t)] = p
    end.setdefault(layer.name, [None] * len(devices))[t] = y
    return y


def _lrn(layer, xs, config, devices, end):
    """Each tower's LRN on its device; with lrn_span 'all' it also reads the depth_radius maps
    across each tower boundary, sliced on the device that holds them."""
    r, name = config.lrn.depth_radius, f'lrn{layer.name[-1]}'
    halo = {}
    if config.lrn_span == 'all' and r:
        for t in range(len(xs)):
            with tf1.device(devices[t]), tower_scope(t), tf.name_scope(f'{name}_halo'):
                halo[t] = (xs[t][..., :r] if t > 0 else None,          # to the tower before
                           xs[t][..., -r:] if t < len(xs) - 1 else None)  # to the tower after
    outs = []
    for t in range(len(xs)):
        with tf1.device(devices[t]), tower_scope(t), tf.name_scope(name):
            left = halo[t - 1][1] if halo and t > 0 else None
            right = halo[t + 1][0] if halo and t < len(xs) - 1 else None
            outs.append(ops.lrn(xs[t], config.lrn, left, right))
    end[name] = outs
    return outs


def _pool(layer, xs, config, devices, end):
    name, outs = f'pool{layer.name[-1]}', []
    k, stride = POOLS[config.pool]
    for t in range(len(xs)):
        with tf1.device(devices[t]), tower_scope(t), tf.name_scope(name):
            outs.append(ops.max_pool(xs[t], k, stride))
    end[name] = outs
    return outs


# Published results (the paper's Tables 1-2; docs/reference.md 1.7): (source, set, top-1, top-5 %).
PUBLISHED = (
    ('paper, 1 CNN, 10 crops', 'ILSVRC-2012 val', 40.7, 18.2),
    ('paper, 5 CNNs', 'ILSVRC-2012 val', 38.1, 16.4),
    ('paper, 1 CNN* (pre-trained on 22k classes)', 'ILSVRC-2012 val', 39.0, 16.6),
    ('paper, 7 CNNs*', 'ILSVRC-2012 val', 36.7, 15.4),
    ('paper, 1 CNN, 10 crops', 'ILSVRC-2010 test', 37.5, 17.0),
    ('paper, 1 CNN, centre crop', 'ILSVRC-2010 test', 39.0, 18.3),
    ('cuda-convnet2, 1 GPU, centre crop', 'ILSVRC-2012 val', 42.55, 19.81),
    ('cuda-convnet2, 1 GPU, 10 crops', 'ILSVRC-2012 val', 40.42, 18.15),
    ('Caffe bvlc_alexnet, centre crop', 'ILSVRC-2012 val', 42.9, 19.8),
    ('torchvision alexnet (one tower)', 'ILSVRC-2012 val', 43.48, 20.93),
)

CAFFENET_PUBLISHED = (
    ('Caffe bvlc_reference_caffenet, centre crop', 'ILSVRC-2012 val', 42.6, 19.6),
) + PUBLISHED

# config's switches for the paper's ablations: ReLU (3.1), LRN (3.3), overlapping pools (3.4)
ABLATIONS = frozenset({'activation', 'use_lrn', 'pool'})
SPECS = (
    ModelSpec('alexnet', TOWERS, TABLE, build, PAPER_TOTAL, published=PUBLISHED,
              paper_layers=PAPER, switches=ABLATIONS),
    ModelSpec('caffenet', TOWERS, CAFFENET_TABLE, partial(build, table=CAFFENET_TABLE),
              PAPER_TOTAL, published=CAFFENET_PUBLISHED, paper_layers=PAPER, switches=ABLATIONS),
    ModelSpec('alexnet-one-tower', 1, ONE_TOWER_TABLE,
              partial(build, table=ONE_TOWER_TABLE, towers=1), ONE_TOWER_TOTAL,
              published=PUBLISHED, switches=ABLATIONS),
)
