"""Loss, error metrics and the paper's update rule.

The update is the paper's  v <- m v - wd lr w - lr dL/dw,  w <- w + v.  With the L2 term
wd/2 |w|^2 in the loss, TF's fused kernel ResourceApplyKerasMomentum (accum <- m accum - lr g;
w <- w + accum) is exactly that in one pass over the weights, accum being v: a change of
learning rate affects only new gradients, never the momentum already accumulated.
"""
from . import ops
from .tf_compat import tf, tf1


def loss(logits, labels, weight_decay, aux=()):
    """Mean softmax cross-entropy + weight_decay/2 * sum of squared weights (not biases).

    aux: (weight, logits) pairs whose cross-entropy is added with that weight.
    """
    return with_decay(cross_entropy(logits, labels, aux), weight_decay)


def cross_entropy(logits, labels, aux=()):
    def xent_of(z, name=None):
        return tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=z), name=name)
    xent = xent_of(logits, 'cross_entropy')
    for weight, z in aux:
        xent = xent + weight * xent_of(z)
    return xent


def with_decay(xent, weight_decay):
    """(xent + the L2 term of every registered weight, xent); the term is built once a graph."""
    decay = []
    for w in tf1.get_collection(ops.WEIGHT_DECAY):
        with tf1.colocate_with(w):
            decay.append(tf.nn.l2_loss(w))
    if not decay or not weight_decay:
        return tf.identity(xent, name='total_loss'), xent
    return tf.add(xent, weight_decay * tf.add_n(decay), name='total_loss'), xent


def errors(logits, labels, k=5):
    """(top-1 error, top-k error) of the batch, as fractions."""
    k = min(k, int(logits.shape[-1]))
    def err(n):
        hit = tf.nn.in_top_k(predictions=logits, targets=labels, k=n)
        return 1.0 - tf.reduce_mean(tf.cast(hit, tf.float32))
    return err(1), err(k)


def apply_paper_momentum(grads_and_vars, lr, momentum, global_step):
    """The update from given (gradient, variable) pairs, e.g. gradients averaged over replicas."""
    updates = []
    for g, v in grads_and_vars:
        with tf1.colocate_with(v):
            velocity = tf1.get_variable(v.op.name + '/momentum', v.shape, v.dtype.base_dtype,
                                        tf1.zeros_initializer(), trainable=False)
            updates.append(tf.raw_ops.ResourceApplyKerasMomentum(
                var=v.handle, accum=velocity.handle, lr=lr, grad=g, momentum=momentum,
                name='update_' + v.op.name.replace('/', '_')))
    with tf.control_dependencies(updates):
        return global_step.assign_add(1, name='paper_momentum')
