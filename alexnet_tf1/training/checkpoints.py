"""Saver checkpoints that carry their run's state, survive SIGKILL and keep the best.

Every checkpoint holds a string variable `run_state`: JSON with the model name, its
configuration (LRN constants included), global step, epoch, position in the epoch, the
learning-rate schedule's state and the data directory. So a checkpoint alone says how to
rebuild its graph and how to continue its run. TF writes each checkpoint under a temporary
name and renames it, and updates the `checkpoint` index file atomically; after a kill the
newest complete checkpoint is restored, and a damaged one is passed over for the one before.
"""
import glob
import json
import os
import re
import shutil

from alexnet_tf1.errors import UserError
from alexnet_tf1.io_util import atomic_write_json
from alexnet_tf1.tf_compat import tf, tf1


class CheckpointError(UserError):
    """No usable checkpoint where the user pointed; the message is one line."""


def read_state(path):
    """run_state of checkpoint prefix `path` (e.g. dir/model.ckpt-300), without a graph."""
    try:
        raw = tf.train.load_checkpoint(path).get_tensor('run_state')
        return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    # what TF's reader raises on a missing, foreign or damaged file (a short data file is an
    # IndexError), and a run_state that is not JSON
    except (tf.errors.OpError, IndexError, ValueError, OSError) as e:
        raise CheckpointError(f'{path} is not a readable alexnet_tf1 checkpoint '
                              f'({type(e).__name__})') from None


def all_damaged(train_dir):
    """The one-line error for a train dir none of whose checkpoints can be read."""
    return CheckpointError(f'every checkpoint in {train_dir} is damaged; --restart starts over '
                           f'(the old run is renamed, not deleted)')


class OtherGraph(CheckpointError):
    """A checkpoint that reads but holds other variables or shapes than the graph built for it
    (another model's layout, or a file from outside this project); the message is one line."""


def restore(saver, sess, path):
    """saver.restore, with a checkpoint of another graph's variables as OtherGraph."""
    try:
        saver.restore(sess, path)
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as e:
        text = str(getattr(e, 'message', e))
        found = re.search(r'Key (\S+) not found in checkpoint', text)
        shape = next((ln.strip() for ln in text.splitlines() if 'shape' in ln.lower()), None)
        if not (found or shape):
            raise
        what = f'it has no {found.group(1)}' if found else shape
        raise OtherGraph(f'{path} does not fit the graph built for it: {what}') from None


def candidates(train_dir):
    """Checkpoint prefixes in train_dir, newest first, whether or not the index file lists them."""
    steps = {}
    for index in glob.glob(os.path.join(train_dir, 'model.ckpt-*.index')):
        m = re.search(r'model\.ckpt-(\d+)\.index$', index)
        if m:
            steps[int(m.group(1))] = index[:-len('.index')]
    return [steps[s] for s in sorted(steps, reverse=True)]


def latest(train_dir):
    """Newest checkpoint prefix in train_dir whose run_state reads back, or None."""
    for path in candidates(train_dir):
        try:
            read_state(path)
            return path
        except CheckpointError:
            continue
    return None


def resolve(checkpoint=None, train_dir=None):
    """--checkpoint PATH (a prefix or a directory; 'best': the train dir's best/) or
    --train-dir -> a checkpoint prefix."""
    if checkpoint == 'best' and not os.path.exists(checkpoint):
        checkpoint = os.path.join(train_dir or '.', 'best')
    where = checkpoint or train_dir
    if checkpoint and not os.path.isdir(checkpoint):
        if not os.path.exists(checkpoint + '.index'):
            raise CheckpointError(f'no checkpoint at {checkpoint} (expected {checkpoint}.index)')
        return checkpoint
    path = latest(where) if where and os.path.isdir(where) else None
    if path is None and where and os.path.isdir(where) and candidates(where):
        raise all_damaged(where)
    if path is None:
        raise CheckpointError(f'no checkpoint in {where}; train first: python run_train.py '
                              f'--train-dir {where}')
    return path


def val_error(state):
    """The last validation top-1 error a run's state records, or None."""
    history = state.get('history') or []
    return history[-1].get('val_top1_error') if history else None


