"""The AlexNet paper's ablation switches change the graph as claimed, the one-GPU
net and Figure 1's four-layer CNN count what their layers add up to, and --no-crop feeds the
whole picture scaled."""
import json
import os

import numpy as np
import pytest

from alexnet_tf1 import config, options

from alexnet_tf1.training import graph

from alexnet_tf1.models import summary
from alexnet_tf1.data import pipeline
from alexnet_tf1.tf_compat import tf, tf1
from synthetic_prepared import write_prepared
from tiny_run import CROP, tiny_prepared, train_args


def _ops(model, **switches):
    cfg = config.defaults_for(model, **switches)
    from alexnet_tf1 import devices
    g = graph.build(cfg, devices.resolve('cpu', towers=2 if model != 'alexnet-one-tower' else 1),
                    train=False)
    return g, [op for op in g.graph.get_operations()]


def _conv(k, c_in, c_out):
    return k * k * c_in * c_out + c_out


def test_one_tower_is_half_the_kernels_with_conv5_and_the_fc_layers_whole():
    # section 3.2: conv1-conv4 halved (one tower of the two-tower net), conv5 256, fc 4096
    by_hand = (_conv(11, 3, 48) + _conv(5, 48, 128) + _conv(3, 128, 192) + _conv(3, 192, 192)
               + _conv(3, 192, 256) + (6 * 6 * 256 * 4096 + 4096) + (4096 * 4096 + 4096)
               + (4096 * 1000 + 1000))
    s = summary.summarise('alexnet-one-tower', 'cpu')
    assert s['total_params'] == by_hand == 59_798_312
    assert {r['tower'] for r in s['layers']} == {0}
    shapes = {r['name']: r['output_shape'] for r in s['layers']}
    assert shapes['conv5'] == [13, 13, 256] and shapes['fc7'] == [4096]
    # "approximately the same number of parameters" as the two towers' 60,965,224
    assert abs(by_hand / 60_965_224 - 1) < 0.02


def test_cifar4_is_layers_80sec_without_normalisation():
    by_hand = _conv(5, 3, 32) + _conv(5, 32, 32) + _conv(5, 32, 64) + (4 * 4 * 64 * 10 + 10)
    s = summary.summarise('cifar4', 'cpu')
    assert s['total_params'] == by_hand
    assert [r['output_shape'] for r in s['layers']] == [[16, 16, 32], [8, 8, 32], [4, 4, 64], [10]]


def test_no_lrn_removes_every_lrn_and_nothing_else():
    with_lrn = summary.summarise('alexnet', 'cpu')
    without = summary.summarise('alexnet', 'cpu', use_lrn=False)
    assert {r['name'] for r in with_lrn['layers']} - {r['name'] for r in without['layers']} \
        == {'lrn1', 'lrn2'}
    assert without['total_params'] == with_lrn['total_params']
    assert without['switches']['use_lrn'] is False
    _, ops = _ops('alexnet', use_lrn=False)
    assert not [op for op in ops if 'lrn' in op.name.lower()]
    _, ops = _ops('googlenet', use_lrn=False)
    assert not [op for op in ops if op.type == 'LRN' or '/lrn' in op.name.lower()]


def test_pool_2x2_has_window_and_stride_2_and_keeps_the_map_sizes():
    for pool, k in (('3x3', 3), ('2x2', 2)):
        _, ops = _ops('alexnet', pool=pool)
        pools = [op for op in ops if op.type == 'MaxPool']
        assert len(pools) == 6          # pool1, pool2, pool5 in each tower
        assert all(list(op.get_attr('ksize'))[1:3] == [k, k] for op in pools)
        assert all(list(op.get_attr('strides'))[1:3] == [2, 2] for op in pools)
    s = summary.summarise('alexnet', 'cpu', pool='2x2')
    shapes = {r['name']: r['output_shape'] for r in s['layers']}
    assert shapes['pool1'] == [27, 27, 48] and shapes['pool5'] == [6, 6, 128]


def test_tanh_replaces_every_relu():
    for model, hidden in (('alexnet', 14), ('cifar4', 3)):     # 2 x (5 conv + fc6, fc7); 3 conv
        _, ops = _ops(model, activation='tanh')
        assert len([op for op in ops if op.type == 'Tanh']) == hidden
        assert not [op for op in ops if op.type == 'Relu']


def test_tanh_layer_equals_numpy():
    cfg = config.defaults_for('cifar4', activation='tanh')
    from alexnet_tf1 import devices
    g = graph.build(cfg, devices.resolve('cpu', towers=1), train=False)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32) * 64
    with g.graph.as_default(), tf1.Session(graph=g.graph) as sess:
        sess.run(tf1.global_variables_initializer())
        w, b = sess.run([g.net.params[('conv1', 0)]['w'], g.net.params[('conv1', 0)]['b']])
        conv1 = g.graph.get_tensor_by_name(g.net.end_points['conv1'][0].op.inputs[0].name)
        got = sess.run(conv1, {g.images: x})
    xs = np.pad(x / 64, ((0, 0), (2, 2), (2, 2), (0, 0)))
    patches = np.lib.stride_tricks.sliding_window_view(xs, (5, 5), axis=(1, 2))  # b,y,x,c,5,5
    want = np.tanh(np.einsum('byxcij,ijco->byxo', patches, w) + b)
    np.testing.assert_allclose(got, want, atol=2e-5)


