"""Real handwritten digits offline, in MNIST's IDX format: scikit-learn's bundled digits.

python -m alexnet_tf1.data.digits OUT writes OUT/train-images-idx3-ubyte ... t10k-labels, ready
for `python -m alexnet_tf1.data.prepare OUT PREPARED`. The source is the UCI optical digits
that scikit-learn ships inside its wheel (1,797 scans from 43 writers, 8x8 cells counting the
ink pixels of a 32x32 bitmap, 0..16): real handwriting, no download. Each is enlarged to 20x20
and centred in 28x28, as MNIST's digits are, then split per class into train and held-out test
(`TEST_FRACTION`, fixed seed): the same bytes on every run.
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image

from alexnet_tf1.io_util import atomic_write_bytes
from alexnet_tf1.data.reader import DataError

TEST_FRACTION = 0.25
SEED = 1998


def load_digits():
    """(images uint8 (n, 28, 28), labels uint8 (n,)) from scikit-learn's copy."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise DataError('the real-digits set needs scikit-learn (pip install -r '
                        'requirements.txt)') from None
    d = sk_digits()
    cells = np.clip(d.images * (255.0 / 16.0), 0, 255).astype(np.float32)
    out = np.zeros((len(cells), 28, 28), np.uint8)
    for i, c in enumerate(cells):
        big = np.asarray(Image.fromarray(c, 'F').resize((20, 20), Image.BICUBIC))
        out[i, 4:24, 4:24] = np.clip(np.rint(big), 0, 255)
    return out, d.target.astype(np.uint8)


def split(labels, test_fraction=TEST_FRACTION, seed=SEED):
    """(train indices, test indices): the same fraction of every class held out."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(len(idx) * test_fraction))
        test.extend(idx[:k])
        train.extend(idx[k:])
    return np.sort(np.array(train)), np.sort(np.array(test))


def idx_bytes(array):
    """An uint8 array as an IDX file (magic 0x08 = unsigned byte, big-endian dimensions)."""
    array = np.ascontiguousarray(array, np.uint8)
    head = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, '>u4').tobytes()
    return head + array.tobytes()


def write(out):
    """Write the four IDX files to out; returns {split: count}."""
    images, labels = load_digits()
    os.makedirs(out, exist_ok=True)
    counts = {}
    for name, idx in zip(('train', 't10k'), split(labels)):
        atomic_write_bytes(os.path.join(out, f'{name}-images-idx3-ubyte'), idx_bytes(images[idx]))
        atomic_write_bytes(os.path.join(out, f'{name}-labels-idx1-ubyte'), idx_bytes(labels[idx]))
        counts[name] = len(idx)
    return counts


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m alexnet_tf1.data.digits',
                                description=__doc__.split('\n\n')[0])
    p.add_argument('out')
    args = p.parse_args(argv)
    try:
        counts = write(args.out)
    except (DataError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f"wrote {counts['train']} training and {counts['t10k']} test digits to {args.out}",
          file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
