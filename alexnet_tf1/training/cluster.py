"""Many machines: between-graph replication on TensorFlow's own runtime, one process per
--job-name/--task-index of the same --ps-hosts/--worker-hosts. A worker builds the whole graph
under replica_device_setter (variables to the ps tasks, ops to the worker, each replica's
towers on two of its devices) and trains it with loop.py. Synchronous by default:
SyncReplicasOptimizer averages one gradient from each worker, then MomentumOptimizer(1.0, m)
applies it to lr-scaled gradients (objective.py's update); --async applies each worker's as
they come. Only the chief (worker 0) initialises, restores and writes checkpoints and events."""
import time

from alexnet_tf1 import devices
from alexnet_tf1.errors import UserError
from alexnet_tf1.training.loop import Loop
from alexnet_tf1.training.start import Diverged, setup, step_of
from alexnet_tf1.tf_compat import quiet_stderr, tf, tf1


class ClusterError(UserError):
    """Inconsistent cluster flags; the message is one line."""


def run(given):
    """given: the flags the user gave (options.given_flags), --job-name among them."""
    task, job_name, hosts = given.get('task_index', 0), given['job_name'], {}
    for job, value in (('ps', given.get('ps_hosts')), ('worker', given.get('worker_hosts'))):
        hosts[job] = [h.strip() for h in (value or '').split(',') if h.strip()]
        if not hosts[job] or any(':' not in h for h in hosts[job]):
            raise ClusterError(f'--{job}-hosts takes host:port,... (got {value!r})')
    if not 0 <= task < len(hosts[job_name]):
        raise ClusterError(f'--task-index {task}: job {job_name} has {len(hosts[job_name])} '
                           f'task(s) in the host list')
    spec = tf1.train.ClusterSpec(hosts)
    return serve(spec, task) if job_name == 'ps' else Worker(given, spec).run()


def _queues(n_ps, name):
    """One queue `name` per ps task, shared by name between all processes."""
    out = []
    for i in range(n_ps):
        with tf1.device(f'/job:ps/task:{i}/device:CPU:0'):
            out.append(tf1.FIFOQueue(-1, tf.int32, shapes=[()], shared_name=f'{name}_{i}'))
    return out


def serve(spec, task):
    """A ps task: hold variables until every worker has said goodbye, then exit 0."""
    config = devices.Placement(('/cpu:0', '/cpu:1'), 'cpu').session_config()
    with quiet_stderr():
        server = tf1.train.Server(spec, 'ps', task, config=config)
    n_workers = len(spec.job_tasks('worker'))
    with tf.Graph().as_default() as g:
        wait = _queues(len(spec.job_tasks('ps')), 'bye')[task].dequeue_many(n_workers)
    print(f'ps {task}: serving {spec.job_tasks("ps")[task]} until {n_workers} worker(s) finish',
          flush=True)
    config.device_filters.append(f'/job:ps/task:{task}')     # its own queue, no worker needed
    with tf1.Session(server.target, graph=g, config=config) as sess:
        sess.run(wait)
    print(f'ps {task}: all workers done', flush=True)
    return 0


