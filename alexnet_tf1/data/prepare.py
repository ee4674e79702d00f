"""python -m alexnet_tf1.data.prepare SRC OUT: raw images -> the prepared directory.

The format is in alexnet_tf1/data/__init__.py. The unit of work is one shard: --shard-size
consecutive files of the sorted listing, converted by one worker process, written under a
temporary name and renamed; its statistics file (shard-XXXXX.json), renamed last, marks it
done. A killed run therefore resumes without redoing finished shards; and since the
file -> shard assignment is fixed and every statistic is an exact integer sum, it ends with
the same bytes as a run that was never interrupted.
"""
import hashlib
import io
import json
import multiprocessing
import os
import signal
import sys
import warnings
import zipfile

import numpy as np

from alexnet_tf1.data.decode import DESCRIPTION, BadImage, array_to_size, load_image
from alexnet_tf1.data.layouts import LAYOUTS, SPLITS, list_layout
from alexnet_tf1.data.reader import FORMAT, DataError
from alexnet_tf1.io_util import atomic_write
from alexnet_tf1.progress import Counter
from alexnet_tf1.errors import OneLineParser, at_least

SHARD_SIZE = 1024


def default_workers():
    try:
        return len(os.sched_getaffinity(0))      # the CPUs this process may use, not the host's
    except AttributeError:
        return os.cpu_count() or 1


def prepare(src, out, layout=None, workers=None, shard_size=None, size=None,
            progress=True, dataset=None):
    """Prepare src into out; returns the manifest dict.

    Options left None take the value of the preparation already in out, if any, else the
    defaults: detected layout, shard_size 1024, size 256 (MNIST 32), the layout's dataset name.
    """
    if (shard_size is not None and shard_size < 1) or (size is not None and size < 1):
        raise DataError('--shard-size and --size must be positive')
    asked = {'source': os.path.abspath(src), 'layout': layout, 'image_size': size,
             'shard_size': shard_size, 'dataset': dataset}
    before = _read_manifest(out)
    if before:
        differ = [f'{k} {before.get(k)} (asked: {v})' for k, v in asked.items()
                  if v is not None and v != before.get(k)]
        if differ:
            state = 'a finished' if before.get('complete') is True else 'an unfinished'
            raise DataError(f'{out} holds {state} preparation with {", ".join(differ)}; '
                            f'use another OUT or delete it')
        if before.get('complete') is True:
            _say(progress, f'{out} is already prepared ({_counts(before)}); nothing to do')
            return before
        layout, size, shard_size, dataset = (before.get(k) for k in (
            'layout', 'image_size', 'shard_size', 'dataset'))
    elif os.path.isdir(out) and os.listdir(out):
        raise DataError(f'{out} is not empty and holds no preparation; choose a new directory')
    shard_size = shard_size or SHARD_SIZE
    if not os.path.exists(src):
        raise DataError(f'{src} does not exist')
    listing = list_layout(src, layout)      # a bad source fails here: one line, no progress
    _say(progress, f'{listing.layout} layout: {len(listing.splits["train"])} train and '
                   f'{len(listing.splits["val"])} val files, {len(listing.classes)} classes')
    size = size or listing.image_size
    plan = _plan(listing, size, shard_size, dataset)
    _claim(out, plan, before)

    jobs, results = [], {}
    for split in SPLITS:
        os.makedirs(os.path.join(out, split), exist_ok=True)
        items = listing.splits[split]
        for k, start in enumerate(range(0, len(items), shard_size)):
            chunk = items[start:start + shard_size]
            done = _load_finished(out, split, k, len(chunk))
            if done is not None:
                results[split, k] = done
            else:
                jobs.append((split, k, chunk))

    total = sum(len(v) for v in listing.splits.values())
    bar = Counter(total, total - sum(len(c) for _, _, c in jobs)) if progress else None
    if progress and not jobs:
        _say(True, 'every shard is already converted; combining')
    for stats in _run(out, listing, jobs, size, workers or default_workers()):
        results[stats['split'], stats['index']] = stats
        if bar:
            bar.update(stats['files'])
    if bar:
        bar.finish()
    manifest = _finish(out, listing, plan, results)
    _say(progress, f'prepared {out}: {_counts(manifest)}, {len(manifest["skipped"])} files '
                   f'skipped (listed in manifest.json)')
    return manifest


