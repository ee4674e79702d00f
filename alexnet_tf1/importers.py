"""Published pretrained weights in and out: Caffe's bvlc_alexnet as the widely shared
`bvlc_alexnet.npy` (caffe-tensorflow's conversion), and the Keras-applications VGG16 / VGG19
HDF5 files.

    cfg = caffe_alexnet_config()                          # Caffe's LRN constants, 227 input
    weights = load_caffe_alexnet_npy('bvlc_alexnet.npy', cfg)   # every name and shape checked
    g = graph.build(cfg, devices.resolve('cpu'), train=False)
    sess.run(tf1.global_variables_initializer()); assign_alexnet(sess, g.net, weights)
    sess.run(g.logits, {g.images: caffe_input(rgb_crops)})     # BGR, mean subtracted

Both files are in Caffe's input convention: BGR channel order, pixel values 0-255 minus a mean
(caffe_input; or pass rgb_input=True to the loaders to reverse conv1's input channels, so the
network takes RGB minus the same mean). A wrong layer name or shape raises WeightFileError,
whose one-line message names the layer and both shapes. The .npy is a pickle: it is read
with safe_pickle, which refuses any pickle that would run code.
"""
import os

import h5py
import numpy as np

from . import safe_pickle
from .config import CAFFE_LRN, ModelConfig, defaults_for
from .models import alexnet, vgg
from .tf_compat import tf


class WeightFileError(Exception):
    """A weight file that does not fit the model; the message is one line."""


# Caffe's ilsvrc_2012_mean.npy averaged per channel, BGR (Caffe's classification example
# prints 104.00698793, 116.66876762, 122.67891434). bvlc_alexnet was trained with the full
# 256x256 mean image; its per-channel average is the usual approximation, used here.
CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)
# keras.applications.vgg16.preprocess_input ('caffe' mode): the VGG authors' mean, BGR
KERAS_VGG_MEAN_BGR = (103.939, 116.779, 123.68)


def caffe_input(rgb, mean_bgr=CAFFE_MEAN_BGR):
    """float32 NHWC RGB in 0-255 -> Caffe's convention: BGR order, per-channel mean subtracted."""
    return (np.asarray(rgb, np.float32)[..., ::-1] - np.asarray(mean_bgr, np.float32))


def caffe_alexnet_config(**changes):
    """AlexNet as bvlc_alexnet ran it: Caffe's LRN (k = 1, alpha = 1e-4 / 5), 227 input,
    1000 classes; its inputs follow caffe_input (BGR, CAFFE_MEAN_BGR subtracted)."""
    return ModelConfig(model='alexnet', lrn=CAFFE_LRN, input_size=227, channels=3,
                       num_classes=1000, init_bias=0.1).with_(**changes)


# ---------------------------------------------------------------- Caffe AlexNet (.npy)

def caffe_alexnet_shapes(config=None):
    """{layer: (weights shape, biases shape)} of bvlc_alexnet.npy for `config`'s input and
    classes, from alexnet.TABLE: HWIO kernels with the two groups' outputs side by side."""
    config = config or caffe_alexnet_config()
    shapes, c, s = {}, config.channels, config.input_size
    for layer in alexnet.TABLE:
        units = 2 * layer.units if layer.units else config.num_classes
        if layer.kind == 'conv':
            fan_in = c if layer.reads in ('image', 'both') else c // 2   # a group reads its half
            shapes[layer.name] = ((layer.k, layer.k, fan_in, units), (units,))
            s = (s - layer.k) // layer.stride + 1 if layer.padding == 'VALID' else s
            s = (s - 3) // 2 + 1 if layer.pool else s
        else:
            fan_in = s * s * c          # pool5 flattened in (h, w, c) order, c over both groups
            s = 1
            shapes[layer.name] = ((fan_in, units), (units,))
        c = units
    return shapes


def load_caffe_alexnet_npy(path, config=None, rgb_input=False):
    """bvlc_alexnet.npy -> {layer: (weights, biases)} as float32, names and shapes checked.

    The file is np.save of a dict {'conv1': [W, b], ...}, W HWIO (fc: [in, out]); conv2/4/5
    are Caffe's two groups with their outputs side by side, group 0 first.
    """
    data = safe_pickle.load_npy(path)
    if isinstance(data, np.ndarray) and data.dtype == object and data.shape == ():
        data = data.item()
    if not isinstance(data, dict):
        raise WeightFileError(f'{path}: expected a pickled dict of layers, found '
                              f'{type(data).__name__}')
    return _check(path, {str(k): v for k, v in data.items()}, caffe_alexnet_shapes(config),
                  'conv1' if rgb_input else None)


