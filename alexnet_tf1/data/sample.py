"""The built-in sample set: ten classes of shapes and textures, generated, never downloaded.

python -m alexnet_tf1.data.sample OUT writes a raw `folders`-layout JPEG set (OUT/train/<wnid>/,
OUT/val/<wnid>/, OUT/synset_words.txt), the same bytes on every run. Classes differ by shape
and texture only: each image's two colours are drawn independently of its class, so its
mean colour says nothing about the class. Sizes and aspect ratios vary like ImageNet's, and
train holds the odd files real data has (see ODD_FILES); three of them cannot be decoded.
`ensure_sample(root)` generates and prepares it on first use.
"""
import argparse
import io
import json
import os
import shutil
import sys

import numpy as np
from PIL import Image

from alexnet_tf1.data.reader import DataError

TRAIN_PER_CLASS = 64
VAL_PER_CLASS = 20
SEED = 2012
QUALITY = 90
SIDES = (160, 420)
ASPECT = (0.6, 1.7)
NOISE = 8.0            # std of the added pixel noise, 0..255 scale
MIN_CONTRAST = 60      # least luminance gap between an image's two colours

CLASSES = [  # (wnid, name); wnid-like ids outside WordNet's range
    ('n00000000', 'horizontal stripes'), ('n00000001', 'vertical stripes'),
    ('n00000002', 'diagonal stripes'), ('n00000003', 'checkerboard'),
    ('n00000004', 'concentric rings'), ('n00000005', 'dot grid'),
    ('n00000006', 'big disc'), ('n00000007', 'cross'),
    ('n00000008', 'triangle'), ('n00000009', 'blotches'),
]

# extra training files, each (class index, file name, kind): the odd files real ImageNet has
ODD_FILES = [
    (0, 'n00000000_png.JPEG', 'png'),          # a PNG named .JPEG (n02105855_2933.JPEG)
    (1, 'n00000001_cmyk.JPEG', 'cmyk'),
    (2, 'n00000002_grey.JPEG', 'grey'),
    (3, 'n00000003_rgba.png', 'rgba'),
    (4, 'n00000004_16bit.png', '16bit'),
    (5, 'n00000005_truncated.JPEG', 'truncated'),
    (6, 'n00000006_empty.JPEG', 'empty'),
    (7, 'n00000007_text.JPEG', 'text'),
]
UNREADABLE = ('truncated', 'empty', 'text')


# --- patterns: (u, v) pixel coordinates about a jittered centre -> foreground mask ------

def _rotate(u, v, degrees):
    a = np.deg2rad(degrees)
    return u * np.cos(a) + v * np.sin(a), -u * np.sin(a) + v * np.cos(a)


def _stripes(angle):
    def mask(u, v, side, rng):
        p, _ = _rotate(u, v, angle + rng.uniform(-8, 8))
        return np.sin(2 * np.pi * p / rng.uniform(14, 40) + rng.uniform(0, 2 * np.pi)) > 0
    return mask


def _diagonal(u, v, side, rng):
    return _stripes(rng.choice([45, 135]))(u, v, side, rng)


def _checkerboard(u, v, side, rng):
    p, q = _rotate(u, v, rng.uniform(-10, 10))
    cell = rng.uniform(14, 40)
    phase = rng.uniform(0, cell, 2)
    return (np.floor((p + phase[0]) / cell) + np.floor((q + phase[1]) / cell)) % 2 == 0


def _rings(u, v, side, rng):
    r = np.hypot(u, v)
    return np.sin(2 * np.pi * r / rng.uniform(14, 36) + rng.uniform(0, 2 * np.pi)) > 0


def _dots(u, v, side, rng):
    p, q = _rotate(u, v, rng.uniform(-10, 10))
    step = rng.uniform(22, 44)
    dp, dq = rng.uniform(0, step), rng.uniform(0, step)
    p, q = (p + dp) % step - step / 2, (q + dq) % step - step / 2
    return np.hypot(p, q) < step * rng.uniform(0.2, 0.35)


