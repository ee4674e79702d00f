"""The paper's Figure 4 (right): for each query picture, the six training images whose
last-hidden-layer vectors are nearest to its own in Euclidean distance, one row per query.

The vector is the input of the model's last weighted layer (for AlexNet fc8's input, both
towers' fc7: 4096 numbers), taken from the centre crop with dropout off. The training set's
vectors are computed once and cached beside the checkpoint, <checkpoint>.features.npy
(float16, rows in the training split's order) and <checkpoint>.features.json (what they were
made from: a changed checkpoint or data set makes them again).
"""
import glob
import hashlib
import json
import os

import numpy as np

from alexnet_tf1.evaluation import evaluate, figures
from alexnet_tf1.data import pipeline
from alexnet_tf1.io_util import atomic_write, atomic_write_json

K = 6
# half of float32's size, and ample for ranking: 11 bits of mantissa, range +-65504
DTYPE = np.float16
SUFFIX = '.features'


def layer_inputs(g):
    """The tensor the last weighted layer reads, one per data-parallel replica.

    Walks back from the logits along what depends on the images, to the first op that also
    reads a fixed matrix (a weight, or LeNet-5's RBF codes); its image-side input is it."""
    below = _downstream(g.images.op)
    heads = [t for t in g.logits.op.inputs if t.op in below] if g.replicas > 1 else [g.logits]
    out = []
    for t in heads:
        while True:
            fed = [i for i in t.op.inputs if i.op in below]
            fixed = [i for i in t.op.inputs if i.op not in below and (i.shape.rank or 0) >= 2]
            if not fed:
                raise ValueError(f'no weighted layer found below {g.logits.name}')
            if fixed:
                out.append(fed[0])
                break
            t = fed[0]
    return out


def _downstream(op):
    seen, todo = {op}, [op]
    while todo:
        for t in todo.pop().outputs:
            for c in t.consumers():
                if c not in seen:
                    seen.add(c)
                    todo.append(c)
    return seen


def features(restored, tensors, x, batch=64):
    """float32 (len(x), d): the tensors' values for a preprocessed NHWC batch, flattened."""
    out, replicas = [], restored.g.replicas
    for i in range(0, len(x), batch):
        chunk = x[i:i + batch]
        n = len(chunk)
        if n < replicas:    # a replica fed no rows fails the whole run: give it zeros, drop them
            chunk = np.concatenate([chunk, np.zeros((replicas - n,) + chunk.shape[1:],
                                                    chunk.dtype)])
        vals = restored.sess.run(tensors, {restored.g.images: chunk})
        out.append(np.concatenate([v.reshape(v.shape[0], -1) for v in vals])[:n])
    return np.concatenate(out)


def _sha256(path, extra=b''):
    h = hashlib.sha256(extra)
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def cache_key(path, prepared, precision='fp32'):
    """What the cached vectors depend on. A checkpoint's .index holds a checksum of every
    tensor (its run state too), so hashing it catches new weights under the same name; the
    same weights in bf16 give other vectors (to bf16 rounding)."""
    weights = path + '.index' if os.path.exists(path + '.index') else path
    shards = prepared.manifest['splits']['train']['shards']
    stats = [(rel, os.stat(os.path.join(prepared.path, rel)).st_size,
              os.stat(os.path.join(prepared.path, rel)).st_mtime_ns) for rel in shards]
    data = _sha256(os.path.join(prepared.path, 'manifest.json'), json.dumps(stats).encode())
    return {'checkpoint': os.path.abspath(path), 'checkpoint_sha256': _sha256(weights),
            'data_dir': os.path.abspath(prepared.path), 'data_sha256': data,
            'mean_sha256': hashlib.sha256(np.ascontiguousarray(prepared.mean)).hexdigest(),
            'precision': precision}


