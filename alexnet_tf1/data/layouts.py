"""The layouts raw data comes in (docs/reference.md 6) -> one Listing: sorted (ref, wnid) lists.

official  ILSVRC2012 as distributed: train/<wnid>/ or train/<wnid>.tar, flat val/, devkit
kaggle    ILSVRC/Data/CLS-LOC/{train/<wnid>/, val/}, LOC_synset_mapping.txt, LOC_val_solution.csv
folders   train/<class>/, val/<class>/ (ImageFolder); names from synset_words.txt if present
cifar10   cifar-10-batches-py/ or its .tar.gz
mnist     the four IDX files, plain or .gz

A ref is a path relative to SRC (a tar member as 'train/n01440764.tar/<member>', an array
image as '<file>/<index>'); it names the file in the manifest. Labels index the sorted train
wnids (CIFAR-10 and MNIST keep their own order, which is already sorted).
"""
import csv
import io
import os
import re
import tarfile
from dataclasses import dataclass, field

import numpy as np

from alexnet_tf1.data import arraysets
from alexnet_tf1.data.reader import DataError

LAYOUTS = ('official', 'kaggle', 'folders', 'cifar10', 'mnist')
SPLITS = ('train', 'val')

_WNID = re.compile(r'^n\d{8}$')
_WNID_TAR = re.compile(r'^(n\d{8})\.tar$')
_VAL_FILE = re.compile(r'^ILSVRC2012_val_(\d{8})\.[A-Za-z]+$')
GROUND_TRUTH = 'ILSVRC2012_validation_ground_truth.txt'
DEVKIT_TARS = ('ILSVRC2012_devkit_t12.tar.gz', 'ILSVRC2012_devkit_t12.tar')
NAME_FILES = ('synset_words.txt', 'LOC_synset_mapping.txt')


@dataclass
class Listing:
    layout: str
    dataset: str                 # the manifest's 'dataset': imagenet | folders | cifar10 | mnist
    root: str
    splits: dict                 # 'train' / 'val' -> sorted [(ref, wnid)]
    classes: list                # wnids in label order
    names: dict = field(default_factory=dict)      # wnid -> human name
    skipped: list = field(default_factory=list)    # [{'path', 'reason'}] found while listing
    image_size: int = 256
    channels: int = 3
    where: dict = field(default_factory=dict)      # ref -> (tar, offset, size) or an array

    def locate(self, ref):
        """What a worker needs to read ref: a path, (tar path, offset, size), or an array."""
        loc = self.where.get(ref)
        return os.path.join(self.root, ref) if loc is None else loc


def detect(src):
    """The name of src's layout; DataError when it matches none."""
    if not os.path.exists(src):
        raise DataError(f'{src} does not exist')
    for name in LAYOUTS:
        if _DETECT[name](src):
            return name
    if os.path.isfile(os.path.join(src, 'ILSVRC2012_img_train.tar')):
        raise DataError(f'extract {src}/ILSVRC2012_img_train.tar into {src}/train (its 1000 '
                        f'per-synset tars are then read without extracting them), '
                        f'ILSVRC2012_img_val.tar into {src}/val, and the devkit into {src}')
    raise DataError(f'{src} matches no known layout ({", ".join(LAYOUTS)}): expected e.g. '
                    f'train/<class>/*.JPEG and val/<class>/*.JPEG')


def list_layout(src, layout=None):
    """The Listing of src in `layout` (detected when None)."""
    layout = layout or detect(src)
    if layout not in LAYOUTS:
        raise DataError(f'unknown layout {layout!r}; choose one of {", ".join(LAYOUTS)}')
    if not os.path.exists(src):
        raise DataError(f'{src} does not exist')
    if not _DETECT[layout](src):
        raise DataError(f'{src} is not in the {layout} layout')
    listing = _LIST[layout](src)
    if not listing.splits['train']:
        raise DataError(f'{src}: no training images found ({layout} layout)')
    return listing


# --- files ------------------------------------------------------------------------------

