"""LeNet-5 (LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 1998), and the common modern variant as a separate model.

'lenet5' is the paper's: every layer up to F6 squashes with the paper's A tanh(S a),
A = 1.7159, S = 2/3 (its Appendix A; the "sigmoidal function" section II-B names for S2/S4
is this one). S2 and S4 sum each 2x2 block, multiply by one trainable coefficient per map, add
one trainable bias, then squash. C3 reads S2 through the paper's partial connection table
(Table I): its trainable kernel holds only the 60 connections of the table (5x5x60 weights,
1,500 + 16 biases = 1,516), scattered into a full 5x5x6x16 kernel whose other entries are fixed
zeros - the same as a full kernel times a fixed 0/1 mask, but the variable itself has the
trainable count, so every count (summary, checkpoint, weight decay) is the paper's 60,000.
The output layer is 10 Euclidean RBF units y_i = sum_j (x_j - w_ij)^2 whose w are constants:
the +-1 7x12 bitmaps of the digits drawn below (not variables, not decayed, not trained).
logits = -y (the nearest code wins). The paper trains on its MAP criterion
E = y_D + log(e^-j + sum_i e^-y_i), which is softmax cross-entropy over [-y_0..-y_9, -j]:
that is `loss_logits`, with j = RBF_J = 1.0 (the paper leaves j open). Init: the paper's
uniform(-2.4/F_in, 2.4/F_in), F_in the inputs of each unit; biases config.init_bias (0).
Input: 32x32x1 with background -0.1 and ink 1.175 in the paper (mean ~0, variance ~1).

'lenet5-relu' is the Keras-tutorial network: ReLU, 2x2 max-pool, a full C3, a 10-way linear
output trained with softmax; Glorot-uniform weights, zero biases (Keras' defaults).
"""
from dataclasses import dataclass
from functools import partial

import numpy as np

from alexnet_tf1.nn import ops
from alexnet_tf1.tf_compat import tf, tf1
from alexnet_tf1.models import alexnet
from alexnet_tf1.models.spec import ModelSpec

A, S = 1.7159, 2.0 / 3.0        # the paper's squashing function f(a) = A tanh(S a)
RBF_J = 1.0                     # j of the MAP criterion: the constant "rubbish class" column


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str           # 'conv', 'subsample' (trainable 2x2 sum), 'maxpool', 'fc', 'rbf'
    units: int = 0      # maps / units; 0 = config.num_classes
    k: int = 0
    table: tuple = None  # C3's connection table: for each output map, the input maps it reads
    act: str = 'squash'  # 'squash' = A tanh(S a), 'relu', or None (linear)


# The paper's Table I (docs/reference.md section 2): C3 map -> the S2 maps it reads.
C3_TABLE = ('012', '123', '234', '345', '450', '501',
            '0123', '1234', '2345', '3450', '4501', '5012',
            '0134', '1245', '0235',
            '012345')

TABLE = (
    #     name      kind         units k
    Layer('C1',     'conv',      6,    5),
    Layer('S2',     'subsample', 6),
    Layer('C3',     'conv',      16,   5, table=C3_TABLE),
    Layer('S4',     'subsample', 16),
    Layer('C5',     'conv',      120,  5),
    Layer('F6',     'fc',        84),
    Layer('output', 'rbf',       10),
)

RELU_TABLE = (
    Layer('C1',     'conv',    6,   5, act='relu'),
    Layer('S2',     'maxpool', 6),
    Layer('C3',     'conv',    16,  5, act='relu'),
    Layer('S4',     'maxpool', 16),
    Layer('C5',     'conv',    120, 5, act='relu'),
    Layer('F6',     'fc',      84,  act='relu'),
    Layer('output', 'fc',      0,   act=None),
)

