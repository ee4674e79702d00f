"""The Inception family: parameter counts (Keras' published ones, and for the others derived
here by hand from the papers' figures), map sizes, auxiliary heads only while training."""
import numpy as np
import pytest

from alexnet_tf1 import config, devices, models

from alexnet_tf1.training import graph
from alexnet_tf1.models import inception
from alexnet_tf1.training.schedule import Schedule
from alexnet_tf1.tf_compat import tf1


def conv(kh, kw, cin, cout):
    """A batch-normalised convolution: weights, beta, moving mean and moving variance."""
    return kh * kw * cin * cout + 3 * cout


def up(cin, cout):
    """A residual block's linear 1x1 convolution back to the block's width, with biases."""
    return cin * cout + cout


def fc(cin, classes=1000):
    return cin * classes + classes


# Inception-v4 paper, Figures 3-9
V4_STEM = (conv(3, 3, 3, 32) + conv(3, 3, 32, 32) + conv(3, 3, 32, 64) + conv(3, 3, 64, 96)
           + conv(1, 1, 160, 64) + conv(3, 3, 64, 96)
           + conv(1, 1, 160, 64) + conv(7, 1, 64, 64) + conv(1, 7, 64, 64) + conv(3, 3, 64, 96)
           + conv(3, 3, 192, 192))
V4_A = (conv(1, 1, 384, 96) + conv(1, 1, 384, 64) + conv(3, 3, 64, 96)
        + conv(1, 1, 384, 64) + conv(3, 3, 64, 96) + conv(3, 3, 96, 96)
        + conv(1, 1, 384, 96))
V4_RED_A = conv(3, 3, 384, 384) + conv(1, 1, 384, 192) + conv(3, 3, 192, 224) + conv(3, 3, 224, 256)
V4_B = (conv(1, 1, 1024, 384)
        + conv(1, 1, 1024, 192) + conv(1, 7, 192, 224) + conv(7, 1, 224, 256)
        + conv(1, 1, 1024, 192) + conv(1, 7, 192, 192) + conv(7, 1, 192, 224)
        + conv(1, 7, 224, 224) + conv(7, 1, 224, 256)
        + conv(1, 1, 1024, 128))
V4_RED_B = (conv(1, 1, 1024, 192) + conv(3, 3, 192, 192) + conv(1, 1, 1024, 256)
            + conv(1, 7, 256, 256) + conv(7, 1, 256, 320) + conv(3, 3, 320, 320))
V4_C = (conv(1, 1, 1536, 256) + conv(1, 1, 1536, 384) + 2 * conv(1, 3, 384, 256)
        + conv(1, 1, 1536, 384) + conv(1, 3, 384, 448) + conv(3, 1, 448, 512)
        + 2 * conv(1, 3, 512, 256) + conv(1, 1, 1536, 256))
V4 = V4_STEM + 4 * V4_A + V4_RED_A + 7 * V4_B + V4_RED_B + 3 * V4_C + fc(1536)

# Inception-ResNet-v1: Figures 14, 10, 7 (k, l, m, n = 192, 192, 256, 384), 11, 12, 13, 15
R1_STEM = (conv(3, 3, 3, 32) + conv(3, 3, 32, 32) + conv(3, 3, 32, 64) + conv(1, 1, 64, 80)
           + conv(3, 3, 80, 192) + conv(3, 3, 192, 256))
R1_A = (conv(1, 1, 256, 32) + conv(1, 1, 256, 32) + conv(3, 3, 32, 32)
        + conv(1, 1, 256, 32) + 2 * conv(3, 3, 32, 32) + up(96, 256))
R1_RED_A = conv(3, 3, 256, 384) + conv(1, 1, 256, 192) + conv(3, 3, 192, 192) + conv(3, 3, 192, 256)
R1_B = (conv(1, 1, 896, 128) + conv(1, 1, 896, 128) + conv(1, 7, 128, 128)
        + conv(7, 1, 128, 128) + up(256, 896))
