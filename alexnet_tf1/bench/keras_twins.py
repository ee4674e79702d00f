"""Keras 3 twins of the registered models, built the way a Keras user would build them.

    model = keras_twins.get('alexnet')(config)          # compiled keras.Model, or get() -> None
    model.train_on_batch(x, y); model.predict_on_batch(x)

Same layers, input size, classes, LRN constants, initialisation, dropout, L2 weight decay
(wd/2 |w|^2, as our loss) and SGD momentum 0.9 as our graph, so the benchmark compares two
implementations of one computation. AlexNet's towers become keras.layers.Conv2D(groups=2) on
conv2/4/5 (Keras 3 runs grouped convolutions on the CPU through an XLA-compiled op), and the
LRN a small layer calling tf.nn.lrn inside each group, as ours never crosses towers.
'alexnet-ungrouped' is the one most users run: the same layers with conv2/4/5 full (torchvision's
shape; not the paper's one-GPU net, the model 'alexnet-one-tower', which halves the kernels).

A model may carry `forward_model` (a Keras model sharing its weights) when the training model
has extra outputs (GoogLeNet's auxiliary heads): forward timings use that one.
"""
from alexnet_tf1.bench.flops import default_config
from alexnet_tf1.tf_compat import tf

import keras  # noqa: E402  (after tf_compat: its environment must be set before TF loads)
from keras import layers  # noqa: E402


class LRN(layers.Layer):
    """tf.nn.lrn with the model's constants, applied inside each of `groups` channel groups
    (the window never crosses from one tower's maps into the other's)."""

    def __init__(self, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, groups=1,
                 data_format='channels_last', **kwargs):
        super().__init__(**kwargs)
        self.c = dict(depth_radius=depth_radius, bias=bias, alpha=alpha, beta=beta)
        self.groups = groups
        self.data_format = data_format

    def call(self, x):
        dtype = x.dtype
        if dtype != tf.float32:                 # tf.nn.lrn has no fp16 GPU kernel everywhere
            x = tf.cast(x, tf.float32)
        if self.data_format == 'channels_first':
            x = tf.transpose(x, [0, 2, 3, 1])
        if self.groups == 1:
            y = tf.nn.lrn(x, **self.c)
        else:
            y = tf.concat([tf.nn.lrn(part, **self.c)
                           for part in tf.split(x, self.groups, axis=-1)], axis=-1)
        if self.data_format == 'channels_first':
            y = tf.transpose(y, [0, 3, 1, 2])
        return tf.cast(y, dtype) if dtype != tf.float32 else y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), **self.c, 'groups': self.groups,
                'data_format': self.data_format}


class _Kit:
    """The layer helpers a twin builder uses: init, decay, dtype policy and data format."""

    def __init__(self, config, weight_decay, policy, data_format, init='normal'):
        self.config = config
        if getattr(config, 'init', 'paper') == 'glorot':
            init = 'glorot'
        self.init = init
        self.fmt = data_format
        self.dtype = policy             # None, 'mixed_float16' or 'mixed_bfloat16'
        self.decay = keras.regularizers.L2(weight_decay / 2) if weight_decay else None

    def _common(self, bias):
        if self.init == 'glorot':
            w_init = keras.initializers.GlorotUniform()
        elif self.init == 'xavier':             # Caffe's: uniform with variance 1 / fan_in
            w_init = keras.initializers.VarianceScaling(1.0, 'fan_in', 'uniform')
        else:
            w_init = keras.initializers.RandomNormal(0.0, self.config.init_std)
        kw = dict(kernel_initializer=w_init,
                  bias_initializer=keras.initializers.Constant(bias),
                  kernel_regularizer=self.decay)
        if self.dtype:
            kw['dtype'] = self.dtype
        return kw

    def input(self):
        c, s = self.config.channels, self.config.input_size
        return keras.Input((c, s, s) if self.fmt == 'channels_first' else (s, s, c))

    def conv(self, filters, k, stride=1, padding='same', groups=1, bias=0.0, relu=True):
        return layers.Conv2D(filters, k, strides=stride, padding=padding, groups=groups,
                             activation='relu' if relu else None, data_format=self.fmt,
                             **self._common(bias))

    def dense(self, units, bias=0.0, relu=True, logits=False):
        kw = self._common(bias)
        if logits and self.dtype:
            kw['dtype'] = 'float32'             # logits and loss in fp32 under mixed precision
        return layers.Dense(units, activation='relu' if relu else None, **kw)

    def lrn(self, groups=1):
        c = self.config.lrn
        return LRN(c.depth_radius, c.bias, c.alpha, c.beta, groups, self.fmt)

    def max_pool(self, k, stride, padding='valid'):
        return layers.MaxPooling2D(k, stride, padding=padding, data_format=self.fmt)

    def avg_pool(self, k, stride, padding='valid'):
        return layers.AveragePooling2D(k, stride, padding=padding, data_format=self.fmt)

    def flatten(self):
        return layers.Flatten(data_format=self.fmt)

    def concat(self):
        return layers.Concatenate(axis=1 if self.fmt == 'channels_first' else -1)


