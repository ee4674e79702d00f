"""python -m alexnet_tf1.bench --model alexnet [--batch-size 128] [--gpus auto] [--steps 10] [--json]

Our graph's speed beside its Keras 3 twin's and the machine's own matmul ceiling, in one run:
forward and training (forward + backward + update) ms per batch, images/s, FLOPs per image,
the GFLOP/s reached and its fraction of a large fp32 matmul's, peak RSS; then the input
pipeline's figures (alexnet_tf1.bench.data). The timed steps alternate - ours, Keras, the
one-tower Keras AlexNet, the matmul, with the order rotated every round - so machine noise
hits all of them alike. --kernels adds our graph once more per CPU formulation whose worth
depends on the ISA (cpu_kernels.KERNEL_CHOICES), that one flipped, to the same alternation. A
measurement to read, never a pass/fail test.
"""
import argparse
import json
import os
import sys

import numpy as np

from alexnet_tf1.bench.timing import (build_flipped, build_keras, build_matmul, build_ours, data_figures,
                           measure, measure_eval, peak_rss_mb, profile_step, spread)
from alexnet_tf1.errors import OneLineParser, UserError, at_least


class BenchError(UserError):
    """A flag combination this machine cannot honour; the message is one line."""


def check_flags(args, placement):
    """Refuse what cannot apply here (one line); return notes on what is on and what is not."""
    args.on_gpu = placement.kind == 'gpu'
    if args.precision == 'bf16' and not args.on_gpu:
        from alexnet_tf1.nn import cpu_kernels
        cpu_kernels.check_bf16()
    if args.data_format == 'NCHW' and not args.on_gpu:
        raise BenchError('--data-format NCHW needs a GPU: TensorFlow has no NCHW convolution '
                         'or pooling kernels on the CPU; use --data-format NHWC')
    notes = []
    if args.precision == 'bf16':
        notes.append('bf16: ours computes in bfloat16 (fp32 variables, loss and update) and is '
                     'timed beside our fp32 graph; the Keras twins run mixed_bfloat16; shares '
                     'are of the bf16 matmul')
    if args.xla:
        notes.append('xla: our session global_jit_level ON_1 (CPU auto-clustering via '
                     'TF_XLA_FLAGS=--tf_xla_cpu_global_jit), Keras compile(jit_compile=True)')
    if args.mixed_precision:
        notes.append('mixed precision: ours grappler auto_mixed_precision, Keras mixed_float16'
                     if args.on_gpu else
                     'mixed precision: not applied - fp16 is a GPU feature, the CPU runs fp32')
    if args.on_gpu:
        notes.append(f'data format {args.data_format}: Keras '
                     f"{'channels_first' if args.data_format == 'NCHW' else 'channels_last'}; "
                     f"ours built NHWC, grappler layout optimizer "
                     f"{'on' if args.data_format == 'NCHW' else 'off'}")
    return notes