R1_RED_B = (conv(1, 1, 896, 256) + conv(3, 3, 256, 384) + conv(1, 1, 896, 256)
            + conv(3, 3, 256, 256) + conv(1, 1, 896, 256) + 2 * conv(3, 3, 256, 256))
R1_C = (conv(1, 1, 1792, 192) + conv(1, 1, 1792, 192) + conv(1, 3, 192, 192)
        + conv(3, 1, 192, 192) + up(384, 1792))
R1 = R1_STEM + 5 * R1_A + R1_RED_A + 10 * R1_B + R1_RED_B + 5 * R1_C + fc(1792)

# Rethinking, Table 1 with Figures 5, 6 (n = 7), 7 and 10; filter counts of the published v3
V2_STEM = (conv(3, 3, 3, 32) + conv(3, 3, 32, 32) + conv(3, 3, 32, 64) + conv(3, 3, 64, 80)
           + conv(3, 3, 80, 192) + conv(3, 3, 192, 288))
V2_FIG5 = (conv(1, 1, 288, 64) + conv(1, 1, 288, 48) + conv(3, 3, 48, 64) + conv(1, 1, 288, 64)
           + conv(3, 3, 64, 96) + conv(3, 3, 96, 96) + conv(1, 1, 288, 64))
V2_TO_17 = conv(3, 3, 288, 384) + conv(1, 1, 288, 64) + conv(3, 3, 64, 96) + conv(3, 3, 96, 96)


def v2_fig6(c):
    return (conv(1, 1, 768, 192) + conv(1, 1, 768, c) + conv(1, 7, c, c) + conv(7, 1, c, 192)
            + conv(1, 1, 768, c) + 3 * conv(7, 1, c, c) + conv(1, 7, c, 192)
            + conv(1, 1, 768, 192))


V2_TO_8 = (conv(1, 1, 768, 192) + conv(3, 3, 192, 320) + conv(1, 1, 768, 192)
           + 2 * conv(1, 7, 192, 192) + conv(3, 3, 192, 192))


def v2_fig7(cin):
    return (conv(1, 1, cin, 320) + conv(1, 1, cin, 384) + 2 * conv(1, 3, 384, 384)
            + conv(1, 1, cin, 448) + conv(3, 3, 448, 384) + 2 * conv(1, 3, 384, 384)
            + conv(1, 1, cin, 192))


V2 = (V2_STEM + 3 * V2_FIG5 + V2_TO_17 + v2_fig6(128) + 3 * v2_fig6(160) + v2_fig6(192)
      + V2_TO_8 + v2_fig7(1280) + v2_fig7(2048) + fc(2048))

# the published Inception-ResNet-v2's blocks, for Figure 15's 5 / 10 / 5
IR2_35 = (conv(1, 1, 320, 32) + conv(1, 1, 320, 32) + conv(3, 3, 32, 32) + conv(1, 1, 320, 32)
          + conv(3, 3, 32, 48) + conv(3, 3, 48, 64) + up(128, 320))
IR2_17 = (conv(1, 1, 1088, 192) + conv(1, 1, 1088, 128) + conv(1, 7, 128, 160)
          + conv(7, 1, 160, 192) + up(384, 1088))
IR2_8 = (conv(1, 1, 2080, 192) + conv(1, 1, 2080, 192) + conv(1, 3, 192, 224)
         + conv(3, 1, 224, 256) + up(448, 2080))
IR2_FIG15 = 55_873_736 - 5 * IR2_35 - 10 * IR2_17 - 5 * IR2_8

# (total with moving statistics, trainable, batch-normalised layers); v3 and -v2: Keras' own count
COUNTS = {
    'inception-v3': (23_851_784, 23_817_352, 94),
    'inception-resnet-v2': (55_873_736, 55_813_192, 204),
    'inception-v2': (V2, None, None),
    'inception-v4': (V4, None, None),
    'inception-resnet-v1': (R1, None, None),
    'inception-resnet-v2-figure15': (IR2_FIG15, None, None),
}


