"""What the benchmark (bench.report) times, and how: the runners (our graph, its Keras twin, the matmul
ceiling), the alternating timing loop, the spread over rounds, the per-layer profile of one
step and the input pipeline's figures. bench.py turns these into its report."""
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from alexnet_tf1 import ROOT

MB = 1024.0     # ru_maxrss is in KiB on Linux


# ---- what is timed -----------------------------------------------------------------------

class Runner:
    """One implementation under test: forward() and train() each run one batch to the end."""

    def __init__(self, name, forward, train, flops_per_image):
        self.name, self.forward, self.train = name, forward, train
        self.flops_per_image = flops_per_image


def session_config(placement, args):
    """The placement's session config plus the GPU-relevant switches the flags ask for."""
    from alexnet_tf1.tf_compat import tf1
    config = placement.session_config(args.intra_threads, args.inter_threads)
    if args.intra_threads or args.inter_threads:
        config.use_per_session_threads = True   # not the process-wide pools the matmul uses
    if args.xla:
        config.graph_options.optimizer_options.global_jit_level = tf1.OptimizerOptions.ON_1
    rw = config.graph_options.rewrite_options
    on, off = type(rw).ON, type(rw).OFF         # RewriterConfig's Toggle values
    if args.mixed_precision and placement.kind == 'gpu':
        rw.auto_mixed_precision = on
    if placement.kind == 'gpu':
        # our graph is built NHWC; on a GPU grappler's layout optimizer is what makes it NCHW
        rw.layout_optimizer = on if args.data_format == 'NCHW' else off
    return config


def build_ours(name, config, placement, args, batch):
    """Our graph in a Session, initialised: (Runner, session, training fetch, training feed)."""
    from alexnet_tf1.bench import flops
    from alexnet_tf1.training import graph as graph_mod
    from alexnet_tf1.tf_compat import session, tf1
    mg = graph_mod.build(config, placement, precision=args.precision)
    sess = session(mg.graph, session_config(placement, args))
    with mg.graph.as_default():
        sess.run(tf1.global_variables_initializer())
    train_feed = {mg.images: batch[0], mg.labels: batch[1], mg.lr: 0.01, mg.training: True}
    train_fetch = [mg.train_op, mg.total_loss]
    # make_callable skips the per-call feed/fetch parsing of sess.run, as a training loop would
    fwd = sess.make_callable(mg.logits, [mg.images])
    step = sess.make_callable(train_fetch, [mg.images, mg.labels, mg.lr, mg.training])
    per_image = sum(flops.graph_flops([mg.logits]).values())
    runner = Runner('ours', lambda: fwd(batch[0]),
                    lambda: step(batch[0], batch[1], 0.01, True), per_image)
    return runner, sess, train_fetch, train_feed


def build_flipped(name, config, placement, args, batch, ours_graph):
    """Our graph again once per CPU formulation (cpu_kernels.KERNEL_CHOICES) with that one choice
    flipped: [(choice, whether ours uses it, Runner, session)], leaving out the choices whose
    flip builds the same ops as `ours_graph` (a model without LRN; TF's kernels throughout)."""
    from alexnet_tf1.nn import cpu_kernels
    ours_ops = _op_types(ours_graph)
    out = []
    for choice in cpu_kernels.KERNEL_CHOICES:
        on = cpu_kernels.chosen(choice, args.precision == 'bf16')
        with cpu_kernels.kernel_choices(**{choice: not on}):
            runner, sess, _, _ = build_ours(name, config, placement, args, batch)
        if _op_types(sess.graph) == ours_ops:
            sess.close()
            continue
        runner.name = f"{choice} {'off' if on else 'on'}"
        out.append((choice, on, runner, sess))
    return out


def _op_types(graph):
    # an op XLA compiles is the same type with a scope attribute (relu_xla)
    return sorted((op.type, '_XlaScope' in op.node_def.attr) for op in graph.get_operations())


