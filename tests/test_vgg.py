"""VGG's six configurations against the paper's Tables 1 and 2.

Graphs at 224 are built but never initialised (138M parameters); the running checks use
configuration A-LRN at a 64-pixel input with 10 classes, where fc6 reads a 2x2 window.
"""
import numpy as np
import pytest

from alexnet_tf1 import config, devices, models

from alexnet_tf1.training import graph

from alexnet_tf1.nn import ops
from alexnet_tf1.models import vgg
from alexnet_tf1.tf_compat import session, tf, tf1

# The paper's Table 2, exact: parameters with 1000 classes; the paper's weight layers per column
SPEC_PARAMS = {'vgg-a': 132_863_336, 'vgg-a-lrn': 132_863_336, 'vgg-b': 133_047_848,
               'vgg-c': 133_638_952, 'vgg-d': 138_357_544, 'vgg-e': 143_667_240}
WEIGHT_LAYERS = {'vgg-a': 11, 'vgg-a-lrn': 11, 'vgg-b': 13, 'vgg-c': 16, 'vgg-d': 16,
                 'vgg-e': 19}


def build_224(name, **kw):
    """A VGG graph at 224 (not initialised): (graph, net)."""
    g = tf.Graph()
    with g.as_default():
        images = tf1.placeholder(tf.float32, [None, 224, 224, 3])
        net = models.get(name).build(images, config.defaults_for(name, **kw), ('/cpu:0',))
    return g, net


def count(net):
    return int(sum(np.prod(v.shape) for p in net.params.values() for v in p.values()))


@pytest.mark.parametrize('name', sorted(SPEC_PARAMS))
def test_parameter_total_is_specs(name):
    _, net = build_224(name)
    assert count(net) == SPEC_PARAMS[name]
    assert models.get(name).paper_total == SPEC_PARAMS[name]
    assert len(net.params) == WEIGHT_LAYERS[name]           # "11 weight layers" ... "19"


def test_vgg16_blocks_halve_the_map_and_fc6_reads_7x7x512():
    g, net = build_224('vgg-d')
    shapes = {k: tuple(v[0].shape[1:]) for k, v in net.end_points.items()}
    assert [shapes[f'pool{b}'] for b in range(1, 6)] == [
        (112, 112, 64), (56, 56, 128), (28, 28, 256), (14, 14, 512), (7, 7, 512)]
    assert shapes['conv5_3'] == (14, 14, 512) and 'conv5_4' not in shapes
    assert (shapes['fc6'], shapes['fc7'], shapes['fc8']) == ((4096,), (4096,), (1000,))
    assert net.params[('fc6', 0)]['w'].shape == (7 * 7 * 512, 4096)
    assert net.params[('conv1_1', 0)]['w'].op.name == 'tower0/conv1_1/weights'
    assert net.logits.device == '/device:CPU:0'


def test_configuration_c_ends_blocks_3_to_5_with_a_1x1_conv():
    _, net = build_224('vgg-c')
    kernels = {n: tuple(p['w'].shape) for (n, _), p in net.params.items()}
    assert kernels['conv3_3'] == (1, 1, 256, 256)
    assert kernels['conv4_3'] == (1, 1, 512, 512) and kernels['conv5_3'] == (1, 1, 512, 512)
    assert kernels['conv3_2'] == (3, 3, 256, 256) and 'conv2_3' not in kernels


def test_only_a_lrn_has_an_lrn_after_conv1_1():
    for name in SPEC_PARAMS:
        names = [l.name for l in vgg.table(name)]
        assert ('lrn1' in names) == (name == 'vgg-a-lrn')
    assert [l.name for l in vgg.table('vgg-a-lrn')][:3] == ['conv1_1', 'lrn1', 'pool1']


def test_fc_input_of_another_size_needs_dense_evaluation():
    with tf.Graph().as_default(), pytest.raises(ValueError, match='dense=True'):
        vgg.build(tf1.placeholder(tf.float32, [None, 256, 256, 3]),
                  config.defaults_for('vgg-a'), ('/cpu:0',))


@pytest.fixture(scope='module')
def small():
    """vgg-a-lrn at 64 px, 10 classes; a dense graph over the same variables beside it."""
    cfg = config.defaults_for('vgg-a-lrn', input_size=64, num_classes=10)
    placement = devices.resolve('cpu', towers=1)
    g = graph.build(cfg, placement, train=False)
    with g.graph.as_default():
        anysize = tf1.placeholder(tf.float32, [None, None, None, 3], 'anysize')
        dense = vgg.build(anysize, cfg, placement.towers, dense=True)
        decayed = len(tf1.get_collection(ops.WEIGHT_DECAY))
        n_vars = len(tf1.global_variables())
    sess = session(g.graph, placement.session_config())
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
    yield g, sess, anysize, dense, decayed, n_vars
    sess.close()


def test_dense_evaluation_shares_the_fc_variables(small):
    g, _, _, dense, decayed, n_vars = small
    assert n_vars == 2 * 11 + 1                      # weights and biases once, + global_step
    assert decayed == 11
    assert dense.params[('fc6', 0)]['w'] is g.net.params[('fc6', 0)]['w']


