"""The papers' experiments as commands: python -m alexnet_tf1.experiments NAME.

relu-vs-tanh  the AlexNet paper's Figure 1: the four-layer CNN (cifar4) with ReLUs and with
              tanh from the same initial weights, each at the rate (of --lrs) that reaches
              25% training error in the fewest epochs, as the paper chose them; the ratio of
              those epochs (the paper: about 6) and the training error per epoch as a PNG.
              On a prepared CIFAR-10 with --data-dir, else the sample set at 32x32.
ablations     AlexNet with each of the paper's switches against the default, same data and
              seeds: the change in top-1 / top-5 error beside the paper's (section 3 and 4).
depth         VGG A against B and B with each pair of 3x3 convolutions one 5x5 (section 4.1).

Each arm is a train dir under OUT/NAME/arms/<arm>-seed<S> (run_train.py, then run_eval.py),
so a stopped or killed experiment continues where it was when the same command runs again;
OUT/NAME/result.json is rewritten after every arm. --budget-minutes bounds the whole command:
a run still going when it ends is stopped the way Ctrl-C stops it (its checkpoint saved) and
the table says which arms are unfinished.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

from alexnet_tf1 import ROOT
from alexnet_tf1.errors import OneLineParser, UserError, at_least, comma_list
from alexnet_tf1.io_util import atomic_write_bytes

TARGET = 0.25           # Figure 1: epochs to 25% training error

# arm -> (run_train flags, the paper's change in top-1 / top-5 error with the feature removed)
ABLATIONS = {
    'default': ([], None),
    'no-lrn': (['--no-lrn'], (1.4, 1.2)),                     # section 3.3
    'pool-2x2': (['--pool', '2x2'], (0.4, 0.3)),              # section 3.4
    'one-tower': (['--model', 'alexnet-one-tower'], (1.7, 1.2)),  # section 3.2
    'no-lighting': (['--lighting', '0'], (1.0, None)),        # section 4.1, "over 1%" top-1
    'no-crop': (['--no-crop'], None),       # section 4.1: "substantial overfitting", no figure
    'no-flip': (['--no-flip'], None),
    'tanh': (['--activation', 'tanh'], None),     # Figure 1 is another net: no AlexNet figure
}
# arm -> (model, the paper's top-1 error %, single scale, and its change against B)
DEPTH = {'vgg-a': (29.6, 0.9), 'vgg-b': (28.7, 0.0), 'vgg-b-5x5': (None, 7.0)}


class Budget:
    def __init__(self, minutes):
        self.end = None if minutes is None else time.monotonic() + 60 * minutes

    def left(self):
        return None if self.end is None else self.end - time.monotonic()


def _read(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _stop_with_parent():
    """In the child: Linux sends it SIGINT when this process dies, even by SIGKILL, so a
    killed experiment leaves no run behind that the next one would train beside."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _run(cmd, log, budget):
    """Exit code, or None when the budget ran out (the run stopped as by Ctrl-C)."""
    with open(log, 'a') as f:
        proc = subprocess.Popen([sys.executable] + cmd, cwd=ROOT, stdout=f,
                                stderr=subprocess.STDOUT,
                                preexec_fn=_stop_with_parent if sys.platform == 'linux' else None)
        try:
            return proc.wait(timeout=budget.left())
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)         # run_train saves, then stops
            try:
                proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            return None


