"""Published weights compute what their publishers computed: imported bvlc-layout AlexNet,
CaffeNet and GoogLeNet weights against a NumPy implementation of Caffe's layers
(caffe_numpy.py), fed this project's one input convention (RGB minus the weights' mean)."""
import numpy as np
import pytest

import caffe_numpy
from alexnet_tf1.weights import caffe_npy, imagenet, importers
from alexnet_tf1.evaluation.classifier import Classifier
from alexnet_tf1.evaluation.evaluate import Restored


def random_layers(shapes, seed, gains=None):
    """Random weights of the given shapes: He-like scale (gain / sqrt(fan_in)), biases small
    positive, so activations stay O(1-100) through every layer and LRN matters."""
    rs = np.random.RandomState(seed)
    out = {}
    for name, (ws, bs) in shapes.items():
        gain = (gains or {}).get(name, 1.6)
        w = rs.standard_normal(ws).astype(np.float32) * np.float32(gain / np.sqrt(np.prod(ws[:-1])))
        out[name] = [w, rs.uniform(0, 0.5, bs).astype(np.float32)]
    return out


def save(path, layers):
    with open(path, 'wb') as f:
        np.save(f, layers, allow_pickle=True)
    return str(path)


def rgb_images(n, size, seed):
    return np.random.RandomState(seed).uniform(0, 255, (n, size, size, 3)).astype(np.float32)


def relative_gap(z, ref):
    return float(np.abs(z - ref).max() / np.abs(ref).max())


@pytest.fixture(scope='module')
def alexnet_file(tmp_path_factory):
    # conv1 strong (outputs ~100s) so that LRN's denominator is far from 1 at maps 47/48
    layers = random_layers(caffe_npy.caffe_alexnet_shapes(), 0, {'conv1': 3.0})
    path = save(tmp_path_factory.mktemp('bvlc') / 'bvlc_alexnet.npy', layers)
    rgb = rgb_images(2, 227, 1)
    return path, layers, rgb


@pytest.mark.parametrize('model', ['alexnet', 'caffenet'])
def test_imported_caffe_weights_give_caffes_logits_from_rgb_input(alexnet_file, model):
    path, layers, rgb = alexnet_file
    bgr = rgb[..., ::-1] - np.float32(importers.CAFFE_MEAN_BGR)
    ref = caffe_numpy.alexnet(bgr, layers, caffenet=model == 'caffenet')
    clf = Classifier.from_weights(path, model)
    z = clf.logits(rgb - imagenet.mean_rgb(model))
    clf.close()
    assert relative_gap(z, ref) < 1e-4
    assert np.argmax(z, 1).tolist() == np.argmax(ref, 1).tolist()


def test_a_window_kept_inside_each_tower_is_not_caffes(alexnet_file):
    """The test above has teeth: the paper's tower-local LRN on the same weights and input is
    measurably off Caffe's logits."""
    path, layers, rgb = alexnet_file
    bgr = rgb[..., ::-1] - np.float32(importers.CAFFE_MEAN_BGR)
    ref = caffe_numpy.alexnet(bgr, layers)
    cfg = importers.caffe_alexnet_config(lrn_span='tower')
    r = Restored.from_weights(path, 'alexnet', config=cfg, gpus='cpu')
    z = r.logits(rgb - imagenet.mean_rgb('alexnet'))
    r.sess.close()
    assert relative_gap(z, ref) > 1e-3


def test_run_evals_path_gives_the_same_logits_as_the_classifier(alexnet_file):
    path, layers, rgb = alexnet_file
    ref = caffe_numpy.alexnet(rgb[..., ::-1] - np.float32(importers.CAFFE_MEAN_BGR), layers)
    r = Restored.from_weights(path, 'alexnet', gpus='cpu')        # what run_eval.py builds
    assert r.config.lrn_span == 'all' and r.left == []
    z = r.logits(rgb - imagenet.mean_rgb('alexnet'))
    r.sess.close()
    assert relative_gap(z, ref) < 1e-4


