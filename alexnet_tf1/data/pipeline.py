"""Prepared shards -> float32 NHWC batches, in NumPy only.

Training follows the paper (its section 4.1): a random crop, a horizontal flip with p = 0.5,
the per-pixel mean image subtracted at the same window (Caffe's convention), and PCA
lighting. Evaluation gives the centre crop or the paper's ten crops. Batches are built
ahead in a background thread so the training loop rarely waits on them.
"""
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from alexnet_tf1.data.reader import DataError

THREAD_NAME = 'alexnet_tf1-batches'
_END = object()


# ---- small pure functions ---------------------------------------------------------------

def _crop_hw(shape, crop):
    """(crop_h, crop_w) for an image of shape (H, W, ...); crop=None keeps the whole image."""
    h, w = shape[0], shape[1]
    if crop is None:
        return h, w
    crop = int(crop)
    if not 0 < crop <= min(h, w):
        raise DataError(f"crop {crop} does not fit images of {h}x{w}")
    return crop, crop


def five_windows(h, w, crop):
    """Top-left (y, x) of the top-left, top-right, bottom-left, bottom-right and centre
    crops; the centre uses floor((H - crop) / 2) as Caffe does (14 for 256 -> 227)."""
    ch, cw = _crop_hw((h, w), crop)
    return [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw), ((h - ch) // 2, (w - cw) // 2)]


def center_crop(img, crop):
    """The central crop x crop window of one (H, W, C) image (a view, not a copy)."""
    ch, cw = _crop_hw(img.shape, crop)
    y, x = five_windows(img.shape[0], img.shape[1], crop)[4]
    return img[y:y + ch, x:x + cw]


def ten_crops(img, crop):
    """(10, crop, crop, C): the four corners and the centre (in the order of five_windows),
    then the same five mirrored left-right. Keeps img's dtype."""
    ch, cw = _crop_hw(img.shape, crop)
    five = np.stack([img[y:y + ch, x:x + cw] for y, x in five_windows(*img.shape[:2], crop)])
    return np.concatenate([five, five[:, :, ::-1]])


def lighting_offset(eigval, eigvec, alpha):
    """The paper's PCA colour shift, 255 * eigvec @ (alpha * eigval), on the 0..255 scale.

    eigval (3,) and eigvec (3, 3) (columns are eigenvectors) come from pixels scaled to
    [0, 1], hence the 255. alpha is (3,) or (n, 3); the result has the same shape.
    """
    alpha = np.asarray(alpha, np.float32)
    return 255.0 * (alpha * np.asarray(eigval, np.float32)) @ np.asarray(eigvec, np.float32).T


def preprocess_for_eval(image, mean, crop=227, mode='center'):
    """One decoded uint8 (H, W, C) image (e.g. decode.load_image(path, 256)) -> float32,
    mean-subtracted: the centre crop (crop, crop, C), or with mode='ten' the ten crops
    (10, crop, crop, C)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape != mean.shape:
        raise DataError(f"image shape {image.shape} does not match the mean image {mean.shape}")
    # Cropping and flipping commute with the subtraction, so subtract once, then crop.
    diff = np.subtract(image, mean, dtype=np.float32)
    if mode == 'center':
        return np.ascontiguousarray(center_crop(diff, crop))
    if mode == 'ten':
        return ten_crops(diff, crop)
    raise ValueError(f"mode must be 'center' or 'ten', not {mode!r}")


def resize_matrix(n_in, n_out):
    """(n_out, n_in) bilinear interpolation weights with half-pixel centres (TF's and
    Pillow's convention without antialiasing): row i holds the weights of output pixel i,
    summing to 1, so a constant (the mean, a lighting offset) stays that constant."""
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    m = np.zeros((n_out, n_in), np.float32)
    np.add.at(m, (np.arange(n_out), lo), 1 - (pos - lo))
    np.add.at(m, (np.arange(n_out), hi), pos - lo)
    return m


def resize_batch(x, size):
    """(B, H, W, C) -> (B, size, size, C) bilinear, as two matrix products."""
    ry, rx = resize_matrix(x.shape[1], size), resize_matrix(x.shape[2], size)
    return np.einsum('yh,bhwc,xw->byxc', ry, x, rx, optimize=True).astype(np.float32)


# ---- the per-epoch plan ------------------------------------------------------------------

def epoch_plan(n, seed=0, epoch=0, max_y=0, max_x=0, shift=0):
    """Every random draw of one epoch, from an RNG seeded by (seed, epoch).

    Returns (order, ys, xs, flips, alphas, shifts): a permutation of range(n), then for the
    i-th image shown, its crop offsets (uniform in [0, max_y] and [0, max_x]), whether it is
    mirrored (p = 0.5), its standard-normal lighting coefficients (3,) and, with shift > 0,
    its (dy, dx) translation in [-shift, shift] (else shifts is None). All but the shifts are
    drawn whatever the options, so turning lighting or flips off leaves the other draws
    unchanged; the shifts are drawn last, so turning them on does too.
    """
    rng = np.random.default_rng([int(seed), int(epoch)])
    order = rng.permutation(n)
    ys = rng.integers(0, max_y + 1, n)
    xs = rng.integers(0, max_x + 1, n)
    flips = rng.random(n) < 0.5
    alphas = rng.standard_normal((n, 3)).astype(np.float32)
    shifts = rng.integers(-shift, shift + 1, (n, 2)) if shift else None
    return order, ys, xs, flips, alphas, shifts


def shift_image(a, dy, dx):
    """Move a mean-subtracted (H, W, C) image by (dy, dx) pixels in place; what is uncovered
    becomes 0, the mean. For inputs as large as the crop (digits), where a crop cannot move."""
    if dy == 0 and dx == 0:
        return a
    h, w = a.shape[:2]
    src = a[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)].copy()
    a[...] = 0
    a[max(dy, 0):h - max(-dy, 0), max(dx, 0):w - max(-dx, 0)] = src
    return a


def epoch_order(n, seed=0, epoch=0):
    """The order in which train_batches shows the n images of a split in this epoch."""
    return epoch_plan(n, seed, epoch)[0]


# ---- batches -----------------------------------------------------------------------------

def _check_mean(prepared, split):
    shape = tuple(split.images[0].shape[1:])
    if tuple(prepared.mean.shape) != shape:
        raise DataError(f"{prepared.path}: mean image {tuple(prepared.mean.shape)} does not "
                        f"match the images {shape}")
    return shape


class _Windows:
    """What _fill_train needs to cut crop windows out of (H, W, C) images fast."""

    def __init__(self, mean, ch, cw):
        h, w, c = mean.shape
        self.ch, self.cw, self.w, self.c = ch, cw, w, c
        self.mean = mean
        # The mean mirrored once, so a mirrored window of it is a plain slice.
        self.mean_flipped = np.ascontiguousarray(mean[:, ::-1])
        # A mirrored uint8 window read through negative strides costs ~12 ns a pixel (NumPy
        # loops over 3 channels at a time); a flat gather from precomputed offsets ~3 ns.
        yy, jj, cc = np.meshgrid(np.arange(ch), np.arange(cw), np.arange(c), indexing='ij')
        self.flip_gather = (yy * w * c + (cw - 1 - jj) * c + cc).astype(np.intp)


def _fill_train(split, idx, ys, xs, flips, offsets, win, out, shifts=None):
    """Write augmented images idx into out (float32, len(idx) x ch x cw x C)."""
    imgs = split.take(idx)
    ch, cw, w, c = win.ch, win.cw, win.w, win.c
    tmp = np.empty((ch, cw, c), np.uint8)
    for i in range(len(idx)):
        y, x = int(ys[i]), int(xs[i])
        if flips[i]:
            flat = imgs[i].reshape(-1)[(y * w + x) * c:]
            # In range by construction (y <= H - ch, x <= W - cw); 'wrap' skips the check.
            np.take(flat, win.flip_gather, out=tmp, mode='wrap')
            np.subtract(tmp, win.mean_flipped[y:y + ch, w - cw - x:w - x], out=out[i])
        else:
            # One pass: uint8 - float32 straight into the batch, no temporary image.
            np.subtract(imgs[i, y:y + ch, x:x + cw], win.mean[y:y + ch, x:x + cw], out=out[i])
        if shifts is not None:
            shift_image(out[i], int(shifts[i, 0]), int(shifts[i, 1]))
        if offsets is not None:
            # Added as a (cw * C) row so NumPy's inner loop is long, while out[i] is in cache.
            out[i].reshape(ch, cw * c)[...] += np.tile(offsets[i], cw)


def train_batches(prepared, batch_size, crop=227, seed=0, epoch=0, flip=True, lighting_std=0.1,
                  split='train', prefetch=4, threads=1, start_batch=0, shift=0, resize=None):
    """Iterate over ONE epoch of augmented training batches: (float32 (B, crop, crop, C),
    int32 (B,)).

    The order is the permutation epoch_order(N, seed, epoch). When the split holds at least
    one full batch, the last partial batch is dropped (at most batch_size - 1 images miss
    that epoch; the next epoch's shuffle differs); otherwise the single partial batch of all
    N images is yielded. Per image: a random crop (crop=None keeps the whole image), a
    mirror with p = 0.5 (flip=False: never), minus the mean image at the same window, plus
    lighting_offset(eigval, eigvec, alpha) with alpha ~ N(0, lighting_std) per image per
    presentation (skipped if the data has no PCA, e.g. 1-channel, or lighting_std == 0);
    shift > 0 then moves the result by up to that many pixels each way (shift_image);
    resize (with crop=None) scales the whole image to resize x resize (the AlexNet paper's
    "without this scheme" case: no crops, the whole 256 picture at 227).
    Same (seed, epoch) -> same batches, whatever prefetch and threads are. start_batch skips
    that many batches of the epoch without reading them (a run resumed mid-epoch).

    Batches are built in a background thread, prefetch batches ahead (0: in the caller's
    thread); threads > 1 splits each batch between that many worker threads (NumPy releases
    the GIL while copying). Closing the iterator, or dropping it, stops the thread; an
    exception in the thread is raised in the consumer.
    """
    if int(batch_size) <= 0:
        raise ValueError(f"batch_size must be positive, not {batch_size}")
    batch_size, threads = int(batch_size), max(1, int(threads))
    s = prepared.split(split)
    h, w, c = _check_mean(prepared, s)
    ch, cw = _crop_hw((h, w), crop)
    win = _Windows(np.ascontiguousarray(prepared.mean, np.float32), ch, cw)
    n = len(s)
    lighting = prepared.eigval is not None and lighting_std != 0 and c == 3

    def make():
        order, ys, xs, flips, alphas, shifts = epoch_plan(n, seed, epoch, h - ch, w - cw, shift)
        if not flip:
            flips[:] = False
        offsets = lighting_offset(prepared.eigval, prepared.eigvec, alphas * lighting_std) \
            if lighting else None
        n_batches = n // batch_size if n >= batch_size else 1
        pool = ThreadPoolExecutor(threads) if threads > 1 else None
        try:
            for b in range(int(start_batch), n_batches):
                sl = slice(b * batch_size, min((b + 1) * batch_size, n))
                idx = order[sl]
                out = np.empty((len(idx), ch, cw, c), np.float32)
                parts = np.array_split(np.arange(len(idx)), threads) if pool else [np.arange(len(idx))]
                jobs = [(s, idx[p], ys[sl][p], xs[sl][p], flips[sl][p],
                         None if offsets is None else offsets[sl][p], win,
                         out[p[0]:p[-1] + 1], None if shifts is None else shifts[sl][p])
                        for p in parts if len(p)]
                if pool:
                    for f in [pool.submit(_fill_train, *j) for j in jobs]:
                        f.result()
                else:
                    _fill_train(*jobs[0])
                yield (resize_batch(out, resize) if resize else out), s.labels[idx]
        finally:
            if pool:
                pool.shutdown(wait=True)

    return _in_background(make, prefetch)


def eval_batches(prepared, batch_size, crop=227, mode='center', split='val', prefetch=2):
    """Iterate over a split in file order: (float32 batch, int32 labels); the last batch may
    be partial. mode='center': (B, crop, crop, C) centre crops; mode='ten': (B, 10, crop,
    crop, C) in ten_crops' order; mode='full': (B, 2, H, W, C), the whole stored image and its
    mirror (VGG's dense evaluation). The mean image is subtracted at the same windows; no
    lighting, no randomness."""
    if mode not in ('center', 'ten', 'full'):
        raise ValueError(f"mode must be 'center', 'ten' or 'full', not {mode!r}")
    if int(batch_size) <= 0:
        raise ValueError(f"batch_size must be positive, not {batch_size}")
    batch_size = int(batch_size)
    s = prepared.split(split)
    h, w, c = _check_mean(prepared, s)
    ch, cw = _crop_hw((h, w), crop)
    mean = np.ascontiguousarray(prepared.mean, np.float32)
    windows = five_windows(h, w, crop)

    def make():
        for start in range(0, len(s), batch_size):
            idx = np.arange(start, min(start + batch_size, len(s)))
            imgs = s.take(idx)
            if mode == 'full':
                out = np.empty((len(idx), 2, h, w, c), np.float32)
                np.subtract(imgs, mean, out=out[:, 0])
                out[:, 1] = out[:, 0, :, ::-1]
            elif mode == 'center':
                y, x = windows[4]
                out = np.subtract(imgs[:, y:y + ch, x:x + cw], mean[y:y + ch, x:x + cw],
                                  dtype=np.float32)
            else:
                out = np.empty((len(idx), 10, ch, cw, c), np.float32)
                for k, (y, x) in enumerate(windows):
                    np.subtract(imgs[:, y:y + ch, x:x + cw], mean[y:y + ch, x:x + cw], out=out[:, k])
                out[:, 5:] = out[:, :5, :, ::-1]
            yield out, s.labels[idx]

    return _in_background(make, prefetch)


# ---- the background thread ---------------------------------------------------------------

def _in_background(make, prefetch):
    """Iterate over make() run in a thread, up to prefetch items ahead of the consumer.

    A generator, so nothing starts before the first next(); its finally (run by close()
    or garbage collection) stops and joins the thread.
    """
    if int(prefetch) <= 0:
        yield from make()
        return
    q = queue.Queue(maxsize=int(prefetch))
    stop = threading.Event()

    def put(item):
        # A bounded wait, so a worker blocked on a full queue notices stop.
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def work():
        try:
            for item in make():
                if not put((None, item)):
                    return
            put((None, _END))
        except BaseException as e:   # noqa: B902 - handed to the consumer, raised there
            put((e, None))

    t = threading.Thread(target=work, name=THREAD_NAME, daemon=True)
    t.start()
    try:
        while True:
            err, item = q.get()
            if err is not None:
                raise err
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        t.join()
