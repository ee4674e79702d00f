"""GoogLeNet (Inception v1) against the paper's Table 1 and section 5."""
import numpy as np
import pytest

from alexnet_tf1 import config, devices, models

from alexnet_tf1.training import graph
from alexnet_tf1.models import googlenet
from alexnet_tf1.tf_compat import session, tf, tf1

# The paper's Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj, out
SPEC_MODULES = {
    '3a': (64, 96, 128, 16, 32, 32, 256), '3b': (128, 128, 192, 32, 96, 64, 480),
    '4a': (192, 96, 208, 16, 48, 64, 512), '4b': (160, 112, 224, 24, 64, 64, 512),
    '4c': (128, 128, 256, 24, 64, 64, 512), '4d': (112, 144, 288, 32, 64, 64, 528),
    '4e': (256, 160, 320, 32, 128, 128, 832), '5a': (256, 160, 320, 32, 128, 128, 832),
    '5b': (384, 192, 384, 48, 128, 128, 1024),
}
SIZE = {'3': 28, '4': 14, '5': 7}
STEM = {'conv1': (112, 112, 64), 'pool1': (56, 56, 64), 'conv2_reduce': (56, 56, 64),
        'conv2': (56, 56, 192), 'pool2': (28, 28, 192), 'pool3': (14, 14, 480),
        'pool4': (7, 7, 832), 'pool5': (1, 1, 1024), 'classifier': (1000,)}
AUX = {'aux1_pool': (4, 4, 512), 'aux1_conv': (4, 4, 128), 'aux1_fc': (1024,),
       'aux1_classifier': (1000,), 'aux2_pool': (4, 4, 528), 'aux2_classifier': (1000,)}


def build_224(training):
    g = tf.Graph()
    with g.as_default():
        images = tf1.placeholder(tf.float32, [None, 224, 224, 3])
        net = googlenet.build(images, config.defaults_for('googlenet'), ('/cpu:0',), training)
        variables = {v.op.name: tuple(v.shape) for v in tf1.trainable_variables()}
    return net, variables


@pytest.fixture(scope='module')
def inference():
    return build_224(False)


@pytest.fixture(scope='module')
def training():
    return build_224(True)


def test_inference_graph_has_6998552_parameters_and_no_aux_heads(inference):
    net, variables = inference
    assert sum(int(np.prod(s)) for s in variables.values()) == 6_998_552
    assert sum(int(np.prod(v.shape)) for p in net.params.values() for v in p.values()) == 6_998_552
    assert not any('aux' in n for n in variables) and net.aux_logits == ()
    assert models.get('googlenet').paper_total == 6_998_552


def test_training_graph_adds_two_aux_heads_weighted_03(training):
    net, variables = training
    assert sum(int(np.prod(s)) for s in variables.values()) == 13_378_280
    assert [w for w, _ in net.aux_logits] == [0.3, 0.3]
    assert [z is net.end_points[f'aux{i}_classifier'][0] for i, (_, z) in
            enumerate(net.aux_logits, 1)] == [True, True]


def test_inference_variables_are_a_subset_of_training_ones(inference, training):
    """So a checkpoint trained with the aux heads restores into the inference graph."""
    inf, tr = inference[1], training[1]
    assert all(tr.get(n) == s for n, s in inf.items())


@pytest.mark.parametrize('module', sorted(SPEC_MODULES))
def test_each_inception_module_has_the_papers_numbers_and_output(inference, module):
    net, variables = inference
    row = next(r for r in googlenet.TABLE if r.name == f'inception_{module}')
    numbers = SPEC_MODULES[module]
    assert (row.b1x1, row.b3x3_reduce, row.b3x3, row.b5x5_reduce, row.b5x5, row.pool_proj,
            row.out) == numbers
    s = SIZE[module[0]]
    assert tuple(net.end_points[f'inception_{module}'][0].shape[1:]) == (s, s, numbers[-1])
    assert variables[f'tower0/inception_{module}/5x5/weights'][:2] == (5, 5)


@pytest.mark.parametrize('name', sorted(STEM))
def test_stem_and_head_sizes_are_112_56_28_14_7(inference, name):
    net, _ = inference
    assert tuple(net.end_points[name][0].shape[1:]) == STEM[name]


@pytest.mark.parametrize('name', sorted(AUX))
def test_aux_heads_pool_5x5_stride_3_to_4x4(training, name):
    net, _ = training
    assert tuple(net.end_points[name][0].shape[1:]) == AUX[name]


@pytest.fixture(scope='module')
def run():
    cfg = config.defaults_for('googlenet', num_classes=10)
    placement = devices.resolve('cpu', towers=1)
    # a training graph (its heads exist), run with training False (no dropout): deterministic
    g = graph.build(cfg, placement, weight_decay=0.0, train=True)
    sess = session(g.graph, placement.session_config())
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
    x = np.random.RandomState(0).randn(2, 224, 224, 3).astype(np.float32) * 60
    y = np.array([3, 7], np.int32)
    ep = g.net.end_points
    out = sess.run({'logits': g.logits, 'aux': [z for _, z in g.net.aux_logits], 'xent': g.xent,
                    'pool2': ep['pool2'][0], '3a': ep['inception_3a'][0],
                    'w': g.net.params[('inception_3a', 0)]}, {g.images: x, g.labels: y})
    sess.close()
    return out, y


def xent_numpy(z, y):
    z = z.astype(np.float64) - z.max(1, keepdims=True)
    return np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y])


def test_loss_adds_each_aux_head_with_weight_03(run):
    out, y = run
    assert len(out['aux']) == 2
    want = xent_numpy(out['logits'], y) + sum(0.3 * xent_numpy(z, y) for z in out['aux'])
    assert abs(out['xent'] - xent_numpy(out['logits'], y)) > 1e-3     # the heads do count
    np.testing.assert_allclose(out['xent'], want, rtol=1e-5)
    assert out['logits'].shape == (2, 10) and all(z.shape == (2, 10) for z in out['aux'])


def test_inception_concatenates_1x1_3x3_5x5_pool_branches_in_order(run):
    out, _ = run
    w, b = out['w']['1x1/w'], out['w']['1x1/b']
    one = np.maximum(np.einsum('nhwc,cd->nhwd', out['pool2'], w[0, 0]) + b, 0)
    np.testing.assert_allclose(out['3a'][..., :64], one, rtol=1e-4, atol=1e-4)
    assert out['3a'].shape == (2, 28, 28, 256)
