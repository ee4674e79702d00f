"""The speed benchmark: its command reports every figure, FLOPs per image match the paper's
arithmetic, and the Keras twin is the same network as ours (no speed is asserted)."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

KEYS = ('model', 'batch_size', 'devices', 'steps', 'forward_ms', 'train_ms', 'train_images_per_s',
        'keras_forward_ms', 'keras_train_ms', 'keras_train_images_per_s',
        'train_speedup_vs_keras', 'forward_speedup_vs_keras', 'gflops_per_image', 'peak_rss_mb',
        'machine_matmul_gflops', 'train_fraction_of_matmul_peak', 'machine',
        'eval_images_per_s_10crop', 'keras_predict_ms', 'eval_speedup_vs_keras_predict')
ALEXNET_KEYS = ('train_speedup_vs_keras_one_tower', 'forward_speedup_vs_keras_one_tower',
                'keras_one_tower_forward_ms', 'keras_one_tower_train_ms',
                'keras_one_tower_train_images_per_s')

# Krizhevsky et al. 2012, section 3.5 and Figure 2, typed in: (name, Ho, Wo, Cout, k, Cin each
# kernel reads) per tower for the convolutions, (name, in, out) per tower for the fc layers;
# towers side by side.
TWO_TOWERS_CONV = [('conv1', 55, 55, 48, 11, 3), ('conv2', 27, 27, 128, 5, 48),
                   ('conv3', 13, 13, 192, 3, 256), ('conv4', 13, 13, 192, 3, 192),
                   ('conv5', 13, 13, 128, 3, 192)]
TWO_TOWERS_FC = [('fc6', 9216, 2048), ('fc7', 4096, 2048), ('fc8', 4096, 500)]
# one tower: the same layers, every convolution reading all of the previous layer's maps
ONE_TOWER_CONV = [('conv1', 55, 55, 96, 11, 3), ('conv2', 27, 27, 256, 5, 96),
                  ('conv3', 13, 13, 384, 3, 256), ('conv4', 13, 13, 384, 3, 384),
                  ('conv5', 13, 13, 256, 3, 384)]
ONE_TOWER_FC = [('fc6', 9216, 4096), ('fc7', 4096, 4096), ('fc8', 4096, 1000)]

# The same net layer by layer, both towers together, each formula written out by hand:
# conv 2 * Ho * Wo * Cout * k * k * (input maps each kernel reads), fc 2 * in * out.
ALEXNET_FLOPS = {'conv1': 2 * 55 * 55 * 96 * 11 * 11 * 3, 'conv2': 2 * 27 * 27 * 256 * 5 * 5 * 48,
                 'conv3': 2 * 13 * 13 * 384 * 3 * 3 * 256, 'conv4': 2 * 13 * 13 * 384 * 3 * 3 * 192,
                 'conv5': 2 * 13 * 13 * 256 * 3 * 3 * 192, 'fc6': 2 * 6 * 6 * 256 * 4096,
                 'fc7': 2 * 4096 * 4096, 'fc8': 2 * 4096 * 1000}
ONE_TOWER_FLOPS = dict(ALEXNET_FLOPS, conv2=2 * 27 * 27 * 256 * 5 * 5 * 96,
                       conv4=2 * 13 * 13 * 384 * 3 * 3 * 384, conv5=2 * 13 * 13 * 256 * 3 * 3 * 384)
# weights + biases of each layer, from the same shapes
ALEXNET_PARAMS = {'conv1': 11 * 11 * 3 * 96 + 96, 'conv2': 5 * 5 * 48 * 256 + 256,
                  'conv3': 3 * 3 * 256 * 384 + 384, 'conv4': 3 * 3 * 192 * 384 + 384,
                  'conv5': 3 * 3 * 192 * 256 + 256, 'fc6': 6 * 6 * 256 * 4096 + 4096,
                  'fc7': 4096 * 4096 + 4096, 'fc8': 4096 * 1000 + 1000}
ONE_TOWER_PARAMS = dict(ALEXNET_PARAMS, conv2=5 * 5 * 96 * 256 + 256,
                        conv4=3 * 3 * 384 * 384 + 384, conv5=3 * 3 * 384 * 256 + 256)


def spec_flops(convs, fcs, towers):
    """Multiply-adds x 2 per image: conv 2*Ho*Wo*Cout*k*k*Cin, fc 2*in*out, times the towers."""
    per_tower = sum(2 * ho * wo * cout * k * k * cin for _, ho, wo, cout, k, cin in convs)
    per_tower += sum(2 * i * o for _, i, o in fcs)
    return towers * per_tower


def smallest_model():
    """The cheapest registered model to run the command on; alexnet until smaller ones exist."""
    from alexnet_tf1 import models
    for name in ('lenet5-relu', 'lenet5', 'alexnet'):
        if name in models.MODELS:
            return name
    return sorted(models.MODELS)[0]


def test_spec_table_gives_the_papers_figures():
    # the typed-in tables against each other and the rounded figures of 1.45 and 2.27 GFLOPs
    assert spec_flops(TWO_TOWERS_CONV, TWO_TOWERS_FC, 2) == sum(ALEXNET_FLOPS.values())
    assert spec_flops(ONE_TOWER_CONV, ONE_TOWER_FC, 1) == sum(ONE_TOWER_FLOPS.values())
    assert spec_flops(TWO_TOWERS_CONV, TWO_TOWERS_FC, 2) == pytest.approx(1.45e9, rel=0.01)
    assert spec_flops(ONE_TOWER_CONV, ONE_TOWER_FC, 1) == pytest.approx(2.27e9, rel=0.01)
    # "60 million parameters" (the paper's abstract); 60,965,224 exactly with two towers
    assert sum(ALEXNET_PARAMS.values()) == 60_965_224
    assert sum(ONE_TOWER_PARAMS.values()) == 62_378_344


def by_layer(per_op):
    """{layer: FLOPs summed over towers} of flops.forward_flops(by_layer=True)'s per-op dict."""
    out = {}
    for name, f in per_op.items():
        layer = name.split('/')[1]
        out[layer] = out.get(layer, 0) + f
    return out