def better_best(path, state, train_dir, margin=0.02):
    """(best prefix, its validation error, path's) when train_dir/best holds a checkpoint whose
    validation top-1 error is lower than that of `path` (whose run state is `state`) by more
    than `margin`, else None."""
    best = latest(os.path.join(train_dir, 'best')) if train_dir else None
    if not best or os.path.basename(best) == os.path.basename(path):
        return None
    mine, theirs = val_error(state), val_error(read_state(best))
    if mine is None or theirs is None or mine - theirs <= margin:
        return None
    return best, theirs, mine


def _reason(e):
    """The system's words for a failed write: an OSError's strerror, or the '...; No space left
    on device' that TF puts after the file's name among its graph-execution lines."""
    if isinstance(e, OSError):
        return e.strerror or str(e)
    lines = [ln.strip() for ln in str(getattr(e, 'message', e)).splitlines() if ln.strip()]
    said = [ln.rsplit('; ', 1)[-1] for ln in lines if '; ' in ln and not ln.startswith('[')]
    return said[0] if said else (lines[0] if lines else type(e).__name__)


class Checkpoints:
    """Call after the graph is built and before variables are initialised."""

    def __init__(self, graph, train_dir, keep=3):
        self.train_dir, self.graph = train_dir, graph
        with graph.as_default(), tf1.device('/cpu:0'):
            self.state_var = tf1.Variable('', trainable=False, name='run_state', dtype=tf.string)
            self._state_in = tf1.placeholder(tf.string, [], 'run_state_in')
            self._assign = self.state_var.assign(self._state_in)
            self.saver = tf1.train.Saver(max_to_keep=keep, save_relative_paths=True)
            self.best_saver = tf1.train.Saver(max_to_keep=1, save_relative_paths=True)

    def save(self, sess, state, best=False):
        try:
            with self.graph.as_default():
                return self._save(sess, state, best)
        # a full disk, a quota, a lost permission: TF's Saver raises an OpError (a full disk is
        # ResourceExhaustedError), our JSON an OSError; the checkpoints before stay whole
        except (tf.errors.OpError, OSError) as e:
            raise CheckpointError(self._not_written(state, e)) from None

    def _not_written(self, state, e):
        reason = _reason(e)
        kept = latest(self.train_dir)
        there = (f'its newest checkpoint is step {read_state(kept)["global_step"]}' if kept
                 else 'nothing was saved there yet')
        return (f"cannot save step {state['global_step']} in {self.train_dir} ({reason}); "
                f"{there}: make room and run the same command to resume")

    def _save(self, sess, state, best):
        os.makedirs(self.train_dir, exist_ok=True)
        sess.run(self._assign, {self._state_in: json.dumps(state)})
        path = self.saver.save(sess, os.path.join(self.train_dir, 'model.ckpt'),
                               global_step=state['global_step'], write_meta_graph=False)
        atomic_write_json(os.path.join(self.train_dir, 'run.json'), dict(state, checkpoint=path))
        if best:
            best_dir = os.path.join(self.train_dir, 'best')
            self.best_saver.save(sess, os.path.join(best_dir, 'model.ckpt'),
                                 global_step=state['global_step'], write_meta_graph=False)
            atomic_write_json(os.path.join(best_dir, 'run.json'), dict(state))
        return path

    def restore_latest(self, sess):
        """Restore the newest complete checkpoint; returns (path, state). CheckpointError when
        none restores."""
        _remove_partial_saves(self.train_dir)
        for path in candidates(self.train_dir):
            try:
                state = read_state(path)
                with self.graph.as_default():
                    restore(self.saver, sess, path)
            except OtherGraph:      # readable, but not this graph's: no older one would be
                raise
            except (CheckpointError, tf.errors.OpError, ValueError, IndexError) as e:
                print(f'warning: skipping damaged checkpoint {path} ({type(e).__name__})')
                continue
            self.saver.recover_last_checkpoints(candidates(self.train_dir)[::-1])
            # the best saver keeps one: it must know the one already there to rotate it out
            self.best_saver.recover_last_checkpoints(
                candidates(os.path.join(self.train_dir, 'best'))[::-1])
            return path, state
        raise all_damaged(self.train_dir)


def _remove_partial_saves(train_dir):
    """A save killed half-way leaves only temporary files; they are never a checkpoint."""
    for tmp in glob.glob(os.path.join(train_dir, '*_temp*')) + \
            glob.glob(os.path.join(train_dir, '*.tempstate*')):
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.unlink(tmp)
