import numpy as np
import pytest

from ibjax.config import snapshot_epochs
from ibjax.plan import make_plan


@pytest.mark.parametrize("spec, num_epochs", [("log", 8000), ("every:1", 50), ((0,), 30),
                                              ((7, 30), 30), ("every:7", 100)])
def test_plan_covers_every_epoch_and_snapshot(spec, num_epochs):
    epochs = snapshot_epochs(spec, num_epochs)
    plan = make_plan(epochs, num_epochs)
    steps = plan.num_epochs.reshape(-1)
    measure = plan.measure.reshape(-1)
    assert steps.sum() == num_epochs
    measured_at = np.cumsum(steps)[measure]
    np.testing.assert_array_equal(measured_at, epochs)
    assert plan.epochs_after_segment(plan.num_segments - 1) == num_epochs


def test_long_gaps_are_split_for_progress():
    plan = make_plan((0, 8000), 8000, target_segments=50)
    assert plan.num_epochs.max() <= 40
    assert plan.num_segments >= 20


def test_one_segment_when_asked():
    plan = make_plan(snapshot_epochs("log", 8000), 8000, target_segments=1)
    assert plan.num_segments == 1
    np.testing.assert_array_equal(np.cumsum(plan.num_epochs[0])[plan.measure[0]],
                                  snapshot_epochs("log", 8000))