# --- the plan and the manifest ----------------------------------------------------------

def _plan(listing, size, shard_size, dataset):
    digest = hashlib.sha256()
    for split in SPLITS:
        for ref, wnid in listing.splits[split]:
            digest.update(f'{split}\t{ref}\t{wnid}\n'.encode())
    return {'format': FORMAT, 'dataset': dataset or listing.dataset, 'layout': listing.layout,
            'source': listing.root, 'image_size': size, 'channels': listing.channels,
            'num_classes': len(listing.classes), 'shard_size': shard_size,
            'preprocessing': _preprocessing(listing.layout, size),
            'files_sha256': digest.hexdigest()}


def _preprocessing(layout, size):
    if layout == 'cifar10':
        return f'32x32 images, bilinear to {size}x{size}'
    if layout == 'mnist':
        return '28x28 digits padded with 2 zeros a side' + (
            f', bilinear to {size}x{size}' if size != 32 else '')
    return DESCRIPTION.format(size=size)


def _read_manifest(out):
    try:
        with open(os.path.join(out, 'manifest.json')) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise DataError(f'{out}/manifest.json is unreadable ({e}); delete {out} and '
                        f'prepare again') from None


def _claim(out, plan, before):
    """Start, or resume an unfinished run of the same plan."""
    if before is None:
        os.makedirs(out, exist_ok=True)
        _write_json(os.path.join(out, 'manifest.json'), dict(plan, complete=False))
        return
    if any(before.get(k) != v for k, v in plan.items()):
        raise DataError(f'{out} holds an unfinished preparation of other files (the source '
                        f'changed since); delete {out} and prepare again')
    for split in SPLITS:              # temporary files of a killed run
        d = os.path.join(out, split)
        for name in os.listdir(d) if os.path.isdir(d) else ():
            if name.startswith('.') or '.tmp' in name:     # io_util.atomic_write's temp files
                os.remove(os.path.join(d, name))


def _counts(m):
    s = m['splits']
    return (f"{s['train']['count']} train and {s['val']['count']} val images, "
            f"{m['num_classes']} classes")


def _finish(out, listing, plan, results):
    splits, skipped, per_split = {}, list(listing.skipped), {}
    for split in SPLITS:
        stats = per_split[split] = [results[k] for k in sorted(results) if k[0] == split]
        splits[split] = {'count': sum(s['count'] for s in stats),
                         'files': sum(s['files'] for s in stats),
                         'shards': [_name(split, 'images', s['index']) for s in stats
                                    if s['count']]}
        skipped += [x for s in stats for x in s['skipped']]
    if not splits['train']['count']:
        example = skipped[0] if skipped else {'path': listing.root, 'reason': 'empty'}
        raise DataError(f'{listing.root}: no readable training image among '
                        f'{splits["train"]["files"]} files (e.g. {example["path"]}: '
                        f'{example["reason"]})')
    _write_stats(out, plan, per_split['train'], splits['train']['count'])
    _write_text(os.path.join(out, 'synsets.txt'),
                ''.join(f'{w}\t{listing.names.get(w, "")}\n' for w in listing.classes))
    manifest = dict(plan, splits=splits, converted=sum(v['count'] for v in splits.values()),
                    skipped=sorted(skipped, key=lambda s: s['path']), complete=True)
    _write_json(os.path.join(out, 'manifest.json'), manifest)
    return manifest