def _alexnet(kit, groups):
    """conv -> ReLU -> LRN -> max-pool in conv1 and conv2; conv2/4/5 grouped when groups=2."""
    b1 = kit.config.init_bias
    x = inp = kit.input()
    x = kit.conv(96, 11, 4, 'valid')(x)
    x = kit.max_pool(3, 2)(kit.lrn(groups)(x))
    x = kit.conv(256, 5, groups=groups, bias=b1)(x)
    x = kit.max_pool(3, 2)(kit.lrn(groups)(x))
    x = kit.conv(384, 3)(x)
    x = kit.conv(384, 3, groups=groups, bias=b1)(x)
    x = kit.conv(256, 3, groups=groups, bias=b1)(x)
    x = kit.flatten()(kit.max_pool(3, 2)(x))
    for _ in range(2):
        x = layers.Dropout(kit.config.dropout)(kit.dense(4096, bias=b1)(x))
    out = kit.dense(kit.config.num_classes, relu=False, logits=True)(x)
    return keras.Model(inp, out, name='alexnet' if groups == 2 else 'alexnet_one_tower')


# The VGG paper's Table 1: conv widths per block; 'L' = LRN after the conv, '1x1-N' = 1x1 conv
VGG = {
    'a': ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    'a-lrn': ((64, 'L'), (128,), (256, 256), (512, 512), (512, 512)),
    'b': ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    'c': ((64, 64), (128, 128), (256, 256, '1x1-256'), (512, 512, '1x1-512'),
          (512, 512, '1x1-512')),
    'd': ((64, 64), (128, 128), (256,) * 3, (512,) * 3, (512,) * 3),
    'e': ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}


def _vgg(kit, letter):
    b = kit.config.init_bias
    x = inp = kit.input()
    for block in VGG[letter]:
        for item in block:
            if item == 'L':
                x = kit.lrn()(x)
            elif isinstance(item, str):
                x = kit.conv(int(item.split('-')[1]), 1, bias=b)(x)
            else:
                x = kit.conv(item, 3, bias=b)(x)
        x = kit.max_pool(2, 2)(x)
    x = kit.flatten()(x)
    for _ in range(2):
        x = layers.Dropout(kit.config.dropout)(kit.dense(4096, bias=b)(x))
    out = kit.dense(kit.config.num_classes, relu=False, logits=True)(x)
    return keras.Model(inp, out, name=f'vgg_{letter}')


def _lenet5_relu(kit):
    """The Keras tutorial's LeNet-5: ReLU, max-pool, full C3, softmax output."""
    x = inp = kit.input()
    x = kit.max_pool(2, 2)(kit.conv(6, 5, padding='valid')(x))
    x = kit.max_pool(2, 2)(kit.conv(16, 5, padding='valid')(x))
    x = kit.flatten()(kit.conv(120, 5, padding='valid')(x))
    x = kit.dense(84)(x)
    out = kit.dense(kit.config.num_classes, relu=False, logits=True)(x)
    return keras.Model(inp, out, name='lenet5_relu')


# The GoogLeNet paper's Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
INCEPTION = {
    '3a': (64, 96, 128, 16, 32, 32), '3b': (128, 128, 192, 32, 96, 64),
    '4a': (192, 96, 208, 16, 48, 64), '4b': (160, 112, 224, 24, 64, 64),
    '4c': (128, 128, 256, 24, 64, 64), '4d': (112, 144, 288, 32, 64, 64),
    '4e': (256, 160, 320, 32, 128, 128), '5a': (256, 160, 320, 32, 128, 128),
    '5b': (384, 192, 384, 48, 128, 128),
}


