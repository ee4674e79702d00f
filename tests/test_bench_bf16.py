"""The bench under --precision bf16: our bf16 graph timed beside our fp32 one and both matmul
ceilings, and the Keras twins under Keras' mixed_bfloat16 policy (bf16 layers, fp32 weights).
Speed itself is never asserted; what is checked is what each figure is measured on."""
import json

import numpy as np
import pytest

from alexnet_tf1.config import defaults_for
from alexnet_tf1.nn import cpu_kernels
from test_bf16 import has_bf16


@has_bf16
def test_a_bf16_bench_times_our_fp32_graph_and_both_ceilings_beside_bf16(capsys):
    from alexnet_tf1.bench import report as bench
    code = bench.main(['--model', 'lenet5-relu', '--batch-size', '4', '--steps', '2',
                       '--warmup', '1', '--gpus', 'cpu', '--matmul-size', '256', '--no-data',
                       '--precision', 'bf16', '--json'])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out['precision'] == 'bf16'
    assert set(out['matmul_gflops_by_precision']) == {'fp32', 'bf16'}
    assert out['machine_matmul_gflops'] == out['matmul_gflops_by_precision']['bf16']
    assert out['train_speedup_vs_fp32'] == pytest.approx(out['fp32_train_ms'] / out['train_ms'],
                                                         rel=0.01)
    assert out['forward_speedup_vs_fp32'] == pytest.approx(
        out['fp32_forward_ms'] / out['forward_ms'], rel=0.01)
    assert out['machine']['bf16_path'] == {'amx': 'AMX', 'avx512_bf16': 'AVX512_BF16'}[
        cpu_kernels.bf16_path()]
    assert out['keras_train_ms'] > 0


def _twin(policy):
    from alexnet_tf1.bench import keras_twins
    return keras_twins.get('lenet5-relu')(defaults_for('lenet5-relu'), policy=policy)


@has_bf16
def test_the_keras_twin_under_mixed_bfloat16_computes_in_bf16_on_fp32_weights():
    fp32, bf16 = _twin(None), _twin('mixed_bfloat16')
    weighted = [layer for layer in bf16.layers if layer.weights]
    assert weighted
    # every layer but the logits computes in bf16; all weights are stored in fp32
    assert [layer.compute_dtype for layer in weighted[:-1]] == ['bfloat16'] * (len(weighted) - 1)
    assert weighted[-1].compute_dtype == 'float32'
    assert {w.dtype for w in bf16.weights} == {'float32'}
    bf16.set_weights(fp32.get_weights())
    x = np.random.RandomState(0).rand(8, 32, 32, 1).astype(np.float32)
    a = np.asarray(fp32.predict_on_batch(x))
    b = np.asarray(bf16.predict_on_batch(x))
    scale = np.abs(a).max()
    assert scale > 0
    # bf16's 8 significant bits: close to fp32's answer, and not it
    np.testing.assert_allclose(b, a, atol=3e-2 * scale)
    assert np.abs(b - a).max() > 1e-5 * scale
