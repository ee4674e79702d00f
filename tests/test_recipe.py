"""The recipe's parts: warm-up and cosine rates, the loss-spike watch, translations, the input
scale, mirrors left out of digit evaluation, and run_eval's word on the checkpoint it scores."""
import math
import os

import numpy as np
import pytest

import run_eval
from alexnet_tf1 import checkpoints, devices, graph
from alexnet_tf1.config import defaults_for
from alexnet_tf1.data import pipeline
from alexnet_tf1.progress import LossWatch
from alexnet_tf1.schedule import Schedule
from alexnet_tf1.tf_compat import session, tf1
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
    from alexnet_tf1.evaluate import n_crops
    assert presets.PRESETS['lenet5']['flip'] is False
    assert presets.PRESETS['alexnet']['flip'] is True
    assert n_crops({'flip': False}) == 5 and n_crops({}) == 10


@pytest.fixture(scope='module')
def two_epochs(tmp_path_factory):
    return trained_run(tmp_path_factory, 'best', 2)


def test_run_eval_names_the_checkpoint_and_points_to_a_clearly_better_best(two_epochs, capsys,
                                                                           monkeypatch):
    data, td = two_epochs
    latest = checkpoints.latest(td)
    best = checkpoints.latest(os.path.join(td, 'best'))
    errors = {latest: 0.5, best: 0.1}
    real = checkpoints.read_state

    def read_state(path):          # as if the last epoch went wrong: its error far above best's
        state = real(path)
        state['history'] = [{'val_top1_error': errors.get(path, 0.5)}]
        return state
    monkeypatch.setattr(checkpoints, 'read_state', read_state)
    if os.path.basename(best) == os.path.basename(latest):
        pytest.skip('the last epoch was also the best')
    assert checkpoints.better_best(latest, read_state(latest), td) == (best, 0.1, 0.5)
    errors[best] = 0.49
    assert checkpoints.better_best(latest, read_state(latest), td) is None   # within the margin


def test_checkpoint_best_scores_the_best_directory(two_epochs, capsys):
    data, td = two_epochs
    assert run_eval.main(['--train-dir', td, '--checkpoint', 'best', '--gpus', 'cpu']) == 0
    out = capsys.readouterr().out
    best = checkpoints.latest(os.path.join(td, 'best'))
    assert f'scoring {best}' in out
    assert checkpoints.resolve('best', td) == best