def test_alexnet_two_towers_is_1_45_gflops_per_image():
    from alexnet_tf1.bench import flops
    total, per_op = flops.forward_flops('alexnet', by_layer=True)
    assert by_layer(per_op) == ALEXNET_FLOPS
    assert total == sum(ALEXNET_FLOPS.values()) == pytest.approx(1.45e9, rel=0.01)
    # every layer of both towers was counted, fc8 once (all of it on tower 0)
    assert len(per_op) == 15


@pytest.fixture(scope='module')
def keras_alexnet():
    from alexnet_tf1.bench import keras_twins
    return keras_twins.alexnet()


@pytest.fixture(scope='module')
def keras_one_tower():
    from alexnet_tf1.bench import keras_twins
    return keras_twins.alexnet_one_tower()


def test_grouped_layers_save_36_percent_against_one_tower(keras_alexnet, keras_one_tower):
    from alexnet_tf1.bench import flops
    one = flops.keras_forward_flops(keras_one_tower)
    two = flops.keras_forward_flops(keras_alexnet)
    assert one == sum(ONE_TOWER_FLOPS.values()) == pytest.approx(2.27e9, rel=0.01)
    assert two == sum(ALEXNET_FLOPS.values())
    assert 1 - two / one == pytest.approx(0.36, abs=0.01)


@pytest.fixture(scope='module')
def our_alexnet():
    from alexnet_tf1 import config, devices
    from alexnet_tf1.training import graph
    from alexnet_tf1.tf_compat import session, tf1
    placement = devices.resolve('cpu')
    g = graph.build(config.ModelConfig(), placement, train=False)
    sess = session(g.graph, placement.session_config())
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
        n = sum(int(np.prod(v.shape)) for v in tf1.trainable_variables())
    yield g, sess, n
    sess.close()


