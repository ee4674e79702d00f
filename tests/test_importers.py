"""Published weight files in and out (bvlc_alexnet.npy, Keras VGG .h5), the restricted
unpickler, and the Classifier API. Files are written by the tests in the published layouts;
models run at small inputs (AlexNet 99 px, VGG16 64 px) with 10 classes."""
import json
import os
import pickle

import h5py
import numpy as np
import pytest

from alexnet_tf1.training import checkpoints, graph

from alexnet_tf1 import config, devices

from alexnet_tf1.weights import importers

from alexnet_tf1.data import safe_pickle
from alexnet_tf1.evaluation.classifier import Classifier
from alexnet_tf1.weights.importers import WeightFileError
from alexnet_tf1.tf_compat import session, tf1


def open_graph(cfg, seed=0):
    placement = devices.resolve('cpu', towers=2 if cfg.model == 'alexnet' else 1)
    g = graph.build(cfg, placement, seed=seed, train=False)
    sess = session(g.graph, placement.session_config())
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
    return g, sess


# ------------------------------------------------------------------ safe_pickle

class RunsCode:
    def __init__(self, call, arg):
        self.call, self.arg = call, arg

    def __reduce__(self):
        return self.call, (self.arg,)


def test_safe_load_reads_arrays_scalars_and_containers():
    value = {'a': [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(2, np.int64)],
             'b': (np.float32(1.5), np.array(['x', 'y'])), 'c': b'bytes', 'd': None, 'e': 3}
    for protocol in (2, 3, 4, 5):
        got = safe_pickle.safe_loads(pickle.dumps(value, protocol=protocol))
        np.testing.assert_array_equal(got['a'][0], value['a'][0])
        assert got['a'][0].dtype == np.float32 and got['a'][1].dtype == np.int64
        assert got['b'][0] == np.float32(1.5) and list(got['b'][1]) == ['x', 'y']
        assert (got['c'], got['d'], got['e']) == (b'bytes', None, 3)


def test_python2_numpy_pickle_reads_with_latin1():
    """A Python 2 pickle of a float32 array (as bvlc_alexnet.npy's are), written by hand."""
    raw = np.array([1.0, -2.0], '<f4').tobytes().decode('latin1')
    p2 = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00"
          b"\x85U\x01b\x87Rq\x03(K\x01K\x02\x85cnumpy\ndtype\nq\x04U\x02f4K\x00K\x01\x87Rq\x05"
          b"(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89U\x08"
          + raw.encode('latin1') + b"tb.")
    got = safe_pickle.safe_loads(p2, encoding='latin1')
    np.testing.assert_array_equal(got, np.array([1.0, -2.0], np.float32))


@pytest.mark.parametrize('call', ['os.system', 'builtins.eval', 'subprocess.call'])
def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path, call):
    marker = tmp_path / 'ran'
    module, name = call.split('.')
    command = {'os.system': f'touch {marker}',
               'builtins.eval': f"open({str(marker)!r}, 'w').close()",
               'subprocess.call': f'touch {marker}'}[call]
    # protocol 0 by hand, so the module name is exactly what the test says
    payload = f"c{module}\n{name}\n(V{command}\ntR.".encode()
    with pytest.raises(safe_pickle.RefusedPickle) as e:
        safe_pickle.safe_loads(payload, source='evil.pkl')
    assert f'tried to load {call}' in str(e.value) and 'unpickling runs code' in str(e.value)
    assert '\n' not in str(e.value)
    assert not marker.exists()


def test_an_npy_whose_pickle_would_run_code_is_refused(tmp_path):
    marker = tmp_path / 'ran'
    path = tmp_path / 'evil.npy'
    with open(path, 'wb') as f:
        np.save(f, {'conv1': RunsCode(os.system, f'touch {marker}')}, allow_pickle=True)
    with pytest.raises(WeightFileError, match=r'tried to load (posix|os|nt)\.system'):
        importers.load_caffe_alexnet_npy(path)
    assert not marker.exists()


