"""TensorBoard events: loss, lr, train and validation errors, histograms, conv1 filters.

Scalars are written from the values the training step already fetched, so they cost no extra
graph work; histograms of weights and activations run every `hist_every` steps.
"""
import os

import numpy as np

from alexnet_tf1.evaluation import figures
from alexnet_tf1.tf_compat import tf1


class Board:
    def __init__(self, g, train_dir, hist_every=100):
        self.g, self.hist_every = g, hist_every
        with g.graph.as_default():
            hists = []
            for (name, tower), p in sorted(g.net.params.items()):
                for kind, v in p.items():
                    hists.append(tf1.summary.histogram(f'weights/tower{tower}/{name}/{kind}', v))
            for name, tensors in g.net.end_points.items():
                for tower, y in enumerate(tensors):
                    if y is not None:
                        hists.append(tf1.summary.histogram(f'activations/tower{tower}/{name}', y))
            self.hist_op = tf1.summary.merge(hists)
        self._writer = None
        self.train_dir = train_dir
        self.colour = None      # the last epoch's conv1 colour share per tower (colour_share)

    @property
    def writer(self):
        # opened at the first event, so a run refused at restore leaves its train dir untouched
        if self._writer is None:
            with self.g.graph.as_default():
                self._writer = tf1.summary.FileWriter(self.train_dir, self.g.graph)
        return self._writer

    def fetches(self, step):
        return {'hist': self.hist_op} if self.hist_every and (step + 1) % self.hist_every == 0 else {}

    def write_step(self, out, step, lr):
        self._scalars(step, {'train/loss': out['loss'], 'train/lr': lr,
                             'train/top1_error': out['top1'], 'train/top5_error': out['top5']})
        if 'hist' in out:
            self.writer.add_summary(out['hist'], step)

    def write_epoch(self, sess, step, top1, top5):
        self._scalars(step, {'val/top1_error': top1, 'val/top5_error': top5})
        weights = conv1_weights(self.g, sess)
        if weights is not None:
            shares = [float(colour_share(w).mean()) for w in weights]
            self._scalars(step, {f'conv1/colour_share_tower{t}': v for t, v in enumerate(shares)})
            self.colour = shares
            grid = figures.filter_grid(weights)
            png = figures.png_bytes(grid)
            image = tf1.Summary.Image(height=grid.shape[0], width=grid.shape[1], colorspace=3,
                                      encoded_image_string=png)
            self.writer.add_summary(tf1.Summary(value=[tf1.Summary.Value(
                tag='conv1_filters', image=image)]), step)
            figures.save_png(os.path.join(self.train_dir, 'conv1_filters.png'), grid)
        self.writer.flush()

    def _scalars(self, step, values):
        self.writer.add_summary(tf1.Summary(value=[
            tf1.Summary.Value(tag=k, simple_value=float(v)) for k, v in values.items()]), step)

    def close(self):
        if self._writer is not None:
            self._writer.close()


def _kernel(p):
    """A layer's weights: 'w', or an Inception stem block's first unit's 'b0_0/w'."""
    return p['w'] if 'w' in p else next(v for k, v in p.items() if k.endswith('/w'))


def conv1_weights(g, sess):
    """The first layer's kernels per tower, as NumPy; None unless they read an RGB image."""
    first = next(iter(g.net.params))[0]
    towers = sorted(t for (name, t) in g.net.params if name == first)
    weights = sess.run([_kernel(g.net.params[(first, t)]) for t in towers])
    if weights[0].ndim != 4 or weights[0].shape[2] != 3:
        return None
    return [np.asarray(w) for w in weights]


def conv1_grid(g, sess):
    """The first layer's kernels, tower 0's above tower 1's (the paper's Figure 3 for AlexNet);
    None unless they read an RGB image."""
    weights = conv1_weights(g, sess)
    return None if weights is None else figures.filter_grid(weights)


def colour_share(w):
    """Per kernel of w (k, k, 3, n): the share of its energy off the grey axis, sum of
    (w - its mean over R, G, B)^2 over sum of w^2. 0 for a colour-agnostic kernel (the same
    weight on R, G and B everywhere), 2/3 for one that reads a single channel. The paper's
    Figure 3: tower 0's kernels "largely color-agnostic", tower 1's "largely color-specific"."""
    w = np.asarray(w, np.float64)
    chroma = ((w - w.mean(axis=2, keepdims=True)) ** 2).sum(axis=(0, 1, 2))
    return chroma / np.maximum((w ** 2).sum(axis=(0, 1, 2)), 1e-30)
