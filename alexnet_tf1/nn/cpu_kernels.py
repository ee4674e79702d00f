"""The CPU formulations the builder picks by ISA, and the ISA detection they rest on.

Each is the same arithmetic as TF's own kernel to float rounding, and each is timed against
it by `python -m alexnet_tf1.bench --kernels`; `chosen(name)` says whether graphs built now
use one. The gradients registered here are attached by gradient_override_map in nn/ops.py.
"""
import contextlib
import functools
import os

from alexnet_tf1.errors import UserError
from alexnet_tf1.tf_compat import tf, tf1


def cpu_kernels():
    """'ours' (default) or 'tf', from ALEXNET_TF1_CPU_KERNELS: whether CPU graphs get the
    faster formulations below (LRN compiled by XLA; a convolution's bias gradient apart from
    its filter gradient; on AVX2 3x3 stride-1 convolutions by Winograd and other 3x3 filter
    gradients in NCHW, on AVX-512 fc input gradients as a batched matmul) or TF's own kernels
    everywhere (but for bf16 bias gradients, always summed in fp32: bias_override). Either
    way the numbers are the same to float rounding. Without oneDNN
    (TF_ENABLE_ONEDNN_OPTS=0) TF's CPU filter gradient has no NCHW form: 'tf'."""
    if onednn_off():
        return 'tf'
    return 'tf' if os.environ.get('ALEXNET_TF1_CPU_KERNELS', '').strip().lower() == 'tf' else 'ours'


_AVX512_CORE = {'avx512f', 'avx512bw', 'avx512vl', 'avx512dq'}


def avx512():
    """Whether oneDNN runs its AVX-512 kernels here: the CPU has them (Linux' /proc/cpuinfo)
    and ONEDNN_MAX_CPU_ISA (oneDNN's own cap, also read by it) does not hold it to less.
    oneDNN's fastest formulation differs between the two (see conv and fc)."""
    if not onednn_cap().startswith(('ALL', 'AVX512', 'AVX10')):
        return False
    return _AVX512_CORE <= _cpu_flags()


def onednn_off():
    """Whether TF runs without oneDNN (TF_ENABLE_ONEDNN_OPTS=0)."""
    return os.environ.get('TF_ENABLE_ONEDNN_OPTS', '1').strip() in ('0', 'false', 'False')


def onednn_cap():
    """oneDNN's own ISA cap (ONEDNN_MAX_CPU_ISA, or its older name), upper case; 'ALL' if none."""
    return (os.environ.get('ONEDNN_MAX_CPU_ISA') or os.environ.get('DNNL_MAX_CPU_ISA')
            or 'ALL').strip().upper()


# oneDNN's ISAs (dnnl::cpu_isa) with bf16 arithmetic: AVX512_CORE_BF16 and every one above it
_BF16_CAPS = ('ALL', 'AVX512_CORE_BF16', 'AVX512_CORE_FP16', 'AVX512_CORE_AMX', 'AVX10')


class PrecisionError(UserError):
    """--precision bf16 where it would only be slower; one line."""


def bf16_path():
    """Which bf16 arithmetic oneDNN runs here: 'amx' (AMX-BF16 tile multiplies), 'avx512_bf16'
    (the AVX512_BF16 dot products) or None (the CPU has neither, oneDNN is off, or
    ONEDNN_MAX_CPU_ISA holds it below them)."""
    if onednn_off():
        return None
    flags, cap = _cpu_flags(), onednn_cap()
    if 'amx_bf16' in flags and (cap == 'ALL' or '_AMX' in cap):
        return 'amx'
    if 'avx512_bf16' in flags and cap.startswith(_BF16_CAPS):
        return 'avx512_bf16'
    return None


