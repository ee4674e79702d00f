"""The recipe's parts: warm-up and cosine rates, the loss-spike watch, translations, the input
scale, mirrors left out of digit evaluation, and run_eval's word on the checkpoint it scores."""
import json
import math
import os

import numpy as np
import pytest

import run_eval
from alexnet_tf1.training import checkpoints, graph
from alexnet_tf1 import devices
from alexnet_tf1.config import defaults_for
from alexnet_tf1.data import pipeline
from alexnet_tf1.progress import LossWatch
from alexnet_tf1.training.schedule import Schedule
from alexnet_tf1.tf_compat import session, tf, tf1
from tiny_run import trained_run


def test_warmup_rises_linearly_from_zero_then_cosine_falls_to_zero_at_the_last_epoch():
    s = Schedule(kind='cosine', lr=0.01, warmup_epochs=2, epochs=12)
    assert s.rate(0.5) == pytest.approx(0.01 * 0.5 * 0.25 * 2)     # a quarter of the way up
    assert s.rate(1.0) == pytest.approx(0.01 * 0.5 * (1 + math.cos(0)) * 0.5)
    assert s.rate(2.0) == pytest.approx(0.01)
    assert s.rate(7.0) == pytest.approx(0.005)                       # half-way down: cos(pi/2)
    assert s.rate(12.0) == pytest.approx(0.0, abs=1e-12)
    assert not s.end_epoch(3, 0.5) and s.lr == 0.01                  # cosine never drops


def test_warmup_multiplies_a_step_schedule_and_the_drops_still_come():
    s = Schedule(kind='step', lr=0.1, step_epochs=2, warmup_epochs=1)
    assert s.rate(0.25) == pytest.approx(0.025)
    assert s.rate(1.5) == pytest.approx(0.1)
    s.end_epoch(1, None)
    assert s.rate(2.5) == pytest.approx(0.01)
    assert Schedule.from_state(s.state()).rate(2.5) == pytest.approx(0.01)


def test_loss_watch_flags_a_jump_far_above_the_recent_median_and_nothing_else():
    w = LossWatch(window=20)
    rng = np.random.default_rng(0)
    flagged = [w.check(1.0 + 0.1 * rng.standard_normal()) for _ in range(40)]
    assert not any(f is not None for f in flagged)
    level = w.check(3.5)
    assert level == pytest.approx(np.percentile(w.recent[:-1], 90), abs=0.05) and level < 1.3
    small = LossWatch(window=20)
    for _ in range(20):
        small.check(0.01)
    assert small.check(0.9) is None            # 90x, but 0.89 nats: not a jump worth a word


def test_shift_moves_the_image_and_fills_with_the_mean():
    img = np.random.default_rng(0).normal(size=(6, 7, 2)).astype(np.float32)
    for dy, dx in [(1, -2), (-2, 0), (0, 3), (0, 0)]:
        want = np.zeros_like(img)
        for y in range(6):
            for x in range(7):
                if 0 <= y - dy < 6 and 0 <= x - dx < 7:
                    want[y, x] = img[y - dy, x - dx]
        np.testing.assert_array_equal(pipeline.shift_image(img.copy(), dy, dx), want)


def test_shifts_are_drawn_after_the_other_draws_so_they_stay_the_same():
    plain = pipeline.epoch_plan(50, 3, 1, 29, 29)
    shifted = pipeline.epoch_plan(50, 3, 1, 29, 29, shift=2)
    assert plain[5] is None
    for a, b in zip(plain[:5], shifted[:5]):
        np.testing.assert_array_equal(a, b)
    assert shifted[5].min() >= -2 and shifted[5].max() <= 2 and len(set(shifted[5].ravel())) == 5


def test_input_scale_is_the_same_as_feeding_scaled_pixels():
    x = np.random.default_rng(0).uniform(-128, 128, (3, 32, 32, 1)).astype(np.float32)
    logits = []
    for scale, feed in ((1.0, x * 0.005), (0.005, x)):
        cfg = defaults_for('lenet5-relu', input_scale=scale)
        g = graph.build(cfg, devices.resolve('cpu', towers=1), train=False, seed=1)
        sess = session(g.graph, devices.resolve('cpu', towers=1).session_config())
        with g.graph.as_default():
            sess.run(tf1.global_variables_initializer())
        logits.append(sess.run(g.logits, {g.images: feed}))
    np.testing.assert_allclose(logits[0], logits[1], rtol=1e-5, atol=1e-6)
    assert defaults_for('lenet5').input_scale == pytest.approx(1.275 / 255)
    assert defaults_for('alexnet').input_scale == 1.0


