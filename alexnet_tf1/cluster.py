"""Many machines: between-graph replication on TensorFlow's own runtime.

Every process runs run_train.py with the same --ps-hosts/--worker-hosts and its own
--job-name/--task-index. Each worker builds the whole graph under replica_device_setter:
variables go to the ps tasks, ops to the worker, the towers' partial device specs
('/device:CPU:1', '/device:GPU:1') merged in, so each worker still splits the net in two.

Synchronous by default: SyncReplicasOptimizer averages one gradient from each worker, then
MomentumOptimizer(1.0, m) applies it to lr-scaled gradients, which is objective.py's update
(its accumulator is -v). --async applies each worker's gradients as they come.

Ending cleanly. A worker stops when the global step it gets back reaches the last step. Then
it puts a token in the 'done' queue of every ps and, while not every worker has, keeps feeding
the sync token queue: a worker still blocked on a token (another took two) gets one carrying
the final step and stops too, so nobody waits for an update that will never come. Once all
are done the chief saves the last checkpoint, and each worker puts a 'bye' token on every ps
and exits; a ps exits when it holds one 'bye' per worker, so no worker talks to it after.
Only the chief (worker 0) initialises, restores and writes checkpoints (with run_state, so
run_eval.py reads them) and summaries. A worker that dies and is started again waits for the
variables and rejoins. Synchronous updates count gradients, not workers, so meanwhile the
others may go on alone; a worker that never comes back leaves them waiting at the end.
"""
import sys
import time

import numpy as np

from . import checkpoints as ckpt_mod, devices, graph as graph_mod
from .errors import UserError
from .run_setup import Diverged, diverged_line, finite_check, setup, step_of
from .data import pipeline
from .progress import Progress
from .schedule import Schedule
from .tf_compat import quiet_stderr, tf, tf1


class ClusterError(UserError):
    """Inconsistent cluster flags; the message is one line."""


def cluster_spec(ps_hosts, worker_hosts):
    hosts = {'ps': _hosts(ps_hosts, '--ps-hosts'), 'worker': _hosts(worker_hosts, '--worker-hosts')}
    return tf1.train.ClusterSpec(hosts)


def _hosts(value, flag):
    hosts = [h.strip() for h in (value or '').split(',') if h.strip()]
    if not hosts or any(':' not in h for h in hosts):
        raise ClusterError(f'{flag} takes host:port,... (got {value!r})')
    return hosts


def _queues(n_ps):
    """Per ps task: a 'done' and a 'bye' queue, shared by name between all processes."""
    done, bye = [], []
    for i in range(n_ps):
        with tf1.device(f'/job:ps/task:{i}/device:CPU:0'):
            done.append(tf1.FIFOQueue(-1, tf.int32, shapes=[()], shared_name=f'done_{i}',
                                      name=f'done_{i}'))
            bye.append(tf1.FIFOQueue(-1, tf.int32, shapes=[()], shared_name=f'bye_{i}',
                                     name=f'bye_{i}'))
    return done, bye


def run(args):
    spec = cluster_spec(args.ps_hosts, args.worker_hosts)
    n_tasks = len(spec.job_tasks(args.job_name))
    if not 0 <= args.task_index < n_tasks:
        raise ClusterError(f'--task-index {args.task_index}: job {args.job_name} has {n_tasks} '
                           f'task(s) in the host list')
    if args.job_name == 'ps':
        return serve(spec, args.task_index)
    return Worker(args, spec).run()


def worker_batches(prepared, state, crop, batch, task, epoch):
    """Worker `task`'s own pass over the training set: its shuffle, crops, flips and
    lighting drawn from the run's seed + task, so the workers see different batches."""
    return pipeline.train_batches(prepared, batch, crop=crop, seed=state['seed'] + task,
                                  epoch=epoch, lighting_std=state['lighting'],
                                  flip=state.get('flip', True), shift=state.get('shift', 0))


def serve(spec, task):
    """A ps task: hold variables until every worker has said goodbye, then exit 0."""
    config = devices.Placement(('/cpu:0', '/cpu:1'), 'cpu').session_config()
    with quiet_stderr():
        server = tf1.train.Server(spec, 'ps', task, config=config)
    n_workers = len(spec.job_tasks('worker'))
    g = tf.Graph()
    with g.as_default():
        _, bye = _queues(len(spec.job_tasks('ps')))
        wait = bye[task].dequeue_many(n_workers)
    print(f'ps {task}: serving {spec.job_tasks("ps")[task]} until {n_workers} worker(s) finish',
          flush=True)
    config.device_filters.append(f'/job:ps/task:{task}')     # its own queue, no worker needed
    with tf1.Session(server.target, graph=g, config=config) as sess:
        sess.run(wait)
    print(f'ps {task}: all workers done', flush=True)
    return 0


