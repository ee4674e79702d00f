"""run_train.py: checkpoints, resume, SIGKILL, the NaN guard (on a tiny set, --gpus cpu)."""
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import run_train
import tensorflow as tf
from alexnet_tf1.training import checkpoints
from killed_run import ROOT, assert_same_run, run_until_killed, state_of
from tiny_run import tiny_prepared, train_args


@pytest.fixture
def data(tmp_path):
    return tiny_prepared(str(tmp_path))


def test_two_steps_write_a_checkpoint_that_carries_the_run(tmp_path, data):
    td = str(tmp_path / 'run')
    assert run_train.main(train_args(data, td, '--epochs', '1')) == 0
    s = state_of(td)
    assert (s['model'], s['global_step'], s['epoch'], s['batch_in_epoch']) == ('alexnet', 2, 1, 0)
    assert s['config']['lrn'] == {'depth_radius': 2, 'bias': 2.0, 'alpha': 1e-4, 'beta': 0.75}
    assert os.path.exists(os.path.join(td, 'best', 'run.json'))
    assert os.path.exists(os.path.join(td, 'conv1_filters.png'))
    assert any(f.startswith('events.out.tfevents') for f in os.listdir(td))


def test_resumed_run_continues_the_global_step_and_the_schedule(tmp_path, data):
    td = str(tmp_path / 'run')
    assert run_train.main(train_args(data, td, '--epochs', '1')) == 0
    after_one = state_of(td)['schedule']
    assert after_one['drops'] == 1 and after_one['lr'] == pytest.approx(1e-4)
    assert run_train.main(train_args(data, td, '--epochs', '2')) == 0
    s = state_of(td)
    assert (s['global_step'], s['epoch']) == (4, 2)
    assert s['schedule']['drops'] == 2 and s['schedule']['lr'] == pytest.approx(1e-5)
    assert [h['epoch'] for h in s['history']] == [1, 2]


def test_more_epochs_on_resume_move_where_a_cosine_reaches_0(tmp_path, data, capsys):
    td = str(tmp_path / 'run')
    cosine = ['--lr-schedule', 'cosine']
    assert run_train.main(train_args(data, td, '--epochs', '1', *cosine)) == 0
    assert run_train.main(train_args(data, td, '--epochs', '3', *cosine)) == 0
    lrs = re.findall(r'^epoch [23]/3 step \d+/2  loss \S+  lr (\S+)', capsys.readouterr().out,
                     re.M)
    assert state_of(td)['schedule']['epochs'] == 3
    # two steps an epoch: steps 3-6 end 1.5, 2, 2.5 and 3 epochs into the run's 3
    want = [0.001 * (1 + math.cos(math.pi * e / 3)) / 2 for e in (1.5, 2, 2.5, 3)]
    assert [float(lr) for lr in lrs] == pytest.approx(want, rel=1e-4, abs=1e-9)


