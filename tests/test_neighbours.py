"""run_eval.py --neighbours: the paper's Figure 4 (right), six training images nearest each
picture in the last hidden layer (AlexNet's fc7, both towers), and the cache of their vectors."""
import os
import re

import imageio.v3 as iio
import numpy as np
import pytest

import run_eval
from alexnet_tf1 import devices
from alexnet_tf1.evaluation import evaluate, neighbours
from alexnet_tf1.nn import cpu_kernels
from alexnet_tf1.training import graph
from alexnet_tf1.config import ModelConfig
from alexnet_tf1.data.decode import load_image
from alexnet_tf1.data.reader import open_prepared
from random_checkpoint import random_checkpoint
from tiny_run import CROP, SIZE, tiny_prepared


@pytest.fixture
def run(tmp_path):
    """A prepared set of 8 training images, an untrained AlexNet, and three query files: a
    training image, a picture of another size, and a file that is no picture."""
    data = tiny_prepared(str(tmp_path))
    ckpt = random_checkpoint(str(tmp_path / 'run'), data, 1)
    train = open_prepared(data).split('train')
    own, other, bad = (str(tmp_path / n) for n in ('own.png', 'other.png', 'bad.jpg'))
    iio.imwrite(own, train.take([5])[0])
    iio.imwrite(other, np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    open(bad, 'w').write('not a picture')
    return data, ckpt, [own, bad, other], str(tmp_path / 'sheet.png')


def fc7(ckpt, data, pictures):
    """Both towers' fc7 for uint8 pictures at the stored size: mean off, centre crop, here."""
    restored = evaluate.Restored(ckpt, 'cpu')
    y = (SIZE - CROP) // 2
    x = (np.asarray(pictures, np.float32) - open_prepared(data).mean)[:, y:y + CROP, y:y + CROP]
    out = np.concatenate(restored.sess.run(restored.g.net.end_points['fc7'],
                                           {restored.g.images: x}), 1)
    restored.close()
    return out


def neighbours_of(out, path):
    line = next(line for line in out.splitlines() if line.startswith(path + ': #'))
    found = re.findall(r'#(\d+) \S+ \S+ ([\d.e+-]+)', line)
    return [int(i) for i, _ in found], [float(d) for _, d in found]


def test_neighbours_are_the_nearest_cached_vectors_and_the_figure_shows_them(run, capsys):
    data, ckpt, files, sheet = run
    assert run_eval.main(['--checkpoint', ckpt, '--gpus', 'cpu', '--neighbours', *files,
                          '--sheet', sheet]) == 0
    out = capsys.readouterr().out
    assert f'{files[1]}: skipped' in out and '8,192 bytes per training image' in out
    train = open_prepared(data).split('train')
    cache = np.load(ckpt + '.features.npy')
    assert cache.dtype == np.float16 and cache.shape == (8, 4096)
    np.testing.assert_allclose(cache, fc7(ckpt, data, train.take(np.arange(8))), rtol=2e-3,
                               atol=1e-3)
    queries = fc7(ckpt, data, [load_image(f, SIZE) for f in (files[0], files[2])])
    rows = []
    for f, q in zip((files[0], files[2]), queries):
        dist = np.linalg.norm(cache.astype(np.float64) - q, axis=1)
        want = np.argsort(dist, kind='stable')[:6]
        got, shown = neighbours_of(out, f)
        assert got == list(want)
        assert shown == pytest.approx(dist[want], rel=1e-3, abs=1e-3)
        rows.append(got)
    assert rows[0][0] == 5          # a training image's nearest is itself
    png = iio.imread(sheet)
    assert png.shape == (2 * (SIZE + 4) + 4, 7 * (SIZE + 4) + 4, 3)
    for r, idx in enumerate(rows):
        for c, i in enumerate(idx, 1):      # the stored training images, unscaled (76 px)
            y, x = 4 + r * (SIZE + 4), 4 + c * (SIZE + 4)
            np.testing.assert_array_equal(png[y:y + SIZE, x:x + SIZE], train.take([i])[0])


def test_cache_is_reused_made_again_for_new_weights_or_data_and_orphans_go(run, capsys):
    data, ckpt, files, sheet = run
    args = ['--checkpoint', ckpt, '--gpus', 'cpu', '--neighbours', files[0], '--sheet', sheet]
    npy = ckpt + '.features.npy'
    gone = os.path.join(os.path.dirname(ckpt), 'model.ckpt-0.features')    # rotated out
    for ext in ('.npy', '.json'):
        open(gone + ext, 'w').close()
    assert run_eval.main(args) == 0 and 'wrote ' + npy in capsys.readouterr().out
    assert not os.path.exists(gone + '.npy') and not os.path.exists(gone + '.json')
    first, stamp = np.load(npy), os.stat(npy).st_mtime_ns
    assert run_eval.main(args) == 0 and 'reused ' + npy in capsys.readouterr().out
    assert os.stat(npy).st_mtime_ns == stamp
    # new weights under the same name, as a run started over writes them
    assert random_checkpoint(os.path.dirname(ckpt), data, 2) == ckpt
    assert run_eval.main(args) == 0 and 'wrote ' + npy in capsys.readouterr().out
    second = np.load(npy)
    assert not np.array_equal(first, second)
    np.testing.assert_allclose(second, fc7(ckpt, data, open_prepared(data).split('train')
                                           .take(np.arange(8))), rtol=2e-3, atol=1e-3)
    shard = os.path.join(data, 'train', 'images-00000.npy')
    os.utime(shard, ns=(stamp, stamp + 10**9))      # the data prepared again
    assert run_eval.main(args) == 0 and 'wrote ' + npy in capsys.readouterr().out
    if cpu_kernels.bf16_missing() is None:          # the same weights and data in bf16
        assert run_eval.main(args + ['--precision', 'bf16']) == 0
        assert 'wrote ' + npy in capsys.readouterr().out
        assert not np.array_equal(np.load(npy), second)


@pytest.mark.parametrize('model, size, expect', [
    ('lenet5', 32, 'F6'), ('lenet5-relu', 32, 'F6'), ('vgg-a', 32, 'fc7')])
def test_the_last_hidden_layer_is_the_input_of_the_classifier(model, size, expect):
    g = graph.build(ModelConfig(model=model, num_classes=10, input_size=size,
                                channels=1 if 'lenet' in model else 3),
                    devices.resolve('cpu', towers=1), train=False)
    (t,) = neighbours.layer_inputs(g)
    end = g.net.end_points[expect][0]
    assert t is end or end in list(t.op.inputs)


def test_alexnet_with_fc8_split_reads_both_towers_fc7():
    g = graph.build(ModelConfig(num_classes=10, input_size=CROP, fc8='split'),
                    devices.resolve('cpu'), train=False)
    (t,) = neighbours.layer_inputs(g)
    assert list(t.op.inputs)[:2] == g.net.end_points['fc7']


def test_replicas_give_the_vectors_of_one_model_even_for_a_single_image(run):
    data, ckpt, _, _ = run
    x = np.random.default_rng(2).normal(0, 50, (3, CROP, CROP, 3)).astype(np.float32)
    one, two = evaluate.Restored(ckpt, 'cpu'), evaluate.Restored(ckpt, 'cpu:4')
    assert two.g.replicas == 2
    want = neighbours.features(one, neighbours.layer_inputs(one.g), x)
    got = neighbours.features(two, neighbours.layer_inputs(two.g), x, batch=2)  # then 1 left
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
