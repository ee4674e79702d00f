"""Caffe's published nets as converted .npy files: bvlc_alexnet, bvlc_reference_caffenet
(the same layers) and bvlc_googlenet.

The layout is caffe-tensorflow's: np.save of a dict layer -> [weights, biases] (the widely
shared bvlc_alexnet.npy) or layer -> {'weights', 'biases'} (caffe-tensorflow's own output);
kernels HWIO, fully-connected rows in (h, w, c) order, a grouped conv's outputs side by side
(group 0 first); the input is Caffe's, BGR. Layer names are Caffe's with '/' turned to '_'
(inception_3a/1x1 -> inception_3a_1x1). The file is a pickle: safe_pickle reads it and
refuses any pickle that would run code.
"""
import pickle

import numpy as np

from alexnet_tf1.data import safe_pickle
from alexnet_tf1.config import CAFFE_LRN, ModelConfig
from alexnet_tf1.models import alexnet, googlenet
from alexnet_tf1.weights.files import WeightFileError, check_layers, pair


def read_layers(path):
    """{layer name: (weights, biases)} of a converted Caffe .npy, unchecked."""
    try:
        data = safe_pickle.load_npy(path)
    except OSError as e:
        raise WeightFileError(f'{path}: cannot be read ({e.strerror or e})') from None
    except safe_pickle.RefusedPickle as e:      # already names the file and what it tried
        raise WeightFileError(str(e)) from None
    except (ValueError, EOFError, pickle.UnpicklingError) as e:
        raise WeightFileError(f'{path}: not a readable .npy weight file ({e})') from None
    if isinstance(data, np.ndarray) and data.dtype == object and data.shape == ():
        data = data.item()
    if not isinstance(data, dict):
        raise WeightFileError(f'{path}: expected a pickled dict of layers, found '
                              f'{type(data).__name__}')
    named = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in data.items()}
    return {name: pair(path, name, v) for name, v in named.items()}


# ---------------------------------------------------------------- AlexNet, CaffeNet

def caffe_alexnet_config(model='alexnet', **changes):
    """AlexNet (or CaffeNet) as Caffe ran it: its LRN (k = 1, alpha = 1e-4 / 5) over all maps
    of a layer, the tower boundary included; 227 input, 1000 classes."""
    return ModelConfig(model=model, lrn=CAFFE_LRN, lrn_span='all', input_size=227, channels=3,
                       num_classes=1000, init_bias=0.1).with_(**changes)


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


def file_classes(data, layer):
    """The class count of a file's classifier layer (its biases), 1000 if it has none."""
    return int(data[layer][1].shape[0]) if layer in data else 1000


def load_caffe_alexnet_npy(path, config=None, rgb_input=False):
    """bvlc_alexnet.npy (or bvlc_reference_caffenet.npy) -> {layer: (weights, biases)},
    names and shapes checked against `config` (num_classes None: as many as the file's fc8).
    rgb_input: reverse conv1's input channels (BGR -> RGB)."""
    data = read_layers(path)
    config = config or caffe_alexnet_config()
    if config.num_classes is None:
        config = config.with_(num_classes=file_classes(data, 'fc8'))
    hint = '; a bvlc_googlenet file needs --model googlenet'
    return check_layers(path, data, caffe_alexnet_shapes(config), 'conv1' if rgb_input else None,
                        hint)


def export_caffe_alexnet_npy(sess, net, path):
    """The net's variables as bvlc_alexnet.npy: towers' outputs side by side, tower 0 first."""
    values = sess.run(net.params)
    layers = {}
    for layer in alexnet.TABLE:
        towers = sorted(t for (name, t) in values if name == layer.name)
        layers[layer.name] = [np.concatenate([values[(layer.name, t)][k] for t in towers], -1)
                              for k in ('w', 'b')]
    _save(path, layers)


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


# ---------------------------------------------------------------- GoogLeNet

