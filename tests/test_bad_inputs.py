"""Bad invocations of run_train.py, run_eval.py and prepare, as a table: each exits non-zero
with one line on stderr, no traceback, and leaves the existing checkpoints and shards as they
were, byte for byte."""
import glob
import json
import os
import pickle
import shutil

import numpy as np
import pytest

import run_eval
import run_train
from alexnet_tf1.data import prepare
from tiny_run import tiny_prepared, train_args


class RunsCode:
    def __reduce__(self):
        return os.system, ('echo hostile',)


def snapshot(*roots):
    return {p: open(p, 'rb').read() for r in roots for p in glob.glob(r + '/**', recursive=True)
            if os.path.isfile(p)}


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('bad'))
    data = tiny_prepared(root)
    run = os.path.join(root, 'run')
    assert run_train.main(train_args(data, run, '--epochs', '1')) == 0
    w = {'root': root, 'data': data, 'run': run, 'fresh': os.path.join(root, 'fresh')}
    def broken(name, damage):
        d = os.path.join(root, name)
        shutil.copytree(data, d)
        damage(d)
        return d
    w['bad_manifest'] = broken('bad_manifest', lambda d: open(d + '/manifest.json', 'w').write('{'))
    w['no_mean'] = broken('no_mean', lambda d: os.remove(d + '/mean.npy'))
    w['no_shard'] = broken('no_shard', lambda d: os.remove(glob.glob(d + '/train/images-*.npy')[0]))
    w['no_val'] = broken('no_val', lambda d: os.remove(glob.glob(d + '/val/images-*.npy')[0]))
    w['no_synsets'] = broken('no_synsets', lambda d: os.remove(d + '/synsets.txt'))
    w['three'] = tiny_prepared(os.path.join(root, 'three'), classes=3)
    damaged = os.path.join(root, 'damaged')
    shutil.copytree(run, damaged)
    for index in glob.glob(damaged + '/model.ckpt-*.index'):
        open(index, 'r+b').truncate(20)
    w['damaged'] = damaged
    with open(os.path.join(root, 'hostile.npy'), 'wb') as f:
        np.save(f, {'conv1': RunsCode()}, allow_pickle=True)
    with open(os.path.join(root, 'hostile.pkl'), 'wb') as f:
        pickle.dump(RunsCode(), f)
    np.save(os.path.join(root, 'wrong.npy'),
            {'conv1': [np.zeros((3, 3, 3, 96), np.float32), np.zeros(96, np.float32)]},
            allow_pickle=True)
    open(os.path.join(root, 'text.npy'), 'w').write('not weights\n')
    open(os.path.join(root, 'cut.h5'), 'wb').write(b'\x89HDF\r\n\x1a\n' + b'\0' * 100)
    open(os.path.join(root, 'a.jpg'), 'wb').write(b'\xff\xd8\xff')
    os.makedirs(os.path.join(root, 'empty'))
    json.dump({}, open(os.path.join(root, 'file.json'), 'w'))
    return w


T, E, P = 'train', 'eval', 'prepare'
CASES = [
    (T, ['--model', 'nosuchnet']),
    (T, ['--batch-size', 'x']),
    (T, ['--batch-size', '0']),
    (T, ['--epochs', '-1']),
    (T, ['--momentum', '1.5']),
    (T, ['--data-dir', '{root}/nowhere']),
    (T, ['--data-dir', '{root}/file.json']),
    (T, ['--data-dir', '{bad_manifest}']),
    (T, ['--data-dir', '{no_mean}']),
    (T, ['--data-dir', '{no_shard}']),
    (T, ['--data-dir', '{no_synsets}']),
    (T, ['--train-dir', '{fresh}', '--init-from', '{root}/nowhere.npy']),
    (T, ['--train-dir', '{fresh}', '--init-from', '{root}/text.npy']),
    (T, ['--train-dir', '{fresh}', '--init-from', '{root}/hostile.npy']),
    (T, ['--train-dir', '{fresh}', '--init-from', '{root}/wrong.npy']),
    (T, ['--train-dir', '{fresh}', '--init-from', '{root}/cut.h5', '--model', 'vgg-d']),
    (T, ['--train-dir', '{fresh}', '--init-from', '{run}', '--model', 'vgg-a']),
    (T, ['--train-dir', '{fresh}', '--train-layers', 'fc7,fc9']),
    (T, ['--train-dir', '{fresh}', '--lr-mult', 'fc8=x']),
    (T, ['--train-dir', '{fresh}', '--gpus', '7']),
    (T, ['--train-dir', '{fresh}', '--gpus', 'fast']),
    (T, ['--lr', '0.5']),                               # resuming {run} with another recipe
    (T, ['--model', 'caffenet']),                       # {run} holds an alexnet run
    (T, ['--train-dir', '{damaged}']),
    (T, ['--data-dir', '{three}']),                     # {run} has 2 classes
    (E, ['--checkpoint', '{root}/nowhere']),
    (E, ['--train-dir', '{root}/empty']),
    (E, ['--train-dir', '{damaged}']),
    (E, ['--train-dir', '{run}', '--model', 'lenet5']),
    (E, ['--train-dir', '{run}', '--data-dir', '{three}']),
    (E, ['--train-dir', '{run}', '--data-dir', '{no_val}']),
    (E, ['--init-from', '{root}/wrong.npy']),           # neither --data-dir nor --images
    (E, ['--init-from', '{root}/hostile.npy', '--images', '{root}/a.jpg']),
    (E, ['--init-from', '{root}/text.npy', '--images', '{root}/a.jpg']),
    (E, ['--init-from', '{root}/cut.h5', '--images', '{root}/a.jpg']),
    (E, ['--init-from', '{root}/wrong.npy', '--model', 'lenet5', '--images', '{root}/a.jpg']),
    (E, ['--batch-size', 'x']),
    (P, ['{root}/nowhere', '{root}/out']),
    (P, ['{root}/file.json', '{root}/out2']),
    (P, ['{root}/empty', '{data}']),                    # OUT holds another preparation
    (P, ['{root}/hostile.pkl', '{root}/out3']),
]


@pytest.mark.parametrize('script, args', CASES, ids=[f'{s}-{i}' for i, (s, _) in enumerate(CASES)])
def test_bad_invocation_is_one_line_and_touches_nothing(world, script, args, capsys):
    args = [a.format(**world) for a in args]
    before = snapshot(world['run'], world['data'], world['damaged'])
    if script == T:
        if '--train-dir' not in args:
            args = ['--train-dir', world['run']] + args
        argv = train_args(world['data'], args.pop(args.index('--train-dir') + 1), *args)
        argv.remove('--train-dir') if argv.count('--train-dir') > 1 else None
        main = run_train.main
    elif script == E:
        argv, main = args + ['--gpus', 'cpu'], run_eval.main
    else:
        argv, main = args, prepare.main
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:         # argparse's own exit, after its one line
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code not in (0, None), err
    assert len(err) == 1 and err[0].startswith('error:'), err
    assert snapshot(world['run'], world['data'], world['damaged']) == before
    assert not os.path.exists(world['fresh']) or not glob.glob(world['fresh'] + '/model.ckpt-*')
