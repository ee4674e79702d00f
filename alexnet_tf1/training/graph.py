"""One model's whole graph: inputs, towers, loss, errors and (optionally) the update step.

With several replicas (placement.replicas) the fed batch is split across them, each replica
builds the whole model over the same variables (replica 0 creates them, on its own tower
devices), and the update sees the gradient of the mean loss over the whole batch, as one
model on one big batch would get it; the weight-decay term is built once.

precision 'bf16': the model computes in bfloat16 from the scaled input on (nn/ops.py casts
the fp32 variables where it reads them), and its logits are cast back to fp32, so the softmax,
the loss, the errors, weight decay and the update are fp32, as are the variables.
"""
import contextlib
from dataclasses import dataclass, replace

from alexnet_tf1 import models

from alexnet_tf1.training import objective

from alexnet_tf1.nn import cpu_kernels, ops
from alexnet_tf1.errors import UnknownName
from alexnet_tf1.tf_compat import tf, tf1


@dataclass
class ModelGraph:
    graph: tf.Graph
    images: tf.Tensor       # float32 placeholder [batch, size, size, channels]
    labels: tf.Tensor       # int32 placeholder [batch]
    training: tf.Tensor     # bool placeholder, default False: dropout on when True
    lr: tf.Tensor           # float32 placeholder, the learning rate of this step
    net: object             # models.<name>.Net of replica 0
    logits: tf.Tensor       # the whole batch's, every replica's rows in order
    probs: tf.Tensor
    total_loss: tf.Tensor
    xent: tf.Tensor
    top1: tf.Tensor
    top5: tf.Tensor
    global_step: tf.Variable
    train_op: object = None
    grads: list = None      # (gradient averaged over replicas, variable) pairs the update applies
    replicas: int = 1


PRECISIONS = {'fp32': tf.float32, 'bf16': tf.bfloat16}


def build(config, placement, weight_decay=5e-4, momentum=0.9, seed=0, train=True, update=None,
          device_fn=None, train_layers=None, lr_mult=None, step=None, precision='fp32'):
    """update(grads_and_vars, lr, global_step) -> train op; default the paper's momentum step.

    device_fn: an outer device function the towers' devices merge into (cluster.py's
    replica_device_setter: variables to the ps tasks, ops to this worker).
    train_layers: the layers the update may change (fine-tuning); the others get no gradient,
    no momentum and are never written. lr_mult: {layer: (weights x, biases x)}, Caffe's
    lr_mult: that layer's step is the rate times it. step: objective.Step, the optimizer,
    label smoothing and gradient clipping (default: the paper's momentum, none of the others).
    precision: 'fp32' or 'bf16' (module docstring); bf16 on a CPU without bf16 arithmetic is a
    cpu_kernels.PrecisionError, raised before anything is built."""
    dtype = PRECISIONS[precision]
    if dtype == tf.bfloat16 and placement.kind == 'cpu':
        cpu_kernels.check_bf16()
    step = step or objective.Step(momentum=momentum)
    graph = tf.Graph()
    replicas = placement.replicas
    n = len(replicas)
    with graph.as_default(), tf1.device(device_fn) if device_fn else contextlib.nullcontext():
        tf1.set_random_seed(seed)
        with tf1.device(placement.towers[0]):
            images = tf1.placeholder(
                tf.float32, [None, config.input_size, config.input_size, config.channels], 'images')
            labels = tf1.placeholder(tf.int32, [None], 'labels')
            training = tf1.placeholder_with_default(False, [], 'training')
            lr = tf1.placeholder_with_default(0.0, [], 'lr')
            global_step = tf1.train.get_or_create_global_step()
            # one read of the step for every dropout mask (ops.dropout), here on tower 0 beside
            # the step, so that no tower's own ops read a variable of another device
            tf1.add_to_collection(ops.STEP_SEED, tf.cast(global_step.read_value(), tf.int64,
                                                          name='step_seed'))
            scaled = images if config.input_scale == 1 else tf.multiply(
                images, config.input_scale, name='scaled_images')
            if dtype != tf.float32:
                scaled = tf.cast(scaled, dtype, name='model_images')
            xs, ys = _split(scaled, labels, n)
        nets, xents, bn_updates = [], [], []
        for r, towers in enumerate(replicas):
            with _replica_scope(r):
                # an inference graph gets no training-only parts (GoogLeNet's auxiliary heads)
                net = models.get(config.model).build(xs[r], config, towers,
                                                     training if train else False)
                with tf1.device(towers[0]):
                    if dtype != tf.float32:
                        net = fp32_logits(net)
                    # a model may train on other logits than it predicts with (LeNet-5's RBF
                    # criterion) and add weighted auxiliary heads (GoogLeNet's, 0.3 each)
                    train_logits = getattr(net, 'loss_logits', None)
                    xents.append(objective.cross_entropy(
                        net.logits if train_logits is None else train_logits, ys[r],
                        getattr(net, 'aux_logits', ()), step.label_smoothing))
            nets.append(net)
            if r == 0:      # the moving averages follow replica 0's batch, as one model's would
                bn_updates = list(tf1.get_collection(ops.BN_UPDATES))
        with tf1.device(placement.towers[0]):
            if n == 1:
                logits, xent = nets[0].logits, xents[0]
            else:
                logits = tf.concat([net.logits for net in nets], 0, name='all_logits')
                xent = tf.add_n(xents, name='sum_cross_entropy') / n
            total, xent = objective.with_decay(xent, weight_decay)
            top1, top5 = objective.errors(logits, labels)
            probs = tf.nn.softmax(logits, name='probs')
        train_op = grads = None
        if train:
            # one gradient call: each replica's backward runs beside its forward ops, and the
            # replicas' parts of a variable's gradient are summed at the variable
            for names, what in ((train_layers or (), '--train-layers'),
                                (lr_mult or {}, '--lr-mult')):
                check_layers(nets[0], list(names), what, config.model)
            layer_of = layers_of(nets[0])
            var_list = trainable(layer_of, train_layers)
            grads = list(zip(tf1.gradients(total, var_list, colocate_gradients_with_ops=True),
                             var_list))
            grads = objective.clipped(_scaled(grads, layer_of, lr_mult or {}), step.clip_norm)
            with tf.control_dependencies(bn_updates):   # batch norm's averages: in the step
                if update is None:
                    train_op = objective.apply(step, grads, lr, global_step)
                else:
                    train_op = update(grads, lr, global_step)
    return ModelGraph(graph, images, labels, training, lr, nets[0], logits, probs, total, xent,
                      top1, top5, global_step, train_op, grads, n)