def test_imported_bvlc_googlenet_gives_caffes_logits(tmp_path):
    layers = random_layers(caffe_npy.googlenet_shapes(1000), 2, {'conv1_7x7_s2': 3.0})
    # caffe-tensorflow's own form: layer -> {'weights', 'biases'}
    path = save(tmp_path / 'bvlc_googlenet.npy',
                {k: {'weights': w, 'biases': b} for k, (w, b) in layers.items()})
    rgb = rgb_images(1, 224, 3)
    ref = caffe_numpy.googlenet(rgb[..., ::-1] - np.float32(importers.CAFFE_MEAN_BGR), layers)
    clf = Classifier.from_weights(path, 'googlenet')
    z = clf.logits(rgb - imagenet.mean_rgb('googlenet'))
    clf.close()
    assert relative_gap(z, ref) < 1e-4


@pytest.fixture(scope='module')
def keras3_vgg16(tmp_path_factory):
    from alexnet_tf1 import tf_compat  # noqa: F401  (sets Keras' environment before it loads)
    import keras
    model = keras.applications.VGG16(weights=None, classifier_activation=None)
    path = str(tmp_path_factory.mktemp('keras3') / 'vgg16.weights.h5')
    model.save_weights(path)
    rgb = rgb_images(2, 224, 4)
    ref = model.predict(keras.applications.vgg16.preprocess_input(rgb.copy()), verbose=0)
    del model
    return path, rgb, ref


def test_keras3_weights_h5_vgg16_gives_keras_logits_from_rgb_input(keras3_vgg16):
    import h5py
    from alexnet_tf1.weights import keras_vgg
    path, rgb, ref = keras3_vgg16
    assert keras_vgg.vgg_variant(path) == 'vgg-d'
    clf = Classifier.from_weights(path, 'vgg-d')
    z = clf.logits(rgb - imagenet.mean_rgb('vgg-d'))
    clf.close()
    assert relative_gap(z, ref) < 1e-4
    # older Keras 3 files name each layer only by its class (conv2d_7): read by position
    with h5py.File(path, 'r+') as f:
        for g in f['layers'].values():
            if 'vars' in g and 'name' in g['vars'].attrs:
                del g['vars'].attrs['name']
    clf = Classifier.from_weights(path, 'vgg-d')
    z2 = clf.logits(rgb - imagenet.mean_rgb('vgg-d'))
    clf.close()
    np.testing.assert_array_equal(z2, z)


def test_run_eval_classifies_pictures_with_published_weights_and_no_data_dir(tmp_path, capsys):
    """--init-from FILE --images: named ILSVRC classes, no data directory. A plain-colour
    picture makes all ten crops the same, so one Caffe forward pass is the reference."""
    from PIL import Image
    import run_eval
    layers = random_layers(caffe_npy.caffe_alexnet_shapes(), 6, {'conv1': 3.0, 'fc8': 0.05})
    path = save(tmp_path / 'bvlc_alexnet.npy', layers)
    colour = np.array([200, 90, 30], np.uint8)
    Image.fromarray(np.tile(colour, (256, 256, 1))).save(tmp_path / 'a.png')
    rgb = np.tile(colour.astype(np.float32), (1, 227, 227, 1))
    z = caffe_numpy.alexnet(rgb[..., ::-1] - np.float32(importers.CAFFE_MEAN_BGR), layers)[0]
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    names = [line.rstrip('\n').split('\t')[1].split(',')[0]
             for line in open(imagenet.HERE + '/ilsvrc2012_synsets.txt')]
    top5 = np.argsort(-p)[:5]
    code = run_eval.main(['--init-from', path, '--images', str(tmp_path / 'a.png'), '--gpus',
                          'cpu', '--sheet', str(tmp_path / 'top5.png')])
    out = capsys.readouterr().out
    assert code == 0, out
    line = [x for x in out.splitlines() if x.startswith(f"{tmp_path / 'a.png'}: ")]
    assert len(line) == 1, out
    printed = [item.rsplit(' ', 1) for item in line[0].split(': ', 1)[1].split(', ')]
    assert [name for name, _ in printed] == [names[i] for i in top5]
    for (_, share), i in zip(printed, top5):        # printed to 0.1%, float32 against float64
        assert abs(float(share.rstrip('%')) - 100 * p[i]) <= 0.06
    assert (tmp_path / 'top5.png').stat().st_size > 0