def _disc(u, v, side, rng):
    return np.hypot(u, v) < side * rng.uniform(0.22, 0.4)


def _cross(u, v, side, rng):
    p, q = _rotate(u, v, rng.uniform(-12, 12))
    arm, half = side * rng.uniform(0.3, 0.45), side * rng.uniform(0.05, 0.09)
    return ((np.abs(p) < half) & (np.abs(q) < arm)) | ((np.abs(q) < half) & (np.abs(p) < arm))


def _triangle(u, v, side, rng):
    r = side * rng.uniform(0.3, 0.45)
    angles = np.deg2rad(rng.uniform(0, 360) + np.array([0, 120, 240]) + rng.uniform(-10, 10, 3))
    pts = np.stack([r * np.cos(angles), r * np.sin(angles)], 1)
    inside = np.ones(u.shape, bool)
    for i in range(3):              # on the inner side of each edge
        (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % 3]
        ox, oy = pts[(i + 2) % 3]
        edge = lambda x, y: (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)
        inside &= np.sign(edge(u, v)) == np.sign(edge(ox, oy))
    return inside


def _blotches(u, v, side, rng):
    h, w = u.shape
    cells = int(rng.integers(3, 7))
    field = Image.fromarray(rng.normal(size=(cells, cells)).astype(np.float32), 'F')
    field = np.asarray(field.resize((w, h), Image.BICUBIC))
    return field > np.median(field)


PATTERNS = [_stripes(90), _stripes(0), _diagonal, _checkerboard, _rings, _dots, _disc,
            _cross, _triangle, _blotches]


def _colours(rng):
    luma = np.array([0.299, 0.587, 0.114])
    while True:
        fg, bg = rng.integers(0, 256, (2, 3))
        if abs(luma @ (fg - bg)) >= MIN_CONTRAST:
            return fg, bg


def _size(rng):
    while True:
        w = rng.uniform(*SIDES)
        h = w / rng.uniform(*ASPECT)
        if SIDES[0] <= h <= SIDES[1]:
            return int(w), int(h)


_NOISE = []


def _noise():
    if not _NOISE:
        n = 2 * SIDES[1]
        noise = _rng(99).standard_normal((n, n, 3), dtype=np.float32) * NOISE
        _NOISE.append(np.rint(noise).astype(np.int16))
    return _NOISE[0]


def make_image(cls, rng):
    """One uint8 (h, w, 3) image of class cls."""
    w, h = _size(rng)
    side = min(w, h)
    # the centre stays inside the middle of the image: the central crop keeps the shape
    cx, cy = w / 2 + rng.uniform(-0.1, 0.1) * side, h / 2 + rng.uniform(-0.1, 0.1) * side
    u = np.arange(w, dtype=np.float32)[None, :] + (0.5 - cx)
    v = np.arange(h, dtype=np.float32)[:, None] + (0.5 - cy)
    u, v = np.broadcast_arrays(u, v)
    mask = PATTERNS[cls](u, v, side, rng)
    fg, bg = _colours(rng)
    # noise: a window of one fixed noise field (drawing fresh normals took most of the time)
    y0, x0 = rng.integers(0, _noise().shape[0] - SIDES[1], 2)
    img = np.array([bg, fg], np.int16)[mask.view(np.uint8)] + _noise()[y0:y0 + h, x0:x0 + w]
    return np.clip(img, 0, 255, out=img).astype(np.uint8)


def _jpeg(img):
    buf = io.BytesIO()
    img.save(buf, 'JPEG', quality=QUALITY)
    return buf.getvalue()