def run(args):
    from alexnet_tf1 import devices, models
    from alexnet_tf1.bench import flops, machine
    if args.intra_threads or args.inter_threads:
        # otherwise the first session's thread counts become every CPU session's (TF's global
        # intra-op pool), and the matmul ceiling would be measured with ours
        os.environ.setdefault('TF_OVERRIDE_GLOBAL_THREADPOOL', '1')
    if args.xla:
        # without this flag TF never auto-clusters ops placed on a CPU; read at the first session
        flags = os.environ.get('TF_XLA_FLAGS', '')
        if '--tf_xla_cpu_global_jit' not in flags:
            os.environ['TF_XLA_FLAGS'] = (flags + ' --tf_xla_cpu_global_jit').strip()
    placement = devices.resolve(args.gpus, towers=models.get(args.model).towers)
    notes = check_flags(args, placement)
    busy_before = machine.others_busy()     # before this process loads the CPUs itself
    config = flops.default_config(args.model)

    rng = np.random.default_rng(0)
    size, ch = config.input_size, config.channels
    # pixel spread like mean-subtracted ImageNet's; the same arrays feed every runner
    batch = ((rng.standard_normal((args.batch_size, size, size, ch)) * 60).astype(np.float32),
             rng.integers(0, config.num_classes, args.batch_size).astype(np.int32))

    ours, sess, train_fetch, train_feed = build_ours(args.model, config, placement, args, batch)
    for _ in range(args.warmup):
        ours.forward()
        ours.train()
    ours_rss = peak_rss_mb()                # before anything else is built in this process

    runners, others = [ours], []            # others: the sessions closed at the end
    if args.precision == 'bf16':            # what bf16 buys: our fp32 graph in the same rounds
        fp32_args = argparse.Namespace(**{**vars(args), 'precision': 'fp32'})
        ours_fp32, fp32_sess, _, _ = build_ours(args.model, config, placement, fp32_args, batch)
        ours_fp32.name = 'ours_fp32'
        runners.append(ours_fp32)
        others.append(fp32_sess)
    flipped = []
    if args.kernels and not args.on_gpu:
        flipped = build_flipped(args.model, config, placement, args, batch, sess.graph)
        runners += [r for _, _, r, _ in flipped]
    twins = {}
    if not args.no_keras:
        from alexnet_tf1.bench import keras_twins
        names = [('keras', args.model)]
        if keras_twins.EXTRA.get(args.model):
            names.append(('keras_one_tower', keras_twins.EXTRA[args.model]))
        for key, twin in names:
            r = build_keras(twin, config, args, batch)
            if r is not None:
                r.name = key
                twins[key] = r
                runners.append(r)
    # the ceiling: TF's own thread counts, no XLA or rewrites, whatever ours runs with
    matmuls = {}
    for precision in sorted({'fp32', args.precision}):
        run_mm, mm_flops, mm_sess = build_matmul(args.matmul_size, placement.towers[0],
                                                 placement.session_config(), precision)
        matmuls[precision] = run_mm
        others.append(mm_sess)
    times, mm_all = measure(runners, matmuls, args.steps, args.warmup)
    mm_times = mm_all[args.precision]

    b = args.batch_size
    gf = ours.flops_per_image / 1e9
    ceilings = {p: round(mm_flops / 1e9 / float(np.median(t)), 1) for p, t in mm_all.items()}
    mm_gflops = ceilings[args.precision]
    fwd, train = spread(times[('ours', 'forward')]), spread(times[('ours', 'train')])
    ips = b / (train['median'] / 1000)
    out = {
        'model': args.model, 'batch_size': b, 'devices': list(placement.towers),
        'steps': args.steps, 'warmup_steps': args.warmup,
        'forward_ms': fwd['median'], 'train_ms': train['median'],
        'forward_images_per_s': round(b / (fwd['median'] / 1000), 1),
        'train_images_per_s': round(ips, 1),
        'gflops_per_image': float(f'{gf:.5g}'),
        'flops_per_image': int(ours.flops_per_image),
        'forward_gflops': round(gf * b / (fwd['median'] / 1000), 1),
        'train_gflops': round(3 * gf * ips, 1),
        'peak_rss_mb': round(ours_rss, 1),
        'machine_matmul_gflops': round(mm_gflops, 1),
        'matmul_size': args.matmul_size,
        'train_fraction_of_matmul_peak': round(3 * gf * ips / mm_gflops, 3),
        'forward_fraction_of_matmul_peak': round(gf * b / (fwd['median'] / 1000) / mm_gflops, 3),
        'forward_ms_spread': fwd, 'train_ms_spread': train,
        'matmul_ms_spread': spread(mm_times),
        'matmul_gflops_by_precision': ceilings,
    }
    if args.precision == 'bf16':
        f32f, f32t = spread(times[('ours_fp32', 'forward')]), spread(times[('ours_fp32', 'train')])
        out.update({'fp32_forward_ms': f32f['median'], 'fp32_train_ms': f32t['median'],
                    'fp32_train_images_per_s': round(b / (f32t['median'] / 1000), 1),
                    'fp32_train_gflops': round(3 * gf * b / (f32t['median'] / 1000), 1),
                    'fp32_train_fraction_of_fp32_matmul': round(
                        3 * gf * b / (f32t['median'] / 1000) / ceilings['fp32'], 3),
                    'train_speedup_vs_fp32': round(f32t['median'] / train['median'], 3),
                    'forward_speedup_vs_fp32': round(f32f['median'] / fwd['median'], 3)})
    for key in ('keras', 'keras_one_tower'):
        r = twins.get(key)
        if r is None:
            for k in ('forward_ms', 'train_ms', 'train_images_per_s', 'gflops_per_image',
                      'train_gflops', 'train_fraction_of_matmul_peak'):
                out[f'{key}_{k}'] = None
            suffix = '' if key == 'keras' else '_one_tower'
            out[f'train_speedup_vs_keras{suffix}'] = None
            out[f'forward_speedup_vs_keras{suffix}'] = None
            continue
        kf, kt = spread(times[(key, 'forward')]), spread(times[(key, 'train')])
        kips = b / (kt['median'] / 1000)
        kgf = r.flops_per_image / 1e9
        suffix = '' if key == 'keras' else '_one_tower'
        out.update({
            f'{key}_forward_ms': kf['median'], f'{key}_train_ms': kt['median'],
            f'{key}_train_images_per_s': round(kips, 1),
            f'{key}_gflops_per_image': float(f'{kgf:.5g}'),
            f'{key}_train_gflops': round(3 * kgf * kips, 1),
            f'{key}_train_fraction_of_matmul_peak': round(3 * kgf * kips / mm_gflops, 3),
            f'{key}_forward_ms_spread': kf, f'{key}_train_ms_spread': kt,
            f'train_speedup_vs_keras{suffix}': round(kt['median'] / train['median'], 3),
            f'forward_speedup_vs_keras{suffix}': round(kf['median'] / fwd['median'], 3),
        })
    # the 10-crop protocol: a batch of b crops is b / 10 images
    out['eval_images_per_s_10crop'] = round(b / 10 / (fwd['median'] / 1000), 2)
    out['keras_predict_ms'] = out['eval_speedup_vs_keras_predict'] = None
    if 'keras' in twins:
        e_ours, e_keras = measure_eval(ours, twins['keras'], args.steps, args.warmup)
        ours_ms, keras_ms = spread(e_ours)['median'], spread(e_keras)['median']
        out.update(keras_predict_ms=keras_ms, eval_forward_ms=ours_ms,
                   eval_speedup_vs_keras_predict=round(keras_ms / ours_ms, 3))
    if args.kernels:
        out['kernel_choices'] = _kernel_choices(flipped, times, fwd, train)
    out['keras_twin'] = args.model if 'keras' in twins else None
    out['keras_one_tower_twin'] = ('alexnet-ungrouped' if 'keras_one_tower' in twins else None)
    out['process_peak_rss_mb'] = round(peak_rss_mb(), 1)
    out['machine'] = machine.describe(busy_before, out['matmul_ms_spread'], args.intra_threads,
                                      args.inter_threads)
    from alexnet_tf1.nn.cpu_kernels import KERNEL_CHOICES, avx512, chosen, cpu_kernels
    bf16 = args.precision == 'bf16'
    from alexnet_tf1.nn.winograd import DIRECT_FLOPS
    if sess.graph.get_collection(DIRECT_FLOPS):
        notes.append('Winograd F(2x2,3x3) runs the 3x3 stride-1 convolutions: 2.25x fewer '
                     'multiplies; the FLOPs and the matmul share count the direct convolution')
    out.update({'xla': bool(args.xla), 'mixed_precision': bool(args.mixed_precision and args.on_gpu),
                'mixed_precision_requested': bool(args.mixed_precision),
                'data_format': args.data_format, 'notes': notes, 'precision': args.precision,
                'cpu_kernels': 'n/a' if args.on_gpu else cpu_kernels(),
                'cpu_avx512': None if args.on_gpu else avx512(),
                'cpu_formulations': None if args.on_gpu else
                [c for c in KERNEL_CHOICES if chosen(c, bf16)],
                'session_threads': {'intra_op': args.intra_threads, 'inter_op': args.inter_threads}})
    if args.profile or args.timeline:
        out['profile'] = profile_step(sess, train_fetch, train_feed, args.profile or 15,
                                      args.timeline)
    sess.close()
    for other in others:
        other.close()
    for *_, flipped_sess in flipped:
        flipped_sess.close()
    if args.no_data:
        out['data'] = None
    else:
        d = data_figures(args.data_images, args.data_seconds)
        out['data'] = d
        aug = d.get('augment_images_per_s_one_core')
        # cores the NumPy training input (256 -> 227 crops) would need to keep up with our
        # training step; only meaningful for a model that takes those crops
        fits = (config.input_size, config.channels) == (227, 3)
        out['input_cores_needed'] = round(ips / aug, 4) if aug and fits else None
    return out