def test_keras_twins_have_the_papers_parameter_counts(keras_alexnet, keras_one_tower, our_alexnet):
    """Layer by layer against the hand-written shapes: the twin's conv2, conv4 and conv5 are
    grouped (half the weights), the one-tower twin's are not; our two towers add up the same."""
    from alexnet_tf1.bench import keras_twins
    for model, want in ((keras_alexnet, ALEXNET_PARAMS), (keras_one_tower, ONE_TOWER_PARAMS)):
        layers = [layer for layer in model.layers if layer.weights]
        assert [layer.count_params() for layer in layers] == list(want.values())
        assert model.count_params() == keras_twins.trainable_params(model) == sum(want.values())
    assert our_alexnet[2] == sum(ALEXNET_PARAMS.values())


def test_keras_twin_with_our_weights_gives_our_logits(keras_alexnet, our_alexnet):
    """Towers -> groups, the tower concat -> channel order, LRN inside each group: the same
    function, not just the same parameter count."""
    g, sess, _ = our_alexnet
    p = {k: sess.run(v) for k, v in g.net.params.items()}
    def both(name, key, axis=-1):
        return np.concatenate([p[(name, t)][key] for t in (0, 1) if (name, t) in p], axis)
    dense_and_conv = [layer for layer in keras_alexnet.layers if layer.weights]
    names = ['conv1', 'conv2', 'conv3', 'conv4', 'conv5', 'fc6', 'fc7', 'fc8']
    assert len(dense_and_conv) == len(names)
    for layer, name in zip(dense_and_conv, names):
        layer.set_weights([both(name, 'w'), both(name, 'b')])
    x = (np.random.RandomState(0).randn(2, 227, 227, 3) * 60).astype(np.float32)
    ours = sess.run(g.logits, {g.images: x})
    theirs = np.asarray(keras_alexnet.predict_on_batch(x))
    assert ours.shape == theirs.shape == (2, 1000)
    scale = np.abs(ours).max()
    assert scale > 0
    np.testing.assert_allclose(theirs, ours, rtol=1e-3, atol=1e-4 * scale)


def command_cases():
    # alexnet also reports the one-tower twin (half a minute: under -m slow with the smallest
    # model's keys checked by default); --kernels times each CPU formulation flipped, a graph
    # each (most of a minute), also under -m slow
    small = smallest_model()
    return [pytest.param(small, False)] + \
        [pytest.param('alexnet', k, marks=pytest.mark.slow) for k in (False, True)
         if (k or small != 'alexnet')]


