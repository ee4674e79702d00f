"""Winograd F(2x2, 3x3) convolutions (winograd.py): the direct convolution's values and
gradients, any batch, and used by ops.conv only where its rule says."""
import numpy as np
import pytest

from alexnet_tf1.bench import flops

from alexnet_tf1.nn import cpu_kernels, ops, winograd
from alexnet_tf1.tf_compat import tf, tf1


def conv_numpy(x, w):
    """'SAME' stride-1 3x3 convolution, summed tap by tap."""
    n, h, wd, _ = x.shape
    xp = np.pad(x.astype(np.float64), [(0, 0), (1, 1), (1, 1), (0, 0)])
    y = np.zeros((n, h, wd, w.shape[-1]))
    for i in range(3):
        for j in range(3):
            y += np.einsum('nhwc,ck->nhwk', xp[:, i:i + h, j:j + wd], w[i, j])
    return y


@pytest.mark.parametrize('shape, k', [((3, 9, 9, 5), 4), ((2, 8, 7, 3), 6), ((2, 1, 2, 4), 3),
                                      ((1, 13, 13, 16), 8)])
def test_winograd_equals_the_direct_convolution_and_its_gradients(shape, k):
    rng = np.random.RandomState(0)
    x_np = rng.randn(*shape).astype(np.float32)
    w_np = rng.randn(3, 3, shape[-1], k).astype(np.float32)
    b_np = rng.randn(k).astype(np.float32)
    g_np = rng.randn(*shape[:3], k).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default(), tf1.device('/cpu:0'):
        x, w, b = tf.constant(x_np), tf.constant(w_np), tf.constant(b_np)
        ours = winograd.conv3x3(x, w, b, tf.nn.relu)
        direct = tf.nn.relu(tf.nn.conv2d(x, w, 1, 'SAME') + b)
        grads = [tf1.gradients(y, [x, w, b], grad_ys=g_np) for y in (ours, direct)]
    with tf1.Session(graph=graph) as sess:
        y, (dx, dw, db), (want_dx, want_dw, want_db) = sess.run([ours] + grads)
    scale = np.abs(conv_numpy(x_np, w_np)).max()
    np.testing.assert_allclose(y, np.maximum(conv_numpy(x_np, w_np) + b_np, 0), rtol=0,
                               atol=1e-5 * scale)
    for got, want in ((dx, want_dx), (dw, want_dw), (db, want_db)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_winograd_takes_any_batch_the_graph_is_fed():
    rng = np.random.RandomState(1)
    w_np = rng.randn(3, 3, 4, 5).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default(), tf1.device('/cpu:0'):
        x = tf1.placeholder(tf.float32, [None, 6, 5, 4])
        y = winograd.conv3x3(x, tf.constant(w_np))
    with tf1.Session(graph=graph) as sess:
        for n in (1, 3):
            x_np = rng.randn(n, 6, 5, 4).astype(np.float32)
            np.testing.assert_allclose(sess.run(y, {x: x_np}), conv_numpy(x_np, w_np),
                                       rtol=0, atol=1e-4)


def _conv_ops(avx512, monkeypatch, k=3, stride=1, padding='SAME', device='/cpu:0', hw=9):
    monkeypatch.setattr(cpu_kernels, 'avx512', lambda: avx512)
    graph = tf.Graph()
    with graph.as_default(), tf1.device(device):
        x = tf1.placeholder(tf.float32, [None, hw, hw, 4])
        p = {'w': tf.zeros([k, k, 4, 6]), 'b': tf.zeros([6])}
        ops.conv(x, p, stride, padding)
    return {op.type for op in graph.get_operations()}


@pytest.mark.parametrize('avx512', [False, True])
def test_conv_takes_winograd_for_3x3_stride_1_same_on_avx2_only(avx512, monkeypatch):
    types = _conv_ops(avx512, monkeypatch)
    assert ('BatchMatMulV2' in types, 'Conv2D' in types) == (not avx512, avx512)
    for k, stride, padding in ((5, 1, 'SAME'), (3, 2, 'SAME'), (3, 1, 'VALID')):
        assert 'Conv2D' in _conv_ops(avx512, monkeypatch, k, stride, padding)
    with cpu_kernels.kernel_choices(conv3x3_winograd=avx512):      # forced the other way
        assert ('BatchMatMulV2' in _conv_ops(avx512, monkeypatch)) is avx512
    assert 'Conv2D' in _conv_ops(False, monkeypatch, device='/gpu:0')
    assert 'Conv2D' in _conv_ops(False, monkeypatch, hw=None)     # maps of any size: direct


def test_flops_count_a_winograd_layer_as_its_direct_convolution():
    counts = []
    for on in (True, False):
        with cpu_kernels.kernel_choices(conv3x3_winograd=on):
            counts.append(flops.forward_flops('alexnet', by_layer=True))
    (total_on, per_op_on), (total_off, _) = counts
    assert total_on == total_off
    products = [f for name, f in per_op_on.items() if 'winograd_product' in name]
    # conv3-5 in each tower: 13 x 13 maps, 3 x 3 x cin x cout (the paper's section 3.5, per tower)
    want = [2 * 13 * 13 * 9 * cin * cout for cin, cout in ((256, 192), (192, 192), (192, 128))]
    assert sorted(products) == sorted(want * 2)
