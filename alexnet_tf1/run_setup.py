"""What both training loops (train.py on one machine, cluster.py on many) start from: the
data, the options (flags over the preset), the train dir, the run's state (fresh or resumed),
the model config and the devices; and what both stop on (Diverged, finite_check)."""
import math
import os

from . import checkpoints as ckpt_mod, devices, importers, models, objective, options, published
from .config import ModelConfig, defaults_for
from .data.prepared import open_prepared
from .errors import UserError
from .schedule import Schedule
from .tf_compat import tf, tf1


PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_train_dir(model):
    return os.path.join(PROJECT_ROOT, 'checkpoints', model)


class TrainError(UserError):
    """A problem the user can fix; printed as one line."""


def open_data(data_dir, input_size=None):
    """The prepared data; without data_dir the built-in sample set, stored large enough for
    `input_size` (published.stored_size: 256, or 342 for 299 px crops)."""
    if data_dir:
        return open_prepared(data_dir)
    from .data.sample import ensure_sample
    size = published.stored_size(input_size or 227)
    return open_prepared(ensure_sample(os.path.join(PROJECT_ROOT, 'data'), size))


def _fresh_state(opts, prepared):
    changes = dict(num_classes=prepared.num_classes,
                   channels=int(prepared.manifest.get('channels', 3)))
    if opts.input_size:
        changes['input_size'] = opts.input_size
    for key in ('init_bias', 'init', 'bn_decay', 'use_lrn', 'pool', 'activation'):
        if getattr(opts, key) is not None:
            changes[key] = getattr(opts, key)
    cfg = defaults_for(opts.model, **changes)
    if opts.init_from:
        cfg = importers.published_config(cfg)       # bvlc_alexnet's LRN goes with its weights
    sched = Schedule(kind=opts.lr_schedule, lr=opts.lr, factor=opts.lr_factor,
                     patience=opts.patience,
                     step_epochs=opts.step_epochs, warmup_epochs=opts.warmup_epochs,
                     epochs=opts.epochs)
    return {'model': cfg.model, 'config': cfg.to_dict(), 'global_step': 0, 'epoch': 0,
            'batch_in_epoch': 0, 'schedule': sched.state(), 'seed': opts.seed,
            'batch_size': opts.batch_size, 'momentum': opts.momentum,
            'weight_decay': opts.weight_decay, 'epochs': opts.epochs,
            'lighting': opts.lighting, 'flip': opts.flip, 'shift': opts.shift,
            'crop': opts.crop,
            'data_dir': os.path.abspath(prepared.path),
            'dataset': prepared.dataset, 'history': [], 'init_from': opts.init_from,
            'train_layers': opts.train_layers, 'lr_mult': opts.lr_mult,
            'optimizer': opts.optimizer, 'label_smoothing': opts.label_smoothing,
            'clip_norm': opts.clip_norm,
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


# what a resumed run keeps, flag -> its value in the run's state (the same command resumes)
RECIPE = {
    'batch_size': lambda s: s['batch_size'], 'momentum': lambda s: s['momentum'],
    'weight_decay': lambda s: s['weight_decay'], 'lighting': lambda s: s['lighting'],
    'flip': lambda s: s.get('flip', True), 'shift': lambda s: s.get('shift', 0),
    'crop': lambda s: s.get('crop', True),
    'seed': lambda s: s['seed'],
    'lr': lambda s: s['schedule']['lr'] / s['schedule']['factor'] ** s['schedule']['drops'],
    'lr_schedule': lambda s: s['schedule']['kind'],
    'patience': lambda s: s['schedule']['patience'],
    'step_epochs': lambda s: s['schedule']['step_epochs'],
    'lr_factor': lambda s: s['schedule']['factor'],
    'warmup_epochs': lambda s: s['schedule'].get('warmup_epochs', 0),
    'init_bias': lambda s: s['config']['init_bias'], 'init': lambda s: s['config']['init'],
    'input_size': lambda s: s['config']['input_size'],
    'bn_decay': lambda s: s['config'].get('bn_decay', 0.99),
    'use_lrn': lambda s: s['config'].get('use_lrn', True),
    'pool': lambda s: s['config'].get('pool', '3x3'),
    'activation': lambda s: s['config'].get('activation', 'relu'),
    'init_from': lambda s: s.get('init_from'), 'train_layers': lambda s: s.get('train_layers'),
    'lr_mult': lambda s: s.get('lr_mult'),
    'optimizer': lambda s: s.get('optimizer', 'momentum'),
    'label_smoothing': lambda s: s.get('label_smoothing', 0.0),
    'clip_norm': lambda s: s.get('clip_norm'),
}


def step_of(state):
    """The run's update (objective.Step) from its state; runs older than the options: momentum."""
    return objective.Step(optimizer=state.get('optimizer') or 'momentum',
                          momentum=state['momentum'],
                          label_smoothing=state.get('label_smoothing') or 0.0,
                          clip_norm=state.get('clip_norm'))


def changed_recipe(args, state):
    """[(flag, given, kept)] for the flags given that differ from the run being resumed."""
    out = []
    for flag, kept_of in RECIPE.items():
        given = getattr(args, flag, None)
        if given is None:
            continue
        kept = kept_of(state)
        same = (math.isclose(given, kept, rel_tol=1e-9) if isinstance(given, float)
                and isinstance(kept, (int, float)) else given == kept)
        if not same:
            out.append((flag, given, kept))
    return out


def setup(args, restart=True):
    """Data, options, train dir, the run's state (resumed from its newest checkpoint), its
    model config and the devices --gpus gives it."""
    prepared = open_data(args.data_dir)
    opts = options.resolve(args, prepared.dataset)
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
        changed = changed_recipe(args, state)
        if changed:
            raise TrainError(f"resuming {train_dir} keeps its recipe, and "
                             + ', '.join(f'--{f.replace("_", "-")} {given} (the run: {kept})'
                                         for f, given, kept in changed)
                             + ' differ; drop them to resume (only --epochs may change), or '
                               'use --restart or another --train-dir')
        if args.epochs:
            state['epochs'] = args.epochs       # the one recipe flag a resumed run takes
            state['schedule']['epochs'] = args.epochs       # where a cosine ends
        if state.get('data_dir') != os.path.abspath(prepared.path) and args.data_dir:
            print(f"note: resuming a run trained on {state.get('data_dir')}, now reading "
                  f"{prepared.path}")
    else:
        state = _fresh_state(opts, prepared)
    cfg = ModelConfig.from_dict(state['config'])
    if cfg.num_classes != prepared.num_classes:
        raise TrainError(f'the run in {train_dir} has {cfg.num_classes} classes, the data in '
                         f'{prepared.path} {prepared.num_classes}; use --restart or another '
                         f'--train-dir')
    if not args.data_dir and published.stored_size(cfg.input_size) != int(
            prepared.manifest.get('image_size', 256)):
        prepared = open_data(None, cfg.input_size)
        state['data_dir'] = os.path.abspath(prepared.path)
    if int(prepared.manifest.get('image_size', 256)) < cfg.input_size:
        raise TrainError(f"images in {prepared.path} are {prepared.manifest.get('image_size')} px, "
                         f"smaller than the {cfg.input_size} px input")
    placement = devices.resolve(opts.gpus, towers=models.get(cfg.model).TOWERS)
    if state.get('input_mean'):
        prepared = published.with_mean(prepared, state['input_mean'])
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