def _kernel_choices(flipped, times, fwd, train):
    """{choice: ours' setting, the flipped graph's medians and ours' speed against it} for each
    CPU formulation the model's graph contains (cpu_kernels.KERNEL_CHOICES)."""
    out = {}
    for choice, on, r, _ in flipped:
        kf, kt = spread(times[(r.name, 'forward')]), spread(times[(r.name, 'train')])
        out[choice] = {'ours': 'on' if on else 'off', 'flipped_forward_ms': kf['median'],
                       'flipped_train_ms': kt['median'],
                       'train_speedup_vs_flipped': round(kt['median'] / train['median'], 3),
                       'forward_speedup_vs_flipped': round(kf['median'] / fwd['median'], 3)}
    return out


def _row(name, fwd, train, ips, gflops, frac):
    def f(v, fmt):
        return format(v, fmt) if v is not None else format('-', fmt.split('.')[0])
    return (f'  {name:<26} {f(fwd, ">10.1f")} {f(train, ">10.1f")} {f(ips, ">9.1f")} '
            f'{f(gflops, ">8.1f")} {f(frac, ">7.1%")}')


def print_report(r):
    print(f"{r['model']}, batch {r['batch_size']}, devices {', '.join(r['devices'])}, "
          f"{r['steps']} steps after {r['warmup_steps']} warm-up (medians; alternating runs)")
    print(f"  {'':<26} {'fwd ms':>10} {'train ms':>10} {'images/s':>9} {'GFLOP/s':>8} {'of mm':>7}")
    print(_row(f"ours ({r['gflops_per_image']:.4g} GFLOP/img)", r['forward_ms'], r['train_ms'],
               r['train_images_per_s'], r['train_gflops'], r['train_fraction_of_matmul_peak']))
    for key, label in (('keras', 'Keras twin'), ('keras_one_tower', 'Keras one-tower')):
        if r.get(f'{key}_train_ms') is None:
            if key == 'keras':
                print(f'  {label:<26} (no Keras twin for this model)')
            continue
        print(_row(f"{label} ({r[f'{key}_gflops_per_image']:.4g})", r[f'{key}_forward_ms'],
                   r[f'{key}_train_ms'], r[f'{key}_train_images_per_s'], r[f'{key}_train_gflops'],
                   r[f'{key}_train_fraction_of_matmul_peak']))
        suffix = '' if key == 'keras' else '_one_tower'
        print(f"  {'':<26} ours is {r[f'forward_speedup_vs_keras{suffix}']:.2f}x forward, "
              f"{r[f'train_speedup_vs_keras{suffix}']:.2f}x training")
    print(f"  evaluation, 10 crops an image: {r['eval_images_per_s_10crop']:.1f} images/s" +
          (f"; on the same crops ours {r['eval_forward_ms']:.1f} ms against Keras predict() "
           f"{r['keras_predict_ms']:.1f} ms: {r['eval_speedup_vs_keras_predict']:.2f}x"
           if r.get('keras_predict_ms') else ''))
    s = r['train_ms_spread']
    print(f"  ours train ms min/p25/p75/max: {s['min']:.1f} / {s['p25']:.1f} / {s['p75']:.1f} / "
          f"{s['max']:.1f}")
    if r.get('fp32_train_ms') is not None:
        print(_row('ours in fp32', r['fp32_forward_ms'], r['fp32_train_ms'],
                   r['fp32_train_images_per_s'], r['fp32_train_gflops'],
                   r['fp32_train_fraction_of_fp32_matmul']))
        print(f"  {'':<26} bf16 is {r['forward_speedup_vs_fp32']:.2f}x forward, "
              f"{r['train_speedup_vs_fp32']:.2f}x training (fp32's share is of the fp32 matmul)")
    ceilings = ', '.join(f'{p} {g:.1f}' for p, g in
                         sorted(r.get('matmul_gflops_by_precision', {}).items()))
    print(f"  machine: matmul {r['matmul_size']}^2 GFLOP/s {ceilings}; ours training reaches "
          f"{r['train_fraction_of_matmul_peak']:.1%} of the {r.get('precision', 'fp32')} one "
          f"(training = 3x forward FLOPs)")
    from alexnet_tf1.bench.machine import line
    print('  ' + line(r['machine']))
    print(f"  peak RSS: ours {r['peak_rss_mb']:.0f} MB (before any Keras model was built), "
          f"whole run {r['process_peak_rss_mb']:.0f} MB")
    print(f"  flags: precision {r.get('precision', 'fp32')}, xla {'on' if r['xla'] else 'off'}, "
          f"mixed precision "
          f"{'on' if r['mixed_precision'] else 'off'}, data format {r['data_format']}, "
          f"CPU kernels {r['cpu_kernels']} (ALEXNET_TF1_CPU_KERNELS)" +
          ('' if r.get('cpu_avx512') is None else
           f", oneDNN {'AVX-512' if r['cpu_avx512'] else 'AVX2 or less'}"))
    for n in r['notes']:
        print(f'    {n}')
    p = r.get('profile')
    if p:
        print(f"  profile of one training step ({p['traced_step_ms']:.0f} ms traced; op times "
              f"summed {p['op_time_sum_ms']:.0f} ms over both devices):")
        for row in p['by_op_type']:
            print(f"    {row['op']:<40} {row['ms']:>9.1f} ms {row['share']:>6.1%}")
        print('  the same step by layer (forward + backward of each; update and weight decay '
              'over all weights):')
        for row in p['by_layer']:
            print(f"    {row['layer']:<40} {row['ms']:>9.1f} ms {row['share']:>6.1%}")
    k = r.get('kernel_choices')
    if k is not None:
        print('  CPU formulations, each against the same graph with that one flipped (same run):'
              if k else '  CPU formulations: none in this graph (or TF kernels throughout)')
        for choice, c in k.items():
            print(f"    {choice:<20} {c['ours']:>3} in ours: ours {c['train_speedup_vs_flipped']:.3f}x "
                  f"training ({r['train_ms']:.0f} vs {c['flipped_train_ms']:.0f} ms), "
                  f"{c['forward_speedup_vs_flipped']:.3f}x forward")
    d = r.get('data')
    if d is None:
        print('  input pipeline: skipped (--no-data)')
    elif 'error' in d:
        print(f"  input pipeline: not measured ({d['error']})")
    else:
        print(f"  input pipeline: prepare {d['prepare_images_per_s']:.0f} images/s, TF decode+resize "
              f"{d['tf_decode_resize_images_per_s']:.0f} images/s, train_batches "
              f"{d['augment_images_per_s_one_core']:.0f} images/s on one core "
              f"({d.get('augment_vs_tf_data_ratio', 0):.2f}x tf.image in a tf.data map)" +
              (f" (ours needs {r['input_cores_needed']:.3g} core(s) of it)"
               if r.get('input_cores_needed') else ''))