class Worker:
    def __init__(self, args, spec):
        self.task, self.spec = args.task_index, spec
        self.chief = self.task == 0
        self.n_workers = len(spec.job_tasks('worker'))
        self.sync = not getattr(args, 'async_updates', False)
        (self.prepared, self.opts, self.train_dir, self.prev, self.state, self.cfg,
         self.placement) = setup(args, restart=self.chief)
        if step_of(self.state).optimizer != 'momentum':
            raise ClusterError('the cluster loop applies the paper\'s momentum step '
                               '(SyncReplicasOptimizer over MomentumOptimizer); --optimizer '
                               'rmsprop runs on one machine')
        # a step takes one batch per replica per worker (sync) or one worker's batches (async)
        self.batch = self.state['batch_size'] * len(self.placement.replicas)
        n_train = len(self.prepared.split('train'))
        per_step = self.batch * (self.n_workers if self.sync else 1)
        self.steps_per_epoch = max(1, n_train // per_step)
        self.last_step = self.state['epochs'] * self.steps_per_epoch
        self.config = self.placement.session_config()
        # this worker talks to the ps tasks and itself, never waits for the other workers
        self.config.device_filters.extend(['/job:ps', f'/job:worker/task:{self.task}'])
        with quiet_stderr():
            self.server = tf1.train.Server(spec, 'worker', self.task, config=self.config)
        self._build()

    def _build(self):
        setter = tf1.train.replica_device_setter(
            worker_device=f'/job:worker/task:{self.task}', cluster=self.spec)
        self.opt = None
        self.g = graph_mod.build(self.cfg, self.placement, self.state['weight_decay'],
                                 self.state['momentum'], seed=self.state['seed'] + self.task,
                                 update=self._update, device_fn=setter,
                                 train_layers=self.state.get('train_layers'),
                                 step=step_of(self.state),
                                 lr_mult=self.state.get('lr_mult'))
        with self.g.graph.as_default():
            with tf1.device(setter):
                self.ckpt = ckpt_mod.Checkpoints(self.g.graph, self.train_dir,
                                                 keep=self.opts.keep)
            self.done, self.bye = _queues(len(self.spec.job_tasks('ps')))
            self.say_done = tf.group(*[q.enqueue(self.task) for q in self.done])
            self.say_bye = tf.group(*[q.enqueue(self.task) for q in self.bye])
            self.n_done = self.done[0].size()
            self.uninitialized = tf1.report_uninitialized_variables(tf1.global_variables())
            self.weights_finite = finite_check()
            self.init = tf1.global_variables_initializer()
            if self.sync:
                self.qr = self.opt.get_chief_queue_runner()
                # built by SyncReplicasOptimizer for MonitoredSession's hook, unused here
                getattr(self.opt.ready_for_local_init_op, 'mark_used', lambda: None)()
                with tf1.device(self.g.global_step.device):
                    step = self.g.global_step.read_value()
                    self.extra_tokens = self.opt._sync_token_queue.enqueue_many(
                        tf.fill([self.n_workers], step))
            self.summary = tf1.summary.FileWriter(self.train_dir) if self.chief else None

    def _update(self, grads_and_vars, lr, global_step):
        """The paper's step, lr folded into the gradient; returns the global step after it."""
        scaled = []
        for g, v in grads_and_vars:
            with tf1.colocate_with(v):      # the gradient reaches the ps once, already scaled
                scaled.append((None if g is None else g * lr, v))
        momentum = tf1.train.MomentumOptimizer(1.0, self.state['momentum'])
        if self.sync:
            self.opt = tf1.train.SyncReplicasOptimizer(
                momentum, replicas_to_aggregate=self.n_workers, total_num_replicas=self.n_workers)
            return self.opt.apply_gradients(scaled, global_step)    # its value: the new step
        with tf.control_dependencies([momentum.apply_gradients(scaled, global_step)]):
            return global_step.read_value()

    def run(self):
        g, state = self.g, self.state
        with quiet_stderr():
            sess = tf1.Session(self.server.target, graph=g.graph, config=self.config)
        self._join(sess)
        step = int(sess.run(g.global_step))
        print(f"worker {self.task}{' (chief)' if self.chief else ''}: {self.cfg.model}, towers on "
              f"{', '.join(self.placement.towers)}, {'sync' if self.sync else 'async'} over "
              f"{self.n_workers} workers, batch {self.batch} per worker, step {step} of "
              f"{self.last_step}", flush=True)
        epoch = step // self.steps_per_epoch
        progress = Progress(f'worker {self.task}', self.last_step, start=step,
                            every=self.opts.print_freq)
        sched = Schedule.from_state(state['schedule'])
        self._schedule(sched, step)
        try:
            self._train(sess, step, epoch, progress, sched)
        except Diverged as d:
            # nothing is saved (the chief's last checkpoint stays the last good one); every
            # worker says done and goodbye so the ps tasks end, and exits 3 like run_train
            print(f'error: {diverged_line(d, self.train_dir)}', file=sys.stderr, flush=True)
            if self.sync:   # a token this worker took may be one another worker waits on
                sess.run(self.extra_tokens)
            sess.run([self.say_done, self.say_bye])
            sess.close()
            return 3
        self._finish(sess, sched)
        return 0

    def _train(self, sess, step, epoch, progress, sched):
        g, state = self.g, self.state
        while step < self.last_step:
            batches = worker_batches(self.prepared, state, self.cfg.input_size, self.batch,
                                     self.task, epoch)
            try:
                for x, y in batches:
                    t0 = time.perf_counter()
                    lr = sched.rate((step + 1) / self.steps_per_epoch)
                    out = sess.run({'step': g.train_op, 'loss': g.total_loss, 'top1': g.top1,
                                    'top5': g.top5},
                                   {g.images: x, g.labels: y, g.lr: lr, g.training: True})
                    before, step = step, int(out['step'])
                    if not np.isfinite(out['loss']):
                        raise Diverged(f"loss became {out['loss']} at step {step} on worker "
                                       f"{self.task}")
                    progress.step(min(step, self.last_step), len(y), time.perf_counter() - t0, 0,
                                  loss=out['loss'], lr=lr, top1=out['top1'],
                                  top5=out['top5'])
                    self._schedule(sched, step)
                    if self.chief:
                        self._write(out['loss'], step, lr)
                        if step // self.opts.save_every > before // self.opts.save_every:
                            self._save(sess, step, sched)
                    if step >= self.last_step:
                        break
            finally:
                batches.close()
            epoch += 1      # this worker's own pass over its shuffle, not the run's epoch
        progress.finish()

    def _schedule(self, sched, step):
        """The step schedule by the run's epoch (global step); no validation, so no plateau."""
        if sched.kind != 'step':
            return
        while sched.drops < sched.max_drops and \
                step // self.steps_per_epoch >= sched.step_epochs * (sched.drops + 1):
            sched.end_epoch(sched.step_epochs * (sched.drops + 1) - 1, None)

    def _join(self, sess):
        """The chief initialises or restores (or finds a run going); the others wait for it."""
        if self.chief and len(sess.run(self.uninitialized)):
            restored = self.prev and self.ckpt.restore_latest(sess)[0]
            if restored:
                print(f'chief: resuming {restored}', flush=True)
            else:
                sess.run(self.init)
        while len(sess.run(self.uninitialized)):
            time.sleep(0.5)
        if self.sync:
            sess.run(self.opt.chief_init_op if self.chief else self.opt.local_step_init_op)
            if self.chief:
                self.coord = tf1.train.Coordinator()
                self.qr.create_threads(sess, coord=self.coord, daemon=True, start=True)

    def _finish(self, sess, sched):
        sess.run(self.say_done)
        while sess.run(self.n_done) < self.n_workers:
            if self.sync:
                sess.run(self.extra_tokens)
            time.sleep(0.1)
        if self.chief:      # every worker has stopped: the step saved is the last one
            if self.sync:
                self.coord.request_stop()
            path = self._save(sess, int(sess.run(self.g.global_step)), sched)
            print(f'chief: saved {path}', flush=True)
        sess.run(self.say_bye)
        print(f'worker {self.task}: done', flush=True)
        sess.close()
        if self.summary:
            self.summary.close()

    def _write(self, loss, step, lr):
        s = tf1.Summary(value=[tf1.Summary.Value(tag='train/loss', simple_value=float(loss)),
                               tf1.Summary.Value(tag='train/lr', simple_value=lr)])
        self.summary.add_summary(s, step)

    def _save(self, sess, step, sched):
        if not sess.run(self.weights_finite):      # never rotate good checkpoints out for these
            raise Diverged(f'weights became infinite or NaN by step {step}')
        self.state.update(global_step=step, epoch=step // self.steps_per_epoch,
                          batch_in_epoch=step % self.steps_per_epoch, schedule=sched.state())
        return self.ckpt.save(sess, self.state)