def _check(path, data, shapes, flip=None):
    """{name: [w, b]} against {name: (w shape, b shape)}; one-line errors naming the layer."""
    unknown = sorted(set(data) - set(shapes))
    if unknown:
        raise WeightFileError(f"{path}: unknown layer {unknown[0]!r} (expected layers: "
                              f"{', '.join(shapes)})")
    out = {}
    for name, (w_shape, b_shape) in shapes.items():
        if name not in data:
            raise WeightFileError(f'{path}: layer {name!r} is missing')
        pair = data[name]
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise WeightFileError(f'{path}: layer {name!r} should hold [weights, biases]')
        w, b = (np.asarray(a, np.float32) for a in pair)
        for what, got, want in (('weights', w.shape, w_shape), ('biases', b.shape, b_shape)):
            if tuple(got) != tuple(want):
                raise WeightFileError(f'{path}: layer {name!r} {what} have shape {tuple(got)}, '
                                      f'the model needs {tuple(want)}')
        out[name] = (w[:, :, ::-1, :].copy() if name == flip else w, b)
    return out


def export_caffe_alexnet_npy(sess, net, path):
    """The net's variables as bvlc_alexnet.npy: towers' outputs side by side, tower 0 first."""
    values = sess.run(net.params)
    layers = {}
    for layer in alexnet.TABLE:
        towers = sorted(t for (name, t) in values if name == layer.name)
        layers[layer.name] = [np.concatenate([values[(layer.name, t)][k] for t in towers], -1)
                              for k in ('w', 'b')]
    with open(path, 'wb') as f:
        np.save(f, layers, allow_pickle=True)


def alexnet_towers(weights, net):
    """{layer: (w, b)} in the file's layout -> {(layer, tower): {'w', 'b'}} for net.params:
    each tower takes its slice of the outputs (fc8 whole on tower 0, or halves if split)."""
    out = {}
    for name, (w, b) in weights.items():
        towers = sorted(t for (n, t) in net.params if n == name)
        if not towers:
            raise WeightFileError(f'layer {name!r} is not in the model')
        per = w.shape[-1] // len(towers)
        for i, t in enumerate(towers):
            out[(name, t)] = {'w': w[..., i * per:(i + 1) * per], 'b': b[i * per:(i + 1) * per]}
    return out


def assign_alexnet(sess, net, weights):
    """Load load_caffe_alexnet_npy's result into alexnet.build's two-tower variables."""
    assign(sess, net.params, alexnet_towers(weights, net))


# ---------------------------------------------------------------- Keras VGG (.h5)

def keras_name(layer):
    """conv3_2 -> block3_conv2, pool3 -> block3_pool, fc6/fc7/fc8 -> fc1/fc2/predictions."""
    if layer.startswith('conv'):
        b, i = layer[4:].split('_')
        return f'block{b}_conv{i}'
    if layer.startswith('pool'):
        return f'block{layer[4:]}_pool'
    return {'fc6': 'fc1', 'fc7': 'fc2', 'fc8': 'predictions'}.get(layer, layer)


def keras_vgg_shapes(model='vgg-d', config=None):
    """{keras layer name: (kernel shape, bias shape)} for `config`'s input and classes."""
    config = config or defaults_for(model)
    shapes, c, window = {}, config.channels, config.input_size // 32
    for layer in vgg.table(model):
        if layer.kind == 'lrn':
            raise WeightFileError(f'{model} has an LRN layer: Keras never published it')
        if layer.kind == 'pool':
            continue
        units = layer.units or config.num_classes
        if layer.kind == 'conv':
            w = (layer.k, layer.k, c, units)
        else:
            w = (window * window * c if layer.name == 'fc6' else c, units)
        shapes[keras_name(layer.name)] = (w, (units,))
        c = units
    return shapes


