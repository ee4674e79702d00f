"""Fine-tuning as users do it: --init-from published weights, --train-layers, --lr-mult."""
import os

import numpy as np
import pytest
import tensorflow as tf

import run_train
from alexnet_tf1 import devices
from alexnet_tf1.training import graph
from alexnet_tf1.weights import importers
from alexnet_tf1.config import ModelConfig
from alexnet_tf1.tf_compat import session, tf1
from tiny_run import CROP, tiny_prepared, train_args


def open_graph(cfg, seed=0, **kw):
    placement = devices.resolve('cpu')
    g = graph.build(cfg, placement, seed=seed, **kw)
    sess = session(g.graph, placement.session_config())
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
    return g, sess


@pytest.fixture(scope='module')
def published_file(tmp_path_factory):
    """A bvlc_alexnet-layout file (1000 classes) for the tiny input, as Caffe would hold it."""
    g, sess = open_graph(ModelConfig(num_classes=1000, input_size=CROP), seed=5, train=False)
    path = str(tmp_path_factory.mktemp('pub') / 'bvlc_alexnet.npy')
    importers.export_caffe_alexnet_npy(sess, g.net, path)
    sess.close()
    return path, np.load(path, allow_pickle=True).item()


@pytest.fixture(scope='module')
def finetuned(published_file, tmp_path_factory):
    path, _ = published_file
    root = str(tmp_path_factory.mktemp('ft'))
    data, td = tiny_prepared(root), os.path.join(root, 'run')
    code = run_train.main(train_args(data, td, '--epochs', '2', '--init-from', path,
                                     '--train-layers', 'fc7,fc8', '--lr', '0.01'))
    assert code == 0
    return tf.train.load_checkpoint(td)


def test_frozen_layers_are_bit_identical_to_the_file_after_training(published_file, finetuned):
    _, layers = published_file
    for name in ('conv1', 'conv2', 'conv3', 'conv4', 'conv5', 'fc6'):
        w, b = layers[name]
        if name == 'conv1':
            w = w[:, :, ::-1, :]        # --init-from takes RGB: conv1's input channels reversed
        half = w.shape[-1] // 2
        for t in (0, 1):
            np.testing.assert_array_equal(finetuned.get_tensor(f'tower{t}/{name}/weights'),
                                          w[..., t * half:(t + 1) * half])
            np.testing.assert_array_equal(finetuned.get_tensor(f'tower{t}/{name}/biases'),
                                          b[t * half:(t + 1) * half])


def test_frozen_layers_get_no_optimizer_state(finetuned):
    names = finetuned.get_variable_to_shape_map()
    assert 'tower0/fc7/weights/momentum' in names and 'tower0/fc8/weights/momentum' in names
    assert not any(n.startswith(('tower0/conv', 'tower1/conv', 'tower0/fc6')) and 'momentum' in n
                   for n in names)


def test_trained_layers_moved_and_fc8_started_fresh(published_file, finetuned):
    _, layers = published_file
    assert not np.array_equal(finetuned.get_tensor('tower0/fc7/weights'), layers['fc7'][0][:, :2048])
    assert finetuned.get_tensor('tower0/fc8/weights').shape == (4096, 2)


def test_the_left_out_layer_is_named_in_one_line(published_file, tmp_path, capsys):
    data = tiny_prepared(str(tmp_path))
    path, _ = published_file
    assert run_train.main(train_args(data, str(tmp_path / 'r'), '--epochs', '1',
                                     '--init-from', path)) == 0
    out = capsys.readouterr().out.splitlines()
    notes = [line for line in out if line.startswith('note: left at their initialisation')]
    assert len(notes) == 1 and 'fc8' in notes[0] and '(4096, 1000)' in notes[0]


def test_unknown_train_layer_is_a_one_line_error(tmp_path, capsys):
    data = tiny_prepared(str(tmp_path))
    assert run_train.main(train_args(data, str(tmp_path / 'r'), '--epochs', '1',
                                     '--train-layers', 'fc7,fc9')) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no layer 'fc9'" in err[0] and 'fc8' in err[0]


def test_lr_mult_scales_a_layers_first_step_as_caffes_lr_mult():
    """From zero momentum the first step is -lr x mult x gradient: fc8's weights move 10x and
    its biases 20x what they move without multipliers; conv1 as before."""
    cfg = ModelConfig(num_classes=4, input_size=CROP, dropout=0.0)
    x = np.random.RandomState(0).randn(4, CROP, CROP, 3).astype(np.float32) * 50
    y = np.arange(4, dtype=np.int32)
    steps = []
    for mult in (None, {'fc8': (10.0, 20.0)}):
        g, sess = open_graph(cfg, seed=1, lr_mult=mult)
        p = {k: g.net.params[k] for k in (('fc8', 0), ('conv1', 0))}
        before = sess.run(p)
        sess.run(g.train_op, {g.images: x, g.labels: y, g.lr: 0.01})
        after = sess.run(p)
        steps.append({(k, v): after[k][v] - before[k][v] for k in p for v in ('w', 'b')})
        sess.close()
    plain, mult = steps
    for key, m in (((('fc8', 0), 'w'), 10), ((('fc8', 0), 'b'), 20), ((('conv1', 0), 'w'), 1)):
        want = m * plain[key]
        assert np.abs(want).max() > 0
        # weights minus weights: float32 rounding of the weights' own size, not the step's
        np.testing.assert_allclose(mult[key], want, rtol=0, atol=2e-3 * np.abs(want).max())
