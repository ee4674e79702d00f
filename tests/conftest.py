import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(scope='module', autouse=True)
def _free_module_dirs(request, tmp_path_factory):
    """Deletes the directories a module's fixtures made once the module passes.

    A run trains full-size AlexNet and VGG nets whose checkpoints are 0.3-1.6 GB each; kept to
    the end of the session they add up to ~17 GB and fill a CI machine's disk. Function-level
    `tmp_path` directories go with `tmp_path_retention_policy = failed` (pytest.ini); this does
    the same for module fixtures, keeping them when a test of the module failed.
    """
    base = tmp_path_factory.getbasetemp()
    before, failed = set(os.listdir(base)), request.session.testsfailed
    yield
    if request.session.testsfailed == failed:
        for name in set(os.listdir(base)) - before:
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
