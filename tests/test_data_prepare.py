"""Decoding odd files, the prepared directory's contents, statistics, resume and errors."""
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from alexnet_tf1.data import prepare as prep
from alexnet_tf1.data.decode import BadImage, load_image
from alexnet_tf1.data.reader import DataError, open_prepared

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _save(path, img, fmt='PNG', **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, fmt, **kw)
    return path


def _xy_image(w, h):
    """R = 2x, G = 2y (+1 so 0 is never ambiguous): the pixels say where they came from."""
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([2 * x + 1, 2 * y + 1, np.full_like(x, 7)]).astype(np.uint8)


# --- load_image --------------------------------------------------------------------------

def test_wide_image_shorter_side_to_size_and_central_crop(tmp_path):
    path = _save(str(tmp_path / 'wide.png'), Image.fromarray(_xy_image(120, 60)))
    out = load_image(path, size=30)            # scale 1/2; keeps columns 30..89
    assert out.shape == (30, 30, 3) and out.dtype == np.uint8
    j = np.arange(30)
    # output pixel j averages source pixels 30+2j and 31+2j: R = 2 * (30.5 + 2j) + 1
    assert np.abs(out[10, :, 0].astype(int) - (62 + 4 * j)).max() <= 1
    assert np.abs(out[:, 10, 1].astype(int) - (2 + 4 * j)).max() <= 1


def test_tall_small_image_is_enlarged_and_cropped_vertically(tmp_path):
    path = _save(str(tmp_path / 'tall.png'), Image.fromarray(_xy_image(10, 30)))
    out = load_image(path, size=20)            # scale 2; keeps rows 10..19
    assert out.shape == (20, 20, 3)
    # output row i sits at source row 10 + (i + 0.5) / 2 - 0.5, G = 2 * row + 1
    i = np.arange(1, 19)
    assert np.abs(out[i, 5, 1] - (2 * (10 + (i + 0.5) / 2 - 0.5) + 1)).max() <= 1


def test_large_jpeg_draft_decoding_keeps_the_geometry(tmp_path):
    img = np.zeros((800, 1200, 3), np.uint8)
    img[:, :600] = (220, 30, 30)               # the crop keeps x 200..999: left half red
    img[:, 600:] = (30, 30, 220)
    img[:100] = (30, 220, 30)                  # a top band outside nothing: rows kept
    path = _save(str(tmp_path / 'big.JPEG'), Image.fromarray(img), 'JPEG', quality=95)
    out = load_image(path, size=64).astype(int)
    assert np.abs(out[32:, 4] - (220, 30, 30)).max() < 12
    assert np.abs(out[32:, 60] - (30, 30, 220)).max() < 12
    assert np.abs(out[2, 4] - (30, 220, 30)).max() < 12   # rows 0..99 -> output rows 0..7


