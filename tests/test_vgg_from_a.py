"""VGG's own way to train the deep nets: B-E start from a trained A (Simonyan and Zisserman,
section 3.1), run_train.py --model vgg-d --init-from checkpoints/vgg-a."""
import numpy as np
import pytest

import run_train
from alexnet_tf1.training import checkpoints, graph
from alexnet_tf1 import devices
from alexnet_tf1.weights import importers
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


# Simonyan and Zisserman 2015, Table 1, typed in: each configuration's conv layers block by
# block as the paper writes them (receptive field - maps), then FC-4096, FC-4096, FC-classes.
TABLE_1 = {
    'A': (['conv3-64'], ['conv3-128'], ['conv3-256'] * 2, ['conv3-512'] * 2, ['conv3-512'] * 2),
    'B': (['conv3-64'] * 2, ['conv3-128'] * 2, ['conv3-256'] * 2, ['conv3-512'] * 2,
          ['conv3-512'] * 2),
    'C': (['conv3-64'] * 2, ['conv3-128'] * 2, ['conv3-256', 'conv3-256', 'conv1-256'],
          ['conv3-512', 'conv3-512', 'conv1-512'], ['conv3-512', 'conv3-512', 'conv1-512']),
    'D': (['conv3-64'] * 2, ['conv3-128'] * 2, ['conv3-256'] * 3, ['conv3-512'] * 3,
          ['conv3-512'] * 3),
    'E': (['conv3-64'] * 2, ['conv3-128'] * 2, ['conv3-256'] * 4, ['conv3-512'] * 4,
          ['conv3-512'] * 4),
}


def paper_layers(letter, classes):
    """{layer name: weight shape} of a Table 1 column at a 32-px input (pool5 is 1x1x512):
    convN_i is block N's i-th conv, fc6-fc8 the three FC layers."""
    shapes, c = {}, 3
    for b, block in enumerate(TABLE_1[letter], 1):
        for i, token in enumerate(block, 1):
            k, maps = (int(v) for v in token[len('conv'):].split('-'))
            shapes[f'conv{b}_{i}'] = (k, k, c, maps)
            c = maps
    shapes.update(fc6=(c, 4096), fc7=(4096, 4096), fc8=(4096, classes))
    return shapes


@pytest.mark.parametrize('letter', [
    'D',        # the others take the same path, ~5 s each here: pytest -m slow
    *(pytest.param(x, marks=pytest.mark.slow) for x in 'BCE')])
def test_deeper_nets_take_a_s_first_four_convs_and_three_fcs_and_keep_the_rest_random(vgg_a,
                                                                                      letter):
    """Section 3.1: "we initialised the first four convolutional layers and the last three
    fully-connected layers with the layers of net A (the intermediate layers were initialised
    randomly)". A's first four convs go to the layers of the same name, the only ones whose
    shapes take them; every other layer keeps its random start."""
    data, td = vgg_a
    a, deep = paper_layers('A', 3), paper_layers(letter, 3)
    from_a = [n for n in a if n.startswith('conv')][:4] + ['fc6', 'fc7', 'fc8']
    assert from_a == ['conv1_1', 'conv2_1', 'conv3_1', 'conv3_2', 'fc6', 'fc7', 'fc8']
    assert all(deep[n] == a[n] for n in from_a)
    cfg = defaults_for(f'vgg-{letter.lower()}', num_classes=3, input_size=32)
    g = graph.build(cfg, devices.resolve('cpu', towers=1), train=False)
    sess = session(g.graph, devices.resolve('cpu', towers=1).session_config())
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
        before = {k: sess.run(p['w']) for k, p in g.net.params.items()}
        loaded, left = importers.load_checkpoint_layers(sess, g.net, cfg, td)
    assert {name: tuple(p['w'].shape) for (name, _), p in g.net.params.items()} == deep
    assert sorted(loaded) == sorted(from_a)
    assert sorted(left) == sorted(set(deep) - set(from_a))
    reader = tf.train.load_checkpoint(checkpoints.latest(td))
    for (name, tower), p in g.net.params.items():
        got = sess.run(p['w'])
        if name in from_a:
            np.testing.assert_array_equal(got, reader.get_tensor(p['w'].op.name))
            np.testing.assert_array_equal(sess.run(p['b']), reader.get_tensor(p['b'].op.name))
        else:
            np.testing.assert_array_equal(got, before[(name, tower)])
            assert np.abs(got).max() > 0       # random, not zeros
    sess.close()


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
