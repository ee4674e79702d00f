"""Reading a prepared directory (the format is in alexnet_tf1/data/__init__.py)."""
import json
import os
from dataclasses import dataclass, field

import numpy as np

from alexnet_tf1.errors import UserError

FORMAT = 1


class DataError(UserError):
    """A data problem the user can fix; its message is one line."""


@dataclass
class Split:
    images: list          # uint8 arrays (n, H, W, C), memory-mapped, one per shard
    labels: np.ndarray    # int32 (N,)

    def __len__(self):
        return int(self.labels.shape[0])

    def take(self, idx):
        """uint8 images (len(idx), H, W, C) for global indices idx, in that order."""
        idx = np.asarray(idx, dtype=np.int64)
        starts = np.cumsum([0] + [len(s) for s in self.images])
        shard = np.searchsorted(starts, idx, side='right') - 1
        out = np.empty((len(idx),) + self.images[0].shape[1:], np.uint8)
        for s in np.unique(shard):
            sel = shard == s
            out[sel] = self.images[s][idx[sel] - starts[s]]
        return out


@dataclass
class Prepared:
    path: str
    manifest: dict
    synsets: list         # [(wnid, name)] in label order
    mean: np.ndarray      # float32 (H, W, C)
    eigval: np.ndarray = None
    eigvec: np.ndarray = None
    _splits: dict = field(default_factory=dict)

    @property
    def num_classes(self):
        return len(self.synsets)

    @property
    def dataset(self):
        return self.manifest.get('dataset', 'unknown')

    def split(self, name):
        if name not in self._splits:
            info = self.manifest['splits'].get(name)
            if not info or not info.get('count'):
                raise DataError(f"{self.path} has no '{name}' split")
            images, labels = [], []
            for rel in info['shards']:
                images.append(_load(self.path, rel, mmap_mode='r'))
                labels.append(_load(self.path, rel.replace('images-', 'labels-')))
            if sum(len(i) for i in images) != info['count'] or \
                    any(len(i) != len(l) for i, l in zip(images, labels)):
                raise DataError(f"{self.path}: the '{name}' shards do not hold the "
                                f"{info['count']} images the manifest lists; prepare again")
            self._splits[name] = Split(images, np.concatenate(labels).astype(np.int32))
        return self._splits[name]


def _load(root, rel, **kw):
    """One array file of a prepared directory; a missing or damaged one is a DataError."""
    path = os.path.join(root, rel)
    try:
        return np.load(path, allow_pickle=False, **kw)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f'{path}: missing or damaged ({type(e).__name__}: {e}); prepare '
                        f'{root} again') from None


def open_prepared(path):
    manifest_path = os.path.join(path, 'manifest.json')
    if not os.path.isfile(manifest_path):
        raise DataError(f"{path} is not a prepared data directory (no manifest.json); "
                        f"run: python -m alexnet_tf1.data.prepare SRC {path}")
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f'{manifest_path}: unreadable ({e}); prepare it again') from None
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT or \
            not manifest.get('complete', True) or not isinstance(manifest.get('splits'), dict):
        raise DataError(f"{path} holds an unfinished or unknown preparation; run prepare again")
    try:
        with open(os.path.join(path, 'synsets.txt')) as f:
            synsets = [tuple((line.rstrip('\n').split('\t') + [''])[:2])
                       for line in f if line.strip()]
    except (OSError, ValueError) as e:
        raise DataError(f'{path}: unreadable synsets.txt ({e}); prepare it again') from None
    mean = _load(path, 'mean.npy').astype(np.float32)
    eigval = eigvec = None
    if os.path.isfile(os.path.join(path, 'pca.npz')):
        with _load(path, 'pca.npz') as z:
            try:
                eigval, eigvec = z['eigval'].astype(np.float32), z['eigvec'].astype(np.float32)
            except (KeyError, OSError, ValueError) as e:
                raise DataError(f'{path}/pca.npz: damaged ({e}); prepare again') from None
    return Prepared(path, manifest, synsets, mean, eigval, eigvec)
