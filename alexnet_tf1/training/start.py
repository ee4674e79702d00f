"""What every run starts from, on one machine (trainer.py) or many (cluster.py): the data, the
options (options.py: flags over the preset), the train dir, the run's state (fresh or resumed),
the model config and the devices; and what both stop on (Diverged, finite_check)."""
import os

from alexnet_tf1.training import checkpoints as ckpt_mod, objective

from alexnet_tf1 import ROOT, devices, models, options

from alexnet_tf1.weights import importers, imagenet
from alexnet_tf1.config import ModelConfig, defaults_for
from alexnet_tf1.data.reader import open_prepared
from alexnet_tf1.errors import UserError
from alexnet_tf1.training.schedule import Schedule
from alexnet_tf1.tf_compat import tf, tf1


PROJECT_ROOT = ROOT


def default_train_dir(model):
    return os.path.join(PROJECT_ROOT, 'checkpoints', model)


class TrainError(UserError):
    """A problem the user can fix; printed as one line."""


def open_data(data_dir, input_size=None):
    """The prepared data; without data_dir the built-in sample set, stored large enough for
    `input_size` (imagenet.stored_size: 256, or 342 for 299 px crops)."""
    if data_dir:
        return open_prepared(data_dir)
    from alexnet_tf1.data.sample import ensure_sample
    size = imagenet.stored_size(input_size or 227)
    return open_prepared(ensure_sample(os.path.join(PROJECT_ROOT, 'data'), size))


def _fresh_state(opts, prepared):
    cfg = defaults_for(opts.model, num_classes=prepared.num_classes,
                       channels=int(prepared.manifest.get('channels', 3)),
                       **options.kept_in('config', opts))
    if opts.init_from:
        cfg = importers.published_config(cfg)       # bvlc_alexnet's LRN goes with its weights
    sched = Schedule(**options.kept_in('schedule', opts), epochs=opts.epochs)
    return {**options.kept_in('state', opts),
            'model': cfg.model, 'config': cfg.to_dict(), 'global_step': 0, 'epoch': 0,
            'batch_in_epoch': 0, 'schedule': sched.state(), 'history': [],
            'data_dir': os.path.abspath(prepared.path), 'dataset': prepared.dataset,
            # published weights take the mean they were trained with, also when fine-tuned
            'input_mean': (opts.mean or cfg.model) if opts.init_from
            and not importers.is_checkpoint(opts.init_from) else None}


def _set_aside(train_dir):
    """--restart keeps the old run: it is renamed, never deleted."""
    n = 1
    while os.path.exists(f'{train_dir}.old-{n}'):
        n += 1
    os.rename(train_dir, f'{train_dir}.old-{n}')
    return f'{train_dir}.old-{n}'


def step_of(state):
    """The run's update (objective.Step) from its state."""
    return objective.Step(**options.handed('step', state))


def setup(given, restart=True):
    """Data, options, train dir, the run's state (resumed from its newest checkpoint), its
    model config and the devices --gpus gives it. given: the flags the user gave, a dict."""
    prepared = open_data(given.get('data_dir'))
    opts = options.resolve(given, prepared.dataset)
    if opts.mean and not (opts.init_from and not importers.is_checkpoint(opts.init_from)):
        # this project's runs subtract their data's own mean image; only published weights
        # come with another one
        raise TrainError(f'--mean {opts.mean}: goes with --init-from published weights, the '
                         f'mean they were trained with')
    train_dir = opts.train_dir or default_train_dir(opts.model)
    if restart and opts.restart and os.path.isdir(train_dir) and os.listdir(train_dir):
        print(f'--restart: the previous run in {train_dir} moved to {_set_aside(train_dir)}')
    prev = ckpt_mod.latest(train_dir) if os.path.isdir(train_dir) else None
    if prev is None and os.path.isdir(train_dir) and ckpt_mod.candidates(train_dir):
        raise ckpt_mod.all_damaged(train_dir)
    if prev:
        state = ckpt_mod.read_state(prev)
        if state['model'] != opts.model:
            raise TrainError(f"{train_dir} holds a {state['model']} run, not {opts.model}; "
                             f"use --restart or another --train-dir")
        changed = options.changed(given, state)
        if changed:
            raise TrainError(f"resuming {train_dir} keeps its recipe, and "
                             + ', '.join(f'{flag} {value} (the run: {kept})'
                                         for flag, value, kept in changed)
                             + ' differ; drop them to resume (only --epochs may change), or '
                               'use --restart or another --train-dir')
        if given.get('epochs'):
            state['epochs'] = given['epochs']       # the one recipe flag a resumed run takes
        if state.get('data_dir') != os.path.abspath(prepared.path) and given.get('data_dir'):
            print(f"note: resuming a run trained on {state.get('data_dir')}, now reading "
                  f"{prepared.path}")
    else:
        state = _fresh_state(opts, prepared)
    cfg = ModelConfig.from_dict(state['config'])
    if cfg.num_classes != prepared.num_classes:
        raise TrainError(f'the run in {train_dir} has {cfg.num_classes} classes, the data in '
                         f'{prepared.path} {prepared.num_classes}; use --restart or another '
                         f'--train-dir')
    if not given.get('data_dir') and imagenet.stored_size(cfg.input_size) != int(
            prepared.manifest.get('image_size', 256)):
        prepared = open_data(None, cfg.input_size)
        state['data_dir'] = os.path.abspath(prepared.path)
    if int(prepared.manifest.get('image_size', 256)) < cfg.input_size:
        raise TrainError(f"images in {prepared.path} are {prepared.manifest.get('image_size')} px, "
                         f"smaller than the {cfg.input_size} px input")
    placement = devices.resolve(opts.gpus, towers=models.get(cfg.model).towers)
    if state.get('input_mean'):
        prepared = imagenet.with_mean(prepared, state['input_mean'])
    return prepared, opts, train_dir, prev, state, cfg, placement


class Diverged(Exception):
    """Non-finite loss or weights: the run stops (exit 3) and saves nothing; str(e) says what
    happened, diverged_line the rest."""


def diverged_line(what, train_dir):
    """The one line a diverged run ends with: what happened and where the last good weights are."""
    return (f'training diverged: {what}; stopped without saving. The last good checkpoint is '
            f"{ckpt_mod.latest(train_dir) or 'none (no checkpoint yet)'}; try a lower --lr")


def finite_check():
    """One op: whether every trainable variable of the default graph is finite (each check
    beside its variable, so no weights cross devices)."""
    checks = []
    for v in tf1.trainable_variables():
        with tf1.colocate_with(v):
            checks.append(tf.reduce_all(tf.math.is_finite(v)))
    return tf.reduce_all(tf.stack(checks))
