"""Model registry: name -> module with TABLE, build(images, config, devices, training), PAPER."""
from . import alexnet

MODELS = {'alexnet': alexnet}


def get(name):
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; choose from {', '.join(sorted(MODELS))}")
    return MODELS[name]