BRANCHES = ('1x1', '3x3_reduce', '3x3', '5x5_reduce', '5x5', 'pool_proj')
_STEM = {'conv1': 'conv1_7x7_s2', 'conv2_reduce': 'conv2_3x3_reduce', 'conv2': 'conv2_3x3',
         'classifier': 'loss3_classifier'}


def googlenet_caffe_names():
    """{bvlc_googlenet layer: (our layer, key prefix)}: inception_3a_3x3 -> ('inception_3a',
    '3x3/'), conv1_7x7_s2 -> ('conv1', ''), loss1_fc -> ('aux1_fc', '')."""
    names = {caffe: (ours, '') for ours, caffe in _STEM.items()}
    for row in googlenet.TABLE:
        if isinstance(row, googlenet.Inception):
            names.update({f'{row.name}_{b}': (row.name, f'{b}/') for b in BRANCHES})
    for i in (1, 2):
        for part in ('conv', 'fc', 'classifier'):
            names[f'loss{i}_{part}'] = (f'aux{i}_{part}', '')
    return names


def googlenet_shapes(num_classes=1000, aux=False):
    """{bvlc_googlenet layer: (weights shape, biases shape)} from googlenet.TABLE."""
    shapes, c = {}, 3
    def add(name, k, cin, cout):
        shapes[name] = ((k, k, cin, cout) if k else (cin, cout), (cout,))
    for row in googlenet.TABLE:
        if isinstance(row, googlenet.Inception):
            for b, k, cin, cout in (('1x1', 1, c, row.b1x1), ('3x3_reduce', 1, c, row.b3x3_reduce),
                                    ('3x3', 3, row.b3x3_reduce, row.b3x3),
                                    ('5x5_reduce', 1, c, row.b5x5_reduce),
                                    ('5x5', 5, row.b5x5_reduce, row.b5x5),
                                    ('pool_proj', 1, c, row.pool_proj)):
                add(f'{row.name}_{b}', k, cin, cout)
            c = row.out
            if row.aux and aux:     # avgpool 5x5/3 of 14x14 -> 4x4, 1x1 conv 128, fc 1024
                i = row.aux[-1]
                add(f'loss{i}_conv', 1, c, 128)
                add(f'loss{i}_fc', 0, 4 * 4 * 128, 1024)
                add(f'loss{i}_classifier', 0, 1024, num_classes)
        elif row.kind == 'conv':
            add(_STEM[row.name], row.k, c, row.units)
            c = row.units
        elif row.kind == 'fc':
            add(_STEM[row.name], 0, c, num_classes)
    return shapes


def load_caffe_googlenet_npy(path, num_classes=None, rgb_input=False):
    """bvlc_googlenet.npy -> {(our layer, 0): {key: array}} for googlenet.build's params, names
    and shapes checked (num_classes None: as many as the file's classifier); the auxiliary
    heads (loss1_*, loss2_*) when the file has them."""
    data = read_layers(path)
    num_classes = num_classes or file_classes(data, 'loss3_classifier')
    aux = any(name.startswith(('loss1_', 'loss2_')) for name in data)
    hint = '; a bvlc_alexnet file needs --model alexnet'
    checked = check_layers(path, data, googlenet_shapes(num_classes, aux),
                           'conv1_7x7_s2' if rgb_input else None, hint)
    names, out = googlenet_caffe_names(), {}
    for caffe, (w, b) in checked.items():
        ours, prefix = names[caffe]
        key = 'w' if not prefix else f'{prefix}w'
        out.setdefault((ours, 0), {}).update({key: w, key[:-1] + 'b': b})
    return out


def export_caffe_googlenet_npy(sess, net, path):
    """The net's variables as bvlc_googlenet.npy (caffe-tensorflow's dict form)."""
    values, layers = sess.run(net.params), {}
    for caffe, (ours, prefix) in googlenet_caffe_names().items():
        if (ours, 0) in values:
            p = values[(ours, 0)]
            layers[caffe] = {'weights': p[f'{prefix}w'], 'biases': p[f'{prefix}b']}
    _save(path, layers)


def _save(path, layers):
    with open(path, 'wb') as f:
        np.save(f, layers, allow_pickle=True)
