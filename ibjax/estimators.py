"""Mutual-information estimators for one layer, registered by name.

Every estimator sees one layer's activations for the N inputs, features-major ``t[d, N]``, and
the ``[N]`` integer labels, and returns ``(I(X;T), I(T;Y))`` in bits, with X uniform over the N
rows. All are pure, shape-static and safe under ``jax.jit`` and ``jax.vmap``; the trainer runs
any subset of them at every snapshot inside its compiled program (``Config.estimators``).

==================  ============================================================================
name                what it does
==================  ============================================================================
``binning``         The paper's: ``num_bins`` edges on a fixed ``(lo, hi)`` or, with
                    ``bin_range="layer"``, on the layer's own ``[min, max]`` at that snapshot.
``binning-width``   Bins of fixed width: ``floor(t / bin_width)``, unbounded (Saxe et al. 2018).
``equal-mass``      Per neuron, ``num_bins`` bins holding equal numbers of samples
                    (Chelombiev et al. 2019).
``kde-upper``       Kolchinsky & Tracey (2017) pairwise-KL upper bound for T + N(0, s2 I).
``kde-lower``       The Bhattacharyya lower bound of the same mixture.
==================  ============================================================================

For the discrete estimators a layer's state is its row of bin indices and I(X;T) = H(T),
I(T;Y) = H(T) + H(Y) - H(T,Y), counted exactly (:mod:`ibjax.entropy`). For KDE, with
``K_ij = exp(-||t_i - t_j||^2 / (2 s2))`` (upper) or ``exp(-||t_i - t_j||^2 / (8 s2))``
(lower), Saxe et al.'s formulas reduce to (nats, then converted to bits)::

    I(X;T) = ln N - mean_i ln sum_j K_ij
    I(T;Y) = H(Y) - mean_i ln( sum_j K_ij / sum_{j: y_j = y_i} K_ij )

(the Gaussian's own entropy cancels). The N x N kernel is built in row blocks, so memory is
O(block * N) per network, not O(N^2).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ibjax.binning import (
    COMPARE_ALL_EDGES_UP_TO,
    bin_indices,
    check_layer_args,
    count_edges_at_or_below,
)
from ibjax.config import ESTIMATOR_NAMES, ConfigError, check_estimator_settings
from ibjax.entropy import dense_rank, mutual_informations

LN2 = math.log(2.0)
KDE_BLOCK_ELEMENTS = 2**20  # kernel entries per network held at once (4 MB in float32)
DIRECT_DISTANCE_MAX_WIDTH = 32  # wider layers sum their squared differences in a lax.scan


@dataclasses.dataclass(frozen=True)
class Settings:
    """Estimator parameters shared by a run (all from :class:`~ibjax.config.Config`).

    Attributes:
      num_bins: bin edges for ``binning`` (the paper's 30); bins per neuron for ``equal-mass``.
      bin_range: ``(lo, hi)`` of the ``binning`` edges, or ``"layer"`` for the layer's own
        ``[min, max]`` at each snapshot (needed for ReLU and linear layers).
      bin_width: width of the ``binning-width`` bins, in activation units.
      kde_variance: variance s2 of the Gaussian noise added for the KDE bounds.
    """

    num_bins: int = 30
    bin_range: tuple[float, float] | str = (-1.0, 1.0)
    bin_width: float = 0.07
    kde_variance: float = 1e-3


# --------------------------------------------------------------------------- discrete estimators


def layer_range_bins(t_columns: jax.Array, num_bins: int) -> jax.Array:
    """Bin indices with ``num_bins`` edges spread over the layer's own ``[min, max]``.

    Edges ``e_k = min + (max - min) * k / (num_bins - 1)`` (float32, in-graph); a value's bin
    is ``#{e_k <= t} - 1``, so the layer's maximum has bin ``num_bins - 1`` — the fixed-range
    rule of :func:`ibjax.binning.bin_indices` with ``(lo, hi) = (min, max)``. A constant layer
    has one bin. ``[d, N]`` float -> ``[d, N]`` int32.
    """
    lo, hi = jnp.min(t_columns), jnp.max(t_columns)
    edges = lo + (hi - lo) * (jnp.arange(num_bins, dtype=t_columns.dtype) / (num_bins - 1))
    if num_bins <= COMPARE_ALL_EDGES_UP_TO:
        count = count_edges_at_or_below(t_columns, [edges[k] for k in range(1, num_bins)])
        return jnp.minimum(count, num_bins - 1)
    index = jnp.searchsorted(edges, t_columns.reshape(-1), side="right") - 1
    return jnp.clip(index, 0, num_bins - 1).reshape(t_columns.shape).astype(jnp.int32)


def binning_mi(t_columns, y, num_classes, settings: Settings):
    """The paper's binning (Shwartz-Ziv & Tishby 2017, arXiv:1703.00810, section 3), bits."""
    if isinstance(settings.bin_range, str):  # "layer"
        digits = layer_range_bins(t_columns, settings.num_bins)
    else:
        digits = bin_indices(t_columns, settings.num_bins, settings.bin_range)
    return mutual_informations(digits, settings.num_bins, y, num_classes)


def width_bins(t_columns: jax.Array, width: float) -> jax.Array:
    """``floor(t / width)`` as int32, saturating at +-2**30 (far outside any sane layer)."""
    scaled = jnp.clip(jnp.floor(t_columns / width), -(2.0**30), 2.0**30)
    return jnp.nan_to_num(scaled).astype(jnp.int32)


def fixed_width_mi(t_columns, y, num_classes, settings: Settings):
    """Bins of fixed width ``floor(t / bin_width)`` on an unbounded range, bits.

    Saxe et al. (2018), "On the information bottleneck theory of deep learning", ICLR,
    used width 0.07 for the paper task and 0.5 on MNIST. Each neuron's bin numbers are replaced
    by their dense rank (an exact relabelling) so rows pack into the exact counting of
    :mod:`ibjax.entropy` whatever the range.
    """
    digits = jax.vmap(dense_rank)(width_bins(t_columns, settings.bin_width))
    return mutual_informations(digits, y.shape[0], y, num_classes)


def equal_mass_bins(t_columns: jax.Array, num_bins: int) -> jax.Array:
    """Per neuron: ``floor(rank * num_bins / N)`` with rank = number of smaller values.

    Equal values share a bin, so with N distinct values each bin holds N / num_bins samples
    (up to rounding); a strictly increasing map of a neuron leaves its bins unchanged.
    ``[d, N]`` float -> ``[d, N]`` int32 in ``[0, num_bins)``.
    """
    num_samples = t_columns.shape[1]

    def one_neuron(column):
        rank = jnp.searchsorted(jnp.sort(column), column, side="left")
        return (rank.astype(jnp.int32) * num_bins) // num_samples

    return jax.vmap(one_neuron)(t_columns)


def equal_mass_mi(t_columns, y, num_classes, settings: Settings):
    """Adaptive equal-mass binning per neuron, ``num_bins`` bins each, bits.

    Chelombiev, Houghton & O'Donnell (2019), "Adaptive estimators show information compression
    in deep neural networks", ICLR.
    """
    digits = equal_mass_bins(t_columns, settings.num_bins)
    return mutual_informations(digits, settings.num_bins, y, num_classes)


# --------------------------------------------------------------------------- KDE bounds


def squared_distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """``[m, n]`` squared Euclidean distances between columns of ``a[d, m]`` and ``b[d, n]``.

    Always the direct sum ``sum_k (a_k - b_k)**2``, feature by feature (unrolled for narrow
    layers, a ``lax.scan`` over features beyond :data:`DIRECT_DISTANCE_MAX_WIDTH`), never the
    matrix-product form ``|a|^2 + |b|^2 - 2 a.b``: that form loses the exact zero distance of
    a point to itself and cancels badly for wide layers with large activations (a 128-wide
    ReLU layer's KDE I(X;T) came out above log2 N). The direct sum is exact on the diagonal
    and accurate to float32 rounding of each distance, at 2-4x the cost of the matrix product
    on a CPU for layers of 128-1024 units.
    """
    if a.shape[0] <= DIRECT_DISTANCE_MAX_WIDTH:
        total = jnp.zeros((a.shape[1], b.shape[1]), a.dtype)
        for k in range(a.shape[0]):
            total = total + (a[k][:, None] - b[k][None, :]) ** 2
        return total

    def add_feature(total, features):
        a_k, b_k = features
        return total + (a_k[:, None] - b_k[None, :]) ** 2, None

    total, _ = jax.lax.scan(add_feature, jnp.zeros((a.shape[1], b.shape[1]), a.dtype), (a, b))
    return total


def kde_bounds(t_columns: jax.Array, y: jax.Array, variance: float) -> tuple[
        tuple[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
    """KDE upper and lower bounds of ``(I(X;T), I(T;Y))`` in bits, from one pass.

    Kolchinsky & Tracey (2017), "Estimating mixture entropy with pairwise distances", Entropy
    19, 361; as used by Saxe et al. (2018). See the module docstring for the formulas.

    Args:
      t_columns: ``[d, N]`` activations.
      y: ``[N]`` integer labels (any values; only equality is used).
      variance: the noise variance s2 > 0.

    Returns:
      ``((ixt_upper, ity_upper), (ixt_lower, ity_lower))``, float32 scalars, bits.
    """
    num_samples = t_columns.shape[1]
    block = max(1, min(num_samples, KDE_BLOCK_ELEMENTS // num_samples))
    num_blocks = -(-num_samples // block)
    padded = num_blocks * block
    rows = jnp.pad(t_columns, ((0, 0), (0, padded - num_samples)))
    row_labels = jnp.pad(y, (0, padded - num_samples))
    lower_scale = 1.0 / (8.0 * variance)

    def one_block(start):
        t_block = jax.lax.dynamic_slice_in_dim(rows, start, block, axis=1)
        y_block = jax.lax.dynamic_slice_in_dim(row_labels, start, block)
        distances = squared_distances(t_block, t_columns)
        same = y_block[:, None] == y[None, :]
        log_same_count = jnp.log(jnp.sum(same, axis=1).astype(t_columns.dtype))
        # exp(-D / (2 s2)) = exp(-D / (8 s2)) ** 4: one exp per pair serves both bounds
        # (the 4th power loses < 1e-6 relative where it does not underflow, and it underflows
        # only where exp(-D / (2 s2)) itself is below float32's range; every row sum is >= 1).
        # Materialised once (the barrier): otherwise each of the four row sums below would
        # recompute the distances and the exp (measured 1.3x slower on CPU).
        lower = jax.lax.optimization_barrier(jnp.exp(-distances * lower_scale))
        upper = jnp.square(jnp.square(lower))
        sums = []
        for kernel in (upper, lower):
            sums.append((jnp.log(jnp.sum(kernel, axis=1)),
                         jnp.log(jnp.sum(jnp.where(same, kernel, 0.0), axis=1))))
        return log_same_count, sums

    starts = jnp.arange(num_blocks, dtype=jnp.int32) * block
    log_same_count, sums = jax.lax.map(one_block, starts)
    valid = (jnp.arange(padded) < num_samples)

    def mean(values):  # [num_blocks, block] -> mean over the real rows
        return jnp.sum(jnp.where(valid, values.reshape(-1), 0.0)) / num_samples

    log_n = math.log(num_samples)
    entropy_y = log_n - mean(log_same_count)  # H(Y) = -mean_i ln(N_{y_i} / N), nats
    bounds = []
    for log_all, log_same in sums:
        ixt = (log_n - mean(log_all)) / LN2
        ity = (entropy_y - mean(log_all - log_same)) / LN2
        bounds.append((ixt, ity))
    return bounds[0], bounds[1]


def kde_upper_mi(t_columns, y, num_classes, settings: Settings):
    """KDE pairwise-KL upper bound (Kolchinsky & Tracey 2017), bits."""
    return kde_bounds(t_columns, y, settings.kde_variance)[0]


def kde_lower_mi(t_columns, y, num_classes, settings: Settings):
    """KDE Bhattacharyya lower bound (Kolchinsky & Tracey 2017), bits."""
    return kde_bounds(t_columns, y, settings.kde_variance)[1]


# --------------------------------------------------------------------------- registry


class Estimator(NamedTuple):
    """A registered estimator.

    Attributes:
      name: registry key.
      columns_fn: ``fn(t[d, N], y[N], num_classes | None, Settings) -> (ixt, ity)`` in bits.
      description: one line for help texts.
    """

    name: str
    columns_fn: Callable
    description: str


ESTIMATORS: dict[str, Estimator] = {e.name: e for e in (
    Estimator("binning", binning_mi,
              "the paper's: num_bins edges on bin_range (fixed, or 'layer')"),
    Estimator("binning-width", fixed_width_mi, "bins of width bin_width, unbounded range"),
    Estimator("equal-mass", equal_mass_mi, "per neuron, num_bins bins of equal sample counts"),
    Estimator("kde-upper", kde_upper_mi, "KDE pairwise-KL upper bound, noise kde_variance"),
    Estimator("kde-lower", kde_lower_mi, "KDE Bhattacharyya lower bound, noise kde_variance"),
)}
assert tuple(ESTIMATORS) == ESTIMATOR_NAMES, "keep ibjax.config.ESTIMATOR_NAMES in step"


def estimate_layer(t_columns: jax.Array, y: jax.Array, num_classes: int | None,
                   names: Sequence[str], settings: Settings) -> tuple[jax.Array, jax.Array]:
    """Every estimator in ``names`` on one layer; KDE bounds share one kernel pass.

    Returns:
      ``(ixt, ity)``, each ``[len(names)]`` float32, bits, in the order of ``names``.
    """
    results, kde = [], None
    for name in names:
        if name in ("kde-upper", "kde-lower"):
            if kde is None:
                kde = kde_bounds(t_columns, y, settings.kde_variance)
            results.append(kde[0] if name == "kde-upper" else kde[1])
        else:
            results.append(ESTIMATORS[name].columns_fn(t_columns, y, num_classes, settings))
    return (jnp.stack([jnp.asarray(r[0], jnp.float32) for r in results]),
            jnp.stack([jnp.asarray(r[1], jnp.float32) for r in results]))


def mutual_information(t: jax.Array, y: jax.Array, estimator: str = "binning", *,
                       num_classes: int | None = None, num_bins: int = 30,
                       bin_range: tuple[float, float] | str = (-1.0, 1.0),
                       bin_width: float = 0.07,
                       kde_variance: float = 1e-3) -> tuple[jax.Array, jax.Array]:
    """I(X;T) and I(T;Y) in bits of one layer by a named estimator, X uniform over the rows.

    Pure and shape-static: use it under ``jax.jit`` (static ``estimator`` and settings) and
    ``jax.vmap`` (e.g. over a leading seed axis of ``t``).

    Args:
      t: ``[N, d]`` float activations of one layer for the N inputs.
      y: ``[N]`` integer labels.
      estimator: a name in :data:`ESTIMATORS`.
      num_classes: optional; labels then lie in ``[0, num_classes)`` (faster for binning).
      num_bins, bin_range, bin_width, kde_variance: see :class:`Settings`.

    Returns:
      ``(ixt, ity)``, float32 scalars, bits; NaN if ``t`` holds a NaN or inf.

    Raises:
      ConfigError: (a ValueError) on a bad argument, before anything is compiled.
    """
    settings = Settings(num_bins, bin_range if isinstance(bin_range, str) else tuple(
        float(v) for v in bin_range), bin_width, kde_variance)
    check_estimator_settings((estimator,), settings)
    t, y = check_layer_args(t, y, num_classes)
    ixt, ity = estimate_layer(t.T, y, num_classes, (estimator,), settings)
    finite = jnp.all(jnp.isfinite(t))
    return jnp.where(finite, ixt[0], jnp.nan), jnp.where(finite, ity[0], jnp.nan)


def kde_mi(t, y, variance: float = 1e-3, bound: str = "upper"):
    """:func:`mutual_information` with ``estimator="kde-upper"`` or ``"kde-lower"``."""
    if bound not in ("upper", "lower"):
        raise ConfigError(f"bound must be 'upper' or 'lower', got {bound!r}")
    return mutual_information(t, y, f"kde-{bound}", kde_variance=variance)

