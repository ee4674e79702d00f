"""VGG19 (vgg-e) from Keras' own files against keras.applications.VGG19 on the same weights:
a Keras 3 `.weights.h5`, the legacy `.h5` Keras 3 still writes, and a Keras 2 full-model `.h5`
(model_weights/<layer>/<layer>/kernel:0, as Keras 2's model.save wrote it), each read by the
loader run_eval.py --init-from and Classifier.from_weights use (Restored.from_weights), fed
this project's convention (RGB minus the VGG mean) while Keras gets its own preprocess_input.

The default run uses a 64-px input: every layer has VGG19's name and shape but fc1, which reads
pool5's 2x2x512 (still (h, w, c) ordered, as at 224) instead of 7x7x512. The 224-px case, the
published shapes throughout, is pytest -m slow (80 s on two busy cores).
"""
import os

import h5py
import numpy as np
import pytest

from alexnet_tf1.weights import keras_vgg, imagenet
from alexnet_tf1.config import defaults_for
from alexnet_tf1.evaluation.evaluate import Restored

keras = pytest.importorskip('keras')

# Simonyan and Zisserman 2015, Table 1, column E: 2, 2, 4, 4, 4 3x3 convs of 64, 128, 256, 512,
# 512 maps, then FC-4096, FC-4096, FC-1000. (our layer, Keras' layer, output width)
E_LAYERS = [(f'conv{b}_{i}', f'block{b}_conv{i}', width)
            for b, (n, width) in enumerate(zip((2, 2, 4, 4, 4), (64, 128, 256, 512, 512)), 1)
            for i in range(1, n + 1)] + [('fc6', 'fc1', 4096), ('fc7', 'fc2', 4096),
                                         ('fc8', 'predictions', 1000)]


def seeded_weights(model, seed=0):
    """He-scaled normal kernels and small biases, so every hidden layer's output stays O(1-100);
    the classifier's kernel scaled down so the logits spread over a few units and the softmax
    is neither one-hot nor flat: a wrong kernel anywhere moves the probabilities. Returns
    {layer name: [kernel, bias]} as set."""
    rng, out = np.random.default_rng(seed), {}
    for layer in model.layers:
        if layer.weights:
            shape = tuple(layer.kernel.shape)
            scale = np.sqrt(2.0 / np.prod(shape[:-1])) * (0.02 if layer.name == 'predictions'
                                                           else 1.0)
            out[layer.name] = [rng.standard_normal(shape, np.float32) * np.float32(scale),
                               rng.uniform(-0.05, 0.05, shape[-1:]).astype(np.float32)]
            layer.set_weights(out[layer.name])
    return out


def keras2_full_model_file(path, model, weights):
    """What Keras 2's model.save('x.h5') wrote: the weights under model_weights, with the
    layer and weight names as attributes, each dataset under a group of its layer's name."""
    with h5py.File(path, 'w') as f:
        for group in (f, f.create_group('model_weights')):
            group.attrs['keras_version'] = b'2.13.1'
            group.attrs['backend'] = b'tensorflow'
        root = f['model_weights']
        root.attrs['layer_names'] = np.array([layer.name.encode() for layer in model.layers])
        for layer in model.layers:
            g = root.create_group(layer.name)
            arrays = weights.get(layer.name, [])
            names = [f'{layer.name}/{k}:0' for k in ('kernel', 'bias')][:len(arrays)]
            g.attrs['weight_names'] = np.array([n.encode() for n in names], dtype='S')
            for n, a in zip(names, arrays):
                g.create_dataset(n, data=a)


def make(directory, size):
    """Keras' VGG19 with seeded weights, its logits on two images, and the three files."""
    from keras.src.legacy.saving import legacy_h5_format
    model = keras.applications.VGG19(weights=None, input_shape=(size, size, 3),
                                     classifier_activation=None)
    weights = seeded_weights(model)
    rgb = np.random.RandomState(1).uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    ref = np.asarray(model.predict(keras.applications.vgg19.preprocess_input(rgb.copy()),
                                   verbose=0))
    files = {'keras3': os.path.join(directory, 'vgg19.weights.h5'),
             'keras3-legacy': os.path.join(directory, 'vgg19.h5'),
             'keras2': os.path.join(directory, 'vgg19_keras2.h5')}
    model.save_weights(files['keras3'])
    with h5py.File(files['keras3-legacy'], 'w') as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    keras2_full_model_file(files['keras2'], model, weights)
    # the hand-written Keras 2 file is one Keras reads back by name, to the same logits
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([np.zeros(v.shape, np.float32) for v in layer.weights])
    with h5py.File(files['keras2'], 'r') as f:
        legacy_h5_format.load_weights_from_hdf5_group_by_name(f['model_weights'], model)
    again = model.predict(keras.applications.vgg19.preprocess_input(rgb.copy()), verbose=0)
    np.testing.assert_array_equal(again, ref)
    return {'rgb': rgb, 'ref': ref, 'files': files, 'weights': weights}


@pytest.fixture(scope='module')
def made(tmp_path_factory):
    """make() once per input size, when first asked."""
    cache = {}
    def get(size):
        if size not in cache:
            cache[size] = make(str(tmp_path_factory.mktemp(f'vgg19_{size}')), size)
        return cache[size]
    return get


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize('size', [64, pytest.param(224, marks=pytest.mark.slow)])
@pytest.mark.parametrize('form', ['keras3', 'keras3-legacy', 'keras2'])
def test_vgg19_file_gives_keras_logits(made, form, size):
    m = made(size)
    path = m['files'][form]
    assert keras_vgg.vgg_variant(path) == 'vgg-e'         # what run_eval.py tells from the file
    r = Restored.from_weights(path, 'vgg-e', gpus='cpu', config=defaults_for('vgg-e',
                                                                             input_size=size))
    try:
        assert r.left == []
        # every tensor of the file is in the net, under the layer Table 1 puts it in
        ours = r.sess.run({name: (p['w'], p['b']) for (name, _), p in r.g.net.params.items()})
        assert sorted(ours) == sorted(t for t, _, _ in E_LAYERS)
        assert sorted(m['weights']) == sorted(k for _, k, _ in E_LAYERS)
        for table_name, keras_name, width in E_LAYERS:
            w, b = m['weights'][keras_name]
            if table_name == 'conv1_1':
                w = w[:, :, ::-1, :]            # the file takes BGR, the net RGB
            assert w.shape[-1] == width, keras_name
            np.testing.assert_array_equal(ours[table_name][0], w, err_msg=keras_name)
            np.testing.assert_array_equal(ours[table_name][1], b, err_msg=keras_name)
        z = r.logits(m['rgb'] - imagenet.mean_rgb('vgg-e'))
    finally:
        r.close()
    ref = m['ref']
    assert z.shape == ref.shape == (2, 1000)
    assert np.abs(softmax(z) - softmax(ref)).max() < 1e-4
    assert np.abs(z - ref).max() <= 1e-4 * np.abs(ref).max()
    assert np.argmax(z, 1).tolist() == np.argmax(ref, 1).tolist()
