"""One model's whole graph: inputs, towers, loss, errors and (optionally) the update step."""
from dataclasses import dataclass

from . import models, objective
from .tf_compat import tf, tf1


@dataclass
class ModelGraph:
    graph: tf.Graph
    images: tf.Tensor       # float32 placeholder [batch, size, size, channels]
    labels: tf.Tensor       # int32 placeholder [batch]
    training: tf.Tensor     # bool placeholder, default False: dropout on when True
    lr: tf.Tensor           # float32 placeholder, the learning rate of this step
    net: object             # models.<name>.Net
    logits: tf.Tensor
    probs: tf.Tensor
    total_loss: tf.Tensor
    xent: tf.Tensor
    top1: tf.Tensor
    top5: tf.Tensor
    global_step: tf.Variable
    train_op: object = None


def build(config, placement, weight_decay=5e-4, momentum=0.9, seed=0, train=True):
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(seed)
        with tf1.device(placement.towers[0]):
            images = tf1.placeholder(
                tf.float32, [None, config.input_size, config.input_size, config.channels], 'images')
            labels = tf1.placeholder(tf.int32, [None], 'labels')
            training = tf1.placeholder_with_default(False, [], 'training')
            lr = tf1.placeholder_with_default(0.0, [], 'lr')
            global_step = tf1.train.get_or_create_global_step()
        # an inference graph gets no training-only parts (GoogLeNet's auxiliary heads)
        net = models.get(config.model).build(images, config, placement.towers,
                                             training if train else False)
        with tf1.device(placement.towers[0]):
            # a model may train on other logits than it predicts with (LeNet-5's RBF criterion)
            # and add weighted auxiliary heads (GoogLeNet's, 0.3 each)
            train_logits = getattr(net, 'loss_logits', None)
            total, xent = objective.loss(net.logits if train_logits is None else train_logits,
                                         labels, weight_decay, getattr(net, 'aux_logits', ()))
            top1, top5 = objective.errors(net.logits, labels)
            probs = tf.nn.softmax(net.logits, name='probs')
        train_op = objective.paper_momentum(total, lr, momentum, global_step) if train else None
    return ModelGraph(graph, images, labels, training, lr, net, net.logits, probs, total, xent,
                      top1, top5, global_step, train_op)