def _googlenet(kit):
    """Inception v1 with its two auxiliary heads (loss weight 0.3, training only); conv and
    hidden-FC biases config.init_bias (bvlc_googlenet's 0.2), classifiers 0."""
    b = kit.config.init_bias

    def conv(units, k, stride=1):
        return kit.conv(units, k, stride, bias=b)

    def module(x, name):
        n1, r3, n3, r5, n5, pp = INCEPTION[name]
        return kit.concat()([
            conv(n1, 1)(x),
            conv(n3, 3)(conv(r3, 1)(x)),
            conv(n5, 5)(conv(r5, 1)(x)),
            conv(pp, 1)(kit.max_pool(3, 1, 'same')(x))])

    def aux(x):
        x = conv(128, 1)(kit.avg_pool(5, 3)(x))
        x = layers.Dropout(0.7)(kit.dense(1024, bias=b)(kit.flatten()(x)))
        return kit.dense(kit.config.num_classes, relu=False, logits=True)(x)

    x = inp = kit.input()
    x = kit.lrn()(kit.max_pool(3, 2, 'same')(conv(64, 7, 2)(x)))
    x = conv(192, 3)(conv(64, 1)(x))
    x = kit.max_pool(3, 2, 'same')(kit.lrn()(x))
    x = module(module(x, '3a'), '3b')
    x = module(kit.max_pool(3, 2, 'same')(x), '4a')
    heads = [aux(x)]
    x = module(module(module(x, '4b'), '4c'), '4d')
    heads.append(aux(x))
    x = module(kit.max_pool(3, 2, 'same')(module(x, '4e')), '5a')
    x = module(x, '5b')
    x = layers.GlobalAveragePooling2D(data_format=kit.fmt)(x)       # avgpool 7x7 on 7x7
    x = layers.Dropout(kit.config.dropout)(x)
    out = kit.dense(kit.config.num_classes, relu=False, logits=True)(x)
    train = keras.Model(inp, [out] + heads, name='googlenet')
    train.forward_model = keras.Model(inp, out, name='googlenet_inference')
    train.loss_weights_ = [1.0, 0.3, 0.3]
    return train


def _application(kit, name):
    """keras.applications' own InceptionV3 / InceptionResNetV2 (the twin is the model
    itself, not a rebuild), at the config's size and classes, logits out. It has no auxiliary
    head; ours trains v3's (0.4 x its loss), about 1% more work."""
    c = kit.config
    before = keras.config.dtype_policy()
    # its layers take Keras' global policy; the logits stay in it too (Keras' losses cast to fp32)
    keras.config.set_dtype_policy(kit.dtype or 'float32')
    try:
        return getattr(keras.applications, name)(
            weights=None, input_shape=(c.input_size, c.input_size, c.channels),
            classes=c.num_classes, classifier_activation=None)
    finally:
        keras.config.set_dtype_policy(before)


def _compile(model, xla=False, lr=0.01, momentum=0.9, policy=None):
    n_out = len(model.outputs)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.SGD(learning_rate=lr, momentum=momentum)
    if policy == 'mixed_float16':   # per-layer policies: compile() would not add loss scaling
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer,
                  loss=loss if n_out == 1 else [loss] * n_out,
                  loss_weights=getattr(model, 'loss_weights_', None),
                  jit_compile=bool(xla))
    fwd = getattr(model, 'forward_model', None)
    if fwd is not None:
        fwd.compile(jit_compile=bool(xla))
    return model


def _twin(build, model, init='normal'):
    def make(config=None, *, weight_decay=5e-4, xla=False, policy=None,
             data_format='channels_last', lr=0.01, momentum=0.9):
        """A compiled Keras twin. config: ModelConfig (sizes, LRN, init, dropout); default:
        the model's own defaults. policy: Keras' dtype policy for the layers, None (fp32),
        'mixed_float16' (with loss scaling, for a GPU) or 'mixed_bfloat16' (no scaling needed:
        bf16 has fp32's exponent range)."""
        config = config or default_config(model)
        kit = _Kit(config, weight_decay, policy, data_format, init)
        return _compile(build(kit), xla, lr, momentum, policy)
    make.__name__ = model.replace('-', '_')
    return make


alexnet = _twin(lambda kit: _alexnet(kit, groups=2), 'alexnet')
alexnet_one_tower = _twin(lambda kit: _alexnet(kit, groups=1), 'alexnet')
lenet5_relu = _twin(_lenet5_relu, 'lenet5-relu', init='glorot')     # Keras' own defaults
googlenet = _twin(_googlenet, 'googlenet', init='xavier')

TWINS = {'alexnet': alexnet, 'alexnet-ungrouped': alexnet_one_tower,
         'lenet5-relu': lenet5_relu, 'googlenet': googlenet,
         'inception-v3': _twin(lambda kit: _application(kit, 'InceptionV3'), 'inception-v3'),
         'inception-resnet-v2': _twin(lambda kit: _application(kit, 'InceptionResNetV2'),
                                      'inception-resnet-v2')}
for _letter in VGG:
    TWINS[f'vgg-{_letter}'] = _twin(lambda kit, _l=_letter: _vgg(kit, _l), f'vgg-{_letter}')

# the twin each registered model is compared with, beside its own (one-tower AlexNet)
EXTRA = {'alexnet': 'alexnet-ungrouped'}


def get(name):
    """The twin builder for a model name, or None when there is no Keras twin."""
    return TWINS.get(name)


def trainable_params(model):
    return int(sum(int(w.numpy().size) for w in model.trainable_weights))
