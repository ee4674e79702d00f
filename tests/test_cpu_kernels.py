"""CPU graphs' own formulations (XLA LRN, NCHW 3x3 filter gradient, batched-matmul fc input
gradient, a convolution's bias gradient apart from its filter gradient) equal TF's kernels."""
import numpy as np
import pytest

from alexnet_tf1.nn import cpu_kernels, ops
from alexnet_tf1.config import CAFFE_LRN, LRN, PAPER_LRN
from alexnet_tf1.tf_compat import tf, tf1
from test_alexnet_layers import lrn_numpy


def _run(c, kernel, monkeypatch, shape=(2, 5, 5, 12)):
    monkeypatch.setenv('ALEXNET_TF1_CPU_KERNELS', kernel)
    rng = np.random.RandomState(1)
    a = (rng.randn(*shape) * 30).astype(np.float32)     # large enough for the window to matter
    g_up = rng.randn(*shape).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default(), tf1.device('/cpu:0'):
        x = tf.constant(a)
        y = ops.lrn(x, c)
        dx, = tf1.gradients(y, [x], grad_ys=[tf.constant(g_up)])
        types = {op.type for op in graph.get_operations()}
    with tf1.Session(graph=graph) as sess:
        out, grad = sess.run([y, dx])
    return a, g_up, out, grad, types


@pytest.mark.parametrize('c', [PAPER_LRN, CAFFE_LRN, LRN(depth_radius=1, bias=1.0, alpha=1e-3,
                                                         beta=0.5)])
def test_written_out_lrn_equals_tf_nn_lrn_and_its_gradient(c, monkeypatch):
    a, g_up, out, grad, types = _run(c, 'ours', monkeypatch)
    assert 'LRN' not in types and 'LRNGrad' not in types      # really the written-out one
    _, _, want, want_grad, ref_types = _run(c, 'tf', monkeypatch)
    assert 'LRNGrad' in ref_types
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-6)
    n = 2 * c.depth_radius + 1
    np.testing.assert_allclose(out, lrn_numpy(a, n, c.bias, c.alpha, c.beta), rtol=2e-4, atol=1e-6)


def test_written_out_lrn_gradient_matches_finite_differences(monkeypatch):
    c = PAPER_LRN
    a, g_up, _, grad, _ = _run(c, 'ours', monkeypatch, shape=(1, 2, 2, 7))
    a64, g64 = a.astype(np.float64), g_up.astype(np.float64)
    eps = 1e-3
    numeric = np.zeros_like(a64)
    for i in np.ndindex(a.shape):
        hi, lo = a64.copy(), a64.copy()
        hi[i] += eps
        lo[i] -= eps
        numeric[i] = ((lrn_numpy(hi, 5, c.bias, c.alpha, c.beta) -
                       lrn_numpy(lo, 5, c.bias, c.alpha, c.beta)) * g64).sum() / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize('second_use', [False, True])
def test_lrn_after_a_relu_masks_its_gradient_instead_of_relugrad(second_use, monkeypatch):
    def layer(x, p):
        a = ops.conv(x, p, 1, 'VALID')        # about half the maps' values negative
        y = ops.lrn(a, PAPER_LRN)
        return y + 0.01 * a if second_use else y    # the ReLU's output read by more than the LRN

    def relu_grad(op):
        return op.type == 'ReluGrad'
    shapes, avx512 = ((2, 6, 6, 3), (3, 3, 3, 8)), cpu_kernels.avx512()
    got, n_relu_grad = _grads('ours', avx512, monkeypatch, layer, *shapes, relu_grad)
    want, n_ref = _grads('tf', avx512, monkeypatch, layer, *shapes, relu_grad)
    # the LRN's backward applies the ReLU's mask; with a second reader ReluGrad masks the sum
    assert n_relu_grad == (1 if second_use else 0)
    assert n_ref == 1
    for g, w in zip(got, want):               # d/dx, d/dw, d/db
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * np.abs(w).max())


def test_a_gpu_placed_lrn_stays_tf_nn_lrn():
    graph = tf.Graph()
    with graph.as_default(), tf1.device('/gpu:0'):       # built only; no GPU needed
        ops.lrn(tf1.placeholder(tf.float32, [1, 3, 3, 8]), PAPER_LRN)
    assert 'LRN' in {op.type for op in graph.get_operations()}


