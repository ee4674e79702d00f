"""alexnet_tf1.data.pipeline: crops, flips, PCA lighting, mean windows, shuffling, threads.

Images encode their own coordinates (tests/synthetic_prepared.py): pixel (y, x) of image i
is (y, x, i), so every output can be traced back to the window it came from.
"""
import dataclasses
import gc
import threading

import numpy as np
import pytest

from alexnet_tf1.data import pipeline
from alexnet_tf1.data.pipeline import (center_crop, epoch_order, epoch_plan, eval_batches,
                                       lighting_offset, preprocess_for_eval, ten_crops,
                                       train_batches)
from alexnet_tf1.data.reader import DataError, open_prepared
from synthetic_prepared import coord_images, coord_prepared, random_pca, write_prepared

SIZE, CROP = 64, 56          # offsets 0..8; 256 -> 227 is not the point here


@pytest.fixture(scope='module')
def coord(tmp_path_factory):
    return open_prepared(coord_prepared(str(tmp_path_factory.mktemp('coord')), n_train=128,
                                        n_val=10, size=SIZE, pca=True, shard_size=48))


def decode_window(o):
    """(y0, x0, flipped, image id) of a zero-mean, no-lighting crop of a coordinate image."""
    left, right = o[0, 0, 1], o[0, -1, 1]
    return int(o[0, 0, 0]), int(min(left, right)), bool(left > right), int(o[0, 0, 2])


def window(img, y, x, crop, flipped):
    w = img[y:y + crop, x:x + crop]
    return w[:, ::-1] if flipped else w


def our_threads():
    return [t for t in threading.enumerate() if t.name == pipeline.THREAD_NAME and t.is_alive()]


def run_with_deadline(fn, seconds=60):
    """Run fn in a thread; fail (instead of hanging the suite) if it does not return."""
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), 'did not return: the batch thread hangs'


# ---- test-time crops ---------------------------------------------------------------------

def test_ten_crops_positions_and_mirrors():
    img = coord_images(1, SIZE)[0]
    crops = ten_crops(img, CROP)
    assert crops.shape == (10, CROP, CROP, 3) and crops.dtype == np.uint8
    # top-left, top-right, bottom-left, bottom-right, centre; 64 - 56 = 8
    for k, (y, x) in enumerate([(0, 0), (0, 8), (8, 0), (8, 8), (4, 4)]):
        assert (crops[k, 0, 0, 0], crops[k, 0, 0, 1]) == (y, x)
        np.testing.assert_array_equal(crops[k], img[y:y + CROP, x:x + CROP])
        np.testing.assert_array_equal(crops[5 + k], crops[k][:, ::-1])
        # the mirrored crop's first column is the original's last one
        assert crops[5 + k, 0, 0, 1] == x + CROP - 1


def test_center_crop_uses_caffe_offset():
    img = coord_images(1, 256)[0]
    c = center_crop(img, 227)
    assert c.shape == (227, 227, 3)
    assert (c[0, 0, 0], c[0, 0, 1]) == (14, 14)          # floor((256 - 227) / 2)
    assert center_crop(img, None).shape == (256, 256, 3)


def test_preprocess_for_eval_subtracts_mean_at_the_window():
    img = coord_images(1, SIZE)[0]
    mean = np.random.default_rng(1).uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32)
    diff = img.astype(np.float32) - mean
    c = preprocess_for_eval(img, mean, CROP, 'center')
    assert c.dtype == np.float32
    np.testing.assert_allclose(c, diff[4:60, 4:60], atol=1e-4)
    ten = preprocess_for_eval(img, mean, CROP, 'ten')
    np.testing.assert_allclose(ten[1], diff[0:56, 8:64], atol=1e-4)
    np.testing.assert_allclose(ten[8], diff[8:64, 8:64][:, ::-1], atol=1e-4)
    with pytest.raises(ValueError):
        preprocess_for_eval(img, mean, CROP, 'five')
    with pytest.raises(DataError):
        preprocess_for_eval(img[:32], mean, CROP)


# ---- evaluation batches ------------------------------------------------------------------

def test_eval_file_order_and_partial_last_batch(coord):
    batches = list(eval_batches(coord, 4, crop=CROP))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    labels = np.concatenate([y for _, y in batches])
    np.testing.assert_array_equal(labels, np.arange(10))
    assert labels.dtype == np.int32
    x = np.concatenate([b for b, _ in batches])
    assert x.shape == (10, CROP, CROP, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0, 0, 2], np.arange(10))     # image id = label
    np.testing.assert_array_equal(x[:, 0, 0, :2], np.full((10, 2), 4))