def load_keras_vgg_h5(path, model='vgg-d', config=None, rgb_input=False):
    """Keras-applications VGG16 (vgg-d) / VGG19 (vgg-e) weights -> {our layer: (w, b)}.

    One group per layer; its 'weight_names' attribute (or, without it, the datasets found
    under the group) names the arrays, whatever the Keras version called them
    ('block1_conv1_W_1:0', 'kernel:0', 'block1_conv1/kernel:0'): the kernel is the 4-D or
    2-D array, the bias the 1-D one. fc1's rows are pool5 flattened channels-last, (h, w, c),
    as vgg.build flattens. A full-model file's 'model_weights' group is read the same way.
    """
    shapes = keras_vgg_shapes(model, config)
    try:
        f = h5py.File(path, 'r')
    except OSError as e:
        raise WeightFileError(f'{path}: not an HDF5 file ({e})') from None
    with f:
        root = f['model_weights'] if 'model_weights' in f and 'layer_names' not in f.attrs else f
        names = ([_str(n) for n in root.attrs['layer_names']] if 'layer_names' in root.attrs
                 else list(root.keys()))
        data = {}
        for name in names:
            if name not in root:
                raise WeightFileError(f'{path}: layer {name!r} is listed but has no group')
            arrays = _layer_arrays(root[name])
            if not arrays:
                continue            # input, pooling, flatten
            kernels = [a for a in arrays if a.ndim in (2, 4)]
            biases = [a for a in arrays if a.ndim == 1]
            if len(kernels) != 1 or len(biases) != 1 or len(arrays) != 2:
                raise WeightFileError(f'{path}: layer {name!r} holds arrays of shapes '
                                      f'{[a.shape for a in arrays]}, expected one kernel and '
                                      f'one bias')
            data[name] = [kernels[0], biases[0]]
    checked = _check(path, data, shapes, 'block1_conv1' if rgb_input else None)
    ours = {keras_name(l.name): l.name for l in vgg.table(model) if l.kind in ('conv', 'fc')}
    return {ours[k]: v for k, v in checked.items()}


def _str(s):
    return s.decode('utf8') if isinstance(s, bytes) else str(s)


def _layer_arrays(group):
    if 'weight_names' in group.attrs:
        names = [_str(n) for n in group.attrs['weight_names']]
        return [np.asarray(group[n]) for n in names]
    found = []
    group.visititems(lambda n, obj: found.append(np.asarray(obj))
                     if isinstance(obj, h5py.Dataset) else None)
    return found


def export_keras_vgg_h5(sess, net, path, style='keras1'):
    """The net's variables as a Keras-applications VGG weight file.

    style 'keras1': the published vgg16/vgg19 *_tf_dim_ordering_tf_kernels.h5 naming
    ('block1_conv1_W_1:0'); 'keras2': Keras 2 save_weights' ('block1_conv1/kernel:0').
    """
    values = sess.run(net.params)
    layer_names = ['input_1']
    with h5py.File(path, 'w') as f:
        for layer in net.end_points:
            if layer.startswith('lrn'):
                raise WeightFileError('an LRN layer has no Keras equivalent')
            if layer == 'fc6':
                f.create_group('flatten').attrs['weight_names'] = np.array([], 'S')
                layer_names.append('flatten')
            name = keras_name(layer)
            layer_names.append(name)
            g = f.create_group(name)
            p = values.get((layer, 0))
            if p is None:
                g.attrs['weight_names'] = np.array([], 'S')
                continue
            wn = ([f'{name}_W_1:0', f'{name}_b_1:0'] if style == 'keras1'
                  else [f'{name}/kernel:0', f'{name}/bias:0'])
            g.attrs['weight_names'] = np.array([n.encode('utf8') for n in wn])
            g.create_dataset(wn[0], data=p['w'])
            g.create_dataset(wn[1], data=p['b'])
        f.create_group('input_1').attrs['weight_names'] = np.array([], 'S')
        f.attrs['layer_names'] = np.array([n.encode('utf8') for n in layer_names])
        f.attrs['backend'] = b'tensorflow'
        f.attrs['keras_version'] = b'2.0.0' if style == 'keras2' else b'1.2.2'


def assign_vgg(sess, net, weights):
    """Load load_keras_vgg_h5's result into vgg.build's variables."""
    assign(sess, net.params, {(name, 0): {'w': w, 'b': b} for name, (w, b) in weights.items()})


# ---------------------------------------------------------------- both