def fp32_logits(net):
    """The net with its logits (and the loss's, and the auxiliary heads') in fp32: cast from
    a bf16 model's, as they are from an fp32 one's."""
    def fp32(z, name):
        return z if z.dtype == tf.float32 else tf.cast(z, tf.float32, name=name)
    changes = {'logits': fp32(net.logits, 'logits_fp32')}
    if getattr(net, 'loss_logits', None) is not None:
        changes['loss_logits'] = fp32(net.loss_logits, 'loss_logits_fp32')
    if getattr(net, 'aux_logits', ()):
        changes['aux_logits'] = tuple((w, fp32(z, f'aux{i}_logits_fp32'))
                                      for i, (w, z) in enumerate(net.aux_logits))
    return replace(net, **changes)


def layers_of(net):
    """{variable: (layer name, 'w' or 'b')} from the net's params (batch norm's beta is a
    bias: Caffe's lr_mult gives it the biases' multiplier)."""
    return {v.ref(): (name, 'b' if key.rsplit('/', 1)[-1] in ('b', 'beta') else 'w')
            for (name, _), p in net.params.items() for key, v in p.items()}


def check_layers(net, names, what, model):
    known = list(dict.fromkeys(name for name, _ in net.params))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UnknownName(f"{what}: {model} has no layer {unknown[0]!r}; its layers: "
                          f"{', '.join(known)}")


def trainable(layer_of, train_layers):
    variables = tf1.trainable_variables()
    if train_layers is None:
        return variables
    return [v for v in variables if layer_of.get(v.ref(), (None,))[0] in train_layers]


def _scaled(grads, layer_of, lr_mult):
    out = []
    for g, v in grads:
        name, kind = layer_of.get(v.ref(), (None, 'w'))
        m = lr_mult.get(name, (1.0, 1.0))[kind == 'b']
        if g is not None and m != 1:
            with tf1.colocate_with(v):
                g = g * m
        out.append((g, v))
    return out


def _split(images, labels, n):
    """n near-equal parts of the batch (the first ones one larger when it does not divide)."""
    if n == 1:
        return [images], [labels]
    size = tf.shape(images)[0]
    sizes = tf.stack([(size + n - 1 - r) // n for r in range(n)])
    return tf.split(images, sizes, 0, name='replica_images'), \
        tf.split(labels, sizes, 0, name='replica_labels')


def _replica_scope(r):
    if r == 0:
        return contextlib.nullcontext()
    scope = contextlib.ExitStack()
    scope.enter_context(tf1.variable_scope(tf1.get_variable_scope(), reuse=True,
                                           auxiliary_name_scope=False))
    scope.enter_context(tf.name_scope(f'replica{r}'))
    return scope
