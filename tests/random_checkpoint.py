"""A checkpoint of an untrained tiny model, saved in milliseconds: for tests of what is done
with a checkpoint (ensembles, feature caches), not of what training makes of it."""
from alexnet_tf1 import devices
from alexnet_tf1.training import graph
from alexnet_tf1.training.checkpoints import Checkpoints
from alexnet_tf1.config import ModelConfig
from alexnet_tf1.tf_compat import session, tf1
from tiny_run import CROP


def random_checkpoint(train_dir, data_dir, seed, model='alexnet', input_size=CROP, classes=2,
                      step=1):
    """Saves train_dir/model.ckpt-<step> and returns its prefix. Biases 0 and weights wider
    than the paper's 0.01, so that images, and seeds, give clearly different outputs."""
    cfg = ModelConfig(model=model, num_classes=classes, input_size=input_size, init_std=0.02,
                      init_bias=0.0)
    placement = devices.resolve('cpu')
    g = graph.build(cfg, placement, seed=seed, train=False)
    ck = Checkpoints(g.graph, train_dir)
    sess = session(g.graph, placement.session_config())
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
    path = ck.save(sess, {'model': model, 'config': cfg.to_dict(), 'global_step': step,
                          'data_dir': data_dir})
    sess.close()
    return path
