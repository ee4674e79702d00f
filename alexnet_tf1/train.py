"""The training loop: the paper's recipe in a tf.compat.v1 Session, resumable at any step."""
import signal
import sys
import time

import numpy as np

from . import checkpoints as ckpt_mod, graph as graph_mod, importers, published
from .data import pipeline
from .progress import LossWatch, Progress
from .run_setup import Diverged, diverged_line, finite_check, setup, step_of
from .schedule import Schedule
from .tboard import Board
from .tf_compat import session, tf1


def run(args):
    """The single-machine loop (run_train.py without --job-name)."""
    prepared, opts, train_dir, prev, state, cfg, placement = setup(args)
    return Trainer(cfg, state, opts, prepared, placement, train_dir).loop(resumed_from=prev)


class Trainer:
    def __init__(self, cfg, state, opts, prepared, placement, train_dir):
        self.cfg, self.state, self.opts, self.prepared = cfg, state, opts, prepared
        self.train_dir = train_dir
        self.g = graph_mod.build(cfg, placement, state['weight_decay'], state['momentum'],
                                 seed=state['seed'], train_layers=state.get('train_layers'),
                                 lr_mult=state.get('lr_mult'), step=step_of(state))
        self.ckpt = ckpt_mod.Checkpoints(self.g.graph, train_dir, keep=opts.keep)
        self.board = Board(self.g, train_dir, hist_every=opts.hist_every)
        self.sess = session(self.g.graph, placement.session_config())
        self.placement = placement
        self.watch = LossWatch()
        # --batch-size is per replica (the paper's one model saw 128); a step takes them all
        self.batch = state['batch_size'] * len(placement.replicas)
        with self.g.graph.as_default():
            self.weights_finite = finite_check()

    def loop(self, resumed_from=None):
        g, sess, state, opts = self.g, self.sess, self.state, self.opts
        with g.graph.as_default():
            sess.run(tf1.global_variables_initializer())
        if resumed_from:
            path, saved = self.ckpt.restore_latest(sess)
            state.update({k: saved[k] for k in ('global_step', 'epoch', 'batch_in_epoch',
                                                 'schedule', 'history', 'spikes', 'recent_losses')
                          if k in saved})
            # the schedule comes from the checkpoint restored, --epochs (the one recipe flag a
            # resumed run takes) from the command: it is also where a cosine reaches 0
            state['schedule']['epochs'] = state['epochs']
            # the loss watch's window goes on where it was, so a resumed run flags the spikes
            # the uninterrupted one does, also in its first steps
            self.watch.recent = list(state.get('recent_losses', []))
            print(f"resuming {path}: epoch {state['epoch'] + 1}, step {state['global_step']}, "
                  f"lr {state['schedule']['lr']:g}")
        elif self.opts.init_from:
            left = importers.load_into(sess, g.net, self.cfg, self.opts.init_from)
            print(f"initialised from {self.opts.init_from}"
                  + (f", input RGB minus {published.describe_mean(state['input_mean'])}"
                     if state['input_mean'] else ''))
            if left:
                print(importers.describe_left(left))
        if state.get('train_layers'):
            print(f"updating only {', '.join(state['train_layers'])}; every other layer frozen")
        sched = Schedule.from_state(state['schedule'])
        n_train = len(self.prepared.split('train'))
        steps_per_epoch = max(1, n_train // self.batch)
        replicas = self.placement.replicas
        where = ' + '.join(', '.join(towers) for towers in replicas)
        batch = (f"batch {state['batch_size']}" if len(replicas) == 1 else
                 f"{len(replicas)} replicas x batch {state['batch_size']} = effective batch "
                 f"{self.batch}")
        print(f"training {self.cfg.model} on {self.prepared.dataset} ({n_train} images, "
              f"{self.cfg.num_classes} classes), towers on {where}, "
              f"{batch}, {state['epochs']} epochs, preset {opts.preset}, "
              f"train dir {self.train_dir}")
        stop = _StopRequest()
        try:
            try:
                while state['epoch'] < state['epochs'] and not stop.requested:
                    self._epoch(sched, steps_per_epoch, stop)
                    if stop.requested:
                        break
                    self._end_epoch(sched)
            finally:
                stop.restore()
            if stop.requested:
                path = self._save(sched)
                print(f'interrupted: saved {path}; run the same command again to resume')
                return 130
        except Diverged as d:
            print(f'error: {diverged_line(d, self.train_dir)}', file=sys.stderr)
            return 3
        finally:        # whatever the exit, the events are flushed and the session let go
            self.board.close()
            self.sess.close()
        print(f"done: {state['epoch']} epochs, step {state['global_step']}; checkpoints in "
              f"{self.train_dir}")
        return 0

    def _epoch(self, sched, steps_per_epoch, stop):
        g, state = self.g, self.state
        start = state['batch_in_epoch']
        whole = state.get('crop', True) is False       # --no-crop: the whole picture, scaled
        batches = pipeline.train_batches(
            self.prepared, self.batch, crop=None if whole else self.cfg.input_size,
            seed=state['seed'], epoch=state['epoch'], lighting_std=state['lighting'],
            start_batch=start, flip=state.get('flip', True), shift=state.get('shift', 0),
            resize=self.cfg.input_size if whole else None)
        progress = Progress(f"epoch {state['epoch'] + 1}/{state['epochs']}", steps_per_epoch,
                            start=start, every=self.opts.print_freq)
        try:
            t_wait = time.perf_counter()
            for b, (x, y) in enumerate(batches, start):
                t_run = time.perf_counter()
                lr = sched.rate(state['epoch'] + (b + 1) / steps_per_epoch)
                fetch = {'loss': g.total_loss, 'xent': g.xent, 'top1': g.top1, 'top5': g.top5,
                         'op': g.train_op}
                fetch.update(self.board.fetches(state['global_step']))
                try:
                    out = self.sess.run(fetch, {g.images: x, g.labels: y, g.lr: lr,
                                                g.training: True})
                except tf1.errors.InvalidArgumentError as e:
                    if 'hist' not in fetch:     # the histogram op refuses NaN and Inf
                        raise
                    raise Diverged(
                        f"non-finite values by step {state['global_step'] + 1} (epoch "
                        f"{state['epoch'] + 1}; {e.message.splitlines()[0]})") from None
                t_done = time.perf_counter()
                if not np.isfinite(out['loss']):
                    raise Diverged(f"loss became {out['loss']} at step "
                                   f"{state['global_step'] + 1} (epoch {state['epoch'] + 1})")
                state['global_step'] += 1
                state['batch_in_epoch'] = b + 1
                seen = state.setdefault('epoch_train', [0.0, 0])    # kept by a resumed run
                seen[0] += float(out['top1']) * len(y)
                seen[1] += len(y)
                self.board.write_step(out, state['global_step'], lr)
                note = self._spike(out['xent'])
                progress.step(b + 1, len(y), t_done - t_wait, t_run - t_wait, loss=out['loss'],
                              lr=lr, top1=out['top1'], top5=out['top5'], **note)
                if state['global_step'] % self.opts.save_every == 0:
                    self._save(sched)
                if stop.requested:
                    return
                t_wait = time.perf_counter()
        finally:
            batches.close()
            progress.finish()

    def _spike(self, xent):
        """{'note': ...} for the progress line when the loss jumps; recorded in the run's state
        (state['spikes'], saved with every checkpoint) so a run that went wrong says so."""
        level = self.watch.check(xent)
        state = self.state
        state['recent_losses'] = self.watch.recent
        if level is None:
            return {}
        state.setdefault('spikes', []).append(
            {'step': state['global_step'], 'epoch': state['epoch'] + 1,
             'cross_entropy': round(float(xent), 4), 'recent_level': round(level, 4)})
        return {'note': f'LOSS SPIKE: cross-entropy {xent:.3f}, {xent / level:.1f}x its recent '
                        f'level {level:.3f}'}

    def _end_epoch(self, sched):
        state = self.state
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
        self._save(sched, best=improved)

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

    def _save(self, sched, best=False):
        if not self.sess.run(self.weights_finite):    # never overwrite good with diverged
            raise Diverged(f"weights became infinite or NaN by step {self.state['global_step']}")
        self.state['schedule'] = sched.state()
        return self.ckpt.save(self.sess, self.state, best=best)


class _StopRequest:
    """Ctrl-C or SIGTERM finish the current step and save, instead of losing it."""

    def __init__(self):
        self.requested = False
        self._old = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handler(self, signum, frame):
        if self.requested:          # a second Ctrl-C means now
            raise KeyboardInterrupt
        self.requested = True
        print('\nstopping after this step (Ctrl-C again to stop at once)...', file=sys.stderr)

    def restore(self):
        for s, h in self._old.items():
            signal.signal(s, h)
