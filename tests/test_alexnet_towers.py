"""The two-tower split as the paper drew it: where each tower runs and what each layer reads."""
import re

import numpy as np
import pytest

from alexnet_session import images, open_alexnet
from alexnet_tf1.tf_compat import tf, tf1


@pytest.fixture(scope='module')
def opened():
    g, sess = open_alexnet()
    yield g, sess
    sess.close()


@pytest.fixture(scope='module')
def net(opened):
    return opened[0]


@pytest.fixture(scope='module')
def traced_step():
    """One real training step, traced; returns {node name: short device}."""
    g, sess = open_alexnet()
    md = tf1.RunMetadata()
    sess.run(g.train_op, {g.images: images(2), g.labels: [1, 2], g.lr: 0.01, g.training: True},
             options=tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE), run_metadata=md)
    sess.close()
    where = {}
    for dev in md.step_stats.dev_stats:
        short = re.search(r'(CPU|GPU):\d+', dev.device).group(0)
        for node in dev.node_stats:
            where.setdefault(node.node_name, set()).add(short)
    return where


@pytest.mark.parametrize('tower', [0, 1])
def test_training_step_runs_each_tower_on_its_own_cpu(traced_step, tower):
    mine = {n: d for n, d in traced_step.items() if n.startswith(f'tower{tower}/')}
    # forward layers, their gradients and the variables' updates all executed
    for layer in ('conv1', 'conv2', 'conv3', 'conv4', 'conv5', 'fc6', 'fc7'):
        assert any(n.startswith(f'tower{tower}/{layer}') for n in mine), layer
    assert any('gradients' in n or 'Grad' in n for n in traced_step if f'tower{tower}' in n)
    assert all(d == {f'CPU:{tower}'} for d in mine.values()), \
        {n: d for n, d in mine.items() if d != {f'CPU:{tower}'}}


def test_backward_pass_of_each_tower_runs_on_its_own_cpu(traced_step):
    grads = {n: d for n, d in traced_step.items() if n.startswith('gradients/tower')}
    assert grads
    for n, d in grads.items():
        tower = n[len('gradients/tower')]
        assert d == {f'CPU:{tower}'}, (n, d)


def _reaches(y, x):
    return tf1.gradients(tf.reduce_sum(y), x)[0] is not None


@pytest.mark.parametrize('layer, source', [('conv2', 'pool1'), ('conv4', 'conv3'), ('conv5', 'conv4')])
def test_conv2_4_5_read_only_their_own_tower(net, layer, source):
    with net.graph.as_default():
        for t in (0, 1):
            y = net.net.end_points[layer][t]
            assert _reaches(y, net.net.end_points[source][t])
            assert not _reaches(y, net.net.end_points[source][1 - t])


@pytest.mark.parametrize('layer, source', [('conv3', 'pool2'), ('fc6', 'pool5'), ('fc7', 'fc6'),
                                           ('fc8', 'fc7')])
def test_conv3_and_fc6_to_fc8_read_both_towers(net, layer, source):
    with net.graph.as_default():
        for y in net.net.end_points[layer]:
            if y is None:
                continue
            assert _reaches(y, net.net.end_points[source][0])
            assert _reaches(y, net.net.end_points[source][1])


def _conv_before(y):
    """The convolution whose output the ReLU (and bias add) `y` is made from."""
    op = y.op
    while op.type != 'Conv2D':
        op = op.inputs[0].op
    return op.outputs[0]


def _receptive_sum(w_sum, size, k=11, stride=4):
    """NumPy: d sum(conv outputs) / d input pixel, for a VALID k x k convolution at `stride`
    whose kernel summed over output maps is w_sum [k, k, c]: each output position adds its
    window of w_sum to the pixels it reads. Also the count of windows over each pixel."""
    n = (size - k) // stride + 1
    grad = np.zeros((size, size, w_sum.shape[-1]), np.float64)
    count = np.zeros((size, size), np.int64)
    for p in range(n):
        for q in range(n):
            grad[p * stride:p * stride + k, q * stride:q * stride + k] += w_sum
            count[p * stride:p * stride + k, q * stride:q * stride + k] += 1
    return grad, count


def test_conv1_of_each_tower_sees_the_whole_image(opened):
    """Section 3.5: conv1 filters the 224x224x3 input (227 with the usual erratum) with 11x11x3
    kernels at a stride of 4, both towers reading the same whole image. The gradient of the sum
    of a tower's conv1 outputs w.r.t. each input pixel equals the NumPy sum of its kernels over
    every window that covers the pixel, and no pixel of the 227x227x3 image is left out."""
    net, sess = opened
    size = int(net.images.shape[1])
    _, count = _receptive_sum(np.zeros((11, 11, 1)), size)
    assert size == 227 and count.min() >= 1         # 55 windows a side cover all 227 pixels
    assert _receptive_sum(np.zeros((11, 11, 1)), 224)[1][-1].max() == 0   # 224: row 223 unseen
    with net.graph.as_default():
        for t in (0, 1):
            conv = _conv_before(net.net.end_points['conv1'][t])
            g = tf1.gradients(tf.reduce_sum(conv), net.images)[0]
            got = sess.run(g, {net.images: np.zeros((1, size, size, 3), np.float32)})[0]
            w = sess.run(net.net.params[('conv1', t)]['w'])
            assert w.shape == (11, 11, 3, 48)
            want, _ = _receptive_sum(w.sum(axis=-1, dtype=np.float64), size)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
            assert np.count_nonzero(got) == size * size * 3


def test_variables_live_on_their_towers_device(net):
    with net.graph.as_default():
        for v in tf1.trainable_variables():
            tower = re.match(r'tower(\d)/', v.op.name).group(1)
            assert v.device == f'/device:CPU:{tower}', v.name
