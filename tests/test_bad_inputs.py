"""Bad invocations of every command, as a table: each exits 2 with exactly one line on stderr,
`error: ...`, naming the flag or file at fault (so a case cannot pass by failing somewhere
else), and leaves every file it was given - train dirs, prepared dirs, weight files - as it
was, writing nothing new.

Each row is (command, arguments, the text the error line must hold). run_train.py rows start
from a complete command line for a fresh train dir (tiny_run.train_args), their arguments
appended: argparse keeps the last of a repeated flag, so a row overrides exactly what it names.
"""
import glob
import json
import os
import pickle
import shutil
import types

import imageio.v3 as iio
import numpy as np
import pytest

import run_eval
import run_train
from alexnet_tf1.bench import report as bench
from alexnet_tf1.experiments import paper as experiments, seeds as matrix
from alexnet_tf1.weights import export
from alexnet_tf1.models import summary
from alexnet_tf1.data import prepare
from tiny_run import SIZE, tiny_prepared, train_args


class RunsCode:
    """Unpickled, it makes a directory: a snapshot of the root sees it."""

    def __init__(self, witness):
        self.witness = witness

    def __reduce__(self):
        return os.mkdir, (self.witness,)


def snapshot(root):
    """Every file and directory under root: a file's size, mtime and ctime, and its bytes when
    small. Any write to a file moves its ctime, which no system call sets back, so equal
    snapshots mean equal bytes also for the checkpoints too big to compare each time."""
    out = {}
    for p in glob.glob(root + '/**', recursive=True):
        s = os.stat(p)
        if os.path.isdir(p):
            out[p] = 'dir'
        else:
            out[p] = (s.st_size, s.st_mtime_ns, s.st_ctime_ns,
                      open(p, 'rb').read() if s.st_size < 1 << 20 else None)
    return out


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('bad'))
    data = tiny_prepared(root)
    run = os.path.join(root, 'run')
    assert run_train.main(train_args(data, run, '--epochs', '1')) == 0
    w = {'root': root, 'data': data, 'run': run}

    def broken(name, damage):
        d = os.path.join(root, name)
        shutil.copytree(data, d)
        damage(d)
        return d
    w['bad_manifest'] = broken('bad_manifest', lambda d: open(d + '/manifest.json', 'w').write('{'))
    w['no_mean'] = broken('no_mean', lambda d: os.remove(d + '/mean.npy'))
    w['no_shard'] = broken('no_shard', lambda d: os.remove(d + '/train/images-00000.npy'))
    w['no_val'] = broken('no_val', lambda d: os.remove(d + '/val/images-00000.npy'))
    w['no_synsets'] = broken('no_synsets', lambda d: os.remove(d + '/synsets.txt'))
    w['three'] = tiny_prepared(os.path.join(root, 'three'), classes=3)
    damaged = os.path.join(root, 'damaged')
    shutil.copytree(run, damaged)
    for index in glob.glob(damaged + '/**/model.ckpt-*.index', recursive=True):
        open(index, 'r+b').truncate(20)
    w['damaged'] = damaged
    with open(os.path.join(root, 'hostile.npy'), 'wb') as f:
        np.save(f, {'conv1': RunsCode(os.path.join(root, 'pwned'))}, allow_pickle=True)
    cifar = os.path.join(root, 'cifar', 'cifar-10-batches-py')     # CIFAR-10 ships pickles
    os.makedirs(cifar)
    for name in ('batches.meta', 'test_batch') + tuple(f'data_batch_{i}' for i in range(1, 6)):
        with open(os.path.join(cifar, name), 'wb') as f:
            pickle.dump(RunsCode(os.path.join(root, 'pwned')), f)
    w['cifar'] = os.path.dirname(cifar)
    np.save(os.path.join(root, 'wrong.npy'),
            {'conv1': [np.zeros((3, 3, 3, 96), np.float32), np.zeros(96, np.float32)]},
            allow_pickle=True)
    np.save(os.path.join(root, 'mean.npy'), np.full((SIZE, SIZE, 3), 100, np.float32))
    open(os.path.join(root, 'text.npy'), 'w').write('not weights\n')
    open(os.path.join(root, 'cut.h5'), 'wb').write(b'\x89HDF\r\n\x1a\n' + b'\0' * 100)
    open(os.path.join(root, 'cut.jpg'), 'wb').write(b'\xff\xd8\xff')
    open(os.path.join(root, 'note.jpg'), 'w').write('a note, not a picture\n')
    iio.imwrite(os.path.join(root, 'good.png'),
                np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    open(os.path.join(root, 'rows.jsonl'), 'w').write('{"path": "native", "seed": 0}\nnot json\n')
    os.makedirs(os.path.join(root, 'empty'))
    json.dump({}, open(os.path.join(root, 'file.json'), 'w'))
    return w


T, E, P = 'run_train', 'run_eval', 'prepare'
X, XP, B, S, M = 'experiments', 'export', 'bench', 'summary', 'matrix'
MAINS = {T: run_train.main, E: run_eval.main, P: prepare.main, X: experiments.main,
         XP: export.main, B: bench.main, S: summary.main, M: matrix.main}
RESUME = ['--train-dir', '{run}']       # the tiny run: alexnet, 2 classes, 1 epoch done
GOOD = '{root}/good.png'

CASES = [
    # run_train.py: flags
    (T, ['--model', 'nosuchnet'], '--model'),
    (T, ['--batch-size', 'x'], '--batch-size'),
    (T, ['--batch-size', '0'], '--batch-size 0'),
    (T, ['--epochs', '-1'], '--epochs -1'),
    (T, ['--epochs', '0'], '--epochs 0'),
    (T, ['--momentum', '1.5'], '--momentum 1.5'),
    (T, ['--lr', '-0.01'], '--lr -0.01'),
    (T, ['--weight-decay', '-1'], '--weight-decay'),
    (T, ['--keep', '0'], '--keep 0'),
    (T, ['--save-every', '0'], '--save-every 0'),
    (T, ['--warmup-epochs', '-1'], '--warmup-epochs'),
    (T, ['--label-smoothing', '1'], '--label-smoothing 1'),
    (T, ['--lr-schedule', 'linear'], '--lr-schedule'),
    (T, ['--preset', 'nosuch'], '--preset'),
    (T, ['--frobnicate'], '--frobnicate'),
    (T, ['--model', 'vgg-a', '--no-lrn'], '--no-lrn'),
    (T, ['--gpus', '7'], '--gpus 7'),
    (T, ['--gpus', 'fast'], "'fast'"),
    (T, ['--gpus', 'cpu:3'], '--gpus cpu:3'),
    (T, ['--mean', '{root}/mean.npy'], '--mean'),          # without --init-from it means nothing
    (T, ['--job-name', 'worker'], '--ps-hosts'),
    (T, ['--job-name', 'worker', '--ps-hosts', 'a:1', '--worker-hosts', 'b:1',
         '--task-index', '3'], '--task-index 3'),
    # run_train.py: the data
    (T, ['--data-dir', '{root}/nowhere'], 'nowhere'),
    (T, ['--data-dir', '{root}/file.json'], 'file.json'),
    (T, ['--data-dir', '{bad_manifest}'], 'bad_manifest/manifest.json'),
    (T, ['--data-dir', '{no_mean}'], 'no_mean/mean.npy'),
    (T, ['--data-dir', '{no_shard}'], 'no_shard/train/images-00000.npy'),
    (T, ['--data-dir', '{no_synsets}'], 'no_synsets: unreadable synsets.txt'),
    # run_train.py: weights to start from and layers to train
    (T, ['--init-from', '{root}/nowhere.npy'], 'nowhere.npy'),
    (T, ['--init-from', '{root}/text.npy'], 'text.npy'),
    (T, ['--init-from', '{root}/hostile.npy'], 'hostile.npy tried to load'),
    (T, ['--init-from', '{root}/wrong.npy'], 'wrong.npy'),
    (T, ['--init-from', '{root}/cut.h5', '--model', 'vgg-d'], 'cut.h5'),
    (T, ['--init-from', '{run}', '--model', 'vgg-a'], '{run}/model.ckpt'),
    (T, ['--init-from', '{root}/wrong.npy', '--mean', '{root}/nowhere.npy'], 'nowhere.npy'),
    (T, ['--train-layers', 'fc7,fc9'], "'fc9'"),
    (T, ['--train-layers', ','], '--train-layers'),
    (T, ['--lr-mult', 'fc8=x'], '--lr-mult'),
    (T, ['--init', 'glorot'], '--init glorot'),         # AlexNet has the paper's rule only
    (T, ['--lr-mult', 'fc9=10'], "'fc9'"),
    # run_train.py: resuming a run
    (T, RESUME + ['--lr', '0.5'], '--lr 0.5'),
    (T, RESUME + ['--model', 'caffenet'], 'caffenet'),
    (T, RESUME + ['--data-dir', '{three}'], '{three}'),
    (T, RESUME + ['--epochs', '0'], '--epochs 0'),
    (T, RESUME + ['--precision', 'bf16'], '--precision bf16 (the run: fp32)'),
    (T, ['--train-dir', '{damaged}'], '{damaged}'),
    # run_eval.py
    (E, ['--model', 'nosuchnet'], '--model'),
    (E, ['--batch-size', 'x'], '--batch-size'),
    (E, ['--train-dir', '{run}', '--batch-size', '0'], '--batch-size'),
    (E, ['--train-dir', '{run}', '--gpus', 'fast'], "'fast'"),
    (E, ['--checkpoint', '{root}/nowhere'], 'nowhere'),
    (E, ['--train-dir', '{root}/empty'], '{root}/empty'),
    (E, ['--train-dir', '{damaged}'], '{damaged}'),
    (E, ['--train-dir', '{run}', '--model', 'lenet5'], 'not lenet5'),
    (E, ['--train-dir', '{run}', '--data-dir', '{three}'], '{three}'),
    (E, ['--train-dir', '{run}', '--data-dir', '{no_val}'], 'no_val/val/images-00000.npy'),
    (E, ['--train-dir', '{run}', '--data-dir', '{root}/nowhere'], 'nowhere'),
    (E, ['--train-dir', '{run}', '--mean', '{root}/mean.npy'], '--mean'),
    (E, ['--checkpoint', '{run}', '{root}/nowhere'], 'nowhere'),
    (E, ['--checkpoint', '{run}', '{run}', '--images', GOOD], 'several --checkpoint'),
    (E, ['--checkpoint', '{run}', '{run}', '--precision', 'bf16'], '--precision'),
    (E, ['--train-dir', '{run}', '--images', '{root}/missing.jpg'], 'missing.jpg'),
    (E, ['--train-dir', '{run}', '--images', '{root}/note.jpg'], 'note.jpg'),
    (E, ['--train-dir', '{run}', '--images', '{root}/missing.jpg', '{root}/cut.jpg'], 'cut.jpg'),
    (E, ['--train-dir', '{run}', '--neighbours', '{root}/note.jpg'], 'note.jpg'),
    (E, ['--init-from', '{root}/wrong.npy'], '--images'),     # neither --data-dir nor --images
    (E, ['--init-from', '{root}/wrong.npy', '--neighbours', GOOD], '--data-dir'),
    (E, ['--init-from', '{root}/nowhere.npy', '--images', GOOD], 'nowhere.npy'),
    (E, ['--init-from', '{root}/hostile.npy', '--images', GOOD], 'hostile.npy tried to load'),
    (E, ['--init-from', '{root}/text.npy', '--images', GOOD], 'text.npy'),
    (E, ['--init-from', '{root}/cut.h5', '--images', GOOD], 'cut.h5'),
    (E, ['--init-from', '{root}/wrong.npy', '--model', 'lenet5', '--images', GOOD], 'lenet5'),
    # python -m alexnet_tf1.data.prepare
    (P, ['{root}/nowhere', '{root}/out'], 'nowhere'),
    (P, ['{root}/file.json', '{root}/out'], 'file.json'),
    (P, ['{root}/empty', '{data}'], '{data}'),                 # OUT holds another preparation
    (P, ['{cifar}', '{root}/out'], 'batches.meta'),            # pickles that run code
    (P, ['{root}/empty', '{root}/out'], '{root}/empty'),
    (P, ['{root}/empty', '{root}/file.json'], 'file.json'),
    (P, ['{root}/empty', '{root}/out', '--shard-size', '0'], '--shard-size'),
    (P, ['{root}/empty', '{root}/out', '--size', '-1'], '--size'),
    (P, ['{root}/empty', '{root}/out', '--workers', '0'], '--workers'),
    (P, ['{root}/empty', '{root}/out', '--layout', 'nosuch'], '--layout'),
    # python -m alexnet_tf1.experiments
    (X, ['nosuch', '--out', '{root}/exp'], 'nosuch'),
    (X, ['ablations', '--out', '{root}/exp', '--data-dir', '{root}/nowhere'], 'nowhere'),
    (X, ['ablations', '--out', '{root}/exp', '--data-dir', '{bad_manifest}'], 'bad_manifest'),
    (X, ['ablations', '--out', '{root}/exp', '--seeds', 'x'], '--seeds'),
    (X, ['ablations', '--out', '{root}/exp', '--seeds', ','], '--seeds'),
    (X, ['ablations', '--out', '{root}/exp', '--epochs', '0'], '--epochs'),
    (X, ['ablations', '--out', '{root}/exp', '--budget-minutes', '-1'], '--budget-minutes'),
    (X, ['ablations', '--out', '{root}/exp', '--gpus', 'fast'], "'fast'"),
    (X, ['relu-vs-tanh', '--out', '{root}/exp', '--lrs', '0'], '--lrs'),
    (X, ['depth', '--out', '{root}/file.json'], 'file.json'),
    # python -m alexnet_tf1.weights.export
    (XP, ['{root}/nowhere', '{root}/out.npy'], 'nowhere'),
    (XP, ['{damaged}', '{root}/out.npy'], '{damaged}'),
    (XP, ['{run}', '{root}/out.h5'], 'out.h5'),                # AlexNet's layout is a .npy
    (XP, ['{run}'], 'out'),
    # python -m alexnet_tf1.bench
    (B, ['--model', 'nosuchnet'], 'nosuchnet'),
    (B, ['--batch-size', '0'], '--batch-size'),
    (B, ['--steps', '0'], '--steps'),
    (B, ['--gpus', 'fast'], "'fast'"),
    (B, ['--gpus', 'cpu', '--data-format', 'NCHW'], '--data-format NCHW'),
    (B, ['--gpus', 'cpu', '--data-seconds', '0'], '--data-seconds'),
    (B, ['--gpus', 'cpu', '--data-images', '0'], '--data-images'),
    (B, ['--gpus', 'cpu', '--intra-threads', '-1'], '--intra-threads'),
    (B, ['--gpus', 'cpu', '--timeline', '{root}/nowhere/step.json'], 'nowhere'),
    # python -m alexnet_tf1.models.summary
    (S, ['--model', 'nosuchnet'], '--model'),
    (S, ['--gpus', 'fast'], "'fast'"),
    (S, ['--gpus', 'cpu', '--model', 'vgg-a', '--no-lrn'], '--no-lrn'),
    (S, ['--gpus', 'cpu', '--pool', '4x4'], '--pool'),
    # python -m alexnet_tf1.experiments.seeds
    (M, ['{root}/m.jsonl', '--runs', '{root}/runs', '--paths', 'native,bogus'], 'bogus'),
    (M, ['{root}/m.jsonl', '--runs', '{root}/runs', '--seeds', 'x'], '--seeds'),
    (M, ['{root}/rows.jsonl', '--runs', '{root}/runs'], 'rows.jsonl'),
    (M, ['{root}/nowhere/m.jsonl', '--runs', '{root}/runs'], 'nowhere'),
    (M, ['{root}/m.jsonl', '--runs', '{root}/runs', '--batch-size', '0'], '--batch-size 0'),
    (M, ['{root}/m.jsonl', '--runs', '{root}/runs', '--frobnicate'], '--frobnicate'),
]


def _id(case):
    command, args, _ = case
    words = [a.strip('-').replace('{root}/', '').strip('{}') for a in args if a != '{root}/exp']
    return command + ':' + '-'.join(w for w in words if w and w != 'out')[:48]


def argv_of(command, args, w):
    args = [a.format(**w) for a in args]
    if command == T:
        return train_args(w['data'], w['fresh'], '--epochs', '1') + args
    if command == E:
        return ['--gpus', 'cpu'] + args
    return args


def call(main, argv, capsys):
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:         # argparse's own exit, after its one line
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


def never(what):
    def refuse(*args, **kwargs):
        raise AssertionError(f'a bad invocation got as far as {what}')
    return refuse


@pytest.mark.parametrize('command, args, names', CASES, ids=[_id(c) for c in CASES])
def test_bad_invocation_is_one_line_naming_the_culprit_and_touches_nothing(
        world, command, args, names, tmp_path, capsys, monkeypatch):
    # the commands that train or measure for hours must refuse before their first run
    monkeypatch.setattr(experiments, '_run', never('starting an arm'))
    monkeypatch.setattr(matrix, '_timed', never('starting a run'))
    monkeypatch.setattr(bench, 'build_ours', never('building the benchmarked graph'))
    monkeypatch.setattr(summary, 'graph', types.SimpleNamespace(build=never('building the graph')))
    w = dict(world, fresh=str(tmp_path / 'fresh'))
    before = snapshot(w['root'])
    code, out, err = call(MAINS[command], argv_of(command, args, w), capsys)
    assert code == 2, (code, err, out[-2000:])
    assert len(err) == 1 and err[0].startswith('error: '), err
    assert names.format(**w) in err[0], err
    assert snapshot(w['root']) == before
    assert not glob.glob(w['fresh'] + '/**/model.ckpt-*', recursive=True)


def test_some_unreadable_images_are_listed_and_the_rest_classified_beside_the_checkpoint(
        world, tmp_path, monkeypatch, capsys):
    """Exit 0 when at least one picture reads; the top-5 sheet lands beside the checkpoint
    (the train dir), not in the current directory."""
    td = str(tmp_path / 'run')
    shutil.copytree(world['run'], td)
    monkeypatch.chdir(tmp_path)
    root = world['root']
    good, missing, note = f'{root}/good.png', f'{root}/missing.jpg', f'{root}/note.jpg'
    code, out, err = call(run_eval.main, ['--gpus', 'cpu', '--train-dir', td, '--images',
                                          missing, good, note], capsys)
    assert code == 0, (err, out)
    lines = out.splitlines()
    warned = [line for line in lines if line.startswith('warning: ')]
    assert len(warned) == 2 and missing in warned[0] and note in warned[1], lines
    classified = [line for line in lines if line.startswith(good + ': ')]
    names = [item.rsplit(' ', 1)[0] for item in classified[0].split(': ', 1)[1].split(', ')]
    assert sorted(names) == ['class 0', 'class 1'], classified     # 2 classes: both shown
    sheet = os.path.join(td, 'top5.png')
    assert iio.imread(sheet).shape[0] > 0 and f'top-5 sheet: {sheet}' in lines
    assert not os.path.exists(tmp_path / 'top5.png')


def test_published_weights_put_the_top5_sheet_in_the_current_directory(tmp_path, monkeypatch,
                                                                       world, capsys):
    """--init-from has no checkpoint to write beside: the sheet goes to the current directory
    (README "Published weights"), and the weight file's directory is left alone."""
    from alexnet_tf1.weights import caffe_npy
    weights = tmp_path / 'w'
    weights.mkdir()
    path = str(weights / 'bvlc_googlenet.npy')
    np.save(path, {name: [np.zeros(ws, np.float32), np.zeros(bs, np.float32)]
                   for name, (ws, bs) in caffe_npy.googlenet_shapes(1000).items()},
            allow_pickle=True)
    here = tmp_path / 'here'
    here.mkdir()
    monkeypatch.chdir(here)
    code, out, err = call(run_eval.main, ['--gpus', 'cpu', '--init-from', path, '--model',
                                          'googlenet', '--images', f"{world['root']}/good.png"],
                          capsys)
    assert code == 0, (err, out)
    assert iio.imread(here / 'top5.png').shape[0] > 0 and 'top-5 sheet: top5.png' in out
    assert os.listdir(weights) == ['bvlc_googlenet.npy']

