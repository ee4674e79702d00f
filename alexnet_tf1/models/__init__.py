"""Model registry: name -> module with TOWERS, TABLE, build(images, config, devices, training),
PAPER, PAPER_TOTAL, PUBLISHED.

Several names share a module (alexnet / caffenet, lenet5 / lenet5-relu, the six VGG
configurations, inception v2 / v3, v4 / Inception-ResNet); get(name)
then returns that variant's view of the module: its own TABLE, PAPER_TOTAL and PUBLISHED, and
a build() that builds that variant whatever config.model says.
"""
from ..errors import UnknownName
from . import alexnet, cifar4, googlenet, inception_v3, inception_v4, lenet5, vgg

MODELS = {'alexnet': alexnet, 'caffenet': alexnet, 'alexnet-one-tower': alexnet,
          'cifar4': cifar4, 'googlenet': googlenet,
          **{name: lenet5 for name in lenet5.VARIANTS}, **{name: vgg for name in vgg.VARIANTS},
          **{name: inception_v3 for name in inception_v3.VARIANTS},
          **{name: inception_v4 for name in inception_v4.VARIANTS}}


ALEXNETS = ('alexnet', 'caffenet', 'alexnet-one-tower')
# config switch -> the models that have the layers it changes (config.py, the ablations)
SWITCHES = {'use_lrn': ALEXNETS + ('googlenet',), 'pool': ALEXNETS,
            'activation': ALEXNETS + ('cifar4',)}


def get(name):
    if name not in MODELS:
        raise UnknownName(f"unknown model {name!r}; choose from {', '.join(sorted(MODELS))}")
    module = MODELS[name]
    return getattr(module, 'VARIANTS', {}).get(name, module)
