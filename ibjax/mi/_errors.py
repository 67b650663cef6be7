"""The error type of :mod:`ibjax.mi` and the argument checks that raise it."""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np


class MIError(ValueError):
    """A bad argument to an :mod:`ibjax.mi` function; the message names the argument and what
    is allowed. Raised before anything is traced or compiled."""


def static_value(name: str, value: Any, error: type[ValueError] = MIError,
                 what: str = "a static Python number") -> Any:
    """``value`` with a concrete 0-d array (numpy or JAX) taken as its Python number; refuses
    a traced value: settings are constants of the compiled program, fixed before tracing."""
    if isinstance(value, jax.core.Tracer):
        raise error(f"{name} must be {what}, not a traced value (it is a "
                    f"constant of the compiled program; pass it from outside jax.jit, or mark "
                    f"it static)")
    if isinstance(value, (jax.Array, np.ndarray)) and value.ndim == 0:
        return value.item()
    return value


def check_int(name: str, value: Any, minimum: int, error: type[ValueError] = MIError,
              maximum: int | None = None) -> None:
    """Raises ``error`` unless ``value`` is an integer (Python or numpy, or a concrete 0-d
    array of one) in ``[minimum, maximum]``."""
    value = static_value(name, value, error)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or (
            value < minimum) or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise error(f"{name} must be an integer {allowed}, got {value!r}")


def check_positive_float(name: str, value: Any, error: type[ValueError] = MIError) -> None:
    """Raises ``error`` unless ``value`` is a positive finite number (or a concrete 0-d array
    of one)."""
    value = static_value(name, value, error)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) or (
            not (math.isfinite(value) and value > 0)):
        raise error(f"{name} must be a positive finite number, got {value!r}")


def check_range(name: str, value: Any, error: type[ValueError] = MIError) -> tuple[float, float]:
    """A ``(lo, hi)`` pair of finite numbers with ``lo < hi``, as floats; else ``error``."""
    try:
        lo, hi = (float(static_value(name, v, error, "a pair of static Python numbers"))
                  for v in value)
    except (TypeError, ValueError) as err:
        if isinstance(err, error):
            raise
        raise error(f"{name} must be a pair (lo, hi) of numbers, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise error(f"{name} must be finite with lo < hi, got ({lo}, {hi})")
    return lo, hi
