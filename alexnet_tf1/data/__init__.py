"""Data: raw image trees -> prepared 256-pixel shards -> augmented batches.

The prepared directory (written by ``python -m alexnet_tf1.data.prepare SRC OUT``) is the
one contract between preparation and training:

    OUT/manifest.json      {"format": 1, "dataset": "imagenet"|"sample"|"cifar10"|"mnist",
                            "layout": ..., "image_size": 256, "channels": 3,
                            "num_classes": K,
                            "splits": {"train": {"count": N, "shards": ["train/images-00000.npy", ...]},
                                       "val": {...}},
                            "converted": n, "skipped": [{"path": ..., "reason": ...}], ...}
    OUT/synsets.txt        one line per class in label order: "<wnid>\t<name>"; label = index
                           of the synset in sorted order (0..K-1), the convention everyone uses
    OUT/mean.npy           float32 (H, W, C): the training split's per-pixel mean, 0..255 scale
    OUT/pca.npz            eigval (3,), eigvec (3, 3) (column i is eigenvector i): the RGB
                           covariance of all training pixels scaled to [0, 1] (absent for 1-channel)
    OUT/<split>/images-XXXXX.npy   uint8 (n, H, W, C)
    OUT/<split>/labels-XXXXX.npy   int32 (n,)

Public API: ``prepared.open_prepared(path)`` reads it; ``pipeline.train_batches`` and
``pipeline.eval_batches`` turn it into float32 NHWC batches (crop, flip, PCA lighting, mean
subtraction); ``sample.ensure_sample(root)`` makes the built-in sample set on first use.
"""
