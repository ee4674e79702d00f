"""python -m alexnet_tf1.weights.export CHECKPOINT OUT, end to end through its main(): a checkpoint of
this project written in its model's published layout and read back by other code - NumPy for
bvlc_alexnet.npy's arrays against TF's own checkpoint reader, Keras for a VGG16 .h5, whose
logits on the same (BGR) input must be ours."""
import hashlib
import os

import numpy as np
import pytest

from alexnet_tf1 import devices

from alexnet_tf1.weights import export

from alexnet_tf1.training import graph
from alexnet_tf1.training.checkpoints import Checkpoints
from alexnet_tf1.config import ModelConfig
from alexnet_tf1.tf_compat import session, tf, tf1


def he_checkpoint(train_dir, cfg, seed=0):
    """A checkpoint whose weights are He-scaled normal and biases small: outputs O(1) through
    every layer, so a misplaced array shows in the logits. Returns (prefix, session, graph)."""
    placement = devices.resolve('cpu', towers=2 if cfg.model == 'alexnet' else 1)
    g = graph.build(cfg, placement, seed=seed, train=False)
    ck = Checkpoints(g.graph, train_dir)
    sess = session(g.graph, placement.session_config())
    rng = np.random.default_rng(seed)
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
        for p in g.net.params.values():
            w = p['w']
            fan_in = int(np.prod(w.shape[:-1]))
            w.load(rng.standard_normal(w.shape, np.float32) * np.float32(np.sqrt(2 / fan_in)),
                   sess)
            p['b'].load(rng.uniform(0, 0.1, p['b'].shape).astype(np.float32), sess)
    path = ck.save(sess, {'model': cfg.model, 'config': cfg.to_dict(), 'global_step': 5})
    return path, sess, g


def digest(prefix):
    files = sorted(f for f in os.listdir(os.path.dirname(prefix))
                   if f.startswith(os.path.basename(prefix)))
    h = hashlib.sha256()
    for f in files:
        with open(os.path.join(os.path.dirname(prefix), f), 'rb') as fh:
            h.update(fh.read())
    return h.hexdigest()


def test_alexnet_exports_as_bvlc_alexnet_npy(tmp_path, capsys):
    """bvlc_alexnet.npy: one [weights, biases] per layer, the towers' outputs side by side
    (tower 0's first), fc8 whole, and conv1's input channels in Caffe's BGR order."""
    cfg = ModelConfig(num_classes=10, input_size=67)
    prefix, sess, _ = he_checkpoint(str(tmp_path / 'run'), cfg)
    sess.close()
    before = digest(prefix)
    out = str(tmp_path / 'bvlc_alexnet.npy')
    assert export.main([str(tmp_path / 'run'), out]) == 0
    assert f'wrote {out}: alexnet' in capsys.readouterr().out
    assert digest(prefix) == before                     # the checkpoint is untouched
    layers = np.load(out, allow_pickle=True, encoding='latin1').item()
    reader = tf.train.load_checkpoint(prefix)
    names = reader.get_variable_to_shape_map()

    def towers(layer, key):
        return [reader.get_tensor(n) for n in sorted(names)
                if n.startswith(('tower0/', 'tower1/')) and n.endswith(f'/{layer}/{key}')]

    # AlexNet's layer shapes at a 67-px input (pool5 1x1x256), the paper's grouping
    want = {'conv1': (11, 11, 3, 96), 'conv2': (5, 5, 48, 256), 'conv3': (3, 3, 256, 384),
            'conv4': (3, 3, 192, 384), 'conv5': (3, 3, 192, 256), 'fc6': (256, 4096),
            'fc7': (4096, 4096), 'fc8': (4096, 10)}
    assert {k: v[0].shape for k, v in layers.items()} == want
    for layer in want:
        w, b = (np.concatenate(towers(layer, k), -1) for k in ('weights', 'biases'))
        if layer == 'conv1':
            w = w[:, :, ::-1, :]
        np.testing.assert_array_equal(layers[layer][0], w, err_msg=layer)
        np.testing.assert_array_equal(layers[layer][1], b, err_msg=layer)


def test_vgg16_exports_as_a_keras_h5_that_keras_reads_to_our_logits(tmp_path, capsys):
    keras = pytest.importorskip('keras')
    size = 64           # pool5 2x2x512: fc1's rows must be in Keras' (h, w, c) order
    cfg = ModelConfig(model='vgg-d', num_classes=10, input_size=size)
    prefix, sess, g = he_checkpoint(str(tmp_path / 'run'), cfg)
    rgb = np.random.default_rng(1).uniform(-120, 120, (2, size, size, 3)).astype(np.float32)
    ours = sess.run(g.logits, {g.images: rgb})
    sess.close()
    out = str(tmp_path / 'vgg16.h5')
    assert export.main([prefix, out]) == 0
    assert f'wrote {out}: vgg-d' in capsys.readouterr().out
    model = keras.applications.VGG16(weights=None, input_shape=(size, size, 3), classes=10,
                                     classifier_activation=None)
    model.load_weights(out)
    theirs = np.asarray(model.predict(rgb[..., ::-1], verbose=0))    # the file takes BGR
    assert np.abs(ours).max() > 1e-2
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-4 * np.abs(ours).max())
    assert np.argmax(theirs, 1).tolist() == np.argmax(ours, 1).tolist()


def test_a_model_without_a_published_layout_is_one_line(tmp_path, capsys):
    prefix, sess, _ = he_checkpoint(str(tmp_path / 'run'), ModelConfig(
        model='lenet5-relu', num_classes=10, input_size=32, channels=1))
    sess.close()
    out = tmp_path / 'lenet.npy'
    assert export.main([prefix, str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'lenet5-relu' in err and err.count('\n') == 1
    assert not out.exists()
