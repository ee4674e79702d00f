"""The README's fine-tuning walk-through, measured:
python -m alexnet_tf1.experiments.finetune_demo OUT.jsonl [--seeds 0,1] [--paths native,avx2]

No published weights ship with the project, so the walk-through makes its own stand-in for
bvlc_alexnet.npy. The sample set's ten classes are split in two disjoint sets: A, the six
texture classes (stripes three ways, checkerboard, rings, dot grid), and B, the four shape
classes (disc, cross, triangle, blotches). AlexNet trained on A from scratch (the sample
preset) is exported in bvlc_alexnet.npy's layout - the step a user replaces by downloading
the real file - and B is then learned three ways, each timed and scored by run_eval.py:

  fc7-fc8   --init-from A.npy --mean A's mean.npy --train-layers fc7,fc8: conv1-fc6 frozen,
            fc8 new (4 classes, not A's 6), Caffe's fine-tuning rates (lr 0.001, fc8 x10)
  all       the same, every layer updated
  scratch   no --init-from: the sample preset, as the README's main command

One JSON line per finished run is appended to OUT; runs already there are skipped.
"""
import os
import shutil
import sys

from alexnet_tf1.experiments.seeds import PATHS, ROOT, _timed, finished, parser, record, train_and_score

A = ('n00000000', 'n00000001', 'n00000002', 'n00000003', 'n00000004', 'n00000005')
B = ('n00000006', 'n00000007', 'n00000008', 'n00000009')
FINETUNE = ['--lr', '0.001', '--lr-mult', 'fc8=10:20', '--epochs', '6']
WAYS = {'fc7-fc8': ['--train-layers', 'fc7,fc8', *FINETUNE], 'all': FINETUNE, 'scratch': []}


def split_sample(data):
    """data/sample-A, data/sample-B: prepared subsets of the sample set's classes."""
    from alexnet_tf1.data.prepare import prepare
    from alexnet_tf1.data.sample import ensure_sample
    ensure_sample(data)
    raw = os.path.join(data, 'sample_raw')
    with open(os.path.join(raw, 'synset_words.txt')) as f:
        words = [line for line in f if line.strip()]
    out = {}
    for name, classes in (('A', A), ('B', B)):
        sub, prepared = os.path.join(data, f'sample-{name}-raw'), os.path.join(data, f'sample-{name}')
        if not os.path.isdir(sub):
            for split in ('train', 'val'):
                for c in classes:
                    shutil.copytree(os.path.join(raw, split, c), os.path.join(sub, split, c))
            with open(os.path.join(sub, 'synset_words.txt'), 'w') as f:
                f.writelines(w for w in words if w.split()[0] in classes)
        prepare(sub, prepared, layout='folders', progress=False, dataset='sample')
        out[name] = prepared
    return out


def _drop_weights(train_dir):
    for d in (train_dir, os.path.join(train_dir, 'best')):
        for name in os.listdir(d) if os.path.isdir(d) else ():
            if name.startswith('model.ckpt-'):
                os.remove(os.path.join(d, name))


def main(argv=None):
    args = parser(__doc__, 'finetune-demo', '0', 'native').parse_args(argv)
    data = split_sample(os.path.join(ROOT, 'data'))
    os.makedirs(args.runs, exist_ok=True)
    done = {(r['path'], r['seed'], r['way']) for r in finished(args.out)}
    for seed in args.seeds:
        for path in args.paths:
            env = {**os.environ, **PATHS[path]}
            base = os.path.join(args.runs, f'{path}-seed{seed}')
            npy = base + '-A.npy'
            for way in ('pretrain-A', *WAYS):
                if (path, seed, way) in done:
                    continue
                train_args = ['--data-dir', data['A' if way == 'pretrain-A' else 'B'],
                              '--seed', str(seed), *WAYS.get(way, [])]
                if way in ('fc7-fc8', 'all'):
                    if not os.path.exists(npy):
                        code, _ = _timed(['-m', 'alexnet_tf1.weights.export', base + '-pretrain-A', npy],
                                         env, base + '-export.log')
                        if code:
                            print(f'error: export failed, see {base}-export.log', file=sys.stderr)
                            return 1
                    train_args += ['--init-from', npy, '--mean',
                                   os.path.join(data['A'], 'mean.npy')]
                record(args.out, train_and_score({'path': path, 'seed': seed, 'way': way},
                                                  f'{base}-{way}', env, train_args + ['--keep', '1']))
                if way != 'pretrain-A':     # scored: its weights (~0.5 GB a run) are not needed
                    _drop_weights(f'{base}-{way}')
            _drop_weights(base + '-pretrain-A')     # exported to A.npy
    return 0


if __name__ == '__main__':
    sys.exit(main())
