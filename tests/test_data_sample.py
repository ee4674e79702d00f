"""The built-in sample set: deterministic, shape not colour, odd files, ensure_sample."""
import os

import numpy as np

from alexnet_tf1.data import sample
from alexnet_tf1.data.prepare import prepare
from alexnet_tf1.data.reader import open_prepared


def _tree_bytes(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, 'rb') as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


def test_two_generations_write_the_same_bytes(tmp_path):
    a = sample.generate(str(tmp_path / 'a'), train_per_class=2, val_per_class=1)
    b = sample.generate(str(tmp_path / 'b'), train_per_class=2, val_per_class=1)
    files = _tree_bytes(a)
    assert files == _tree_bytes(b)
    assert len(files) == 10 * 3 + len(sample.ODD_FILES) + 1      # + synset_words.txt
    assert len({files[f] for f in files if f.endswith('_0000.JPEG')}) == 20


def test_images_vary_in_size_and_aspect():
    shapes = [sample.make_image(c, sample._rng(0, c, i)).shape
              for c in range(10) for i in range(4)]
    h, w = np.array([s[0] for s in shapes]), np.array([s[1] for s in shapes])
    assert min(h.min(), w.min()) >= sample.SIDES[0] and max(h.max(), w.max()) <= sample.SIDES[1]
    assert (w / h).min() < 0.9 and (w / h).max() > 1.2
    assert len(set(shapes)) == len(shapes)


def _mean_colours(split, per_class):
    s = 0 if split == 'train' else 1
    return np.array([[sample.make_image(c, sample._rng(s, c, i)).mean(axis=(0, 1))
                      for i in range(per_class)] for c in range(len(sample.CLASSES))])


def test_mean_colour_says_nothing_about_the_class():
    # the same images the default sample set holds (before JPEG encoding)
    train = _mean_colours('train', sample.TRAIN_PER_CLASS)
    val = _mean_colours('val', sample.VAL_PER_CLASS)
    centroids = train.mean(axis=1)                                     # (classes, 3)
    dist = ((val[:, :, None, :] - centroids[None, None]) ** 2).sum(-1)
    accuracy = (dist.argmin(-1) == np.arange(len(centroids))[:, None]).mean()
    assert accuracy < 0.25                 # chance is 0.10


def test_the_patterns_separate_where_colour_does_not():
    # a texture feature, horizontal vs vertical gradient energy, tells the stripes apart
    def ratio(c, i):
        g = sample.make_image(c, sample._rng(0, c, i)).astype(float).mean(-1)
        h, w = g.shape[0] // 4 * 4, g.shape[1] // 4 * 4
        g = g[:h, :w].reshape(h // 4, 4, w // 4, 4).mean(axis=(1, 3))     # averages out noise
        return np.abs(np.diff(g, axis=0)).mean() / np.abs(np.diff(g, axis=1)).mean()
    horizontal = [ratio(0, i) for i in range(8)]
    vertical = [ratio(1, i) for i in range(8)]
    assert min(horizontal) > 2 > 0.5 > max(vertical)


def test_prepare_skips_exactly_the_three_broken_files(tmp_path):
    raw = sample.generate(str(tmp_path / 'raw'), train_per_class=1, val_per_class=1)
    m = prepare(raw, str(tmp_path / 'out'), workers=1, size=32, progress=False)
    broken = {os.path.join('train', sample.CLASSES[c][0], name)
              for c, name, kind in sample.ODD_FILES if kind in sample.UNREADABLE}
    assert {s['path'] for s in m['skipped']} == broken
    assert m['converted'] == 10 * 2 + len(sample.ODD_FILES) - len(broken)
    assert m['splits']['train']['count'] == 10 + 5


def test_ensure_sample_generates_prepares_once(tmp_path, monkeypatch):
    monkeypatch.setattr(sample, 'TRAIN_PER_CLASS', 2)
    monkeypatch.setattr(sample, 'VAL_PER_CLASS', 1)
    root = str(tmp_path / 'data')
    path = sample.ensure_sample(root)
    assert path == os.path.join(root, 'sample')
    p = open_prepared(path)
    assert p.dataset == 'sample' and p.num_classes == 10
    assert p.synsets[0] == ('n00000000', 'horizontal stripes')
    assert p.split('train').take([0]).shape == (1, 256, 256, 3)
    stamp = os.stat(os.path.join(path, 'manifest.json')).st_mtime_ns
    assert sample.ensure_sample(root) == path
    assert os.stat(os.path.join(path, 'manifest.json')).st_mtime_ns == stamp
