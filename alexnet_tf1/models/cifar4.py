"""The four-layer CNN of the AlexNet paper's Figure 1 (ReLU against tanh on CIFAR-10).

The paper says only "a four-layer convolutional neural network"; the net is Krizhevsky's own
four-layer CIFAR-10 example in cuda-convnet (layers-80sec.cfg): three 5x5 convolutions (32,
32, 64 maps, padded) each followed by a 3x3 stride-2 pool (max, then average, average; cuda-
convnet's pools cover the edge, 32 -> 16 -> 8 -> 4, which is TF's SAME), then a linear layer
to the classes. Figure 1 used "no regularization of any kind", so that file's response
normalisation is left out, and there is no dropout. Both neurons start from the same weights
(Glorot-uniform, zero biases) on inputs of about unit scale; config.activation picks the
neuron of the three hidden layers.
"""
from dataclasses import dataclass

from alexnet_tf1.nn import ops
from alexnet_tf1.tf_compat import tf, tf1
from alexnet_tf1.models import alexnet
from alexnet_tf1.models.spec import ModelSpec


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str           # 'conv' or 'fc'
    units: int = 0      # 0 = config.num_classes
    k: int = 5
    pool: str = None    # 'max' or 'avg': 3x3, stride 2, SAME


TABLE = (
    Layer('conv1', 'conv', 32, pool='max'),
    Layer('conv2', 'conv', 32, pool='avg'),
    Layer('conv3', 'conv', 64, pool='avg'),
    Layer('fc4', 'fc'),
)
PAPER_TOTAL = 89_578        # layers-80sec.cfg's, 10 classes: 2,432 + 25,632 + 51,264 + 10,250
PUBLISHED = (('paper, Figure 1: ReLU reaches 25% training error about 6x sooner than tanh',
              'CIFAR-10 train', None, None),)


def build(images, config, devices, training=False):
    end, params = {}, {}
    x = images
    with tf1.device(devices[0]), alexnet.tower_scope(0):
        for layer in TABLE:
            with tf1.variable_scope(layer.name):
                if layer.kind == 'fc':
                    x = ops.flatten(x)
                    shape = [int(x.shape[-1]), layer.units or config.num_classes]
                else:
                    shape = [layer.k, layer.k, int(x.shape[-1]), layer.units]
                p = ops.variables(shape, tf1.glorot_uniform_initializer(), 0.0)
                if layer.kind == 'fc':
                    x = ops.fc(x, p, relu=False)
                else:
                    x = ops.conv(x, p, 1, 'SAME', True, config.activation)
                    pool = tf.nn.max_pool2d if layer.pool == 'max' else tf.nn.avg_pool2d
                    x = pool(x, 3, 2, 'SAME')
            end[layer.name] = [x]
            params[(layer.name, 0)] = p
    return alexnet.Net(tf.identity(x, name='logits'), end, params, tuple(devices[:1]))


# Figure 1's comparison is config.activation, 'relu' against 'tanh'
SPECS = (ModelSpec('cifar4', 1, TABLE, build, PAPER_TOTAL, published=PUBLISHED,
                   switches=frozenset({'activation'})),)