def _write_stats(out, plan, train, n_images):
    size, channels = plan['image_size'], plan['channels']
    pixel_sum = np.zeros((size, size, channels), np.uint64)
    outer = np.zeros((channels, channels), dtype=object)       # Python ints: exact, unbounded
    for s in train:
        if s['count']:
            pixel_sum += np.load(os.path.join(out, _name('train', 'sum', s['index'])))
            outer += np.array(s['outer'], dtype=object)
    _save(os.path.join(out, 'mean.npy'), (pixel_sum / n_images).astype(np.float32))
    pca = os.path.join(out, 'pca.npz')
    if channels != 3:
        if os.path.exists(pca):
            os.remove(pca)
        return
    pixels = n_images * size * size
    mu = pixel_sum.sum(axis=(0, 1)).astype(np.float64) / pixels / 255.0
    second = np.array(outer / pixels, dtype=np.float64) / 255.0 ** 2
    eigval, eigvec = np.linalg.eigh(second - np.outer(mu, mu))
    eigval, eigvec = eigval[::-1], eigvec[:, ::-1]
    # eigenvectors are defined up to sign: make each one's largest entry positive
    eigvec = eigvec * np.sign(eigvec[np.argmax(np.abs(eigvec), axis=0), range(3)])
    _save_npz(pca, eigval=eigval.astype(np.float32), eigvec=eigvec.astype(np.float32))


# --- shards -----------------------------------------------------------------------------

def _name(split, kind, k):
    ext = 'json' if kind == 'shard' else 'npy'
    return f'{split}/{kind}-{k:05d}.{ext}'


def _load_finished(out, split, k, n_files):
    try:
        with open(os.path.join(out, _name(split, 'shard', k))) as f:
            stats = json.load(f)
    except (OSError, ValueError):
        return None
    needed = ['images', 'labels'] + (['sum'] if split == 'train' else [])
    if stats.get('files') != n_files:
        return None
    if stats.get('count'):
        try:        # the arrays' headers must hold what the statistics say, not just exist
            n = [len(np.load(os.path.join(out, _name(split, kind, k)), mmap_mode='r'))
                 for kind in needed[:2]]
            np.load(os.path.join(out, _name(split, 'sum', k)), mmap_mode='r') \
                if split == 'train' else None
        except (OSError, ValueError, EOFError):
            return None
        if n != [stats['count']] * 2:
            return None
    return stats


def _run(out, listing, jobs, size, workers):
    """Convert jobs, yielding each shard's statistics as it finishes."""
    label = {w: i for i, w in enumerate(listing.classes)}
    tasks = ((out, split, k, [(ref, label[w], listing.locate(ref)) for ref, w in chunk], size)
             for split, k, chunk in jobs)
    workers = max(1, min(workers, len(jobs)))
    if workers == 1:
        with warnings.catch_warnings():
            _ignore_pil_warnings()
            yield from map(convert_shard, tasks)
        return
    # forkserver, not fork: the caller may be a training process holding TensorFlow's threads
    ctx = multiprocessing.get_context('forkserver')
    ctx.set_forkserver_preload(['alexnet_tf1.data.decode'])   # numpy, Pillow, imageio
    with ctx.Pool(workers, initializer=_worker_init) as pool:
        yield from pool.imap_unordered(convert_shard, tasks)


def _ignore_pil_warnings():
    # Pillow warns about odd EXIF and large images; the manifest is where problems go
    warnings.filterwarnings('ignore', module='PIL')


def _worker_init():
    _ignore_pil_warnings()
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's; it ends the pool


def _load(loc, size, handles):
    if isinstance(loc, np.ndarray):
        return array_to_size(loc, size)
    if isinstance(loc, tuple):                 # a member of an uncompressed tar
        path, offset, length = loc
        if path not in handles:
            handles[path] = open(path, 'rb')
        f = handles[path]
        f.seek(offset)
        return load_image(f.read(length), size)
    return load_image(loc, size)


