"""The error type of :mod:`ibjax.mi` and the argument checks that raise it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class MIError(ValueError):
    """A bad argument to an :mod:`ibjax.mi` function; the message names the argument and what
    is allowed. Raised before anything is traced or compiled."""


def check_int(name: str, value: Any, minimum: int, error: type[ValueError] = MIError,
              maximum: int | None = None) -> None:
    """Raises ``error`` unless ``value`` is an integer (Python or numpy) in
    ``[minimum, maximum]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or (
            value < minimum) or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise error(f"{name} must be an integer {allowed}, got {value!r}")


def check_positive_float(name: str, value: Any, error: type[ValueError] = MIError) -> None:
    """Raises ``error`` unless ``value`` is a positive finite number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) or (
            not (math.isfinite(value) and value > 0)):
        raise error(f"{name} must be a positive finite number, got {value!r}")


def check_range(name: str, value: Any, error: type[ValueError] = MIError) -> tuple[float, float]:
    """A ``(lo, hi)`` pair of finite numbers with ``lo < hi``, as floats; else ``error``."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise error(f"{name} must be a pair (lo, hi) of numbers, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise error(f"{name} must be finite with lo < hi, got ({lo}, {hi})")
    return lo, hi
