"""The same weights in fp32 and in bf16, on the same crops:
python -m alexnet_tf1.experiments.precision_gap --train-dir checkpoints/alexnet
python -m alexnet_tf1.experiments.precision_gap --init-from bvlc_alexnet.npy --model alexnet
python -m alexnet_tf1.experiments.precision_gap --train-dir checkpoints/alexnet --gradients

Scores each validation image's crops as run_eval.py does (the paper's corners and centre and
their mirrors; the five unmirrored for a model trained without mirrors) with the model built
twice, in fp32 and in bf16 (run_eval.py --precision), and prints the largest logit gap,
absolute and as a share of the largest fp32 logit, how often the two pick the same class (per
crop, and on the crops' average softmax), and each one's multi-crop top-1 error. Published
weights keep their own mean and 1000-way head (--num-classes for a file with another); their
error against the data set's labels means something only where the labels are theirs. Needs a CPU where bf16 runs
(cpu_kernels.bf16_missing).

--gradients compares training instead: each variable's gradient of the run's loss (its
cross-entropy with any label smoothing and auxiliary heads; dropout on, batch norm on the
batch's statistics, as in a training step; no weight decay, the same fp32 term in both) on
the validation split's first batch of centre crops, in bf16 against fp32, as the angle between
the two in degrees; beside it the angle between fp32's gradients on the first and the second
batch: SGD's spread from one batch to the next, the yardstick the rounding is small or large
against (a low one: both batches get the same dropout masks, which follow the step).
"""
import argparse
import itertools
import json
import os
import sys

import numpy as np

from alexnet_tf1.errors import OneLineParser, UserError, at_least


def parser():
    ap = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument('--train-dir', help="a run's directory (its newest checkpoint) or a checkpoint")
    src.add_argument('--init-from', metavar='FILE', help='published weights (run_eval.py --init-from)')
    ap.add_argument('--model', help='the model of --init-from (default: told by the file)')
    ap.add_argument('--mean', help="--init-from's mean, as run_eval.py's")
    ap.add_argument('--num-classes', type=at_least(1), default=1000,
                    help="--init-from's classes (default 1000, ImageNet's)")
    ap.add_argument('--data-dir', help="prepared data (default: the run's own; data/sample for "
                                       'published weights)')
    ap.add_argument('--batch-size', type=at_least(1), default=16,
                    help='images a batch (x10 crops; with --gradients centre crops only)')
    ap.add_argument('--gradients', action='store_true',
                    help="compare each variable's training gradient instead (degrees apart)")
    ap.add_argument('--json', action='store_true', help='print one JSON object')
    return ap


def restore_both(args, gradients=False):
    """{'fp32': Restored, 'bf16': Restored} from the same checkpoint or file (`gradients`:
    Restored's)."""
    from alexnet_tf1.evaluation import evaluate
    from alexnet_tf1.nn import cpu_kernels
    from alexnet_tf1.training import checkpoints
    from alexnet_tf1.weights import keras_inception, keras_vgg
    cpu_kernels.check_bf16()
    if args.train_dir:
        path = checkpoints.resolve(args.train_dir)    # a train dir or a checkpoint prefix
        return {p: evaluate.Restored(path, 'cpu', precision=p, gradients=gradients)
                for p in ('fp32', 'bf16')}
    model = args.model or keras_vgg.vgg_variant(args.init_from) or \
        keras_inception.detect(args.init_from) or 'alexnet'
    return {p: evaluate.Restored.from_weights(args.init_from, model, args.num_classes, 'cpu',
                                              mean=args.mean, precision=p, gradients=gradients)
            for p in ('fp32', 'bf16')}


def compare(restored, prepared, batch_size):
    """The gap figures of the module docstring, over the validation split's ten crops."""
    from alexnet_tf1.data import pipeline
    from alexnet_tf1.evaluation.evaluate import n_crops, topk_errors
    fp32, bf16 = restored['fp32'], restored['bf16']
    gap = top = 0.0
    same_crop = crops = 0
    avg = {'fp32': [], 'bf16': []}
    labels = []
    size, k = fp32.config.input_size, n_crops(fp32.state)
    for x, y in pipeline.eval_batches(prepared, batch_size, crop=size, mode='ten'):
        x = x[:, :k].reshape((-1,) + x.shape[2:])
        z = {p: r.logits(x) for p, r in restored.items()}
        gap = max(gap, float(np.abs(z['bf16'] - z['fp32']).max()))
        top = max(top, float(np.abs(z['fp32']).max()))
        same_crop += int((z['bf16'].argmax(1) == z['fp32'].argmax(1)).sum())
        crops += len(x)
        for p, logits in z.items():
            e = np.exp(logits - logits.max(1, keepdims=True))
            avg[p].append((e / e.sum(1, keepdims=True)).reshape(len(y), k, -1).mean(1))
        labels.append(y)
    if not crops:
        raise UserError(f'{prepared.path} has no validation images to compare on')
    avg = {p: np.concatenate(v) for p, v in avg.items()}
    labels = np.concatenate(labels)
    return {'model': fp32.config.model, 'images': int(len(labels)), 'crops_per_image': k,
            'largest_logit_gap': gap, 'largest_fp32_logit': top,
            'gap_share_of_largest_logit': gap / top if top else None,
            'same_class_per_crop': same_crop / crops,
            'same_class_averaged': float(np.mean(avg['bf16'].argmax(1) == avg['fp32'].argmax(1))),
            'top1_error_averaged': {p: topk_errors(a, labels)[0] for p, a in avg.items()}}