# The RBF units' parameter vectors: stylised 7-wide, 12-high digits, '#' = +1, '.' = -1
# (the paper's Figure 3 drew its own; these are drawn for this file).
DIGITS = (
    """
    .#####.
    ##...##
    #.....#
    #.....#
    #.....#
    #.....#
    #.....#
    #.....#
    #.....#
    #.....#
    ##...##
    .#####.
    """, """
    ...#...
    ..##...
    .###...
    ...#...
    ...#...
    ...#...
    ...#...
    ...#...
    ...#...
    ...#...
    ...#...
    .#####.
    """, """
    .#####.
    #.....#
    ......#
    ......#
    .....#.
    ....#..
    ...#...
    ..#....
    .#.....
    #......
    #......
    #######
    """, """
    .#####.
    #.....#
    ......#
    ......#
    ......#
    ..####.
    ......#
    ......#
    ......#
    ......#
    #.....#
    .#####.
    """, """
    .....#.
    ....##.
    ...#.#.
    ..#..#.
    .#...#.
    #....#.
    #######
    .....#.
    .....#.
    .....#.
    .....#.
    .....#.
    """, """
    #######
    #......
    #......
    #......
    ######.
    ......#
    ......#
    ......#
    ......#
    ......#
    #.....#
    .#####.
    """, """
    ..####.
    .#.....
    #......
    #......
    #.####.
    ##....#
    #.....#
    #.....#
    #.....#
    #.....#
    #.....#
    .#####.
    """, """
    #######
    ......#
    ......#
    .....#.
    .....#.
    ....#..
    ....#..
    ...#...
    ...#...
    ..#....
    ..#....
    ..#....
    """, """
    .#####.
    #.....#
    #.....#
    #.....#
    .#...#.
    ..###..
    .#...#.
    #.....#
    #.....#
    #.....#
    #.....#
    .#####.
    """, """
    .#####.
    #.....#
    #.....#
    #.....#
    #.....#
    #....##
    .####.#
    ......#
    ......#
    ......#
    .....#.
    .####..
    """,
)


def bitmaps():
    """The ten digits as a [10, 12, 7] array of +-1."""
    return np.array([[[1.0 if c == '#' else -1.0 for c in row.strip()]
                      for row in d.strip().splitlines()] for d in DIGITS], np.float32)


def connection_mask(table=C3_TABLE, n_in=6):
    """[n_in, n_out] 0/1: mask[i, o] = 1 where output map o reads input map i."""
    mask = np.zeros((n_in, len(table)), np.float32)
    for o, ins in enumerate(table):
        mask[[int(i) for i in ins], o] = 1
    return mask


# The paper's section II-B: neurons (outputs) and trainable parameters per layer.
PAPER = {
    'C1': (6 * 28 * 28, 156), 'S2': (6 * 14 * 14, 12), 'C3': (16 * 10 * 10, 1_516),
    'S4': (16 * 5 * 5, 32), 'C5': (120, 48_120), 'F6': (84, 10_164), 'output': (10, 0),
}
PAPER_TOTAL = 60_000
PUBLISHED = (
    ('paper, no distortions', 'MNIST test', 0.95, None),
    ('paper, with distortions', 'MNIST test', 0.8, None),
)
# lenet5-relu: no published count; this file's count (156 + 2,416 + 48,120 + 10,164 + 850)
RELU_TOTAL = 61_706
RELU_PUBLISHED = (('Keras-tutorial variant (ReLU, max-pool, softmax), about', 'MNIST test', 1.2,
                   None),)

TABLES = {'lenet5': TABLE, 'lenet5-relu': RELU_TABLE}


@dataclass
class Net(alexnet.Net):
    loss_logits: object = None      # what the loss trains on, if not `logits` (the MAP criterion)


def squash(a):
    return A * tf.tanh(S * a)


class _Uniform:
    """Initialiser: uniform(-1, 1) times `limits` (broadcast), the paper's +-2.4 / F_in. A class
    with `seed`, as TF's initialisers are, so ops.variables seeds a copy by the variable's name."""

    def __init__(self, limits):
        self.limits = np.asarray(limits, np.float32)
        self.seed = None

    def __call__(self, shape, dtype=tf.float32, partition_info=None):
        return tf1.random_uniform(shape, -1.0, 1.0, dtype, seed=self.seed) * self.limits


