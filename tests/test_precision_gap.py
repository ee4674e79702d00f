"""python -m alexnet_tf1.experiments.precision_gap: one checkpoint scored in fp32 and in bf16."""
import json

import numpy as np

import run_eval
from alexnet_tf1.data import pipeline
from alexnet_tf1.data.reader import open_prepared
from alexnet_tf1.evaluation import evaluate
from alexnet_tf1.experiments import precision_gap
from alexnet_tf1.tf_compat import tf
from random_checkpoint import random_checkpoint
from test_bf16 import has_bf16
from tiny_run import tiny_prepared


@has_bf16
def test_the_gap_is_bf16_rounding_and_the_fp32_error_is_run_evals(tmp_path, capsys):
    data = tiny_prepared(str(tmp_path), n_val=12, classes=4, seed=3)
    random_checkpoint(str(tmp_path / 'run'), data, seed=7, classes=4)
    assert precision_gap.main(['--train-dir', str(tmp_path / 'run'), '--batch-size', '5',
                               '--json']) == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert got['images'] == 12 and got['crops_per_image'] == 10
    # bf16 keeps 8 significant bits: a gap there is, and it is small against the logits
    assert 0 < got['largest_logit_gap'] < 3e-2 * got['largest_fp32_logit']
    assert 0.5 <= got['same_class_per_crop'] <= 1 and 0.5 <= got['same_class_averaged'] <= 1
    # the fp32 figure is run_eval's own 10-crop error on the same checkpoint and data
    out = str(tmp_path / 'eval.json')
    assert run_eval.main(['--train-dir', str(tmp_path / 'run'), '--precision', 'fp32',
                          '--out', out]) == 0
    want = json.load(open(out))['top1_error_10crop']
    assert np.isclose(got['top1_error_averaged']['fp32'], want)


def test_model_with_a_checkpoint_is_refused_in_one_line(tmp_path, capsys):
    assert precision_gap.main(['--train-dir', str(tmp_path), '--model', 'alexnet']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and '--model' in err[0]


@has_bf16
def test_gradients_in_bf16_are_a_few_degrees_from_fp32_and_batches_further(tmp_path, capsys):
    data = tiny_prepared(str(tmp_path), n_val=12, classes=4, seed=3)
    path = random_checkpoint(str(tmp_path / 'run'), data, seed=7, classes=4)
    assert precision_gap.main(['--train-dir', path, '--batch-size', '6',     # a prefix
                               '--gradients', '--json']) == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = {r['variable']: r for r in got['variables']}
    # every trainable variable of the checkpoint, weights and biases of both towers
    reader = tf.train.load_checkpoint(path)
    want = {n for n in reader.get_variable_to_shape_map() if n.endswith(('weights', 'biases'))}
    assert set(rows) == want
    for name, r in rows.items():
        assert r['bf16_vs_fp32_degrees'] is not None, name
        # really bf16, and only rounding: 0.2-9.4 degrees here, one batch to the next 84-105
        assert 0 < r['bf16_vs_fp32_degrees'] < 20, name
        assert r['bf16_vs_fp32_degrees'] < r['batch_vs_batch_degrees'] / 3, name
    # the last biases' gradient by hand: the batch mean of softmax minus the one-hot label, from
    # the logits of each batch as a training step computes them (dropout on)
    restored = evaluate.Restored(path, 'cpu', precision='fp32', gradients=True)
    g = restored.g
    by_hand = []
    for x, y in pipeline.eval_batches(restored.data(open_prepared(data)), 6,
                                      crop=restored.config.input_size):
        z, loss, xent = restored.sess.run([g.logits, g.total_loss, g.xent],
                                          {g.images: x, g.labels: y, g.training: True})
        assert loss == xent         # no weight decay in the gradients compared
        z = z.astype(np.float64)
        p = np.exp(z - z.max(1, keepdims=True))
        by_hand.append((p / p.sum(1, keepdims=True) - np.eye(4)[y]).mean(0))
    a, b = by_hand
    degrees = np.degrees(np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))
    assert np.isclose(degrees, rows['tower0/fc8/biases']['batch_vs_batch_degrees'], atol=1e-2)


@has_bf16
def test_gradients_need_two_full_batches_and_say_so_in_one_line(tmp_path, capsys):
    data = tiny_prepared(str(tmp_path), n_val=6, classes=4, seed=3)
    random_checkpoint(str(tmp_path / 'run'), data, seed=7, classes=4)
    code = precision_gap.main(['--train-dir', str(tmp_path / 'run'), '--batch-size', '4',
                               '--gradients'])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and '--batch-size' in err[0], err