def test_eval_ten_crops_subtract_mean_at_each_window(coord):
    mean = np.random.default_rng(2).uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32)
    p = dataclasses.replace(coord, mean=mean)
    x, y = next(iter(eval_batches(p, 3, crop=CROP, mode='ten', prefetch=0)))
    assert x.shape == (3, 10, CROP, CROP, 3)
    imgs = coord_images(3, SIZE)
    for i in range(3):
        diff = imgs[i].astype(np.float32) - mean
        for k, (yy, xx) in enumerate([(0, 0), (0, 8), (8, 0), (8, 8), (4, 4)]):
            np.testing.assert_allclose(x[i, k], diff[yy:yy + CROP, xx:xx + CROP], atol=1e-4)
            np.testing.assert_allclose(x[i, 5 + k], diff[yy:yy + CROP, xx:xx + CROP][:, ::-1],
                                       atol=1e-4)


# ---- training augmentation ---------------------------------------------------------------

def test_random_crops_stay_in_range_cover_it_and_flip_half_the_time(coord):
    imgs = coord_images(128, SIZE)
    seen_y, seen_x, flips = [], [], []
    for epoch in range(3):
        for x, labels in train_batches(coord, 32, crop=CROP, seed=5, epoch=epoch, lighting_std=0):
            assert x.shape == (32, CROP, CROP, 3) and x.dtype == np.float32
            for o, label in zip(x, labels):
                y0, x0, flipped, ident = decode_window(o)
                assert ident == label
                # the whole crop is exactly that window of that image, mirrored if flipped
                np.testing.assert_array_equal(o, window(imgs[label], y0, x0, CROP, flipped))
                seen_y.append(y0), seen_x.append(x0), flips.append(flipped)
    assert set(seen_y) == set(seen_x) == set(range(SIZE - CROP + 1))
    assert 0.4 < np.mean(flips) < 0.6          # 384 draws: 0.5 +- 0.1 is ~4 sigma


def test_flip_false_never_mirrors(coord):
    for x, _ in train_batches(coord, 64, crop=CROP, flip=False, lighting_std=0):
        assert not any(decode_window(o)[2] for o in x)


def test_mean_is_subtracted_at_the_same_window(coord):
    mean = np.random.default_rng(3).uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32)
    plain = list(train_batches(coord, 32, crop=CROP, seed=9, lighting_std=0))
    with_mean = list(train_batches(dataclasses.replace(coord, mean=mean), 32, crop=CROP,
                                   seed=9, lighting_std=0))
    for (a, _), (b, _) in zip(plain, with_mean):
        for oa, ob in zip(a, b):
            y0, x0, flipped, _ = decode_window(oa)
            np.testing.assert_allclose(ob, oa - window(mean, y0, x0, CROP, flipped), atol=1e-4)


def test_lighting_offset_formula():
    eigval, eigvec = random_pca(4)
    alpha = np.random.default_rng(4).normal(0, 0.1, (5, 3))
    expect = np.array([255 * sum(a[i] * eigval[i] * eigvec[:, i] for i in range(3)) for a in alpha])
    np.testing.assert_allclose(lighting_offset(eigval, eigvec, alpha), expect, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lighting_offset(eigval, eigvec, alpha[0]), expect[0], rtol=1e-5,
                               atol=1e-5)


@pytest.fixture(scope='module')
def flat_grey(tmp_path_factory):
    """1000 constant images equal to their mean: the output is the lighting offset alone."""
    n = 1000
    eigval, eigvec = random_pca(7)
    imgs = np.full((n, 8, 8, 3), 100, np.uint8)
    root = write_prepared(str(tmp_path_factory.mktemp('grey')), {'train': (imgs, np.zeros(n, np.int32))},
                          mean=np.full((8, 8, 3), 100.0), eigval=eigval, eigvec=eigvec,
                          shard_size=300)
    return open_prepared(root)


def offsets_of(p, **kw):
    x = np.concatenate([b for b, _ in train_batches(p, 100, crop=6, **kw)])
    off = x[:, 0, 0, :]
    np.testing.assert_allclose(x, np.broadcast_to(off[:, None, None, :], x.shape), atol=1e-4)
    return off


def test_lighting_noise_statistics(flat_grey):
    p = flat_grey
    off = offsets_of(p, seed=11)
    # eigvec is orthonormal: eigvec.T @ (255 eigvec (alpha * eigval)) = 255 alpha * eigval
    alpha = off @ p.eigvec / (255 * p.eigval)
    assert np.all(np.abs(alpha.mean(0)) < 0.015)                   # sd of the mean ~0.003
    np.testing.assert_allclose(alpha.std(0), 0.1, rtol=0.1)        # sd of the sd ~0.0022
    corr = np.corrcoef(alpha.T)
    assert np.all(np.abs(corr[~np.eye(3, dtype=bool)]) < 0.15)    # drawn independently
    assert np.abs(alpha).max() > 0.25                              # a Gaussian tail, not uniform
    # lighting_std scales the same draws
    np.testing.assert_allclose(offsets_of(p, seed=11, lighting_std=0.3), 3 * off, rtol=1e-4,
                               atol=1e-3)


