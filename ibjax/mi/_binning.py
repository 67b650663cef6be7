"""Activations to bin indices: the paper's fixed-range bins, a layer's own range, fixed-width
bins and equal-mass bins.

Shwartz-Ziv & Tishby (2017), https://arxiv.org/abs/1703.00810, section 3.

Fixed-range convention (the authors' code, with its out-of-range bug fixed): the edges are
``linspace(lo, hi, num_bins)`` computed in float64 and rounded to the activations' dtype;
a value's bin is the index of the left edge of its interval, i.e. ``(number of edges <= t) - 1``;
values >= ``hi`` take bin ``num_bins - 1`` and values < ``lo`` take bin 0 (the reference code
wrapped them to ``hi``). A layer's state is its row of bin indices.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ibjax.mi._entropy import column_ranks


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


def layer_range_bins(t_columns: jax.Array, num_bins: int) -> jax.Array:
    """Bin indices with ``num_bins`` edges spread over the layer's own ``[min, max]``.

    Edges ``e_k = min + (max - min) * k / (num_bins - 1)`` (float32, in-graph); a value's bin
    is ``#{e_k <= t} - 1``, so the layer's maximum has bin ``num_bins - 1`` -- the fixed-range
    rule of :func:`bin_indices` with ``(lo, hi) = (min, max)``. A constant layer has one bin.
    ``[d, N]`` float -> ``[d, N]`` int32.
    """
    lo, hi = jnp.min(t_columns), jnp.max(t_columns)
    fractions = jnp.arange(num_bins, dtype=t_columns.dtype) / (num_bins - 1)
    edges = lo + (hi - lo) * fractions
    # max - min beyond float's largest (values of both signs near it): halves, then doubled
    halved = 2 * (lo / 2 + (hi / 2 - lo / 2) * fractions)
    edges = jnp.where(jnp.isfinite(hi - lo), edges, halved)
    edges = edges.at[-1].set(hi)  # lo + (hi - lo) * 1 can round above the maximum
    if num_bins <= COMPARE_ALL_EDGES_UP_TO:
        count = count_edges_at_or_below(t_columns, [edges[k] for k in range(1, num_bins)])
        return jnp.minimum(count, num_bins - 1)
    index = jnp.searchsorted(edges, t_columns.reshape(-1), side="right") - 1
    return jnp.clip(index, 0, num_bins - 1).reshape(t_columns.shape).astype(jnp.int32)


def dense_width_bins(t_columns: jax.Array, width: float) -> jax.Array:
    """Bins of fixed width, ``floor(t / width)``, unbounded: each neuron's bin numbers are
    replaced by their dense rank (an exact relabelling into ``[0, N)``, so rows pack into the
    exact counting whatever the range; the floors are ranked as floats, so no bin number is
    ever clipped). ``[d, N]`` float -> ``[d, N]`` int32. NaN counts as bin 0.
    (A finite value whose bin number overflows the float, beyond ``width`` times its largest,
    is not binned here: :func:`width_bins_overflow` tells; the estimator gives NaN.)"""
    return column_ranks(jnp.nan_to_num(jnp.floor(t_columns / width), nan=0.0), dense=True)


def width_bins_overflow(t_columns: jax.Array, width: float) -> jax.Array:
    """Whether a finite value of ``t_columns`` has a bin number ``t / width`` beyond the
    float's range (only possible for width < 1): a scalar bool."""
    return jnp.any(jnp.isinf(t_columns / width) & jnp.isfinite(t_columns))


def equal_mass_bins(t_columns: jax.Array, num_bins: int) -> jax.Array:
    """Per neuron: ``floor(rank * num_bins / N)`` with rank = number of smaller values.

    Equal values share a bin, so with N distinct values each bin holds N / num_bins samples
    (up to rounding); a strictly increasing map of a neuron leaves its bins unchanged.
    ``[d, N]`` float -> ``[d, N]`` int32 in ``[0, num_bins)``.
    """
    num_samples = t_columns.shape[1]
    rank = column_ranks(t_columns, dense=False)
    if (num_samples - 1) * num_bins < 2**31:  # the product fits in int32
        return (rank * num_bins) // num_samples
    # Otherwise each rank's bin from a table computed exactly on the host ([N] int32).
    table = (np.arange(num_samples, dtype=np.int64) * num_bins) // num_samples
    return jnp.asarray(table.astype(np.int32))[rank]
