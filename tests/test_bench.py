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

# SPEC.md section 1, typed in: (name, Ho, Wo, Cout, k, Cin each kernel reads) per tower for
# the convolutions, (name, in, out) per tower for the fc layers; towers side by side.
TWO_TOWERS_CONV = [('conv1', 55, 55, 48, 11, 3), ('conv2', 27, 27, 128, 5, 48),
                   ('conv3', 13, 13, 192, 3, 256), ('conv4', 13, 13, 192, 3, 192),
                   ('conv5', 13, 13, 128, 3, 192)]
TWO_TOWERS_FC = [('fc6', 9216, 2048), ('fc7', 4096, 2048), ('fc8', 4096, 500)]
# one tower: the same layers, every convolution reading all of the previous layer's maps
ONE_TOWER_CONV = [('conv1', 55, 55, 96, 11, 3), ('conv2', 27, 27, 256, 5, 96),
                  ('conv3', 13, 13, 384, 3, 256), ('conv4', 13, 13, 384, 3, 384),
                  ('conv5', 13, 13, 256, 3, 384)]
ONE_TOWER_FC = [('fc6', 9216, 4096), ('fc7', 4096, 4096), ('fc8', 4096, 1000)]


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
    # the typed-in table itself against SPEC.md's rounded figures
    assert spec_flops(TWO_TOWERS_CONV, TWO_TOWERS_FC, 2) == pytest.approx(1.45e9, rel=0.01)
    assert spec_flops(ONE_TOWER_CONV, ONE_TOWER_FC, 1) == pytest.approx(2.27e9, rel=0.01)


def test_alexnet_two_towers_is_1_45_gflops_per_image():
    from alexnet_tf1 import flops
    total, per_op = flops.forward_flops('alexnet', by_layer=True)
    assert total == pytest.approx(1.45e9, rel=0.01)
    assert total == spec_flops(TWO_TOWERS_CONV, TWO_TOWERS_FC, 2)
    # every layer of both towers was counted, fc8 once (all of it on tower 0)
    assert len(per_op) == 15


def test_grouped_layers_save_36_percent_against_one_tower():
    from alexnet_tf1 import flops, keras_twins
    one = flops.keras_forward_flops(keras_twins.alexnet_one_tower())
    assert one == pytest.approx(2.27e9, rel=0.01)
    assert one == spec_flops(ONE_TOWER_CONV, ONE_TOWER_FC, 1)
    two = flops.keras_forward_flops(keras_twins.alexnet())
    assert two == flops.forward_flops('alexnet')        # the same rule over Keras layers
    assert 1 - two / one == pytest.approx(0.36, abs=0.01)


@pytest.fixture(scope='module')
def keras_alexnet():
    from alexnet_tf1 import keras_twins
    return keras_twins.alexnet()


@pytest.fixture(scope='module')
def our_alexnet():
    from alexnet_tf1 import config, devices, graph
    from alexnet_tf1.tf_compat import session, tf1
    placement = devices.resolve('cpu')
    g = graph.build(config.ModelConfig(), placement, train=False)
    sess = session(g.graph, placement.session_config())
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
        n = sum(int(np.prod(v.shape)) for v in tf1.trainable_variables())
    yield g, sess, n
    sess.close()


def test_keras_groups2_twin_has_our_parameter_count(keras_alexnet, our_alexnet):
    from alexnet_tf1 import keras_twins
    assert keras_twins.trainable_params(keras_alexnet) == 60_965_224
    assert our_alexnet[2] == 60_965_224
    import keras
    grouped = [layer for layer in keras_alexnet.layers
               if isinstance(layer, keras.layers.Conv2D) and layer.groups == 2]
    assert len(grouped) == 3                                        # conv2, conv4, conv5


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


def command_models():
    return sorted({smallest_model(), 'alexnet'})    # alexnet also reports the one-tower twin


@pytest.mark.parametrize('model', command_models())
def test_bench_command_prints_every_key(model):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    args = [sys.executable, '-m', 'alexnet_tf1.bench', '--model', model, '--batch-size', '2',
            '--steps', '2', '--warmup', '1', '--gpus', 'cpu', '--matmul-size', '128',
            '--no-data', '--profile', '5', '--json'] + (['--kernels'] if model == 'alexnet' else [])
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
    # what it ran on (issue 17): against /proc/cpuinfo and os.cpu_count(), read here
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
    if model == 'alexnet':
        # --kernels: each CPU formulation AlexNet contains, ours' setting as the ISA rule says
        # (/proc/cpuinfo read here), timed flipped in the same run
        avx512 = {'avx512f', 'avx512bw', 'avx512vl', 'avx512dq'} <= _cpu_flags() and \
            os.environ.get('ONEDNN_MAX_CPU_ISA', 'ALL').upper().startswith(('ALL', 'AVX512'))
        want = {'fc_batched': 'on' if avx512 else 'off', 'lrn_xla': 'on',
                'conv_bias_apart': 'on', 'conv3x3_winograd': 'off' if avx512 else 'on'}
        if avx512:      # on AVX2 Winograd takes every 3x3 layer: NCHW has none left to change
            want['conv3x3_nchw'] = 'off'
        assert {c: k['ours'] for c, k in out['kernel_choices'].items()} == want
        # said in the JSON and its notes: the share then counts the direct convolution's FLOPs
        assert ('conv3x3_winograd' in out['cpu_formulations']) == (not avx512) == \
            any('Winograd' in n for n in out['notes'])
        for k in out['kernel_choices'].values():
            assert k['flipped_train_ms'] > 0 and k['train_speedup_vs_flipped'] == pytest.approx(
                k['flipped_train_ms'] / out['train_ms'], rel=0.01)
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
    from alexnet_tf1 import machine
    monkeypatch.setattr(machine, '_cpuinfo_fields', lambda *names: {
        'vendor_id': vendor, 'cpu family': family, 'model': model})
    assert machine.cpu_id() == {'vendor': vendor, 'family': int(family), 'model': int(model),
                                'core': core}


def _cpu_flags():
    return set(_cpuinfo_first('flags').split())


@pytest.mark.skipif(not os.path.exists('/proc/cpuinfo'), reason='reads /proc/cpuinfo')
def test_onednn_reports_the_isa_path_we_name(monkeypatch):
    # oneDNN's own verbose line, from a child process, against machine.isa_path() under the cap
    from alexnet_tf1 import machine
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


def test_nchw_on_cpu_is_refused_in_one_line(capsys):
    from alexnet_tf1 import bench
    assert bench.main(['--gpus', 'cpu', '--data-format', 'NCHW', '--no-data']) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error:') and 'NCHW' in err and '\n' not in err


@pytest.mark.parametrize('name', ['lenet5-relu', 'googlenet'])
def test_twin_counts_the_flops_our_graph_counts(name):
    from alexnet_tf1 import flops, keras_twins, models
    if name not in models.MODELS:
        pytest.skip(f'{name} is not registered yet')
    model = keras_twins.get(name)()
    assert flops.keras_forward_flops(getattr(model, 'forward_model', model)) == \
        flops.forward_flops(name)


def test_model_without_twin_has_no_keras_builder():
    from alexnet_tf1 import keras_twins
    assert keras_twins.get('alexnet') is keras_twins.alexnet
    assert keras_twins.get('lenet5') is None            # the paper's RBF LeNet-5: no Keras twin
