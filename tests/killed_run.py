"""Runs killed with SIGKILL at a point their own output chooses, and two runs compared
value by value: what the resume tests share."""
import fcntl
import os
import re
import signal
import subprocess

import numpy as np

import tensorflow as tf
from alexnet_tf1.training import checkpoints

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