def _files_under(root, rel):
    """Sorted refs of every regular file below root/rel (recursively)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, rel), followlinks=True):
        dirnames.sort()
        base = os.path.relpath(dirpath, root)
        out.extend(os.path.join(base, f) for f in filenames
                   if os.path.isfile(os.path.join(dirpath, f)))
    return sorted(out)


def _subdirs(path):
    if not os.path.isdir(path):
        return []
    return sorted(e.name for e in os.scandir(path) if e.is_dir())


def _class_folders(root, rel):
    """[(ref, class)] for root/rel/<class>/..., one class per subfolder."""
    return [(ref, c) for c in _subdirs(os.path.join(root, rel))
            for ref in _files_under(root, os.path.join(rel, c))]


def _flat_files(root, rel):
    d = os.path.join(root, rel)
    return sorted(os.path.join(rel, e.name) for e in os.scandir(d) if e.is_file())


def _read_names(path):
    """{wnid: name} from 'wnid name words...' lines (synset_words.txt, LOC_synset_mapping.txt)."""
    names = {}
    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            parts = line.strip().split(None, 1)
            if parts:
                names[parts[0]] = parts[1] if len(parts) > 1 else ''
    return names


def _finish(layout, dataset, src, train, val, names, skipped=(), classes=None, **kw):
    """Sort, derive labels from the train wnids, drop val images of unknown classes."""
    train, val = sorted(train), sorted(val)
    classes = classes or sorted({w for _, w in train})
    known = set(classes)
    skipped = list(skipped)
    kept = []
    for ref, w in val:
        if w in known:
            kept.append((ref, w))
        else:
            skipped.append({'path': ref, 'reason': f'class {w} has no training images'})
    names = {w: names.get(w, '') for w in classes}
    return Listing(layout, dataset, os.path.abspath(src), {'train': train, 'val': kept},
                   classes, names, sorted(skipped, key=lambda s: s['path']), **kw)


# --- official ILSVRC2012 ----------------------------------------------------------------

def _official_dirs(src):
    train = next((d for d in ('train', 'ILSVRC2012_img_train') if os.path.isdir(
        os.path.join(src, d))), None)
    val = next((d for d in ('val', 'ILSVRC2012_img_val') if os.path.isdir(
        os.path.join(src, d))), None)
    return train, val


def _is_official(src):
    if not os.path.isdir(src):
        return False
    train, val = _official_dirs(src)
    if train and any(_WNID_TAR.match(e.name) for e in os.scandir(os.path.join(src, train))):
        return True
    return bool(val) and any(_VAL_FILE.match(e.name) and e.is_file()
                             for e in os.scandir(os.path.join(src, val)))


def _tar_members(src, ref_tar, wnid, where, skipped):
    path = os.path.join(src, ref_tar)
    try:
        with tarfile.open(path, 'r:') as t:
            out = []
            for m in t:
                if m.isfile():
                    ref = f'{ref_tar}/{m.name}'
                    where[ref] = (os.path.abspath(path), m.offset_data, m.size)
                    out.append((ref, wnid))
            return out
    except (tarfile.TarError, OSError) as e:
        skipped.append({'path': ref_tar, 'reason': f'unreadable tar: {e}'})
        return []


def _find_devkit(src):
    """(ground-truth text, meta.mat bytes) from an extracted devkit or its tar, under src."""
    gt = meta = None
    for dirpath, dirnames, filenames in os.walk(src):
        # skip the image folders: a devkit never sits among a million JPEGs
        dirnames[:] = sorted(d for d in dirnames if not _WNID.match(d) and d not in (
            'train', 'val', 'ILSVRC2012_img_train', 'ILSVRC2012_img_val'))
        if dirpath[len(src):].count(os.sep) > 4:
            dirnames[:] = []
        if GROUND_TRUTH in filenames and gt is None:
            gt = os.path.join(dirpath, GROUND_TRUTH)
            if 'meta.mat' in filenames:
                meta = os.path.join(dirpath, 'meta.mat')
        if 'meta.mat' in filenames and meta is None:
            meta = os.path.join(dirpath, 'meta.mat')
        for t in DEVKIT_TARS:
            if t in filenames and (gt is None or meta is None):
                return _devkit_from_tar(os.path.join(dirpath, t))
    if gt is None or meta is None:
        return None
    with open(gt) as f, open(meta, 'rb') as m:
        return f.read(), m.read()


def _devkit_from_tar(path):
    gt = meta = None
    with tarfile.open(path, 'r:*') as t:
        for m in t:
            if m.name.endswith('/' + GROUND_TRUTH):
                gt = t.extractfile(m).read().decode()
            elif m.name.endswith('/meta.mat'):
                meta = t.extractfile(m).read()
    return (gt, meta) if gt is not None and meta is not None else None


def _meta_synsets(meta_bytes):
    """{ILSVRC2012_ID: (wnid, words)} from the devkit's meta.mat (IDs in meta.mat's order)."""
    from scipy.io import loadmat
    try:
        syn = np.atleast_1d(loadmat(io.BytesIO(meta_bytes), squeeze_me=True)['synsets'])
        return {int(s['ILSVRC2012_ID']): (str(s['WNID']), str(s['words'])) for s in syn}
    except Exception as e:
        raise DataError(f'devkit meta.mat is unreadable ({e})') from None


def _list_official(src):
    train_dir, val_dir = _official_dirs(src)
    where, skipped, train = {}, [], []
    if train_dir:
        entries = sorted(os.scandir(os.path.join(src, train_dir)), key=lambda e: e.name)
        folders = {e.name for e in entries if e.is_dir() and _WNID.match(e.name)}
        for e in entries:
            rel = os.path.join(train_dir, e.name)
            tar = _WNID_TAR.match(e.name)
            if e.name in folders:
                train += [(r, e.name) for r in _files_under(src, rel)]
            elif tar and tar.group(1) not in folders:
                # a synset already extracted to its folder is read from there, not twice
                train += _tar_members(src, rel, tar.group(1), where, skipped)
    files = _flat_files(src, val_dir) if val_dir else []
    devkit = _find_devkit(src)
    if files and devkit is None:
        raise DataError(f'{src}: found the flat ILSVRC2012 val folder but no devkit '
                        f'({GROUND_TRUTH} and meta.mat); extract '
                        f'ILSVRC2012_devkit_t12.tar.gz into {src}')
    names = {}
    # valprep.sh users have val/<wnid>/ folders instead: labelled by their folder
    val = _class_folders(src, val_dir) if val_dir else []
    if devkit:
        gt_text, meta = devkit
        synsets = _meta_synsets(meta)
        ids = [int(x) for x in gt_text.split()]
        names = {w: words for w, words in synsets.values()}
        for ref in files:
            m = _VAL_FILE.match(os.path.basename(ref))
            n = int(m.group(1)) if m else 0
            if not 1 <= n <= len(ids):
                skipped.append({'path': ref, 'reason': 'no ground truth in the devkit'})
            elif ids[n - 1] not in synsets:
                skipped.append({'path': ref, 'reason': f'ground-truth ID {ids[n - 1]} '
                                f'is not in meta.mat'})
            else:
                val.append((ref, synsets[ids[n - 1]][0]))
    return _finish('official', 'imagenet', src, train, val, names, skipped, where=where)


# --- Kaggle's ImageNet copy -------------------------------------------------------------

KAGGLE_DATA = os.path.join('ILSVRC', 'Data', 'CLS-LOC')


def _is_kaggle(src):
    return os.path.isdir(os.path.join(src, KAGGLE_DATA, 'train'))


def _list_kaggle(src):
    train = _class_folders(src, os.path.join(KAGGLE_DATA, 'train'))
    mapping = os.path.join(src, 'LOC_synset_mapping.txt')
    names = _read_names(mapping) if os.path.isfile(mapping) else {}
    val_rel = os.path.join(KAGGLE_DATA, 'val')
    val, skipped = [], []
    if _subdirs(os.path.join(src, val_rel)):          # val already sorted into folders
        val = _class_folders(src, val_rel)
    elif os.path.isdir(os.path.join(src, val_rel)):
        solution = os.path.join(src, 'LOC_val_solution.csv')
        if not os.path.isfile(solution):
            raise DataError(f'{src}: no LOC_val_solution.csv for the flat val folder')
        with open(solution, newline='') as f:
            truth = {row['ImageId']: row['PredictionString'].split()[0]
                     for row in csv.DictReader(f) if row.get('PredictionString')}
        for ref in _flat_files(src, val_rel):
            stem = os.path.splitext(os.path.basename(ref))[0]
            if stem in truth:
                val.append((ref, truth[stem]))
            else:
                skipped.append({'path': ref, 'reason': 'not in LOC_val_solution.csv'})
    return _finish('kaggle', 'imagenet', src, train, val, names, skipped)


# --- ImageFolder style ------------------------------------------------------------------

def _is_folders(src):
    return bool(_subdirs(os.path.join(src, 'train')))


def _list_folders(src):
    train = _class_folders(src, 'train')
    val = _class_folders(src, 'val')
    names = {}
    for n in NAME_FILES:
        if os.path.isfile(os.path.join(src, n)):
            names = _read_names(os.path.join(src, n))
            break
    imagenet = all(_WNID.match(w) for _, w in train) and len({w for _, w in train}) == 1000
    return _finish('folders', 'imagenet' if imagenet else 'folders', src, train, val, names)


# --- arrays -----------------------------------------------------------------------------

def _is_cifar10(src):
    return arraysets.find_cifar10(src) is not None


def _list_cifar10(src):
    path, is_tar = arraysets.find_cifar10(src)
    blobs = arraysets.read_cifar10(path, is_tar)
    prefix = os.path.relpath(path, src) if path != src else os.path.basename(path)
    classes = arraysets.cifar_label_names(blobs['batches.meta'], f'{prefix}/batches.meta')
    where, splits = {}, {'train': [], 'val': []}
    for split, batches in (('train', arraysets.CIFAR_TRAIN), ('val', arraysets.CIFAR_VAL)):
        for b in batches:
            images, labels = arraysets.cifar_batch(blobs[b], f'{prefix}/{b}')
            for i, (img, y) in enumerate(zip(images, labels)):
                if not 0 <= y < len(classes):
                    raise DataError(f'{prefix}/{b}: label {y} outside 0..{len(classes) - 1}')
                ref = f'{prefix}/{b}/{i:05d}'
                where[ref] = img
                splits[split].append((ref, classes[y]))
    return _finish('cifar10', 'cifar10', src, splits['train'], splits['val'],
                   {c: c for c in classes}, classes=classes, where=where)


def _is_mnist(src):
    return os.path.isdir(src) and arraysets.find_mnist(src) is not None


def _list_mnist(src):
    files = arraysets.find_mnist(src)
    classes = [str(d) for d in range(10)]
    where, splits = {}, {}
    for split, part in (('train', 'train'), ('val', 't10k')):
        img_path, lab_path = files[part, 'images'], files[part, 'labels']
        images, labels = arraysets.mnist_split(img_path, lab_path)
        rel = os.path.relpath(img_path, src)
        splits[split] = []
        for i, (img, y) in enumerate(zip(images, labels)):
            if not 0 <= y <= 9:
                raise DataError(f'{lab_path}: label {y} is not a digit')
            where[f'{rel}/{i:05d}'] = img
            splits[split].append((f'{rel}/{i:05d}', classes[y]))
    return _finish('mnist', 'mnist', src, splits['train'], splits['val'],
                   {c: c for c in classes}, classes=classes, where=where,
                   image_size=32, channels=1)


_DETECT = {'official': _is_official, 'kaggle': _is_kaggle, 'folders': _is_folders,
           'cifar10': _is_cifar10, 'mnist': _is_mnist}
_LIST = {'official': _list_official, 'kaggle': _list_kaggle, 'folders': _list_folders,
         'cifar10': _list_cifar10, 'mnist': _list_mnist}