def build_keras(twin_name, config, args, batch):
    """A Keras twin as a Runner, or None when the model has no twin."""
    from alexnet_tf1.bench import flops, keras_twins
    make = keras_twins.get(twin_name)
    if make is None:
        return None
    fmt = 'channels_first' if args.data_format == 'NCHW' else 'channels_last'
    policy = ('mixed_bfloat16' if args.precision == 'bf16' else
              'mixed_float16' if args.mixed_precision and args.on_gpu else None)
    model = make(config, xla=args.xla, policy=policy, data_format=fmt)
    x = np.ascontiguousarray(batch[0].transpose(0, 3, 1, 2)) if fmt == 'channels_first' else batch[0]
    y = batch[1]
    fwd_model = getattr(model, 'forward_model', model)
    n_out = len(model.outputs)
    ys = y if n_out == 1 else [y] * n_out
    runner = Runner(twin_name, lambda: fwd_model.predict_on_batch(x),
                    lambda: model.train_on_batch(x, ys), flops.keras_forward_flops(fwd_model))
    # what a Keras user evaluates with: predict() over the crops, its own batching and loop
    runner.predict = lambda: fwd_model.predict(x, batch_size=len(x), verbose=0)
    return runner


def build_matmul(n, device, config, precision='fp32'):
    """[n, n] x [n, n] of two variables (nothing to constant-fold) in fp32 or bf16 (the
    ceiling of ours in that precision), reduced to a scalar so the fetch is cheap: (run(),
    FLOPs per run, the session)."""
    from alexnet_tf1.tf_compat import session, tf, tf1
    from alexnet_tf1.training.graph import PRECISIONS
    dtype = PRECISIONS[precision]
    g = tf.Graph()
    with g.as_default(), tf1.device(device):
        a = tf1.get_variable('a', [n, n], dtype, tf1.random_normal_initializer())
        b = tf1.get_variable('b', [n, n], dtype, tf1.random_normal_initializer())
        total = tf.reduce_sum(tf.matmul(a, b))
        init = tf1.global_variables_initializer()
    sess = session(g, config)
    sess.run(init)
    return sess.make_callable(total), 2.0 * n ** 3, sess


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MB


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(runners, matmuls, steps, warmup):
    """{(runner name, 'forward'|'train'): [seconds]} and {matmul name: [seconds]}, each round
    running every runner's forward, then every runner's training step, then each matmul
    ({name: run()}), with the runners' order rotated round by round."""
    times = {(r.name, k): [] for r in runners for k in ('forward', 'train')}
    mm = {name: [] for name in matmuls}
    for r in runners:                       # first calls build tf.functions, allocate, fault pages
        for _ in range(warmup):
            r.forward()
            r.train()
    for run in matmuls.values():
        for _ in range(warmup):
            run()
    for i in range(steps):
        order = runners[i % len(runners):] + runners[:i % len(runners)]
        for kind in ('forward', 'train'):
            for r in order:
                times[(r.name, kind)].append(timed(getattr(r, kind)))
        for name, run in matmuls.items():
            mm[name].append(timed(run))
    return times, mm


def measure_eval(ours, keras, steps, warmup):
    """Evaluation on the same crops, alternating: our session's forward (what run_eval.py
    runs per batch of crops) against Keras' model.predict. ([seconds], [seconds])."""
    for _ in range(warmup):
        ours.forward()
        keras.predict()
    a, b = [], []
    for i in range(steps):
        pair = [(a, ours.forward), (b, keras.predict)]
        for times, fn in (pair if i % 2 == 0 else pair[::-1]):
            times.append(timed(fn))
    return a, b


def spread(seconds):
    """Median and spread of per-step times, in ms."""
    ms = np.asarray(seconds) * 1000.0
    q = np.percentile(ms, [0, 25, 50, 75, 100])
    return {'median': round(float(q[2]), 2), 'min': round(float(q[0]), 2),
            'p25': round(float(q[1]), 2), 'p75': round(float(q[3]), 2),
            'max': round(float(q[4]), 2)}


# ---- profile -----------------------------------------------------------------------------

def op_type_of(node):
    """'Conv2DBackpropFilter' from a NodeExecStats' timeline label 'name = Type(inputs)'."""
    label = node.timeline_label
    if ' = ' in label:
        return label.split(' = ', 1)[1].split('(', 1)[0].strip() or node.node_name
    return node.node_name.split(':')[0]


