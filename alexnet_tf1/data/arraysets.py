"""Data sets shipped as arrays rather than image files: CIFAR-10 pickles and MNIST IDX files.

CIFAR-10's batches are Python pickles. A pickle can run any code it names, so they are read
through safe_pickle, which admits only the globals a NumPy array needs.
"""
import gzip
import os
import re
import tarfile

import numpy as np

from alexnet_tf1.data import safe_pickle
from alexnet_tf1.data.reader import DataError

CIFAR_DIR = 'cifar-10-batches-py'
CIFAR_TARS = ('cifar-10-python.tar.gz', 'cifar-10-batches-py.tar.gz')
CIFAR_TRAIN = tuple(f'data_batch_{i}' for i in range(1, 6))
CIFAR_VAL = ('test_batch',)

def safe_unpickle(data, what):
    try:
        obj = safe_pickle.safe_loads(data, encoding='bytes', source=what)
    except safe_pickle.RefusedPickle as e:
        raise DataError(str(e)) from None
    except Exception as e:
        raise DataError(f'{what}: not a CIFAR-10 batch ({e})') from None
    if not isinstance(obj, dict):
        raise DataError(f'{what}: not a CIFAR-10 batch (a {type(obj).__name__}, not a dict)')
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def find_cifar10(src):
    """The CIFAR-10 source under src: (path, is_tar), or None."""
    if os.path.isfile(src):
        return (src, True) if tarfile.is_tarfile(src) else None
    for d in (src, os.path.join(src, CIFAR_DIR)):
        if os.path.isfile(os.path.join(d, 'batches.meta')):
            return d, False
    for t in CIFAR_TARS:
        if os.path.isfile(os.path.join(src, t)):
            return os.path.join(src, t), True
    return None


def read_cifar10(path, is_tar):
    """{member name: raw bytes} for batches.meta and the six batches."""
    wanted = set(CIFAR_TRAIN + CIFAR_VAL + ('batches.meta',))
    blobs = {}
    if is_tar:
        try:
            with tarfile.open(path, 'r:*') as t:
                for m in t:     # one sequential pass: a .tar.gz cannot seek
                    base = os.path.basename(m.name)
                    if m.isfile() and base in wanted:
                        blobs[base] = t.extractfile(m).read()
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(f'{path}: unreadable CIFAR-10 archive ({e})') from None
    else:
        for name in wanted:
            p = os.path.join(path, name)
            if os.path.isfile(p):
                with open(p, 'rb') as f:
                    blobs[name] = f.read()
    missing = sorted(wanted - set(blobs))
    if missing:
        raise DataError(f'{path}: CIFAR-10 files missing: {", ".join(missing)}')
    return blobs


def cifar_batch(blob, what):
    """(images uint8 (n, 32, 32, 3), labels int list) of one batch."""
    d = safe_unpickle(blob, what)
    try:
        data = np.asarray(d['data'], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = [int(x) for x in d['labels']]
    except (KeyError, ValueError) as e:
        raise DataError(f'{what}: not a CIFAR-10 batch ({e})') from None
    if len(labels) != len(data):
        raise DataError(f'{what}: {len(data)} images but {len(labels)} labels')
    return np.ascontiguousarray(data.transpose(0, 2, 3, 1)), labels


def cifar_label_names(blob, what):
    d = safe_unpickle(blob, what)
    names = d.get('label_names')
    if not names:
        raise DataError(f'{what}: no label_names')
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


_MNIST_RE = re.compile(r'^(train|t10k)-(images|labels)[.-]idx[13]-ubyte(\.gz)?$')


def find_mnist(src):
    """{('train'|'t10k', 'images'|'labels'): path} from src or a folder or two below it."""
    found = {}
    for d in (src, os.path.join(src, 'raw'), os.path.join(src, 'MNIST', 'raw'),
              os.path.join(src, 'mnist')):
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            m = _MNIST_RE.match(name)
            if m:
                # the plain file wins over its .gz twin (sorted order lists it first)
                found.setdefault((m.group(1), m.group(2)), os.path.join(d, name))
        if len(found) == 4:
            return found
    return found if len(found) == 4 else None


def read_idx(path):
    """An IDX file (plain or .gz) as a uint8 array of its declared shape."""
    opener = gzip.open if path.endswith('.gz') else open
    try:
        with opener(path, 'rb') as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f'{path}: unreadable ({e})') from None
    if len(data) < 4 or data[:2] != b'\0\0' or data[2] != 0x08:
        raise DataError(f'{path}: not an IDX file of unsigned bytes')
    ndim = data[3]
    dims = np.frombuffer(data, '>u4', count=ndim, offset=4).astype(np.int64)
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f'{path}: truncated IDX file ({body.size} of {int(np.prod(dims))} bytes)')
    return body.reshape(tuple(dims))


def mnist_split(images_path, labels_path):
    """(images uint8 (n, 32, 32, 1) padded by 2 zeros each side, as LeNet-5 reads them, labels)."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f'{images_path}: {images.shape} images do not match '
                        f'{labels.shape} labels')
    return np.pad(images, ((0, 0), (2, 2), (2, 2)))[..., None], [int(x) for x in labels]