@pytest.mark.parametrize('model, kernels', command_cases())
def test_bench_command_prints_every_key(model, kernels):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    args = [sys.executable, '-m', 'alexnet_tf1.bench', '--model', model, '--batch-size', '2',
            '--steps', '2', '--warmup', '1', '--gpus', 'cpu', '--matmul-size', '128',
            '--no-data', '--profile', '5', '--json'] + (['--kernels'] if kernels else [])
    # the timeout only guards against a hang; nothing here measures speed
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    missing = [k for k in KEYS + (ALEXNET_KEYS if model == 'alexnet' else ()) if k not in out]
    assert not missing
    assert out['model'] == model and out['batch_size'] == 2 and out['steps'] == 2
    assert out['devices'] and all(d.startswith('/cpu:') for d in out['devices'])
    for k in ('forward_ms', 'train_ms', 'train_images_per_s', 'gflops_per_image', 'peak_rss_mb',
              'machine_matmul_gflops', 'train_fraction_of_matmul_peak',
              'eval_images_per_s_10crop'):
        assert out[k] > 0, k
    assert out['train_images_per_s'] == pytest.approx(2 / (out['train_ms'] / 1000), rel=0.01)
    s = out['train_ms_spread']
    assert s['min'] <= s['median'] == out['train_ms'] <= s['max']
    assert out['xla'] is False and out['mixed_precision'] is False and out['data'] is None
    # the traced step: per op type and per layer, heaviest first, the shares of one total
    prof = out['profile']
    assert 0 < len(prof['by_op_type']) <= 5 and 0 < len(prof['by_layer']) <= 5
    ms = [row['ms'] for row in prof['by_op_type']]
    assert ms == sorted(ms, reverse=True) and sum(ms) <= prof['op_time_sum_ms'] + 0.5
    assert 0 < sum(row['share'] for row in prof['by_op_type']) <= 1.001
    # what it ran on: against /proc/cpuinfo and os.cpu_count(), read here
    m = out['machine']
    assert m['logical_cpus'] == os.cpu_count() and m['cpu_model'] == _first_model_name()
    family = _cpuinfo_first('cpu family')
    assert m['cpu_id']['family'] == (int(family) if family and family.isdigit() else None)
    assert m['isa_path'] in ('AVX-512', 'AVX2', 'below AVX2')
    assert m['tensorflow'] and m['tf_intra_op_threads'] >= 1 and m['tf_inter_op_threads'] >= 1
    assert m['matmul_interquartile_spread'] >= 0 and isinstance(m['other_load'], bool)
    assert m['others_busy_before'] is None or 0 <= m['others_busy_before'] <= 1
    if model == 'alexnet':
        assert out['gflops_per_image'] == pytest.approx(1.449, abs=0.001)
    assert out['eval_images_per_s_10crop'] == pytest.approx(2 / 10 / (out['forward_ms'] / 1000),
                                                            rel=0.02)
    if out['keras_predict_ms'] is not None:
        assert out['eval_speedup_vs_keras_predict'] == pytest.approx(
            out['keras_predict_ms'] / out['eval_forward_ms'], rel=0.01)
    if out['keras_train_ms'] is not None:
        assert out['train_speedup_vs_keras'] == pytest.approx(
            out['keras_train_ms'] / out['train_ms'], rel=0.01)
        assert out['forward_speedup_vs_keras'] == pytest.approx(
            out['keras_forward_ms'] / out['forward_ms'], rel=0.01)
    else:
        assert out['train_speedup_vs_keras'] is None
    avx512 = {'avx512f', 'avx512bw', 'avx512vl', 'avx512dq'} <= _cpu_flags() and \
        os.environ.get('ONEDNN_MAX_CPU_ISA', 'ALL').upper().startswith(('ALL', 'AVX512'))
    if kernels:
        # --kernels: each CPU formulation AlexNet contains, ours' setting as the ISA rule says
        # (/proc/cpuinfo read here), timed flipped in the same run
        want = {'fc_batched': 'on' if avx512 else 'off', 'lrn_xla': 'on',
                'conv_bias_apart': 'on', 'conv3x3_winograd': 'off' if avx512 else 'on'}
        if avx512:      # on AVX2 Winograd takes every 3x3 layer: NCHW has none left to change
            want['conv3x3_nchw'] = 'off'
        assert {c: k['ours'] for c, k in out['kernel_choices'].items()} == want
        for k in out['kernel_choices'].values():
            assert k['flipped_train_ms'] > 0 and k['train_speedup_vs_flipped'] == pytest.approx(
                k['flipped_train_ms'] / out['train_ms'], rel=0.01)
    if model == 'alexnet':
        # said in the JSON and its notes: the share then counts the direct convolution's FLOPs
        assert ('conv3x3_winograd' in out['cpu_formulations']) == (not avx512) == \
            any('Winograd' in n for n in out['notes'])
        assert out['keras_one_tower_train_ms'] > 0
        # which op type leads moves with the machine's load; conv and fc layers hold the FLOPs
        assert any(row['layer'].startswith(('conv', 'fc')) for row in prof['by_layer'])
        assert out['train_speedup_vs_keras_one_tower'] == pytest.approx(
            out['keras_one_tower_train_ms'] / out['train_ms'], rel=0.01)


def _cpuinfo_first(key):
    with open('/proc/cpuinfo') as f:
        return next((line.split(':', 1)[1].strip() for line in f
                     if line.split(':')[0].strip() == key), None)


def _first_model_name():
    return _cpuinfo_first('model name')