def bf16_missing():
    """None when bf16 runs faster than fp32 here; else why not, in words. Without a bf16 path
    bf16 is converted to fp32 and back around fp32 arithmetic (TF's own kernels always do);
    under ONEDNN_MAX_CPU_ISA=AVX2 oneDNN has no bf16 convolution at all. On an Intel CPU
    AVX512_BF16 without AMX (Cooper Lake, or an AMX Xeon capped at AVX512_CORE_BF16) is
    slower than fp32 too: a Xeon held there ran the bf16 matmul at 0.56x fp32's and AlexNet's
    step at 0.68x (docs/performance.md). AMD's AVX512_BF16 (Zen 4, Zen 5) is let through."""
    path = bf16_path()
    if path is None:
        if onednn_off():
            return 'this CPU (or TF_ENABLE_ONEDNN_OPTS=0) has no bf16 arithmetic'
        cap = onednn_cap()
        has_it = {'avx512_bf16', 'amx_bf16'} & _cpu_flags()
        held = f' (or ONEDNN_MAX_CPU_ISA={cap})' if has_it else ''
        return f'this CPU{held} has no bf16 arithmetic'
    if path == 'avx512_bf16' and _cpu_vendor() == 'GenuineIntel':
        cap = onednn_cap()
        held = '' if cap == 'ALL' else f' (ONEDNN_MAX_CPU_ISA={cap})'
        return f'this Intel CPU has bf16 arithmetic without AMX{held}'
    return None


def check_bf16():
    """PrecisionError unless bf16 runs faster than fp32 here (bf16_missing)."""
    why = bf16_missing()
    if why:
        raise PrecisionError(f'--precision bf16: {why}; bf16 would run slower than fp32 here '
                             f'- use --precision fp32')


def _cpu_flags():
    return frozenset(cpuinfo().get('flags', '').split())


def _cpu_vendor():
    """'GenuineIntel', 'AuthenticAMD', ... ('' where /proc/cpuinfo does not say)."""
    return cpuinfo().get('vendor_id', '').strip()


@functools.lru_cache(maxsize=1)
def cpuinfo():
    """The first processor's fields of Linux' /proc/cpuinfo ({} elsewhere)."""
    fields = {}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(':')
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


# The CPU formulations below whose worth depends on the ISA, each measured against TF's own
# (python -m alexnet_tf1.bench --kernels): 3x3 filter gradients from NCHW copies, fc input
# gradients as a batched matmul, LRN written out and compiled by XLA, a convolution's bias
# gradient kept apart from its filter gradient, 3x3 stride-1 'SAME' convolutions by Winograd's
# F(2x2, 3x3) (AlexNet's step 1.10-1.13x, VGG-A's 1.30x on AVX2; 0.92x on AVX-512, whose
# direct kernels are twice as fast while the transforms move the same memory); an explicitly
# padded convolution as zeros padded first and a 'VALID' one, a convolution that is a matmul
# as one (a kernel covering its input always; 1x1 ones in bf16), and in bf16 the ReLUs after
# batch norm compiled by XLA (nn/ops.py says why each).
KERNEL_CHOICES = ('conv3x3_nchw', 'fc_batched', 'lrn_xla', 'conv_bias_apart',
                  'conv3x3_winograd', 'conv_pad_apart', 'conv_covering_matmul', 'conv1x1_matmul',
                  'relu_xla')
_forced = {}


@contextlib.contextmanager
def kernel_choices(**on):
    """Graphs built inside use the named formulations on (True) or off (False) whatever the
    ISA's rule says; the bench times each against the other this way in one process."""
    unknown = set(on) - set(KERNEL_CHOICES)
    if unknown:
        raise ValueError(f'unknown kernel choice {sorted(unknown)}; known: {KERNEL_CHOICES}')
    saved = dict(_forced)
    _forced.update(on)
    try:
        yield
    finally:
        _forced.clear()
        _forced.update(saved)


# Off in bf16 whatever kernel_choices says. Winograd: its transforms' sums and differences
# would each round to bf16's 8 bits, and it pays only on AVX2, where bf16 is refused anyway.
FP32_ONLY = ('conv3x3_winograd',)


def chosen(name, bf16=False):
    """Whether graphs built now use the CPU formulation `name` (KERNEL_CHOICES) on maps of
    bf16 (or fp32): none with ALEXNET_TF1_CPU_KERNELS=tf or without oneDNN, none of FP32_ONLY
    in bf16, else kernel_choices' word or the ISA's rule."""
    if cpu_kernels() == 'tf' or (bf16 and name in FP32_ONLY):
        return False
    if name in _forced:
        return bool(_forced[name])
    return {'conv3x3_nchw': not avx512(), 'fc_batched': avx512(), 'lrn_xla': True,
            'conv_bias_apart': not bf16, 'conv3x3_winograd': not avx512(), 'conv_pad_apart': True,
            'conv_covering_matmul': True, 'conv1x1_matmul': bf16, 'relu_xla': bf16}[name]


