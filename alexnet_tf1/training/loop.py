"""The training loop both runs share: one machine's (trainer.py) and each worker's of a
cluster (cluster.py).

A step feeds the rate the schedule gives the run's position, stops the run on a non-finite
loss (Diverged), watches the loss (a LOSS SPIKE on the progress line, kept in the run's state
as `spikes` with the window `recent_losses`), writes TensorBoard scalars and a checkpoint
every --save-every steps, never of non-finite weights. Steps go in passes over this process's
own shuffle of the training set until the run's last epoch. One machine counts its own steps
and ends each epoch with validation, the schedule's step and best/; a cluster's global step
counts every worker's, so it says where the run is, and a worker's pass is its own.
"""
import contextlib
import sys
import time

import numpy as np

from alexnet_tf1 import options
from alexnet_tf1.training import checkpoints as ckpt_mod, graph as graph_mod

from alexnet_tf1.weights import importers, imagenet
from alexnet_tf1.data import pipeline
from alexnet_tf1.training.board import Board
from alexnet_tf1.progress import LossWatch, Progress
from alexnet_tf1.training.schedule import Schedule
from alexnet_tf1.training.start import Diverged, diverged_line, finite_check, step_of
from alexnet_tf1.tf_compat import tf1

# what a resumed run takes from the checkpoint it restored; the recipe it keeps is in setup()
RESUMED = ('global_step', 'epoch', 'batch_in_epoch', 'schedule', 'history', 'spikes',
           'recent_losses')


def run_batches(prepared, state, crop, batch, task=0, epoch=0, start=0):
    """Process `task`'s pass `epoch` over the training set from batch `start`: its shuffle,
    crops, flips and lighting drawn from the run's seed + task, so a cluster's workers see
    different batches (one machine is task 0)."""
    whole = not options.kept('crop', state)     # --no-crop: the whole picture, scaled
    return pipeline.train_batches(
        prepared, batch, crop=None if whole else crop, seed=state['seed'] + task, epoch=epoch,
        start_batch=start, resize=crop if whole else None, **options.handed('data', state))