def convert_shard(task):
    """Decode one shard's files and write it; returns its statistics (also saved as JSON)."""
    out, split, k, items, size = task
    images, labels, skipped, handles = None, [], [], {}
    n, outer = 0, None
    try:
        for ref, label, loc in items:
            try:
                img = _load(loc, size, handles)
            except BadImage as e:
                skipped.append({'path': ref, 'reason': str(e)})
                continue
            except OSError as e:
                skipped.append({'path': ref, 'reason': f'unreadable: {e.strerror or e}'})
                continue
            if images is None:
                images = np.empty((len(items),) + img.shape, np.uint8)
                outer = np.zeros((img.shape[2],) * 2, np.int64)
            images[n] = img
            labels.append(label)
            if split == 'train':
                outer += _outer(img)
            n += 1
    finally:
        for f in handles.values():
            f.close()
    stats = {'split': split, 'index': k, 'files': len(items), 'count': n, 'skipped': skipped}
    if n:
        _save(os.path.join(out, _name(split, 'images', k)), images[:n])
        _save(os.path.join(out, _name(split, 'labels', k)), np.array(labels, np.int32))
        if split == 'train':
            # a shard sums at most shard_size * 255 per pixel: uint32 is exact to 16.8M images
            _save(os.path.join(out, _name(split, 'sum', k)),
                  images[:n].sum(axis=0, dtype=np.uint32))
            stats['outer'] = outer.tolist()
    _write_json(os.path.join(out, _name(split, 'shard', k)), stats)
    return stats


def _outer(img):
    """Sum over pixels of x x^T, exact. 255 * 255 fits uint16; no BLAS call, whose threads
    (one pool per worker process) cost more than the arithmetic."""
    x = img.reshape(-1, img.shape[2]).T.astype(np.uint16, order='C')
    out = np.empty((len(x), len(x)), np.int64)
    for i in range(len(x)):
        for j in range(i, len(x)):
            out[i, j] = out[j, i] = np.multiply(x[i], x[j]).sum(dtype=np.uint64)
    return out


# --- writing atomically -----------------------------------------------------------------

def _save(path, array):
    atomic_write(path, lambda f: np.save(f, array))


def _save_npz(path, **arrays):
    """np.savez with fixed zip timestamps, so the bytes depend on the arrays alone."""
    def write(f):
        with zipfile.ZipFile(f, 'w') as z:
            for name, a in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asarray(a))
                z.writestr(zipfile.ZipInfo(f'{name}.npy', date_time=(1980, 1, 1, 0, 0, 0)),
                           buf.getvalue())
    atomic_write(path, write)


def _write_text(path, text):
    atomic_write(path, lambda f: f.write(text.encode()))


def _write_json(path, obj):
    _write_text(path, json.dumps(obj, indent=1) + '\n')


def _say(enabled, msg):
    if enabled:
        print(msg, file=sys.stderr, flush=True)


def main(argv=None):
    p = OneLineParser(prog='python -m alexnet_tf1.data.prepare',
                                description='Convert a raw image set to 256-pixel uint8 shards '
                                            '(resumable: run the same command again after '
                                            'an interruption).')
    p.add_argument('src', help='ImageNet (official, Kaggle or train/<class>/ folders), the '
                               'CIFAR-10 python batches, or the MNIST IDX files')
    p.add_argument('out', help='the prepared directory to write')
    p.add_argument('--layout', choices=LAYOUTS, help='override layout detection')
    p.add_argument('--workers', type=at_least(1), default=None,
                   help=f'processes (default: the CPUs available, {default_workers()})')
    p.add_argument('--shard-size', type=at_least(1), default=None,
                   help=f'images per shard (default {SHARD_SIZE})')
    p.add_argument('--size', type=at_least(1), default=None,
                   help='output side: shorter side rescaled to it, central crop (default 256; '
                        'MNIST 32)')
    args = p.parse_args(argv)
    try:
        prepare(args.src, args.out, args.layout, args.workers, args.shard_size, args.size)
    except DataError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except OSError as e:          # a full disk, a permission: the user's to fix
        print(f'error: {e}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('\ninterrupted: run the same command again to resume', file=sys.stderr)
        return 130
    return 0


if __name__ == '__main__':
    # run the module under its package name, so workers unpickle convert_shard from there
    from alexnet_tf1.data import prepare as _module
    sys.exit(_module.main())