def test_odd_files_become_8bit_rgb_with_the_right_values(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    png_as_jpeg = _save(str(tmp_path / 'png.JPEG'), Image.fromarray(rgb))
    assert np.array_equal(load_image(png_as_jpeg, 32), rgb)

    cmyk = _save(str(tmp_path / 'cmyk.JPEG'), Image.fromarray(rgb).convert('CMYK'), 'JPEG',
                 quality=95)
    assert Image.open(cmyk).mode == 'CMYK'
    expected = np.asarray(Image.open(cmyk).convert('RGB')).astype(int)
    assert np.abs(load_image(cmyk, 32).astype(int) - expected).max() <= 1

    grey = _save(str(tmp_path / 'grey.JPEG'), Image.new('L', (32, 32), 77), 'JPEG')
    assert np.abs(load_image(grey, 32).astype(int) - 77).max() <= 1

    alpha = np.linspace(0, 255, 32).astype(np.uint8)[None, :].repeat(32, 0)
    rgba = _save(str(tmp_path / 'rgba.png'), Image.fromarray(np.dstack([rgb, alpha])))
    a = alpha[..., None] / 255.0
    over_white = rgb * a + 255 * (1 - a)
    assert np.abs(load_image(rgba, 32) - over_white).max() <= 1

    sixteen = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) % 256 * 257
    deep = _save(str(tmp_path / 'deep.png'), Image.fromarray(sixteen))
    assert Image.open(deep).mode.startswith('I;16')
    assert np.array_equal(load_image(deep, 32), np.dstack([sixteen // 257] * 3))

    palette = _save(str(tmp_path / 'p.png'), Image.fromarray(rgb).quantize(16))
    expected = np.asarray(Image.open(palette).convert('RGB'))
    assert np.array_equal(load_image(palette, 32), expected)


@pytest.mark.parametrize('content,reason', [
    (b'', 'empty file'),
    (b'hello, I am text\n', 'not an image: text'),
    (None, 'truncated image'),
])
def test_undecodable_files_raise_bad_image_with_a_reason(tmp_path, content, reason):
    if content is None:
        buf = io.BytesIO()
        Image.fromarray(_xy_image(64, 64)).save(buf, 'JPEG')
        content = buf.getvalue()[:len(buf.getvalue()) // 2]
    with pytest.raises(BadImage) as e:
        load_image(content)
    assert str(e.value) == reason


def test_truncated_jpeg_refused_even_when_pillow_is_told_to_accept_it(monkeypatch):
    from PIL import ImageFile
    monkeypatch.setattr(ImageFile, 'LOAD_TRUNCATED_IMAGES', True)
    buf = io.BytesIO()
    Image.fromarray(_xy_image(64, 64)).save(buf, 'JPEG')
    with pytest.raises(BadImage, match='truncated'):
        load_image(buf.getvalue()[:len(buf.getvalue()) // 2])


# --- prepare -----------------------------------------------------------------------------

CLASSES = ['n00000002', 'n00000001', 'n00000003']      # written unsorted on purpose


def _tree(root, per_class=5, odd=True):
    """A folders tree of solid-colour-ish PNGs with noise; returns the count of files."""
    rng = np.random.default_rng(0)
    n = 0
    for split, count in (('train', per_class), ('val', 2)):
        for c, w in enumerate(CLASSES):
            for i in range(count):
                size = (int(rng.integers(20, 50)), int(rng.integers(20, 50)))
                arr = rng.integers(0, 256, (size[1], size[0], 3)).astype(np.uint8)
                _save(os.path.join(root, split, w, f'{w}_{i}.JPEG'), Image.fromarray(arr))
                n += 1
    if odd:
        d = os.path.join(root, 'train', 'n00000001')
        _save(os.path.join(d, 'grey.JPEG'), Image.new('L', (30, 20), 90), 'JPEG')
        with open(os.path.join(d, 'empty.JPEG'), 'wb'):
            pass
        with open(os.path.join(d, 'text.JPEG'), 'w') as f:
            f.write('not an image\n')
        n += 3
    return n


def _contract_bytes(out):
    """Every file of the prepared directory except the per-shard bookkeeping."""
    files = {}
    for dirpath, _, names in os.walk(out):
        for name in names:
            if not name.startswith(('shard-', 'sum-')):
                path = os.path.join(dirpath, name)
                with open(path, 'rb') as f:
                    files[os.path.relpath(path, out)] = f.read()
    return files


def test_prepare_writes_the_contract_and_accounts_for_every_file(tmp_path):
    src, out = str(tmp_path / 'src'), str(tmp_path / 'out')
    n_files = _tree(src)
    m = prep.prepare(src, out, workers=1, shard_size=4, size=16, progress=False)
    p = open_prepared(out)
    assert m['complete'] is True and p.manifest == m
    assert [w for w, _ in p.synsets] == sorted(CLASSES)
    assert m['converted'] + len(m['skipped']) == n_files
    assert {(s['path'], s['reason']) for s in m['skipped']} == {
        ('train/n00000001/empty.JPEG', 'empty file'),
        ('train/n00000001/text.JPEG', 'not an image: text')}
    train = p.split('train')
    assert len(train) == m['splits']['train']['count'] == 3 * 5 + 1
    # sorted files: n00000001's 'grey.JPEG' comes before its n00000001_*.JPEG files
    assert list(train.labels) == [0] * 6 + [1] * 5 + [2] * 5
    assert np.abs(train.take([0])[0].astype(int) - 90).max() <= 1
    assert np.array_equal(train.take([15])[0], load_image(
        os.path.join(src, 'train', 'n00000003', 'n00000003_4.JPEG'), 16))
    assert list(p.split('val').labels) == [0, 0, 1, 1, 2, 2]


def test_mean_and_pca_match_numpy_on_the_decoded_images(tmp_path):
    src, out = str(tmp_path / 'src'), str(tmp_path / 'out')
    _tree(src, odd=False)
    prep.prepare(src, out, workers=1, shard_size=4, size=16, progress=False)
    p = open_prepared(out)
    files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(src, 'train'))
                   for f in fs)
    images = np.stack([load_image(f, 16) for f in files]).astype(np.float64)
    assert np.allclose(p.mean, images.mean(axis=0), atol=1e-4)
    pixels = images.reshape(-1, 3) / 255.0
    val, vec = np.linalg.eigh(np.cov(pixels, rowvar=False, bias=True))
    assert np.allclose(p.eigval, val[::-1], rtol=1e-5)
    assert np.all(np.diff(p.eigval) < 0)
    assert np.allclose(np.abs(p.eigvec), np.abs(vec[:, ::-1]), atol=1e-5)


def test_interrupted_run_resumes_without_redoing_shards_and_same_bytes(tmp_path, monkeypatch):
    src = str(tmp_path / 'src')
    _tree(src)
    whole = str(tmp_path / 'whole')
    prep.prepare(src, whole, workers=1, shard_size=4, size=16, progress=False)

    out = str(tmp_path / 'out')
    real, calls = prep.convert_shard, []

    class Crash(Exception):
        pass

    def dies_on_the_third_shard(task):
        calls.append(task[:3])
        if len(calls) == 3:
            raise Crash
        return real(task)
    monkeypatch.setattr(prep, 'convert_shard', dies_on_the_third_shard)
    with pytest.raises(Crash):
        prep.prepare(src, out, workers=1, shard_size=4, size=16, progress=False)
    with pytest.raises(DataError, match='unfinished'):
        open_prepared(out)
    done = [os.path.join(out, prep._name('train', kind, k)) for k in (0, 1)
            for kind in ('images', 'labels', 'sum', 'shard')]
    before = {f: (os.stat(f).st_ino, os.stat(f).st_mtime_ns) for f in done}

    calls.clear()
    monkeypatch.setattr(prep, 'convert_shard', lambda task: calls.append(task[:3]) or real(task))
    prep.prepare(src, out, workers=1, shard_size=4, size=16, progress=False)
    redone = {c[1:] for c in calls}
    assert ('train', 0) not in redone and ('train', 1) not in redone
    assert ('train', 2) in redone and ('val', 0) in redone
    assert before == {f: (os.stat(f).st_ino, os.stat(f).st_mtime_ns) for f in done}
    assert _contract_bytes(out) == _contract_bytes(whole)


def test_sigkill_mid_write_then_rerun_gives_the_same_bytes(tmp_path):
    src = str(tmp_path / 'src')
    _tree(src)
    whole, out = str(tmp_path / 'whole'), str(tmp_path / 'out')
    prep.prepare(src, whole, workers=1, shard_size=4, size=16, progress=False)
    # the child dies by SIGKILL half-way through writing its fourth shard's images
    script = f'''
import os, signal
from alexnet_tf1.data import prepare as prep
real, n = prep._save, []
def save(path, array):
    n.append(path)
    if len(n) == 10:
        # what io_util.atomic_write leaves when killed before its rename: a dot-file beside
        open(os.path.join(os.path.dirname(path), '.' + os.path.basename(path) + '.x1'),
             'wb').write(b'half')
        os.kill(os.getpid(), signal.SIGKILL)
    real(path, array)
prep._save = save
prep.prepare({src!r}, {out!r}, workers=1, shard_size=4, size=16, progress=False)
'''
    r = subprocess.run([sys.executable, '-c', script], cwd=ROOT)
    assert r.returncode == -9
    assert any(f.startswith('.') for f in os.listdir(os.path.join(out, 'train')))
    prep.prepare(src, out, workers=1, shard_size=4, size=16, progress=False)
    assert _contract_bytes(out) == _contract_bytes(whole)
    assert not any(f.startswith('.') for f in os.listdir(os.path.join(out, 'train')))


def test_two_workers_write_what_one_writes(tmp_path):
    src = str(tmp_path / 'src')
    _tree(src)
    one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
    prep.prepare(src, one, workers=1, shard_size=4, size=16, progress=False)
    prep.prepare(src, two, workers=2, shard_size=4, size=16, progress=False)
    assert _contract_bytes(one) == _contract_bytes(two)


def test_rerun_on_a_finished_directory_is_a_no_op_that_says_so(tmp_path, capsys):
    src, out = str(tmp_path / 'src'), str(tmp_path / 'out')
    _tree(src, per_class=2, odd=False)
    m = prep.prepare(src, out, workers=1, size=16, progress=False)
    stamp = os.stat(os.path.join(out, 'manifest.json')).st_mtime_ns
    assert prep.prepare(src, out, workers=1, size=16) == m
    assert 'already prepared' in capsys.readouterr().err
    assert os.stat(os.path.join(out, 'manifest.json')).st_mtime_ns == stamp
    with pytest.raises(DataError, match='finished preparation with image_size 16 .asked: 32'):
        prep.prepare(src, out, size=32, progress=False)


def test_cifar10_and_mnist_shards(tmp_path):
    from test_data_layouts import _idx, _write_cifar_dir
    cifar = _write_cifar_dir(str(tmp_path / 'c'))
    m = prep.prepare(cifar, str(tmp_path / 'cp'), workers=1, size=64, progress=False)
    assert (m['dataset'], m['image_size'], m['splits']['train']['count']) == ('cifar10', 64, 15)
    p = open_prepared(str(tmp_path / 'cp'))
    assert p.split('val').take([0]).shape == (1, 64, 64, 3) and p.eigval.shape == (3,)

    mn = tmp_path / 'm'
    mn.mkdir()
    for part, n in (('train', 4), ('t10k', 2)):
        (mn / f'{part}-images-idx3-ubyte').write_bytes(_idx(np.full((n, 28, 28), 200)))
        (mn / f'{part}-labels-idx1-ubyte').write_bytes(_idx(np.arange(n)))
    m = prep.prepare(str(mn), str(tmp_path / 'mp'), workers=1, progress=False)
    p = open_prepared(str(tmp_path / 'mp'))
    assert (m['dataset'], m['image_size'], m['channels']) == ('mnist', 32, 1)
    assert p.eigval is None and not os.path.exists(tmp_path / 'mp' / 'pca.npz')
    assert p.mean.shape == (32, 32, 1) and p.mean[0, 0, 0] == 0 and p.mean[16, 16, 0] == 200
    assert list(p.split('train').labels) == [0, 1, 2, 3]


def _cli(*args):
    return subprocess.run([sys.executable, '-m', 'alexnet_tf1.data.prepare', *args],
                          cwd=ROOT, capture_output=True, text=True)


def test_cli_errors_are_one_line_and_exit_2(tmp_path):
    r = _cli(str(tmp_path / 'missing'), str(tmp_path / 'out'))
    assert r.returncode == 2
    assert r.stderr.startswith('error: ') and r.stderr.count('\n') == 1
    bad = tmp_path / 'bad' / 'train' / 'n00000001'
    bad.mkdir(parents=True)
    (bad / 'a.JPEG').write_bytes(b'')
    (bad / 'b.JPEG').write_text('text')
    r = _cli(str(tmp_path / 'bad'), str(tmp_path / 'out'), '--workers', '1')
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert r.stderr.splitlines()[-1].startswith('error: ')
    assert 'no readable training image' in r.stderr


def test_a_shard_emptied_by_a_power_loss_is_converted_again(tmp_path, monkeypatch):
    """Its statistics file survived but its images did not (renamed, never flushed): a rerun of
    the unfinished preparation must not count it as done."""
    src = str(tmp_path / 'src')
    _tree(src)
    whole, out = str(tmp_path / 'whole'), str(tmp_path / 'out')
    prep.prepare(src, whole, workers=1, shard_size=4, size=16, progress=False)
    def power_loss(*a, **k):
        raise KeyboardInterrupt
    with monkeypatch.context() as m:        # every shard written, the manifest never finished
        m.setattr(prep, '_finish', power_loss)
        with pytest.raises(KeyboardInterrupt):
            prep.prepare(src, out, workers=1, shard_size=4, size=16, progress=False)
    open(os.path.join(out, 'train', 'images-00001.npy'), 'wb').close()      # 0 bytes
    prep.prepare(src, out, workers=1, shard_size=4, size=16, progress=False)
    assert _contract_bytes(out) == _contract_bytes(whole)
