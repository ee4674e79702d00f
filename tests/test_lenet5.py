"""LeNet-5 against the 1998 paper's claims (section II-B, Table I), checked with NumPy."""
import numpy as np
import pytest

from alexnet_tf1 import config, devices, models

from alexnet_tf1.training import graph
from alexnet_tf1.models import lenet5
from alexnet_tf1.tf_compat import session, tf, tf1

# The paper's section II-B: output and trainable parameters per layer
SPEC = {'C1': ((28, 28, 6), 156), 'S2': ((14, 14, 6), 12), 'C3': ((10, 10, 16), 1_516),
        'S4': ((5, 5, 16), 32), 'C5': ((1, 1, 120), 48_120), 'F6': ((84,), 10_164),
        'output': ((10,), 0)}
# The paper's Table I: C3 map -> the S2 maps it reads
SPEC_C3 = '0:012 1:123 2:234 3:345 4:450 5:501 6:0123 7:1234 8:2345 9:3450 10:4501 11:5012 ' \
          '12:0134 13:1245 14:0235 15:012345'


def open_lenet(model='lenet5', seed=0, **kw):
    # digits() below is already on the paper's scale (-0.1 .. 1.175), not the pipeline's 0..255
    cfg = config.defaults_for(model, **{'input_scale': 1.0, **kw})
    placement = devices.resolve('cpu', towers=1)
    g = graph.build(cfg, placement, weight_decay=0.0, seed=seed)
    sess = session(g.graph, placement.session_config())
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
    return g, sess


def count(p):
    return int(sum(np.prod(v.shape) for v in p.values()))


@pytest.fixture(scope='module')
def lenet():
    g, sess = open_lenet()
    yield g, sess
    sess.close()


def digits(n, seed, noise=0.4):
    """Synthetic digit-like images: the 7x12 bitmaps x2, shifted, noisy, on a 32x32 field
    with the paper's levels (background -0.1, ink 1.175)."""
    rng = np.random.RandomState(seed)
    ink = lenet5.bitmaps() > 0                                   # [10, 12, 7]
    labels = rng.randint(0, 10, n)
    x = np.full((n, 32, 32, 1), -0.1, np.float32)
    for i, y in enumerate(labels):
        big = np.kron(ink[y], np.ones((2, 2))) > 0                # 24 x 14
        r, c = 4 + rng.randint(-2, 3), 9 + rng.randint(-2, 3)
        x[i, r:r + 24, c:c + 14, 0][big] = 1.175
    x += rng.randn(*x.shape).astype(np.float32) * noise
    return x, labels.astype(np.int32)


def test_trainable_total_is_the_papers_60000(lenet):
    g, _ = lenet
    with g.graph.as_default():
        assert sum(int(np.prod(v.shape)) for v in tf1.trainable_variables()) == 60_000
    assert sum(count(p) for p in g.net.params.values()) == 60_000


@pytest.mark.parametrize('name', sorted(SPEC))
def test_each_layer_has_the_papers_output_and_parameters(lenet, name):
    g, _ = lenet
    shape, params = SPEC[name]
    assert tuple(g.net.end_points[name][0].shape[1:]) == shape
    assert count(g.net.params.get((name, 0), {})) == params


def test_c3_table_is_the_papers():
    table = dict(item.split(':') for item in SPEC_C3.split())
    assert lenet5.C3_TABLE == tuple(table[str(o)] for o in range(16))
    mask = lenet5.connection_mask()
    assert mask.shape == (6, 16) and mask.sum() == 60
    assert 25 * mask.sum() + 16 == 1_516


def test_c3_reads_only_its_row_of_the_connection_table(lenet):
    g, sess = lenet
    s2, c3 = g.net.end_points['S2'][0], g.net.end_points['C3'][0]
    with g.graph.as_default():
        grads = [tf1.gradients(tf.reduce_sum(c3[..., o]), s2)[0] for o in range(16)]
    got = sess.run(grads, {g.images: digits(2, seed=1)[0]})
    for o, ins in enumerate(lenet5.C3_TABLE):
        for i in range(6):
            size = np.abs(got[o][..., i]).sum()
            if str(i) in ins:
                assert size > 0, (o, i)
            else:
                assert size == 0.0, (o, i)       # exactly zero, not merely small


def test_rbf_codes_are_fixed_plus_minus_one_bitmaps_and_never_trained(lenet):
    g, _ = lenet
    codes = lenet5.bitmaps()
    assert codes.shape == (10, 12, 7) and set(np.unique(codes)) == {-1.0, 1.0}
    flat = codes.reshape(10, -1)
    assert len({tuple(c) for c in flat}) == 10                         # ten distinct codes
    with g.graph.as_default():
        names = [v.op.name for v in tf1.trainable_variables()]
        all_vars = [v.op.name for v in tf1.global_variables()]
    assert not any('output' in n for n in all_vars)                    # a constant, no variable
    assert sorted({n.split('/')[1] for n in names}) == ['C1', 'C3', 'C5', 'F6', 'S2', 'S4']
    const = g.graph.get_tensor_by_name('tower0/output/codes:0')
    assert const.op.type == 'Const'
    np.testing.assert_array_equal(tf1.make_ndarray(const.op.get_attr('value')), flat)


