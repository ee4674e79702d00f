"""Model registry: name -> ModelSpec (models/spec.py), collected from the SPECS each model
module declares. Several names share a module and its builder (alexnet / caffenet /
alexnet-one-tower, lenet5 / lenet5-relu, the VGG configurations, inception v2 / v3, v4 /
Inception-ResNet); each name's spec has its own table, figures and a build() bound to it.
"""
from alexnet_tf1.errors import UnknownName
from alexnet_tf1.models import alexnet, cifar4, googlenet, inception_v3, inception_v4, lenet5, vgg
from alexnet_tf1.models.spec import ModelSpec

MODELS = {spec.name: spec for module in (alexnet, cifar4, googlenet, lenet5, vgg, inception_v3,
                                          inception_v4) for spec in module.SPECS}

# config switch -> the models that have the layers it changes (config.py, the ablations)
SWITCHES = {switch: tuple(name for name, spec in MODELS.items() if switch in spec.switches)
            for switch in ('use_lrn', 'pool', 'activation')}


def get(name) -> ModelSpec:
    if name not in MODELS:
        raise UnknownName(f"unknown model {name!r}; choose from {', '.join(sorted(MODELS))}")
    return MODELS[name]
