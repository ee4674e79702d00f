"""Between-graph replication on loopback: 1 ps + 1 or 2 workers as processes, all exit 0.

The processes' own output paces the tests: a kill lands after a line a worker printed, and
every wait is for a line or an exit. HANG_GUARD only turns a hang into a failure with the
logs; a slow machine takes longer, it does not change what is asserted.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from alexnet_tf1.training import checkpoints, graph

from alexnet_tf1 import config, devices
from alexnet_tf1.tf_compat import tf, tf1
from test_resume_loss_spikes import odd_label_set, spikes_by_the_readme
from tiny_run import CROP, tiny_prepared

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HANG_GUARD = 600        # seconds for a whole cluster run; a healthy one ends on its own
TINY = ['--input-size', str(CROP), '--batch-size', '2', '--epochs', '2', '--print-freq', '1',
        '--lr', '0.001']       # tiny_run's AlexNet: 8 pictures, 2 steps an epoch on 2 workers


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(('127.0.0.1', 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Process:
    """One cluster process; a thread reads its output as it comes, so no pipe fills up and
    a test can wait for a line."""

    def __init__(self, argv, name):
        self.name = name
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines, self.closed = [], False
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()
        with self.changed:
            self.closed = True
            self.changed.notify_all()

    def log(self):
        with self.changed:
            return ''.join(self.lines)

    def first(self, pattern, deadline):
        """The first match of `pattern` in a line this process printed, waiting for it; None
        if the process ends without printing one."""
        seen = 0
        with self.changed:
            while True:
                for line in self.lines[seen:]:
                    m = re.search(pattern, line)
                    if m:
                        return m
                seen = len(self.lines)
                if self.closed:
                    return None
                if not self.changed.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise Hang(f'{self.name} printed no line matching {pattern!r}')

    def exit_code(self, deadline):
        try:
            code = self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise Hang(f'{self.name} did not exit') from None
        self.reader.join()
        return code


class Hang(Exception):
    pass


class Cluster:
    """ps 0 and workers 0 (the chief), 1, ... of one run, started together; by default the
    tiny AlexNet run on two workers."""

    def __init__(self, tmp_path, *extra, workers=2, data=None, recipe=TINY):
        data = data or tiny_prepared(str(tmp_path))
        self.train_dir = str(tmp_path / 'run')
        ps, *ports = free_ports(1 + workers)
        self.argv = [sys.executable, os.path.join(ROOT, 'run_train.py'), '--data-dir', data,
                     '--train-dir', self.train_dir, '--gpus', 'cpu', *recipe,
                     '--ps-hosts', f'127.0.0.1:{ps}',
                     '--worker-hosts', ','.join(f'127.0.0.1:{p}' for p in ports), *extra]
        self.deadline = time.monotonic() + HANG_GUARD
        self.all = []
        self.procs = [self.start('ps', 0)] + [self.start('worker', i) for i in range(workers)]

    def start(self, job, index):
        p = Process(self.argv + ['--job-name', job, '--task-index', str(index)],
                    f'{job} {index}')
        self.all.append(p)
        return p

    def first(self, i, pattern):
        try:
            return self.procs[i].first(pattern, self.deadline)
        except Hang as e:
            self.fail(e)

    def kill(self, i):
        self.procs[i].proc.kill()
        try:
            return self.procs[i].exit_code(self.deadline)
        except Hang as e:
            self.fail(e)

    def finish(self):
        """Every process's exit code and log, once all have exited."""
        try:
            codes = [p.exit_code(self.deadline) for p in self.procs]
        except Hang as e:
            self.fail(e)
        return codes, [p.log() for p in self.procs]

    def fail(self, why):
        self.kill_all()
        pytest.fail(f'hang guard ({HANG_GUARD} s): {why}\n' +
                    '\n'.join(f'--- {p.name}\n{p.log()}' for p in self.all))

    def kill_all(self):
        for p in self.all:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait()


@pytest.fixture
def cluster(tmp_path):
    made = []
    def make(*extra, **kw):
        made.append(Cluster(tmp_path, *extra, **kw))
        return made[-1]
    yield make
    for c in made:          # a failed assertion leaves no process behind
        c.kill_all()


@pytest.mark.parametrize('mode, steps', [('sync', 4), pytest.param('async', 8, marks=pytest.mark.slow)])
def test_one_ps_two_workers_train_and_every_process_exits_0(cluster, mode, steps):
    c = cluster(*(['--async'] if mode == 'async' else []))
    codes, logs = c.finish()
    assert codes == [0, 0, 0], logs
    # sync: 8 images / (2 workers x batch 2) = 2 steps an epoch; async: each worker's step counts
    state = checkpoints.read_state(checkpoints.latest(c.train_dir))
    reader = tf.train.load_checkpoint(checkpoints.latest(c.train_dir))
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