def gradient_angles(restored, prepared, batch_size):
    """The --gradients figures of the module docstring, a row per variable."""
    from alexnet_tf1.data import pipeline
    config = restored['fp32'].config
    batches = list(itertools.islice(pipeline.eval_batches(prepared, batch_size,
                                                          crop=config.input_size), 2))
    if len(batches) < 2 or len(batches[1][1]) < batch_size:
        raise UserError(f'{prepared.path} has fewer than two batches of {batch_size} validation '
                        'images; give a smaller --batch-size')
    if max(int(y.max()) for _, y in batches) >= config.num_classes:
        raise UserError(f'{prepared.path} has labels past the model\'s {config.num_classes} '
                        'classes; give the data set it was trained on (--data-dir)')
    grads, names = {}, {}
    for p, r in restored.items():
        g = r.g
        names[p] = [v.op.name for _, v in g.grads]
        for i, (x, y) in enumerate(batches[:2 if p == 'fp32' else 1]):
            grads[p, i] = r.sess.run([d for d, _ in g.grads],
                                     {g.images: x, g.labels: y, g.training: True})
    assert names['fp32'] == names['bf16'], 'one builder, one variable order'
    rows = [{'variable': n, 'bf16_vs_fp32_degrees': _degrees(a, b),
             'batch_vs_batch_degrees': _degrees(a, c)}
            for n, a, b, c in zip(names['fp32'], grads['fp32', 0], grads['bf16', 0],
                                  grads['fp32', 1])]
    return {'model': config.model, 'batch_size': batch_size, 'variables': rows}


def _degrees(a, b):
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    return float(np.degrees(np.arccos(np.clip(a @ b / norms, -1, 1)))) if norms else None


def print_angles(result):
    print(f"{result['model']}, training gradients on validation batches of "
          f"{result['batch_size']}, degrees apart:")
    print(f"{'variable':40s} {'bf16 vs fp32':>12s} {'batch 1 vs batch 2 (fp32)':>26s}")
    for row in result['variables']:
        print(f"{row['variable']:40s} {_deg(row['bf16_vs_fp32_degrees']):>12s} "
              f"{_deg(row['batch_vs_batch_degrees']):>26s}")


def _deg(d):
    return '-' if d is None else f'{d:.2f}'


def main(argv=None):
    args = parser().parse_args(argv)
    from alexnet_tf1 import ROOT
    from alexnet_tf1.data.reader import open_prepared
    try:
        if args.model and args.train_dir:
            raise UserError('--model goes with --init-from; a checkpoint knows its model')
        restored = restore_both(args, gradients=args.gradients)
        r = restored['fp32']
        data = args.data_dir or r.state.get('data_dir') or os.path.join(ROOT, 'data', 'sample')
        prepared = r.data(open_prepared(data))
        result = (gradient_angles if args.gradients else compare)(restored, prepared,
                                                                  args.batch_size)
    except UserError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    for one in restored.values():
        one.close()
    if args.json:
        print(json.dumps(result))
        return 0
    if args.gradients:
        print_angles(result)
        return 0
    e, k = result['top1_error_averaged'], result['crops_per_image']
    print(f"{result['model']}, {result['images']} images x {k} crops, fp32 against bf16: largest "
          f"logit gap {result['largest_logit_gap']:.4g} "
          f"({result['gap_share_of_largest_logit']:.2%} of the largest logit, "
          f"{result['largest_fp32_logit']:.4g}); same class on {result['same_class_per_crop']:.1%} "
          f"of the crops and {result['same_class_averaged']:.1%} of the {k}-crop averages; "
          f"{k}-crop top-1 error fp32 {e['fp32']:.1f}%, bf16 {e['bf16']:.1f}%")
    return 0


if __name__ == '__main__':
    sys.exit(main())