def on_cpu(x, choice):
    return 'GPU' not in x.device.upper() and chosen(choice, x.dtype.base_dtype == tf.bfloat16)


@tf.RegisterGradient('Conv2DFilterGradNCHW')
def _conv2d_grad_nchw(op, grad):
    # oneDNN's AVX2 NHWC weight gradient runs 3x3 stride-1 convolutions (conv3-5, all of VGG)
    # at ~68% of the matmul rate; the same op on NCHW copies, transposes included, is faster.
    # Its AVX-512 NHWC kernel runs them at ~90%, faster than NCHW, so there it is left alone
    x, w = op.inputs
    strides, padding = op.get_attr('strides'), op.get_attr('padding')
    dx = tf1.nn.conv2d_backprop_input(tf.shape(x), w, grad, strides, padding)
    dw = tf1.nn.conv2d_backprop_filter(tf.transpose(x, [0, 3, 1, 2]), tf.shape(w),
                                       tf.transpose(grad, [0, 3, 1, 2]),
                                       [1, 1] + list(strides[1:3]), padding, data_format='NCHW')
    return dx, dw


@tf.RegisterGradient('BiasAddGradApart')
def _bias_add_grad_apart(op, grad):
    # oneDNN fuses a convolution's filter gradient with the bias gradient of the same maps
    # (_MklNativeConv2DBackpropFilterWithBias). That fused kernel ran AlexNet's conv1 1.45x and
    # conv2-5 1.1-1.16x slower on AVX-512 than the filter gradient alone plus a BiasAddGrad
    # (AVX2: 1.2x conv1, 1.03x conv2). Summed over a 2-D view of the maps, the bias gradient no
    # longer matches the fusion's pattern. In bf16 the sum is a Sum (below).
    if grad.dtype == tf.bfloat16:
        return _bias_add_summed(op, grad)
    n = int(op.inputs[1].shape[0])
    return grad, tf.raw_ops.BiasAddGrad(out_backprop=tf.reshape(grad, [-1, n]))


# TF's CPU BiasAddGrad sums bf16 in bf16: a sum of like-signed terms stops growing once it is
# some 2^8 times each, so over a convolution's maps (32 x 55 x 55) the bias gradient came out
# 80-98% short, and over 256 fc rows 1.5-2% off. Sum (reduce_sum) accumulates bf16 in fp32 and
# rounds once (0.2%). oneDNN's filter gradient fused with a bias gradient sums in fp32 too, but
# it fuses only a plain NHWC 'SAME' or 'VALID' convolution's (ops.conv).
@tf.RegisterGradient('BiasAddSummed')
def _bias_add_summed(op, grad):
    n = int(op.inputs[1].shape[0])      # NHWC maps (the project's layout): biases last
    return grad, tf.reduce_sum(tf.reshape(grad, [-1, n]), 0)


def bias_override(x):
    """The gradient_override_map entry for a bias added to x where oneDNN does not fuse its
    gradient with a filter gradient (an fc's; a convolution done as a matmul, explicitly
    padded, or with another filter gradient): in bf16 summed by Sum, not BiasAddGrad (above)."""
    return {'BiasAdd': 'BiasAddSummed'} if x.dtype.base_dtype == tf.bfloat16 else {}


# gradients that already carry their ReLU's mask: the XLA LRN's backward applies it in the
# pass it makes anyway, which spares ReluGrad's own pass over the maps (conv1, conv2)
RELU_MASKED = 'alexnet_tf1_relu_masked_gradients'


def relu_override(x, maskable=False):
    """The gradient_override_map entry ({} or {'Relu': ...}) for a ReLU on x fused into its
    convolution's or fc's forward: a maskable one (a convolution's) skips the mask when the XLA
    LRN's backward applied it (lrn_xla); in bf16 (relu_xla) XLA compiles its ReluGrad - TF's
    own bf16 ReluGrad converts one value at a time (8-11% of VGG-A's and GoogLeNet's bf16
    steps)."""
    xla = on_cpu(x, 'relu_xla')
    if maskable and on_cpu(x, 'lrn_xla'):
        return {'Relu': 'ReluUnlessMaskedXla' if xla else 'ReluUnlessMasked'}
    return {'Relu': 'ReluGradXla'} if xla else {}


