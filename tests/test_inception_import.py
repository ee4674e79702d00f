"""Keras' InceptionV3 and InceptionResNetV2 files (Keras 2 .h5, Keras 3 .weights.h5) into
inception-v3 / inception-resnet-v2: logits equal keras.applications' on the same weights and
batch within 1e-4 of the largest logit. Keras is the reference here, never in the model code."""
import os

import h5py
import numpy as np
import pytest

import run_eval
from alexnet_tf1.evaluation import evaluate
from alexnet_tf1.weights import keras_inception
from alexnet_tf1.config import defaults_for
from alexnet_tf1.weights.files import WeightFileError

keras = pytest.importorskip('keras')
SIZE = 107          # any size >= 75 fits both nets; smaller than 299 keeps the test quick
KERAS = {'inception-v3': 'InceptionV3', 'inception-resnet-v2': 'InceptionResNetV2'}


def keras_files(model, directory, size=SIZE):
    """A Keras model with random weights (moving statistics too), saved both ways."""
    # a layer of each kind first: the model's layers are then conv2d_1 ..., not conv2d ...
    keras.layers.Conv2D(1, 1), keras.layers.BatchNormalization()
    net = getattr(keras.applications, KERAS[model])(
        weights=None, input_shape=(size, size, 3), classifier_activation=None)
    rng = np.random.RandomState(0)
    for layer in net.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32) if w.ndim > 1
                               else rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
                               for w in ws])
    k3 = os.path.join(directory, f'{model}.weights.h5')
    net.save_weights(k3)
    k2 = os.path.join(directory, f'{model}.h5')
    from keras.src.legacy.saving import legacy_h5_format
    with h5py.File(k2, 'w') as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, net)
    return net, k2, k3


@pytest.fixture(scope='module')
def saved(tmp_path_factory):
    """{model: (Keras net, Keras 2 file, Keras 3 file)}, each made once, when first asked."""
    d, made = str(tmp_path_factory.mktemp('keras')), {}
    def get(model):
        if model not in made:
            made[model] = keras_files(model, d)
        return made[model]
    return get


@pytest.mark.parametrize('model, form', [
    ('inception-v3', 'keras2'), ('inception-v3', 'keras3'),
    # building Keras' InceptionResNetV2 takes over a minute here: pytest -m slow
    pytest.param('inception-resnet-v2', 'keras3', marks=pytest.mark.slow),
    pytest.param('inception-resnet-v2', 'keras2', marks=pytest.mark.slow)])
def test_logits_equal_keras(saved, model, form):
    net, k2, k3 = saved(model)
    path = k2 if form == 'keras2' else k3
    x = np.random.RandomState(1).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
    ref = net.predict(x / 127.5 - 1, verbose=0)           # Keras' preprocess_input, 'tf' mode
    if form == 'keras3':    # the names are offset: the creation order is read, not assumed
        with h5py.File(k3) as f:
            assert 'conv2d' not in {f['layers'][k]['vars'].attrs.get('name') for k in f['layers']}
    assert keras_inception.detect(path) == model
    r = evaluate.Restored.from_weights(path, model, gpus='cpu',
                                       config=defaults_for(model, input_size=SIZE))
    assert r.left == []
    ours = r.logits(x - 127.5)      # the project's convention: RGB minus the mean, 127.5
    assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()


def test_another_models_file_or_a_missing_layer_is_one_line(saved, tmp_path):
    config = defaults_for('inception-v3', input_size=SIZE)
    inp = keras.Input((32, 32, 3))      # a small conv + batch norm net: not Inception
    x = keras.layers.BatchNormalization(scale=False)(keras.layers.Conv2D(32, 3, use_bias=False)(inp))
    other = str(tmp_path / 'other.weights.h5')
    keras.Model(inp, keras.layers.Dense(1000)(keras.layers.GlobalAveragePooling2D()(x))
                ).save_weights(other)
    with pytest.raises(WeightFileError) as e:
        evaluate.Restored.from_weights(other, 'inception-v3', gpus='cpu', config=config)
    assert other in str(e.value) and '\n' not in str(e.value)
    k2, cut = saved('inception-v3')[1], str(tmp_path / 'cut.h5')
    with h5py.File(k2) as src, h5py.File(cut, 'w') as dst:
        names = [n.decode() if isinstance(n, bytes) else n for n in src.attrs['layer_names']]
        drop = [n for n in names if n.startswith('batch_normalization')][-1]
        for n in names:
            if n != drop:
                src.copy(src[n], dst, n)
        dst.attrs['layer_names'] = np.array([n.encode() for n in names if n != drop])
    with pytest.raises(WeightFileError, match='batch norm left for') as e:
        evaluate.Restored.from_weights(cut, 'inception-v3', gpus='cpu', config=config)
    assert '\n' not in str(e.value)


def test_a_keras3_file_whose_layers_carry_no_names_is_refused_in_one_line(saved, tmp_path,
                                                                          capsys):
    """Keras 3 releases before the layer's name was stored on 'vars': the creation order of
    the layers cannot be read, so the file is refused. It is still told from the file (by its
    batch norms), so the one line says that, not that it is no VGG file."""
    import shutil
    old = str(tmp_path / 'inception_v3_old.weights.h5')
    shutil.copy(saved('inception-v3')[2], old)
    with h5py.File(old, 'r+') as f:
        for g in f['layers'].values():
            if 'vars' in g:
                g['vars'].attrs.pop('name', None)
    args = ['--init-from', old, '--images', 'x.jpg', '--gpus', 'cpu']
    assert run_eval.main(args) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f'error: {old}: ') and 'no name' in err[0]
    assert 'Traceback' not in captured.out + captured.err


def test_run_eval_classifies_pictures_at_299_with_a_keras_file(tmp_path, capsys):
    from PIL import Image
    _, _, k3 = keras_files('inception-v3', str(tmp_path), size=299)
    pic = str(tmp_path / 'pic.jpg')
    Image.fromarray(np.random.RandomState(2).randint(0, 255, (300, 400, 3), np.uint8)).save(pic)
    assert run_eval.main(['--init-from', k3, '--images', pic, '--gpus', 'cpu',
                          '--sheet', str(tmp_path / 'top5.png')]) == 0
    out = capsys.readouterr().out
    assert 'inception-v3 weights' in out and '127.5' in out and 'pic.jpg' in out