def _odd_bytes(kind, img):
    pil = Image.fromarray(img)
    if kind in ('png', 'rgba', '16bit'):
        if kind == 'rgba':
            alpha = np.linspace(64, 255, img.shape[1]).astype(np.uint8)
            pil = Image.fromarray(np.dstack([img, np.broadcast_to(alpha, img.shape[:2])]))
        elif kind == '16bit':
            grey = np.asarray(pil.convert('L')).astype(np.uint16) * 257
            pil = Image.fromarray(grey)             # mode I;16
        buf = io.BytesIO()
        pil.save(buf, 'PNG')
        return buf.getvalue()
    if kind == 'cmyk':
        return _jpeg(pil.convert('CMYK'))
    if kind == 'grey':
        return _jpeg(pil.convert('L'))
    if kind == 'truncated':
        data = _jpeg(pil)
        return data[:len(data) * 2 // 3]
    if kind == 'empty':
        return b''
    return b'This is not an image: a text file named like a JPEG.\n'


def _rng(*key):
    return np.random.default_rng([SEED, *key])


def generate(out, train_per_class=None, val_per_class=None):
    """Write the raw sample set to out (which must not exist); returns out."""
    train_per_class = TRAIN_PER_CLASS if train_per_class is None else train_per_class
    val_per_class = VAL_PER_CLASS if val_per_class is None else val_per_class
    if os.path.exists(out):
        raise DataError(f'{out} already exists; the sample set is written to a new directory')
    tmp = out.rstrip(os.sep) + '.partial'
    shutil.rmtree(tmp, ignore_errors=True)        # a generation that was interrupted
    for s, (split, n) in enumerate((('train', train_per_class), ('val', val_per_class))):
        for c, (wnid, _) in enumerate(CLASSES):
            d = os.path.join(tmp, split, wnid)
            os.makedirs(d)
            for i in range(n):
                # one stream per image: changing a count leaves the other images as they were
                img = make_image(c, _rng(s, c, i))
                with open(os.path.join(d, f'{wnid}_{i:04d}.JPEG'), 'wb') as f:
                    f.write(_jpeg(Image.fromarray(img)))
    for j, (c, name, kind) in enumerate(ODD_FILES):
        img = make_image(c, _rng(2, c, j))
        with open(os.path.join(tmp, 'train', CLASSES[c][0], name), 'wb') as f:
            f.write(_odd_bytes(kind, img))
    with open(os.path.join(tmp, 'synset_words.txt'), 'w') as f:
        f.writelines(f'{w} {name}\n' for w, name in CLASSES)
    os.rename(tmp, out)            # whole or not at all: an existing out is a finished one
    return out


def ensure_sample(root='data', size=256):
    """root/sample, the prepared sample set; generated and prepared on first use. Another
    stored `size` (342 for the 299 px Inception nets) is root/sample-<size>, prepared from
    the same raw files."""
    from alexnet_tf1.data.prepare import prepare
    sample = os.path.join(root, 'sample' if size == 256 else f'sample-{size}')
    try:
        with open(os.path.join(sample, 'manifest.json')) as f:
            if json.load(f).get('complete') is True:
                return sample
    except (OSError, ValueError):
        pass
    raw = os.path.join(root, 'sample_raw')
    if not os.path.isdir(raw):
        print(f'generating the sample set in {raw}', file=sys.stderr, flush=True)
        generate(raw)
    prepare(raw, sample, layout='folders', progress=True, dataset='sample', size=size)
    return sample


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m alexnet_tf1.data.sample',
                                description='Write the built-in sample set (raw JPEGs, '
                                            'folders layout); prepare it with '
                                            'python -m alexnet_tf1.data.prepare OUT PREPARED.')
    p.add_argument('out')
    p.add_argument('--train-per-class', type=int, default=TRAIN_PER_CLASS)
    p.add_argument('--val-per-class', type=int, default=VAL_PER_CLASS)
    args = p.parse_args(argv)
    try:
        generate(args.out, args.train_per_class, args.val_per_class)
    except (DataError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    n = len(CLASSES) * (args.train_per_class + args.val_per_class) + len(ODD_FILES)
    print(f'wrote {n} files in {len(CLASSES)} classes to {args.out}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
