"""Input-pipeline benchmark: python -m alexnet_tf1.bench.data [--json] [--images N] [--seconds S]

In one run, on synthetic JPEGs sized like ImageNet's: preparation speed (decode.load_image,
one process), TensorFlow's own decode + resize + central crop on the same files (eager, one
thread), and training-input speed (train_batches, 256 -> 227, batch 128) pinned to one core.
A measurement to read, never a pass/fail test.
"""
import argparse
import io
import json
import os
import sys
import tempfile
import time

import numpy as np

SIZE = 256
# ImageNet's PCA figures, as in fb.resnet.torch
EIGVAL = np.array([0.2175, 0.0188, 0.0045], np.float32)
EIGVEC = np.array([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                   [-0.5836, -0.6948, 0.4203]], np.float32)


# ---- benchmark files ---------------------------------------------------------------------

def jpeg_sizes(n, seed=0):
    """n (width, height) pairs shaped like ImageNet's: mostly 500x375-ish, mean about
    400x350, a few sides past 1000 px."""
    rng = np.random.default_rng(seed)
    long_side = np.clip(rng.lognormal(np.log(340), 0.3, n), 160, 2500)
    long_side[::15] = rng.uniform(1000, 1600, len(long_side[::15]))   # the large-photo tail
    aspect = rng.choice([4 / 3, 3 / 2, 1.0, 5 / 4, 16 / 9], n, p=[.45, .25, .12, .1, .08])
    short_side = long_side / aspect
    portrait = rng.random(n) < 0.3
    w = np.where(portrait, short_side, long_side)
    h = np.where(portrait, long_side, short_side)
    return [(int(a), int(b)) for a, b in zip(np.round(w), np.round(h))]


