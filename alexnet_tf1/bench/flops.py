"""Forward FLOPs per image, counted from a built graph's own layer shapes.

Multiply-adds x 2 of every convolution and matrix product the logits depend on:
conv 2 * Ho * Wo * Cout * k_h * k_w * Cin_per_group (a grouped or per-tower convolution reads
only its own group's input maps: the filter's third dimension), fc 2 * in * out. A convolution
computed by Winograd's algorithm (winograd.py) counts as the direct one it equals. ReLU, LRN,
pooling, bias adds, softmax and the loss are left out, as in the papers' figures. Training is
counted as 3x forward (forward, gradient w.r.t. inputs, gradient w.r.t. weights).

Works on any registered model (it walks the graph that graph.build makes, not a table) and on
Keras models (keras_forward_flops walks their layers), so our figure and the Keras twins'
figures come from the same rule.
"""
from alexnet_tf1 import devices
from alexnet_tf1.training import graph as graph_mod
from alexnet_tf1.nn import winograd
from alexnet_tf1 import config as config_mod

TRAIN_FACTOR = 3

_CONV_OPS = ('Conv2D', '_FusedConv2D')
_DEPTHWISE_OPS = ('DepthwiseConv2dNative',)
_MATMUL_OPS = ('MatMul', '_FusedMatMul', 'BatchMatMul', 'BatchMatMulV2', 'BatchMatMulV3')


def _dims(shape):
    return shape.as_list() if hasattr(shape, 'as_list') else list(shape)


def op_flops(op):
    """Forward FLOPs per image of one graph op (0 for ops that are not convolutions or
    matrix products). Shapes must be static except the batch dimension."""
    if op.type in _CONV_OPS or op.type in _DEPTHWISE_OPS:
        fmt = op.get_attr('data_format').decode() if 'data_format' in op.node_def.attr else 'NHWC'
        out = _dims(op.outputs[0].shape)
        kh, kw, cin_per_group, cout = _dims(op.inputs[1].shape)
        ho, wo = (out[1], out[2]) if fmt == 'NHWC' else (out[2], out[3])
        if op.type in _DEPTHWISE_OPS:       # filter [kh, kw, cin, multiplier]: one input map each
            return 2 * ho * wo * cin_per_group * cout * kh * kw
        return 2 * ho * wo * cout * kh * kw * cin_per_group
    if op.type in _MATMUL_OPS:
        direct = dict(op.graph.get_collection(winograd.DIRECT_FLOPS)).get(op.name)
        if direct is not None:
            return direct
        a, b = _dims(op.inputs[0].shape), _dims(op.inputs[1].shape)
        if op.type in ('MatMul', '_FusedMatMul'):
            ta = op.get_attr('transpose_a') if 'transpose_a' in op.node_def.attr else False
            tb = op.get_attr('transpose_b') if 'transpose_b' in op.node_def.attr else False
            k = a[0] if ta else a[1]
            n = b[0] if tb else b[1]
            # [batch, in] x [in, out]: the rows are the batch, so per image 2 * in * out
            return 2 * k * n
        # batched products: everything but the batch dimension counts per image
        ax = op.get_attr('adj_x') if 'adj_x' in op.node_def.attr else False
        ay = op.get_attr('adj_y') if 'adj_y' in op.node_def.attr else False
        m, k = (a[-1], a[-2]) if ax else (a[-2], a[-1])
        n = b[-2] if ay else b[-1]
        inner = 1
        for d in a[1:-2]:
            inner *= d
        return 2 * inner * m * k * n
    return 0


def _ancestors(tensors):
    """Every op the given tensors depend on (data inputs and control inputs)."""
    seen, stack = set(), [t.op for t in tensors]
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return seen


def graph_flops(tensors):
    """{op name: forward FLOPs per image} of the convolutions and products `tensors` need."""
    out = {}
    for op in _ancestors(tensors):
        f = op_flops(op)
        if f:
            out[op.name] = f
    return out


def forward_flops(model='alexnet', config=None, by_layer=False):
    """Forward FLOPs per image of a registered model: graph.build on the two logical CPUs,
    then the convolutions and products the logits depend on (auxiliary heads that feed only
    the training loss are not counted). `config` defaults to the model's own defaults
    (config.defaults_for); `model` wins over the config's. by_layer=True returns
    (total, {op: flops})."""
    if config is None:
        config = default_config(model)
    elif model and config.model != model:
        config = config.with_(model=model)
    mg = graph_mod.build(config, devices.resolve('cpu'), train=False)
    per_op = graph_flops([mg.logits])
    total = sum(per_op.values())
    return (total, per_op) if by_layer else total


def default_config(model):
    """The model's own configuration (config.defaults_for: input size, channels, classes,
    init, LRN), else ModelConfig(model=model)."""
    defaults_for = getattr(config_mod, 'defaults_for', None)
    if defaults_for is not None and model in getattr(config_mod, 'MODEL_DEFAULTS', {}):
        return defaults_for(model)
    return config_mod.ModelConfig(model=model)


def train_flops(model='alexnet', config=None):
    return TRAIN_FACTOR * forward_flops(model, config)


def keras_forward_flops(model):
    """Forward FLOPs per image of a Keras model, by the same rule, from its layers' shapes:
    Conv2D (groups honoured), DepthwiseConv2D and Dense layers, nested models included."""
    import keras
    total = 0
    for layer in _keras_layers(model):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw, cin, mult = layer.kernel.shape
            ho, wo = _keras_hw(layer)
            total += 2 * ho * wo * cin * mult * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin_per_group, cout = layer.kernel.shape
            ho, wo = _keras_hw(layer)
            total += 2 * ho * wo * cout * kh * kw * cin_per_group
        elif isinstance(layer, keras.layers.Dense):
            fin, fout = layer.kernel.shape
            total += 2 * fin * fout
    return int(total)


def _keras_layers(model):
    import keras
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _keras_layers(layer)
        else:
            yield layer


def _keras_hw(layer):
    shape = layer.output.shape
    if getattr(layer, 'data_format', 'channels_last') == 'channels_first':
        return shape[2], shape[3]
    return shape[1], shape[2]
