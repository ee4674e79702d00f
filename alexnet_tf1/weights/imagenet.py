"""What goes with published weights: the mean their network was trained with and the 1000
ILSVRC-2012 class names, shipped as small text files beside this module (nothing is downloaded).

Every published-weights path of this project takes one input: RGB, 0-255, minus the mean that
goes with the weights. That is the per-channel mean of weights/means.txt by default, or a
full mean image the user gives (--mean FILE.npy): Caffe's ilsvrc_2012_mean.npy as Caffe ships
it, (3, 256, 256) BGR, or (H, W, 3) RGB like this project's own mean.npy.
"""
import dataclasses
import functools
import os

import numpy as np

from alexnet_tf1.weights.files import WeightFileError

HERE = os.path.dirname(os.path.abspath(__file__))
MEAN_OF = {'alexnet': 'caffe', 'caffenet': 'caffe', 'googlenet': 'caffe',
           'vgg-d': 'keras-vgg', 'vgg-e': 'keras-vgg',
           'inception-v3': 'keras-inception', 'inception-resnet-v2': 'keras-inception'}
STORED_SIZE = 256       # the published nets' test images: shorter side 256, centre 256x256
CROP_FRACTION = 0.875   # Google's Inception evaluation: the central 87.5%, then 299 px


def stored_size(input_size):
    """The stored image side a net of `input_size` takes its crops from: 256 for the 224/227
    nets, input / 0.875 for any other size (342 for the 299 Inception nets, TF-slim's central
    87.5%), so a crop covers the same share of the picture at every size."""
    if 224 <= input_size <= 227:
        return STORED_SIZE
    return int(np.ceil(input_size / CROP_FRACTION))


@functools.lru_cache(maxsize=1)
def means():
    """{name: (R, G, B)} from weights/means.txt."""
    out = {}
    with open(os.path.join(HERE, 'means.txt')) as f:
        for line in f:
            fields = line.split('#')[0].split()
            if fields:
                out[fields[0]] = tuple(float(v) for v in fields[1:4])
    return out


def mean_rgb(model):
    return np.asarray(means()[MEAN_OF[model]], np.float32)


def synsets():
    """[(wnid, names)] of the 1000 ILSVRC-2012 classes in Caffe's (and Keras') label order."""
    with open(os.path.join(HERE, 'ilsvrc2012_synsets.txt')) as f:
        return [tuple(line.rstrip('\n').split('\t', 1)) for line in f if line.strip()]


def mean_image(spec, size):
    """The (size, size, 3) RGB float32 image to subtract: spec is a model name (its per-channel
    mean), an (R, G, B) triple, or the path of a mean .npy (see the module's docstring)."""
    if isinstance(spec, str) and spec in MEAN_OF:
        spec = mean_rgb(spec)
    if isinstance(spec, str):
        m = _read_mean_file(spec)
    else:
        m = np.asarray(spec, np.float32).reshape(1, 1, 3)
    if m.shape[:2] == (1, 1):
        return np.broadcast_to(m, (size, size, 3)).astype(np.float32)
    if m.shape[:2] != (size, size):
        raise WeightFileError(f'the mean image is {m.shape[1]}x{m.shape[0]}, the stored images '
                              f'{size}x{size}')
    return m


def describe_mean(spec):
    """A mean spec (model name, path, or RGB triple) in words."""
    if isinstance(spec, str) and spec in MEAN_OF:
        rgb = tuple(round(float(v), 3) for v in mean_rgb(spec))
        return f'the per-channel mean {rgb} (RGB, weights/means.txt)'
    return f'the mean image {spec}' if isinstance(spec, str) else f'the mean {spec} (RGB)'


def _read_mean_file(path):
    try:
        m = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise WeightFileError(f'{path}: not a mean image .npy ({e})') from None
    if m.ndim == 1 and m.shape == (3,):
        raise WeightFileError(f'{path}: a 3-value mean is ambiguous (RGB or BGR?); give a mean '
                              f'image, or leave --mean out for the published per-channel mean')
    if m.ndim == 3 and m.shape[0] == 3 and m.shape[-1] != 3:
        return np.ascontiguousarray(m[::-1].transpose(1, 2, 0), np.float32)    # Caffe's BGR CHW
    if m.ndim == 3 and m.shape[-1] == 3:
        return m.astype(np.float32)
    raise WeightFileError(f'{path}: a mean image is (3, H, W) BGR (Caffe) or (H, W, 3) RGB, '
                          f'not {m.shape}')


@dataclasses.dataclass
class Published:
    """Stands in for a prepared directory when published weights classify pictures: the
    weights' mean image and the ILSVRC class names."""
    path: str
    mean: np.ndarray
    synsets: list
    dataset: str = 'imagenet'

    @property
    def num_classes(self):
        return len(self.synsets)


def for_images(mean, weights_path, input_size=227):
    """The stand-in for --images: `mean` as mean_image takes it, the ILSVRC class names."""
    return Published(os.path.dirname(os.path.abspath(weights_path)),
                     mean_image(mean, stored_size(input_size)), synsets())


def with_mean(prepared, spec):
    """The prepared data set with the weights' mean in place of its own (its stored size)."""
    return dataclasses.replace(prepared, mean=mean_image(spec, prepared.mean.shape[0]))
