"""A model's constants as data: LRN, initialisation, dropout, classes, input size.

The configuration travels inside every checkpoint (as JSON), so a run can be resumed or
evaluated without remembering the flags that made it.
"""
from dataclasses import asdict, dataclass, field, replace


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
