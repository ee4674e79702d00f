"""Learning where it can fail: LeNet-5 on real handwritten digits (scikit-learn's bundled UCI
scans, written as MNIST IDX files by alexnet_tf1.data.digits), through prepare, run_train.py
and run_eval.py as a user runs them."""
import json
import os

import numpy as np
import pytest

import run_eval
import run_train
from alexnet_tf1.data import arraysets, digits
from alexnet_tf1.data.prepare import prepare


@pytest.fixture(scope='module')
def prepared_digits(tmp_path_factory):
    root = tmp_path_factory.mktemp('digits')
    raw = str(root / 'raw')
    counts = digits.write(raw)
    prepare(raw, str(root / 'prepared'))
    return str(root / 'prepared'), raw, counts


def test_the_digits_are_idx_files_with_every_class_held_out_in_proportion(prepared_digits):
    _, raw, counts = prepared_digits
    found = arraysets.find_mnist(raw)
    images = arraysets.read_idx(found[('train', 'images')])
    labels = arraysets.read_idx(found[('train', 'labels')])
    test_labels = arraysets.read_idx(found[('t10k', 'labels')])
    assert images.shape == (counts['train'], 28, 28) and counts['train'] + counts['t10k'] == 1797
    # the UCI set's classes hold 174-183 scans each: a quarter of each is held out
    held = np.bincount(test_labels, minlength=10)
    assert set(held) <= set(range(43, 47)) and held.sum() == counts['t10k']
    assert np.bincount(labels, minlength=10).min() >= 130
    # MNIST's framing: the digit inside the central 20x20, a blank border of 4
    assert images[:, :4].max() == 0 and images[:, 4:24, 4:24].max() > 200
    assert digits.idx_bytes(images[:3]) == digits.idx_bytes(images[:3].copy())


def test_lenet5_relu_learns_real_digits_within_a_minute(prepared_digits, tmp_path):
    data = prepared_digits[0]
    td = str(tmp_path / 'relu')
    # a quarter of the preset's epochs: enough to show learning, not the preset's final figure
    assert run_train.main(['--model', 'lenet5-relu', '--data-dir', data, '--train-dir', td,
                           '--gpus', 'cpu', '--epochs', '15']) == 0
    assert run_eval.main(['--model', 'lenet5-relu', '--train-dir', td, '--gpus', 'cpu']) == 0
    result = json.load(open(os.path.join(td, 'eval.json')))
    assert result['crops'] == 5                         # digits are never mirrored
    assert result['top1_error_1crop'] <= 5.0, result    # chance is 90%


@pytest.mark.slow
@pytest.mark.parametrize('model', ['lenet5', 'lenet5-relu'])
def test_lenet5_presets_reach_2_percent_on_real_digits(prepared_digits, tmp_path, model):
    data = prepared_digits[0]
    td = str(tmp_path / model)
    assert run_train.main(['--model', model, '--data-dir', data, '--train-dir', td,
                           '--gpus', 'cpu']) == 0
    assert run_eval.main(['--model', model, '--train-dir', td, '--gpus', 'cpu']) == 0
    result = json.load(open(os.path.join(td, 'eval.json')))
    assert result['top1_error_1crop'] <= 2.0, result