def natural_image(w, h, rng):
    """Smooth shapes plus fine texture: JPEG sizes close to photos', not trivially small."""
    from PIL import Image
    img = np.zeros((h, w, 3), np.float32)
    for cells, amp in ((4, 70.0), (24, 35.0), (max(w, h) // 6, 18.0)):
        small = rng.normal(0, 1, (max(2, cells * h // max(w, h)), max(2, cells * w // max(w, h)), 3))
        small = ((small - small.min()) / (np.ptp(small) + 1e-9) * 255).astype(np.uint8)
        up = np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC), np.float32)
        img += amp * (up / 127.5 - 1)
    img += rng.normal(0, 9, img.shape)
    return np.clip(img + 128, 0, 255).astype(np.uint8)


def write_jpegs(folder, n, seed=0):
    """Write n deterministic benchmark JPEGs; returns (paths, sizes, file sizes in bytes)."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    paths, sizes, nbytes = [], jpeg_sizes(n, seed), []
    for i, (w, h) in enumerate(sizes):
        buf = io.BytesIO()
        Image.fromarray(natural_image(w, h, rng)).save(buf, 'JPEG', quality=95)
        path = os.path.join(folder, f'bench_{i:04d}.JPEG')
        with open(path, 'wb') as f:
            f.write(buf.getvalue())
        paths.append(path)
        nbytes.append(len(buf.getvalue()))
    return paths, sizes, nbytes


def write_train_shards(folder, n=512, seed=0):
    """A prepared directory (the contract in data/__init__.py) of n random 256x256 images."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(folder, 'train'))
    per_shard, shards = 256, []
    for j, start in enumerate(range(0, n, per_shard)):
        m = min(per_shard, n - start)
        rel = f'train/images-{j:05d}.npy'
        np.save(os.path.join(folder, rel), rng.integers(0, 256, (m, SIZE, SIZE, 3), dtype=np.uint8))
        np.save(os.path.join(folder, rel.replace('images-', 'labels-')),
                rng.integers(0, 1000, m).astype(np.int32))
        shards.append(rel)
    np.save(os.path.join(folder, 'mean.npy'), np.full((SIZE, SIZE, 3), 120.0, np.float32))
    np.savez(os.path.join(folder, 'pca.npz'), eigval=EIGVAL, eigvec=EIGVEC)
    with open(os.path.join(folder, 'synsets.txt'), 'w') as f:
        f.writelines(f'n{i:08d}\tclass {i}\n' for i in range(1000))
    manifest = {'format': 1, 'dataset': 'sample', 'layout': 'bench', 'image_size': SIZE,
                'channels': 3, 'num_classes': 1000, 'converted': n, 'skipped': [],
                'splits': {'train': {'count': n, 'shards': shards}}}
    with open(os.path.join(folder, 'manifest.json'), 'w') as f:
        json.dump(manifest, f)
    return folder


# ---- timings -----------------------------------------------------------------------------

def rate(fn, items, seconds):
    """Images/s of fn over items, in whole passes until `seconds` have gone (at least one),
    after one untimed call (first-use costs: imports, TF kernels, page faults)."""
    fn(items[0])
    done, start = 0, time.perf_counter()
    while True:
        for it in items:
            fn(it)
        done += len(items)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def prepare_rate(paths, seconds):
    from alexnet_tf1.data import decode       # written concurrently with this file; imported on use
    return rate(lambda p: decode.load_image(p, SIZE), paths, seconds)


def tf_rates(paths, seconds):
    """TensorFlow's decode_jpeg + resize (shorter side 256) + central crop, one thread:
    (images/s with tf.image.resize's default bilinear, the same with antialias=True, which
    matches Pillow's widened bilinear that decode.py uses)."""
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import tensorflow as tf
    # must precede the first op, which fixes the thread pools
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    def load(path, antialias):
        img = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        h, w = int(img.shape[0]), int(img.shape[1])
        nh, nw = max(SIZE, round(h * SIZE / min(h, w))), max(SIZE, round(w * SIZE / min(h, w)))
        img = tf.image.resize(img, (nh, nw), antialias=antialias)
        y, x = (nh - SIZE) // 2, (nw - SIZE) // 2
        return tf.cast(tf.round(img[y:y + SIZE, x:x + SIZE]), tf.uint8).numpy()

    return (rate(lambda p: load(p, False), paths, seconds),
            rate(lambda p: load(p, True), paths, seconds))


def augment_rate(seconds, n=512, batch=128, crop=227):
    """train_batches images/s consumed, the process pinned to one core (the batch thread
    inherits the pin), after one untimed warm-up epoch."""
    from alexnet_tf1.data.pipeline import train_batches
    from alexnet_tf1.data.reader import open_prepared
    with tempfile.TemporaryDirectory(prefix='alexnet_bench_shards_') as d:
        p = open_prepared(write_train_shards(d, n))
        return _one_core_rate(lambda epoch: (x for x, _ in train_batches(
            p, batch, crop, seed=0, epoch=epoch, threads=1)), seconds)


def _one_core_rate(epoch_batches, seconds):
    """Images/s of epoch_batches(epoch) (an iterable of batches) in whole epochs until
    `seconds` have gone, after one untimed epoch, the process pinned to one core (threads it
    starts inherit the pin)."""
    pinned = hasattr(os, 'sched_setaffinity')
    if pinned:
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})
    try:
        for _ in epoch_batches(0):
            pass
        done, epoch, start = 0, 1, time.perf_counter()
        while True:
            for x in epoch_batches(epoch):
                done += len(x)
            epoch += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return done / elapsed
    finally:
        if pinned:
            os.sched_setaffinity(0, cpus)


def tf_augment_rate(seconds, n=512, batch=128, crop=227):
    """The same work as train_batches - a random crop, a mirror with p = 0.5, minus the mean
    image at that window, plus a PCA lighting offset per image - as tf.image ops in a tf.data
    map over the same in-memory uint8 images, on one core (the process pinned, tf.data's
    private pool and TF's op pools at one thread; call after tf_rates, which fixes those)."""
    import tensorflow as tf
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
    mean = tf.constant(np.full((SIZE, SIZE, 3), 120.0, np.float32))
    eigval, eigvec = tf.constant(EIGVAL), tf.constant(EIGVEC)

    def augment(img):
        # image and mean cropped at the same window: crop them stacked
        both = tf.image.random_crop(tf.stack([tf.cast(img, tf.float32), mean]), (2, crop, crop, 3))
        x = tf.image.random_flip_left_right(both[0] - both[1])
        alpha = tf.random.normal([3], stddev=0.1)
        return x + 255.0 * tf.linalg.matvec(eigvec, alpha * eigval)

    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    ds = (tf.data.Dataset.from_tensor_slices(images).map(augment).batch(batch, drop_remainder=True)
          .prefetch(1).with_options(options))
    return _one_core_rate(lambda epoch: ds, seconds)      # len() of a batch: its rows


def run(n_images=60, seconds=3.0):
    with tempfile.TemporaryDirectory(prefix='alexnet_bench_jpeg_') as d:
        paths, sizes, nbytes = write_jpegs(d, n_images)
        prep = prepare_rate(paths, seconds)
        tf_plain, tf_aa = tf_rates(paths, seconds)
    aug = augment_rate(seconds)
    tf_aug = tf_augment_rate(seconds)
    w, h = np.array(sizes, float).T
    return {'prepare_images_per_s': round(prep, 1),
            'tf_decode_resize_images_per_s': round(tf_plain, 1),
            'augment_images_per_s_one_core': round(aug, 1),
            'tf_data_augment_images_per_s_one_core': round(tf_aug, 1),
            'augment_vs_tf_data_ratio': round(aug / tf_aug, 3),
            'prepare_vs_tf_ratio': round(prep / tf_plain, 3),
            'tf_decode_resize_antialias_images_per_s': round(tf_aa, 1),
            'prepare_vs_tf_antialias_ratio': round(prep / tf_aa, 3),
            'n_images': n_images,
            'mean_jpeg_width': round(w.mean(), 1),
            'mean_jpeg_height': round(h.mean(), 1),
            'max_jpeg_side': int(max(w.max(), h.max())),
            'mean_jpeg_kb': round(float(np.mean(nbytes)) / 1024, 1),
            'seconds_per_measure': seconds}


def main(argv=None):
    ap = argparse.ArgumentParser(prog='python -m alexnet_tf1.bench.data', description=__doc__.split('\n')[0])
    ap.add_argument('--json', action='store_true', help='print one JSON object')
    ap.add_argument('--images', type=int, default=60, help='benchmark JPEGs to write (default 60)')
    ap.add_argument('--seconds', type=float, default=3.0,
                    help='time to spend on each measurement (default 3)')
    args = ap.parse_args(argv)
    if args.images < 1 or args.seconds <= 0:
        ap.error('--images must be >= 1 and --seconds > 0')
    r = run(args.images, args.seconds)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"{r['n_images']} JPEGs, mean {r['mean_jpeg_width']:.0f}x{r['mean_jpeg_height']:.0f}, "
          f"largest side {r['max_jpeg_side']}, mean {r['mean_jpeg_kb']:.0f} KB")
    rows = [('prepare: decode.load_image, one process', r['prepare_images_per_s']),
            ('TF decode_jpeg + resize + crop, 1 thread', r['tf_decode_resize_images_per_s']),
            ('  the same, resize antialias=True', r['tf_decode_resize_antialias_images_per_s']),
            ('train_batches 256->227, batch 128, 1 core', r['augment_images_per_s_one_core']),
            ('  the same in tf.image ops, a tf.data map', r['tf_data_augment_images_per_s_one_core'])]
    for name, v in rows:
        print(f'  {name:<44} {v:>9,.0f} images/s')
    print(f"  prepare / TF: {r['prepare_vs_tf_ratio']:.2f}x "
          f"(vs antialiased TF: {r['prepare_vs_tf_antialias_ratio']:.2f}x)")
    print(f"  train_batches / tf.data: {r['augment_vs_tf_data_ratio']:.2f}x")
    return 0


if __name__ == '__main__':
    sys.exit(main())
