"""run_eval.py: restored logits, 10-crop averaging, eval.json, and its one-line errors."""
import json
import os

import numpy as np
import pytest

import run_eval
from alexnet_tf1.training import checkpoints
from alexnet_tf1.evaluation import evaluate
from alexnet_tf1.config import ModelConfig
from alexnet_tf1.data.reader import open_prepared
from tiny_run import CROP, tiny_prepared, trained_run


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    return trained_run(tmp_path_factory, 'eval', 1)


def test_restored_checkpoint_reproduces_the_logits_of_the_session_that_saved_it(tmp_path):
    from alexnet_tf1 import devices
    from alexnet_tf1.training import graph
    from alexnet_tf1.training.checkpoints import Checkpoints
    from alexnet_tf1.tf_compat import session, tf1
    cfg = ModelConfig(num_classes=3, input_size=CROP)
    placement = devices.resolve('cpu')
    g = graph.build(cfg, placement, seed=4)
    ck = Checkpoints(g.graph, str(tmp_path))
    sess = session(g.graph, placement.session_config())
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
    x = np.random.default_rng(1).normal(0, 50, (5, CROP, CROP, 3)).astype(np.float32)
    sess.run(g.train_op, {g.images: x, g.labels: [0, 1, 2, 0, 1], g.lr: 0.01, g.training: True})
    want = sess.run(g.logits, {g.images: x})
    path = ck.save(sess, {'model': 'alexnet', 'config': cfg.to_dict(), 'global_step': 1})
    got = evaluate.Restored(path, 'cpu').logits(x)
    np.testing.assert_array_equal(got, want)


class FakeModel:
    """probs of a crop = softmax of its three channel means: a known function of the pixels."""
    config = ModelConfig(input_size=CROP)
    state = {'global_step': 7}
    path = '/x/model.ckpt-7'

    def probs(self, x, batch=None):
        m = x.mean(axis=(1, 2)) / 10
        e = np.exp(m - m.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)


class FakeDense(FakeModel):
    """A dense-evaluating model whose map score depends on where the pixels are (left half
    weighs double), so a missing or wrong mirror changes the result."""
    dense = True

    def dense_probs(self, x):
        w = x.shape[2] // 2
        return self.probs(np.concatenate([x[:, :, :w], x[:, :, :w], x[:, :, w:]], 2))


def test_dense_score_averages_the_softmax_of_the_whole_image_and_its_mirror(tmp_path):
    data = open_prepared(tiny_prepared(str(tmp_path), classes=3, n_val=5))
    imgs = data.split('val').take(np.arange(5)).astype(np.float32) - data.mean
    labels = data.split('val').labels
    model = FakeDense()
    p = (model.dense_probs(imgs) + model.dense_probs(imgs[:, :, ::-1])) / 2
    r = evaluate.evaluate(model, data, batch_size=8)
    assert r['top1_error_dense'] == pytest.approx(np.mean(p.argmax(1) != labels) * 100)
    assert r['dense_scale'] == imgs.shape[2]
    assert 'dense, Q = %d' % imgs.shape[2] in evaluate.report(r, ())


