"""A small AlexNet graph on the two logical CPUs, initialised, for tests that run it."""
import numpy as np

from alexnet_tf1 import config as config_mod, devices

from alexnet_tf1.training import graph
from alexnet_tf1.tf_compat import session, tf1


def open_alexnet(num_classes=10, seed=0, config=None, train=True, weight_decay=5e-4, **cfg):
    """config: a whole ModelConfig (e.g. CaffeNet's), else ModelConfig(num_classes, **cfg)."""
    cfg = config or config_mod.ModelConfig(num_classes=num_classes, **cfg)
    placement = devices.resolve('cpu')
    g = graph.build(cfg, placement, seed=seed, train=train, weight_decay=weight_decay)
    sess = session(g.graph, placement.session_config())
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
    return g, sess


def images(n, seed=0, scale=60.0):
    """Mean-subtracted-looking inputs: pixel std like ImageNet's after the mean image."""
    return (np.random.RandomState(seed).randn(n, 227, 227, 3) * scale).astype(np.float32)
