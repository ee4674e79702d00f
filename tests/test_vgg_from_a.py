"""VGG's own way to train the deep nets: B-E start from a trained A (Simonyan and Zisserman,
section 3.1), run_train.py --model vgg-d --init-from checkpoints/vgg-a."""
import numpy as np
import pytest

import run_train
from alexnet_tf1 import checkpoints, devices, graph, importers
from alexnet_tf1.config import defaults_for
from alexnet_tf1.tf_compat import session, tf, tf1
from synthetic_prepared import write_prepared


@pytest.fixture(scope='module')
def vgg_a(tmp_path_factory):
    root = tmp_path_factory.mktemp('vgga')
    rng = np.random.default_rng(0)
    def split(n):
        return (rng.integers(0, 256, (n, 36, 36, 3), dtype=np.uint8),
                (np.arange(n) % 3).astype(np.int32))
    data = write_prepared(str(root / 'data'), {'train': split(8), 'val': split(4)},
                          num_classes=3, dataset='tiny')
    td = str(root / 'vgg-a')
    assert run_train.main(['--model', 'vgg-a', '--data-dir', data, '--train-dir', td, '--gpus',
                           'cpu', '--batch-size', '4', '--epochs', '1', '--input-size', '32']) == 0
    return data, td


def test_vgg_d_takes_a_s_first_four_convs_and_three_fcs_and_keeps_the_rest_random(vgg_a):
    data, td = vgg_a
    cfg = defaults_for('vgg-d', num_classes=3, input_size=32)
    g = graph.build(cfg, devices.resolve('cpu', towers=1), train=False)
    sess = session(g.graph, devices.resolve('cpu', towers=1).session_config())
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
        before = {k: sess.run(p['w']) for k, p in g.net.params.items()}
        loaded, left = importers.load_checkpoint_layers(sess, g.net, cfg, td)
    reader = tf.train.load_checkpoint(checkpoints.latest(td))
    assert sorted(loaded) == sorted(importers.VGG_FROM_A)
    assert {'conv1_2', 'conv2_2', 'conv3_3', 'conv4_1', 'conv5_3'} <= set(left)
    for (name, tower), p in g.net.params.items():
        got = sess.run(p['w'])
        if name in importers.VGG_FROM_A:
            np.testing.assert_array_equal(got, reader.get_tensor(p['w'].op.name))
            np.testing.assert_array_equal(sess.run(p['b']), reader.get_tensor(p['b'].op.name))
        else:
            np.testing.assert_array_equal(got, before[(name, tower)])


def test_run_train_init_from_a_vgg_a_train_dir(vgg_a, tmp_path, capsys):
    data, td = vgg_a
    assert run_train.main(['--model', 'vgg-d', '--data-dir', data, '--train-dir',
                           str(tmp_path / 'd'), '--gpus', 'cpu', '--batch-size', '4',
                           '--epochs', '1', '--input-size', '32', '--init-from', td]) == 0
    out = capsys.readouterr().out
    assert f'initialised from {td}' in out and 'conv1_2' in out and 'conv1_1,' not in out


def test_init_from_a_checkpoint_of_another_family_is_a_one_line_error(vgg_a, tmp_path, capsys):
    data, td = vgg_a
    assert run_train.main(['--model', 'lenet5-relu', '--data-dir', data, '--train-dir',
                           str(tmp_path / 'l'), '--gpus', 'cpu', '--init-from', td,
                           '--input-size', '32']) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: ') and 'VGG from VGG' in err and '\n' not in err
