"""The one builder: variables and layers over explicit weight/bias dicts.

Weights are registered in WEIGHT_DECAY so the loss adds their L2 term in one place; biases
are not decayed (cuda-convnet and Caffe did not decay them either).
"""
from .tf_compat import tf, tf1

WEIGHT_DECAY = 'alexnet_tf1_decayed_weights'


def params(shape, std, bias):
    """{'w': N(0, std) weights of `shape`, 'b': biases filled with `bias`}, in the current scope."""
    w = tf1.get_variable('weights', shape, tf.float32, tf1.random_normal_initializer(stddev=std))
    b = tf1.get_variable('biases', shape[-1:], tf.float32, tf1.constant_initializer(bias))
    tf1.add_to_collection(WEIGHT_DECAY, w)
    return {'w': w, 'b': b}


def conv(x, p, stride=1, padding='SAME', relu=True):
    y = tf.nn.bias_add(tf.nn.conv2d(x, p['w'], [1, stride, stride, 1], padding), p['b'])
    return tf.nn.relu(y) if relu else y


def fc(x, p, relu=True):
    y = tf.nn.bias_add(tf.matmul(x, p['w']), p['b'])
    return tf.nn.relu(y) if relu else y


def lrn(x, c):
    """Local response normalisation with the constants of config.LRN `c`."""
    return tf.nn.lrn(x, depth_radius=c.depth_radius, bias=c.bias, alpha=c.alpha, beta=c.beta)


def max_pool(x, k=3, stride=2, padding='VALID'):
    return tf.nn.max_pool2d(x, k, stride, padding)


def dropout(x, rate, training):
    """Inverted dropout while `training` (a bool or a scalar bool tensor); identity otherwise.

    A tensor `training` scales the rate to 0 instead of branching: no control flow in the
    graph, and at rate 0 the mask keeps everything and the scale is exactly 1.
    """
    if training is False or not rate:
        return x
    if training is not True:
        rate = tf.where(training, tf.constant(rate, tf.float32), tf.constant(0.0, tf.float32))
    return tf.nn.dropout(x, rate=rate)


def flatten(x):
    return tf.reshape(x, [-1, int(x.shape[1]) * int(x.shape[2]) * int(x.shape[3])])


def variables(shape, w_init, b_init=0.0, decay=True, units=None):
    """Like params() with any initialiser: {'w': 'weights' from `w_init`, 'b': 'biases' = b_init}.

    `units`: the number of biases when it is not shape[-1] (LeNet-5's packed C3 kernel).
    Safe under variable reuse (a second graph over the same variables, e.g. VGG's dense
    evaluation): a reused weight is registered for weight decay only once.
    """
    w = tf1.get_variable('weights', shape, tf.float32, w_init)
    b = tf1.get_variable('biases', [units] if units else shape[-1:], tf.float32,
                         tf1.constant_initializer(b_init))
    if decay and not any(w is v for v in tf1.get_collection(WEIGHT_DECAY)):
        tf1.add_to_collection(WEIGHT_DECAY, w)
    return {'w': w, 'b': b}


def avg_pool(x, k=2, stride=2, padding='VALID'):
    return tf.nn.avg_pool2d(x, k, stride, padding)
