"""The README's first command, end to end (slow: minutes; run with pytest -m slow)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_default_run_learns_the_sample_set_to_at_most_30_percent_10crop_error(tmp_path):
    td = str(tmp_path / 'alexnet')
    subprocess.run([sys.executable, 'run_train.py', '--train-dir', td, '--gpus', 'cpu'],
                   cwd=ROOT, check=True)
    subprocess.run([sys.executable, 'run_eval.py', '--train-dir', td, '--gpus', 'cpu'],
                   cwd=ROOT, check=True)
    result = json.load(open(os.path.join(td, 'eval.json')))
    assert result['dataset'] == 'sample' and result['n_images'] == 200
    assert result['top1_error_10crop'] <= 30.0
