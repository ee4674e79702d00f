"""The graph against the paper's table (its section 3.5 and Figure 2), built without running it."""
import json
import subprocess
import sys

import numpy as np
import pytest

from alexnet_tf1 import config

from alexnet_tf1.models import summary

# The paper's section 3.5, typed in: output (both towers) and parameters per layer.
SPEC = {
    'conv1': ((55, 55, 96), 34_944), 'pool1': ((27, 27, 96), 0),
    'conv2': ((27, 27, 256), 307_456), 'pool2': ((13, 13, 256), 0),
    'conv3': ((13, 13, 384), 885_120), 'conv4': ((13, 13, 384), 663_936),
    'conv5': ((13, 13, 256), 442_624), 'pool5': ((6, 6, 256), 0),
    'fc6': ((4096,), 37_752_832), 'fc7': ((4096,), 16_781_312), 'fc8': ((1000,), 4_097_000),
}


@pytest.fixture(scope='module')
def rows():
    return summary.layer_rows('alexnet', 'cpu')


def both_towers(rows, name):
    rs = [r for r in rows if r['name'] == name]
    shape = list(rs[0]['output_shape'])
    shape[-1] = sum(r['output_shape'][-1] for r in rs)
    return tuple(shape), sum(r['params'] for r in rs)


def test_total_parameters_are_the_papers_60965224(rows):
    assert sum(r['params'] for r in rows) == 60_965_224


@pytest.mark.parametrize('name', sorted(SPEC))
def test_each_layer_has_the_papers_output_and_parameters(rows, name):
    assert both_towers(rows, name) == SPEC[name]


def test_every_tower0_layer_on_cpu0_and_tower1_on_cpu1(rows):
    for r in rows:
        assert r['device'] == f"/device:CPU:{r['tower']}", r


def test_fc8_lives_whole_on_tower0_as_in_cuda_convnet2(rows):
    fc8 = [r for r in rows if r['name'] == 'fc8']
    assert [(r['tower'], r['output_shape']) for r in fc8] == [(0, [1000])]


def test_fc8_split_variant_has_two_500_unit_halves():
    rows = summary.layer_rows('alexnet', 'cpu', config.ModelConfig(fc8='split'))
    fc8 = [r for r in rows if r['name'] == 'fc8']
    assert [(r['tower'], r['output_shape'], r['device']) for r in fc8] == [
        (0, [500], '/device:CPU:0'), (1, [500], '/device:CPU:1')]
    assert sum(r['params'] for r in rows) == 60_965_224


def test_summary_command_prints_json_with_the_total():
    out = subprocess.run([sys.executable, '-m', 'alexnet_tf1.models.summary', '--model', 'alexnet',
                          '--gpus', 'cpu', '--json'], capture_output=True, text=True, check=True)
    s = json.loads(out.stdout)
    assert s['model'] == 'alexnet' and s['total_params'] == 60_965_224
    assert set(s['layers'][0]) == {'name', 'tower', 'device', 'output_shape', 'params'}
    assert np.sum([l['params'] for l in s['layers']]) == 60_965_224