def test_ten_crop_score_is_the_average_softmax_over_the_papers_ten_crops(tmp_path):
    data = open_prepared(tiny_prepared(str(tmp_path), classes=3, n_val=5))
    imgs, labels = data.split('val').take(np.arange(5)).astype(np.float32), data.split('val').labels
    imgs -= data.mean
    h, c = imgs.shape[1], CROP
    corners = [(0, 0), (0, h - c), (h - c, 0), (h - c, h - c), ((h - c) // 2, (h - c) // 2)]
    crops = np.stack([imgs[:, y:y + c, x:x + c] for y, x in corners], 1)
    crops = np.concatenate([crops, crops[:, :, :, ::-1]], 1)          # mirrored: same means
    p = FakeModel().probs(crops.reshape(-1, c, c, 3)).reshape(5, 10, 3)
    want10 = np.mean(p.mean(1).argmax(1) != labels) * 100
    want1 = np.mean(p[:, 4].argmax(1) != labels) * 100
    p1, p10, _, crops = evaluate.crop_probs(FakeModel(), data, batch_size=2)
    assert crops == 10
    np.testing.assert_allclose(p10, p.mean(1), rtol=1e-5)
    np.testing.assert_allclose(p1, p[:, 4], rtol=1e-5)
    assert not np.allclose(p10, p1, rtol=1e-3)           # the corners weigh in
    r = evaluate.evaluate(FakeModel(), data, batch_size=2)
    assert r['top1_error_10crop'] == pytest.approx(want10)
    assert r['top1_error_1crop'] == pytest.approx(want1)
    assert r['n_images'] == 5 and r['top5_error_10crop'] == 0.0      # 3 classes: always in top 5


def test_topk_errors_against_hand_counted_cases():
    probs = np.array([[.1, .2, .3, .4, .0, .0], [.5, .2, .1, .1, .05, .05], [.0, .01, .02, .03, .1, .84]])
    assert evaluate.topk_errors(probs, [3, 1, 0], k=5) == pytest.approx((200 / 3, 100 / 3))


def test_eval_writes_eval_json_beside_the_checkpoint(trained, capsys):
    data, td = trained
    assert run_eval.main(['--train-dir', td, '--gpus', 'cpu']) == 0
    out = capsys.readouterr().out
    assert 'paper, 1 CNN, 10 crops' in out and 'not comparable' in out
    path = checkpoints.latest(td)
    result = json.load(open(os.path.join(os.path.dirname(path), 'eval.json')))
    assert set(result) == {'model', 'checkpoint', 'global_step', 'dataset', 'n_images',
                           'top1_error_1crop', 'top5_error_1crop', 'top1_error_10crop',
                           'top5_error_10crop', 'crops', 'run', 'eval_seconds', 'eval_images_per_s',
                           'precision'}
    assert result['precision'] == 'fp32'        # the run's own (tests/test_bf16.py: bf16)
    assert result['eval_images_per_s'] == pytest.approx(6 / result['eval_seconds'], rel=0.02)
    assert 'images/s with both crop sets' in out
    assert result['global_step'] == 2 and result['n_images'] == 6 and result['dataset'] == 'tiny'
    assert result['crops'] == 10 and result['run']['epoch'] == 1
    assert result['run']['last_val_top1_error'] == checkpoints.val_error(checkpoints.read_state(path))
    assert f'scoring {path}: alexnet, step 2, epoch 1' in out
    assert all(0 <= result[k] <= 100 for k in result if k.endswith('crop'))


def test_eval_json_that_cannot_be_written_is_one_line_after_the_figures(trained, tmp_path,
                                                                       capsys, monkeypatch):
    data, td = trained
    out_path = str(tmp_path / 'no_room' / 'eval.json')
    def full(path, obj):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(evaluate, 'atomic_write_json', full)
    code = run_eval.main(['--train-dir', td, '--gpus', 'cpu', '--out', out_path])
    captured = capsys.readouterr()
    assert code == 2 and 'top-1' in captured.out         # the figures were printed first
    assert captured.err.strip().splitlines() == [
        f'error: cannot write {out_path} (No space left on device); the figures above are the '
        f'whole result']


def test_images_flag_prints_top5_names_and_writes_a_sheet(trained, tmp_path, capsys):
    import imageio.v3 as iio
    data, td = trained
    pic = str(tmp_path / 'mine.png')
    iio.imwrite(pic, np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    bad = str(tmp_path / 'bad.jpg')
    open(bad, 'w').write('not a picture')
    sheet = str(tmp_path / 'sheet.png')
    assert run_eval.main(['--train-dir', td, '--gpus', 'cpu', '--images', pic, bad,
                          '--sheet', sheet]) == 0
    out = capsys.readouterr().out
    assert 'class 0' in out and 'class 1' in out and 'skipped' in out
    assert iio.imread(sheet).shape[0] > 0


def test_missing_checkpoint_is_a_one_line_error(tmp_path, capsys):
    assert run_eval.main(['--train-dir', str(tmp_path / 'none')]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_checkpoint_of_another_model_is_a_one_line_error(trained, capsys):
    data, td = trained
    assert run_eval.main(['--train-dir', td, '--model', 'vgg-d']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'not vgg-d' in err[0]


def test_eval_scores_published_weights_given_with_init_from(tmp_path, capsys):
    from alexnet_tf1 import devices
    from alexnet_tf1.training import graph
    from alexnet_tf1.weights import importers
    from alexnet_tf1.tf_compat import session, tf1
    data = tiny_prepared(str(tmp_path))
    cfg = ModelConfig(num_classes=1000, input_size=CROP)
    placement = devices.resolve('cpu')
    g = graph.build(cfg, placement, train=False)
    sess = session(g.graph, placement.session_config())
    with g.graph.as_default():
        sess.run(tf1.global_variables_initializer())
    npy = str(tmp_path / 'bvlc_alexnet.npy')
    importers.export_caffe_alexnet_npy(sess, g.net, npy)
    # the importer asks the graph for the 227 input's shapes unless told the size: tell it
    import alexnet_tf1.config as config_mod
    old = config_mod.MODEL_DEFAULTS['alexnet']
    config_mod.MODEL_DEFAULTS['alexnet'] = dict(input_size=CROP)
    try:
        assert run_eval.main(['--init-from', npy, '--model', 'alexnet', '--data-dir', data,
                              '--gpus', 'cpu']) == 0
    finally:
        config_mod.MODEL_DEFAULTS['alexnet'] = old
    result = json.load(open(str(tmp_path / 'eval.json')))
    assert result['checkpoint'] == npy and result['n_images'] == 6
    # 1000 classes in the file, 2 in the data: the random fc8 is scored, and said so
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith('note: left')]
    assert len(notes) == 1 and 'fc8' in notes[0]