def _grads(kernel, avx512, monkeypatch, layer, x_shape, w_shape, counted):
    """TF's gradients of `layer` at random x, w, b (with the kernels and ISA said), and how
    many of the graph's ops `counted(op)` is true for."""
    monkeypatch.setenv('ALEXNET_TF1_CPU_KERNELS', kernel)
    monkeypatch.setattr(cpu_kernels, 'avx512', lambda: avx512)
    rng = np.random.RandomState(2)
    graph = tf.Graph()
    with graph.as_default(), tf1.device('/cpu:0'):
        x = tf.constant(rng.randn(*x_shape).astype(np.float32))
        w = tf.constant(rng.randn(*w_shape).astype(np.float32))
        b = tf.constant(rng.randn(w_shape[-1]).astype(np.float32))
        y = layer(x, {'w': w, 'b': b})
        g_up = tf.constant(rng.randn(*y.shape.as_list()).astype(np.float32))
        grads = tf1.gradients(y, [x, w, b], grad_ys=[g_up])
        found = sum(1 for op in graph.get_operations() if counted(op))
    with tf1.Session(graph=graph) as sess:
        return sess.run(grads), found


def _nchw_filter_grad(op):
    return op.type == 'Conv2DBackpropFilter' and op.get_attr('data_format') == b'NCHW'


def _batched_matmul(op):
    return op.type == 'BatchMatMulV2'


def _bias_grad_apart(op):
    return op.type == 'BiasAddGrad' and op.inputs[0].op.type == 'Reshape'


@pytest.mark.parametrize('avx512', [False, True])
@pytest.mark.parametrize('k, stride, padding, nchw_on_avx2', [(3, 1, 'SAME', 1), (3, 1, 'VALID', 1),
                                                               (5, 1, 'SAME', 0), (3, 2, 'VALID', 0)])
def test_conv_gradients_are_tfs_whichever_filter_gradient_runs(k, stride, padding, nchw_on_avx2,
                                                               avx512, monkeypatch):
    def layer(x, p):
        return ops.conv(x, p, stride, padding)
    shapes = (3, 9, 9, 5), (k, k, 5, 4)
    with cpu_kernels.kernel_choices(conv3x3_winograd=False):     # its own test: test_winograd.py
        (dx, dw, _), n_nchw = _grads('ours', avx512, monkeypatch, layer, *shapes, _nchw_filter_grad)
    (want_dx, want_dw, _), n_ref = _grads('tf', avx512, monkeypatch, layer, *shapes,
                                       _nchw_filter_grad)
    # NCHW only where oneDNN's NHWC filter gradient is the slow one (AVX2)
    assert (n_nchw, n_ref) == (0 if avx512 else nchw_on_avx2, 0)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, want_dw, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('avx512', [False, True])
def test_fc_gradients_are_tfs_whichever_matmul_runs(avx512, monkeypatch):
    shapes = (6, 10), (10, 7)
    (dx, dw, _), n_batched = _grads('ours', avx512, monkeypatch, ops.fc, *shapes, _batched_matmul)
    (want_dx, want_dw, _), n_ref = _grads('tf', avx512, monkeypatch, ops.fc, *shapes,
                                       _batched_matmul)
    assert (n_batched, n_ref) == (1 if avx512 else 0, 0)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, want_dw, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('stride, k', [(1, 3), (4, 11)])