@pytest.mark.parametrize('vendor, family, model, core', [
    ('AuthenticAMD', '25', '1', 'Zen 3'), ('AuthenticAMD', '25', '17', 'Zen 4'),
    ('AuthenticAMD', '25', '97', 'Zen 4'), ('AuthenticAMD', '26', '2', 'Zen 5'),
    ('GenuineIntel', '6', '143', None)])
def test_cpu_id_names_the_amd_core_the_model_name_hides(vendor, family, model, core, monkeypatch):
    from alexnet_tf1.bench import machine
    from alexnet_tf1.nn import cpu_kernels
    monkeypatch.setattr(cpu_kernels, 'cpuinfo', lambda: {
        'vendor_id': vendor, 'cpu family': family, 'model': model})
    assert machine.cpu_id() == {'vendor': vendor, 'family': int(family), 'model': int(model),
                                'core': core}


def _cpu_flags():
    return set(_cpuinfo_first('flags').split())


@pytest.mark.skipif(not os.path.exists('/proc/cpuinfo'), reason='reads /proc/cpuinfo')
def test_onednn_reports_the_isa_path_we_name(monkeypatch):
    # oneDNN's own verbose line, from a child process, against machine.isa_path() under the cap
    from alexnet_tf1.bench import machine
    if 'avx2' not in _cpu_flags():
        pytest.skip('no AVX2 on this CPU')
    monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', 'AVX2')
    machine.onednn.cache_clear()
    try:
        d = machine.onednn()
    finally:
        machine.onednn.cache_clear()
    assert machine.isa_path() == 'AVX2'
    assert re.fullmatch(r'\d+\.\d+(\.\d+)?', d['version'])
    assert 'AVX2' in d['isa'] and 'AVX-512' not in d['isa']
    assert d['threads'] >= 1


@pytest.mark.skipif(not os.path.exists('/proc/cpuinfo'), reason='reads /proc/cpuinfo')
@pytest.mark.parametrize('cap', ['ALL', 'AVX512_CORE_BF16'])
def test_onednn_reports_the_bf16_path_we_name(cap, monkeypatch):
    # oneDNN's verbose ISA line says 'bfloat16' where it has bf16 arithmetic, 'AMX with
    # bfloat16' where that runs on the tiles
    from alexnet_tf1.bench import machine
    if 'avx512_bf16' not in _cpu_flags():
        pytest.skip('no AVX512_BF16 on this CPU')
    monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', cap)
    machine.onednn.cache_clear()
    try:
        isa = machine.onednn()['isa']
    finally:
        machine.onednn.cache_clear()
    assert 'bfloat16' in isa
    want = 'AMX' if 'AMX with bfloat16' in isa else 'AVX512_BF16'
    assert machine.bf16_path() == want
    assert machine.line(dict(_MACHINE, bf16_path=machine.bf16_path())).count(f'bf16 path {want} ') == 1


_MACHINE = {'cpu_model': 'CPU', 'cpu_id': None, 'logical_cpus': 2, 'isa_path': 'AVX-512',
            'onednn_version': '3', 'onednn_isa': 'isa', 'onednn_threads': 2, 'tensorflow': '2',
            'tf_intra_op_threads': 2, 'tf_inter_op_threads': 2, 'others_busy_before': 0.0,
            'matmul_interquartile_spread': 0.01, 'other_load': False}


def test_nchw_on_cpu_is_refused_in_one_line(capsys):
    from alexnet_tf1.bench import report as bench
    assert bench.main(['--gpus', 'cpu', '--data-format', 'NCHW', '--no-data']) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error:') and 'NCHW' in err and '\n' not in err


# LeCun et al. 1998, section II.B: connections of C1 (122,304), C5 (48,120) and F6 (10,164)
# less one bias connection per output; the Keras-tutorial LeNet's C3 reads all six maps of S2
# (10x10x16 outputs, 5x5x6 each), its output layer is a 84 -> 10 product.
LENET5_RELU_FLOPS = {'C1': 2 * (122_304 - 28 * 28 * 6), 'C3': 2 * 10 * 10 * 16 * 5 * 5 * 6,
                     'C5': 2 * (48_120 - 120), 'F6': 2 * (10_164 - 84), 'output': 2 * 84 * 10}