def build(images, config, devices, training=False, variant=None):
    """images: float32 [batch, 32, 32, 1]. Returns Net; 'lenet5' also sets loss_logits."""
    variant = variant or config.model
    if variant not in TABLES:
        raise ValueError(f"unknown LeNet-5 variant {variant!r}; one of {', '.join(TABLES)}")
    table = TABLES[variant]
    paper = variant == 'lenet5'
    end, params = {}, {}
    x = images
    with tf1.device(devices[0]), alexnet.tower_scope(0):
        for layer in table:
            with tf1.variable_scope(layer.name):
                x, p = _apply(layer, x, config, paper)
            end[layer.name] = [x]
            if p:
                params[(layer.name, 0)] = p
        if paper:
            logits = tf.negative(x, name='logits')
            j = tf.fill(tf.stack([tf.shape(x)[0], 1]), -RBF_J)
            loss_logits = tf.concat([logits, j], axis=1, name='map_criterion_logits')
        else:
            logits, loss_logits = tf.identity(x, name='logits'), None
    return Net(logits, end, params, tuple(devices[:1]), loss_logits)


def _apply(layer, x, config, paper):
    act = {'squash': squash, 'relu': tf.nn.relu, None: tf.identity}[layer.act]
    bias = config.init_bias
    if layer.kind == 'conv':
        n_in, k = int(x.shape[-1]), layer.k
        if layer.table:
            return _partial_conv(layer, x, config, act)
        init = _Uniform(2.4 / (k * k * n_in)) if paper else tf1.glorot_uniform_initializer()
        p = ops.variables([k, k, n_in, layer.units], init, bias)
        return act(ops.conv(x, p, 1, 'VALID', relu=False)), p
    if layer.kind == 'subsample':
        n = int(x.shape[-1])
        p = ops.variables([n], _Uniform(2.4 / 4), bias)
        return act(4.0 * ops.avg_pool(x, 2, 2) * ops.at(p['w'], x) + ops.at(p['b'], x)), p
    if layer.kind == 'maxpool':
        return ops.max_pool(x, 2, 2), None
    if layer.kind == 'fc':
        if x.shape.rank == 4:
            x = ops.flatten(x)
        n_in, units = int(x.shape[-1]), layer.units or config.num_classes
        init = _Uniform(2.4 / n_in) if paper else tf1.glorot_uniform_initializer()
        p = ops.variables([n_in, units], init, bias)
        return act(ops.fc(x, p, relu=False)), p
    if layer.kind == 'rbf':
        if config.num_classes != layer.units:
            raise ValueError(f'lenet5 has {layer.units} RBF digit codes; num_classes is '
                             f'{config.num_classes} (use lenet5-relu for other class counts)')
        codes = tf.constant(bitmaps().reshape(layer.units, -1), name='codes')   # fixed, [10, 84]
        x = tf.cast(x, tf.float32)      # the output layer: in fp32, as the logits are
        y = tf.reduce_sum(tf.square(x[:, None, :] - codes[None]), axis=-1, name='rbf')
        return y, None
    raise ValueError(f'unknown layer kind {layer.kind!r}')


def _partial_conv(layer, x, config, act):
    """C3: a trainable [k, k, connections] kernel scattered into [k, k, n_in, n_out]."""
    k, n_in, n_out = layer.k, int(x.shape[-1]), layer.units
    n_conn = sum(len(ins) for ins in layer.table)
    slot = np.full((n_in, n_out), n_conn, np.int32)     # slot n_conn: a fixed zero
    fan_in = []
    for o, ins in enumerate(layer.table):               # packed output map by output map
        for i in ins:
            slot[int(i), o] = len(fan_in)
            fan_in.append(k * k * len(ins))
    p = ops.variables([k, k, n_conn], _Uniform(2.4 / np.array(fan_in)), config.init_bias,
                      units=n_out)
    padded = tf.concat([p['w'], tf.zeros([k, k, 1])], axis=2)
    kernel = tf.reshape(tf.gather(padded, slot.ravel(), axis=2), [k, k, n_in, n_out],
                        name='masked_kernel')
    y = tf.nn.bias_add(tf.nn.conv2d(x, ops.at(kernel, x), [1, 1, 1, 1], 'VALID'),
                       ops.at(p['b'], x))
    return act(y), p


SPECS = (
    ModelSpec('lenet5', 1, TABLE, partial(build, variant='lenet5'), PAPER_TOTAL,
              published=PUBLISHED, paper_layers=PAPER),
    ModelSpec('lenet5-relu', 1, RELU_TABLE, partial(build, variant='lenet5-relu'), RELU_TOTAL,
              published=RELU_PUBLISHED),
)
