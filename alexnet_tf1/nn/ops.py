"""The one builder: variables and layers over explicit weight/bias dicts.

Weights are registered in WEIGHT_DECAY so the loss adds their L2 term in one place; biases
are not decayed (cuda-convnet and Caffe did not decay them either).

Every layer computes in its input's dtype: a bf16 graph (graph.build's precision) feeds bf16
maps, and the fp32 variables are cast to bf16 where a layer reads them (`at`), so their
gradients, their updates and the checkpoints stay fp32. LRN and batch norm's statistics are
computed in fp32 whatever the maps' dtype.
"""
import copy
import zlib

from alexnet_tf1.nn import cpu_kernels, winograd
from alexnet_tf1.tf_compat import tf, tf1

WEIGHT_DECAY = 'alexnet_tf1_decayed_weights'
STEP_SEED = 'alexnet_tf1_step_seed'    # the global step read once per run step, for dropout


def params(shape, std, bias):
    """{'w': N(0, std) weights of `shape`, 'b': biases filled with `bias`}, in the current scope."""
    return variables(shape, tf1.random_normal_initializer(stddev=std), bias)


def name_seed(name):
    """An op seed from a name, so that with the graph seed a variable's initial values and a
    dropout's masks depend on what it is, not on how many ops were built before it (the CPU
    and GPU graphs differ there)."""
    return zlib.crc32(name.encode()) & 0x7fffffff


ACTIVATIONS = {'relu': tf.nn.relu, 'tanh': tf.nn.tanh}


def at(v, x):
    """Variable (or tensor) v in x's dtype; v itself when they agree, so an fp32 graph has no
    casts at all."""
    dtype = x.dtype.base_dtype
    return v if v.dtype.base_dtype == dtype else tf.cast(v, dtype)


def conv(x, p, stride=1, padding='SAME', relu=True, act='relu'):
    """padding: 'SAME', 'VALID', or n pixels on every side (Caffe's pad: n). p: {'w'} and,
    unless batch norm follows, {'b'}. relu: whether the neuron `act` follows (ACTIVATIONS)."""
    k = tuple(p['w'].shape[:2])
    k3s1 = stride == 1 and k == (3, 3)
    if (k3s1 and padding in ('SAME', 1) and x.shape[1:].is_fully_defined()
            and cpu_kernels.on_cpu(x, 'conv3x3_winograd')):
        return winograd.conv3x3(x, p['w'], p.get('b'), ACTIVATIONS[act] if relu else None)
    covers = padding in ('VALID', 0) and tuple(x.shape[1:3]) == k     # a 1 x 1 map out
    if ((covers and cpu_kernels.on_cpu(x, 'conv_covering_matmul')) or
            (k == (1, 1) and stride == 1 and padding in ('SAME', 'VALID', 0) and 'b' not in p
             and cpu_kernels.on_cpu(x, 'conv1x1_matmul'))):
        return _conv_as_matmul(x, p, ACTIVATIONS[act] if relu else None)
    if isinstance(padding, int):
        if padding and cpu_kernels.on_cpu(x, 'conv_pad_apart'):
            # TF's CPU filter gradient of an explicitly padded convolution is Eigen's, not
            # oneDNN's (GoogLeNet's conv1: 9% of an fp32 step, 70% of a bf16 one); the same
            # zeros padded first and a 'VALID' convolution run oneDNN's each way
            x = tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
            padding = 'VALID'
        else:
            padding = [[0, 0], [padding, padding], [padding, padding], [0, 0]]
    override = {}
    if k3s1 and cpu_kernels.on_cpu(x, 'conv3x3_nchw'):
        override = {'Conv2D': 'Conv2DFilterGradNCHW'}
    if 'b' in p and cpu_kernels.on_cpu(x, 'conv_bias_apart'):
        override['BiasAdd'] = 'BiasAddGradApart'
    elif 'b' in p and ('Conv2D' in override or not isinstance(padding, str)):
        override.update(cpu_kernels.bias_override(x))
    override.update(cpu_kernels.relu_override(x, maskable=True))
    with tf1.get_default_graph().gradient_override_map(override):
        c = tf.nn.conv2d(x, at(p['w'], x), [1, stride, stride, 1], padding)
        y = tf.nn.bias_add(c, at(p['b'], x)) if 'b' in p else c
        return ACTIVATIONS[act](y) if relu else y


