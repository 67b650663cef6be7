import numpy as np
import pytest
from test_robustness import CONFIG
from test_scale import assert_same_trajectories

import ibjax
from ibjax.memory import device_budget_bytes, networks_per_chunk, program_bytes
from ibjax.program import compiled_program


def test_chunk_size_rule():
    assert networks_per_chunk(1000, 10_000, 20_000, 2) == 1000  # fits: all at once
    assert networks_per_chunk(1000, 10_000, None, 2) == 1000  # unknown budget: all
    assert networks_per_chunk(1000, 10_000, 2_500, 2) == 250
    assert networks_per_chunk(1000, 10_000, 2_510, 4) == 248  # a multiple of the devices
    assert networks_per_chunk(1000, 10_000, 1, 4) == 4  # never fewer than one per device


def test_xla_reports_memory_linear_in_networks():
    import jax

    from ibjax.train import data_spec

    devices = tuple(jax.local_devices())
    spec = data_spec(ibjax.load_var_u())
    small = program_bytes(compiled_program(CONFIG.replace(num_seeds=1), spec, 4,
                                            devices).segment)
    large = program_bytes(compiled_program(CONFIG.replace(num_seeds=1), spec, 16,
                                            devices).segment)
    assert small and large and 3.0 < large / small < 6.0  # roughly linear
    assert device_budget_bytes(devices) > 0


def test_chunked_run_equals_one_batch():
    whole = ibjax.run(CONFIG.replace(num_seeds=5))
    chunked = ibjax.run(CONFIG.replace(num_seeds=5), max_networks_per_chunk=2)
    assert chunked.attrs["networks_per_chunk"] == 2
    assert_same_trajectories(whole, chunked)
    np.testing.assert_array_equal(chunked.diverged_epoch.values, -1)


class HostMemoryDevice:
    """A device that reports no memory limit of its own (a CPU device): it shares the host's."""

    def memory_stats(self):
        return {}


def test_memory_fraction_from_the_environment(monkeypatch):
    from ibjax import memory

    monkeypatch.setattr(memory, "host_available_bytes", lambda: 10_000)
    devices = [HostMemoryDevice(), HostMemoryDevice()]  # host memory split between them
    assert memory.device_budget_bytes(devices) == 3_000  # the default 0.6
    monkeypatch.setenv("IBJAX_MEMORY_FRACTION", "0.25")
    assert memory.device_budget_bytes(devices) == 1_250
    for bad in ("0", "1.5", "half", "nan"):
        monkeypatch.setenv("IBJAX_MEMORY_FRACTION", bad)
        with pytest.raises(ibjax.ConfigError, match="IBJAX_MEMORY_FRACTION must be a number"):
            memory.budget_fraction()
    traces = compiled_program.cache_info().misses
    with pytest.raises(ibjax.ConfigError, match="IBJAX_MEMORY_FRACTION"):
        ibjax.run(CONFIG.replace(num_seeds=3, num_epochs=3))  # before anything is compiled
    assert compiled_program.cache_info().misses == traces


def test_seeds_must_be_integers():
    with pytest.raises(ibjax.ConfigError, match="seeds must be distinct non-negative integers"):
        ibjax.run(CONFIG, seeds=[0.5, 1.5])