def built(model, train=False, **changes):
    cfg = config.defaults_for(model, **changes)
    g = graph.build(cfg, devices.resolve('cpu', towers=1), train=train)
    with g.graph.as_default():
        variables = [v for v in tf1.global_variables() if 'global_step' not in v.name]
        trainable = tf1.trainable_variables()
    return g, variables, trainable


def size(variables):
    return sum(int(np.prod(v.shape)) for v in variables)


@pytest.mark.parametrize('model', sorted(COUNTS))
def test_parameter_counts_are_the_published_or_the_figures(model):
    g, variables, trainable = built(model)
    total, n_trainable, n_bn = COUNTS[model]
    assert size(variables) == total
    assert models.get(model).paper_total == total
    assert sum(int(np.prod(v.shape)) for p in g.net.params.values() for v in p.values()) == total
    if n_trainable:
        assert size(trainable) == n_trainable
        assert sum(v.name.endswith('moving_mean:0') for v in variables) == n_bn
        assert size(variables) - size(trainable) == 2 * sum(
            int(v.shape[0]) for v in variables if v.name.endswith('moving_mean:0'))
    assert g.logits.shape.as_list() == [None, 1000]


@pytest.mark.parametrize('model, grids', [
    # Rethinking Table 1 / Keras: 35x35x288 after the first modules, 17x17x768, 8x8x2048
    ('inception-v3', {'Mixed_5d': [35, 35, 288], 'Mixed_6e': [17, 17, 768],
                      'Mixed_7c': [8, 8, 2048]}),
    ('inception-v2', {'Conv2d_4b_3x3': [35, 35, 288], 'Mixed_5d': [35, 35, 288],
                      'Mixed_6f': [17, 17, 768], 'Mixed_7a': [8, 8, 1280],
                      'Mixed_7c': [8, 8, 2048]}),
    # v4 paper: Figure 3's 73x73x160, 71x71x192, 35x35x384; Figure 9's 17x17x1024, 8x8x1536
    ('inception-v4', {'Mixed_3a': [73, 73, 160], 'Mixed_4a': [71, 71, 192],
                      'Mixed_5a': [35, 35, 384], 'Mixed_6a': [17, 17, 1024],
                      'Inception_C_3': [8, 8, 1536]}),
    # Figure 14's 35x35x256; Reduction-A 17x17x896; Reduction-B 8x8x1792
    ('inception-resnet-v1', {'Conv2d_4b_3x3': [35, 35, 256], 'Mixed_6a': [17, 17, 896],
                             'Block8_5': [8, 8, 1792]}),
    ('inception-resnet-v2', {'Mixed_5b': [35, 35, 320], 'Mixed_6a': [17, 17, 1088],
                             'Mixed_7a': [8, 8, 2080], 'Conv2d_7b_1x1': [8, 8, 1536]}),
])
def test_grids_are_the_papers(model, grids):
    g, _, _ = built(model)
    for name, shape in grids.items():
        assert g.net.end_points[name][0].shape.as_list()[1:] == shape, name


@pytest.mark.slow      # four whole training graphs: 20-25 s
def test_auxiliary_head_exists_only_while_training():
    g, variables, _ = built('inception-v3', train=True, num_classes=10)
    aux = g.net.params[('AuxLogits', 0)].values()
    (weight, logits), = g.net.aux_logits
    assert weight == inception.AUX_WEIGHT == 0.4 and logits.shape.as_list() == [None, 10]
    # avg pool 5/3 of 17x17 -> 5x5; 1x1 conv 128 (BN); 5x5 conv 768 (BN, v3's BN-auxiliary); fc
    assert size(aux) == conv(1, 1, 768, 128) + conv(5, 5, 128, 768) + fc(768, 10)
    g, variables, _ = built('inception-v3', train=False, num_classes=10)
    assert not [v for v in variables if 'AuxLogits' in v.name] and not g.net.aux_logits
    g, variables, _ = built('inception-v2', train=True, num_classes=10)
    aux = g.net.params[('AuxLogits', 0)].values()       # its 768-map layer has biases
    assert size(aux) == conv(1, 1, 768, 128) + 5 * 5 * 128 * 768 + 768 + fc(768, 10)
    _, variables, _ = built('inception-resnet-v1', train=True, num_classes=10)
    assert not [v for v in variables if 'AuxLogits' in v.name]     # the v4 paper draws none