def test_conv_bias_gradient_is_summed_apart_from_the_filter_gradient(stride, k, monkeypatch):
    # oneDNN fuses a filter gradient with the bias gradient of the same maps into one slower
    # kernel; ours sums the bias gradient over a 2-D view, which that fusion does not match
    rng = np.random.RandomState(3)
    a = rng.randn(2, 23, 23, 3).astype(np.float32)
    w = (rng.randn(k, k, 3, 8) * 0.3).astype(np.float32)
    b = rng.randn(8).astype(np.float32)
    out, g_up = {}, None
    for kernel in ('ours', 'tf'):
        monkeypatch.setenv('ALEXNET_TF1_CPU_KERNELS', kernel)
        graph = tf.Graph()
        with graph.as_default(), tf1.device('/cpu:0'):
            x, wv, bv = tf.constant(a), tf.Variable(w), tf.Variable(b)
            y = ops.conv(x, {'w': wv, 'b': bv}, stride, 'VALID')
            if g_up is None:
                g_up = rng.randn(*y.shape.as_list()).astype(np.float32)
            grads = tf1.gradients(y, [wv, bv], grad_ys=[tf.constant(g_up)])
            bias_in = [op.inputs[0].op.type for op in graph.get_operations()
                       if op.type == 'BiasAddGrad']
            init = tf1.global_variables_initializer()
        with tf1.Session(graph=graph) as sess:
            sess.run(init)
            meta = tf1.RunMetadata()
            (dw, db), y_val = sess.run([grads, y], options=tf1.RunOptions(
                trace_level=tf1.RunOptions.FULL_TRACE), run_metadata=meta)
        ran = ' '.join(n.timeline_label for d in meta.step_stats.dev_stats for n in d.node_stats)
        out[kernel] = dw, db, y_val, bias_in, ran
    dw, db, y_val, bias_in, ran = out['ours']
    assert bias_in == ['Reshape'] and 'WithBias' not in ran
    assert out['tf'][3] == ['ReluGrad']
    np.testing.assert_allclose(db, (g_up * (y_val > 0)).sum(axis=(0, 1, 2)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(db, out['tf'][1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, out['tf'][0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('cap, flags, want', [
    (None, 'fpu avx2 avx512f avx512bw avx512vl avx512dq', True),
    ('AVX2', 'fpu avx2 avx512f avx512bw avx512vl avx512dq', False),
    ('avx512_core', 'fpu avx2 avx512f avx512bw avx512vl avx512dq', True),
    (None, 'fpu avx2 fma', False),
    (None, 'fpu avx2 avx512f', False)])     # AVX-512 F alone is not oneDNN's avx512_core
def test_avx512_follows_the_cpu_flags_and_onednns_own_cap(cap, flags, want, monkeypatch):
    monkeypatch.setattr(cpu_kernels, '_cpu_flags', lambda: frozenset(flags.split()))
    monkeypatch.delenv('DNNL_MAX_CPU_ISA', raising=False)
    if cap is None:
        monkeypatch.delenv('ONEDNN_MAX_CPU_ISA', raising=False)
    else:
        monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', cap)
    assert cpu_kernels.avx512() is want


@pytest.mark.parametrize('model, size', [('alexnet', 67), ('vgg-a-lrn', 64)])
def test_same_seed_gives_the_same_initial_weights_whichever_kernels_build_the_graph(
        model, size, monkeypatch):
    # the written-out LRN adds ops before later layers' initialisers; seeds by name ignore that
    from alexnet_tf1 import config, devices, models
    from alexnet_tf1.training import graph
    from alexnet_tf1.tf_compat import session
    values = []
    for kernel in ('ours', 'tf'):
        monkeypatch.setenv('ALEXNET_TF1_CPU_KERNELS', kernel)
        cfg = config.defaults_for(model, num_classes=10, input_size=size)
        placement = devices.resolve('cpu', towers=models.get(model).towers)
        g = graph.build(cfg, placement, seed=3)
        sess = session(g.graph, placement.session_config())
        with g.graph.as_default():
            sess.run(tf1.global_variables_initializer())
            values.append({v.op.name: sess.run(v) for v in tf1.trainable_variables()})
    assert values[0].keys() == values[1].keys()
    for name in values[0]:
        np.testing.assert_array_equal(values[0][name], values[1][name], err_msg=name)


@pytest.mark.parametrize('avx512', [False, True])
def test_kernel_choices_force_each_formulation_either_way_and_restore_the_rule(avx512, monkeypatch):
    def conv(x, p):
        return ops.conv(x, p, 1, 'SAME')
    conv_shapes, fc_shapes = ((3, 9, 9, 5), (3, 3, 5, 4)), ((6, 10), (10, 7))
    for on in (True, False):
        with cpu_kernels.kernel_choices(conv3x3_nchw=on, fc_batched=on, conv_bias_apart=on,
                                conv3x3_winograd=False):
            _, n_nchw = _grads('ours', avx512, monkeypatch, conv, *conv_shapes, _nchw_filter_grad)
            _, n_batched = _grads('ours', avx512, monkeypatch, ops.fc, *fc_shapes, _batched_matmul)
            _, n_apart = _grads('ours', avx512, monkeypatch, conv, *conv_shapes, _bias_grad_apart)
        assert (n_nchw, n_batched, n_apart) == (int(on), int(on), int(on))
    with cpu_kernels.kernel_choices(lrn_xla=False):
        _, _, _, _, types = _run(PAPER_LRN, 'ours', monkeypatch)
    assert 'LRNGrad' in types
    # outside the context the ISA's rule again; TF's kernels ignore any forcing
    assert (cpu_kernels.chosen('conv3x3_nchw'), cpu_kernels.chosen('fc_batched'), cpu_kernels.chosen('conv_bias_apart'),
            cpu_kernels.chosen('conv3x3_winograd')) == (not avx512, avx512, True, not avx512)
    monkeypatch.setenv('ALEXNET_TF1_CPU_KERNELS', 'tf')
    with cpu_kernels.kernel_choices(conv3x3_nchw=True, fc_batched=True, lrn_xla=True,
                            conv_bias_apart=True, conv3x3_winograd=True):
        assert not any(cpu_kernels.chosen(c) for c in cpu_kernels.KERNEL_CHOICES)
    with pytest.raises(ValueError, match='unknown kernel choice'):
        with cpu_kernels.kernel_choices(conv5x5_nchw=True):
            pass
