"""The later Inception family's one builder (v2, v3, v4, Inception-ResNet-v1 and -v2).

A model is a table of Blocks, each a row of the papers' figures: its branches side by side,
each branch a string read left to right, e.g. '1x1-64 3x3-96 3x3/2V-96':

    KxL[/s][V]-n   a K x L convolution (K rows, L columns) with n maps, stride s (default 1),
                   'SAME' padding or, with V, 'VALID'; then batch norm (no scale, as Google's
                   published nets) and ReLU, with no biases (batch norm's beta is the shift)
    max3/2V, avg3  a max or average pool, 3x3, stride 2 VALID or stride 1 SAME (the average
                   leaves the padding out, as TF and Keras do)
    [1x3-384 3x1-384]  parallel convolutions of the same input, concatenated (Figure 7 of
                   "Rethinking", Figure 6 of the v4 paper)

A block concatenates its branches. A residual block (scale > 0, the v4 paper's
Inception-ResNet) then maps the concatenation back to its input's width with a linear 1x1
convolution with biases and no batch norm, scales it by `scale` ("scaling of the residuals",
section 3.3) and adds it to its input, then ReLU (relu=False leaves it out: the published
Inception-ResNet-v2's last block). After the table: global average pool, dropout
(config.dropout), the linear classifier 'Logits'.

Variables are created in the table's order, branch by branch, which is also the order Keras
creates the layers of keras.applications.InceptionV3 / InceptionResNetV2 (the importer pairs
them by it). An auxiliary head reads the block marked aux=True, only in a training graph
(`training` not False): avg pool 5x5/3 -> 1x1 conv 128 -> a conv over the whole remaining map
with 768 maps -> linear; 'Rethinking' section 4 and Figure 8, TF-slim's layers. With bn_aux
(v3's "BN-auxiliary") its 768-map layer is batch-normalised too, else it has biases.

Init (the papers give none): TF-slim's, variance scaling with factor 2 over fan-in, truncated
normal; config.init = 'glorot' for Keras' Glorot-uniform.
"""
import re
from dataclasses import dataclass

from alexnet_tf1.nn import ops
from alexnet_tf1.tf_compat import tf, tf1
from alexnet_tf1.models import alexnet

TOKENS = re.compile(r'\[[^\]]*\]|\S+')
CONV = re.compile(r'(\d+)x(\d+)(?:/(\d+))?(V?)-(\d+)$')
POOL = re.compile(r'(max|avg)(\d+)(?:/(\d+))?(V?)$')
AUX_WEIGHT = 0.4            # TF-slim's train_image_classifier weights the aux loss by 0.4
AUX_MAPS = (128, 768)


@dataclass(frozen=True)
class Block:
    name: str
    branches: tuple
    scale: float = 0.0          # > 0: a residual block, the branches' sum scaled by it
    relu: bool = True           # ReLU after a residual sum
    aux: bool = False           # the auxiliary head reads this block's output


def block(name, *branches, **kw):
    return Block(name, tuple(branches), **kw)


def repeat(n, name, *branches, **kw):
    """n identical blocks name_1 .. name_n (their own variables each)."""
    return tuple(Block(f'{name}_{i}', tuple(branches), **kw) for i in range(1, n + 1))


@dataclass
class Net(alexnet.Net):
    aux_logits: tuple = ()          # ((AUX_WEIGHT, aux logits),) in a training graph


def initializer(config):
    if config.init == 'glorot':
        return tf1.glorot_uniform_initializer()
    return tf1.variance_scaling_initializer(2.0, 'fan_in', 'truncated_normal')


