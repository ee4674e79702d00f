"""Options any model's training step can take: RMSProp, label smoothing, gradient clipping;
each against NumPy, then through run_train.py and a resume."""
import numpy as np
import pytest

import run_train
from alexnet_tf1.training import checkpoints, objective
from alexnet_tf1.tf_compat import session, tf, tf1
from tiny_run import tiny_prepared, train_args


def one_step(step, w0, grad_value, lr=0.1):
    """Run objective.apply on one variable with a fixed gradient; returns its value after."""
    g = tf.Graph()
    with g.as_default():
        w = tf1.get_variable('w', initializer=tf.constant(w0))
        gs = tf1.train.get_or_create_global_step()
        grads = objective.clipped([(tf.constant(grad_value), w)], step.clip_norm)
        op = objective.apply(step, grads, lr, gs)
        init = tf1.global_variables_initializer()
    sess = session(g, tf1.ConfigProto())
    sess.run(init)
    out = []
    for _ in range(2):
        sess.run(op)
        out.append(sess.run(w))
    sess.close()
    return out


def test_rmsprop_is_tfs_rule_from_ms_1():
    w0, gv = np.array([1.0, -2.0, 0.5], np.float32), np.array([0.3, -1.0, 4.0], np.float32)
    got = one_step(objective.Step(optimizer='rmsprop'), w0, gv)
    ms, mom, w = np.ones(3), np.zeros(3), w0.astype(np.float64)
    for after in got:
        ms = 0.9 * ms + 0.1 * gv ** 2
        mom = 0.9 * mom + 0.1 * gv / np.sqrt(ms + 1.0)
        w = w - mom
        np.testing.assert_allclose(after, w, rtol=1e-6)


def test_clipping_rescales_to_the_global_norm():
    w0, gv = np.zeros(2, np.float32), np.array([3.0, 4.0], np.float32)       # norm 5
    got = one_step(objective.Step(momentum=0.0, clip_norm=2.0), w0, gv, lr=1.0)
    np.testing.assert_allclose(got[0], -gv * 2.0 / 5.0, rtol=1e-6)


def test_label_smoothing_is_cross_entropy_with_the_smoothed_target():
    z = np.array([[2.0, -1.0, 0.5, 0.0], [0.1, 0.2, 3.0, -2.0]], np.float32)
    y = np.array([0, 2], np.int32)
    g = tf.Graph()
    with g.as_default():
        xent = objective.cross_entropy(tf.constant(z), tf.constant(y), smoothing=0.1)
    sess = session(g, tf1.ConfigProto())
    got = sess.run(xent)
    sess.close()
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    target = np.full_like(z, 0.1 / 4)
    target[np.arange(2), y] += 0.9
    assert got == pytest.approx(-(target * logp).sum(1).mean(), rel=1e-5)


def test_the_v3_options_train_save_and_resume(tmp_path, capsys):
    data, td = tiny_prepared(str(tmp_path)), str(tmp_path / 'run')
    flags = ['--optimizer', 'rmsprop', '--label-smoothing', '0.1', '--clip-norm', '2.0']
    assert run_train.main(train_args(data, td, '--epochs', '1', *flags)) == 0
    s = checkpoints.read_state(checkpoints.latest(td))
    assert (s['optimizer'], s['label_smoothing'], s['clip_norm']) == ('rmsprop', 0.1, 2.0)
    names = tf.train.load_checkpoint(checkpoints.latest(td)).get_variable_to_shape_map()
    assert 'tower0/conv1/weights/rms' in names
    assert run_train.main(train_args(data, td, '--epochs', '2', *flags)) == 0
    capsys.readouterr()
    assert run_train.main(train_args(data, td, '--epochs', '3', '--optimizer', 'momentum')) == 2
    assert '--optimizer momentum (the run: rmsprop)' in capsys.readouterr().err