def _conv_as_matmul(x, p, act):
    """A convolution that is a matmul - 1x1 stride 1, or a kernel covering its unpadded input
    - as one on the maps' 2-D view: [pixels, in] x [in, out], or [images, kh kw in] x [kh kw
    in, out]. The same products and sums; oneDNN's convolution kernels run these shapes
    slowly: a covering one 4-8x slower than the matmul each way, a 1x1 one's bf16 filter
    gradient 2-3x (in fp32 its own is faster). Only the 1x1 ones without biases (batch norm
    follows) go this way: with a bias and a ReLU oneDNN's convolution applies both in its
    own pass, which the matmul's fused kernel does slower (GoogLeNet's bf16 forward 0.85x)."""
    kh, kw, cin, cout = (int(d) for d in p['w'].shape)
    n_in = kh * kw * cin
    rows = tf.reshape(x, [-1, n_in])
    y = tf.matmul(rows, at(tf.reshape(p['w'], [n_in, cout]), x))
    override = {**cpu_kernels.bias_override(x), **cpu_kernels.relu_override(x)}
    with tf1.get_default_graph().gradient_override_map(override):
        if 'b' in p:
            y = tf.nn.bias_add(y, at(p['b'], x))
        if act is not None:
            y = act(y)
    if (kh, kw) == (1, 1):
        out = tf.reshape(y, tf.concat([tf.shape(x)[:3], [cout]], 0))
        out.set_shape(x.shape[:3].concatenate([cout]))
        return out
    return tf.reshape(y, [-1, 1, 1, cout])


def relu(x):
    """ReLU; a bf16 one on the CPU (relu_xla) compiled by XLA, with its gradient: TF's own
    bf16 Relu and ReluGrad convert one value at a time (a fifth of an Inception-v3 bf16
    step)."""
    if cpu_kernels.on_cpu(x, 'relu_xla'):
        with tf.xla.experimental.jit_scope():
            return tf.nn.relu(x)
    return tf.nn.relu(x)


def fc(x, p, relu=True, act='relu'):
    override = {'MatMul': 'MatMulInputGradBatched'} if cpu_kernels.on_cpu(x, 'fc_batched') else {}
    override.update(cpu_kernels.relu_override(x))
    override.update(cpu_kernels.bias_override(x))
    with tf1.get_default_graph().gradient_override_map(override):
        m = tf.matmul(x, at(p['w'], x))
        y = tf.nn.bias_add(m, at(p['b'], x))
        return ACTIVATIONS[act](y) if relu else y


def lrn(x, c, left=None, right=None):
    """Local response normalisation with the constants of config.LRN `c`.

    left / right: the maps just before x's first and after its last, from a neighbouring
    tower (c.depth_radius of them): the window then crosses into them as one LRN over the
    joined maps would (Caffe's), and only x's own maps are returned.

    On a GPU tf.nn.lrn (cuDNN's). On the CPU TF's LRN kernel reads and writes the tensor many
    times (its gradient alone took 8% of an AlexNet step); the same formula written out and
    compiled by XLA into one loop each way is 2-3x faster and equal to tf.nn.lrn to float
    rounding (see cpu_kernels). Either way in fp32, also for bf16 maps (cast in and out)."""
    parts = [p for p in (left, x, right) if p is not None]
    joined = tf.concat(parts, -1) if len(parts) > 1 else x
    if not cpu_kernels.on_cpu(x, 'lrn_xla'):
        y = at(tf.nn.lrn(tf.cast(joined, tf.float32), depth_radius=c.depth_radius, bias=c.bias,
                         alpha=c.alpha, beta=c.beta), x)
    else:
        with tf.xla.experimental.jit_scope():
            y = cpu_kernels.lrn_written_out(joined, c, masks_relu=joined.op.type == 'Relu')
    if len(parts) == 1:
        return y
    start = 0 if left is None else int(left.shape[-1])
    return y[..., start:start + int(x.shape[-1])]


def max_pool(x, k=3, stride=2, padding='VALID'):
    return tf.nn.max_pool2d(x, k, stride, padding)


def dropout(x, rate, training):
    """Inverted dropout while `training` (a bool or a scalar bool tensor); identity otherwise.

    A tensor `training` scales the rate to 0 instead of branching: no control flow in the
    graph, and at rate 0 the mask keeps everything and the scale is exactly 1.
    The mask is a function of (this op's name, the global step): a run resumed from a
    checkpoint draws the masks the uninterrupted run drew (a stateful op would start its
    sequence again in the new session). A bf16 map takes the mask an fp32 one would: drawn
    in fp32 (a bf16 uniform would be another draw, and keep 1 - rate only to 8 bits), so a
    bf16 run drops the units its fp32 twin drops.
    """
    if training is False or not rate:
        return x
    if training is not True:
        rate = tf.where(training, tf.constant(rate, tf.float32), tf.constant(0.0, tf.float32))
    op_seed = name_seed(tf1.get_default_graph().get_name_scope() + '/dropout')
    step = tf1.get_collection(STEP_SEED)

    def drop(t):
        if not step:            # a net built outside graph.build, without a step to key on
            return tf.nn.dropout(t, rate=rate, seed=op_seed)
        seed = tf.stack([tf.constant(op_seed, tf.int64), step[0]])
        return tf.nn.experimental.stateless_dropout(t, rate=rate, seed=seed)
    if x.dtype.base_dtype == tf.float32:
        return drop(x)
    return x * tf.cast(drop(tf.ones_like(x, tf.float32)), x.dtype)


def flatten(x):
    return tf.reshape(x, [-1, int(x.shape[1]) * int(x.shape[2]) * int(x.shape[3])])