def test_squash_rbf_and_map_criterion_are_the_papers_formulas(lenet):
    g, sess = lenet
    ep = g.net.end_points
    x, y = digits(4, seed=2)
    c5, f6, rbf, logits, crit, xent, w = sess.run(
        [ep['C5'][0], ep['F6'][0], ep['output'][0], g.logits, g.net.loss_logits, g.xent,
         g.net.params[('F6', 0)]], {g.images: x, g.labels: y})
    a = c5.reshape(4, -1) @ w['w'] + w['b']
    np.testing.assert_allclose(f6, 1.7159 * np.tanh(2 / 3 * a), rtol=1e-5, atol=1e-5)
    codes = lenet5.bitmaps().reshape(10, 84)
    dist = ((f6[:, None, :] - codes[None]) ** 2).sum(-1)
    np.testing.assert_allclose(rbf, dist, rtol=1e-5)
    np.testing.assert_allclose(logits, -dist, rtol=1e-5)
    assert crit.shape == (4, 11)
    j = lenet5.RBF_J
    E = dist[np.arange(4), y] + np.log(np.exp(-j) + np.exp(-dist).sum(-1))   # the paper's (9)
    np.testing.assert_allclose(xent, E.mean(), rtol=1e-5)


def test_initial_weights_are_uniform_within_2_4_over_fan_in(lenet):
    g, sess = lenet
    p = sess.run(g.net.params)
    assert np.abs(p[('C1', 0)]['w']).max() <= 2.4 / 25
    assert np.abs(p[('C1', 0)]['w']).max() > 0.9 * 2.4 / 25
    assert np.abs(p[('C5', 0)]['w']).max() <= 2.4 / 400
    assert np.abs(p[('F6', 0)]['w']).max() <= 2.4 / 120
    c3 = p[('C3', 0)]['w']                          # packed [5, 5, 60], map 15 last (6 inputs)
    assert c3.shape == (5, 5, 60)
    assert np.abs(c3[..., :18]).max() <= 2.4 / 75 and np.abs(c3[..., -6:]).max() <= 2.4 / 150
    assert np.abs(c3[..., :18]).max() > 2.4 / 150   # the 3-input maps use their own fan-in


@pytest.mark.parametrize('model', ['lenet5', 'lenet5-relu'])
def test_learns_synthetic_digits_in_300_steps(model):
    g, sess = open_lenet(model, seed=3)
    x, y = digits(600, seed=4)
    losses, errs = [], []
    rng = np.random.RandomState(5)
    for step in range(300):
        idx = rng.randint(0, len(x), 32)
        _, loss = sess.run([g.train_op, g.xent], {g.images: x[idx], g.labels: y[idx],
                                                  g.lr: 0.01, g.training: True})
        losses.append(loss)
    held_out = digits(300, seed=9)
    err = sess.run(g.top1, {g.images: x, g.labels: y})
    err_held_out = sess.run(g.top1, {g.images: held_out[0], g.labels: held_out[1]})
    sess.close()
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    assert err < 0.05 and err_held_out < 0.1, (err, err_held_out)


def test_relu_variant_has_full_c3_max_pool_and_softmax_output():
    cfg = config.defaults_for('lenet5-relu')
    with tf.Graph().as_default():
        net = models.get('lenet5-relu').build(tf1.placeholder(tf.float32, [None, 32, 32, 1]),
                                              cfg, ('/cpu:0',))
        assert getattr(net, 'loss_logits', None) is None
        assert net.params[('C3', 0)]['w'].shape == (5, 5, 6, 16)
        assert [tuple(net.end_points[n][0].shape[1:]) for n in ('S2', 'S4', 'output')] == \
            [(14, 14, 6), (5, 5, 16), (10,)]
        assert sum(count(p) for p in net.params.values()) == \
            156 + (25 * 6 * 16 + 16) + 48_120 + 10_164 + (84 * 10 + 10)


def test_registry_and_published_figures():
    assert models.get('lenet5').paper_total == 60_000
    assert models.get('lenet5').published[0] == ('paper, no distortions', 'MNIST test', 0.95, None)
    assert models.get('lenet5-relu').table is lenet5.RELU_TABLE
    cfg = config.defaults_for('lenet5')
    assert (cfg.input_size, cfg.channels, cfg.num_classes) == (32, 1, 10)
