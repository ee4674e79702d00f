"""Keras-applications VGG16 / VGG19 weight files: the published Keras 1 HDF5
(vgg16_weights_tf_dim_ordering_tf_kernels.h5: groups with 'weight_names'), Keras 2
save_weights (the same, 'block1_conv1/kernel:0') and Keras 3 `.weights.h5` (layers/<layer>/
vars/0, 1). Their input is Caffe's convention, BGR minus the VGG mean. Only arrays are read
from the file (h5py), nothing that could run.
"""
import re

import h5py
import numpy as np

from alexnet_tf1.config import defaults_for
from alexnet_tf1.models import vgg
from alexnet_tf1.weights.files import WeightFileError, check_layers


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
    config = config or defaults_for(model)
    keras_vgg_shapes(model, config.with_(num_classes=1))     # refuses an LRN model at once
    layers = read_h5(path, lambda f: _keras3_layers(f, model) if _is_keras3(f)
                     else _keras2_layers(path, f))
    data = {}
    for name, arrays in layers:
        if not arrays:
            continue            # input, pooling, flatten
        kernels = [a for a in arrays if a.ndim in (2, 4)]
        biases = [a for a in arrays if a.ndim == 1]
        if len(kernels) != 1 or len(biases) != 1 or len(arrays) != 2:
            raise WeightFileError(f'{path}: layer {name!r} holds arrays of shapes '
                                  f'{[a.shape for a in arrays]}, expected one kernel '
                                  f'and one bias')
        data[name] = (kernels[0].astype(np.float32), biases[0].astype(np.float32))
    if config.num_classes is None:        # as many classes as the file's own classifier
        config = config.with_(num_classes=int(data['predictions'][1].shape[0])
                              if 'predictions' in data else 1000)
    checked = check_layers(path, data, keras_vgg_shapes(model, config),
                           'block1_conv1' if rgb_input else None)
    ours = {keras_name(l.name): l.name for l in vgg.table(model) if l.kind in ('conv', 'fc')}
    return {ours[k]: v for k, v in checked.items()}


def read_h5(path, read):
    """read(f) of the HDF5 file at path, whose arrays it loads; a missing, foreign or damaged
    file is one line."""
    try:
        f = h5py.File(path, 'r')
    except OSError as e:
        raise WeightFileError(f'{path}: not an HDF5 file ({e})') from None
    try:
        with f:
            return read(f)
    except (OSError, KeyError, ValueError) as e:    # h5py's errors on a damaged file
        raise WeightFileError(f'{path}: damaged HDF5 file ({e})') from None


def vgg_variant(path):
    """'vgg-d' or 'vgg-e' by the number of conv layers in a Keras VGG file, None otherwise."""
    try:
        with h5py.File(path, 'r') as f:
            if _is_keras3(f):
                names = [_str(g['vars'].attrs.get('name', k)) for k, g in f['layers'].items()
                         if isinstance(g, h5py.Group) and 'vars' in g and len(g['vars'])]
            else:
                names = [n for n, arrays in _keras2_layers(path, f) if arrays]
    except (OSError, KeyError, ValueError, WeightFileError):
        return None
    convs = sum('conv' in n for n in names)
    return {13: 'vgg-d', 16: 'vgg-e'}.get(convs)


def _keras2_layers(path, f):
    """[(layer name, arrays)] of a Keras 1/2 HDF5 file, in its own order."""
    root = f['model_weights'] if 'model_weights' in f and 'layer_names' not in f.attrs else f
    names = ([_str(n) for n in root.attrs['layer_names']] if 'layer_names' in root.attrs
             else list(root.keys()))
    out = []
    for name in names:
        if name not in root:
            raise WeightFileError(f'{path}: layer {name!r} is listed but has no group')
        out.append((name, _layer_arrays(root[name])))
    return out


def _is_keras3(f):
    layers = f.get('layers')
    return isinstance(layers, h5py.Group) and any(
        isinstance(g, h5py.Group) and 'vars' in g for g in layers.values())


def _keras3_layers(f, model):
    """[(Keras layer name, arrays)] of a Keras 3 .weights.h5. Keras 3 files each layer under
    its class name in model order (conv2d, conv2d_1, ..., dense, dense_1); recent versions
    also store the layer's own name on 'vars'. Without it the n-th conv2d is VGG's n-th conv."""
    ours = [keras_name(l.name) for l in vgg.table(model) if l.kind in ('conv', 'fc')]
    by_kind = {'conv2d': [n for n in ours if 'conv' in n],
               'dense': [n for n in ours if 'conv' not in n]}
    out = []
    for key, g in f['layers'].items():
        if not isinstance(g, h5py.Group) or 'vars' not in g:
            continue
        v = g['vars']
        arrays = [np.asarray(v[k]) for k in sorted(v.keys(), key=int)]
        name = _str(v.attrs['name']) if 'name' in v.attrs else None
        m = re.fullmatch(r'(conv2d|dense)(?:_(\d+))?', key)
        if name is None and m and arrays:
            i = int(m.group(2) or 0)
            names = by_kind[m.group(1)]
            name = names[i] if i < len(names) else key
        out.append((name or key, arrays))
    return out


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


def vgg_params(weights):
    return {(name, 0): {'w': w, 'b': b} for name, (w, b) in weights.items()}
