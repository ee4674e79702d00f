"""Restore a checkpoint, score the validation split with 1 and 10 crops, set the result beside
the published figures, and classify the user's own pictures."""
import os
import time

import numpy as np

from alexnet_tf1 import devices, models, options
from alexnet_tf1.evaluation import figures
from alexnet_tf1.training import checkpoints as ckpt_mod, graph as graph_mod, objective
from alexnet_tf1.weights import imagenet, importers
from alexnet_tf1.config import ModelConfig, defaults_for
from alexnet_tf1.data import pipeline
from alexnet_tf1.errors import UserError
from alexnet_tf1.io_util import atomic_write_json
from alexnet_tf1.tf_compat import session, tf, tf1


class Restored:
    """A model graph (inference, or with `gradients` its training gradients) with trained
    variables, on the given devices."""

    def __init__(self, path, gpus='auto', expect_model=None, state=None, precision=None,
                 gradients=False):
        """path: a checkpoint prefix; or, with `state` given, a published weight file.
        precision: 'fp32' or 'bf16' (graph.build's); default the run's own, from its state.
        gradients: the training graph instead, its g.grads the gradients of the run's own
        loss (label smoothing, auxiliary heads) without weight decay, and no update step (so no
        optimizer slots to restore)."""
        self.path = path
        self.state = state or ckpt_mod.read_state(path)
        self.precision = precision or options.kept('precision', self.state)
        self.left = []      # published weights: notes on layers left at their initialisation
        if expect_model and self.state['model'] != expect_model:
            raise ckpt_mod.CheckpointError(
                f"{path} is a {self.state['model']} checkpoint, not {expect_model}")
        self.config = ModelConfig.from_dict(self.state['config'])
        spec = models.get(self.config.model)
        placement = devices.resolve(gpus, towers=spec.towers)
        training = {}
        if gradients:
            training = {'weight_decay': 0.0, 'update': lambda *_: tf.no_op(),
                        'step': objective.Step(**options.handed('step', self.state))}
        self.g = graph_mod.build(self.config, placement, train=gradients, precision=self.precision,
                                 **training)
        self.dense = None
        with self.g.graph.as_default():
            if spec.build_dense and not gradients:      # VGG's test-time net, same variables
                with tf1.device(placement.towers[0]):
                    images = tf1.placeholder(tf.float32, [None, None, None, self.config.channels],
                                             'dense_images')
                # in the graph's precision, as graph.build feeds its own net (no cast in fp32)
                net = spec.build_dense(tf.cast(images, graph_mod.PRECISIONS[self.precision]),
                                       self.config, placement.towers)
                self.dense = (images, tf.nn.softmax(tf.cast(net.logits, tf.float32),
                                                    name='dense_probs'))
            self.sess = session(self.g.graph, placement.session_config())
            if state is None:
                ckpt_mod.restore(tf1.train.Saver(), self.sess, path)
            else:
                self.sess.run(tf1.global_variables_initializer())
                self.left = importers.load_into(self.sess, self.g.net, self.config, path)

    @classmethod
    def from_weights(cls, path, model, num_classes=1000, gpus='auto', config=None, mean=None,
                     precision='fp32', gradients=False):
        """--init-from: a published file (importers.PUBLISHED), scored like a checkpoint. It
        takes RGB 0-255 minus the weights' own mean (weights/imagenet.py), or `mean` (a mean .npy)."""
        if model not in importers.PUBLISHED:
            raise importers.not_published(model)
        config = config or importers.published_config(defaults_for(model,
                                                                   num_classes=num_classes))
        return cls(path, gpus, state={'model': model, 'config': config.to_dict(),
                                      'global_step': 0, 'input_mean': mean or model},
                   precision=precision, gradients=gradients)

    def data(self, prepared):
        """The data set as this model takes it: with the published weights' mean in place
        of the set's own when the model came from (or was fine-tuned from) published weights."""
        spec = self.state.get('input_mean')
        return imagenet.with_mean(prepared, spec) if spec else prepared

    def probs(self, x, batch=64):
        """Softmax of an already-preprocessed float32 NHWC batch, in slices of `batch`."""
        return np.concatenate([self.sess.run(self.g.probs, {self.g.images: x[i:i + batch]})
                               for i in range(0, len(x), batch)]) if len(x) else np.zeros((0,))

    def dense_probs(self, x):
        """Softmax of the class scores averaged over the dense map, for whole images."""
        images, probs = self.dense
        return self.sess.run(probs, {images: x})

    def logits(self, x):
        return self.sess.run(self.g.logits, {self.g.images: x})

    def close(self):
        self.sess.close()


