"""Tiny prepared directories in the contract format (alexnet_tf1/data/__init__.py), with
content the tests know: by default pixel (y, x) of image i holds (y, x, i % 256) and its
label is i, so a crop, a flip or a shuffle can be read back off the batch itself.
"""
import json
import os

import numpy as np


def coord_images(n, size, channels=3):
    """uint8 (n, size, size, channels): channel 0 = row, 1 = column, 2 = image index."""
    ys, xs = np.meshgrid(np.arange(size), np.arange(size), indexing='ij')
    planes = [ys, xs, np.zeros_like(ys)][:channels]
    imgs = np.repeat(np.stack(planes, -1)[None], n, axis=0).astype(np.uint8)
    if channels >= 3:
        imgs[..., 2] = (np.arange(n) % 256)[:, None, None]
    return imgs


def random_pca(seed=0):
    """A plausible eigval (3,) and a random orthonormal eigvec (3, 3), float32."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return np.array([0.2, 0.02, 0.005], np.float32), q.astype(np.float32)


def write_prepared(root, splits, mean=None, eigval=None, eigvec=None, num_classes=None,
                   shard_size=None, dataset='sample'):
    """Write a prepared directory at root and return its path.

    splits: {name: (uint8 images (n, H, W, C), int32 labels (n,))}. mean defaults to zeros;
    pca.npz is written only when eigval is given. shard_size splits each split's arrays into
    several shards, so readers are exercised across shard boundaries.
    """
    os.makedirs(root, exist_ok=True)
    first = next(iter(splits.values()))[0]
    h, w, c = first.shape[1:]
    labels_all = np.concatenate([np.asarray(l) for _, l in splits.values()])
    k = num_classes or int(labels_all.max()) + 1
    manifest = {'format': 1, 'dataset': dataset, 'layout': 'synthetic', 'image_size': int(h),
                'channels': int(c), 'num_classes': k, 'splits': {}, 'converted': 0,
                'skipped': [], 'complete': True}
    for name, (images, labels) in splits.items():
        os.makedirs(os.path.join(root, name), exist_ok=True)
        step = shard_size or max(len(images), 1)
        shards = []
        for j, start in enumerate(range(0, len(images), step)):
            rel = f'{name}/images-{j:05d}.npy'
            np.save(os.path.join(root, rel), np.ascontiguousarray(images[start:start + step], np.uint8))
            np.save(os.path.join(root, rel.replace('images-', 'labels-')),
                    np.asarray(labels[start:start + step], np.int32))
            shards.append(rel)
        manifest['splits'][name] = {'count': int(len(images)), 'shards': shards}
        manifest['converted'] += int(len(images))
    with open(os.path.join(root, 'synsets.txt'), 'w') as f:
        f.writelines(f'n{i:08d}\tclass {i}\n' for i in range(k))
    np.save(os.path.join(root, 'mean.npy'),
            np.zeros((h, w, c), np.float32) if mean is None else np.asarray(mean, np.float32))
    if eigval is not None:
        np.savez(os.path.join(root, 'pca.npz'), eigval=np.asarray(eigval, np.float32),
                 eigvec=np.asarray(eigvec, np.float32))
    with open(os.path.join(root, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    return root


def coord_prepared(root, n_train=40, n_val=10, size=64, mean=None, pca=False, shard_size=16):
    """A prepared directory of coordinate-encoded images (see coord_images); labels = index."""
    splits = {'train': (coord_images(n_train, size), np.arange(n_train, dtype=np.int32)),
              'val': (coord_images(n_val, size), np.arange(n_val, dtype=np.int32))}
    eigval, eigvec = random_pca() if pca else (None, None)
    return write_prepared(root, splits, mean=mean, eigval=eigval, eigvec=eigvec,
                          num_classes=max(n_train, n_val), shard_size=shard_size)