class Worker(Loop):
    def __init__(self, given, spec):
        self.chief = self.saves = given.get('task_index', 0) == 0
        prepared, opts, train_dir, self.prev, state, cfg, placement = setup(given, self.chief)
        self.n, self.sync = len(spec.job_tasks('worker')), not opts.async_updates
        if step_of(state).optimizer != 'momentum':
            raise ClusterError("the cluster loop applies the paper's momentum step (SyncReplicas"
                               "Optimizer over MomentumOptimizer); --optimizer rmsprop runs on "
                               "one machine")
        super().__init__(cfg, state, opts, prepared, placement, train_dir, task=opts.task_index,
                         workers=self.n if self.sync else 1)
        self.config = placement.session_config()  # it talks to the ps tasks and itself only
        self.config.device_filters.extend(['/job:ps', f'/job:worker/task:{self.task}'])
        with quiet_stderr():
            self.server = tf1.train.Server(spec, 'worker', self.task, config=self.config)
        self.build(self._update, tf1.train.replica_device_setter(
            worker_device=f'/job:worker/task:{self.task}', cluster=spec))
        with self.g.graph.as_default():
            done, bye = (_queues(len(spec.job_tasks('ps')), name) for name in ('done', 'bye'))
            self.say_done = tf.group(*[q.enqueue(self.task) for q in done])
            self.say_bye = tf.group(*[q.enqueue(self.task) for q in bye])
            self.n_done = done[0].size()
            self.uninitialized = tf1.report_uninitialized_variables(tf1.global_variables())
            if self.sync:
                # built by SyncReplicasOptimizer for MonitoredSession's hook, unused here
                getattr(self.opt.ready_for_local_init_op, 'mark_used', lambda: None)()
                with tf1.device(self.g.global_step.device):
                    self.extra_tokens = self.opt._sync_token_queue.enqueue_many(
                        tf.fill([self.n], self.g.global_step.read_value()))

    def _update(self, grads_and_vars, lr, global_step):
        """The paper's step, lr folded into the gradient; returns the global step after it."""
        scaled = []
        for g, v in grads_and_vars:
            with tf1.colocate_with(v):      # the gradient reaches the ps once, already scaled
                scaled.append((None if g is None else g * lr, v))
        momentum = tf1.train.MomentumOptimizer(1.0, self.state['momentum'])
        if self.sync:
            self.opt = tf1.train.SyncReplicasOptimizer(momentum, replicas_to_aggregate=self.n,
                                                       total_num_replicas=self.n)
            return self.opt.apply_gradients(scaled, global_step)    # its value: the new step
        with tf.control_dependencies([momentum.apply_gradients(scaled, global_step)]):
            return global_step.read_value()

    def run(self):
        with quiet_stderr():
            sess = self.sess = tf1.Session(self.server.target, graph=self.g.graph,
                                           config=self.config)
        if self.chief and len(sess.run(self.uninitialized)):    # else a run going: join it
            self.begin(self.prev)
        while len(sess.run(self.uninitialized)):        # a worker started again rejoins
            time.sleep(0.5)
        if self.sync:
            sess.run(self.opt.chief_init_op if self.chief else self.opt.local_step_init_op)
            if self.chief:
                coord = tf1.train.Coordinator()
                self.opt.get_chief_queue_runner().create_threads(sess, coord=coord, daemon=True,
                                                                 start=True)
        self.advance(int(sess.run(self.g.global_step)))
        print(f"worker {self.task}{' (chief)' if self.chief else ''}: {self.cfg.model}, towers on "
              f"{', '.join(self.placement.towers)}, {'sync' if self.sync else 'async'} over "
              f"{self.n} workers, batch {self.batch} per worker, step "
              f"{self.state['global_step']} of {self.last_step}", flush=True)
        try:
            self.train()        # until the global step it gets back reaches the last step
        except Diverged as d:
            # nothing saved (the last checkpoint is the last good one); done and goodbye said
            self.diverged(d)
            if self.sync:   # a token this worker took may be one another worker waits on
                sess.run(self.extra_tokens)
            sess.run([self.say_done, self.say_bye])
            self.close()
            return 3
        # a worker still blocked on a sync token (another took two) gets one carrying the
        # final step and stops too, so nobody waits for an update that will never come
        sess.run(self.say_done)
        while sess.run(self.n_done) < self.n:
            if self.sync:
                sess.run(self.extra_tokens)
            time.sleep(0.1)
        if self.chief:      # every worker has stopped: the step saved is the last one
            if self.sync:
                coord.request_stop()
            self.advance(int(sess.run(self.g.global_step)))
            print(f'chief: saved {self.save()}', flush=True)
        sess.run(self.say_bye)
        print(f'worker {self.task}: done', flush=True)
        self.close()
        return 0
