"""The CPU formulations that change an op's form, not its arithmetic: an explicitly padded
convolution as a pad and a 'VALID' one, a convolution that is a matmul (a kernel covering its
input; 1x1 without biases) as a matmul, a ReLU compiled by XLA. Each gives TF's kernels'
answer and gradients in fp32, and their graph shows the form it promises."""
import numpy as np
import pytest

from alexnet_tf1.nn import cpu_kernels, ops
from alexnet_tf1.tf_compat import tf
from test_bf16 import _layer_grads


def _pads(op):
    return op.type == 'Pad'


def _explicit(op):
    return op.type.startswith('Conv2D') and op.get_attr('padding') == b'EXPLICIT'


def _convs(op):
    return op.type.startswith('Conv2D')


def _xla(op):
    return op.type == 'Relu' and '_XlaScope' in op.node_def.attr


def _xla_grad(op):
    return op.type == 'ReluGrad' and '_XlaScope' in op.node_def.attr


# (choice, layer, x shape, w shape, what shows it, how many with it on / with TF's kernels)
FORMS = [
    # GoogLeNet's conv1: 7x7 stride 2, 3 pixels of zeros
    ('conv_pad_apart', lambda x, p: ops.conv(x, p, 2, 3), (2, 13, 13, 3), (7, 7, 3, 4),
     _explicit, (0, 3)),
    ('conv_pad_apart', lambda x, p: ops.conv(x, p, 2, 3), (2, 13, 13, 3), (7, 7, 3, 4),
     _pads, (1, 0)),
    # Inception-v3's auxiliary 5x5 on a 5x5 map; LeNet-5's C5
    ('conv_covering_matmul', lambda x, p: ops.conv(x, p, 1, 'VALID'), (3, 5, 5, 4), (5, 5, 4, 6),
     _convs, (0, 3)),
    ('conv_covering_matmul', lambda x, p: ops.conv(x, p, 2, 0), (3, 5, 5, 4), (5, 5, 4, 6),
     _convs, (0, 3)),
    # a 1x1 before batch norm (no biases of its own)
    ('conv1x1_matmul', lambda x, p: ops.conv(x, {'w': p['w']}, relu=False) + p['b'],
     (2, 6, 6, 8), (1, 1, 8, 5), _convs, (0, 3)),
    ('relu_xla', lambda x, p: ops.relu(ops.conv(x, p, relu=False)), (2, 6, 6, 3), (3, 3, 3, 4),
     _xla, (1, 0)),
    # a ReLU fused into its convolution's or fc's forward: only its gradient
    ('relu_xla', lambda x, p: ops.conv(x, p), (2, 6, 6, 3), (3, 3, 3, 4), _xla_grad, (1, 0)),
    ('relu_xla', ops.fc, (6, 40), (40, 7), _xla_grad, (1, 0)),
]


@pytest.mark.parametrize('choice, layer, x_shape, w_shape, shows, counts', FORMS,
                         ids=[f'{f[0]}-{f[4].__name__}-{len(f[2])}d' for f in FORMS])
def test_each_form_gives_tfs_kernels_answer_in_fp32(choice, layer, x_shape, w_shape, shows,
                                                     counts):
    got, got_g, got_ops = _layer_grads(layer, x_shape, w_shape, tf.float32, {choice})
    want, want_g, tf_ops = _layer_grads(layer, x_shape, w_shape, tf.float32, set())
    assert (sum(map(shows, got_ops)), sum(map(shows, tf_ops))) == counts
    for a, b in ((got, want),) + tuple(zip(got_g, want_g)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())


def test_a_1x1_convolution_with_biases_stays_a_convolution():
    # its bias and ReLU ride in oneDNN's convolution pass, faster than the matmul's
    _, _, got_ops = _layer_grads(lambda x, p: ops.conv(x, p), (2, 6, 6, 8), (1, 1, 8, 5),
                                 tf.float32, {'conv1x1_matmul'})
    assert sum(map(_convs, got_ops)) == 3


@pytest.mark.parametrize('choice, fp32, bf16', [
    ('conv_pad_apart', True, True), ('conv_covering_matmul', True, True),
    ('conv1x1_matmul', False, True), ('relu_xla', False, True),
    ('conv_bias_apart', True, False)])      # in bf16 oneDNN's fused filter + bias gradient wins
def test_which_precision_each_form_is_chosen_for(choice, fp32, bf16, monkeypatch):
    monkeypatch.delenv('ALEXNET_TF1_CPU_KERNELS', raising=False)
    if cpu_kernels.onednn_off():
        pytest.skip("TF's kernels throughout without oneDNN")
    assert (cpu_kernels.chosen(choice), cpu_kernels.chosen(choice, bf16=True)) == (fp32, bf16)


def test_a_covering_matmuls_relu_gets_the_xla_gradient_too():
    # the matmul form applies the ReLU itself: its gradient follows relu_xla like a conv's
    layer = lambda x, p: ops.conv(x, p, 1, 'VALID')     # noqa: E731
    got, got_g, got_ops = _layer_grads(layer, (3, 5, 5, 4), (5, 5, 4, 6), tf.float32,
                                       {'conv_covering_matmul', 'relu_xla'})
    want, want_g, _ = _layer_grads(layer, (3, 5, 5, 4), (5, 5, 4, 6), tf.float32, set())
    assert sum(map(_xla_grad, got_ops)) == 1
    for a, b in ((got, want),) + tuple(zip(got_g, want_g)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())