def run_arm(arm_dir, flags, budget, score=True):
    """Train (and score) one arm; {'status', 'history', eval figures, ...}."""
    state = _read(os.path.join(arm_dir, 'run.json'))
    done = state and state['epoch'] >= state['epochs']
    log = arm_dir + '.log'
    if not done:
        if budget.left() is not None and budget.left() <= 0:
            return {'status': 'not run: out of budget'}
        t0 = time.monotonic()
        code = _run(['run_train.py', '--train-dir', arm_dir, *flags], log, budget)
        state = _read(os.path.join(arm_dir, 'run.json'))
        if code is None:
            return {'status': 'stopped by the budget; the same command continues it',
                    'history': (state or {}).get('history', [])}
        if code != 0:
            return {'status': f'run_train.py exited {code}; see {log}'}
        minutes = round((time.monotonic() - t0) / 60, 2)
        atomic_write_bytes(os.path.join(arm_dir, 'arm.json'),
                           json.dumps({'train_minutes': minutes}).encode())
    else:       # trained by an earlier call: the minutes it took then
        minutes = (_read(os.path.join(arm_dir, 'arm.json')) or {}).get('train_minutes')
    out = {'status': 'done', 'history': state.get('history', []), 'train_minutes': minutes,
           'model': state.get('model')}
    if score:
        result = _read(os.path.join(arm_dir, 'eval.json'))
        if not result or result.get('global_step') != state.get('global_step'):
            if _run(['run_eval.py', '--train-dir', arm_dir], log, Budget(None)) != 0:
                return {**out, 'status': f'run_eval.py failed; see {log}'}
            result = _read(os.path.join(arm_dir, 'eval.json'))
        out.update({k: v for k, v in result.items()
                    if k.startswith(('top1_error', 'top5_error')) or k == 'crops'})
    return out


def epochs_to(history, target=TARGET):
    """The first epoch whose training error is <= target, or None."""
    for h in history:
        if h.get('train_top1_error') is not None and h['train_top1_error'] <= target:
            return h['epoch']
    return None


def _last_train_error(arm):
    errs = [h.get('train_top1_error') for h in arm.get('history', [])]
    return errs[-1] if errs and errs[-1] is not None else None


# ---- the three experiments: arms, then the table --------------------------------------------

def relu_vs_tanh_arms(args):
    data = args.data_dir or _sample(32)
    return {f'{act}-lr{lr:g}': ['--model', 'cifar4', '--activation', act, '--lr', f'{lr:g}',
                                '--data-dir', data]
            for act in ('relu', 'tanh') for lr in args.lrs}, False


def relu_vs_tanh_table(arms):
    best = {}
    for act in ('relu', 'tanh'):
        runs = [(name, a) for name, a in arms.items() if name.startswith(act) and
                a.get('history')]
        # the paper chose each net's rate "to make training as fast as possible"
        runs.sort(key=lambda r: (epochs_to(r[1]['history']) or 10 ** 9,
                                 _last_train_error(r[1]) if _last_train_error(r[1]) is not None
                                 else 1.0))
        if runs:
            best[act] = runs[0]
    e = {act: epochs_to(a['history']) for act, (_, a) in best.items()}
    ratio = e['tanh'] / e['relu'] if e.get('relu') and e.get('tanh') else None
    lines = [f"{'arm':<16} {'epochs to 25% training error':>28} {'last training error':>20}"]
    for name, a in arms.items():
        last = _last_train_error(a)
        mark = ' <- chosen' if any(b[0] == name for b in best.values()) else ''
        lines.append(f"{name:<16} {str(epochs_to(a.get('history', [])) or '-'):>28} "
                     f"{(f'{last:.1%}' if last is not None else '-'):>20}{mark}")
    if ratio:
        lines.append(f'tanh needs {ratio:.1f}x the epochs ReLU needs (the paper, Figure 1: about 6x)')
    elif e.get('relu') and 'tanh' in best and best['tanh'][1]['status'] == 'done':
        epochs = len(best['tanh'][1]['history'])
        lines.append(f"tanh did not reach 25% in {epochs} epochs: more than {epochs / e['relu']:.1f}x "
                     f"ReLU's {e['relu']} (the paper: about 6x)")
    summary = {'chosen': {act: b[0] for act, b in best.items()}, 'epochs_to_25': e,
               'ratio': ratio, 'paper_ratio': 6}
    series = [(f'{act} ({b[0]})', [h['epoch'] for h in b[1]['history']],
               [h.get('train_top1_error') for h in b[1]['history']], act == 'tanh')
              for act, b in best.items()]
    from alexnet_tf1.experiments.plots import line_plot
    png = line_plot(series, "Figure 1: four-layer CNN, training error per epoch", 'epochs',
                    'training error', hline=TARGET)
    return lines, summary, png


