"""Our graph in fp32 and in bf16, timed in alternation in one process:
python -m alexnet_tf1.bench.precision --model alexnet --batch-size 128.

Both graphs are built from the same config and fed the same random batch; each round times a
forward pass and a training step of each, the order rotated round by round (timing.measure),
so the ratio is taken under the same load. Prints the median images per second and the ratio.
"""
import argparse
import statistics
import sys

import numpy as np

from alexnet_tf1 import devices, models
from alexnet_tf1.bench import timing
from alexnet_tf1.config import defaults_for
from alexnet_tf1.errors import OneLineParser, UserError, at_least


def main(argv=None):
    ap = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default='alexnet')
    ap.add_argument('--batch-size', type=at_least(1), default=128)
    ap.add_argument('--steps', type=at_least(1), default=6)
    ap.add_argument('--warmup', type=at_least(0), default=2)
    args = ap.parse_args(argv)
    try:
        spec = models.get(args.model)
        from alexnet_tf1.nn import cpu_kernels
        cpu_kernels.check_bf16()
        cfg = defaults_for(args.model)
        placement = devices.resolve('cpu', towers=spec.towers)
        rng = np.random.default_rng(0)
        n, size = args.batch_size, cfg.input_size
        batch = (rng.normal(0, 50, (n, size, size, cfg.channels)).astype(np.float32),
                 rng.integers(0, cfg.num_classes, n).astype(np.int32))
        runners = []
        for precision in ('fp32', 'bf16'):
            flags = argparse.Namespace(precision=precision, intra_threads=0, inter_threads=0,
                                       xla=False, mixed_precision=False, data_format='NHWC')
            runner, *_ = timing.build_ours(args.model, cfg, placement, flags, batch)
            runner.name = precision
            runners.append(runner)
    except UserError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    times, _ = timing.measure(runners, None, args.steps, args.warmup)
    for kind in ('forward', 'train'):
        fp32, bf16 = (statistics.median(times[(p, kind)]) for p in ('fp32', 'bf16'))
        print(f'{args.model} {kind}, batch {n}: fp32 {n / fp32:.1f} img/s, bf16 {n / bf16:.1f} '
              f'img/s, bf16 / fp32 {fp32 / bf16:.2f}x', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
