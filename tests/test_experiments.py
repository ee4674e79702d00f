"""python -m alexnet_tf1.experiments: arms are train dirs that continue, the budget stops
cleanly, and the tables compute what they say."""
import json
import os
import re
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from alexnet_tf1.training import checkpoints, graph

from alexnet_tf1 import config, devices

from alexnet_tf1.experiments import paper as experiments
from alexnet_tf1.tf_compat import tf1
from tiny_run import tiny_prepared

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _hist(errors):
    return [{'epoch': i + 1, 'train_top1_error': e} for i, e in enumerate(errors)]


def test_epochs_to_25_is_the_first_epoch_at_or_under_it():
    assert experiments.epochs_to(_hist([0.9, 0.5, 0.25, 0.1])) == 3
    assert experiments.epochs_to(_hist([0.9, 0.3])) is None
    assert experiments.epochs_to(_hist([None, 0.2])) == 2


def test_each_neuron_gets_its_fastest_rate_and_the_ratio_is_of_those():
    arms = {'relu-lr0.01': {'status': 'done', 'history': _hist([0.8, 0.5, 0.3, 0.2])},
            'relu-lr0.1': {'status': 'done', 'history': _hist([0.5, 0.2, 0.1, 0.1])},
            'tanh-lr0.01': {'status': 'done', 'history': _hist([0.9, 0.7, 0.5, 0.4, 0.3, 0.24])},
            'tanh-lr0.1': {'status': 'done', 'history': _hist([0.9, 0.9, 0.9, 0.9, 0.9, 0.9])}}
    lines, summary, png = experiments.relu_vs_tanh_table(arms)
    assert summary['chosen'] == {'relu': 'relu-lr0.1', 'tanh': 'tanh-lr0.01'}
    assert summary['epochs_to_25'] == {'relu': 2, 'tanh': 6} and summary['ratio'] == 3.0
    assert png.ndim == 3 and png.shape[2] == 3
    assert any('3.0x' in line for line in lines)


def test_no_ratio_is_claimed_for_an_arm_that_has_not_finished():
    arms = {'relu-lr0.01': {'status': 'done', 'history': _hist([0.5, 0.2])},
            'tanh-lr0.01': {'status': 'stopped by the budget; the same command continues it',
                            'history': _hist([0.9, 0.9, 0.9])}}
    lines, summary, _ = experiments.relu_vs_tanh_table(arms)
    assert summary['ratio'] is None and not any('did not reach' in line for line in lines)
    arms['tanh-lr0.01']['status'] = 'done'
    lines, _, _ = experiments.relu_vs_tanh_table(arms)
    assert any('more than 1.5x' in line for line in lines)


def test_ablation_changes_are_against_the_default_beside_the_papers():
    arms = {'default': {'status': 'done', 'top1_error_10crop': 10.0, 'top5_error_10crop': 1.0},
            'no-lrn': {'status': 'done', 'top1_error_10crop': 12.5, 'top5_error_10crop': 0.5},
            'pool-2x2': {'status': 'not run: out of budget'}}
    lines, summary, _ = experiments.ablations_table(arms)
    assert summary['no-lrn'] == {'top1_change': 2.5, 'top5_change': -0.5, 'paper': (1.4, 1.2)}
    assert summary['pool-2x2']['top1_change'] is None
    assert any(line.startswith('pool-2x2') and 'out of budget' in line for line in lines)


def test_relu_and_tanh_nets_start_from_the_same_weights():
    values = []
    for act in ('relu', 'tanh'):
        g = graph.build(config.defaults_for('cifar4', activation=act),
                        devices.resolve('cpu', towers=1), seed=3, train=False)
        with g.graph.as_default(), tf1.Session(graph=g.graph) as sess:
            sess.run(tf1.global_variables_initializer())
            values.append(sess.run({v.op.name: v for v in tf1.global_variables()}))
    assert values[0].keys() == values[1].keys() and len(values[0]) >= 8
    for name in values[0]:
        np.testing.assert_array_equal(values[0][name], values[1][name])


def test_budget_zero_runs_nothing_then_the_same_command_finishes_and_keeps_done_arms(
        tmp_path, capsys):
    data = tiny_prepared(str(tmp_path))
    out = str(tmp_path / 'exp')
    argv = ['relu-vs-tanh', '--data-dir', data, '--out', out, '--lrs', '0.01', '--epochs', '1',
            '--gpus', 'cpu']
    assert experiments.main(argv + ['--budget-minutes', '0']) == 0
    with open(os.path.join(out, 'relu-vs-tanh', 'result.json')) as f:
        doc = json.load(f)
    assert {a['status'] for a in doc['arms'].values()} == {'not run: out of budget'}
    assert 'unfinished' in capsys.readouterr().out

    assert experiments.main(argv) == 0
    with open(os.path.join(out, 'relu-vs-tanh', 'result.json')) as f:
        doc = json.load(f)
    assert [a['status'] for a in doc['arms'].values()] == ['done', 'done']
    assert all(0 <= a['history'][0]['train_top1_error'] <= 1 for a in doc['arms'].values())
    png = os.path.join(out, 'relu-vs-tanh', 'relu-vs-tanh-seed0.png')
    import imageio.v3 as iio
    assert iio.imread(png).shape == (420, 640, 3)
    # a finished arm is not trained again, and keeps the minutes its training took
    ckpt = os.path.join(out, 'relu-vs-tanh', 'arms', 'relu-lr0.01-seed0', 'checkpoint')
    before = os.stat(ckpt).st_mtime_ns
    assert experiments.main(argv) == 0
    assert os.stat(ckpt).st_mtime_ns == before
    with open(os.path.join(out, 'relu-vs-tanh', 'result.json')) as f:
        again = json.load(f)
    assert again['arms']['relu-lr0.01']['train_minutes'] == \
        doc['arms']['relu-lr0.01']['train_minutes'] > 0