def ablations_arms(args):
    extra = ['--data-dir', args.data_dir] if args.data_dir else []
    return {name: flags + extra for name, (flags, _) in ABLATIONS.items()}, True


def ablations_table(arms):
    base = arms.get('default', {})
    lines = [f"{'arm':<12} {'top-1 10 crops':>14} {'change':>7} {'paper':>6} {'top-5':>7} "
             f"{'change':>7} {'paper':>6} {'training err':>12}  status"]
    summary, ours, papers, labels = {}, [], [], []
    for name, a in arms.items():
        paper = ABLATIONS[name][1]
        d1 = _delta(a, base, 'top1_error_10crop')
        d5 = _delta(a, base, 'top5_error_10crop')
        last = _last_train_error(a)
        lines.append(f"{name:<12} {_pct(_multi(a, 'top1_error_10crop')):>14} {_signed(d1):>7} "
                     f"{_signed(paper and paper[0]):>6} {_pct(_multi(a, 'top5_error_10crop')):>7} "
                     f"{_signed(d5):>7} {_signed(paper and paper[1]):>6} "
                     f"{(f'{100 * last:.1f}' if last is not None else '-'):>12}  {a['status']}")
        summary[name] = {'top1_change': d1, 'top5_change': d5, 'paper': paper}
        if name != 'default':
            labels.append(name)
            ours.append(d1)
            papers.append(paper and paper[0])
    lines.append('change: error with the feature removed minus the default\'s, in points; '
                 'the paper\'s on ILSVRC-2012; no-flip is scored on its 5 unmirrored crops')
    from alexnet_tf1.experiments.plots import bar_plot
    png = bar_plot(labels, [('ours (sample set)', ours), ('paper (ImageNet)', papers)],
                   'AlexNet ablations: top-1 error change without each feature', 'points')
    return lines, summary, png


def depth_arms(args):
    extra = ['--data-dir', args.data_dir] if args.data_dir else []
    return {name: ['--model', name] + extra for name in DEPTH}, True


def depth_table(arms):
    base = arms.get('vgg-b', {})
    lines = [f"{'arm':<10} {'top-1 10 crops':>14} {'vs B':>6} {'paper':>6} {'paper vs B':>10}  status"]
    summary, labels, ours, papers = {}, [], [], []
    for name, a in arms.items():
        paper, paper_d = DEPTH[name]
        d = _delta(a, base, 'top1_error_10crop')
        lines.append(f"{name:<10} {_pct(_multi(a, 'top1_error_10crop')):>14} {_signed(d):>6} "
                     f"{(f'{paper:.1f}' if paper else '-'):>6} {_signed(paper_d):>10}  {a['status']}")
        summary[name] = {'top1_vs_b': d, 'paper_vs_b': paper_d}
        labels.append(name)
        ours.append(d)
        papers.append(paper_d)
    from alexnet_tf1.experiments.plots import bar_plot
    png = bar_plot(labels, [('ours', ours), ('paper', papers)],
                   'VGG depth: top-1 error against B', 'points')
    return lines, summary, png


EXPERIMENTS = {'relu-vs-tanh': (relu_vs_tanh_arms, relu_vs_tanh_table),
               'ablations': (ablations_arms, ablations_table),
               'depth': (depth_arms, depth_table)}


def _multi(a, key):
    """'top1_error_10crop' of an arm, or its 5-crop figure for a run without mirrors (whose
    evaluation takes the five unmirrored crops)."""
    return a.get(key.replace('10crop', f"{a.get('crops', 10)}crop"))


def _delta(a, base, key):
    mine, theirs = _multi(a, key), _multi(base, key)
    if mine is None or theirs is None:
        return None
    return round(mine - theirs, 2)


def _pct(v):
    return '-' if v is None else f'{v:.1f}'


