"""What happens to a run when it is stopped, rotated or damaged: SIGTERM saves, --keep
rotates, a damaged checkpoint is skipped, every checkpoint damaged is one line."""
import glob
import os
import signal
import subprocess
import sys

import pytest

import run_train
from alexnet_tf1.training import checkpoints
from tiny_run import tiny_prepared, train_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def data(tmp_path):
    return tiny_prepared(str(tmp_path))


def steps_on_disk(td):
    return sorted(int(p.rsplit('-', 1)[1][:-6]) for p in glob.glob(td + '/model.ckpt-*.index'))


# SIGINT (Ctrl-C) goes through the same handler as SIGTERM: the second case runs with -m slow
@pytest.mark.parametrize('sig', [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_a_stop_signal_finishes_the_step_saves_it_and_the_same_command_resumes(tmp_path, data,
                                                                               sig):
    td = str(tmp_path / 'run')
    cmd = [sys.executable, os.path.join(ROOT, 'run_train.py'),
           *train_args(data, td, '--epochs', '3', '--save-every', '1000')]
    p = subprocess.Popen(cmd + ['--epochs', '40'], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    for line in p.stdout:                       # mid-epoch 2, no checkpoint due before it
        if 'epoch 2/' in line and 'step 1/2' in line:
            p.send_signal(sig)
            break
    rest = p.stdout.read()
    p.wait()
    assert p.returncode == 130, rest
    assert 'interrupted: saved' in rest
    s = checkpoints.read_state(checkpoints.latest(td))
    assert s['global_step'] >= 3          # step 3 printed, then the signal: at least it saved
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and 'resuming' in out.stdout, out.stderr
    assert checkpoints.read_state(checkpoints.latest(td))['global_step'] == 6


def test_keep_holds_the_last_k_checkpoints_and_the_best(tmp_path, data):
    td = str(tmp_path / 'run')
    assert run_train.main(train_args(data, td, '--epochs', '3', '--save-every', '1',
                                     '--keep', '2')) == 0
    assert steps_on_disk(td) == [5, 6]
    assert glob.glob(td + '/best/model.ckpt-*.index')


def test_a_damaged_newest_checkpoint_is_skipped_and_the_one_before_resumes(tmp_path, data,
                                                                           capsys):
    td = str(tmp_path / 'run')
    assert run_train.main(train_args(data, td, '--epochs', '1', '--save-every', '1')) == 0
    assert steps_on_disk(td) == [1, 2]
    data_file = glob.glob(td + '/model.ckpt-2.data-*')[0]
    with open(data_file, 'r+b') as f:
        f.truncate(1000)
    capsys.readouterr()
    assert run_train.main(train_args(data, td, '--epochs', '2', '--save-every', '1')) == 0
    out = capsys.readouterr().out
    assert 'skipping damaged checkpoint' in out and 'model.ckpt-2' in out
    assert 'resuming' in out and 'step 1' in out
    assert checkpoints.read_state(checkpoints.latest(td))['global_step'] == 4


def test_every_checkpoint_damaged_is_one_line_and_nothing_is_touched(tmp_path, data, capsys):
    td = str(tmp_path / 'run')
    assert run_train.main(train_args(data, td, '--epochs', '1', '--save-every', '1')) == 0
    for index in glob.glob(td + '/model.ckpt-*.index'):
        with open(index, 'r+b') as f:
            f.truncate(20)
    before = {p: open(p, 'rb').read() for p in glob.glob(td + '/**', recursive=True)
              if os.path.isfile(p)}
    capsys.readouterr()
    assert run_train.main(train_args(data, td, '--epochs', '2')) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'damaged' in err[0] and '--restart' in err[0]
    assert {p: open(p, 'rb').read() for p in before} == before


def test_best_holds_one_checkpoint_also_after_a_resume(tmp_path):
    """A resumed run's best saver knows the best/ checkpoint already there and rotates it."""
    from alexnet_tf1.tf_compat import session, tf, tf1
    td = str(tmp_path / 'run')
    for step in (1, 2, 3):      # each a new process's worth: a new graph, session and saver
        g = tf.Graph()
        with g.as_default():
            tf1.Variable(float(step), name='w')
            ck = checkpoints.Checkpoints(g, td)
            init = tf1.global_variables_initializer()
        sess = session(g, tf1.ConfigProto())
        sess.run(init)
        if step > 1:
            ck.restore_latest(sess)
        ck.save(sess, {'global_step': step}, best=True)
        sess.close()
    assert steps_on_disk(td + '/best') == [3]


def test_a_divergence_first_seen_by_the_histograms_is_the_clean_exit_3(tmp_path, data, capsys,
                                                                        monkeypatch):
    from alexnet_tf1 import presets
    monkeypatch.setitem(presets.PRESETS, 'alexnet', dict(presets.PRESETS['alexnet'], hist_every=1))
    td = str(tmp_path / 'run')
    code = run_train.main(train_args(data, td, '--epochs', '3', '--lr', '1e12'))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1 and 'training diverged' in err[0], err
