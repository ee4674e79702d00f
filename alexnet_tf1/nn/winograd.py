"""3x3 stride-1 'SAME' convolutions as Winograd F(2x2, 3x3) (Lavin and Gray 2016), for the CPU.

Every 4x4 tile of the padded input, at stride 2, becomes V = B^T d B and every filter
U = G g G^T; the 16 elementwise products summed over the input maps are one batched matmul
M = V U (oneDNN's), and Y = A^T M A is a 2x2 tile of the output: 2.25x fewer multiplies than
the direct convolution, whose gradients are again batched matmuls (dV = dM U^T, dU = V^T dM).
The transforms are compiled by XLA. The input transform's adjoint is written out: TF's own
would sum the gradients of 64 strided slices. Equal to the direct convolution to float
rounding (about 1e-6 of the largest output).
"""
import numpy as np

from alexnet_tf1.tf_compat import tf, tf1

# (product op name, the direct convolution's forward FLOPs per image): flops.py counts the
# layer as the papers do, whichever algorithm computes it
DIRECT_FLOPS = 'alexnet_tf1_winograd_direct_flops'

_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float32)
_G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float32)
_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float32)


def _combine(coefficients, terms):
    """sum(c * t) with the zero terms left out and +-1 as adds and subtractions."""
    out = None
    for c, t in zip(coefficients, terms):
        if c == 0:
            continue
        t = t if c == 1 else -t if c == -1 else float(c) * t
        out = t if out is None else out + t
    return out


def conv3x3(x, w, bias=None, act=None):
    """act(tf.nn.conv2d(x, w, 1, 'SAME') + bias) for NHWC x of static height, width and maps
    (any batch) and a [3, 3, cin, cout] filter; bias and act optional, compiled with the
    output transform."""
    h, wd, c = (int(d) for d in x.shape[1:])
    k = int(w.shape[-1])
    th, tw = (h + 1) // 2, (wd + 1) // 2        # output tiles; odd sizes get one cropped row
    with tf.xla.experimental.jit_scope():
        v = _input_transform(x, th, tw)
        u = tf.reshape(tf.einsum('ia,jb,abck->ijck', _G, _G, w), [16, c, k])
    m = tf.matmul(v, u, name='winograd_product')
    tf1.add_to_collection(DIRECT_FLOPS, (m.op.name, 2 * h * wd * k * 9 * c))
    with tf.xla.experimental.jit_scope():
        m = tf.unstack(tf.reshape(m, [4, 4, -1, th, tw, k]))
        rows = [_combine(a, m) for a in _AT]                     # [4 over j, n, th, tw, k]
        y = [[_combine(a, tf.unstack(r)) for a in _AT] for r in rows]
        y = tf.stack([tf.stack(y[0], 3), tf.stack(y[1], 3)], 2)   # [n, th, 2, tw, 2, k]
        y = tf.reshape(y, [-1, 2 * th, 2 * tw, k])[:, :h, :wd]
        y = y if bias is None else y + bias
        return y if act is None else act(y)


def _input_transform(x, th, tw):
    """[n, h, w, c] -> [16, n * th * tw, c]: B^T d B of every 4x4 tile at stride 2 of x padded
    by 1 before and to 2 th + 2, 2 tw + 2 after."""
    h, wd, c = (int(d) for d in x.shape[1:])

    @tf.custom_gradient
    def transform(x):
        xp = tf.pad(x, [[0, 0], [1, 2 * th + 1 - h], [1, 2 * tw + 1 - wd], [0, 0]])
        # the even/odd rows and columns: tile (i, j)'s element (a, b) is phase (a%2, b%2) at
        # (i + a//2, j + b//2), so every term is a plain slice
        p = tf.reshape(xp, [-1, th + 1, 2, tw + 1, 2, c])
        phase = [[p[:, :, r, :, s] for s in range(2)] for r in range(2)]
        d = [[phase[a % 2][b % 2][:, a // 2:a // 2 + th, b // 2:b // 2 + tw] for b in range(4)]
             for a in range(4)]
        rows = [[_combine(bt, [d[a][b] for a in range(4)]) for b in range(4)] for bt in _BT]
        v = [_combine(bt, r) for r in rows for bt in _BT]

        def grad(dv):
            dv = tf.unstack(tf.reshape(dv, [16, -1, th, tw, c]))
            drows = [[_combine(_BT[:, b], dv[4 * i:4 * i + 4]) for b in range(4)]
                     for i in range(4)]
            dphase = [[None, None], [None, None]]
            for a in range(4):
                for b in range(4):
                    dd = _combine(_BT[:, a], [drows[i][b] for i in range(4)])
                    dd = tf.pad(dd, [[0, 0], [a // 2, 1 - a // 2], [b // 2, 1 - b // 2], [0, 0]])
                    old = dphase[a % 2][b % 2]
                    dphase[a % 2][b % 2] = dd if old is None else old + dd
            dp = tf.stack([tf.stack(dphase[r], 3) for r in range(2)], 2)
            dxp = tf.reshape(dp, [-1, 2 * th + 2, 2 * tw + 2, c])
            return dxp[:, 1:1 + h, 1:1 + wd]
        return tf.reshape(tf.stack(v), [16, -1, c]), grad
    return transform(x)
