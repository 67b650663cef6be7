"""The hardware and software a result came from, for results files and benchmark output."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence

import jax


def cpu_model() -> str:
    """The host CPU's model name (from /proc/cpuinfo where available) and core count."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def hardware_info(devices: Sequence[jax.Device] | None = None) -> dict[str, str | int]:
    """The devices, host and library versions, for results and benchmark output."""
    devices = jax.local_devices() if devices is None else devices
    return {
        "device": f"{len(devices)} x {devices[0].device_kind} ({devices[0].platform})",
        "host": cpu_model(),
        "python": sys.version.split()[0],
        "jax_version": jax.__version__,
    }