def _relu_grad(op, grad, xla, maskable):
    # anything else reaching the ReLU (or a sum of several consumers' gradients) gets the mask
    if maskable and any(grad is t for t in op.graph.get_collection(RELU_MASKED)):
        return grad
    if not xla:
        return tf.raw_ops.ReluGrad(gradients=grad, features=op.outputs[0])
    with tf.xla.experimental.jit_scope():
        return tf.raw_ops.ReluGrad(gradients=grad, features=op.outputs[0])


tf.RegisterGradient('ReluUnlessMasked')(lambda op, g: _relu_grad(op, g, False, True))
tf.RegisterGradient('ReluUnlessMaskedXla')(lambda op, g: _relu_grad(op, g, True, True))
tf.RegisterGradient('ReluGradXla')(lambda op, g: _relu_grad(op, g, True, False))


@tf.RegisterGradient('MatMulInputGradBatched')
def _matmul_grad_batched(op, grad):
    # dx = grad w^T: oneDNN's AVX-512 MatMul with a transposed right operand and a short left
    # one (fc6/fc7's 128 x 2048 x 9216) ran at ~45% of the matmul rate; as BatchMatMulV2 with
    # adj_y (oneDNN's matmul primitive, not its sgemm) it ran at ~85%. dw keeps MatMul (~85%)
    x, w = op.inputs
    return (tf.raw_ops.BatchMatMulV2(x=grad, y=w, adj_y=True),
            tf.matmul(x, grad, transpose_a=True))


def _window_sum(s, r):
    """Sum over the 2r+1 neighbouring maps, zero beyond the edges (tf.nn.lrn's window)."""
    n = s.shape[-1]
    p = tf.pad(s, [[0, 0]] * (s.shape.rank - 1) + [[r, r]])
    return tf.add_n([p[..., i:i + n] for i in range(2 * r + 1)])


def lrn_written_out(x, c, masks_relu=False):
    # b_i = a_i d_i^-beta, d_i = bias + alpha sum_{j in win(i)} a_j^2; the window is symmetric,
    # so dL/da_j = g_j d_j^-beta - 2 alpha beta a_j sum_{i in win(j)} g_i b_i / d_i.
    # The forward keeps only b and q = d^-1/2 for the backward (r = d^-beta from q, 1/d = q^2,
    # a = b / r): the backward streams three maps instead of five (LRN is bound by memory).
    # bf16 maps are computed in fp32 all the same (in 8 bits the sum of squares would lose its
    # small terms): the casts in and out fuse into XLA's loop; b is kept in bf16
    dtype = x.dtype

    @tf.custom_gradient
    def f(x):
        a = _fp32(x)
        d = c.bias + c.alpha * _window_sum(a * a, c.depth_radius)
        q = tf.math.rsqrt(d)
        b = tf.cast(a * _d_pow(q, c.beta), dtype)

        def grad(g):
            g, b32 = _fp32(g), _fp32(b)
            r = _d_pow(q, c.beta)
            da = g * r - (2 * c.alpha * c.beta) * (b32 / r) * _window_sum(g * b32 * q * q,
                                                                          c.depth_radius)
            if masks_relu:      # x = ReLU(z): dL/dz = dL/da where a > 0 (b > 0 alike), else 0
                da = tf.where(b32 > 0, da, tf.zeros_like(da))
            da = tf.cast(da, dtype)
            if masks_relu:
                tf1.add_to_collection(RELU_MASKED, da)
            return da
        return b, grad
    return f(x)


def _fp32(t):
    return tf.cast(t, tf.float32)      # no op for an fp32 tensor


def _d_pow(q, beta):
    """d^-beta from q = d^-1/2: XLA's pow is a slow exp(log), two square roots are not."""
    return q * tf.sqrt(q) if beta == 0.75 else tf.pow(q, 2.0 * beta)