def test_load_npy_reads_plain_arrays_like_np_load(tmp_path):
    for a in (np.arange(12, dtype=np.float32).reshape(3, 4), np.asfortranarray(np.eye(3))):
        np.save(tmp_path / 'a.npy', a)
        got = safe_pickle.load_npy(tmp_path / 'a.npy')
        np.testing.assert_array_equal(got, a)
        assert got.dtype == a.dtype


# ------------------------------------------------------------------ Caffe AlexNet

CAFFE_SHAPES_99 = {     # the published layout at a 99-px input: pool5 is 2x2x256
    'conv1': (11, 11, 3, 96), 'conv2': (5, 5, 48, 256), 'conv3': (3, 3, 256, 384),
    'conv4': (3, 3, 192, 384), 'conv5': (3, 3, 192, 256), 'fc6': (2 * 2 * 256, 4096),
    'fc7': (4096, 4096), 'fc8': (4096, 10)}


@pytest.fixture(scope='module')
def alexnet_file(tmp_path_factory):
    cfg = importers.caffe_alexnet_config(input_size=99, num_classes=10)
    g, sess = open_graph(cfg, seed=1)
    path = str(tmp_path_factory.mktemp('caffe') / 'bvlc_alexnet.npy')
    importers.export_caffe_alexnet_npy(sess, g.net, path)
    x = np.random.RandomState(0).randn(3, 99, 99, 3).astype(np.float32) * 50
    ep = g.net.end_points
    run = sess.run({'logits': g.logits, 'pool5': ep['pool5'], 'fc6': ep['fc6']}, {g.images: x})
    sess.close()
    return cfg, path, x, run


def test_caffe_file_has_the_published_layout(alexnet_file):
    cfg, path, _, run = alexnet_file
    data = np.load(path, allow_pickle=True, encoding='latin1').item()     # our own file
    assert {k: v[0].shape for k, v in data.items()} == CAFFE_SHAPES_99
    assert all(isinstance(v, list) and v[1].shape == (v[0].shape[-1],) for v in data.values())
    # fc6 rows: pool5 in (h, w, c) order, c over both groups (tower 0's 128 maps first)
    pool5 = np.concatenate(run['pool5'], axis=-1).reshape(3, -1)
    fc6 = np.maximum(pool5 @ data['fc6'][0] + data['fc6'][1], 0)
    np.testing.assert_allclose(fc6, np.concatenate(run['fc6'], -1), rtol=1e-4,
                               atol=1e-5 * np.abs(fc6).max())


def test_caffe_alexnet_round_trip_gives_identical_logits_even_with_fc8_split(alexnet_file):
    cfg, path, x, run = alexnet_file
    clf = Classifier.from_weights(path, 'alexnet', config=cfg.with_(fc8='split'))
    z = clf.logits(x[..., ::-1])    # the file takes BGR; every import takes RGB
    assert clf.g.net.params[('fc8', 1)]['w'].shape == (4096, 5)     # halves on two towers
    clf.close()
    np.testing.assert_allclose(z, run['logits'], rtol=0, atol=1e-5 * np.abs(z).max())


def save_dict(path, d):
    with open(path, 'wb') as f:
        np.save(f, d, allow_pickle=True)


def layer(shape):
    return [np.zeros(shape, np.float32), np.zeros(shape[-1], np.float32)]


def test_caffe_wrong_shape_is_a_one_line_error_naming_the_layer(tmp_path):
    save_dict(tmp_path / 'w.npy', {'conv1': layer((11, 11, 3, 96)),
                                   'conv2': layer((5, 5, 96, 256))})
    with pytest.raises(WeightFileError) as e:
        importers.load_caffe_alexnet_npy(tmp_path / 'w.npy')
    msg = str(e.value)
    assert "'conv2'" in msg and '(5, 5, 96, 256)' in msg and '(5, 5, 48, 256)' in msg
    assert '\n' not in msg


