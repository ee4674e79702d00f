"""Between-graph replication on loopback: 1 ps + 2 workers as processes, all exit 0."""
import os
import socket
import subprocess
import sys

import pytest

from alexnet_tf1 import checkpoints, config, devices, graph
from alexnet_tf1.tf_compat import tf, tf1
from tiny_run import CROP, tiny_prepared

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(('127.0.0.1', 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_cluster(tmp_path, *extra):
    data = tiny_prepared(str(tmp_path))
    ps, w0, w1 = free_ports(3)
    common = [sys.executable, os.path.join(ROOT, 'run_train.py'), '--data-dir', data,
              '--train-dir', str(tmp_path / 'run'), '--gpus', 'cpu', '--input-size', str(CROP),
              '--batch-size', '2', '--epochs', '2', '--print-freq', '1', '--lr', '0.001',
              '--ps-hosts', f'127.0.0.1:{ps}', '--worker-hosts', f'127.0.0.1:{w0},127.0.0.1:{w1}',
              *extra]
    def start(job, i):
        return subprocess.Popen(common + ['--job-name', job, '--task-index', str(i)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return [start('ps', 0), start('worker', 0), start('worker', 1)], start


def wait_all(procs):
    try:
        codes = [p.wait(timeout=90) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return codes, [p.stdout.read() for p in procs]


@pytest.mark.parametrize('mode, steps', [('sync', 4), ('async', 8)])
def test_one_ps_two_workers_train_and_every_process_exits_0(tmp_path, mode, steps):
    procs, _ = start_cluster(tmp_path, *(['--async'] if mode == 'async' else []))
    codes, logs = wait_all(procs)
    assert codes == [0, 0, 0], logs
    # sync: 8 images / (2 workers x batch 2) = 2 steps an epoch; async: each worker's step counts
    state = checkpoints.read_state(checkpoints.latest(str(tmp_path / 'run')))
    reader = tf.train.load_checkpoint(checkpoints.latest(str(tmp_path / 'run')))
    assert state['global_step'] == reader.get_tensor('global_step') >= steps
    if mode == 'sync':
        assert state['global_step'] == steps and state['epoch'] == 2
    assert 'tower1/conv2/weights' in reader.get_variable_to_shape_map()
    assert 'saved' in logs[1] and 'saved' not in logs[2]       # only the chief writes


def test_variables_go_to_the_ps_and_each_towers_ops_to_its_cpu_on_the_worker():
    spec = tf1.train.ClusterSpec({'ps': ['a:1', 'b:1'], 'worker': ['c:1', 'd:1']})
    setter = tf1.train.replica_device_setter(worker_device='/job:worker/task:1', cluster=spec)
    g = graph.build(config.ModelConfig(num_classes=10, input_size=CROP), devices.resolve('cpu'),
                    device_fn=setter)
    with g.graph.as_default():
        for v in tf1.global_variables():
            tower = v.op.name[len('tower')] if v.op.name.startswith('tower') else '0'
            assert v.device.startswith('/job:ps/task:') and v.device.endswith(f'CPU:{tower}'), \
                (v.op.name, v.device)
    compute = [op for op in g.graph.get_operations() if op.type in ('Conv2D', 'MatMul', 'LRN')]
    assert compute
    for op in compute:
        tower = op.name[len('tower')] if op.name.startswith('tower') else \
            op.name[len('gradients/tower')]
        assert op.device == f'/job:worker/task:1/device:CPU:{tower}', (op.name, op.device)


def test_a_killed_worker_started_again_rejoins_the_synchronous_run(tmp_path):
    procs, start = start_cluster(tmp_path, '--epochs', '4')
    try:
        for line in procs[2].stdout:            # worker 1 has done a step: kill it
            if 'step 2/8' in line:
                procs[2].kill()
                break
        assert procs[2].wait(timeout=30) != 0
        procs[2] = start('worker', 1)
    finally:
        codes, logs = wait_all(procs)
    assert codes == [0, 0, 0], logs
    assert 'step 2 of 8' in logs[2] or 'step 3 of 8' in logs[2]
    assert checkpoints.read_state(checkpoints.latest(str(tmp_path / 'run')))['global_step'] == 8


def test_a_diverging_cluster_stops_every_worker_and_saves_nothing(tmp_path):
    procs, _ = start_cluster(tmp_path, '--lr', '1e12')
    codes, logs = wait_all(procs)
    assert codes == [0, 3, 3], logs          # the ps ends once both workers have said goodbye
    assert all('training diverged' in log for log in logs[1:]), logs
    assert checkpoints.latest(str(tmp_path / 'run')) is None     # no non-finite weights saved


def test_each_worker_reads_its_own_shuffle_of_the_same_data(tmp_path):
    """Worker t draws the epoch plan of seed + t: the two workers' batches of one epoch differ,
    and together with the coordinates in the images the order is the seed-shifted one."""
    import numpy as np
    from alexnet_tf1.cluster import worker_batches
    from alexnet_tf1.data import pipeline
    from alexnet_tf1.data.prepared import open_prepared
    from synthetic_prepared import coord_prepared
    prepared = open_prepared(coord_prepared(str(tmp_path), n_train=16, n_val=4, size=20))
    state = {'seed': 5, 'lighting': 0.0, 'flip': False, 'shift': 0}
    def labels(task):
        b = worker_batches(prepared, state, 16, 4, task, epoch=0)
        try:
            return np.concatenate([y for _, y in b])
        finally:
            b.close()
    w0, w1 = labels(0), labels(1)
    assert sorted(w0) == sorted(w1) == list(range(16))      # each a whole pass
    assert not np.array_equal(w0, w1)
    order = pipeline.epoch_plan(16, seed=6, epoch=0, max_y=4, max_x=4)[0]
    np.testing.assert_array_equal(w1, order)                # worker 1 = the run's seed + 1