def test_lenet_presets_never_mirror_and_score_five_unmirrored_crops(tmp_path):
    from alexnet_tf1 import presets
    from alexnet_tf1.evaluation.evaluate import n_crops
    assert presets.PRESETS['lenet5']['flip'] is False
    assert presets.PRESETS['alexnet']['flip'] is True
    assert n_crops({'flip': False}) == 5 and n_crops({}) == 10


@pytest.fixture(scope='module')
def two_epochs(tmp_path_factory):
    return trained_run(tmp_path_factory, 'best', 2)


def write_checkpoint(src, train_dir, step, val_error, zero=''):
    """Checkpoint `src` written again as train_dir/model.ckpt-<step> by TF's own reader and
    Saver: its run_state's last validation error set to `val_error`, the variables of layer
    `zero` (both towers) set to zeros. Returns the prefix."""
    reader = tf.train.load_checkpoint(src)
    state = json.loads(reader.get_tensor('run_state'))
    history = state.get('history') or [{}]
    state.update(global_step=step, history=history[:-1] + [dict(history[-1],
                                                                  val_top1_error=val_error)])
    g = tf.Graph()
    with g.as_default():
        feeds, variables = {}, {}
        for name, dtype in reader.get_variable_to_dtype_map().items():
            value = (json.dumps(state).encode() if name == 'run_state'
                     else reader.get_tensor(name))
            if zero and name.split('/')[1:2] == [zero]:
                value = np.zeros_like(value)
            ph = tf1.placeholder(dtype, np.shape(value))
            variables[name] = tf1.Variable(ph, trainable=False)
            feeds[ph] = value
        os.makedirs(train_dir, exist_ok=True)
        with tf1.Session(graph=g) as sess:
            sess.run(tf1.global_variables_initializer(), feeds)
            return tf1.train.Saver(variables).save(
                sess, os.path.join(train_dir, 'model.ckpt'), global_step=step,
                write_meta_graph=False)


def test_run_eval_points_to_a_best_checkpoint_clearly_better_than_the_latest(two_epochs,
                                                                             tmp_path, capsys):
    """A run whose last epoch went wrong: best/ (step 3) scored 10% validation error, the
    latest (step 7) 50%, its classifier zeroed so that it calls every image class 0. run_eval
    scores the latest and says where the better one is; within 2 points it says nothing."""
    data, td = two_epochs
    trained = checkpoints.latest(td)
    run = str(tmp_path / 'run')
    best = write_checkpoint(trained, os.path.join(run, 'best'), 3, 0.10)
    latest = write_checkpoint(trained, run, 7, 0.50, zero='fc8')
    assert run_eval.main(['--train-dir', run, '--gpus', 'cpu']) == 0
    out = capsys.readouterr().out
    assert f'scoring {latest}: alexnet, step 7' in out and 'error 50.0% at its last epoch' in out
    assert (f'note: {best} scored 10.0% validation top-1 error against 50.0% for the latest; '
            f'run_eval.py --checkpoint best scores it') in out
    with open(os.path.join(run, 'eval.json')) as f:
        scored = json.load(f)
    # the latest is as bad as it says: half the balanced validation set is class 1
    assert scored['checkpoint'] == os.path.abspath(latest) and scored['top1_error_1crop'] == 50.0
    write_checkpoint(trained, os.path.join(run, 'best'), 3, 0.49)
    assert run_eval.main(['--train-dir', run, '--gpus', 'cpu']) == 0
    out = capsys.readouterr().out
    assert f'scoring {latest}' in out and best not in out and '--checkpoint best' not in out


def test_checkpoint_best_scores_the_best_directory(two_epochs, capsys):
    data, td = two_epochs
    assert run_eval.main(['--train-dir', td, '--checkpoint', 'best', '--gpus', 'cpu']) == 0
    out = capsys.readouterr().out
    best = checkpoints.latest(os.path.join(td, 'best'))
    assert f'scoring {best}' in out
    assert checkpoints.resolve('best', td) == best