def test_caffe_unknown_or_missing_layer_is_an_error(tmp_path):
    save_dict(tmp_path / 'u.npy', {'conv1': layer((11, 11, 3, 96)), 'conv_2': layer((1,))})
    with pytest.raises(WeightFileError, match="unknown layer 'conv_2'"):
        importers.load_caffe_alexnet_npy(tmp_path / 'u.npy')
    save_dict(tmp_path / 'm.npy', {'conv1': layer((11, 11, 3, 96))})
    with pytest.raises(WeightFileError, match="layer 'conv2' is missing"):
        importers.load_caffe_alexnet_npy(tmp_path / 'm.npy')


def test_caffe_config_and_input_convention():
    cfg = importers.caffe_alexnet_config()
    assert (cfg.lrn.bias, cfg.lrn.alpha, cfg.lrn.beta, cfg.lrn.depth_radius) == (1.0, 2e-5, 0.75, 2)
    assert (cfg.input_size, cfg.num_classes) == (227, 1000)
    rgb = np.zeros((1, 2, 2, 3), np.float32)
    rgb[..., 0] = 200.0                                        # red
    bgr = importers.caffe_input(rgb)
    np.testing.assert_allclose(bgr[0, 0, 0], [-104.00698793, -116.66876762, 200 - 122.67891434],
                               rtol=1e-6)


# ------------------------------------------------------------------ Keras VGG

@pytest.fixture(scope='module')
def vgg_file(tmp_path_factory):
    cfg = config.defaults_for('vgg-d', input_size=64, num_classes=10)
    g, sess = open_graph(cfg, seed=1)
    path = str(tmp_path_factory.mktemp('keras') / 'vgg16.h5')
    importers.export_keras_vgg_h5(sess, g.net, path)
    x = np.random.RandomState(0).randn(2, 64, 64, 3).astype(np.float32) * 60
    ep = g.net.end_points
    run = sess.run({'logits': g.logits, 'pool5': ep['pool5'][0], 'fc6': ep['fc6'][0]},
                   {g.images: x})
    sess.close()
    return cfg, path, x, run


def test_keras_file_has_the_published_layout(vgg_file):
    _, path, _, run = vgg_file
    with h5py.File(path, 'r') as f:
        names = [n.decode() for n in f.attrs['layer_names']]
        assert names[:4] == ['input_1', 'block1_conv1', 'block1_conv2', 'block1_pool']
        assert names[-4:] == ['flatten', 'fc1', 'fc2', 'predictions']
        assert [n.decode() for n in f['block3_conv3'].attrs['weight_names']] == \
            ['block3_conv3_W_1:0', 'block3_conv3_b_1:0']
        assert f['block5_conv3']['block5_conv3_W_1:0'].shape == (3, 3, 512, 512)
        w, b = np.asarray(f['fc1']['fc1_W_1:0']), np.asarray(f['fc1']['fc1_b_1:0'])
    assert w.shape == (2 * 2 * 512, 4096)
    # fc1 rows: pool5 flattened channels-last (h, w, c), as Keras' Flatten
    fc1 = np.maximum(run['pool5'].reshape(2, -1) @ w + b, 0)
    np.testing.assert_allclose(fc1, run['fc6'], rtol=1e-4, atol=1e-5 * np.abs(fc1).max())


def test_keras_vgg16_round_trip_gives_identical_logits(vgg_file):
    cfg, path, x, run = vgg_file
    clf = Classifier.from_weights(path, 'vgg-d', config=cfg)
    z = clf.logits(x[..., ::-1])    # the file takes BGR; every import takes RGB
    clf.close()
    np.testing.assert_allclose(z, run['logits'], rtol=0, atol=1e-5 * np.abs(z).max())


def keras2_file(path, layers):
    """Keras 2 save_weights naming: weight_names 'name/kernel:0' -> nested datasets."""
    with h5py.File(path, 'w') as f:
        f.attrs['layer_names'] = np.array([n.encode() for n in layers])
        for name, shape in layers.items():
            g = f.create_group(name)
            wn = [f'{name}/kernel:0', f'{name}/bias:0']
            g.attrs['weight_names'] = np.array([n.encode() for n in wn])
            g.create_dataset(wn[0], data=np.zeros(shape, np.float32))
            g.create_dataset(wn[1], data=np.zeros(shape[-1], np.float32))


