"""The two-tower split as the paper drew it: where each tower runs and what each layer reads."""
import re

import pytest

from alexnet_session import images, open_alexnet
from alexnet_tf1.tf_compat import tf, tf1


@pytest.fixture(scope='module')
def net():
    g, sess = open_alexnet()
    yield g
    sess.close()


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


def test_conv1_of_each_tower_sees_the_whole_image(net):
    with net.graph.as_default():
        for t in (0, 1):
            g = tf1.gradients(tf.reduce_sum(net.net.end_points['conv1'][t]), net.images)[0]
            assert g is not None


def test_variables_live_on_their_towers_device(net):
    with net.graph.as_default():
        for v in tf1.trainable_variables():
            tower = re.match(r'tower(\d)/', v.op.name).group(1)
            assert v.device == f'/device:CPU:{tower}', v.name
