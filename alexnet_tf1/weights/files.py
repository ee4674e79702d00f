"""What every published-weight reader shares: the one-line error, the shape check, the load
into a graph's variables."""
import numpy as np

from alexnet_tf1.errors import UserError


class WeightFileError(UserError):
    """A weight file that does not fit the model; the message is one line."""


def check_layers(path, data, shapes, flip=None, hint=''):
    """{name: (w, b)} from a file against {name: (w shape, b shape)}: every layer present with
    its exact shapes, none unknown; one-line errors naming the file and layer. `flip`: the
    layer whose input channels are reversed (BGR -> RGB, the image-reading conv)."""
    unknown = sorted(set(data) - set(shapes))
    if unknown:
        raise WeightFileError(f"{path}: unknown layer {unknown[0]!r}{hint} (expected layers: "
                              f"{', '.join(list(shapes)[:6])}, ...)")
    out = {}
    for name, (w_shape, b_shape) in shapes.items():
        if name not in data:
            raise WeightFileError(f'{path}: layer {name!r} is missing (truncated file, or '
                                  f'another model{hint})')
        w, b = data[name]
        for what, got, want in (('weights', w.shape, w_shape), ('biases', b.shape, b_shape)):
            if tuple(got) != tuple(want):
                raise WeightFileError(f'{path}: layer {name!r} {what} have shape {tuple(got)}, '
                                      f'the model needs {tuple(want)}')
        out[name] = (w[:, :, ::-1, :].copy() if name == flip else w, b)
    return out


def pair(path, name, value):
    """A layer's [weights, biases] list (bvlc_alexnet.npy) or {'weights', 'biases'} dict
    (caffe-tensorflow's) as two float32 arrays."""
    if isinstance(value, dict):
        value = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in value.items()}
        if set(value) != {'weights', 'biases'}:
            raise WeightFileError(f"{path}: layer {name!r} holds {sorted(value)}, expected "
                                  f"'weights' and 'biases'")
        value = [value['weights'], value['biases']]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise WeightFileError(f'{path}: layer {name!r} should hold [weights, biases]')
    try:
        return tuple(np.asarray(a, np.float32) for a in value)
    except (TypeError, ValueError):
        raise WeightFileError(f'{path}: layer {name!r} does not hold numeric arrays') from None


def assign(sess, params, arrays):
    """Load {(layer, tower): {key: array}} into the variables of `params`; every variable must
    get an array of its exact shape, and every array a variable."""
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