def variables(shape, w_init, b_init=0.0, decay=True, units=None):
    """Like params() with any initialiser: {'w': 'weights' from `w_init`, 'b': 'biases' = b_init}.

    `units`: the number of biases when it is not shape[-1] (LeNet-5's packed C3 kernel).
    An initialiser with `seed` None gets the name seed (see name_seed).
    Safe under variable reuse (a second graph over the same variables, e.g. VGG's dense
    evaluation): a reused weight is registered for weight decay only once.
    """
    w = weights(shape, w_init, decay)
    b = tf1.get_variable('biases', [units] if units else shape[-1:], tf.float32,
                         tf1.constant_initializer(b_init))
    return {'w': w, 'b': b}


def weights(shape, w_init, decay=True):
    """The 'weights' variable alone (a convolution followed by batch norm has no biases)."""
    if getattr(w_init, 'seed', 0) is None:      # an unseeded TF initialiser: seed it by name
        w_init = copy.copy(w_init)
        w_init.seed = name_seed(tf1.get_variable_scope().name + '/weights')
    w = tf1.get_variable('weights', shape, tf.float32, w_init)
    if decay and not any(w is v for v in tf1.get_collection(WEIGHT_DECAY)):
        tf1.add_to_collection(WEIGHT_DECAY, w)
    return w


def avg_pool(x, k=2, stride=2, padding='VALID'):
    return tf.nn.avg_pool2d(x, k, stride, padding)


BN_UPDATES = 'alexnet_tf1_batch_norm_updates'


def batch_norm(x, training, scale=False, decay=0.99, epsilon=1e-3, out=None):
    """Batch normalisation (Ioffe and Szegedy 2015) over explicit variables in the current
    scope: 'beta' (and 'gamma' when `scale`), trainable; 'moving_mean', 'moving_variance', not.

    While `training` (True, or a scalar bool tensor that is true) it normalises with the
    batch's mean and (biased) variance over every axis but the last, and registers in BN_UPDATES
    the moving averages' update m <- decay m + (1 - decay) batch statistic, which graph.build
    makes part of the training step; otherwise, and at test, it uses the moving averages. The
    defaults are Keras' (momentum 0.99, epsilon 1e-3, the Inception v3 and Inception-ResNet
    files' scale=False). The variables live where the layer's are; the Saver keeps them all.
    out: a dict that receives them by name. x: NHWC maps (the fused kernel's layout).
    """
    if x.shape.rank != 4:
        raise ValueError(f'batch_norm takes NHWC maps, not a rank-{x.shape.rank} tensor')
    c = int(x.shape[-1])
    get = tf1.get_variable
    beta = get('beta', [c], tf.float32, tf1.zeros_initializer())
    gamma = get('gamma', [c], tf.float32, tf1.ones_initializer()) if scale else None
    mean = get('moving_mean', [c], tf.float32, tf1.zeros_initializer(), trainable=False)
    var = get('moving_variance', [c], tf.float32, tf1.ones_initializer(), trainable=False)
    if out is not None:
        out.update({k: v for k, v in (('gamma', gamma), ('beta', beta), ('moving_mean', mean),
                                      ('moving_variance', var)) if v is not None})
    return _fused_batch_norm(x, training, beta, gamma, mean, var, decay, epsilon)


def _update_averages(training, mean, var, batch_mean, batch_var, decay):
    on = tf.cast(training, tf.float32) if training is not True else tf.constant(1.0)
    step = (1.0 - decay) * on       # 0 when not training: the averages stay
    for v, s in ((mean, batch_mean), (var, batch_var)):
        with tf1.colocate_with(v):
            tf1.add_to_collection(BN_UPDATES, v.assign_sub(step * (v - s)))


def _fused_batch_norm(x, training, beta, gamma, mean, var, decay, epsilon):
    """One FusedBatchNormV3 kernel each way (oneDNN's on the CPU, cuDNN's on a GPU), 7% faster
    per Inception-v3 step than moments + a chain of elementwise ops and their gradients; a
    `training` tensor chooses the kernel with tf.cond. Its batch variance is Bessel-corrected;
    the averages take the biased one. bf16 maps go in as they are: the kernel takes them with
    fp32 scale, offset and statistics, and computes the statistics in fp32."""
    scale = gamma if gamma is not None else tf.ones_like(beta)

    def test():
        return tf1.nn.fused_batch_norm(x, scale, beta, mean, var, epsilon,
                                       is_training=False)[0]
    if training is False:
        return test()

    def train():
        y, m, v = tf1.nn.fused_batch_norm(x, scale, beta, epsilon=epsilon, is_training=True)[:3]
        n = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
        return y, m, v * (n - 1.0) / n
    if training is True:
        y, m, v = train()
    else:
        y, m, v = tf.cond(training, train, lambda: (test(), tf.stop_gradient(mean),
                                                    tf.stop_gradient(var)))
    _update_averages(training, mean, var, m, v, decay)
    return y