class Loop:
    """A run's graph, checkpoints, steps and epochs; the subclass opens self.sess. task: this
    worker's index in a cluster (None: one machine), whose global step counts the steps of
    every worker, a synchronous step taking a batch from each of `workers`."""
    saves = True        # writes checkpoints and events: one machine, a cluster's chief

    def __init__(self, cfg, state, opts, prepared, placement, train_dir, task=None, workers=1):
        self.cfg, self.state, self.opts, self.prepared = cfg, state, opts, prepared
        self.placement, self.train_dir = placement, train_dir
        self.cluster, self.task = task is not None, task or 0
        # --batch-size is per replica (the paper's one model saw 128); a step takes them all
        self.batch = state['batch_size'] * len(placement.replicas)
        self.n_train = len(prepared.split('train'))
        self.steps_per_epoch = max(1, self.n_train // (self.batch * workers))
        self.last_step = state['epochs'] * self.steps_per_epoch
        self.watch = LossWatch()
        self.sess = self.board = None
        self._take_state()

    def _take_state(self):
        """The loss watch and the schedule from the run's state, fresh, read or restored."""
        state = self.state
        # the loss watch's window goes on where it was, so a resumed run flags the spikes
        # the uninterrupted one does, also in its first steps
        self.watch.recent = list(state.get('recent_losses', []))
        # the schedule is the run's, --epochs (the one recipe flag a resumed run takes) the
        # command's: it is also where a cosine reaches 0
        self.sched = Schedule.from_state(dict(state['schedule'], epochs=state['epochs']))

    def build(self, update=None, device_fn=None):
        """The graph (update: the cluster's step; device_fn: its replica_device_setter), the
        checkpoints, the events and the check that the weights are finite."""
        state = self.state
        self.g = graph_mod.build(self.cfg, self.placement, seed=state['seed'] + self.task,
                                 update=update, device_fn=device_fn, step=step_of(state),
                                 **options.handed('graph', state))
        with self.g.graph.as_default():
            with tf1.device(device_fn) if device_fn else contextlib.nullcontext():
                self.ckpt = ckpt_mod.Checkpoints(self.g.graph, self.train_dir,
                                                 keep=self.opts.keep)
                if self.saves:
                    self.board = Board(self.g, self.train_dir, hist_every=self.opts.hist_every)
            self.weights_finite = finite_check()

    def begin(self, resumed_from=None):
        """Initialised variables, then the checkpoint `resumed_from` stands for (the run going
        on from its state) or --init-from's weights."""
        state, sess = self.state, self.sess
        with self.g.graph.as_default():
            sess.run(tf1.global_variables_initializer())
        if resumed_from:
            path = self.restore()
            print(f"resuming {path}: epoch {state['epoch'] + 1}, step {state['global_step']}, "
                  f"lr {state['schedule']['lr']:g}", flush=True)
        elif self.opts.init_from:
            left = importers.load_into(sess, self.g.net, self.cfg, self.opts.init_from)
            print(f"initialised from {self.opts.init_from}"
                  + (f", input RGB minus {imagenet.describe_mean(state['input_mean'])}"
                     if state['input_mean'] else ''))
            if left:
                print(importers.describe_left(left))
        if state.get('train_layers'):
            print(f"updating only {', '.join(state['train_layers'])}; every other layer frozen")

    def restore(self):
        """The newest complete checkpoint into the session, the run going on from its state;
        returns its path."""
        path, saved = self.ckpt.restore_latest(self.sess)
        self.state.update({k: saved[k] for k in RESUMED if k in saved})
        self._take_state()
        return path

    def train(self, stop=None):
        """Steps until the run's last epoch ends (or `stop` is requested): passes over this
        process's shuffle, one machine's first from the batch its epoch is at (a cluster's
        worker starts a pass of its own)."""
        state = self.state
        epoch, start = state['epoch'], 0 if self.cluster else state['batch_in_epoch']
        while state['epoch'] < state['epochs'] and not (stop and stop.requested):
            self._pass(epoch, start, stop)
            if stop and stop.requested:
                return
            if not self.cluster:     # a cluster's pass is not the run's epoch: no validation
                self._end_epoch()
            epoch, start = epoch + 1, 0

    def _pass(self, epoch, start, stop):
        state = self.state
        batches = run_batches(self.prepared, state, self.cfg.input_size, self.batch, self.task,
                              epoch, start)
        progress = Progress(f'worker {self.task}', self.last_step, start=state['global_step'],
                            every=self.opts.print_freq) if self.cluster else \
            Progress(f"epoch {state['epoch'] + 1}/{state['epochs']}", self.steps_per_epoch,
                     start=start, every=self.opts.print_freq)
        try:
            t_wait = time.perf_counter()
            for b, (x, y) in enumerate(batches, start):
                self._step(b, x, y, progress, t_wait)
                if (stop and stop.requested) or state['epoch'] >= state['epochs']:
                    return
                t_wait = time.perf_counter()
        finally:
            batches.close()
            progress.finish()

    def _step(self, b, x, y, progress, t_wait):
        g, state, every = self.g, self.state, self.opts.save_every
        t_run = time.perf_counter()
        before, epoch = state['global_step'], state['epoch'] + 1    # the epoch this step is in
        where = f' on worker {self.task}' if self.cluster else f' (epoch {epoch})'
        lr = self.sched.rate(state['epoch'] + (state['batch_in_epoch'] + 1) / self.steps_per_epoch)
        fetch = {'step': g.train_op, 'loss': g.total_loss, 'xent': g.xent, 'top1': g.top1,
                 'top5': g.top5}
        if self.board:
            fetch.update(self.board.fetches(before))
        try:
            out = self.sess.run(fetch, {g.images: x, g.labels: y, g.lr: lr, g.training: True})
        except tf1.errors.InvalidArgumentError as e:
            if 'hist' not in fetch:     # the histogram op refuses NaN and Inf
                raise
            raise Diverged(f"non-finite values by step {before + 1}{where}: "
                           f"{e.message.splitlines()[0]}") from None
        t_done = time.perf_counter()
        # the update's value is the global step after it (a cluster's counts every worker's)
        step = int(out['step'])
        if not np.isfinite(out['loss']):
            raise Diverged(f"loss became {out['loss']} at step {step}{where}")
        self.advance(step, b, out['top1'], len(y))
        if self.board:
            self.board.write_step(out, step, lr)
        note = self._spike(out['xent'], epoch)
        progress.step(min(step, self.last_step) if self.cluster else state['batch_in_epoch'],
                      len(y), t_done - t_wait, t_run - t_wait, loss=out['loss'], lr=lr,
                      top1=out['top1'], top5=out['top5'], **note)
        if self.saves and step // every > before // every:
            self.save()

    def advance(self, step, b=None, top1=None, n=0):
        """The run's state once a step took the global step to `step`; one machine's step was
        batch `b` of its epoch, with training error `top1` on `n` images."""
        state = self.state
        state['global_step'] = step
        if self.cluster:
            # the run is where the global step says, other workers' steps included; without
            # validation only a step schedule moves (no plateau), by the run's epoch, so also
            # for epochs that other workers' steps ended
            state['epoch'], state['batch_in_epoch'] = divmod(step, self.steps_per_epoch)
            s = self.sched
            while s.kind == 'step' and s.drops < s.max_drops and \
                    state['epoch'] >= s.step_epochs * (s.drops + 1):
                s.end_epoch(s.step_epochs * (s.drops + 1) - 1, None)
            return
        state['batch_in_epoch'] = b + 1
        seen = state.setdefault('epoch_train', [0.0, 0])    # kept by a resumed run
        seen[0] += float(top1) * n
        seen[1] += n

    def _spike(self, xent, epoch):
        """{'note': ...} for the progress line when the loss jumps; recorded in the run's state
        (state['spikes'], saved with every checkpoint) so a run that went wrong says so."""
        level = self.watch.check(xent)
        state = self.state
        state['recent_losses'] = self.watch.recent
        if level is None:
            return {}
        state.setdefault('spikes', []).append(
            {'step': state['global_step'], 'epoch': epoch,
             'cross_entropy': round(float(xent), 4), 'recent_level': round(level, 4)})
        return {'note': f'LOSS SPIKE: cross-entropy {xent:.3f}, {xent / level:.1f}x its recent '
                        f'level {level:.3f}'}

    def _end_epoch(self):
        """One machine's epoch end: validation, the schedule, the history, events, the best."""
        state, sched = self.state, self.sched
        top1, top5 = self.validate()
        improved = top1 < sched.best_error
        dropped = sched.end_epoch(state['epoch'], top1)
        wrong, seen = state.pop('epoch_train', None) or (0.0, 0)
        state['history'].append({'epoch': state['epoch'] + 1, 'step': state['global_step'],
                                 'val_top1_error': top1, 'val_top5_error': top5,
                                 # the paper's Figure 1 measure: the epoch's training batches,
                                 # augmented and with dropout, as they were trained on
                                 'train_top1_error': wrong / seen if seen else None})
        print(f"epoch {state['epoch'] + 1}: validation top-1 error {top1:.1%}, top-5 {top5:.1%}"
              + (f"; lr now {sched.lr:g}" if dropped else ''))
        self.board.write_epoch(self.sess, state['global_step'], top1, top5)
        if self.board.colour and len(self.board.colour) > 1:
            state['history'][-1]['conv1_colour_share'] = self.board.colour
            print('conv1 colour share (Figure 3; 0 = grey, 2/3 = one channel): ' + ', '.join(
                f'tower {t} {v:.3f}' for t, v in enumerate(self.board.colour)))
        state['epoch'] += 1
        state['batch_in_epoch'] = 0
        self.save(best=improved)

    def validate(self):
        """Centre-crop top-1/top-5 error on the val split (train split if there is none)."""
        g = self.g
        split = 'val' if self.prepared.manifest['splits'].get('val', {}).get('count') else 'train'
        wrong1 = wrong5 = n = 0
        for x, y in pipeline.eval_batches(self.prepared, self.batch,
                                          crop=self.cfg.input_size, mode='center', split=split):
            e1, e5 = self.sess.run([g.top1, g.top5], {g.images: x, g.labels: y})
            wrong1, wrong5, n = wrong1 + e1 * len(y), wrong5 + e5 * len(y), n + len(y)
        return float(wrong1 / n), float(wrong5 / n)

    def save(self, best=False):
        if not self.sess.run(self.weights_finite):    # never overwrite good with diverged
            raise Diverged(f"weights became infinite or NaN by step {self.state['global_step']}")
        self.state['schedule'] = self.sched.state()
        return self.ckpt.save(self.sess, self.state, best=best)

    def diverged(self, what):
        """Print the line a diverged run ends with (it then exits 3)."""
        print(f'error: {diverged_line(what, self.train_dir)}', file=sys.stderr, flush=True)

    def close(self):
        """Events flushed, the session let go."""
        if self.board:
            self.board.close()
        self.sess.close()