def main(argv=None):
    ap = OneLineParser(
        prog='python -m alexnet_tf1.bench',
        description="Our graph's forward and training speed beside its Keras 3 twin's and the "
                    "machine's fp32 matmul ceiling, timed alternately in one run.")
    ap.add_argument('--model', default='alexnet', help='a registered model (default alexnet)')
    ap.add_argument('--batch-size', type=at_least(1),
                    help="default 128 for AlexNet (the paper's batch), 32 for the others")
    ap.add_argument('--gpus', default='auto', help="'auto', 'cpu', or GPU ids like '0,1'")
    ap.add_argument('--steps', type=at_least(1), default=10,
                    help='timed steps of each kind (default 10)')
    ap.add_argument('--warmup', type=at_least(0), default=2,
                    help='untimed steps first (default 2)')
    ap.add_argument('--json', action='store_true', help='print one JSON object')
    ap.add_argument('--xla', action='store_true', help='XLA: global_jit_level / jit_compile')
    ap.add_argument('--mixed-precision', action='store_true',
                    help='fp16 compute on a GPU (not applied on the CPU)')
    ap.add_argument('--precision', default='fp32', choices=('fp32', 'bf16'),
                    help="ours' arithmetic (run_train.py's --precision); bf16 needs a CPU with "
                         'AVX512_BF16 or AMX')
    ap.add_argument('--data-format', default='NHWC', type=str.upper, choices=('NHWC', 'NCHW'),
                    help='NCHW is valid on a GPU only')
    ap.add_argument('--no-keras', action='store_true', help='time our graph only')
    ap.add_argument('--kernels', action='store_true',
                    help='also time our graph with each CPU formulation flipped (cpu_kernels.KERNEL_CHOICES)')
    ap.add_argument('--no-data', action='store_true', help='skip the input-pipeline figures')
    ap.add_argument('--data-seconds', type=at_least(0, float, strict=True), default=1.0,
                    help='time per input-pipeline measurement (default 1)')
    ap.add_argument('--data-images', type=at_least(1), default=12,
                    help='JPEGs the input-pipeline benchmark writes (default 12)')
    ap.add_argument('--matmul-size', type=at_least(1), default=4096,
                    help='side of the square matmul that measures the ceiling (default 4096)')
    ap.add_argument('--intra-threads', type=at_least(0), default=0,
                    help='our session intra_op_parallelism_threads (0: TF decides)')
    ap.add_argument('--inter-threads', type=at_least(0), default=0,
                    help='our session inter_op_parallelism_threads (0: TF decides)')
    ap.add_argument('--profile', type=at_least(1), nargs='?', const=15, default=0, metavar='TOP',
                    help='trace one extra training step of ours: time per op type (top TOP)')
    ap.add_argument('--timeline', metavar='PATH', help='write that step as a Chrome trace JSON')
    args = ap.parse_args(argv)
    if args.batch_size is None:
        args.batch_size = 128 if args.model == 'alexnet' else 32
    if args.timeline and not os.path.isdir(os.path.dirname(os.path.abspath(args.timeline))):
        # found out after the whole measurement otherwise
        ap.error(f'--timeline {args.timeline}: its directory does not exist')
    from alexnet_tf1 import models
    if args.model not in models.MODELS:
        ap.error(f"unknown model {args.model!r}; choose from {', '.join(sorted(models.MODELS))}")
    try:
        r = run(args)
    except UserError as e:      # BenchError, DeviceError, cpu_kernels.PrecisionError
        print(f'error: {e}', file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r))
    else:
        print_report(r)
    return 0


if __name__ == '__main__':
    sys.exit(main())
