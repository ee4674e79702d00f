"""A run killed with SIGKILL in the middle of an epoch and resumed by the same command ends
where the same run uninterrupted ends, bit for bit: every weight, every momentum, the global
step and the run's state (position, schedule, validation history)."""
import fcntl
import os
import re
import signal
import subprocess
import sys

import numpy as np

import run_train
import tensorflow as tf
from alexnet_tf1 import checkpoints
from tiny_run import tiny_prepared, train_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def state_of(train_dir):
    return checkpoints.read_state(checkpoints.latest(train_dir))


def run_until_killed(cmd, *marks):
    """Runs cmd and SIGKILLs it on the first line it prints that holds every one of `marks`.

    Its stdout is a pipe of one page read a byte at a time: when the line is read the run
    has printed at most 4096 bytes past it (some 40 progress lines) and cannot print more,
    so how far it got before the kill is bounded in steps, whatever the machine's load."""
    r, w = os.pipe()
    fcntl.fcntl(r, fcntl.F_SETPIPE_SZ, 4096)
    p = subprocess.Popen(cmd, stdout=w, stderr=subprocess.DEVNULL, cwd=ROOT)
    os.close(w)
    with open(r, 'rb', buffering=0) as out:
        for line in out:
            if all(m.encode() in line for m in marks):
                os.kill(p.pid, signal.SIGKILL)
                break
    p.wait()
    assert p.returncode == -signal.SIGKILL, f'{cmd} ended before printing {marks}'


def resumed_from(stdout):
    """The checkpoint a run says it resumed from ('resuming PATH: epoch E, step S, lr L')."""
    m = re.search(r'^resuming (.+): epoch \d+, step \d+', stdout, re.M)
    assert m, stdout
    return m.group(1)


def assert_same_run(td, whole):
    """The newest checkpoints of two train dirs hold the same values, bit for bit, and the
    same run state (step, position, schedule, validation history); returns the names."""
    a = tf.train.load_checkpoint(checkpoints.latest(td))
    b = tf.train.load_checkpoint(checkpoints.latest(whole))
    names = sorted(n for n in a.get_variable_to_shape_map() if n != 'run_state')
    assert names == sorted(n for n in b.get_variable_to_shape_map() if n != 'run_state')
    for n in names:
        np.testing.assert_array_equal(a.get_tensor(n), b.get_tensor(n), err_msg=n)
    assert state_of(td) == state_of(whole)
    return names


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