def test_published_class_names_are_the_1000_ilsvrc_classes_in_caffes_order():
    s = imagenet.synsets()
    assert len(s) == 1000 and len({w for w, _ in s}) == 1000
    assert [w for w, _ in s] == sorted(w for w, _ in s)
    assert s[0] == ('n01440764', 'tench, Tinca tinca') and s[285][1] == 'Egyptian cat'


def test_a_layer_left_at_its_initialisation_is_reported(alexnet_file):
    path, _, _ = alexnet_file
    r = Restored.from_weights(path, 'alexnet', num_classes=10, gpus='cpu')
    r.sess.close()
    assert len(r.left) == 1 and r.left[0].startswith('fc8') and '(4096, 1000)' in r.left[0]


def test_caffes_mean_image_file_is_read_as_bgr_chw(tmp_path):
    caffe_mean = np.stack([np.full((256, 256), v, np.float32) for v in (104.0, 117.0, 123.0)])
    np.save(tmp_path / 'ilsvrc_2012_mean.npy', caffe_mean)       # (3, 256, 256) BGR
    m = imagenet.mean_image(str(tmp_path / 'ilsvrc_2012_mean.npy'), 256)
    assert m.shape == (256, 256, 3) and m[5, 7].tolist() == [123.0, 117.0, 104.0]


@pytest.mark.parametrize('damage', ['truncated', 'not_npy', 'missing_layer'])
def test_a_bad_published_file_is_one_line_naming_the_file(alexnet_file, tmp_path, damage, capsys):
    import run_eval
    path, layers, _ = alexnet_file
    bad = tmp_path / 'bad.npy'
    if damage == 'truncated':
        bad.write_bytes(open(path, 'rb').read()[:100_000])
    elif damage == 'not_npy':
        bad.write_text('<html>404</html>')
    else:
        save(bad, {k: v for k, v in layers.items() if k != 'conv4'})
    assert run_eval.main(['--init-from', str(bad), '--images', 'x.jpg', '--gpus', 'cpu']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0]
    if damage == 'missing_layer':
        assert "'conv4'" in err[0]


def _picture(tmp_path):
    from PIL import Image
    path = tmp_path / 'p.jpg'
    Image.fromarray(rgb_images(1, 300, 9)[0].astype(np.uint8)).save(path)
    return str(path)


def _classified(capsys, args):
    import run_eval
    code = run_eval.main(args + ['--gpus', 'cpu'])
    out = capsys.readouterr().out.splitlines()
    assert code == 0, out
    names = {n.split(',')[0] for _, n in imagenet.synsets()}
    line = [x for x in out if x.startswith(args[args.index('--images') + 1] + ': ')]
    assert len(line) == 1
    shown = [item.rsplit(' ', 1)[0] for item in line[0].split(': ', 1)[1].split(', ')]
    assert len(shown) == 5 and set(shown) <= names
    return out


def test_googlenet_file_classifies_pictures_without_a_data_dir(tmp_path, capsys):
    layers = random_layers(caffe_npy.googlenet_shapes(1000), 7, {'loss3_classifier': 0.05})
    path = save(tmp_path / 'bvlc_googlenet.npy', layers)
    out = _classified(capsys, ['--init-from', path, '--model', 'googlenet', '--images',
                               _picture(tmp_path), '--sheet', str(tmp_path / 's.png')])
    assert out[0].startswith(f'{path}: googlenet weights')


def test_googlenet_file_read_as_alexnet_says_which_model_to_use(tmp_path, capsys):
    import run_eval
    layers = random_layers(caffe_npy.googlenet_shapes(1000), 7)
    path = save(tmp_path / 'bvlc_googlenet.npy', layers)
    assert run_eval.main(['--init-from', path, '--images', 'x.jpg', '--gpus', 'cpu']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and '--model googlenet' in err[0] and path in err[0]


def test_keras3_vgg16_file_classifies_pictures_without_a_data_dir(keras3_vgg16, tmp_path, capsys):
    path, _, _ = keras3_vgg16
    out = _classified(capsys, ['--init-from', path, '--images', _picture(tmp_path),
                               '--sheet', str(tmp_path / 's.png')])
    assert out[0].startswith(f'{path}: vgg-d weights')          # told from the file