def assign(sess, params, arrays):
    """Load {(layer, tower): {'w', 'b'}} NumPy arrays into the variables of `params`; every
    variable must get an array of its exact shape, and every array a variable."""
    extra = sorted(set(arrays) - set(params))
    if extra:
        raise WeightFileError(f'layer {extra[0][0]!r} (tower {extra[0][1]}) is not in the model')
    for key, p in params.items():
        if key not in arrays:
            raise WeightFileError(f'no weights for layer {key[0]!r} (tower {key[1]})')
        for k, var in p.items():
            value = arrays[key][k]
            if tuple(value.shape) != tuple(var.shape):
                raise WeightFileError(f'layer {key[0]!r} tower {key[1]} {k}: the file gives '
                                      f'{tuple(value.shape)}, the model has {tuple(var.shape)}')
    with sess.graph.as_default():       # feeds each variable's initializer: no new ops
        for key, p in params.items():
            for k, var in p.items():
                var.load(np.asarray(arrays[key][k], np.float32), sess)


def published_config(config):
    """The configuration a model takes published weights with: bvlc_alexnet's LRN for AlexNet."""
    return config.with_(lrn=CAFFE_LRN) if config.model == 'alexnet' else config


# Simonyan and Zisserman 2015, section 3.1: the deeper nets start from a trained A's "first four
# convolutional layers and the last three fully-connected layers" (by name: D's conv1_1,
# conv2_1, conv3_1, conv3_2 are A's; D's conv1_2, conv2_2, conv3_3, ... stay random).
VGG_FROM_A = ('conv1_1', 'conv2_1', 'conv3_1', 'conv3_2', 'fc6', 'fc7', 'fc8')


def is_checkpoint(path):
    """A train directory or a checkpoint prefix of this project, not a published weight file."""
    return os.path.isdir(path) or os.path.exists(path + '.index')


def load_checkpoint_layers(sess, net, config, path):
    """--init-from a VGG checkpoint of this project into a VGG `net`: VGG_FROM_A's layers, each
    only where the source has it with the same shapes (fc8 is left out for another class
    count). Returns (layers loaded, layers left at their initialisation)."""
    from . import checkpoints
    prefix = checkpoints.resolve(checkpoint=path)
    state = checkpoints.read_state(prefix)
    if not (config.model.startswith('vgg') and state['model'].startswith('vgg')):
        raise WeightFileError(f"--init-from a checkpoint: VGG from VGG (the paper's way to "
                              f"start B-E from A); {prefix} is {state['model']}, the model "
                              f"{config.model}")
    source = ModelConfig.from_dict(state['config'])
    if source.input_size != config.input_size:
        raise WeightFileError(f'{prefix} was trained at {source.input_size} px, the model takes '
                              f'{config.input_size}: fc6 would not fit')
    reader = tf.train.load_checkpoint(prefix)
    have = reader.get_variable_to_shape_map()
    arrays, loaded = {}, []
    for (name, tower), p in net.params.items():
        if name not in VGG_FROM_A or not all(
                have.get(v.op.name) == list(v.shape) for v in p.values()):
            continue
        arrays[(name, tower)] = {k: reader.get_tensor(v.op.name) for k, v in p.items()}
        loaded.append(name)
    assign(sess, {k: net.params[k] for k in arrays}, arrays)
    return loaded, [name for name, _ in net.params if name not in loaded]


def load_into(sess, net, config, path):
    """--init-from: bvlc_alexnet.npy (alexnet), a Keras VGG16/19 .h5 (vgg-d, vgg-e), or a VGG
    checkpoint or train dir of this project (load_checkpoint_layers) into `net`.

    conv1's input channels are reversed so the net takes RGB like every other path of this
    project. When the data has other classes than the file's 1000, the last layer keeps its
    initialisation (fine-tuning). Returns the names of the layers left out.
    """
    if is_checkpoint(path):
        return load_checkpoint_layers(sess, net, config, path)[1]
    full = config.with_(num_classes=1000)
    if config.model == 'alexnet':
        weights = load_caffe_alexnet_npy(path, full, rgb_input=True)
    elif config.model in ('vgg-d', 'vgg-e'):
        weights = load_keras_vgg_h5(path, config.model, full, rgb_input=True)
    else:
        raise WeightFileError(f'no published weight format is read for {config.model}; '
                              f'--init-from takes alexnet (bvlc_alexnet.npy), vgg-d or vgg-e (.h5)')
    skipped = []
    if config.num_classes != 1000:
        skipped.append('fc8')
        weights.pop('fc8')
    arrays = alexnet_towers(weights, net) if config.model == 'alexnet' else \
        {(name, 0): {'w': w, 'b': b} for name, (w, b) in weights.items()}
    assign(sess, {k: p for k, p in net.params.items() if k[0] not in skipped}, arrays)
    return skipped
