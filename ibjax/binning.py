"""The paper's binning estimator of I(X;T) and I(T;Y).

Shwartz-Ziv & Tishby (2017), https://arxiv.org/abs/1703.00810, section 3.

Convention (the authors' code, with its out-of-range bug fixed): the edges are
``linspace(lo, hi, num_bins)`` computed in float64 and rounded to the activations' dtype;
a value's bin is the index of the left edge of its interval, i.e. ``(number of edges <= t) - 1``;
values >= ``hi`` take bin ``num_bins - 1`` and values < ``lo`` take bin 0 (the reference code
wrapped them to ``hi``). A layer's state is its row of bin indices. With X uniform over the
N rows and T a deterministic function of X, I(X;T) = H(T) and I(T;Y) = H(T) + H(Y) - H(T,Y).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ibjax.config import ConfigError, validate_range
from ibjax.entropy import mutual_informations


def bin_edges(num_bins: int, value_range: tuple[float, float], dtype=np.float32) -> np.ndarray:
    """``linspace(lo, hi, num_bins)`` in float64, rounded to ``dtype``. Shape ``[num_bins]``."""
    lo, hi = value_range
    return np.linspace(lo, hi, num_bins).astype(dtype)


# Up to this many edges, a value's bin is counted with one comparison per edge (vectorised,
# fused); beyond it, guessed arithmetically and corrected with two edge lookups (gathers,
# several times slower per value on a CPU).
COMPARE_ALL_EDGES_UP_TO = 64


def count_edges_at_or_below(t: jax.Array, edges) -> jax.Array:
    """``#{k : edges[k] <= t}`` elementwise, int32 (NaN counts 0). ``edges``: a short sequence
    of scalars (constants or traced)."""
    count = jnp.zeros(t.shape, jnp.int32)
    for edge in edges:
        count = count + (t >= edge).astype(jnp.int32)
    return count


def bin_indices(t: jax.Array, num_bins: int, value_range: tuple[float, float]) -> jax.Array:
    """Bin index of every value: ``clip(#{edges <= t} - 1, 0, num_bins - 1)``.

    Exact for values on an edge. Up to :data:`COMPARE_ALL_EDGES_UP_TO` edges the count is done
    by comparison with every edge; for more, it is computed arithmetically and corrected
    against the exact edges.

    Args:
      t: ``[...]`` float activations.
      num_bins: number of edges.
      value_range: ``(lo, hi)``.

    Returns:
      int32 array of ``t``'s shape, values in ``[0, num_bins - 1]``. NaN maps to 0.
    """
    lo, hi = value_range
    edges = bin_edges(num_bins, value_range, np.dtype(t.dtype))
    if num_bins <= COMPARE_ALL_EDGES_UP_TO:
        # The first edge only decides between bin 0 and "below the range", also bin 0.
        return jnp.minimum(count_edges_at_or_below(t, edges[1:]), num_bins - 1)
    # edges_ext[i + 1] is the right edge of bin i; +inf beyond the last edge.
    edges_ext = jnp.asarray(np.append(edges, np.inf).astype(edges.dtype))
    scale = (num_bins - 1) / (hi - lo)
    guess = jnp.floor((t - lo) * scale)
    guess = jnp.clip(jnp.nan_to_num(guess, nan=0.0), 0, num_bins - 1).astype(jnp.int32)
    guess = guess - (t < edges_ext[guess]).astype(jnp.int32)
    guess = jnp.maximum(guess, 0)
    guess = guess + (t >= edges_ext[guess + 1]).astype(jnp.int32)
    return jnp.clip(guess, 0, num_bins - 1)


def binned_mi_columns(t_columns: jax.Array, y: jax.Array, num_bins: int,
                      value_range: tuple[float, float],
                      num_classes: int | None = None) -> tuple[jax.Array, jax.Array]:
    """:func:`binned_mi` on features-major activations ``[d, N]``, without argument checks or
    the non-finite guard (the trainer's path)."""
    digits = bin_indices(t_columns, num_bins, value_range)
    return mutual_informations(digits, num_bins, y, num_classes)


def binned_mi(t: jax.Array, y: jax.Array, num_bins: int = 30,
              value_range: tuple[float, float] = (-1.0, 1.0),
              num_classes: int | None = None) -> tuple[jax.Array, jax.Array]:
    """I(X;T) and I(T;Y) in bits by the paper's binning, X uniform over the N rows.

    Pure and shape-static: use it inside ``jax.jit`` and ``jax.vmap`` (e.g. ``vmap`` over a
    leading seed axis of ``t`` with shape ``[S, N, d]``).

    Args:
      t: ``[N, d]`` float activations of one layer for the N inputs.
      y: ``[N]`` integer labels.
      num_bins: number of bin edges (>= 2); the paper uses 30.
      value_range: ``(lo, hi)`` of the edges, lo < hi; the paper uses (-1, 1).
      num_classes: optional; if given, ``y`` must lie in ``[0, num_classes)`` and a faster
        path is used. If None, any integer labels work (ranked in-graph).

    Returns:
      ``(ixt, ity)``: float32 scalars, bits. ``ixt <= log2 N``, ``ity <= H(Y)``. NaN if ``t``
      holds a NaN or inf (a diverged network).

    Raises:
      ConfigError: (a ValueError) on bad shapes or settings, before anything is compiled.
    """
    check_binning_args(num_bins, value_range)
    t, y = check_layer_args(t, y, num_classes)
    ixt, ity = binned_mi_columns(t.T, y, num_bins, tuple(float(v) for v in value_range),
                                 num_classes)
    finite = jnp.all(jnp.isfinite(t))
    return jnp.where(finite, ixt, jnp.nan), jnp.where(finite, ity, jnp.nan)


def check_layer_args(t, y, num_classes) -> tuple[jax.Array, jax.Array]:
    """Checks one layer's ``t[N, d]``, labels ``y[N]`` and ``num_classes``; returns them as
    arrays (``t`` as float). Raises ConfigError naming the argument."""
    t = jnp.asarray(t)
    y = jnp.asarray(y)
    if t.ndim != 2:
        raise ConfigError(f"t must have shape [N, d] (use jax.vmap for more axes), got {t.shape}")
    if t.shape[0] == 0:
        raise ConfigError(f"t must have at least one row (one per input), got shape {t.shape}")
    if y.ndim != 1 or y.shape[0] != t.shape[0]:
        raise ConfigError(
            f"y must have shape [N] matching t's N={t.shape[0]}, got {y.shape}")
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise ConfigError(f"y must hold integer labels, got dtype {y.dtype}")
    if not jnp.issubdtype(t.dtype, jnp.floating):
        t = t.astype(jnp.float32)
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(
            num_classes, (int, np.integer)) or num_classes < 1):
        raise ConfigError(f"num_classes must be a positive integer or None, got {num_classes!r}")
    return t, y.astype(jnp.int32)


def check_binning_args(num_bins, value_range) -> None:
    """Raises ConfigError unless ``num_bins`` is an int >= 2 and ``value_range`` is lo < hi."""
    if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or num_bins < 2:
        raise ConfigError(f"num_bins must be an integer >= 2, got {num_bins!r}")
    validate_range("value_range", value_range)
