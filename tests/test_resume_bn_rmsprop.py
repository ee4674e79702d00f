"""Batch norm's moving statistics and RMSProp's slots come back after a SIGKILL, bit for bit.

The net is the Inception builder (models/inception.py: convolution, batch norm, ReLU, its
branches concatenated, global pool, dropout, linear) over a four-row table instead of v3's
94 batch norms: the published v3 takes a minute a process here (its 24 million weights and
their two RMSProp slots, saved every step), this one a second; what comes back after a
kill is the same code's either way (the published one: test_train.py, -m slow).

Run as a script, this file is run_train.py with that table as inception-v3's: the test
starts it as a process it can kill.
"""
import os
import sys
from dataclasses import replace
from functools import partial

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:        # run as a script (conftest.py does this under pytest)
    sys.path.insert(0, ROOT)

import run_train                                                        # noqa: E402
import tensorflow as tf                                                 # noqa: E402
from alexnet_tf1.training import checkpoints                                     # noqa: E402
from alexnet_tf1 import models                                          # noqa: E402
from alexnet_tf1.models import inception                                # noqa: E402
from alexnet_tf1.models.inception import block                          # noqa: E402
from killed_run import assert_same_run, resumed_from, run_until_killed     # noqa: E402
from tiny_run import tiny_prepared, train_args                          # noqa: E402


def tiny_inception():
    table = (
        block('Conv2d_1a_3x3', '3x3/2V-8'),                             # 33x33x8
        block('MaxPool_3a_3x3', 'max3/2V'),                             # 16x16x8
        block('Mixed_5b', '1x1-8', '1x1-4 3x3-8', 'avg3 1x1-4'),        # 16x16x20
        block('Mixed_6a', '3x3/2V-8', 'max3/2V'),                       # 7x7x28
    )
    return replace(models.get('inception-v3'), table=table, paper_total=None, published=(),
                   build=partial(inception.build, table=table, bn_aux=True))


def test_batch_norm_statistics_and_rmsprop_slots_survive_sigkill_mid_epoch(tmp_path,
                                                                          monkeypatch, capsys):
    data = tiny_prepared(str(tmp_path), n_train=224)           # 56 steps an epoch
    td = str(tmp_path / 'run')
    # the inception preset's RMSProp (with its label smoothing and clipping); the sample
    # preset's batch norm decay of 0.9: the averages move off their start within the first
    # epoch, and averages started over at the resume would still differ 50 steps later
    cmd = [sys.executable, os.path.abspath(__file__),
           *train_args(data, td, '--model', 'inception-v3', '--optimizer', 'rmsprop',
                       '--bn-decay', '0.9', '--epochs', '2', '--save-every', '5',
                       '--keep', '40')]
    # step 61's line follows step 60's checkpoint (4 batches into epoch 2); the run cannot
    # print more than 4096 bytes past it (run_until_killed), 43 such lines, so it dies before
    # epoch 2's step 50: every checkpoint it can have written by then is mid-epoch
    run_until_killed(cmd, 'epoch 2/2 step 5/56')
    monkeypatch.setitem(models.MODELS, 'inception-v3', tiny_inception())
    assert run_train.main(cmd[2:]) == 0                 # the same command resumes it
    start = resumed_from(capsys.readouterr().out)
    s = checkpoints.read_state(start)
    assert s['epoch'] == 1 and 0 < s['batch_in_epoch'] < 56, s         # mid epoch 2
    assert s['optimizer'] == 'rmsprop' and s['config']['bn_decay'] == 0.9
    # what the resume had to bring back was far from where a fresh net starts
    at_kill = tf.train.load_checkpoint(start)
    names = at_kill.get_variable_to_shape_map()
    fresh = {'moving_mean': 0.0, 'moving_variance': 1.0, 'rms': 1.0, 'momentum': 0.0}
    slots = {kind: [n for n in names if n.rsplit('/', 1)[-1] == kind] for kind in fresh}
    # 6 batch norms; RMSProp's two slots for each of their 6 kernels and betas, and the
    # classifier's weights and biases
    assert {k: len(v) for k, v in slots.items()} == \
        {'moving_mean': 6, 'moving_variance': 6, 'rms': 14, 'momentum': 14}
    for kind, start_value in fresh.items():
        for n in slots[kind]:
            assert np.all(at_kill.get_tensor(n) != start_value), n

    whole = str(tmp_path / 'whole')
    assert run_train.main([a if a != td else whole for a in cmd[2:]]) == 0
    compared = assert_same_run(td, whole)
    assert all(n in compared for kind in slots.values() for n in kind)
    assert checkpoints.read_state(checkpoints.latest(td))['global_step'] == 112


if __name__ == '__main__':
    models.MODELS['inception-v3'] = tiny_inception()
    sys.exit(run_train.main(sys.argv[1:]))