def test_resuming_with_a_changed_recipe_is_one_line_naming_the_flags(tmp_path, data, capsys):
    td = str(tmp_path / 'run')
    assert run_train.main(train_args(data, td, '--epochs', '1')) == 0
    before = {f: open(os.path.join(td, f), 'rb').read() for f in os.listdir(td)
              if f.startswith('model.ckpt')}
    capsys.readouterr()
    args = train_args(data, td, '--epochs', '2')
    args[args.index('--lr') + 1] = '0.5'
    assert run_train.main(args + ['--batch-size', '8', '--momentum', '0.9']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and '--lr 0.5 (the run: 0.001)' in err[0]
    assert '--batch-size 8 (the run: 4)' in err[0] and '--momentum' not in err[0]   # unchanged
    assert {f: open(os.path.join(td, f), 'rb').read() for f in before} == before


def test_restart_sets_the_old_run_aside(tmp_path, data):
    td = str(tmp_path / 'run')
    assert run_train.main(train_args(data, td, '--epochs', '1')) == 0
    assert run_train.main(train_args(data, td, '--epochs', '1', '--restart')) == 0
    assert state_of(td)['global_step'] == 2
    assert state_of(td + '.old-1')['global_step'] == 2


# the default run kills AlexNet mid-epoch (tests/test_resume_bit_exact.py) and a small Inception
# with batch norm and RMSProp (tests/test_resume_bn_rmsprop.py); this is the published v3
# itself, its 96 batch norms and 24 million weights with two RMSProp slots each: two minutes on
# a 2-core Zen 4, so -m slow
@pytest.mark.slow
def test_inception_v3_killed_with_sigkill_resumes_its_batch_norms_and_rmsprop_slots(tmp_path,
                                                                                   data):
    td = str(tmp_path / 'run')
    # argparse keeps the last --input-size given: 75 here, not tiny_run's 67
    args = train_args(data, td, '--epochs', '50', '--save-every', '1', '--model', 'inception-v3',
                      '--input-size', '75', '--bn-decay', '0.5', '--optimizer', 'rmsprop',
                      '--keep', '2')
    cmd = [sys.executable, os.path.join(ROOT, 'run_train.py'), *args]
    run_until_killed(cmd, 'epoch 3/', 'step 1/2')  # while it writes step 5's checkpoint
    assert state_of(td)['global_step'] >= 4
    resume = [a if a != '50' else '4' for a in cmd]
    out = subprocess.run(resume, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert 'resuming' in out.stdout
    s = state_of(td)
    assert (s['global_step'], s['epoch']) == (8, 4)
    # the same run uninterrupted ends with the same weights, moving statistics, RMSProp
    # slots and run state: the same data order, crops, flips and lighting (drawn per epoch
    # from the seed) and dropout masks (keyed on the global step), on deterministic CPU
    # kernels: bit-identical
    whole = str(tmp_path / 'whole')
    assert run_train.main([a if a != td else whole for a in resume[2:]]) == 0
    names = assert_same_run(td, whole)
    assert len(names) > 30
    # 94 batch norms and the aux head's 2, moved away from their initial 1
    a = tf.train.load_checkpoint(checkpoints.latest(td))
    stats = [n for n in names if n.endswith('moving_variance')]
    assert len(stats) == 96 and all(np.any(a.get_tensor(n) != 1) for n in stats)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, data, capsys):
    td = str(tmp_path / 'run')
    code = run_train.main(train_args(data, td, '--epochs', '3', '--lr', '1e12', '--save-every', '1'))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert len(err) == 1 and 'training diverged' in err[0] and 'lower --lr' in err[0]
    good = checkpoints.latest(td)
    if good:                                    # every checkpoint kept holds finite weights
        import tensorflow as tf
        reader = tf.train.load_checkpoint(good)
        for name in reader.get_variable_to_shape_map():
            if name.endswith('weights'):
                assert np.all(np.isfinite(reader.get_tensor(name))), name


FULL = ("Graph execution error:\n\nDetected at node 'save/SaveV2' defined at (most recent call "
        "last):\n  File \"run_train.py\", line 34\nNode: 'save/SaveV2'\n{}/model.ckpt-2.data-"
        "00000-of-00001.tempstate1; No space left on device\n\t [[{{{{node save/SaveV2}}}}]]")


@pytest.mark.parametrize('where', ['saver', 'run.json'])
def test_a_full_disk_is_one_line_and_the_run_resumes_from_what_was_saved(tmp_path, data, capsys,
                                                                        monkeypatch, where):
    # the second save fails as a full disk makes TF's Saver (its message as TF 2.21 words it
    # on a full tmpfs) or our run.json fail
    td = str(tmp_path / 'run')
    args = train_args(data, td, '--epochs', '1', '--save-every', '1')
    calls = []
    if where == 'saver':
        real, owner, name = tf.compat.v1.train.Saver.save, tf.compat.v1.train.Saver, 'save'
        def failing(self, *a, **k):
            calls.append(1)
            if len(calls) == 2:
                raise tf.errors.ResourceExhaustedError(None, None, FULL.format(td))
            return real(self, *a, **k)
    else:
        real, owner, name = checkpoints.atomic_write_json, checkpoints, 'atomic_write_json'
        def failing(path, obj):
            calls.append(1)
            if len(calls) == 3:        # run.json and best/run.json of step 1, then step 2's
                raise OSError(28, 'No space left on device')
            return real(path, obj)
    monkeypatch.setattr(owner, name, failing)
    assert run_train.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    kept = 1 if where == 'saver' else 2     # run.json fails after step 2's checkpoint is whole
    assert err == [f'error: cannot save step 2 in {td} (No space left on device); its newest '
                   f'checkpoint is step {kept}: make room and run the same command to resume']
    monkeypatch.setattr(owner, name, real)
    assert run_train.main(args) == 0
    out = capsys.readouterr().out
    assert f'resuming {td}/model.ckpt-{kept}' in out
    assert state_of(td)['global_step'] == 2


def test_a_train_dir_of_another_model_is_a_one_line_error(tmp_path, data, capsys):
    td = str(tmp_path / 'run')
    assert run_train.main(train_args(data, td, '--epochs', '1')) == 0
    capsys.readouterr()
    assert run_train.main(train_args(data, td, '--model', 'caffenet')) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'holds a alexnet run, not caffenet' in err[0]


def test_an_unknown_model_is_a_one_line_error_naming_the_choices(tmp_path, data, capsys):
    with pytest.raises(SystemExit) as e:
        run_train.main(train_args(data, str(tmp_path / 'run'), '--model', 'nosuchnet'))
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "'nosuchnet'" in err[0] and 'caffenet' in err[0]


@pytest.mark.parametrize('model, size, channels, classes, extra', [
    ('lenet5', 32, 1, 10, []), ('lenet5-relu', 32, 1, 10, []),
    ('vgg-a', 36, 3, 3, ['--input-size', '32']), ('vgg-c', 36, 3, 3, ['--input-size', '32'])])
def test_other_models_train_and_evaluate_on_small_data(tmp_path, model, size, channels, classes,
                                                        extra):
    import run_eval
    from synthetic_prepared import write_prepared
    rng = np.random.default_rng(0)
    def split(n):
        return (rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8),
                (np.arange(n) % classes).astype(np.int32))
    data = write_prepared(str(tmp_path / 'data'), {'train': split(8), 'val': split(4)},
                          num_classes=classes, dataset='tiny')
    td = str(tmp_path / 'run')
    assert run_train.main(['--model', model, '--data-dir', data, '--train-dir', td, '--gpus', 'cpu',
                           '--batch-size', '4', '--epochs', '1', *extra]) == 0
    s = state_of(td)
    assert (s['model'], s['global_step'], s['config']['input_size']) == \
        (model, 2, int(extra[1]) if extra else size)
    assert run_eval.main(['--model', model, '--train-dir', td, '--gpus', 'cpu']) == 0
    result = json.load(open(os.path.join(td, 'eval.json')))
    assert result['model'] == model and result['n_images'] == 4
    if model.startswith('vgg'):                 # VGG's own test: dense at Q = the stored size
        assert result['dense_scale'] == size and 0 <= result['top1_error_dense'] <= 100
    # --images on the user's (colour) picture: a one-channel model reads its luminance
    from PIL import Image
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(tmp_path / 'p.png')
    assert run_eval.main(['--train-dir', td, '--gpus', 'cpu', '--images', str(tmp_path / 'p.png'),
                          '--sheet', str(tmp_path / 's.png')]) == 0


