"""alexnet_tf1: the 2012 two-tower AlexNet (and its classic siblings) as TF1 graphs.

    placement = devices.resolve('0,1' | '0' | 'cpu' | 'auto')     # one device per tower
    g = graph.build(config.ModelConfig(), placement)               # inputs -> towers -> loss
    sess = tf_compat.session(g.graph, placement.session_config())
    sess.run(g.train_op, {g.images: x, g.labels: y, g.lr: 0.01, g.training: True})
"""