def test_keras_wrong_shape_is_a_one_line_error_naming_the_layer(tmp_path):
    keras2_file(tmp_path / 'w.h5', {'block1_conv1': (3, 3, 3, 64), 'block1_conv2': (3, 3, 64, 32)})
    with pytest.raises(WeightFileError) as e:
        importers.load_keras_vgg_h5(tmp_path / 'w.h5', 'vgg-d')
    msg = str(e.value)
    assert "'block1_conv2'" in msg and '(3, 3, 64, 32)' in msg and '(3, 3, 64, 64)' in msg
    assert '\n' not in msg


def test_keras_unknown_layer_is_an_error(tmp_path):
    keras2_file(tmp_path / 'u.h5', {'block1_conv1': (3, 3, 3, 64), 'block1_convX': (3, 3, 64, 64)})
    with pytest.raises(WeightFileError, match="unknown layer 'block1_convX'"):
        importers.load_keras_vgg_h5(tmp_path / 'u.h5', 'vgg-d')


def test_keras_layer_without_weight_names_is_read_from_its_datasets(tmp_path):
    with h5py.File(tmp_path / 'n.h5', 'w') as f:
        g = f.create_group('block1_conv1')
        g.create_dataset('bias:0', data=np.arange(64, dtype=np.float32))
        g.create_dataset('kernel:0', data=np.ones((3, 3, 3, 64), np.float32))
    with pytest.raises(WeightFileError, match="layer 'block1_conv2' is missing"):
        importers.load_keras_vgg_h5(tmp_path / 'n.h5', 'vgg-d')   # block1_conv1 read fine


def test_rgb_input_reverses_conv1_input_channels(vgg_file):
    cfg, path, _, _ = vgg_file
    bgr = importers.load_keras_vgg_h5(path, 'vgg-d', cfg)
    rgb = importers.load_keras_vgg_h5(path, 'vgg-d', cfg, rgb_input=True)
    np.testing.assert_array_equal(rgb['conv1_1'][0], bgr['conv1_1'][0][:, :, ::-1, :])
    np.testing.assert_array_equal(rgb['conv1_2'][0], bgr['conv1_2'][0])
    assert set(bgr) == {f'conv{b}_{i}' for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
                        for i in range(1, n + 1)} | {'fc6', 'fc7', 'fc8'}


# ------------------------------------------------------------------ Classifier

def test_classifier_from_checkpoint_gives_the_graphs_logits(tmp_path):
    cfg = config.defaults_for('lenet5')
    g, sess = open_graph(cfg, seed=4)
    ckpt = checkpoints.Checkpoints(g.graph, str(tmp_path))
    state = {'model': 'lenet5', 'config': cfg.to_dict(), 'global_step': 0}
    ckpt.save(sess, state)
    x = np.random.RandomState(0).randn(5, 32, 32, 1).astype(np.float32)
    want = sess.run(g.logits, {g.images: x})
    sess.close()
    clf = Classifier.from_checkpoint(str(tmp_path))
    assert clf.config.model == 'lenet5'
    np.testing.assert_allclose(clf.logits(x, batch_size=2), want, rtol=1e-6)
    assert json.loads(json.dumps(clf.config.to_dict()))['input_size'] == 32
    clf.close()


def test_a_truncated_keras_file_is_one_line_naming_the_file(vgg_file, tmp_path, capsys):
    import run_eval
    _, path, _, _ = vgg_file
    bad = tmp_path / 'vgg16_cut.h5'
    bad.write_bytes(open(path, 'rb').read()[:200_000])
    assert run_eval.main(['--init-from', str(bad), '--images', 'x.jpg', '--gpus', 'cpu']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0]
