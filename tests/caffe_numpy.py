"""Caffe's layers in NumPy (float64), written from Caffe's layer definitions, not from this
project's code: the independent reference imported weights are checked against.

Inputs are NHWC in Caffe's BGR order; weights in the converted .npy layout (HWIO kernels, a
grouped conv's outputs side by side, fc rows in (h, w, c) order).
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def conv(x, w, b, stride=1, pad=0, group=1):
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    kh, kw, cin, cout = w.shape
    outs = []
    for g in range(group):
        xg = x[..., g * cin:(g + 1) * cin]
        wg = w[..., g * cout // group:(g + 1) * cout // group]
        win = sliding_window_view(xg, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
        outs.append(np.tensordot(win, wg.transpose(2, 0, 1, 3), axes=([3, 4, 5], [0, 1, 2])))
    return np.concatenate(outs, -1) + b


def relu(x):
    return np.maximum(x, 0)


def pool(x, k, stride, pad=0, kind='max'):
    """Caffe's pooling: ceil-mode output size; max over the window's pixels inside the
    (padded) image, average divided by the window's size clipped to the padded image."""
    n, h, w, c = x.shape
    oh = int(np.ceil((h + 2 * pad - k) / stride)) + 1
    ow = int(np.ceil((w + 2 * pad - k) / stride)) + 1
    out = np.empty((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            y0, x0 = i * stride - pad, j * stride - pad
            y1, x1 = min(y0 + k, h + pad), min(x0 + k, w + pad)
            size = (y1 - y0) * (x1 - x0)
            patch = x[:, max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
            out[:, i, j] = patch.max(axis=(1, 2)) if kind == 'max' else \
                patch.sum(axis=(1, 2)) / size
    return out


def lrn(x, local_size=5, alpha=1e-4, beta=0.75, k=1.0):
    """Caffe's ACROSS_CHANNELS LRN over all of x's channels: x / (k + alpha / n * sum of
    squares over the n channels centred on each, zeros beyond the edges) ^ beta."""
    r = local_size // 2
    sq = np.pad(x * x, ((0, 0), (0, 0), (0, 0), (r, r)))
    c = x.shape[-1]
    s = sum(sq[..., i:i + c] for i in range(local_size))
    return x / (k + alpha / local_size * s) ** beta


def fc(x, w, b):
    return x.reshape(len(x), -1) @ w + b


def alexnet(bgr, weights, caffenet=False):
    """bvlc_alexnet (caffenet=False) or bvlc_reference_caffenet deploy.prototxt's forward pass:
    logits (fc8, before the softmax)."""
    W = {k: [np.asarray(a, np.float64) for a in v] for k, v in weights.items()}
    x = relu(conv(bgr.astype(np.float64), *W['conv1'], stride=4))
    x = lrn(pool(x, 3, 2)) if caffenet else pool(lrn(x), 3, 2)
    x = relu(conv(x, *W['conv2'], pad=2, group=2))
    x = lrn(pool(x, 3, 2)) if caffenet else pool(lrn(x), 3, 2)
    x = relu(conv(x, *W['conv3'], pad=1))
    x = relu(conv(x, *W['conv4'], pad=1, group=2))
    x = pool(relu(conv(x, *W['conv5'], pad=1, group=2)), 3, 2)
    x = relu(fc(x, *W['fc6']))
    x = relu(fc(x, *W['fc7']))
    return fc(x, *W['fc8'])


def googlenet(bgr, weights):
    """bvlc_googlenet deploy.prototxt's forward pass: loss3/classifier's logits."""
    W = {k: [np.asarray(a, np.float64) for a in v] for k, v in weights.items()}
    x = relu(conv(bgr.astype(np.float64), *W['conv1_7x7_s2'], stride=2, pad=3))
    x = lrn(pool(x, 3, 2))
    x = relu(conv(x, *W['conv2_3x3_reduce']))
    x = pool(lrn(relu(conv(x, *W['conv2_3x3'], pad=1))), 3, 2)
    for name in ('3a', '3b', 'pool', '4a', '4b', '4c', '4d', '4e', 'pool', '5a', '5b'):
        if name == 'pool':
            x = pool(x, 3, 2)
            continue
        p = f'inception_{name}_'
        b1 = relu(conv(x, *W[p + '1x1']))
        b3 = relu(conv(relu(conv(x, *W[p + '3x3_reduce'])), *W[p + '3x3'], pad=1))
        b5 = relu(conv(relu(conv(x, *W[p + '5x5_reduce'])), *W[p + '5x5'], pad=2))
        bp = relu(conv(pool(x, 3, 1, pad=1), *W[p + 'pool_proj']))
        x = np.concatenate([b1, b3, b5, bp], -1)
    x = pool(x, 7, 1, kind='ave')
    return fc(x, *W['loss3_classifier'])
