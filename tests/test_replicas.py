"""Data-parallel replicas (--gpus cpu:4 = two two-tower AlexNets over the same variables)."""
import numpy as np
import pytest

import run_train
from alexnet_tf1.training import checkpoints, graph
from alexnet_tf1 import config, devices
from alexnet_tf1.tf_compat import session, tf, tf1
from tiny_run import CROP, tiny_prepared, train_args


def _open(gpus, model='alexnet', size=CROP, channels=3):
    cfg = config.defaults_for(model, num_classes=10, input_size=size, channels=channels)
    placement = devices.resolve(gpus, towers=2 if model == 'alexnet' else 1)
    g = graph.build(cfg, placement, seed=0)
    sess = session(g.graph, placement.session_config())
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
    return g, sess


@pytest.mark.parametrize('model, size, channels', [('alexnet', CROP, 3), ('lenet5', 32, 1)])
def test_averaged_replica_gradients_are_the_gradients_of_the_whole_batch(model, size, channels):
    one, s1 = _open('cpu', model, size, channels)
    many, sn = _open('cpu:4', model, size, channels)
    assert many.replicas == (2 if model == 'alexnet' else 4) and one.replicas == 1
    with one.graph.as_default():
        values = {v.op.name: s1.run(v) for v in tf1.trainable_variables()}
    with many.graph.as_default():
        assert sorted(values) == sorted(v.op.name for v in tf1.trainable_variables())
        for v in tf1.trainable_variables():
            v.load(values[v.op.name], sn)
    rng = np.random.RandomState(0)
    x = (rng.randn(8, size, size, channels) * 30).astype(np.float32)
    y = np.arange(8) % 10
    want = s1.run([g for g, _ in one.grads] + [one.total_loss, one.logits],
                  {one.images: x, one.labels: y})     # training=False: dropout off
    got = sn.run([g for g, _ in many.grads] + [many.total_loss, many.logits],
                 {many.images: x, many.labels: y})
    assert [v.op.name for _, v in one.grads] == [v.op.name for _, v in many.grads]
    for (_, v), a, b in zip(one.grads, want, got):
        np.testing.assert_allclose(b, a, rtol=2e-3, atol=1e-5 * np.abs(a).max(), err_msg=v.op.name)
    np.testing.assert_allclose(got[-2], want[-2], rtol=1e-5)
    np.testing.assert_allclose(got[-1], want[-1], rtol=1e-4, atol=1e-4)
    s1.close()
    sn.close()


def test_replica_1_runs_on_its_own_cpus_over_replica_0s_variables():
    g, sess = _open('cpu:4')
    sess.close()
    ops = g.graph.get_operations()
    with g.graph.as_default():
        assert all(v.op.name.startswith(('tower0/', 'tower1/')) for v in tf1.global_variables()
                   if v.op.name not in ('global_step',))
    for t in (0, 1):
        # a variable's reads are placed with the variable, on replica 0's device
        mine = [op for op in ops if op.name.startswith(f'replica1/tower{t}/')
                and op.type != 'ReadVariableOp']
        assert mine and all(op.device == f'/device:CPU:{2 + t}' for op in mine)
        assert any(op.name.startswith(f'tower{t}/conv1') for op in ops)


def test_an_uneven_batch_still_gives_every_row_its_logits():
    g, sess = _open('cpu:4')
    x = np.zeros((3, CROP, CROP, 3), np.float32)
    assert sess.run(g.logits, {g.images: x}).shape == (3, 10)
    sess.close()


def test_cpu4_run_writes_a_checkpoint_with_the_cpu_runs_variable_names(tmp_path, capsys):
    data = tiny_prepared(str(tmp_path))
    names = {}
    for gpus in ('cpu', 'cpu:4'):
        td = str(tmp_path / gpus.replace(':', ''))
        assert run_train.main(train_args(data, td, '--epochs', '1', '--gpus', gpus)) == 0
        path = checkpoints.latest(td)
        names[gpus] = sorted(tf.train.load_checkpoint(path).get_variable_to_shape_map())
        steps = checkpoints.read_state(path)['global_step']
        assert steps == (2 if gpus == 'cpu' else 1)     # 8 images: batch 4, or 2 x 4
    assert '2 replicas x batch 4 = effective batch 8' in capsys.readouterr().out
    assert names['cpu'] == names['cpu:4'] and 'tower1/conv2/weights' in names['cpu']


def test_devices_group_into_replicas():
    assert devices.resolve('0,1,2,3', n_visible=4).replicas == (('/gpu:0', '/gpu:1'),
                                                                ('/gpu:2', '/gpu:3'))
    assert devices.resolve('0,1', towers=1, n_visible=2).replicas == (('/gpu:0',), ('/gpu:1',))
    p = devices.resolve('cpu:4')
    assert p.towers == ('/cpu:0', '/cpu:1') and p.session_config().device_count['CPU'] == 4
    assert devices.resolve('cpu').replicas == (('/cpu:0', '/cpu:1'),)
    for bad in ('0,1,2', 'cpu:x', 'cpu:0'):
        with pytest.raises(devices.DeviceError):
            devices.resolve(bad, n_visible=4)