def test_a_directory_that_is_not_prepared_is_one_line(tmp_path, capsys):
    assert experiments.main(['ablations', '--data-dir', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error:') and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize('bad', ['0.01,x', '0', '-1'])
def test_bad_rates_are_one_line(bad, capsys):
    with pytest.raises(SystemExit):
        experiments.main(['relu-vs-tanh', '--lrs', bad])
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_run_without_mirrors_is_compared_on_its_five_crops():
    arms = {'default': {'status': 'done', 'top1_error_10crop': 10.0, 'top5_error_10crop': 1.0,
                        'crops': 10},
            'no-flip': {'status': 'done', 'top1_error_5crop': 13.0, 'top5_error_5crop': 2.0,
                        'crops': 5}}
    _, summary, _ = experiments.ablations_table(arms)
    assert summary['no-flip']['top1_change'] == 3.0 and summary['no-flip']['top5_change'] == 1.0


def _lines_of_fifo(path, writer):
    """Lines written into the FIFO at `path` until its last writer closes it; `writer` is
    the process that opens it first (if it dies before that, the open is let go)."""
    def let_go():
        writer.wait()
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:         # no one reading: the test has its lines already
            pass
    threading.Thread(target=let_go, daemon=True).start()
    with open(path) as f:
        yield from f


def test_an_experiment_killed_with_sigkill_continues_its_arm_to_the_uninterrupted_values(
        tmp_path):
    from synthetic_prepared import write_prepared
    from test_resume_bit_exact import assert_same_run
    import run_train
    rng = np.random.default_rng(0)

    def split(n):
        labels = np.arange(n) % 2
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        images[..., 0] = (labels * 200)[:, None, None]
        return images, labels.astype(np.int32)
    # the cifar4 recipe's batch of 128: 4 steps an epoch
    data = write_prepared(str(tmp_path / 'data'), {'train': split(512), 'val': split(64)},
                          num_classes=2, dataset='tiny')
    out = str(tmp_path / 'exp')
    argv = ['relu-vs-tanh', '--data-dir', data, '--out', out, '--lrs', '0.01', '--epochs', '5',
            '--gpus', 'cpu']
    arm = os.path.join(out, 'relu-vs-tanh', 'arms', 'relu-lr0.01-seed0')
    os.makedirs(os.path.dirname(arm))
    os.mkfifo(arm + '.log')         # the arm's run_train.py prints to the test, not a file
    p = subprocess.Popen([sys.executable, '-m', 'alexnet_tf1.experiments', *argv], cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    printed = []
    for line in _lines_of_fifo(arm + '.log', p):
        printed.append(line)
        if line.startswith('epoch 1/5 step 4/4'):      # four epochs before the arm is done
            os.kill(p.pid, signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL
    # the arm saw its parent die, stopped as Ctrl-C stops it, with its step saved
    assert any(line.startswith('interrupted: saved') for line in printed), printed
    at_kill = checkpoints.read_state(checkpoints.latest(arm))
    assert 4 <= at_kill['global_step'] < 20 and at_kill['epoch'] < 5
    os.unlink(arm + '.log')

    assert experiments.main(argv) == 0
    with open(os.path.join(out, 'relu-vs-tanh', 'result.json')) as f:
        doc = json.load(f)
    assert [a['status'] for a in doc['arms'].values()] == ['done', 'done']
    # the arm run whole, as the experiment describes it: Figure 1's net, ReLUs, that rate
    whole = str(tmp_path / 'whole')
    assert run_train.main(['--model', 'cifar4', '--activation', 'relu', '--lr', '0.01',
                           '--data-dir', data, '--seed', '0', '--gpus', 'cpu', '--epochs', '5',
                           '--train-dir', whole]) == 0
    assert_same_run(arm, whole)
    assert doc['arms']['relu-lr0.01']['history'] == \
        checkpoints.read_state(checkpoints.latest(whole))['history']
    # continued from the step it saved, not trained again from the start
    with open(arm + '.log') as f:
        resumed = re.findall(r'^resuming \S+: epoch \d+, step (\d+),', f.read(), re.M)
    assert resumed == [str(at_kill['global_step'])]
