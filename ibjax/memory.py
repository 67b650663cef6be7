"""How many networks fit in device memory at once.

XLA reports, for a compiled program, the bytes of its arguments, outputs and temporaries; for
this workload they grow linearly with the number of networks (the snapshot measurement of all
layers on all samples dominates: about 1.4 MB per network on the paper task). The budget is a
fraction of each device's memory limit, or, for CPU devices that share the host's RAM, of the
memory available on the host split among them. The fraction is 0.6 unless the environment sets
``IBJAX_MEMORY_FRACTION`` (a number in (0, 1]): several runs sharing one host (a job array's
``--seed-range`` parts on one node, say) should each get their share of it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import jax

from ibjax.config import ConfigError

BUDGET_FRACTION = 0.6
FRACTION_VARIABLE = "IBJAX_MEMORY_FRACTION"


def budget_fraction() -> float:
    """The fraction of a device's memory a run may plan for: ``$IBJAX_MEMORY_FRACTION`` or 0.6.

    Raises:
      ConfigError: (a ValueError) the variable is set but not a number in (0, 1].
    """
    text = os.environ.get(FRACTION_VARIABLE)
    if text is None:
        return BUDGET_FRACTION
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value <= 1.0:
        raise ConfigError(f"{FRACTION_VARIABLE} must be a number in (0, 1], got {text!r}")
    return value


def program_bytes(compiled) -> int | None:
    """Bytes one device needs to run ``compiled`` (arguments + outputs + temporaries)."""
    try:
        stats = compiled.memory_analysis()
    except Exception:  # not every backend or version reports it
        return None
    if stats is None:
        return None
    return int(stats.argument_size_in_bytes + stats.output_size_in_bytes
               + stats.temp_size_in_bytes)


def host_available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo, or None where there is no such file."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def device_budget_bytes(devices: Sequence[jax.Device]) -> int | None:
    """Bytes one device may use for a run's program: a fraction of what it has."""
    limits = []
    for device in devices:
        try:
            stats = device.memory_stats() or {}
        except Exception:  # CPU devices may not report
            stats = {}
        if "bytes_limit" in stats:
            limits.append(int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)))
    if limits:
        return int(min(limits) * budget_fraction())
    available = host_available_bytes()
    if available is None:
        return None
    return int(available * budget_fraction() / len(devices))


def networks_per_chunk(num_networks: int, bytes_for_all: int | None, budget: int | None,
                       num_devices: int) -> int:
    """Networks to run at once: all of them if they fit, else as many as the budget allows.

    Args:
      num_networks: networks in the run, padded to a multiple of ``num_devices``.
      bytes_for_all: per-device bytes of the program compiled for all of them.
      budget: per-device bytes available.
      num_devices: devices the seeds are sharded over.

    Returns:
      A multiple of ``num_devices`` (at least ``num_devices``), at most ``num_networks``.
    """
    if bytes_for_all is None or budget is None or bytes_for_all <= budget:
        return num_networks
    per_network = bytes_for_all / num_networks
    fit = int(budget / per_network) // num_devices * num_devices
    return max(num_devices, min(num_networks, fit))
