"""Loss, error metrics and the update rules: the paper's momentum, and RMSProp (Inception v3).

The update is the paper's  v <- m v - wd lr w - lr dL/dw,  w <- w + v.  With the L2 term
wd/2 |w|^2 in the loss, TF's fused kernel ResourceApplyKerasMomentum (accum <- m accum - lr g;
w <- w + accum) is exactly that in one pass over the weights, accum being v: a change of
learning rate affects only new gradients, never the momentum already accumulated.
"""
from dataclasses import dataclass

from alexnet_tf1.nn import ops
from alexnet_tf1.tf_compat import tf, tf1


@dataclass(frozen=True)
class Step:
    """How a training step turns gradients into an update; any model can take any of it.

    optimizer 'momentum' (the paper's rule below) or 'rmsprop' (TF's, as the Inception v3
    recipe ran it: ms <- decay ms + (1 - decay) g^2 from ms = 1, mom <- momentum mom +
    lr g / sqrt(ms + epsilon), w <- w - mom; decay 0.9, momentum 0.9, epsilon 1.0).
    label_smoothing: the target puts 1 - s on the label and s / K on every class (Szegedy et
    al. 2016, s = 0.1). clip_norm: gradients rescaled so that their global norm is at most it.
    """
    optimizer: str = 'momentum'
    momentum: float = 0.9
    rms_decay: float = 0.9
    epsilon: float = 1.0
    label_smoothing: float = 0.0
    clip_norm: float = None


def loss(logits, labels, weight_decay, aux=()):
    """Mean softmax cross-entropy + weight_decay/2 * sum of squared weights (not biases).

    aux: (weight, logits) pairs whose cross-entropy is added with that weight.
    """
    return with_decay(cross_entropy(logits, labels, aux), weight_decay)


def cross_entropy(logits, labels, aux=(), smoothing=0.0):
    def xent_of(z, name=None):
        if smoothing:
            k = int(z.shape[-1])
            target = tf.one_hot(labels, k) * (1.0 - smoothing) + smoothing / k
            per = tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=z)
        else:
            per = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=z)
        return tf.reduce_mean(per, name=name)
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


def clipped(grads_and_vars, clip_norm):
    """The gradients rescaled to a global norm of at most clip_norm (None: as they are)."""
    if not clip_norm:
        return grads_and_vars
    pairs = [(g, v) for g, v in grads_and_vars if g is not None]
    clipped_grads, _ = tf.clip_by_global_norm([g for g, _ in pairs], clip_norm)
    return list(zip(clipped_grads, [v for _, v in pairs]))


def apply(step, grads_and_vars, lr, global_step):
    """The update `step` names, from (gradient, variable) pairs."""
    if step.optimizer == 'momentum':
        return apply_paper_momentum(grads_and_vars, lr, step.momentum, global_step)
    if step.optimizer == 'rmsprop':
        return apply_rmsprop(grads_and_vars, lr, step, global_step)
    raise ValueError(f'unknown optimizer {step.optimizer!r}')


def apply_rmsprop(grads_and_vars, lr, step, global_step):
    updates = []
    for g, v in grads_and_vars:
        if g is None:
            continue
        with tf1.colocate_with(v):
            ms = tf1.get_variable(v.op.name + '/rms', v.shape, v.dtype.base_dtype,
                                  tf1.ones_initializer(), trainable=False)
            mom = tf1.get_variable(v.op.name + '/momentum', v.shape, v.dtype.base_dtype,
                                   tf1.zeros_initializer(), trainable=False)
            updates.append(tf.raw_ops.ResourceApplyRMSProp(
                var=v.handle, ms=ms.handle, mom=mom.handle, lr=lr, rho=step.rms_decay,
                momentum=step.momentum, epsilon=step.epsilon, grad=g,
                name='update_' + v.op.name.replace('/', '_')))
    with tf.control_dependencies(updates):
        return global_step.assign_add(1, name='rmsprop')