def test_dense_evaluation_at_the_training_size_equals_the_fc_net(small):
    g, sess, anysize, dense, _, _ = small
    x = np.random.RandomState(0).randn(2, 64, 64, 3).astype(np.float32) * 60
    fc, dn = sess.run([g.logits, dense.logits], {g.images: x, anysize: x})
    assert np.abs(fc).max() > 0
    np.testing.assert_allclose(dn, fc, rtol=1e-4, atol=1e-5 * np.abs(fc).max())


def test_dense_evaluation_averages_the_fc_net_over_every_window(small):
    """At 96 px pool5 is 3x3: fc6 as a 2x2 conv gives a 2x2 map of class scores, each the
    FC layers applied to one 2x2 window of pool5 flattened (h, w, c); logits are their mean."""
    g, sess, anysize, dense, _, _ = small
    x = np.random.RandomState(1).randn(2, 96, 96, 3).astype(np.float32) * 60
    pool5, fc8_map, logits, p = sess.run([dense.end_points['pool5'][0], dense.end_points['fc8'][0],
                                          dense.logits, g.net.params], {anysize: x})
    assert pool5.shape == (2, 3, 3, 512) and fc8_map.shape == (2, 2, 2, 10)
    relu = lambda a: np.maximum(a, 0)
    scores = []
    for i in range(2):
        for j in range(2):
            a = pool5[:, i:i + 2, j:j + 2, :].reshape(2, -1)
            a = relu(a @ p[('fc6', 0)]['w'] + p[('fc6', 0)]['b'])
            a = relu(a @ p[('fc7', 0)]['w'] + p[('fc7', 0)]['b'])
            scores.append(a @ p[('fc8', 0)]['w'] + p[('fc8', 0)]['b'])
            np.testing.assert_allclose(fc8_map[:, i, j], scores[-1], rtol=1e-3,
                                       atol=1e-4 * np.abs(scores[-1]).max())
    np.testing.assert_allclose(logits, np.mean(scores, 0), rtol=1e-3,
                               atol=1e-4 * np.abs(logits).max())


def lrn_numpy(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
    sq = a.astype(np.float64) ** 2
    out = np.empty_like(sq)
    for i in range(a.shape[-1]):
        lo, hi = max(0, i - n // 2), min(a.shape[-1] - 1, i + n // 2)
        out[..., i] = a[..., i] / (k + alpha * sq[..., lo:hi + 1].sum(-1)) ** beta
    return out


def test_a_lrn_uses_krizhevskys_constants(small):
    g, sess, _, _, _, _ = small
    x = np.random.RandomState(2).randn(1, 64, 64, 3).astype(np.float32) * 1000
    a, b = sess.run([g.net.end_points['conv1_1'][0], g.net.end_points['lrn1'][0]], {g.images: x})
    assert np.mean(2e-4 * a ** 2) > 1e-3             # the normalisation really acts
    np.testing.assert_allclose(b, lrn_numpy(a), rtol=2e-4, atol=1e-6)


def test_initial_weights_are_normal_001_and_biases_zero(small):
    g, sess, _, _, _, _ = small
    p = sess.run(g.net.params)
    w = p[('conv3_1', 0)]['w']                      # 3x3x128x256 values
    assert abs(w.mean()) < 1e-3 and 0.0097 < w.std() < 0.0103
    assert all(not v['b'].any() for v in p.values())


def test_published_figures_are_specs():
    assert models.get('vgg-d').published[0][2:] == (27.0, 8.8)
    assert models.get('vgg-e').published[0][2:] == (27.3, 9.0)
    assert ('torchvision vgg16', 'ILSVRC-2012 val', 28.41, 9.62) in models.get('vgg-d').published


@pytest.mark.slow
def test_vgg16_dense_evaluation_at_224_equals_the_fc_net():
    """The true size: fc6 as a 7x7 conv over the 7x7x512 pool5 (134M parameters in memory)."""
    cfg = config.defaults_for('vgg-d', num_classes=10)
    placement = devices.resolve('cpu', towers=1)
    g = graph.build(cfg, placement, train=False)
    with g.graph.as_default():
        anysize = tf1.placeholder(tf.float32, [None, None, None, 3])
        dense = vgg.build(anysize, cfg, placement.towers, dense=True)
    sess = session(g.graph, placement.session_config())
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
    x = np.random.RandomState(0).randn(1, 224, 224, 3).astype(np.float32) * 60
    fc, dn, big = sess.run([g.logits, dense.logits, dense.end_points['fc8'][0]],
                           {g.images: x, anysize: x})
    sess.close()
    np.testing.assert_allclose(dn, fc, rtol=1e-4, atol=1e-5 * np.abs(fc).max())
    assert big.shape == (1, 1, 1, 10)


def test_b_5x5_is_b_with_each_pair_of_3x3_one_5x5():
    # section 4.1: B's blocks each become one 5x5 conv of the same width; 8 weight layers
    widths = (3, 64, 128, 256, 512, 512)
    by_hand = sum(5 * 5 * a * b + b for a, b in zip(widths, widths[1:])) + \
        (7 * 7 * 512 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
    _, net = build_224('vgg-b-5x5')
    assert count(net) == by_hand == models.get('vgg-b-5x5').paper_total
    assert [tuple(p['w'].shape[:2]) for k, p in net.params.items() if k[0].startswith('conv')] \
        == [(5, 5)] * 5
    assert net.end_points['pool5'][0].shape[1:].as_list() == [7, 7, 512]