def test_switches_refused_for_a_model_without_the_layers():
    with pytest.raises(options.OptionError, match='--no-lrn: inception-v3 has no such layers'):
        options.resolve({'model': 'inception-v3', 'use_lrn': False}, 'sample')
    with pytest.raises(options.OptionError, match='--pool 2x2: vgg-a'):
        options.resolve({'model': 'vgg-a', 'pool': '2x2'}, 'sample')


def test_no_crop_batches_are_the_whole_picture_scaled_by_tf_bilinear(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 40, 40, 3), dtype=np.uint8)
    mean = rng.uniform(0, 255, (40, 40, 3)).astype(np.float32)
    data = write_prepared(str(tmp_path / 'p'), {'train': (images, np.arange(4, dtype=np.int32) % 2)},
                          mean=mean, num_classes=2)
    from alexnet_tf1.data.reader import open_prepared
    (x, y), = list(pipeline.train_batches(open_prepared(data), 4, crop=None, flip=False,
                                          lighting_std=0, resize=32, prefetch=0))
    order = pipeline.epoch_order(4)
    want = tf.image.resize(images[order].astype(np.float32) - mean, (32, 32), 'bilinear',
                           antialias=False).numpy()
    np.testing.assert_allclose(x, want, atol=1e-3)
    np.testing.assert_array_equal(y, order % 2)


def test_switches_are_saved_kept_on_resume_and_history_has_training_error(tmp_path):
    import run_train
    data = tiny_prepared(str(tmp_path))
    td = str(tmp_path / 'run')
    args = train_args(data, td, '--epochs', '1', '--no-lrn', '--pool', '2x2',
                      '--activation', 'tanh', '--no-crop')
    assert run_train.main(args) == 0
    with open(os.path.join(td, 'run.json')) as f:
        state = json.load(f)
    assert (state['config']['use_lrn'], state['config']['pool'], state['config']['activation'],
            state['crop']) == (False, '2x2', 'tanh', False)
    err = state['history'][0]['train_top1_error']
    assert 0 <= err <= 1 and err * 8 == pytest.approx(round(err * 8))     # 8 images a epoch
    # resuming with another switch is refused in one line, not silently changed
    assert run_train.main(train_args(data, td, '--epochs', '2', '--lrn')) == 2
    assert run_train.main(train_args(data, td, '--epochs', '2')) == 0
    with open(os.path.join(td, 'run.json')) as f:
        assert json.load(f)['config']['use_lrn'] is False
    assert CROP == state['config']['input_size']


def test_colour_share_is_zero_for_grey_and_two_thirds_for_one_channel():
    from alexnet_tf1.training.board import colour_share
    rng = np.random.default_rng(0)
    grey = np.repeat(rng.normal(size=(11, 11, 1, 4)), 3, axis=2)
    red = np.zeros((11, 11, 3, 4))
    red[:, :, 0] = rng.normal(size=(11, 11, 4))
    np.testing.assert_allclose(colour_share(grey), 0, atol=1e-12)
    np.testing.assert_allclose(colour_share(red), 2 / 3)
    w = rng.normal(size=(5, 5, 3, 2))
    want = [np.sum((w[..., i] - w[..., i].mean(axis=2, keepdims=True)) ** 2) / np.sum(w[..., i] ** 2)
            for i in range(2)]
    np.testing.assert_allclose(colour_share(w), want)


def test_each_epoch_records_both_towers_colour_share_in_history_and_tensorboard(tmp_path):
    import glob
    import run_train
    from alexnet_tf1.training import checkpoints
    from alexnet_tf1.training.board import colour_share
    data = tiny_prepared(str(tmp_path))
    td = str(tmp_path / 'run')
    assert run_train.main(train_args(data, td, '--epochs', '1')) == 0
    with open(os.path.join(td, 'run.json')) as f:
        shares = json.load(f)['history'][0]['conv1_colour_share']
    reader = tf1.train.load_checkpoint(checkpoints.latest(td))
    want = [colour_share(reader.get_tensor(f'tower{t}/conv1/weights')).mean() for t in (0, 1)]
    np.testing.assert_allclose(shares, want, rtol=1e-5)
    tags = {v.tag: v.simple_value for path in glob.glob(os.path.join(td, 'events.*'))
            for e in tf1.train.summary_iterator(path) for v in e.summary.value}
    np.testing.assert_allclose([tags['conv1/colour_share_tower0'], tags['conv1/colour_share_tower1']],
                               want, rtol=1e-5)
