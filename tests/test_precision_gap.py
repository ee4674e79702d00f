"""python -m alexnet_tf1.experiments.precision_gap: one checkpoint scored in fp32 and in bf16."""
import json

import numpy as np
import pytest

import run_eval
from alexnet_tf1.experiments import precision_gap
from alexnet_tf1.nn import cpu_kernels
from random_checkpoint import random_checkpoint
from tiny_run import tiny_prepared


@pytest.mark.skipif(cpu_kernels.bf16_missing() is not None,
                    reason='bf16 runs no faster than fp32 on this CPU')
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
