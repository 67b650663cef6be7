"""k-nearest-neighbour estimators of mutual information, with max-norm distances.

- I(T;Y), a continuous layer and a discrete label: Ross (2014), "Mutual information between
  discrete and continuous data sets", PLoS ONE 9(2), e87357,
  https://doi.org/10.1371/journal.pone.0087357 (as ``sklearn``'s ``mutual_info_classif``)::

      I = psi(N) - <psi(N_{y_i})> + psi(k) - <psi(m_i)>

  with ``d_i`` the distance from ``t_i`` to its k-th nearest neighbour of the same label,
  ``m_i`` the number of other rows (any label) within ``d_i``, the k-th neighbour included,
  and ``N_{y_i}`` the size of row i's class.
- I(X;T), inputs and layer: Kraskov, Stögbauer & Grassberger (2004), "Estimating mutual
  information", Phys. Rev. E 69, 066138, https://doi.org/10.1103/PhysRevE.69.066138,
  algorithm 1::

      I = psi(k) + psi(N) - <psi(n_x + 1) + psi(n_t + 1)>

  with ``eps_i`` the joint max-norm distance ``max(|x_i - x_j|, |t_i - t_j|)`` to the k-th
  neighbour and ``n_x``, ``n_t`` the other rows strictly closer than ``eps_i`` in each space.

Neighbour counts are exact (every pair, in row blocks: O(N^2 d) time, O(block N) memory;
on a CPU the runner and recorder count them natively, see :mod:`ibjax.mi._hooks`), in nats
converted to bits. Estimates are not clipped: small negative values are the estimator's
bias around 0.

Scale. Max-norm neighbourhoods depend on each feature's units (inputs of 0-255 beside tanh
units in [-1, 1] would leave the joint distance to the inputs alone), so, as Kraskov et al. and
``sklearn`` do, every feature of the layer and of the inputs is first standardised: centred and
divided by its standard deviation over the rows (a constant feature is only centred). The
estimates are therefore invariant to each feature's offset and scale (a feature reaching
``HUGE_FEATURE`` is first multiplied by 2**-100, exactly, so its mean cannot overflow).

Ties. The estimators assume no two distances are equal; binary inputs such as the paper's have
max-norm distances of only 0 and 1, and saturated tanh units sit at exactly +-1. As public kNN
code does (Kraskov et al.'s; ``sklearn``), every standardised value then gets a fixed, seeded
jitter ``KNN_JITTER * z``, ``z ~ N(0, 1)``, with ``KNN_JITTER = 1e-3``: a thousandth of each
feature's spread, far below the data's resolution (1 for binary inputs; the paper's bins are
0.069 wide) and, on standardised values, thousands of float32 steps, so that float32 distances
order the pairs as exact arithmetic would (a jitter of 1e-5 left near-ties that float32 and
float64 ordered differently: 0.014 bits apart on the paper's inputs). The jitter is the same in
every call (key ``0`` for the layer, ``1`` for the inputs), so estimates are reproducible. A
layer of one unit measured on thousands of rows has nearest neighbours about as close as the
jitter; there the jitter is part of the estimate.

What KSG measures for a deterministic network. T = f(X) with X continuous has infinite
I(X;T); here X is N distinct inputs, so the true I(X;T) = H(T) <= log2 N, and once T keeps the
inputs apart it equals log2 N. KSG instead compares neighbourhoods at the scale of the k-th
neighbour: it measures how well T's geometry preserves the inputs' neighbourhoods, after the
jitter (for the paper's binary inputs, which are all at max-norm distance 1 from each other,
the inputs' neighbourhoods are set by the jitter alone). Read it as a geometric quantity of
the sample, not as the information of a noisy channel.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import digamma

from ibjax.mi import _hooks
from ibjax.mi._distances import block_rows, map_row_blocks, max_distances, mean_over_rows

KNN_JITTER = 1e-3
LN2 = math.log(2.0)


HUGE_FEATURE = 1e30  # beyond this magnitude a feature is first scaled down by 2**-100


def standardise(columns: jax.Array) -> jax.Array:
    """Each feature (row) of ``columns[d, N]`` centred and divided by its standard deviation
    (1 for a constant feature), without overflow for values up to float32's largest: a feature
    reaching :data:`HUGE_FEATURE` is first multiplied by 2**-100 (exact; the result does not
    depend on the scale; others are left as they are, bit for bit)."""
    magnitude = jnp.max(jnp.abs(columns), axis=1, keepdims=True)
    columns = jnp.where(magnitude > HUGE_FEATURE, columns * np.float32(2.0**-100), columns)
    centred = columns - jnp.mean(columns, axis=1, keepdims=True)
    largest = jnp.max(jnp.abs(centred), axis=1, keepdims=True)
    largest = jnp.where(largest > 0, largest, 1.0)
    scaled = centred / largest  # in [-1, 1]: its square cannot overflow
    spread = jnp.sqrt(jnp.mean(scaled * scaled, axis=1, keepdims=True))
    return scaled / jnp.where(spread > 0, spread, 1.0)


def jitter(columns: jax.Array, stream: int) -> jax.Array:
    """``columns[d, N]`` standardised, plus the fixed tie-breaking jitter (module docstring)."""
    noise = jax.random.normal(jax.random.key(stream), columns.shape, columns.dtype)
    return standardise(columns) + KNN_JITTER * noise


SELECT_BY_MINIMA_UP_TO = 16  # larger k take lax.top_k (a sort: 25x slower at k = 3 on a CPU)


def _kth_smallest(values: jax.Array, k: int) -> jax.Array:
    """The k-th smallest entry of each row of ``values[B, N]`` (ties counted separately)."""
    if k > SELECT_BY_MINIMA_UP_TO:
        return -jax.lax.top_k(-values, k)[0][:, k - 1]
    # k rounds: take the row's smallest remaining value and how many entries hold it (ties);
    # the k-th smallest is the value at which the running count reaches k.
    found = jnp.full(values.shape[:1], jnp.inf, values.dtype)
    count = jnp.zeros(values.shape[:1], jnp.int32)
    for _ in range(k):
        smallest = jnp.min(values, axis=1)
        ties = jnp.sum(values == smallest[:, None], axis=1)
        found = jnp.where((count < k) & (count + ties >= k), smallest, found)
        count = count + ties
        values = jnp.where(values == smallest[:, None], jnp.inf, values)
    return found


def knn_mi(t_columns: jax.Array, y: jax.Array, x_columns: jax.Array | None,
           k: int) -> tuple[jax.Array, jax.Array]:
    """kNN ``(I(X;T), I(T;Y))`` in bits (module docstring).

    Args:
      t_columns: ``[d, N]`` activations.
      y: ``[N]`` integer labels. A class with k rows or fewer gives NaN for I(T;Y).
      x_columns: ``[D, N]`` inputs of the same rows; ``None`` gives NaN for I(X;T).
      k: neighbours, >= 1.

    Returns:
      float32 scalars, bits.
    """
    num_rows = t_columns.shape[1]
    t_columns = jitter(t_columns, 0)
    with_x = x_columns is not None
    columns = (t_columns, y) + ((jitter(x_columns, 1),) if with_x else ())
    x_all = columns[2] if with_x else None
    inf = jnp.asarray(jnp.inf, t_columns.dtype)

    def one_block(start, blocks):
        t_block, y_block = blocks[0], blocks[1]
        rows = start + jnp.arange(t_block.shape[1])
        is_self = rows[:, None] == jnp.arange(num_rows)[None, :]
        distances_t = jnp.where(is_self, inf, max_distances(t_block, t_columns))
        same = y_block[:, None] == y[None, :]
        radius = _kth_smallest(jnp.where(same, distances_t, inf), k)
        within = jnp.sum(distances_t <= radius[:, None], axis=1)
        class_size = jnp.sum(same, axis=1)
        terms = [digamma(class_size.astype(t_columns.dtype)),
                 digamma(within.astype(t_columns.dtype)),
                 (class_size <= k).astype(t_columns.dtype)]
        if with_x:
            distances_x = jnp.where(is_self, inf, max_distances(blocks[2], x_all))
            eps = _kth_smallest(jnp.maximum(distances_x, distances_t), k)[:, None]
            n_x = jnp.sum(distances_x < eps, axis=1) + 1
            n_t = jnp.sum(distances_t < eps, axis=1) + 1
            terms.append(digamma(n_x.astype(t_columns.dtype))
                         + digamma(n_t.astype(t_columns.dtype)))
        return jnp.stack(terms)

    counts_fn = _hooks.NEIGHBOURS.get()  # a substitute set while tracing, or None
    if counts_fn is not None and k <= num_rows and t_columns.dtype == jnp.float32 and (
            y.dtype.itemsize <= 4 and (not with_x or x_all.dtype == jnp.float32)):  # exact
        x_given = x_all if with_x else jnp.zeros((0, num_rows), jnp.float32)
        counts = counts_fn(t_columns, y.astype(jnp.int32), x_given, k)
        class_size, within, closer_x, closer_t = counts
        terms = [digamma(class_size.astype(t_columns.dtype)),
                 digamma(within.astype(t_columns.dtype)),
                 (class_size <= k).astype(t_columns.dtype)]
        if with_x:
            terms.append(digamma((closer_x + 1).astype(t_columns.dtype))
                         + digamma((closer_t + 1).astype(t_columns.dtype)))
        # laid out as the row blocks lay them out, so the means add in the same order
        block, num_blocks = block_rows(num_rows)
        terms = jnp.pad(jnp.stack(terms), ((0, 0), (0, num_blocks * block - num_rows)))
        terms = jnp.swapaxes(terms.reshape(len(terms), num_blocks, block), 0, 1)
        valid = jnp.arange(num_blocks * block) < num_rows
    else:
        terms, valid = map_row_blocks(one_block, columns, num_rows)

    def mean(index):
        return mean_over_rows(terms[:, index], valid, num_rows)

    psi_n, psi_k = digamma(float(num_rows)), digamma(float(k))
    ity = (psi_n - mean(0) + psi_k - mean(1)) / LN2
    ity = jnp.where(mean(2) > 0, jnp.nan, ity)  # some class too small for k neighbours
    ixt = (psi_k + psi_n - mean(3)) / LN2 if with_x else jnp.asarray(jnp.nan)
    return ixt.astype(jnp.float32), ity.astype(jnp.float32)