def test_a_killed_worker_started_again_rejoins_the_synchronous_run(cluster):
    c = cluster('--epochs', '4')                    # 8 steps
    # the kill lands on worker 1's first progress line: the first update took a gradient from
    # each worker (no tokens before it), so that line comes early in the 8 steps
    first = c.first(2, r'^worker 1 step (\d+)/8 ')
    assert first, c.procs[2].log()
    killed_at = int(first.group(1))
    assert killed_at < 8
    assert c.kill(2) == -signal.SIGKILL
    c.procs[2] = c.start('worker', 1)
    # it joins the run where the run is (worker 0 may have gone on alone: SyncReplicasOptimizer
    # counts gradients, not workers), never a fresh start
    banner = c.first(2, r'^worker 1: .* step (\d+) of 8$')
    assert banner and killed_at <= int(banner.group(1)) <= 8, c.procs[2].log()
    codes, logs = c.finish()
    assert codes == [0, 0, 0], logs
    state = checkpoints.read_state(checkpoints.latest(c.train_dir))
    assert state['global_step'] == 8 and state['epoch'] == 4
    assert 'worker 1: done' in logs[2] and 'saved' in logs[1]


def test_a_diverging_cluster_stops_every_worker_and_saves_nothing(cluster):
    c = cluster('--lr', '1e12')
    for task in (0, 1):
        # the first non-finite loss a worker reports is its own stop, not a step it goes on
        # from (one that went on would wait for the other's gradients until the hang guard)
        seen = c.first(1 + task, r'loss (became )?(nan|inf)\b')
        assert seen and re.match(rf'error: training diverged: loss became (nan|inf) at step \d+ '
                                 rf'on worker {task}; stopped without saving', seen.string), \
            c.procs[1 + task].log()
    codes, logs = c.finish()
    assert codes == [0, 3, 3], logs          # the ps ends once both workers have said goodbye
    assert checkpoints.latest(c.train_dir) is None     # no non-finite weights saved


def test_a_loss_spike_is_printed_by_its_worker_and_kept_in_the_chiefs_checkpoints(cluster,
                                                                                  tmp_path):
    # the single-process test's set on one worker: the step that draws the odd label in
    # epoch 2 jumps by several nats
    data = odd_label_set(str(tmp_path / 'data'))
    c = cluster('--save-every', '5', '--keep', '100', workers=1, data=data,
                recipe=['--model', 'cifar4', '--batch-size', '1', '--lr', '0.001',
                        '--epochs', '2', '--print-freq', '1'])
    codes, logs = c.finish()
    assert codes == [0, 0], logs
    steps = re.findall(r'^worker 0 step (\d+)/60  loss (\S+) .*?err@1 (\S+)%(.*)$', logs[1],
                       re.M)
    assert [int(s) for s, *_ in steps] == list(range(1, 61)), logs[1]
    losses = [float(loss) for _, loss, _, _ in steps]
    flagged = [int(s) for s, _, _, note in steps if 'LOSS SPIKE' in note]
    assert flagged == spikes_by_the_readme(losses) and len(flagged) == 1 and flagged[0] > 30
    step = flagged[0]
    assert steps[step - 1][2] == '100.0'            # the step whose one picture was the 1
    final = checkpoints.read_state(checkpoints.latest(c.train_dir))
    assert final['global_step'] == 60 and len(final['spikes']) == 1
    spike = final['spikes'][0]
    assert (spike['step'], spike['epoch']) == (step, 2)
    assert spike['cross_entropy'] == losses[step - 1]   # cifar4's recipe: no weight decay
    # the window a resumed chief goes on with: the last 50 steps' cross-entropies
    assert final['recent_losses'] == pytest.approx(losses[-50:], abs=5e-5)
    for k in range(5, 61, 5):
        s = checkpoints.read_state(os.path.join(c.train_dir, f'model.ckpt-{k}'))
        assert s.get('spikes', []) == ([spike] if k >= step else []), k


def test_each_worker_reads_its_own_shuffle_of_the_same_data(tmp_path):
    """Worker t draws the epoch plan of seed + t: the two workers' batches of one epoch differ,
    and together with the coordinates in the images the order is the seed-shifted one."""
    from alexnet_tf1.training.loop import run_batches
    from alexnet_tf1.data import pipeline
    from alexnet_tf1.data.reader import open_prepared
    from synthetic_prepared import coord_prepared
    prepared = open_prepared(coord_prepared(str(tmp_path), n_train=16, n_val=4, size=20))
    state = {'seed': 5, 'lighting': 0.0, 'flip': False, 'shift': 0}
    def labels(task):
        b = run_batches(prepared, state, 16, 4, task, epoch=0)
        try:
            return np.concatenate([y for _, y in b])
        finally:
            b.close()
    w0, w1 = labels(0), labels(1)
    assert sorted(w0) == sorted(w1) == list(range(16))      # each a whole pass
    assert not np.array_equal(w0, w1)
    order = pipeline.epoch_plan(16, seed=6, epoch=0, max_y=4, max_x=4)[0]
    np.testing.assert_array_equal(w1, order)                # worker 1 = the run's seed + 1