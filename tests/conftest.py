"""Shared fixtures: tiny sizes so the suite runs in minutes on 2 CPU cores."""

import os
import tempfile

# The command line turns on a persistent compilation cache in ~/.cache unless one is set;
# keep the tests' programs out of the user's home.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="ibjax-test-cache-"))
# ... and the native products' library (ibjax.cache; built once per test session, ~5 s).
os.environ.setdefault("IBJAX_CACHE_DIR", tempfile.mkdtemp(prefix="ibjax-test-native-"))
# One CPU device in this process whatever the test order: the command line, called in-process,
# would otherwise expose every core before JAX's first use, and results computed with another
# device count differ by float rounding. Tests that need several devices use subprocesses.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_force_host_platform_device_count=1").strip()

import jax
import numpy as np
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def rng():
    return np.random.default_rng(20170301)


def numpy_binned_mi(t, y, num_bins=30, value_range=(-1.0, 1.0)):
    """Independent reference: np.digitize against float32 edges, np.unique over rows, float64.

    Bin convention: index of the left edge of the value's interval, clamped to
    [0, num_bins - 1]; edges = linspace(lo, hi, num_bins) rounded to t's dtype.
    """
    t = np.asarray(t)
    y = np.asarray(y).reshape(-1)
    edges = np.linspace(value_range[0], value_range[1], num_bins).astype(t.dtype)
    digits = np.clip(np.digitize(t, edges) - 1, 0, num_bins - 1)
    return numpy_discrete_mi(digits, y)


def numpy_discrete_mi(digits, y):
    """I(X;T), I(T;Y) in bits of integer rows ``digits[N, d]`` by np.unique counting, float64."""
    y = np.asarray(y).reshape(-1)

    def entropy(rows):
        _, counts = np.unique(rows, axis=0, return_counts=True)
        p = counts / counts.sum()
        return float(-(p * np.log2(p)).sum())

    h_t = entropy(digits)
    h_y = entropy(y[:, None])
    h_ty = entropy(np.concatenate([y[:, None], digits], axis=1))
    return h_t, h_t + h_y - h_ty
