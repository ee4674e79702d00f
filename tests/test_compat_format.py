"""Files users already hold keep working: a prepared directory and a train dir in the format
the code wrote when tests/pinned_format.py was made (written there without the package's
code) are read, resumed and evaluated by today's code; and today's code still writes that
format, so that files it writes now stay loadable too."""
import glob
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import pinned_format
from alexnet_tf1.data.reader import open_prepared
from killed_run import ROOT, resumed_from

DO_NOT_EDIT = ('Files written before this change must still load and resume: make the code '
               'read the old layout as well (tests/pinned_format.py writes it), and do not '
               'edit tests/pinned_format.py to match the new one.')


def _cli(script, *args):
    out = subprocess.run([sys.executable, os.path.join(ROOT, script), *args],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _checkpoint(prefix):
    import tensorflow as tf
    reader = tf.train.load_checkpoint(prefix)
    return reader, json.loads(reader.get_tensor('run_state'))


def test_a_pinned_prepared_directory_reads_back_as_written(tmp_path):
    want = pinned_format.write_prepared(str(tmp_path / 'prepared'))
    got = open_prepared(want.path)
    assert got.manifest == want.manifest
    assert (got.num_classes, got.dataset, got.synsets) == (3, 'folders', want.synsets)
    np.testing.assert_array_equal(got.mean, want.mean)
    np.testing.assert_array_equal(got.eigval, want.eigval)
    np.testing.assert_array_equal(got.eigvec, want.eigvec)
    for split in ('train', 'val'):      # train spans two shards, one holding fewer images
        s = got.split(split)
        np.testing.assert_array_equal(s.labels, want.labels[split])
        np.testing.assert_array_equal(s.take(np.arange(len(s))[::-1]),
                                      want.images[split][::-1])


def _momentum_steps(w, v, m, steps):
    """What `steps` updates at learning rate 0 make of weights w and momentum v: the paper's
    v <- m v - lr g, w <- w + v with lr = 0, in float32 as TF computes it."""
    w, v, m = w.copy(), v.copy(), np.float32(m)
    for _ in range(steps):
        v = v * m
        w = w + v
    return w, v


def test_a_pinned_train_dir_resumes_mid_epoch_from_its_newest_checkpoint(tmp_path):
    data = pinned_format.write_prepared(str(tmp_path / 'prepared'))
    run = pinned_format.write_train_dir(str(tmp_path / 'run'), data.path)
    # --epochs is the one recipe flag a resumed run takes: one epoch more than the run's 2
    out = _cli('run_train.py', '--model', 'cifar4', '--data-dir', data.path, '--train-dir',
               run.path, '--gpus', 'cpu', '--epochs', '3', '--print-freq', '1')
    assert resumed_from(out) == run.latest
    # one batch of epoch 2 was trained before the interrupt: it starts at the second
    assert re.findall(r'^epoch (\d)/3 step (\d)/3 ', out, re.M) == [
        ('2', '2'), ('2', '3'), ('3', '1'), ('3', '2'), ('3', '3')]
    newest = max(glob.glob(os.path.join(run.path, 'model.ckpt-*.index')),
                 key=lambda p: int(re.search(r'-(\d+)\.index$', p).group(1)))[:-len('.index')]
    reader, state = _checkpoint(newest)
    assert (state['global_step'], reader.get_tensor('global_step')) == (9, 9)
    assert (state['epoch'], state['batch_in_epoch'], state['epochs']) == (3, 0, 3)
    assert state['history'][0] == run.state['history'][0]          # epoch 1 was not redone
    assert [h['epoch'] for h in state['history']] == [1, 2, 3]
    assert state['spikes'][0] == run.state['spikes'][0]
    assert state['recent_losses'][:4] == run.state['recent_losses']
    # the recipe came from the checkpoint, not from cifar4's preset (seed 0, momentum 0.9)
    for key in ('seed', 'momentum', 'weight_decay', 'lighting', 'batch_size', 'flip'):
        assert state[key] == run.state[key], key
    assert {k: state['config'][k] for k in run.state['config']} == run.state['config']
    # at the run's learning rate 0, five steps from model.ckpt-4's weights and momentum, with
    # the run's momentum 0.85: neither a fresh start nor model.ckpt-3 gives these values
    for name in pinned_format.cifar4_variables(3):
        if not name.endswith(('weights', 'biases')):
            continue
        w, v = _momentum_steps(run.values[name], run.values[name + '/momentum'], 0.85, 5)
        np.testing.assert_allclose(reader.get_tensor(name), w, rtol=1e-6, atol=1e-9,
                                   err_msg=name)
        np.testing.assert_allclose(reader.get_tensor(name + '/momentum'), v, rtol=1e-6,
                                   atol=1e-12, err_msg=name)


def test_a_pinned_train_dir_evaluates_on_the_data_its_state_names(tmp_path):
    import run_eval
    data = pinned_format.write_prepared(str(tmp_path / 'prepared'))
    run = pinned_format.write_train_dir(str(tmp_path / 'run'), data.path)
    assert run_eval.main(['--train-dir', run.path, '--gpus', 'cpu']) == 0     # no --data-dir
    with open(os.path.join(run.path, 'eval.json')) as f:
        result = json.load(f)
    assert (result['model'], result['global_step'], result['checkpoint']) == \
        ('cifar4', 4, run.latest)
    # the run trained without mirrors (its state's flip): the 5 unmirrored crops
    assert (result['n_images'], result['crops'], result['dataset']) == (4, 5, 'folders')
    for key in ('top1_error_1crop', 'top5_error_1crop', 'top1_error_5crop'):
        assert 0 <= result[key] <= 100, key
    assert result['top1_error_1crop'] in {0.0, 25.0, 50.0, 75.0, 100.0}     # of 4 images
    assert (result['run']['epoch'], result['run']['seed'], result['run']['last_val_top1_error'],
            result['run']['loss_spikes']) == (1, 7, 0.5, run.state['spikes'])


def test_a_checkpoint_lacking_a_variable_is_one_line_naming_it_and_is_kept(tmp_path, monkeypatch,
                                                                          capsys):
    import run_eval
    import run_train
    full = pinned_format.cifar4_variables
    monkeypatch.setattr(pinned_format, 'cifar4_variables', lambda n: {
        k: v for k, v in full(n).items() if not k.startswith('tower0/fc4/biases')})
    data = pinned_format.write_prepared(str(tmp_path / 'prepared'))
    run = pinned_format.write_train_dir(str(tmp_path / 'run'), data.path)
    before = {f: open(os.path.join(run.path, f), 'rb').read() for f in os.listdir(run.path)
              if os.path.isfile(os.path.join(run.path, f))}
    capsys.readouterr()
    for main, argv in ((run_eval.main, ['--train-dir', run.path, '--gpus', 'cpu']),
                       (run_train.main, ['--model', 'cifar4', '--data-dir', data.path,
                                         '--train-dir', run.path, '--gpus', 'cpu'])):
        assert main(argv) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and err[0].startswith('error: '), err
        assert 'tower0/fc4/biases' in err[0] and run.latest in err[0], err
    after = {f: open(os.path.join(run.path, f), 'rb').read() for f in os.listdir(run.path)
             if os.path.isfile(os.path.join(run.path, f))}
    assert after == before


# --- today's code still writes the pinned layout ----------------------------------------

def _layout(root):
    """Every file of a directory (digits of shard and step numbers kept), JSON files as
    their nested keys and value types, arrays as dtype and shape without their length."""
    def shape_of(v):
        if isinstance(v, dict):
            return {k: shape_of(x) for k, x in v.items()}
        if isinstance(v, list):
            return sorted({json.dumps(shape_of(x), sort_keys=True) for x in v})
        if v is None:
            return 'null'
        # an int where a float may stand is the same format (JSON writes 0.0 as 0.0, 1 as 1)
        return 'number' if isinstance(v, (int, float)) and not isinstance(v, bool) else \
            type(v).__name__
    out = {}
    for path in sorted(glob.glob(os.path.join(root, '**', '*'), recursive=True)):
        rel = os.path.relpath(path, root)
        if os.path.isdir(path):
            continue
        if rel.endswith('.json'):
            with open(path) as f:
                out[rel] = shape_of(json.load(f))
        elif rel.endswith('.npy'):
            a = np.load(path)
            out[rel] = (a.dtype.str, a.shape[1:] if rel.count('/') else a.shape)
        elif rel.endswith('.npz'):
            with np.load(path) as z:
                out[rel] = {k: (z[k].dtype.str, z[k].shape) for k in z.files}
        elif rel == 'synsets.txt':
            with open(path) as f:
                out[rel] = sorted({line.count('\t') for line in f})
        else:
            out[rel] = 'present'
    return out


def _same(today, pinned, what):
    if today != pinned:
        diff = {k: (today.get(k), pinned.get(k)) for k in set(today) | set(pinned)
                if today.get(k) != pinned.get(k)}
        pytest.fail(f'{what} differs from the pinned format (today, pinned): {diff}. '
                    + DO_NOT_EDIT)


def test_prepare_still_writes_the_pinned_prepared_layout(tmp_path):
    from alexnet_tf1.data.prepare import prepare
    rng = np.random.default_rng(1)
    src = tmp_path / 'src'
    # as the pinned set: 3 classes, 6 + 4 pictures, one unreadable file among the first
    # class's training files, shards of 4 files
    for split, per_class in (('train', (2, 2, 2)), ('val', (2, 1, 1))):
        for c, n in enumerate(per_class):
            d = src / split / f'n{c + 1:08d}'
            d.mkdir(parents=True)
            for i in range(n):
                h, w = rng.integers(32, 257, 2)
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
                    d / f'{i:03d}.png')
    (src / 'train' / 'n00000001' / 'broken.png').write_bytes(b'not a picture')
    today = str(tmp_path / 'today')
    prepare(str(src), today, workers=1, shard_size=4, size=pinned_format.SIZE, progress=False)
    pinned = pinned_format.write_prepared(str(tmp_path / 'pinned'))
    # shards hold images of the same side: only their count may differ (none here)
    _same(_layout(today), _layout(pinned.path), 'the prepared directory')
    with open(os.path.join(today, 'manifest.json')) as f:
        manifest = json.load(f)
    assert (manifest['format'], manifest['image_size'], manifest['channels']) == \
        (pinned_format.FORMAT, pinned_format.SIZE, 3), DO_NOT_EDIT


