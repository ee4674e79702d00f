"""run_eval.py --checkpoint A B C: an ensemble's softmax is the average of its members', each
member taking its own crops at its own input size, as the paper's 5- and 7-CNN rows."""
import json
import os

import numpy as np
import pytest

import run_eval
from alexnet_tf1.evaluation import ensemble, evaluate
from alexnet_tf1.data.reader import open_prepared
from random_checkpoint import random_checkpoint
from tiny_run import tiny_prepared

CLASSES = 7     # more than 5, so that top-5 error is not 0 by construction


@pytest.fixture(scope='module')
def members(tmp_path_factory):
    """Three untrained members in three train dirs: two AlexNets at 67 px, a CaffeNet at 71."""
    root = tmp_path_factory.mktemp('ensemble')
    data = tiny_prepared(str(root), n_val=14, classes=CLASSES)
    paths = [random_checkpoint(str(root / 'a'), data, 1, classes=CLASSES),
             random_checkpoint(str(root / 'b'), data, 2, 'caffenet', 71, classes=CLASSES),
             random_checkpoint(str(root / 'c'), data, 3, classes=CLASSES)]
    return data, paths


def own_softmax(path, data):
    """(centre crop, 10-crop mean) softmax of one member, its ten crops cut here in NumPy."""
    restored = evaluate.Restored(path, 'cpu')
    d = open_prepared(data)
    val = d.split('val')
    imgs = val.take(np.arange(len(val))).astype(np.float32) - d.mean
    h, c = imgs.shape[1], restored.config.input_size
    corners = [(0, 0), (0, h - c), (h - c, 0), (h - c, h - c), ((h - c) // 2, (h - c) // 2)]
    crops = np.stack([imgs[:, y:y + c, x:x + c] for y, x in corners], 1)
    crops = np.concatenate([crops, crops[:, :, :, ::-1]], 1)
    p = restored.probs(crops.reshape(-1, c, c, 3)).reshape(len(val), 10, -1)
    restored.close()
    return p[:, 4], p.mean(1)


def errors(probs, labels):
    """(top-1, top-5) error in percent, counted here."""
    top5 = np.argsort(-probs, 1)[:, :5]
    return (100 * np.mean(probs.argmax(1) != labels),
            100 * np.mean([y not in row for y, row in zip(labels, top5)]))


def test_ensemble_softmax_is_the_mean_of_its_members_softmax(members, monkeypatch, capsys):
    data, paths = members
    own = [own_softmax(p, data) for p in paths]
    want1, want10 = np.mean([o[0] for o in own], 0), np.mean([o[1] for o in own], 0)
    labels = open_prepared(data).split('val').labels
    ranked = np.sort(want10, 1)
    assert (ranked[:, -1] - ranked[:, -2]).min() > 1e-4     # no near-tie for rounding to flip

    seen, score = [], ensemble.score       # what run_eval's ensemble averaged, seen on the way
    monkeypatch.setattr(ensemble, 'score', lambda *a, **k: seen.append(score(*a, **k)) or seen[-1])
    assert run_eval.main(['--checkpoint', *paths, '--gpus', 'cpu', '--batch-size', '4']) == 0
    p1, p10, got_labels = seen[0][1]
    np.testing.assert_allclose(p10, want10, atol=1e-6)
    np.testing.assert_allclose(p1, want1, atol=1e-6)
    np.testing.assert_array_equal(got_labels, labels)
    out = capsys.readouterr().out
    assert 'ours, 3 CNNs, 10 crops' in out and 'paper, 5 CNNs' in out
    result = json.load(open(os.path.join(os.path.dirname(paths[0]), 'eval-ensemble.json')))
    assert [m['checkpoint'] for m in result['members']] == [os.path.abspath(p) for p in paths]
    assert [m['input_size'] for m in result['members']] == [67, 71, 67]
    for m, (q1, q10) in zip(result['members'], own):
        assert (m['top1_error_10crop'], m['top5_error_10crop']) == \
            pytest.approx(errors(q10, labels))
        assert (m['top1_error_1crop'], m['top5_error_1crop']) == pytest.approx(errors(q1, labels))
    assert (result['top1_error_10crop'], result['top5_error_10crop']) == \
        pytest.approx(errors(want10, labels))
    assert (result['top1_error_1crop'], result['top5_error_1crop']) == \
        pytest.approx(errors(want1, labels))
    assert result['n_images'] == 14 and result['crops'] == 10


def test_a_member_with_other_classes_is_a_one_line_error(members, tmp_path, capsys):
    data, paths = members
    other = random_checkpoint(str(tmp_path / 'three'), data, 4, classes=3)
    assert run_eval.main(['--checkpoint', paths[0], other, '--gpus', 'cpu']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f'{other} has 3 classes' in err[0]


def test_a_member_trained_on_other_class_names_is_a_one_line_error(members, tmp_path, capsys):
    data, paths = members
    renamed = tiny_prepared(str(tmp_path), classes=CLASSES)
    with open(os.path.join(renamed, 'synsets.txt'), 'w') as f:
        f.writelines(f'n{i:08d}\tother {i}\n' for i in range(CLASSES))
    other = random_checkpoint(str(tmp_path / 'renamed'), renamed, 5, classes=CLASSES)
    assert run_eval.main(['--checkpoint', paths[0], other, '--gpus', 'cpu']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'classes (names or order) differ' in err[0]