def _signed(v):
    return '-' if v is None else f'{v:+.1f}'


def _sample(size):
    from alexnet_tf1.data.sample import ensure_sample
    return ensure_sample(os.path.join(ROOT, 'data'), size)


def run(args):
    make_arms, table = EXPERIMENTS[args.name]
    where = os.path.join(args.out, args.name)
    os.makedirs(os.path.join(where, 'arms'), exist_ok=True)
    arms, score = make_arms(args)
    budget, results = Budget(args.budget_minutes), {}
    for seed in args.seeds:
        for name, flags in arms.items():
            key = name if len(args.seeds) == 1 else f'{name}-seed{seed}'
            flags = flags + ['--seed', str(seed), '--gpus', args.gpus] + \
                (['--epochs', str(args.epochs)] if args.epochs else [])
            print(f'{args.name}: {key} ...', flush=True)
            results[key] = run_arm(os.path.join(where, 'arms', f'{name}-seed{seed}'), flags,
                                   budget, score)
            _write(where, args, results, None)
    by_seed = {s: {n: results[n if len(args.seeds) == 1 else f'{n}-seed{s}'] for n in arms}
               for s in args.seeds}
    tables, summaries = [], {}
    for seed, arms_of_seed in by_seed.items():
        lines, summary, png = table(arms_of_seed)
        tables.append(f'seed {seed}:\n' + '\n'.join(lines))
        summaries[seed] = summary
        from alexnet_tf1.evaluation.figures import png_bytes
        atomic_write_bytes(os.path.join(where, f'{args.name}-seed{seed}.png'), png_bytes(png))
    _write(where, args, results, summaries)
    print('\n\n'.join(tables))
    print(f"wrote {os.path.join(where, 'result.json')} and {args.name}-seed*.png")
    unfinished = [k for k, a in results.items() if a['status'] != 'done']
    if unfinished:
        print(f"unfinished: {', '.join(unfinished)} (run the same command to continue)")
    return 0


def _write(where, args, results, summaries):
    doc = {'experiment': args.name, 'data_dir': args.data_dir, 'seeds': args.seeds,
           'epochs': args.epochs, 'arms': results, 'summary': summaries}
    atomic_write_bytes(os.path.join(where, 'result.json'), json.dumps(doc, indent=1).encode())


def parser():
    ap = OneLineParser(prog='python -m alexnet_tf1.experiments', description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('name', choices=sorted(EXPERIMENTS))
    ap.add_argument('--data-dir', help='a prepared directory (default: the built-in sample set)')
    ap.add_argument('--out', default=os.path.join(ROOT, 'experiments'),
                    help='results go to OUT/NAME (default experiments/)')
    ap.add_argument('--seeds', type=comma_list(int, 'integers like 0,1'), default=[0],
                    help='comma-separated, default 0')
    ap.add_argument('--epochs', type=at_least(1),
                    help="every arm's epochs (default: the preset's)")
    ap.add_argument('--lrs', type=_floats, default=[0.003, 0.01, 0.03, 0.1],
                    help='relu-vs-tanh: the rates tried for each neuron (default 0.003,0.01,0.03,0.1)')
    ap.add_argument('--budget-minutes', type=at_least(0, float),
                    help='stop (saving each run) after this long; the same command continues')
    ap.add_argument('--gpus', default='auto')
    return ap


def _floats(text):
    try:
        values = [float(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r}: expected rates like 0.01,0.03') from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f'{text!r}: rates must be positive')
    return values


def check(args):
    """What every arm would trip over, refused before the first one starts."""
    from alexnet_tf1 import devices
    from alexnet_tf1.data.reader import open_prepared
    if args.data_dir:
        open_prepared(args.data_dir)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserError(f'--out {args.out} is a file; results go to a directory')
    devices.resolve(args.gpus, towers=1)        # the arms' tower counts differ


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        check(args)
    except UserError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return run(args)


if __name__ == '__main__':
    sys.exit(main())
