"""Files the project writes reach the disk before their name does: each is written whole
under a temporary name, fsync'ed, then renamed (io_util.atomic_write), so that after a kill or
a power loss a prepared shard, run.json or eval.json is the old file or the new one, never a
part. Checked on the real write paths by recording the calls, in order."""
import os

import numpy as np
import pytest
from PIL import Image

from alexnet_tf1.training import checkpoints

from alexnet_tf1.evaluation import evaluate
from alexnet_tf1.data import prepare
from alexnet_tf1.tf_compat import session, tf, tf1


@pytest.fixture
def calls(monkeypatch):
    """[('fsync', file, its size then) | ('rename', source, destination, source's size)]."""
    log = []
    real_fsync, real_replace, real_rename = os.fsync, os.replace, os.rename

    def fsync(fd):
        log.append(('fsync', os.readlink(f'/proc/self/fd/{fd}'), os.fstat(fd).st_size))
        return real_fsync(fd)

    def renamer(real):
        def rename(src, dst, *args, **kwargs):
            log.append(('rename', os.path.abspath(src), os.path.abspath(dst),
                        os.stat(src).st_size))
            return real(src, dst, *args, **kwargs)
        return rename
    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(os, 'replace', renamer(real_replace))
    monkeypatch.setattr(os, 'rename', renamer(real_rename))
    return log


def assert_synced_then_renamed(log, path):
    """`path` got its present content by a rename of a file fsync'ed whole before it."""
    path = os.path.abspath(path)
    renames = [i for i, c in enumerate(log) if c[0] == 'rename' and c[2] == path]
    assert renames, f'{path} was not written by a rename'
    i = renames[-1]
    _, src, _, size = log[i]
    assert ('fsync', src, size) in log[:i], f'{path}: {src} not fsync\'ed whole before its rename'
    assert size == os.path.getsize(path)


def files_under(root):
    return sorted(os.path.join(d, f) for d, _, names in os.walk(root) for f in names)


def test_every_file_of_a_prepared_directory_is_fsynced_before_its_rename(tmp_path, calls):
    rng = np.random.default_rng(0)
    for split, n in (('train', 3), ('val', 1)):
        for wnid in ('n00000001', 'n00000002'):
            os.makedirs(tmp_path / 'src' / split / wnid)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(
                    tmp_path / 'src' / split / wnid / f'{wnid}_{i}.JPEG', 'PNG')
    out = str(tmp_path / 'prepared')
    prepare.prepare(str(tmp_path / 'src'), out, workers=1, shard_size=2, size=16,
                    progress=False)
    written = files_under(out)
    # 6 training images in shards of 2: three shards; the val split's one; the contract's
    # files beside them; and the bookkeeping of each shard, all through the same path
    assert {'manifest.json', 'mean.npy', 'pca.npz', 'synsets.txt', 'train/images-00002.npy',
            'train/labels-00002.npy', 'val/images-00000.npy'} <= \
        {os.path.relpath(p, out) for p in written}
    for path in written:
        assert_synced_then_renamed(calls, path)


def test_run_json_and_eval_json_are_fsynced_before_their_rename(tmp_path, calls):
    td = str(tmp_path / 'run')
    g = tf.Graph()
    with g.as_default():
        tf1.Variable(1.0, name='w')
        ck = checkpoints.Checkpoints(g, td)
        init = tf1.global_variables_initializer()
    sess = session(g, tf1.ConfigProto())
    sess.run(init)
    ckpt = ck.save(sess, {'global_step': 7, 'history': []}, best=True)
    sess.close()
    eval_json = evaluate.write_result({'checkpoint': ckpt, 'top1_error_1crop': 50.0})
    for path in (os.path.join(td, 'run.json'), os.path.join(td, 'best', 'run.json'),
                 eval_json):
        assert_synced_then_renamed(calls, path)
