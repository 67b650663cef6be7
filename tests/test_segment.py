"""Training networks in groups and measuring them all at once (ibjax.segment)."""

import numpy as np
import pytest
from test_robustness import CONFIG
from test_scale import assert_same_trajectories

import ibjax
from ibjax.config import ConfigError
from ibjax.program import compiled_program
from ibjax.segment import CPU_TRAINING_GROUP, num_training_groups, training_group_size


def test_group_size_rule():
    assert training_group_size(None, "cpu") == CPU_TRAINING_GROUP
    assert training_group_size(None, "gpu") is None  # all networks at once
    assert training_group_size(3, "gpu") == 3
    assert num_training_groups(64, 64) == 1
    assert num_training_groups(65, 64) == 2
    assert num_training_groups(500, 64) == 8
    assert num_training_groups(500, None) == 1


def test_grouped_training_equals_one_batch():
    """5 seeds trained in groups of 2 (3 groups, the last filled with a copy of seed 0) give
    the trajectories of one batch, including gradient statistics and the final state."""
    config = CONFIG.replace(num_seeds=5)
    whole = ibjax.run(config)
    grouped = ibjax.run(config, training_group=2)
    assert whole.attrs["training_groups"] == 1
    assert grouped.attrs["training_groups"] == 3
    assert_same_trajectories(whole, grouped)
    np.testing.assert_allclose(grouped.grad_std.values, whole.grad_std.values, rtol=1e-4)
    np.testing.assert_allclose(grouped.test_accuracy.values, whole.test_accuracy.values,
                               atol=1e-6)
    np.testing.assert_array_equal(grouped.diverged_epoch.values, -1)


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "64"])
def test_bad_training_group_is_rejected_before_compiling(bad):
    misses = compiled_program.cache_info().misses
    with pytest.raises(ConfigError, match="training_group"):
        ibjax.run(CONFIG.replace(seed=4321), training_group=bad)
    assert compiled_program.cache_info().misses == misses
