"""A model's constants as data: LRN, initialisation, dropout, classes, input size.

The configuration travels inside every checkpoint (as JSON), so a run can be resumed or
evaluated without remembering the flags that made it.
"""
from dataclasses import asdict, dataclass, field, replace

from alexnet_tf1.errors import UnknownName


@dataclass(frozen=True)
class LRN:
    """b = a / (bias + alpha * sum over depth_radius*2+1 maps of a^2)^beta."""
    depth_radius: int = 2
    bias: float = 2.0
    alpha: float = 1e-4
    beta: float = 0.75


PAPER_LRN = LRN()                                   # the formula as printed in the 2012 paper
CAFFE_LRN = LRN(depth_radius=2, bias=1.0, alpha=2e-5, beta=0.75)   # bvlc_alexnet's (alpha / n, k = 1)


@dataclass(frozen=True)
class ModelConfig:
    model: str = 'alexnet'
    num_classes: int = 1000
    input_size: int = 227
    channels: int = 3
    lrn: LRN = field(default_factory=LRN)
    init_std: float = 0.01
    # the value of the biases the paper sets to 1 (conv2, conv4, conv5, fc6, fc7); Caffe used 0.1
    init_bias: float = 1.0
    dropout: float = 0.5
    # 'tower0': all of fc8 on tower 0's device (cuda-convnet2); 'split': two 500-unit halves
    fc8: str = 'tower0'
    # 'paper': each model's own rule (AlexNet and VGG N(0, init_std); LeNet-5 the paper's
    # uniform +-2.4/F_in; GoogLeNet bvlc_googlenet's xavier, the paper giving none);
    # 'glorot': Glorot-uniform weights (the VGG paper's alternative for its deeper nets, 3.1)
    init: str = 'paper'
    # the fed input (crop minus the mean image, 0..255 scale) is multiplied by this in the graph;
    # LeNet-5 reads the paper's range (background -0.1, ink 1.175: a span of 1.275, not 255)
    input_scale: float = 1.0
    # which maps an LRN window spans in a two-tower net: 'tower' keeps it inside each tower
    # (the paper's GPUs never exchanged conv1/conv2 maps); 'all' runs it over every map, the
    # tower boundary included, as Caffe's one LRN layer after the group concat did
    lrn_span: str = 'tower'
    # batch norm's moving averages: m <- bn_decay m + (1 - bn_decay) batch statistic (Keras')
    bn_decay: float = 0.99
    # the AlexNet paper's ablations (sections 3.1-3.4; docs/reference.md 1.8): LRN on or
    # off; pooling '3x3' (z = 3, s = 2, overlapping) or '2x2' (z = s = 2); 'relu' or 'tanh'
    # neurons (Figure 1). Models that have no such layer refuse the switch (models.SWITCHES).
    use_lrn: bool = True
    pool: str = '3x3'
    activation: str = 'relu'

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        if isinstance(d.get('lrn'), dict):
            d['lrn'] = LRN(**d['lrn'])
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in known})

    def with_(self, **changes):
        return replace(self, **changes)


LENET_SCALE = 1.275 / 255     # LeCun et al. 1998, section II.A: pixels -0.1 .. 1.175
INCEPTION_SCALE = 1 / 127.5
INCEPTION = ('inception-v2', 'inception-v3', 'inception-v4', 'inception-resnet-v1',
             'inception-resnet-v2', 'inception-resnet-v2-figure15')

# Each model's own defaults (docs/reference.md 1-5); anything not listed is ModelConfig's default.
MODEL_DEFAULTS = {
    'alexnet': {},
    # bvlc_reference_caffenet: pool before LRN (its table), Caffe's LRN over all maps
    'caffenet': dict(lrn=CAFFE_LRN, lrn_span='all'),
    'alexnet-one-tower': {},
    # Figure 1's four-layer CNN: CIFAR-10's 32x32 whole images, pixels minus the mean over 64
    # (about unit scale, so that tanh does not start saturated)
    'cifar4': dict(num_classes=10, input_size=32, init='glorot', init_bias=0.0, dropout=0.0,
                   input_scale=1 / 64),
    'lenet5': dict(num_classes=10, input_size=32, channels=1, init_bias=0.0, dropout=0.0,
                   input_scale=LENET_SCALE),
    'lenet5-relu': dict(num_classes=10, input_size=32, channels=1, init_bias=0.0, dropout=0.0,
                        input_scale=LENET_SCALE),
    # bvlc_googlenet's LRN (local_size 5, alpha 1e-4 over n, k = 1) and bias fill 0.2
    'googlenet': dict(input_size=224, lrn=CAFFE_LRN, init_bias=0.2, dropout=0.4),
    **{name: dict(input_size=224, init_std=0.01, init_bias=0.0, dropout=0.5)
       for name in ('vgg-a', 'vgg-a-lrn', 'vgg-b', 'vgg-b-5x5', 'vgg-c', 'vgg-d', 'vgg-e')},
    # Google's published Inception nets take x / 127.5 - 1: minus a mean of 127.5, scaled;
    # no biases before batch norm; TF-slim's dropout, keep 0.8
    **{name: dict(input_size=299, init_bias=0.0, dropout=0.2, input_scale=INCEPTION_SCALE)
       for name in INCEPTION},
}


def defaults_for(model, **changes):
    """ModelConfig with `model`'s own input size, channels, classes and init; then `changes`."""
    if model not in MODEL_DEFAULTS:
        raise UnknownName(f"no defaults for model {model!r}; known: {', '.join(sorted(MODEL_DEFAULTS))}")
    return ModelConfig(model=model, **{**MODEL_DEFAULTS[model], **changes})
