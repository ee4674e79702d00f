"""Keras-applications InceptionV3 and InceptionResNetV2 weight files into inception-v3 and
inception-resnet-v2: Keras 2 HDF5 (Google's published *_weights_tf_dim_ordering_tf_kernels.h5,
or any Keras 2 save_weights; also a full-model file's 'model_weights') and Keras 3
`.weights.h5`. Only arrays are read (h5py), nothing that could run.

The files name their layers by Keras' per-class counters (conv2d_1, batch_normalization_7,
... in the order the model's code created them; Inception-ResNet-v2 also block35_1_conv,
conv_7b, conv_7b_bn, predictions), and store them in another, depth-sorted, order. The names
are read from the file (Keras 2: the layer groups; Keras 3: the name each layer's 'vars'
carries), and each of the model's layers, taken in the order the builder creates them (which
is Keras' creation order), gets the next unused layer of the file of the same kind and shape,
those in the order of the numbers in their names. Nothing assumes a name or a count: a file
of another model, or with a layer missing or misshaped, is one line naming the file and the
layer. The nets take RGB: x / 127.5 - 1, the project's RGB minus a mean of 127.5, scaled by
config.input_scale.
"""
import re

import h5py
import numpy as np

from alexnet_tf1.weights.keras_vgg import _is_keras3, _str, read_h5
from alexnet_tf1.weights.files import WeightFileError

BN_KEYS = ('gamma', 'beta', 'moving_mean', 'moving_variance')


def read_layers(path, unnamed=False):
    """[(Keras layer name, [(weight name or None, array)])] of the layers holding arrays.
    unnamed: a Keras 3 layer without its name is listed under its key, not refused."""
    return read_h5(path, lambda f: _keras3(path, f, unnamed) if _is_keras3(f)
                   else _keras2(path, f))


def _keras2(path, f):
    root = f['model_weights'] if 'model_weights' in f and 'layer_names' not in f.attrs else f
    if 'layer_names' not in root.attrs:
        raise WeightFileError(f'{path}: not a Keras weight file (no layer_names, no layers/)')
    out = []
    for name in (_str(n) for n in root.attrs['layer_names']):
        if name not in root:
            raise WeightFileError(f'{path}: layer {name!r} is listed but has no group')
        g = root[name]
        names = [_str(n) for n in g.attrs.get('weight_names', [])]
        if names:
            out.append((name, [(n.split('/')[-1].split(':')[0], np.asarray(g[n]))
                               for n in names]))
    return out


def _keras3(path, f, unnamed=False):
    out = []
    for key, g in f['layers'].items():
        if not isinstance(g, h5py.Group) or 'vars' not in g or not len(g['vars']):
            continue
        v = g['vars']
        if 'name' not in v.attrs and not unnamed:
            raise WeightFileError(
                f'{path}: layer {key!r} carries no name (a Keras 3 file older than the '
                f'layers-named format): its creation order cannot be read; load it in Keras '
                f'and save_weights it again, or save it as a Keras 2 .h5')
        out.append((_str(v.attrs.get('name', key)),
                    [(None, np.asarray(v[k])) for k in sorted(v.keys(), key=int)]))
    return out


def _order(name):
    """'conv2d_10' after 'conv2d_9' after 'conv2d' (Keras' counters), as a sort key."""
    return [(0, int(t), '') if t.isdigit() else (1, 0, t) for t in re.split(r'(\d+)', name)]


def _classify(path, name, weights):
    """(kind, shape key, {key: array}) of one file layer."""
    arrays = [a for _, a in weights]
    dims = sorted(a.ndim for a in arrays)
    if dims in ([4], [1, 4]):
        out = {'w': next(a for a in arrays if a.ndim == 4)}
        if len(arrays) == 2:
            out['b'] = next(a for a in arrays if a.ndim == 1)
        return 'conv', (tuple(out['w'].shape), 'b' in out), out
    if dims == [1, 2]:
        w = next(a for a in arrays if a.ndim == 2)
        return 'dense', (), {'w': w, 'b': next(a for a in arrays if a.ndim == 1)}
    if dims in ([1, 1, 1], [1, 1, 1, 1]):
        named = [n for n, _ in weights]
        if all(n in BN_KEYS for n in named):
            out = dict(zip(named, arrays))
        else:       # Keras 3 keeps the layer's order: (gamma,) beta, moving mean, variance
            out = dict(zip(BN_KEYS[4 - len(arrays):], arrays))
        if 'gamma' in out:
            raise WeightFileError(f'{path}: batch norm {name!r} has a scale (gamma): not '
                                  f'Google\'s Inception, whose batch norm has none')
        return 'bn', (arrays[0].shape[0],), out
    raise WeightFileError(f'{path}: layer {name!r} holds arrays of shapes '
                          f'{[a.shape for a in arrays]}: no convolution, batch norm or dense')


def load_keras_inception(path, net, model):
    """{(layer, 0): {key: array}} for `net` (a built inception-v3 / inception-resnet-v2) from
    the file; the classifier at the file's own class count (load_into keeps the model's own
    when they differ). Aux heads (training graphs) are left out: the files have none."""
    pools = {}
    for name, weights in sorted(read_layers(path), key=lambda t: _order(t[0])):
        kind, shape, arrays = _classify(path, name, weights)
        pools.setdefault((kind, shape), []).append((name, arrays))
    for pool in pools.values():
        pool.reverse()              # pop() takes the lowest-numbered first
    out = {}
    for (layer, tower), p in net.params.items():
        if layer == 'AuxLogits':
            continue
        got = {}
        for key, var in p.items():
            unit, _, what = key.rpartition('/')
            if what == 'w' and var.shape.rank == 4:
                has_b = f'{unit}/b' in p
                name, arrays = _take(path, pools, ('conv', (tuple(var.shape), has_b)),
                                     layer, unit, f'a {"x".join(map(str, var.shape))} '
                                                  f'convolution{" with biases" if has_b else ""}')
                got[f'{unit}/w'] = arrays['w']
                if has_b:
                    got[f'{unit}/b'] = arrays['b']
            elif what == 'beta':
                name, arrays = _take(path, pools, ('bn', (int(var.shape[0]),)), layer, unit,
                                     f'a {var.shape[0]}-channel batch norm')
                got.update({f'{unit}/{k}': a for k, a in arrays.items()})
            elif var.shape.rank == 2:       # the classifier, at the file's class count
                name, arrays = _take(path, pools, ('dense', ()), layer, '', 'a dense layer')
                got.update(arrays)
        out[(layer, tower)] = got
    left = [name for pool in pools.values() for name, _ in pool]
    if left:
        raise WeightFileError(f'{path}: holds {len(left)} layers {model} does not have '
                              f'({left[0]!r}, ...): another model\'s file')
    return out


def _take(path, pools, key, layer, unit, what):
    pool = pools.get(key)
    if not pool:
        where = f'{layer}/{unit}' if unit else layer
        raise WeightFileError(f'{path}: no {what} left for {where} (truncated file, or '
                              f'another model\'s)')
    return pool.pop()


def detect(path):
    """'inception-v3' or 'inception-resnet-v2' by the file's batch norms (94 or 204), None
    for any other file. The count needs no names: a Keras 3 file whose layers carry none is
    still told, so that loading it says why it cannot be read, not that it is no VGG."""
    try:
        layers = read_layers(path, unnamed=True)
        kinds = [_classify(path, n, w)[0] for n, w in layers]
    except WeightFileError:
        return None
    return {94: 'inception-v3', 204: 'inception-resnet-v2'}.get(kinds.count('bn'))