# Szegedy et al. 2014, Table 1, typed in: (output side, input maps, #1x1, #3x3 reduce, #3x3,
# #5x5 reduce, #5x5, pool proj, the paper's "ops" in millions of multiply-adds).
GOOGLENET_TABLE = {
    'inception_3a': (28, 192, 64, 96, 128, 16, 32, 32, 128),
    'inception_3b': (28, 256, 128, 128, 192, 32, 96, 64, 304),
    'inception_4a': (14, 480, 192, 96, 208, 16, 48, 64, 73),
    'inception_4b': (14, 512, 160, 112, 224, 24, 64, 64, 88),
    'inception_4c': (14, 512, 128, 128, 256, 24, 64, 64, 100),
    'inception_4d': (14, 512, 112, 144, 288, 32, 64, 64, 119),
    'inception_4e': (14, 528, 256, 160, 320, 32, 128, 128, 170),
    'inception_5a': (7, 832, 256, 160, 320, 32, 128, 128, 54),
    'inception_5b': (7, 832, 384, 192, 384, 48, 128, 128, 71),
}


def googlenet_flops():
    """{row: (FLOPs from the table's columns, the paper's ops x 2 or None)} of GoogLeNet."""
    rows = {'conv1': (2 * 112 * 112 * 64 * 7 * 7 * 3, None),     # see the test's docstring
            'conv2_reduce': (2 * 56 * 56 * 64 * 1 * 1 * 64, None),
            'conv2': (2 * 56 * 56 * 192 * 3 * 3 * 64, None),
            'classifier': (2 * 1024 * 1000, 2 * 1e6)}
    for name, (hw, c, n1, r3, n3, r5, n5, pp, ops) in GOOGLENET_TABLE.items():
        macs = hw * hw * (c * n1 + c * r3 + 9 * r3 * n3 + c * r5 + 25 * r5 * n5 + c * pp)
        rows[name] = (2 * macs, 2 * ops * 1e6)
    return rows


def test_lenet5_relu_flops_are_the_papers_connections():
    from alexnet_tf1.bench import flops, keras_twins
    total, per_op = flops.forward_flops('lenet5-relu', by_layer=True)
    assert by_layer(per_op) == LENET5_RELU_FLOPS
    assert total == sum(LENET5_RELU_FLOPS.values()) == 833_040
    assert flops.keras_forward_flops(keras_twins.get('lenet5-relu')()) == total


def test_googlenet_flops_are_table_1s():
    """Each row's count from Table 1's columns, next to the paper's ops column (rounded to 1M
    and 1%). Two rows of the paper disagree with their own columns and are left out of that
    comparison: conv1 (2.7K params, 34M ops, where 7x7x3x64 is 9.4K) and 5a (1072K params,
    where its columns give 1018K); their count comes from the columns, as for the others."""
    from alexnet_tf1.bench import flops, keras_twins
    rows = googlenet_flops()
    for name, (ours, paper) in rows.items():
        if paper is not None and name != 'inception_5a':
            assert abs(ours - paper) <= max(0.01 * paper, 2 * 0.5e6), name
    # the 3x3 row (a 1x1 reduce then the 3x3): 360M ops in the paper
    assert (rows['conv2_reduce'][0] + rows['conv2'][0]) / 2 == pytest.approx(360e6, rel=0.01)
    total, per_op = flops.forward_flops('googlenet', by_layer=True)
    assert by_layer(per_op) == {name: f for name, (f, _) in rows.items()}
    model = keras_twins.get('googlenet')()
    assert flops.keras_forward_flops(model.forward_model) == total
    # "a computational budget of 1.5 billion multiply-adds at inference time" (section 5)
    assert total / 2 == pytest.approx(1.5e9, rel=0.06)


def test_model_without_twin_has_no_keras_builder():
    from alexnet_tf1.bench import keras_twins
    assert keras_twins.get('alexnet') is keras_twins.alexnet
    assert keras_twins.get('lenet5') is None            # the paper's RBF LeNet-5: no Keras twin