def layer_of(node_name):
    """'gradients/tower1/conv2/Conv2D_grad/Conv2DBackpropFilter' -> 'conv2';
    'tower0/fc6_input' -> 'fc6'; the momentum kernels and the g * lr products (objective.py's
    top-level 'mul_N') -> 'update'; L2Loss, its gradient and the gradient sums it causes
    -> 'weight_decay'."""
    parts = node_name.split(':')[0].split('/')
    grad = parts[0] == 'gradients'
    if grad:
        parts = parts[1:]
    if not parts:
        return node_name
    if any(p.startswith('update_') for p in parts) or parts[0] in ('paper_momentum', 'Momentum'):
        return 'update'
    if not grad and parts[0].split('_')[0] == 'mul':
        return 'update'
    if parts[0].startswith('L2Loss') or parts[0].split('_')[0] == 'AddN':
        return 'weight_decay'
    if parts[0].startswith('tower') and len(parts) > 1:
        parts = parts[1:]
    head = parts[0]
    for suffix in ('_grad', '_input'):
        if head.endswith(suffix):
            head = head[:-len(suffix)]
    return head


def profile_step(sess, fetch, feed, top=15, timeline_path=None):
    """One traced training step (RunMetadata FULL_TRACE): op time summed per op type, per
    layer, and the slowest single ops, in ms. Ops of the two towers run at the same time and
    share the cores, so the sums exceed the wall time and each op's time is stretched by its
    neighbour's (--inter-threads 1 traces them one at a time)."""
    from alexnet_tf1.tf_compat import tf1
    sess.run(fetch, feed)
    opts = tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE)
    meta = tf1.RunMetadata()
    start = time.perf_counter()
    sess.run(fetch, feed, options=opts, run_metadata=meta)
    wall = time.perf_counter() - start
    by_type, by_op, by_layer, t0, t1 = {}, {}, {}, None, None
    for dev in meta.step_stats.dev_stats:
        if '/stream' in dev.device or '/memcpy' in dev.device:
            continue                        # GPU tracer duplicates of the same kernels
        for node in dev.node_stats:
            if node.node_name in ('_SOURCE', '_SINK'):
                continue
            us = node.all_end_rel_micros
            kind = op_type_of(node)
            by_type[kind] = by_type.get(kind, 0) + us
            by_op[node.node_name] = by_op.get(node.node_name, 0) + us
            layer = layer_of(node.node_name)
            by_layer[layer] = by_layer.get(layer, 0) + us
            start_us, end_us = node.all_start_micros, node.all_start_micros + us
            t0 = start_us if t0 is None else min(t0, start_us)
            t1 = end_us if t1 is None else max(t1, end_us)
    total = sum(by_type.values()) or 1
    if timeline_path:
        from tensorflow.python.client import timeline
        with open(timeline_path, 'w') as f:
            f.write(timeline.Timeline(meta.step_stats).generate_chrome_trace_format())
    ranked = sorted(by_type.items(), key=lambda kv: -kv[1])
    return {'traced_step_ms': round(wall * 1000, 1),
            'ops_span_ms': round(((t1 or 0) - (t0 or 0)) / 1000, 1),
            'op_time_sum_ms': round(total / 1000, 1),
            'by_op_type': [{'op': k, 'ms': round(v / 1000, 1), 'share': round(v / total, 3)}
                           for k, v in ranked[:top]],
            'by_layer': [{'layer': k, 'ms': round(v / 1000, 1), 'share': round(v / total, 3)}
                         for k, v in sorted(by_layer.items(), key=lambda kv: -kv[1])[:top]],
            'slowest_ops': [{'op': k, 'ms': round(v / 1000, 1)}
                            for k, v in sorted(by_op.items(), key=lambda kv: -kv[1])[:top]]}


# ---- input pipeline ----------------------------------------------------------------------

def data_figures(n_images, seconds):
    """alexnet_tf1.bench.data.run in a child process: its TF decode timing fixes TF's thread
    pools at one thread and its augment timing pins the process to one core, neither of which
    may happen to the process that times the models. {'error': ...} when it cannot run."""
    code = ('import json, sys; from alexnet_tf1.data import bench; '
            'print(json.dumps(bench.run(int(sys.argv[1]), float(sys.argv[2]))))')
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    r = subprocess.run([sys.executable, '-c', code, str(n_images), str(seconds)], cwd=ROOT,
                       env=env, capture_output=True, text=True)
    if r.returncode != 0:
        lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
        return {'error': lines[-1] if lines else f'exit status {r.returncode}'}
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---- the run -----------------------------------------------------------------------------