def test_training_still_writes_the_pinned_checkpoint_layout(tmp_path):
    import run_train
    data = pinned_format.write_prepared(str(tmp_path / 'prepared'))
    today = str(tmp_path / 'today')
    # a save every step leaves mid-epoch checkpoints (1, 2) beside the epoch's end (3)
    assert run_train.main(['--model', 'cifar4', '--data-dir', data.path, '--train-dir', today,
                           '--gpus', 'cpu', '--epochs', '1', '--batch-size', '2',
                           '--save-every', '1']) == 0
    pinned = pinned_format.write_train_dir(str(tmp_path / 'pinned'), data.path)
    for mine, theirs in ((2, pinned.latest), (3, pinned.earlier)):     # mid-epoch, end
        reader, state = _checkpoint(os.path.join(today, f'model.ckpt-{mine}'))
        # recorded since the pinned format; a state without it is read as fp32
        assert state.pop('precision') == 'fp32'
        variables = {k: (v, reader.get_variable_to_dtype_map()[k].name)
                     for k, v in reader.get_variable_to_shape_map().items()}
        _same(variables, pinned_format.cifar4_variables(3), 'the checkpoint\'s variables')
        _, pinned_state = _checkpoint(theirs)
        pinned_state.pop('spikes')      # recorded only when a loss jumps
        _same(_keys(state, nested=mine == 3), _keys(pinned_state, nested=mine == 3),
              'the run state in the checkpoint')
    keep = re.compile(r'(best/)?(checkpoint|run\.json|model\.ckpt-\d+\.(index|data-.*))$')
    files = [{re.sub(r'ckpt-\d+', 'ckpt-N', k): v for k, v in _layout(d).items() if keep.match(k)}
             for d in (today, pinned.path)]
    for layout in files[1]['run.json'], files[1]['best/run.json']:
        del layout['spikes']
    for layout in files[0]['run.json'], files[0]['best/run.json']:
        assert layout.pop('precision') == 'str'         # as in the checkpoint, above
    del files[1]['run.json']['epoch_train']      # pinned's newest is mid-epoch, today's not
    _same(files[0], files[1], 'the train dir')
    # AlexNet's own checkpoints, as the paper ran it, hold the same names and shapes
    from alexnet_tf1 import devices
    from alexnet_tf1.config import defaults_for
    from alexnet_tf1.training import graph
    from alexnet_tf1.tf_compat import tf1
    g = graph.build(defaults_for('alexnet'), devices.resolve('cpu', towers=2))
    with g.graph.as_default():
        names = {v.op.name: (v.shape.as_list(), v.dtype.base_dtype.name)
                 for v in tf1.global_variables()}
    pinned_names = pinned_format.alexnet_variables()
    pinned_names.pop('run_state')       # added by the checkpoints, not the graph
    _same(names, pinned_names, "AlexNet's variables")


def _keys(state, nested):
    """A run state's keys; nested: and those of the dicts and list entries it holds (the
    history is empty until an epoch ends)."""
    out = {}
    for k, v in state.items():
        if not nested:
            out[k] = 'present'
        elif isinstance(v, dict):
            out[k] = sorted(v)
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            out[k] = sorted({key for entry in v for key in entry})
        else:
            out[k] = 'present'
    return out