def topk_errors(probs, labels, k=5):
    """(top-1, top-k) error in percent; a label counts as found if it is among the k largest."""
    order = np.argsort(-probs, axis=1, kind='stable')
    labels = np.asarray(labels)[:, None]
    top1 = np.mean(order[:, :1] != labels) * 100
    topk = np.mean(~np.any(order[:, :k] == labels, axis=1)) * 100
    return float(top1), float(topk)


def n_crops(state):
    """10 (the paper's corners and centre, and their mirrors), or 5 for a model trained
    without mirrored images (digits): a mirrored digit is not the digit."""
    return 10 if options.kept('flip', state) else 5


def crop_probs(restored, prepared, batch_size=32, split='val'):
    """(centre-crop softmax, k-crop average softmax, labels, k) over a split: crop 4 of the
    ten, and the 10-crop average as the paper (the five unmirrored crops for a model trained
    without mirrors)."""
    size, crops = restored.config.input_size, n_crops(restored.state)
    p1, pk, labels = [], [], []
    for x, y in pipeline.eval_batches(prepared, batch_size, crop=size, mode='ten', split=split):
        n = len(y)
        p = restored.probs(x.reshape((n * 10,) + x.shape[2:]), batch_size * 2).reshape(n, 10, -1)
        p1.append(p[:, 4])
        pk.append(p[:, :crops].mean(axis=1))
        labels.append(y)
    return np.concatenate(p1), np.concatenate(pk), np.concatenate(labels), crops


def scores(p1, pk, labels, crops):
    """eval.json's error fields from crop_probs' output."""
    t1, t5 = topk_errors(p1, labels)
    t1_k, t5_k = topk_errors(pk, labels)
    return {'n_images': int(len(labels)), 'top1_error_1crop': t1, 'top5_error_1crop': t5,
            f'top1_error_{crops}crop': t1_k, f'top5_error_{crops}crop': t5_k, 'crops': crops}


def evaluate(restored, prepared, batch_size=32, split='val'):
    """Centre crop and the 10-crop average of softmax (crop_probs), as eval.json's fields."""
    start = time.perf_counter()
    probs = crop_probs(restored, prepared, batch_size, split)
    seconds = time.perf_counter() - start
    result = {'model': restored.config.model, 'checkpoint': os.path.abspath(restored.path),
              'global_step': int(restored.state['global_step']), 'dataset': prepared.dataset,
              'precision': getattr(restored, 'precision', 'fp32'),
              **scores(*probs),
              # all of it: reading, cropping, the net, the softmax average
              'eval_seconds': round(seconds, 3),
              'eval_images_per_s': round(len(probs[2]) / seconds, 2) if seconds > 0 else None}
    if 'history' in restored.state:         # a checkpoint of this project, not published weights
        state = restored.state
        result['run'] = {'epoch': state.get('epoch'), 'seed': state.get('seed'),
                         'last_val_top1_error': ckpt_mod.val_error(state),
                         'loss_spikes': state.get('spikes', [])}
    if getattr(restored, 'dense', None) is not None:
        result.update(evaluate_dense(restored, prepared, batch_size, split))
    return result


def describe_checkpoint(path, state):
    """One line: which checkpoint is scored, how far its run got, and whether it went wrong."""
    line = (f"scoring {path}: {state['model']}, step {state['global_step']}, "
            f"epoch {state.get('epoch')}")
    err = ckpt_mod.val_error(state)
    if err is not None:
        line += f', validation top-1 error {err:.1%} at its last epoch'
    spikes = state.get('spikes') or []
    if spikes:
        line += (f"; its loss jumped {len(spikes)} time(s), first at step {spikes[0]['step']} "
                 f"(epoch {spikes[0]['epoch']})")
    return line


