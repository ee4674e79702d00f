"""The model registry: one ModelSpec per named network, each building its own network."""
import ast
import os

import numpy as np
import pytest

from alexnet_tf1 import config, models
from alexnet_tf1.errors import UnknownName
from alexnet_tf1.models import summary
from alexnet_tf1.models.spec import ModelSpec
from alexnet_tf1.tf_compat import tf, tf1

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'alexnet_tf1')

# the networks of the papers (and their named variants) that --model takes, typed in
NAMES = {
    'alexnet', 'caffenet', 'alexnet-one-tower', 'cifar4', 'googlenet', 'lenet5', 'lenet5-relu',
    'vgg-a', 'vgg-a-lrn', 'vgg-b', 'vgg-b-5x5', 'vgg-c', 'vgg-d', 'vgg-e',
    'inception-v2', 'inception-v3', 'inception-v4',
    'inception-resnet-v1', 'inception-resnet-v2', 'inception-resnet-v2-figure15',
}


def test_every_named_network_is_a_model_spec_under_its_own_name():
    assert set(models.MODELS) == NAMES
    for name in NAMES:
        spec = models.get(name)
        assert isinstance(spec, ModelSpec), name
        assert spec.name == name and spec.towers >= 1 and spec.table and callable(spec.build)


def test_an_unknown_name_is_one_line_naming_it():
    with pytest.raises(UnknownName) as e:
        models.get('alexnet-3')
    assert "'alexnet-3'" in str(e.value) and 'caffenet' in str(e.value)
    assert '\n' not in str(e.value)


def _trainable_count(spec, sibling):
    """Trainable parameters of `spec`'s network, built with the config of `sibling`."""
    cfg = config.defaults_for(sibling)
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, cfg.input_size, cfg.input_size, cfg.channels])
        spec.build(images, cfg, [f'/cpu:{t}' for t in range(spec.towers)])
        return sum(int(np.prod(v.shape)) for v in tf1.trainable_variables())


@pytest.mark.parametrize('name, sibling, params', [
    # 6x5x5+6, 16x(6x5x5)+16, 120x(16x5x5)+120, 84x120+84, 10x84+10: a full C3, no RBF codes
    ('lenet5-relu', 'lenet5', 156 + 2_416 + 48_120 + 10_164 + 850),
    # the AlexNet paper's section 3.2 "one GPU" net, by hand in tests/test_ablations.py
    ('alexnet-one-tower', 'alexnet', 59_798_312),
    # VGG's Table 2, E (144M): 143,667,240 exactly, as torchvision's and Keras' VGG19
    ('vgg-e', 'vgg-d', 143_667_240),
])
def test_a_spec_builds_its_own_network_whatever_config_model_says(name, sibling, params):
    spec = models.get(name)
    assert _trainable_count(spec, sibling) == params
    assert spec.paper_total == params


def test_summary_prints_the_papers_figures_beside_the_graphs(capsys):
    # LeNet-5's section II-B: C3 has 16 10x10 maps and 1,516 trainable parameters; 60,000 in all
    assert summary.main(['--model', 'lenet5', '--gpus', 'cpu']) == 0
    lines = capsys.readouterr().out.splitlines()
    c3 = next(line for line in lines if line.startswith('C3 '))
    assert c3.split()[-3:] == ['1,516', '1,600', '1,516']
    assert lines[-1].split() == ['total', '60,000', '60,000']


def test_no_simple_namespace_is_left_in_the_package():
    found = []
    for folder, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith('.py'):
                path = os.path.join(folder, f)
                tree = ast.parse(open(path).read())
                found += [f'{path}:{n.lineno}' for n in ast.walk(tree)
                          if isinstance(n, (ast.Name, ast.Attribute, ast.alias)) and
                          'SimpleNamespace' in (getattr(n, 'id', None) or getattr(n, 'attr', None)
                                                or getattr(n, 'name', ''))]
    assert not found, found
