import numpy as np
from test_robustness import CONFIG
from test_scale import assert_same_trajectories

import ibjax
from ibjax.memory import device_budget_bytes, networks_per_chunk, program_bytes
from ibjax.runner import _compiled_program


def test_chunk_size_rule():
    assert networks_per_chunk(1000, 10_000, 20_000, 2) == 1000  # fits: all at once
    assert networks_per_chunk(1000, 10_000, None, 2) == 1000  # unknown budget: all
    assert networks_per_chunk(1000, 10_000, 2_500, 2) == 250
    assert networks_per_chunk(1000, 10_000, 2_510, 4) == 248  # a multiple of the devices
    assert networks_per_chunk(1000, 10_000, 1, 4) == 4  # never fewer than one per device


def test_xla_reports_memory_linear_in_networks():
    import jax

    devices = tuple(jax.local_devices())
    small = program_bytes(_compiled_program(CONFIG.replace(num_seeds=1), 4, devices).segment)
    large = program_bytes(_compiled_program(CONFIG.replace(num_seeds=1), 16, devices).segment)
    assert small and large and 3.0 < large / small < 6.0  # roughly linear
    assert device_budget_bytes(devices) > 0


def test_chunked_run_equals_one_batch():
    whole = ibjax.run(CONFIG.replace(num_seeds=5))
    chunked = ibjax.run(CONFIG.replace(num_seeds=5), max_networks_per_chunk=2)
    assert chunked.attrs["networks_per_chunk"] == 2
    assert_same_trajectories(whole, chunked)
    np.testing.assert_array_equal(chunked.diverged_epoch.values, -1)