def evaluate_dense(restored, prepared, batch_size, split='val'):
    """VGG's test: the whole stored image (Q = its side) and its mirror through the
    fully-convolutional net, class scores averaged over the map, the two softmaxes averaged."""
    probs, labels, side = [], [], None
    for x, y in pipeline.eval_batches(prepared, max(1, batch_size // 4), crop=None, mode='full',
                                      split=split):
        n, side = len(y), x.shape[2]
        probs.append(restored.dense_probs(x.reshape((n * 2,) + x.shape[2:]))
                     .reshape(n, 2, -1).mean(axis=1))
        labels.append(y)
    t1, t5 = topk_errors(np.concatenate(probs), np.concatenate(labels))
    return {'top1_error_dense': t1, 'top5_error_dense': t5, 'dense_scale': int(side)}


def row(label, top1, top5):
    """One line of the results table: a label and two error columns ('-' for no figure)."""
    def cell(v):
        return f'{v:>11.2f}' if v is not None else f"{'-':>11}"
    return f'{label:62} {cell(top1)} {cell(top5)}'


HEADER = f"{'':62} {'top-1 err %':>11} {'top-5 err %':>11}"


def report(result, published):
    k = result.get('crops', 10)
    lines = [f"{result['model']} {result['checkpoint']} (step {result['global_step']}), "
             f"{result['dataset']} val: {result['n_images']} images", HEADER,
             row('this checkpoint, centre crop', result['top1_error_1crop'],
                 result['top5_error_1crop']),
             row('this checkpoint, %d crops' % k, result['top1_error_%dcrop' % k],
                 result['top5_error_%dcrop' % k])]
    if 'top1_error_dense' in result:
        lines.append(row('this checkpoint, dense, Q = %d, + mirror' % result['dense_scale'],
                         result['top1_error_dense'], result['top5_error_dense']))
    lines += published_rows(published, result['dataset'])
    if result.get('eval_images_per_s'):
        lines.append(f"speed: {result['eval_images_per_s']:.1f} images/s with both crop sets "
                     f"({result['eval_seconds']:.1f} s for {result['n_images']} images, reading "
                     f"and cropping included)")
    return '\n'.join(lines)


def published_rows(published, dataset):
    lines = [row(source + ' (' + on + ')', t1, t5) for source, on, t1, t5 in published]
    if dataset != 'imagenet':
        lines.append(f"note: this data set is '{dataset}', not ImageNet: its figures "
                     f"are not comparable with the published ones.")
    return lines


def write_result(result, path=None):
    """eval.json beside the checkpoint, or `path` (run_eval.py --out)."""
    path = path or os.path.join(os.path.dirname(result['checkpoint']), 'eval.json')
    try:
        atomic_write_json(path, result)
    except OSError as e:        # a full disk, a read-only folder: the figures are printed above
        raise UserError(f'cannot write {path} ({e.strerror or e}); the figures above are '
                        f'the whole result') from None
    return path


def read_picture(path, prepared):
    """A user's picture at the stored size: (as shown, RGB uint8; as the model takes it).
    Raises BadImage or OSError when it cannot be read."""
    from alexnet_tf1.data.decode import load_image
    shown = img = load_image(path, prepared.mean.shape[0])
    if prepared.mean.shape[-1] == 1:    # a one-channel model (LeNet): luminance, ITU-R 601
        img = np.rint(img @ np.array([0.299, 0.587, 0.114]))[..., None].astype(np.uint8)
    return shown, img


def read_pictures(files, prepared, flag='--images'):
    """[(file, picture as shown, as the model takes it, None), or (file, None, None, why it
    was skipped)] in the order given. None readable is a UserError naming each: a caller must
    be able to tell from the exit code that nothing was looked at."""
    from alexnet_tf1.data.decode import BadImage
    from alexnet_tf1.errors import UserError
    read = []
    for f in files:
        try:
            read.append((f, *read_picture(f, prepared), None))
        except (BadImage, OSError) as e:
            read.append((f, None, None,
                         e.strerror if isinstance(e, OSError) and e.strerror else str(e)))
    if all(why for *_, why in read):
        raise UserError(f'none of the {flag} could be read: '
                        + '; '.join(f'{f} ({why})' for f, *_, why in read))
    return read


def skipped_line(f, why):
    return f'warning: {f}: skipped ({why})'


def classify_files(restored, prepared, files, sheet_path):
    """Top-5 classes with names for the user's pictures (10-crop average), and a PNG sheet.
    A picture that cannot be read is a warning line, unless none can (UserError)."""
    size = restored.config.input_size
    pictures, rows, lines = [], [], []
    for f, shown, img, why in read_pictures(files, prepared):
        if why:
            lines.append(skipped_line(f, why))
            continue
        crops = pipeline.preprocess_for_eval(img, prepared.mean, size, 'ten')
        p = restored.probs(crops[:n_crops(restored.state)]).mean(axis=0)
        best = np.argsort(-p)[:5]
        preds = [(class_name(prepared.synsets, i), float(p[i])) for i in best]
        lines.append(f'{f}: ' + ', '.join(f'{n} {q:.1%}' for n, q in preds))
        pictures.append(shown)
        rows.append(preds)
    figures.save_png(sheet_path, figures.top5_sheet(pictures, rows))
    lines.append(f'top-5 sheet: {sheet_path}')
    return lines


def class_name(synsets, i):
    wnid, name = synsets[i]
    return name.split(',')[0] if name else wnid
