"""CaffeNet (bvlc_reference_caffenet) and the all-maps LRN span, as a model of its own: table,
placement, the window across the tower boundary against NumPy, and training / evaluation."""
import json
import os
import re

import numpy as np
import pytest

import run_eval
import run_train
from alexnet_session import images, open_alexnet
from alexnet_tf1 import config, models
from test_alexnet_layers import lrn_numpy
from tiny_run import tiny_prepared, train_args


def open_net(cfg):
    return open_alexnet(config=cfg, train=False)


def test_caffenet_has_alexnets_parameters_with_pool_before_lrn():
    assert models.get('caffenet').paper_total == 60_965_224
    order = [(l.name, l.after) for l in models.get('caffenet').table if l.after]
    assert order == [('conv1', ['pool', 'lrn']), ('conv2', ['pool', 'lrn']), ('conv5', ['pool'])]
    cfg = config.defaults_for('caffenet')
    assert (cfg.lrn_span, cfg.lrn.bias, cfg.lrn.alpha) == ('all', 1.0, 2e-5)
    g, sess = open_net(cfg)
    n = sum(int(np.prod(v.shape)) for v in g.graph.get_collection('trainable_variables'))
    ep = g.net.end_points
    shapes = {k: tuple(ep[k][0].shape[1:]) for k in ('pool1', 'lrn1', 'pool2', 'lrn2')}
    sess.close()
    assert n == 60_965_224
    assert shapes == {'pool1': (27, 27, 48), 'lrn1': (27, 27, 48), 'pool2': (13, 13, 128),
                      'lrn2': (13, 13, 128)}


@pytest.fixture(scope='module')
def all_maps():
    """An AlexNet with the window over all maps; conv and LRN outputs of both towers."""
    g, sess = open_net(config.ModelConfig(lrn_span='all'))
    ep = g.net.end_points
    run = sess.run({k: ep[k] for k in ('conv1', 'lrn1', 'conv2', 'lrn2')},
                   {g.images: images(2, scale=400.0)})
    ops = {op.name: op.device for op in g.graph.get_operations()}
    sess.close()
    return run, ops


@pytest.mark.parametrize('layer', ['1', '2'])
def test_all_maps_lrn_is_one_lrn_over_both_towers(all_maps, layer):
    run, _ = all_maps
    a = np.concatenate(run[f'conv{layer}'], -1)
    b = np.concatenate(run[f'lrn{layer}'], -1)
    assert np.mean(2e-4 * a ** 2) > 1e-3            # the normalisation really acts
    np.testing.assert_allclose(b, lrn_numpy(a), rtol=2e-4, atol=1e-6)


def test_only_the_boundary_maps_cross_and_they_are_sliced_where_they_live(all_maps):
    _, ops = all_maps
    halo = {name: dev for name, dev in ops.items() if '_halo/' in name}
    assert halo
    for name, dev in halo.items():      # tower t's slices of its own maps, on its own device
        t = re.match(r'tower(\d)/', name).group(1)
        assert dev.endswith(f'CPU:{t}'), (name, dev)
    lrn = {n: d for n, d in ops.items() if re.match(r'tower\d/lrn1/', n)}
    for name, dev in lrn.items():
        assert dev.endswith(f"CPU:{name[5]}"), (name, dev)


def test_an_unknown_span_is_refused():
    with pytest.raises(ValueError, match="lrn_span 'half'"):
        open_net(config.ModelConfig(lrn_span='half'))


def test_caffenet_trains_and_evaluates_as_a_named_model(tmp_path, capsys):
    data, td = tiny_prepared(str(tmp_path)), str(tmp_path / 'run')
    assert run_train.main(train_args(data, td, '--model', 'caffenet', '--epochs', '1')) == 0
    assert run_eval.main(['--train-dir', td, '--model', 'caffenet', '--gpus', 'cpu']) == 0
    result = json.load(open(os.path.join(td, 'eval.json')))
    assert result['model'] == 'caffenet'
    assert 'bvlc_reference_caffenet' in capsys.readouterr().out
