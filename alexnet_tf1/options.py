"""Every option of a training run, declared once.

OPTIONS is the table: an option's name, type, range, default (a preset may set its own, see
presets.py), help, and where a run keeps it. From it come run_train.py's flags (add_flags),
the typed `Options` one run reads (resolve: the preset, every flag given over it, the range
checks), what a resumed run must keep (changed), the run's saved state (fresh_state) and what
each consumer is handed from that state (handed). Nothing below the scripts sees argparse:
they pass `given`, the flags the user gave, as a dict.

`kept` says where a run keeps an option, so that the same command resumes it:
'state' (a key of the run's state), 'schedule' (the learning-rate schedule's state), 'config'
(the model's ModelConfig), or None (not part of the recipe: paths, devices, bookkeeping).
`to` names the consumer the kept value is handed to and its argument there: 'data'
(pipeline.train_batches), 'step' (objective.Step), 'graph' (graph.build).
"""
import argparse
import math
from dataclasses import dataclass, field, make_dataclass

from alexnet_tf1 import presets
from alexnet_tf1.errors import UserError


class OptionError(UserError):
    """A flag value out of its range; one line."""


def layer_names(text):
    names = [n.strip() for n in text.split(',') if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError('give layer names, e.g. fc7,fc8')
    return names


def layer_mults(text):
    out = {}
    for item in layer_names(text):
        layer, _, value = item.partition('=')
        try:
            w, _, b = value.partition(':')
            out[layer] = [float(w), float(b or w)]
        except ValueError:
            raise argparse.ArgumentTypeError(f'{item!r}: expected LAYER=MULT or '
                                             f'LAYER=MULT:BIAS_MULT, e.g. fc8=10:20') from None
    return out


@dataclass(frozen=True)
class Opt:
    name: str
    type: object = str          # int, float, str, bool (--x / --no-x), or a parse function
    help: str = ''
    default: object = None      # the value when neither the preset nor a flag sets it
    choices: tuple = None
    low: float = None           # allowed: low <= v (< below)
    below: float = None
    kept: str = None            # 'state' | 'schedule' | 'config' | None (module docstring)
    key: str = None             # its name where it is kept, when not `name`
    old: object = None          # what a run saved before the option existed had
    to: tuple = ()              # (consumer, argument name)
    flag: str = None            # the command-line spelling, when not --name; '' for none
    metavar: str = None
    group: str = None
    hidden: bool = False
    typing: type = field(default=None, compare=False)

    @property
    def where(self):
        return self.key or self.name

    @property
    def spelling(self):
        return self.flag if self.flag is not None else '--' + self.name.replace('_', '-')


_ABL = "ablations"
_CLU = "cluster"
OPTIONS = (
    Opt('model', help='the network to train', default='alexnet', metavar='MODEL'),
    Opt('data_dir', help='a prepared directory (python -m alexnet_tf1.data.prepare)'),
    Opt('gpus', help="'auto', 'cpu', 'cpu:N' (N logical CPUs) or GPU ids like '0,1'; more "
        "devices than towers = data-parallel replicas, --batch-size each", default='auto'),
    Opt('preset', help='recipe (default: by data set)', choices=tuple(sorted(presets.PRESETS)),
        default=''),
    # the recipe
    Opt('batch_size', int, 'per replica (the papers\' batch)', low=1, kept='state'),
    Opt('epochs', int, 'the run\'s length; the one recipe flag a resumed run takes', low=1,
        kept='state'),
    Opt('lr', float, 'initial learning rate (paper 0.01)', low=0, kept='schedule'),
    Opt('momentum', float, low=0, below=1, kept='state', to=(('step', 'momentum'),)),
    Opt('weight_decay', float, low=0, kept='state', to=(('graph', 'weight_decay'),)),
    Opt('lr_schedule', str, 'plateau: /10 when val error stops improving (x3, the paper); '
        'step: /10 every --step-epochs; cosine: down to 0 at the last epoch; exponential: '
        'x --lr-factor every --step-epochs (Inception)',
        choices=('plateau', 'step', 'cosine', 'exponential'), kept='schedule', key='kind'),
    Opt('lr_factor', float, 'what plateau / step multiply the rate by (0.1), or exponential '
        '(0.94)', low=0, kept='schedule', key='factor'),
    Opt('warmup_epochs', float, 'raise the rate linearly from 0 over this many epochs (Goyal '
        'et al.)', low=0, kept='schedule', old=0),
    Opt('optimizer', str, "momentum: the paper's rule (default); rmsprop: decay 0.9, momentum "
        '0.9, epsilon 1.0 (the Inception v3 recipe)', choices=('momentum', 'rmsprop'),
        kept='state', old='momentum', to=(('step', 'optimizer'),)),
    Opt('label_smoothing', float, 'targets 1 - S on the label, S / classes on each class (v3: '
        '0.1)', low=0, below=1, kept='state', old=0.0, to=(('step', 'label_smoothing'),),
        metavar='S'),
    Opt('clip_norm', float, 'rescale the gradients to a global norm of at most N (v3: 2.0)',
        low=0, kept='state', to=(('step', 'clip_norm'),), metavar='N'),
    Opt('bn_decay', float, "batch norm's moving averages: m <- D m + (1 - D) batch value "
        "(Keras' 0.99; shorter runs need less)", low=0, below=1, kept='config', old=0.99,
        metavar='D'),
    Opt('patience', int, 'plateau: epochs without improvement before /10', low=1,
        kept='schedule'),
    Opt('step_epochs', int, 'step / exponential: epochs between drops', low=1, kept='schedule'),
    Opt('init_bias', float, 'AlexNet: the biases the paper sets to 1 - 1 (paper) or 0.1 (Caffe)',
        kept='config'),
    Opt('init', str, "weights: the paper's rule, or Glorot-uniform (VGG's alternative)",
        choices=('paper', 'glorot'), kept='config'),
    Opt('lighting', float, 'PCA lighting std (paper 0.1; 0 turns it off)', low=0, kept='state',
        to=(('data', 'lighting_std'),)),
    Opt('flip', bool, 'mirror training images with p = 0.5 (the ImageNet papers; --no-flip for '
        'digits, as LeNet-5)', kept='state', old=True, to=(('data', 'flip'),)),
    Opt('crop', bool, 'random crops of the stored images (default); --no-crop trains on the '
        "whole picture scaled to the input size (the AlexNet paper's overfitting case, section "
        '4.1)', kept='state', old=True),
    Opt('use_lrn', bool, '--no-lrn: no local response normalisation (alexnet, caffenet, '
        'alexnet-one-tower, googlenet)', kept='config', old=True, flag='--lrn', group=_ABL),
    Opt('pool', str, "max pooling: '3x3' stride 2 (overlapping, the paper's) or '2x2' stride 2 "
        '(s = z = 2)', choices=('3x3', '2x2'), kept='config', old='3x3', group=_ABL),
    Opt('activation', str, 'the hidden neurons (Figure 1; the AlexNets and cifar4)',
        choices=('relu', 'tanh'), kept='config', old='relu', group=_ABL),
    Opt('shift', int, 'move each training image by up to N pixels each way (for inputs as large '
        'as the crop, e.g. digits; 0: never)', low=0, kept='state', old=0,
        to=(('data', 'shift'),)),
    Opt('init_from', str, 'start from published weights: bvlc_alexnet.npy (alexnet; switches to '
        "Caffe's LRN), a Keras VGG16/19 .h5 (vgg-d / vgg-e) or InceptionV3 / InceptionResNetV2 "
        '.h5 (inception-v3 / -resnet-v2); or, for VGG B-E, a trained VGG-A\'s train dir (its '
        'first four convs and the fc layers, as the paper did); the last layer is left out '
        'when the data has other than 1000 classes', kept='state', metavar='FILE'),
    Opt('train_layers', layer_names, 'fine-tuning: update only these layers (e.g. fc7,fc8); the '
        'others stay as loaded, never written by the optimizer', kept='state',
        to=(('graph', 'train_layers'),), metavar='L1,L2', typing=list),
    Opt('lr_mult', layer_mults, "Caffe's lr_mult: layer L steps at M x the rate (its biases at "
        'MB x, default M), e.g. fc8=10:20', kept='state', to=(('graph', 'lr_mult'),),
        metavar='L=M[:MB],...', typing=dict),
    Opt('mean', str, 'with --init-from published weights: the mean image they were trained '
        "with (Caffe's ilsvrc_2012_mean.npy (3, 256, 256) BGR, or (H, W, 3) RGB); default their "
        'per-channel mean (alexnet_tf1/weights/means.txt)', metavar='FILE.npy'),
    Opt('train_dir', help='default checkpoints/<model>'),
    Opt('precision', str, "the model's arithmetic: bf16 runs convolutions, matmuls and the "
        'maps between them in bfloat16 on a CPU with AVX512_BF16 or AMX (refused elsewhere); '
        'variables, checkpoints, the loss and the update stay fp32', choices=('fp32', 'bf16'),
        default='fp32', kept='state', old='fp32', to=(('graph', 'precision'),)),
    Opt('seed', int, 'default 0', default=0, kept='state'),
    Opt('input_size', int, low=1, kept='config', hidden=True),
    # bookkeeping
    Opt('restart', bool, 'start over (the old train dir is renamed, not deleted)', default=False),
    Opt('save_every', int, 'checkpoint every N steps (and at each epoch end)', low=1),
    Opt('keep', int, 'keep the last K checkpoints (+ the best)', default=3, low=1),
    Opt('print_freq', int, low=1),
    Opt('hist_every', int, default=100, flag=''),
    # between-graph replication
    Opt('ps_hosts', help='host:port,... of the parameter servers', group=_CLU),
    Opt('worker_hosts', help='host:port,... of the workers (worker 0 is the chief)', group=_CLU),
    Opt('job_name', choices=('ps', 'worker'), group=_CLU),
    Opt('task_index', int, default=0, group=_CLU),
    Opt('async_updates', bool, "apply each worker's gradients as they come (default: "
        'synchronous)', default=False, flag='--async', group=_CLU),
)
BY_NAME = {o.name: o for o in OPTIONS}
RECIPE = tuple(o for o in OPTIONS if o.kept and o.name != 'epochs')   # what a resumed run keeps

Options = make_dataclass(
    'Options', [(o.name, o.typing or (o.type if isinstance(o.type, type) else object),
                 field(default=o.default)) for o in OPTIONS], frozen=True)
Options.__doc__ = 'One run\'s options: the preset, then every flag given over it (OPTIONS).'

_GROUPS = {_ABL: ("the AlexNet paper's switches, kept in the run's configuration (README "
                  '"The paper\'s experiments")'),
           _CLU: 'between-graph replication; README "Running on a cluster"'}


def add_flags(parser, models):
    """run_train.py's flags, from OPTIONS; every one defaults to None (= not given) but those
    with no preset value, so the preset shows through."""
    groups = {}
    for o in OPTIONS:
        if o.flag == '':
            continue
        if o.group and o.group not in groups:
            groups[o.group] = parser.add_argument_group(o.group, _GROUPS[o.group])
        where = groups.get(o.group, parser)
        kw = dict(dest=o.name, help=argparse.SUPPRESS if o.hidden else (o.help or None))
        if o.name == 'model':
            kw.update(choices=sorted(models), help=', '.join(sorted(models)))
        if o.choices:
            kw['choices'] = list(o.choices)
        if o.metavar:
            kw['metavar'] = o.metavar
        if o.type is bool:
            kw['action'] = (argparse.BooleanOptionalAction if o.default is None
                            else 'store_true')
        else:
            kw['type'] = o.type
        where.add_argument(o.spelling, **kw)
    return parser


def given_flags(namespace):
    """The flags a user gave (argparse leaves the others None), as a dict."""
    return {k: v for k, v in vars(namespace).items() if v is not None and k in BY_NAME
            and not (BY_NAME[k].type is bool and BY_NAME[k].default is False and v is False)}


def resolve(given, dataset):
    """Options from the preset for (model, dataset) (or --preset), with every flag in `given`
    (a dict; None = not given) over it, then checked."""
    given = {k: v for k, v in dict(given).items() if v is not None}
    model = given.get('model', BY_NAME['model'].default)
    name = given.get('preset') or presets.choose(model, dataset)
    values = {**presets.PRESETS[name], **given, 'preset': name}
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:             # a flag or preset key without a row is a bug, not the user's
        raise TypeError(f'options without a row in OPTIONS: {unknown}')
    opts = Options(**values)
    check_switches(opts.model, {k: getattr(opts, k) for k in SWITCH_FLAGS})
    if given.get('init') == 'glorot' and not opts.model.startswith(GLOROT_MODELS):
        raise OptionError(f'--init glorot: {opts.model} is built with its paper\'s '
                          f"initialisation only (glorot is for {', '.join(GLOROT_MODELS)})")
    for o in OPTIONS:
        v = getattr(opts, o.name)
        if o.low is not None and v is not None and not (
                o.low <= v and (o.below is None or v < o.below)):
            raise OptionError(f'{o.spelling} {v}: must be >= {o.low}'
                              + (f' and < {o.below}' if o.below is not None else ''))
    return opts


# the models whose builders take config.init == 'glorot' (VGG section 3.1, Keras' Inceptions)
GLOROT_MODELS = ('vgg', 'googlenet', 'inception', 'cifar4')
SWITCH_FLAGS = {'use_lrn': lambda v: '--lrn' if v else '--no-lrn', 'pool': '--pool {}'.format,
                'activation': '--activation {}'.format}


def check_switches(model, values):
    """OptionError (one line) for a switch given to a model without the layers it changes."""
    from alexnet_tf1.models import SWITCHES
    for key, value in values.items():
        if value is not None and model not in SWITCHES[key]:
            raise OptionError(f'{SWITCH_FLAGS[key](value)}: {model} has no such layers '
                              f"(the switch is for {', '.join(SWITCHES[key])})")


def kept_value(o, state):
    """The value of recipe option `o` in a run's saved state."""
    if o.kept == 'schedule':
        s = state['schedule']
        if o.name == 'lr':      # the schedule keeps the rate it is at now
            return s['lr'] / s['factor'] ** s['drops']
        return s.get(o.where, o.old)
    if o.kept == 'config':
        return state['config'].get(o.where, o.old)
    return state.get(o.where, o.old)


def kept(name, state):
    """The value a run's saved state holds for the option called `name` (its `old` value
    for a run saved before the option existed)."""
    return kept_value(BY_NAME[name], state)


def changed(given, state):
    """[(flag, given, kept)] for the recipe flags given that differ from the run resumed."""
    out = []
    for o in RECIPE:
        value = given.get(o.name)
        if value is None:
            continue
        kept = kept_value(o, state)
        same = (math.isclose(value, kept, rel_tol=1e-9) if isinstance(value, float)
                and isinstance(kept, (int, float)) else value == kept)
        if not same:
            out.append((o.spelling, value, kept))
    return out


def kept_in(where, opts):
    """{its name there: value} of the recipe options `opts` keeps in `where` ('state',
    'schedule', 'config'); a config option left None keeps the model's own default."""
    return {o.where: getattr(opts, o.name) for o in OPTIONS if o.kept == where
            and (where != 'config' or getattr(opts, o.name) is not None)}


def handed(consumer, state):
    """{argument: value} of the run's kept options for `consumer` ('data', 'step', 'graph')."""
    return {arg: kept_value(o, state) for o in OPTIONS for c, arg in o.to if c == consumer}
