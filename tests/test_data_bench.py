"""The input benchmark command runs end to end and reports every figure (no speed asserted)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = ('prepare_images_per_s', 'tf_decode_resize_images_per_s', 'augment_images_per_s_one_core',
        'prepare_vs_tf_ratio', 'n_images', 'tf_data_augment_images_per_s_one_core',
        'augment_vs_tf_data_ratio')


def test_bench_json_reports_positive_figures():
    if not os.path.isfile(os.path.join(ROOT, 'alexnet_tf1', 'data', 'decode.py')):
        pytest.skip('alexnet_tf1/data/decode.py does not exist yet (the bench times it)')
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''),
               TF_CPP_MIN_LOG_LEVEL='2')
    # the timeout only guards against a hang; nothing here measures speed
    r = subprocess.run([sys.executable, '-m', 'alexnet_tf1.bench.data', '--images', '4',
                        '--seconds', '0.2', '--json'], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(KEYS) <= set(out)
    for key, value in out.items():
        assert isinstance(value, (int, float)) and not isinstance(value, bool), key
        assert value > 0, key
    assert out['n_images'] == 4
    assert out['prepare_vs_tf_ratio'] == pytest.approx(
        out['prepare_images_per_s'] / out['tf_decode_resize_images_per_s'], rel=0.01)
    assert out['augment_vs_tf_data_ratio'] == pytest.approx(
        out['augment_images_per_s_one_core'] / out['tf_data_augment_images_per_s_one_core'],
        rel=0.01)


def test_bench_jpeg_sizes_look_like_imagenet():
    from alexnet_tf1.bench.data import jpeg_sizes
    sizes = np.array(jpeg_sizes(60))
    assert sizes.tolist() == np.array(jpeg_sizes(60)).tolist()        # deterministic
    w, h = sizes.mean(0)
    assert 330 < w < 470 and 300 < h < 420
    assert sizes.max() > 1000                                           # a large-photo tail
