"""A run killed with SIGKILL in the middle of an epoch and resumed by the same command ends
where the same run uninterrupted ends, bit for bit: every weight, every momentum, the global
step and the run's state (position, schedule, validation history)."""
import os
import sys

import run_train
from alexnet_tf1.training import checkpoints
from killed_run import ROOT, assert_same_run, resumed_from, run_until_killed, state_of
from tiny_run import tiny_prepared, train_args


def test_mid_epoch_sigkill_resumes_bit_for_bit(tmp_path, capsys):
    data = tiny_prepared(str(tmp_path), n_train=64)            # 64 steps an epoch at batch 1
    td = str(tmp_path / 'run')
    # checkpoints at step 64 (epoch 1's end), 72 (8 batches into epoch 2) and 128
    args = train_args(data, td, '--epochs', '2', '--save-every', '72', '--batch-size', '1',
                      '--lr', '0.0001')
    # step 73's line follows step 72's checkpoint; the next checkpoint is 55 progress lines
    # (over 4,800 bytes) later, more than the one-page pipe lets the run print unread
    run_until_killed([sys.executable, os.path.join(ROOT, 'run_train.py'), *args],
                     'epoch 2/2 step 9/64 ')
    assert run_train.main(args) == 0                    # the same command resumes it
    start = checkpoints.read_state(resumed_from(capsys.readouterr().out))
    assert (start['global_step'], start['epoch'], start['batch_in_epoch']) == (72, 1, 8)
    assert start['epoch_train'][1] == 8         # the eight batches of epoch 2 already trained
    assert [h['epoch'] for h in start['history']] == [1]
    # the same run uninterrupted ends with the same weights, momentum and history: the same
    # data order, crops, flips and lighting (drawn per epoch from the seed, the epoch's
    # batches taken from the saved position on) and the same dropout masks (keyed on the
    # global step), on deterministic CPU kernels: bit-identical
    whole = str(tmp_path / 'whole')
    assert run_train.main([a if a != td else whole for a in args]) == 0
    names = assert_same_run(td, whole)
    # conv1-fc7 on both towers, fc8 on one (the paper's Figure 2): 15 weights, 15 biases
    weights = [n for n in names if n.endswith(('/weights', '/biases'))]
    assert len(weights) == 30 and all(n + '/momentum' in names for n in weights)
    s = state_of(td)
    assert (s['global_step'], s['epoch'], s['batch_in_epoch']) == (128, 2, 0)
    assert [h['epoch'] for h in s['history']] == [1, 2] and s['schedule']['drops'] == 2
