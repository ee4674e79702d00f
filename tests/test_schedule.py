"""The paper's plateau schedule, step by step against a hand-written trace."""
import pytest

from alexnet_tf1.training.schedule import Schedule


def test_plateau_divides_by_10_after_patience_epochs_without_improvement_three_times():
    s = Schedule(kind='plateau', lr=0.01, patience=2)
    # val error per epoch, and the rate after each epoch: improvement resets the count, two
    # epochs without one divide by 10; after the third drop the rate stays
    trace = [(0.50, 0.01), (0.40, 0.01), (0.41, 0.01), (0.40, 1e-3),    # 0.40 is not < 0.40
             (0.30, 1e-3), (0.35, 1e-3), (0.36, 1e-4), (0.37, 1e-4), (0.38, 1e-5),
             (0.39, 1e-5), (0.40, 1e-5), (0.41, 1e-5)]
    for epoch, (err, lr) in enumerate(trace):
        s.end_epoch(epoch, err)
        assert s.lr == pytest.approx(lr), (epoch, s.state())
    assert s.drops == 3 and s.best_error == 0.30


def test_plateau_state_round_trips_mid_count():
    s = Schedule(kind='plateau', lr=0.01, patience=2)
    for epoch, err in enumerate([0.5, 0.4, 0.45]):
        s.end_epoch(epoch, err)
    t = Schedule.from_state(s.state())
    assert t.end_epoch(3, 0.46) and t.lr == pytest.approx(1e-3)     # one more epoch: a drop