def test_residual_blocks_add_the_scaled_branches_to_their_input():
    b = inception.block('x', '1x1-4', '1x1-2 3x3-4', scale=0.17)
    from alexnet_tf1.tf_compat import session, tf
    cfg = config.defaults_for('inception-resnet-v1')
    with tf.Graph().as_default() as gr:
        x = tf1.placeholder(tf.float32, [2, 5, 5, 6])
        p = {}
        with tf1.variable_scope('blk'):
            y = inception._block(b, x, p, tf1.glorot_uniform_initializer(), cfg, False)
        sess = session(gr, tf1.ConfigProto())
        sess.run(tf1.global_variables_initializer())
        xv = np.random.RandomState(0).normal(size=(2, 5, 5, 6)).astype(np.float32)
        values = sess.run(p)
        branches = sess.run(gr.get_tensor_by_name('blk/concat:0'), {x: xv})
        got = sess.run(y, {x: xv})
    assert branches.shape == (2, 5, 5, 8) and set(p) >= {'up/w', 'up/b'}
    upv = branches @ values['up/w'][0, 0] + values['up/b']
    np.testing.assert_allclose(got, np.maximum(xv + 0.17 * upv, 0), rtol=1e-5, atol=1e-5)


def test_a_bad_token_is_named():
    cfg = config.defaults_for('inception-v3')
    from alexnet_tf1.tf_compat import tf
    with tf.Graph().as_default():
        x = tf1.placeholder(tf.float32, [1, 9, 9, 3])
        with pytest.raises(ValueError, match="'3y3-8'"):
            inception._block(inception.block('b', '3y3-8'), x, {}, None, cfg, False)


def test_exponential_schedule_is_inceptions_staircase():
    s = Schedule(kind='exponential', lr=0.045, factor=0.94, step_epochs=2)
    assert [round(s.rate(e), 6) for e in (0, 1.99, 2.0, 5.5, 10)] == [
        0.045, 0.045, round(0.045 * 0.94, 6), round(0.045 * 0.94 ** 2, 6),
        round(0.045 * 0.94 ** 5, 6)]
    assert s.end_epoch(1, 50.0) is False and s.lr == 0.045     # nothing dropped by epoch ends


def test_presets_are_the_papers_recipes():
    from alexnet_tf1 import presets
    from alexnet_tf1.weights import imagenet
    assert presets.choose('inception-v3', 'imagenet') == 'inception'
    assert presets.choose('inception-resnet-v2', 'imagenet') == 'inception-v4'
    assert presets.choose('inception-v3', 'sample') == 'inception-sample'
    v3, v4 = presets.PRESETS['inception'], presets.PRESETS['inception-v4']
    for p in (v3, v4):      # RMSProp, 0.045 x 0.94 every 2 epochs (Rethinking 8; v4 paper 4)
        assert (p['optimizer'], p['lr'], p['lr_schedule'], p['lr_factor'], p['step_epochs']) \
            == ('rmsprop', 0.045, 'exponential', 0.94, 2)
    assert (v3['label_smoothing'], v3['clip_norm'], v3['batch_size']) == (0.1, 2.0, 32)
    assert (v4['label_smoothing'], v4['clip_norm']) == (0.0, None)
    # 299 px crops come from images stored at 342 (TF-slim's central 87.5%)
    assert (imagenet.stored_size(227), imagenet.stored_size(224),
            imagenet.stored_size(299)) == (256, 256, 342)