def test_lighting_is_the_planned_draw_and_changes_each_presentation(flat_grey):
    p = flat_grey
    off0, off1 = offsets_of(p, seed=2, epoch=0), offsets_of(p, seed=2, epoch=1)
    alphas = epoch_plan(1000, seed=2, epoch=0, max_y=2, max_x=2)[4]
    expect = np.array([255 * sum(0.1 * a[i] * p.eigval[i] * p.eigvec[:, i] for i in range(3))
                       for a in alphas])
    np.testing.assert_allclose(off0, expect, rtol=1e-4, atol=1e-3)
    assert not np.allclose(off0, off1)
    assert np.all(offsets_of(p, seed=2, lighting_std=0) == 0)


def test_full_image_one_channel_without_pca(tmp_path):
    imgs = coord_images(6, 32, channels=1)
    mean = np.full((32, 32, 1), 3.0, np.float32)
    p = open_prepared(write_prepared(str(tmp_path), {'train': (imgs, np.arange(6))}, mean=mean,
                                     dataset='mnist'))
    assert p.eigval is None
    (x, y), = list(train_batches(p, 4, crop=None, seed=1))     # 6 = 4 + 2 dropped
    assert x.shape == (4, 32, 32, 1) and len(set(y)) == 4
    for o in x:
        ok = [np.array_equal(o, imgs[0] - mean), np.array_equal(o, imgs[0][:, ::-1] - mean)]
        assert any(ok)                          # no crop, no lighting: only a possible mirror


def test_partial_batch_dropped_unless_it_is_the_only_one(coord):
    batches = list(train_batches(coord, 48, crop=CROP, seed=3))
    assert [len(y) for _, y in batches] == [48, 48]        # 128 = 2 * 48 + 32 dropped
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]),
                                  epoch_order(128, 3, 0)[:96])
    (x, y), = list(train_batches(coord, 500, crop=CROP, seed=3))
    assert x.shape[0] == 128
    np.testing.assert_array_equal(np.sort(y), np.arange(128))


# ---- order, determinism, threads ---------------------------------------------------------

def test_each_epoch_is_a_seeded_permutation(coord):
    def epoch(seed, e, **kw):
        return list(train_batches(coord, 16, crop=CROP, seed=seed, epoch=e, **kw))

    a, again, b, other_seed = epoch(0, 0), epoch(0, 0), epoch(0, 1), epoch(1, 0)
    la = np.concatenate([y for _, y in a])
    np.testing.assert_array_equal(np.sort(la), np.arange(128))             # each once
    np.testing.assert_array_equal(la, epoch_order(128, 0, 0))
    for (xa, ya), (xg, yg) in zip(a, again):
        np.testing.assert_array_equal(ya, yg)
        np.testing.assert_array_equal(xa, xg)
    lb, lo = (np.concatenate([y for _, y in e]) for e in (b, other_seed))
    np.testing.assert_array_equal(np.sort(lb), np.arange(128))
    assert not np.array_equal(la, lb) and not np.array_equal(la, lo)


def test_threads_and_prefetch_do_not_change_the_batches(coord):
    ref = list(train_batches(coord, 32, crop=CROP, seed=4, prefetch=0, threads=1))
    for kw in ({'prefetch': 1, 'threads': 3}, {'prefetch': 4, 'threads': 2}):
        got = list(train_batches(coord, 32, crop=CROP, seed=4, **kw))
        assert len(got) == len(ref)
        for (xr, yr), (xg, yg) in zip(ref, got):
            np.testing.assert_array_equal(yr, yg)
            np.testing.assert_array_equal(xr, xg)


def test_worker_exception_reaches_the_consumer(tmp_path):
    p = open_prepared(coord_prepared(str(tmp_path), n_train=40, size=16, shard_size=40))
    split = p.split('train')
    calls = []

    def failing_take(idx):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError('disk on fire')
        return type(split).take(split, idx)

    split.take = failing_take
    it = train_batches(p, 8, crop=12, prefetch=2)
    next(it)                                       # the first batch is fine
    with pytest.raises(RuntimeError, match='disk on fire'):
        next(it)
    assert not our_threads()


def test_stopping_early_does_not_hang_and_stops_the_thread(coord):
    before = set(our_threads())

    def close_after_one():
        it = train_batches(coord, 2, crop=CROP, prefetch=2)
        next(it)
        it.close()

    def drop_after_one():
        it = eval_batches(coord, 1, crop=CROP, mode='ten', prefetch=1)
        next(it)
        del it
        gc.collect()

    run_with_deadline(close_after_one)
    run_with_deadline(drop_after_one)
    assert set(our_threads()) <= before == set()
    train_batches(coord, 2, crop=CROP)             # never iterated: starts no thread
    assert not our_threads()


def test_bad_arguments(coord):
    with pytest.raises(DataError):
        train_batches(coord, 8, crop=SIZE + 1)
    with pytest.raises(DataError):
        train_batches(dataclasses.replace(coord, mean=np.zeros((8, 8, 3), np.float32)), 8)
    with pytest.raises(ValueError):
        eval_batches(coord, 8, crop=CROP, mode='corners')
    with pytest.raises(DataError):
        train_batches(coord, 8, split='test')
