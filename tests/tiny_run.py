"""A tiny prepared set and a fast AlexNet training run on it, for the train/eval tests.

AlexNet's graph is unchanged but for its input: 67 px makes conv1 15x15 and pool5 1x1, so a
step and a checkpoint take milliseconds instead of seconds. What these tests check (steps,
checkpoints, resume, crops) does not depend on the input size.
"""
import os

import numpy as np

from synthetic_prepared import write_prepared

SIZE, CROP = 76, 67


def tiny_prepared(root, n_train=8, n_val=6, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    def split(n):
        labels = np.arange(n) % classes
        images = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
        images[..., 0] = (labels * 200)[:, None, None]     # a class signal in the red plane
        return images, labels.astype(np.int32)
    mean = np.full((SIZE, SIZE, 3), 120, np.float32)
    eigval = np.array([0.2, 0.02, 0.005], np.float32)
    return write_prepared(os.path.join(root, 'prepared'), {'train': split(n_train), 'val': split(n_val)},
                          mean=mean, eigval=eigval, eigvec=np.eye(3, dtype=np.float32),
                          num_classes=classes, dataset='tiny')


def train_args(data_dir, train_dir, *extra):
    return ['--data-dir', data_dir, '--train-dir', train_dir, '--gpus', 'cpu',
            '--input-size', str(CROP), '--batch-size', '4', '--print-freq', '1',
            '--lr', '0.001', '--lr-schedule', 'step', '--step-epochs', '1', *extra]


def trained_run(tmp_path_factory, name, epochs):
    """(prepared dir, train dir) of a tiny run of `epochs` epochs, through run_train.main."""
    import run_train
    root = str(tmp_path_factory.mktemp(name))
    data = tiny_prepared(root)
    td = os.path.join(root, 'run')
    assert run_train.main(train_args(data, td, '--epochs', str(epochs))) == 0
    return data, td
