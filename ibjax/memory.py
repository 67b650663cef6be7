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
from typing import NamedTuple

import jax

from ibjax.config import Config, ConfigError, num_train, snapshot_epochs

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


class SizeEstimate(NamedTuple):
    """What a run needs, from its sizes alone (before anything is compiled or allocated).

    Attributes:
      host_bytes: the results and carried states of all networks on the host, with the copies
        made while collecting, checkpointing and saving them.
      results_bytes: one copy of the results (what ``results.nc`` holds, about).
      checkpoint_bytes: one checkpoint file (states and results so far, about).
      network_bytes: one network's working set on a device: its state, a training step and a
        snapshot's measurement of every layer on the MI rows. A low estimate (XLA's own
        figure, after compiling, decides how many networks run at once).
    """

    host_bytes: int
    results_bytes: int
    checkpoint_bytes: int
    network_bytes: int


def estimate_sizes(config: Config, dataset, num_networks: int) -> SizeEstimate:
    """:class:`SizeEstimate` of ``num_networks`` networks of ``config`` on ``dataset`` (an
    :class:`ibjax.data.Dataset`)."""
    widths = (*config.hidden, dataset.num_classes)
    fan_in = (dataset.x.shape[1], *config.hidden)
    num_params = sum((i + 1) * o for i, o in zip(fan_in, widths, strict=True))
    num_rows = dataset.x.shape[0] + dataset.num_test
    n_train = num_train(config.train_fraction_for(dataset.num_test), dataset.x.shape[0])
    if config.mi_samples == "test":
        mi_rows = dataset.num_test
    elif isinstance(config.mi_samples, int):
        mi_rows = min(config.mi_samples, num_rows)
    else:
        mi_rows = num_rows
    num_snapshots = len(snapshot_epochs(config.snapshots, config.num_epochs))
    floats_per_snapshot = (2 * len(config.estimators) + 2) * len(widths) + 4
    results = 4 * num_snapshots * floats_per_snapshot
    state = 4 * 4 * num_params + 4 * n_train + num_rows + 64  # params, Adam, flat copy
    batch = n_train if config.batch_size is None else config.batch_size
    measure = 4 * 3 * mi_rows * sum(widths)  # activations, bin digits, sort keys
    if any(name.startswith("kde") for name in config.estimators):
        measure += 4 * 4 * min(mi_rows * mi_rows, 2**20)  # one block of kernels
    if "noisy" in config.estimators:  # m propagations: samples, noise, points; a kernel block
        measure += 4 * 3 * config.noise_samples * mi_rows * sum(widths) + 4 * 4 * 2**20
    train = 4 * 4 * batch * sum(widths)
    return SizeEstimate(
        host_bytes=num_networks * (3 * results + 2 * state),
        results_bytes=num_networks * results,
        checkpoint_bytes=num_networks * (results + state),
        network_bytes=state + max(measure, train))


def format_bytes(size: float) -> str:
    """``1.5 GB``-style text (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(size) < 1000 or unit == "PB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} PB"  # pragma: no cover


def check_host_memory(config: Config, dataset, num_networks: int) -> SizeEstimate:
    """Refuses a run whose results and states cannot fit in the host's memory.

    Raises:
      ConfigError: naming the sizes, before anything is allocated.
    """
    sizes = estimate_sizes(config, dataset, num_networks)
    available = host_available_bytes()
    if available is not None and sizes.host_bytes > available * budget_fraction():
        raise ConfigError(
            f"{num_networks} networks x {sizes.results_bytes // max(num_networks, 1)} bytes of "
            f"results each need about {format_bytes(sizes.host_bytes)} of host memory, more "
            f"than the {format_bytes(available * budget_fraction())} this run may use "
            f"({budget_fraction():.0%} of the {format_bytes(available)} available): use fewer "
            f"seeds or snapshots, or split the seeds (ibjax run --seed-range a:b) and join "
            f"the parts with 'ibjax merge'")
    return sizes


def check_network_fits(config: Config, dataset, devices: Sequence[jax.Device]) -> None:
    """Refuses a configuration of which not even one network fits on a device.

    Raises:
      ConfigError: naming the sizes, before anything is compiled.
    """
    needed = estimate_sizes(config, dataset, 1).network_bytes
    budget = device_budget_bytes(devices)
    if budget is not None and needed > budget:
        raise ConfigError(network_too_large(needed, budget, config, dataset))


def network_too_large(needed: int, budget: int, config: Config, dataset) -> str:
    """The message for a network that does not fit on one device."""
    widths = ",".join(str(w) for w in (*config.hidden, dataset.num_classes))
    return (f"one network needs about {format_bytes(needed)} on a device (layers of widths "
            f"{widths}, measured on the MI rows), more than the {format_bytes(budget)} it may "
            f"use ({budget_fraction():.0%} of its memory, ${FRACTION_VARIABLE}): use narrower "
            f"layers, fewer MI rows (mi_samples) or a device with more memory")