def test_init_from_caffe_npy_loads_the_file_into_both_towers(tmp_path, data, capsys):
    """export (random weights, the published layout) -> --init-from with lr 0 -> same weights."""
    import tensorflow as tf
    from alexnet_tf1 import devices
    from alexnet_tf1.training import graph
    from alexnet_tf1.weights import importers
    from alexnet_tf1.config import ModelConfig
    from alexnet_tf1.tf_compat import session, tf1
    from tiny_run import CROP
    cfg = ModelConfig(num_classes=1000, input_size=CROP)
    placement = devices.resolve('cpu')
    g = graph.build(cfg, placement, seed=9, train=False)
    sess = session(g.graph, placement.session_config())
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
    npy = str(tmp_path / 'bvlc_alexnet.npy')
    importers.export_caffe_alexnet_npy(sess, g.net, npy)
    want = sess.run(g.net.params[('conv2', 1)]['w'])
    td = str(tmp_path / 'run')
    assert run_train.main(train_args(data, td, '--epochs', '1', '--lr', '0', '--init-from', npy)) == 0
    assert 'note: left at their initialisation, not loaded: fc8 (' in capsys.readouterr().out
    reader = tf.train.load_checkpoint(checkpoints.latest(td))
    np.testing.assert_array_equal(reader.get_tensor('tower1/conv2/weights'), want)
    assert state_of(td)['config']['lrn'] == {'depth_radius': 2, 'bias': 1.0, 'alpha': 2e-5,
                                             'beta': 0.75}
    assert state_of(td)['config']['lrn_span'] == 'all'      # Caffe's window, with its weights


def test_init_from_a_file_of_the_wrong_shape_is_a_one_line_error(tmp_path, data, capsys):
    npy = str(tmp_path / 'bad.npy')
    np.save(npy, {'conv1': [np.zeros((3, 3, 3, 96), np.float32), np.zeros(96, np.float32)]},
            allow_pickle=True)
    assert run_train.main(train_args(data, str(tmp_path / 'run'), '--init-from', npy)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'conv1' in err[0]