def build(images, config, devices, training=False, table=(), bn_aux=True):
    """images: float32 [batch, size, size, 3] (299 for the published nets). Returns Net."""
    init = initializer(config)
    end, params, heads = {}, {}, []
    x = images
    with tf1.device(devices[0]), alexnet.tower_scope(0):
        for b in table:
            p = {}
            with tf1.variable_scope(b.name):
                x = _block(b, x, p, init, config, training)
            end[b.name] = [x]
            if p:
                params[(b.name, 0)] = p
            if b.aux and training is not False:
                p = {}
                with tf1.variable_scope('AuxLogits'):
                    heads.append((AUX_WEIGHT, _aux_head(x, p, init, config, training, bn_aux)))
                params[('AuxLogits', 0)] = p
                end['AuxLogits'] = [heads[-1][1]]
        with tf1.variable_scope('Logits'):
            x = ops.dropout(tf.reduce_mean(x, [1, 2], name='global_pool'), config.dropout,
                            training)
            p = ops.variables([int(x.shape[-1]), config.num_classes], init, 0.0)
            x = ops.fc(x, p, relu=False)
        params[('Logits', 0)] = p
        end['Logits'] = [x]
        logits = tf.identity(x, name='logits')
    return Net(logits, end, params, tuple(devices[:1]), tuple(heads))


def _block(b, x, p, init, config, training):
    outs = [_branch(spec, x, f'b{i}', p, init, config, training)
            for i, spec in enumerate(b.branches)]
    y = outs[0] if len(outs) == 1 else tf.concat(outs, -1, name='concat')
    if not b.scale:
        return y
    with tf1.variable_scope('up'):
        q = ops.variables([1, 1, int(y.shape[-1]), int(x.shape[-1])], init, 0.0)
    p['up/w'], p['up/b'] = q['w'], q['b']
    y = x + b.scale * ops.conv(y, q, relu=False)
    return ops.relu(y) if b.relu else y


def _branch(spec, x, prefix, p, init, config, training):
    for j, token in enumerate(TOKENS.findall(spec)):
        name = f'{prefix}_{j}'
        if token.startswith('['):
            x = tf.concat([_unit(t, x, f'{name}_{k}', p, init, config, training)
                           for k, t in enumerate(token[1:-1].split())], -1)
        else:
            x = _unit(token, x, name, p, init, config, training)
    return x


def _unit(token, x, name, p, init, config, training):
    m = POOL.match(token)
    if m:
        kind, k, stride, valid = m.groups()
        pool = ops.max_pool if kind == 'max' else ops.avg_pool
        return pool(x, int(k), int(stride or 1), 'VALID' if valid else 'SAME')
    m = CONV.match(token)
    if not m:
        raise ValueError(f'{token!r} is neither a convolution (3x3/2V-32) nor a pool (max3/2V)')
    kh, kw, stride, valid, units = m.groups()
    return conv_bn(x, (int(kh), int(kw)), int(units), name, p, init, config, training,
                   int(stride or 1), 'VALID' if valid else 'SAME')


def conv_bn(x, kernel, units, name, p, init, config, training, stride=1, padding='SAME',
            bn=True):
    """Convolution, batch norm (or biases, bn=False), ReLU; its variables into p[name/...]."""
    with tf1.variable_scope(name):
        shape = [kernel[0], kernel[1], int(x.shape[-1]), units]
        q = {'w': ops.weights(shape, init)} if bn else ops.variables(shape, init, 0.0)
        y = ops.conv(x, q, stride, padding, relu=not bn)
        if bn:
            stats = {}
            y = ops.relu(ops.batch_norm(y, training, decay=config.bn_decay, out=stats))
            q.update(stats)
    p.update({f'{name}/{k}': v for k, v in q.items()})
    return y


def _aux_head(x, p, init, config, training, bn_aux):
    x = ops.avg_pool(x, min(5, int(x.shape[1]), int(x.shape[2])), 3, 'VALID')   # small inputs
    x = conv_bn(x, (1, 1), AUX_MAPS[0], 'conv0', p, init, config, training)
    k = (int(x.shape[1]), int(x.shape[2]))
    x = conv_bn(x, k, AUX_MAPS[1], 'conv1', p, init, config, training, padding='VALID',
                bn=bn_aux)
    with tf1.variable_scope('logits'):
        q = ops.variables([AUX_MAPS[1], config.num_classes], init, 0.0)
    p['logits/w'], p['logits/b'] = q['w'], q['b']
    return ops.fc(ops.flatten(x), q, relu=False)
