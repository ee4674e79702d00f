"""ops.batch_norm against a NumPy batch norm: both modes, the moving averages' update, the
gradient, and the Saver round trip of its statistics."""
import numpy as np
import pytest

from alexnet_tf1.nn import ops
from alexnet_tf1.tf_compat import session, tf, tf1

EPS, DECAY = 1e-3, 0.99


def numpy_bn(x, mean, var, beta, gamma):
    return gamma * (x - mean) / np.sqrt(var + EPS) + beta


@pytest.fixture
def net():
    g = tf.Graph()
    with g.as_default():
        x = tf1.placeholder(tf.float32, [None, 5, 6, 4])
        training = tf1.placeholder_with_default(False, [])
        with tf1.variable_scope('layer'):
            y = ops.batch_norm(x, training, scale=True)
        dy = tf1.placeholder(tf.float32, [None, 5, 6, 4])
        dx = tf1.gradients(y, x, grad_ys=dy)[0]
        updates = tf1.get_collection(ops.BN_UPDATES)
        variables = {v.op.name.split('/')[-1]: v for v in tf1.global_variables()}
        init = tf1.global_variables_initializer()
    sess = session(g, tf1.ConfigProto())
    sess.run(init)
    rng = np.random.default_rng(0)
    values = {'beta': rng.normal(size=4), 'gamma': rng.uniform(0.5, 2, 4),
              'moving_mean': rng.normal(size=4), 'moving_variance': rng.uniform(0.5, 2, 4)}
    with g.as_default():
        for k, v in values.items():
            variables[k].load(v.astype(np.float32), sess)
    x_val = (rng.normal(size=(3, 5, 6, 4)) * 3 + 1).astype(np.float32)
    yield sess, g, x, training, y, dy, dx, updates, variables, values, x_val
    sess.close()


def test_training_normalises_with_the_batch_statistics(net):
    sess, g, x, training, y, *_, values, xv = net
    got = sess.run(y, {x: xv, training: True})
    m, v = xv.mean(axis=(0, 1, 2)), xv.var(axis=(0, 1, 2))
    np.testing.assert_allclose(got, numpy_bn(xv, m, v, values['beta'], values['gamma']),
                               rtol=1e-4, atol=1e-4)


def test_test_mode_uses_the_moving_averages(net):
    sess, g, x, training, y, *_, values, xv = net
    got = sess.run(y, {x: xv})
    want = numpy_bn(xv, values['moving_mean'], values['moving_variance'], values['beta'],
                    values['gamma'])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_a_training_step_moves_the_averages_and_a_test_step_does_not(net):
    sess, g, x, training, y, dy, dx, updates, variables, values, xv = net
    stats = [variables['moving_mean'], variables['moving_variance']]
    sess.run(updates, {x: xv})                                   # training False
    np.testing.assert_allclose(sess.run(stats), [values['moving_mean'],
                                                 values['moving_variance']], rtol=1e-6)
    sess.run(updates, {x: xv, training: True})
    m, v = xv.mean(axis=(0, 1, 2)), xv.var(axis=(0, 1, 2))
    want = [DECAY * values['moving_mean'] + (1 - DECAY) * m,
            DECAY * values['moving_variance'] + (1 - DECAY) * v]
    np.testing.assert_allclose(sess.run(stats), want, rtol=1e-5, atol=1e-6)


def test_gradient_is_batch_norms_through_the_batch_statistics(net):
    sess, g, x, training, y, dy, dx, *_, values, xv = net
    gy = np.random.default_rng(1).normal(size=xv.shape).astype(np.float32)
    got = sess.run(dx, {x: xv, dy: gy, training: True})
    axes = (0, 1, 2)
    m, v = xv.mean(axis=axes), xv.var(axis=axes)
    xhat = (xv - m) / np.sqrt(v + EPS)
    want = values['gamma'] / np.sqrt(v + EPS) * (
        gy - gy.mean(axis=axes) - xhat * (gy * xhat).mean(axis=axes))
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_the_saver_keeps_the_moving_statistics(net, tmp_path):
    sess, g, x, training, y, dy, dx, updates, variables, values, xv = net
    sess.run(updates, {x: xv, training: True})
    with g.as_default():
        saver = tf1.train.Saver()
        path = saver.save(sess, str(tmp_path / 'bn'))
    reader = tf.train.load_checkpoint(path)
    for name in ('moving_mean', 'moving_variance', 'beta', 'gamma'):
        np.testing.assert_array_equal(reader.get_tensor(f'layer/{name}'),
                                      sess.run(variables[name]))
    assert not variables['moving_mean'].trainable and variables['beta'].trainable
