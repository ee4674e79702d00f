"""One run's options as a typed object, built once: the preset for the model and data set,
then every flag the user gave over it, then checked. Both training loops read it; nothing
below them sees argparse."""
from dataclasses import dataclass, fields

from . import presets
from .errors import UserError


class OptionError(UserError):
    """A flag value out of its range; one line."""


@dataclass(frozen=True)
class Options:
    model: str = 'alexnet'
    preset: str = ''
    data_dir: str = None
    train_dir: str = None
    gpus: str = 'auto'
    # the recipe (presets.py), kept by a resumed run
    batch_size: int = None
    epochs: int = None
    lr: float = None
    momentum: float = None
    weight_decay: float = None
    lr_schedule: str = None
    warmup_epochs: float = None
    patience: int = None
    step_epochs: int = None
    lr_factor: float = None
    init_bias: float = None
    init: str = None
    lighting: float = None
    flip: bool = None
    shift: int = None
    crop: bool = None
    seed: int = 0
    optimizer: str = None
    label_smoothing: float = None
    clip_norm: float = None
    input_size: int = None
    bn_decay: float = None
    # the paper's ablations, model switches kept in the run's config (models.SWITCHES)
    use_lrn: bool = None
    pool: str = None
    activation: str = None
    # starting point and fine-tuning
    init_from: str = None
    train_layers: list = None
    lr_mult: dict = None
    mean: str = None
    # bookkeeping
    restart: bool = False
    save_every: int = None
    keep: int = 3
    print_freq: int = None
    hist_every: int = 100
    # cluster (cluster.py)
    ps_hosts: str = None
    worker_hosts: str = None
    job_name: str = None
    task_index: int = 0
    async_updates: bool = False


# (option, lowest allowed, bound it must stay below or None)
LIMITS = (('batch_size', 1, None), ('epochs', 1, None), ('lr', 0, None), ('momentum', 0, 1),
          ('weight_decay', 0, None), ('patience', 1, None), ('step_epochs', 1, None),
          ('lr_factor', 0, None), ('warmup_epochs', 0, None), ('lighting', 0, None),
          ('shift', 0, None), ('save_every', 1, None), ('keep', 1, None), ('print_freq', 1, None),
          ('input_size', 1, None), ('bn_decay', 0, 1), ('label_smoothing', 0, 1),
          ('clip_norm', 0, None))


def resolve(args, dataset):
    """Options from the preset for (model, dataset) (or --preset), with every flag given
    (not None) over it. args: an argparse Namespace or a dict."""
    given = {k: v for k, v in (vars(args) if not isinstance(args, dict) else args).items()
             if v is not None}
    model = given.get('model', Options.model)
    name = given.get('preset') or presets.choose(model, dataset)
    values = {**presets.PRESETS[name], **given, 'preset': name}
    known = {f.name for f in fields(Options)}
    unknown = sorted(set(values) - known)
    if unknown:             # a flag or preset key without a field is a bug, not the user's
        raise TypeError(f'options without a field in Options: {unknown}')
    opts = Options(**values)
    check_switches(opts.model, {k: getattr(opts, k) for k in SWITCH_FLAGS})
    if given.get('init') == 'glorot' and not opts.model.startswith(GLOROT_MODELS):
        raise OptionError(f'--init glorot: {opts.model} is built with its paper\'s '
                          f"initialisation only (glorot is for {', '.join(GLOROT_MODELS)})")
    for key, low, high in LIMITS:
        v = getattr(opts, key)
        if v is not None and not (low <= v and (high is None or v < high)):
            raise OptionError(f"--{key.replace('_', '-')} {v}: must be >= {low}"
                              + (f' and < {high}' if high is not None else ''))
    return opts


# the models whose builders take config.init == 'glorot' (VGG section 3.1, Keras' Inceptions)
GLOROT_MODELS = ('vgg', 'googlenet', 'inception', 'cifar4')
SWITCH_FLAGS = {'use_lrn': lambda v: '--lrn' if v else '--no-lrn', 'pool': '--pool {}'.format,
                'activation': '--activation {}'.format}


def check_switches(model, values):
    """OptionError (one line) for a switch given to a model without the layers it changes."""
    from .models import SWITCHES
    for key, value in values.items():
        if value is not None and model not in SWITCHES[key]:
            raise OptionError(f'{SWITCH_FLAGS[key](value)}: {model} has no such layers '
                              f"(the switch is for {', '.join(SWITCHES[key])})")
