"""A recipe's seed x kernel-path matrix: python -m alexnet_tf1.experiments.seeds OUT.jsonl [run_train flags].

Runs the README's main job (run_train.py, then run_eval.py) once per seed and kernel path,
each in its own train dir under --runs, any further flags passed to run_train.py (--model,
--data-dir, ...), and appends one JSON line per finished run to OUT: the multi-crop and
centre-crop errors, the last validation error, loss spikes, and the minutes each command
took. Kernel paths: 'native' (the CPU's own ISA), 'avx2' (ONEDNN_MAX_CPU_ISA=AVX2: oneDNN's
AVX2 kernels, cpu_kernels.avx512() false) and 'tf' (ALEXNET_TF1_CPU_KERNELS=tf: TF's own LRN and
gradients). Runs already in OUT are skipped, so the same command continues a matrix.
Each run keeps run_train.py's checkpoints (the last 3 and the best; an AlexNet one is some
0.4 GB with its momentum): pass --keep 1 to keep only the scored one and the best.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from alexnet_tf1 import ROOT
from alexnet_tf1.errors import OneLineParser, UserError, comma_list

PATHS = {'native': {}, 'avx2': {'ONEDNN_MAX_CPU_ISA': 'AVX2'},
         'tf': {'ALEXNET_TF1_CPU_KERNELS': 'tf'}}


def _timed(cmd, env, log):
    t0 = time.monotonic()
    with open(log, 'a') as f:
        code = subprocess.call([sys.executable] + cmd, cwd=ROOT, env=env, stdout=f,
                               stderr=subprocess.STDOUT)
    return code, (time.monotonic() - t0) / 60


def run_one(path, seed, runs, extra=()):
    train_dir = os.path.join(runs, f'{path}-seed{seed}')
    row = {'path': path, 'seed': seed, 'extra': list(extra)}
    return train_and_score(row, train_dir, {**os.environ, **PATHS[path]},
                           ['--seed', str(seed), *extra])


def train_and_score(row, train_dir, env, train_args):
    """run_train.py then run_eval.py on one train dir; `row` gains their exit codes, minutes,
    errors, last validation error and loss spikes."""
    log = train_dir + '.log'
    code, train_min = _timed(['run_train.py', '--train-dir', train_dir, *train_args], env, log)
    row.update(train_exit=code, train_minutes=round(train_min, 2))
    if code == 0:
        code, eval_min = _timed(['run_eval.py', '--train-dir', train_dir], env, log)
        row.update(eval_exit=code, eval_minutes=round(eval_min, 2))
        try:
            with open(os.path.join(train_dir, 'eval.json')) as f:
                result = json.load(f)
            row.update({k: v for k, v in result.items()
                        if k.startswith('top1_error') or k == 'checkpoint'})
            run = result.get('run', {})
            row.update(last_val=run.get('last_val_top1_error'),
                       spikes=len(run.get('loss_spikes', [])))
        except (OSError, ValueError):
            pass
    return row


def parser(doc, runs, seeds, paths):
    """The command line a measurement over seeds x kernel paths takes."""
    ap = OneLineParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('out', help='results, one JSON line per run (appended)')
    ap.add_argument('--runs', default=os.path.join(ROOT, 'checkpoints', runs))
    ap.add_argument('--seeds', default=seeds, type=comma_list(int, 'integers like 0,1,2'))
    ap.add_argument('--paths', default=paths,
                    type=comma_list(str, 'kernel paths like native,avx2', choices=PATHS))
    return ap


def finished(out):
    """The rows already in OUT (a measurement continues where it stopped)."""
    if not os.path.exists(out):
        return []
    rows = []
    with open(out) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise UserError(f'{out}: line {n} is not a JSON row; give another OUT') from None
    return rows


def check(args, extra):
    """The rows already in OUT, once every file and flag passed on is known good (the parser
    checked the seeds and paths): a mistake found only at the run it concerns would come
    after hours of the runs before it."""
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        raise UserError(f'{args.out}: its directory does not exist')
    rows = finished(args.out)
    check_train_flags(extra)
    return rows


def check_train_flags(extra):
    """run_train.py's own parsing and range checks on the flags passed on to it."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    import run_train
    from alexnet_tf1 import options
    from alexnet_tf1.data.reader import open_prepared
    args = run_train.parser().parse_args(extra)     # a bad flag: its one line, exit 2
    options.resolve(options.given_flags(args),
                    open_prepared(args.data_dir).dataset if args.data_dir else 'sample')


def record(out, row):
    with open(out, 'a') as f:
        f.write(json.dumps(row) + '\n')
    print(json.dumps(row), flush=True)


def main(argv=None):
    args, extra = parser(__doc__, 'matrix', '0,1,2,3', 'native,avx2,tf').parse_known_args(argv)
    try:
        rows = check(args, extra)
        os.makedirs(args.runs, exist_ok=True)       # the rest of the flags go to run_train.py
    except (UserError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    done = {(r['path'], r['seed']) for r in rows if r.get('extra') == extra}
    for seed in args.seeds:
        for path in args.paths:
            if (path, seed) not in done:
                record(args.out, run_one(path, seed, args.runs, extra))
    return 0


if __name__ == '__main__':
    sys.exit(main())