def training_features(restored, prepared, tensors, batch_size=32, log=None):
    """(float16 (n, d) memory-mapped, the cache's JSON, whether it was reused)."""
    log = log or _say
    npy, meta_path = restored.path + SUFFIX + '.npy', restored.path + SUFFIX + '.json'
    n = len(prepared.split('train'))
    key = cache_key(restored.path, prepared, getattr(restored, 'precision', 'fp32'))
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        cached = np.load(npy, mmap_mode='r')
        if all(meta.get(k) == v for k, v in key.items()) and cached.shape == (n, meta['dim']):
            return cached, meta, True
    except (OSError, ValueError, KeyError):
        pass
    if os.path.exists(meta_path):   # a stale JSON must not vouch for the .npy replacing its own
        os.unlink(meta_path)
    size, c = restored.config.input_size, prepared.mean.shape[-1]
    dim = features(restored, tensors, np.zeros((1, size, size, c), np.float32)).shape[1]
    per_image = dim * np.dtype(DTYPE).itemsize
    log(f'features of {n} training images: {dim} numbers each ({tensors[0].name}), '
        f'{np.dtype(DTYPE).name}, {per_image:,} bytes per image, {n * per_image / 1e6:,.1f} MB '
        f'in all -> {npy}')

    def write(f):
        np.lib.format.write_array_header_1_0(f, {'descr': np.lib.format.dtype_to_descr(
            np.dtype(DTYPE)), 'fortran_order': False, 'shape': (n, dim)})
        done, shown = 0, 0
        for x, _ in pipeline.eval_batches(prepared, batch_size, crop=size, split='train'):
            v = features(restored, tensors, x, batch_size)
            f.write(np.clip(v, -65504, 65504).astype(DTYPE).tobytes())
            done += len(x)
            if done * 10 // n > shown:
                shown = done * 10 // n
                log(f'  {done}/{n}')
    atomic_write(npy, write)
    meta = dict(key, layer=tensors[0].name, dim=int(dim), dtype=np.dtype(DTYPE).name,
                n_images=n, bytes_per_image=int(per_image))
    atomic_write_json(meta_path, meta)
    _drop_orphans(os.path.dirname(os.path.abspath(npy)))
    return np.load(npy, mmap_mode='r'), meta, False


def _say(line):
    print(line, flush=True)     # progress of an hours-long pass, also when piped to a log


def _drop_orphans(folder):
    """Caches of checkpoints the Saver has since rotated out: each can be gigabytes."""
    for meta in glob.glob(os.path.join(folder, '*' + SUFFIX + '.json')):
        prefix = meta[:-len(SUFFIX + '.json')]
        if not os.path.exists(prefix + '.index') and not os.path.isfile(prefix):
            for f in (meta, prefix + SUFFIX + '.npy'):
                if os.path.exists(f):
                    os.unlink(f)


def nearest(train, queries, k=K, chunk=4096):
    """(indices (q, k), Euclidean distances (q, k)) of the k rows of `train` nearest each
    query, ties to the lower index. float64 throughout, so the expansion |q|^2 - 2 q.x + |x|^2
    ranks as the direct difference would; `train` is read a chunk at a time (memory-mapped)."""
    q = np.asarray(queries, np.float64)
    qq = (q * q).sum(1)[:, None]
    best_d = np.zeros((len(q), 0))
    best_i = np.zeros((len(q), 0), np.int64)
    for start in range(0, len(train), chunk):
        x = np.asarray(train[start:start + chunk], np.float64)
        d = np.concatenate([best_d, qq - 2 * q @ x.T + (x * x).sum(1)[None]], 1)
        i = np.concatenate([best_i, np.broadcast_to(np.arange(start, start + len(x)),
                                                    (len(q), len(x)))], 1)
        order = np.lexsort((i, d))[:, :k]
        best_d, best_i = np.take_along_axis(d, order, 1), np.take_along_axis(i, order, 1)
    return best_i, np.sqrt(np.maximum(best_d, 0))


def show(restored, prepared, files, sheet_path, batch_size=32, log=None):
    """Lines to print: per picture its neighbours' classes, indices and distances (or why it
    was skipped); and the PNG, one row per readable picture: it, then its six neighbours."""
    tensors = layer_inputs(restored.g)
    size = restored.config.input_size
    read = []       # (file, picture as shown, its vector; or None, None, why it was skipped)
    for f, pic, img, why in evaluate.read_pictures(files, prepared, '--neighbours'):
        x = None if why else pipeline.preprocess_for_eval(img, prepared.mean, size, 'center')
        read.append((f, pic, why or features(restored, tensors, x[None])[0]))
    queries = [v for _, pic, v in read if pic is not None]
    train, meta, reused = training_features(restored, prepared, tensors, batch_size, log)
    (log or _say)(f"{'reused' if reused else 'wrote'} {restored.path + SUFFIX}.npy: "
                  f"{meta['bytes_per_image']:,} bytes per training image ({meta['dim']} x "
                  f"{meta['dtype']}), {meta['n_images']} images")
    idx, dist = nearest(train, np.stack(queries))
    split, lines, rows, j = prepared.split('train'), [], [], 0
    for f, pic, v in read:
        if pic is None:
            lines.append(evaluate.skipped_line(f, v))
            continue
        lines.append(f'{f}: ' + ', '.join(
            f'#{i} {evaluate.class_name(prepared.synsets, split.labels[i])} {d:.4g}'
            for i, d in zip(idx[j], dist[j])))
        rows.append([pic] + list(split.take(idx[j])))
        j += 1
    figures.save_png(sheet_path, figures.neighbour_sheet(rows, min(128, prepared.mean.shape[0])))
    lines.append(f'neighbours sheet: {sheet_path}')
    return lines
