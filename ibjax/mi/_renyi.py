"""Matrix-based Rényi alpha-entropy mutual information.

Giraldo, Rao & Príncipe (2015), "Measures of entropy from data using infinitely divisible
kernels", IEEE Trans. Inf. Theory 61(1), https://doi.org/10.1109/TIT.2014.2370058; used for
deep networks by Yu et al. (2019, 2020) and, for CNNs, Wickstrøm, Løkse, Kampffmeyer, Yu,
Príncipe & Jenssen (2019), arXiv:1909.03400.

With a Gaussian Gram matrix ``K_ij = exp(-|t_i - t_j|^2 / (2 sigma^2))`` over the N rows and
``A = K / tr K``, the entropy is ``S_a(A) = log2(sum_i lambda_i(A)^a) / (1 - a)`` (the von
Neumann entropy ``-sum lambda log2 lambda`` at ``a = 1``), and::

    I(X;T) = S_a(A_X) + S_a(A_T) - S_a(A_X o A_T / tr(A_X o A_T))
    I(T;Y) = S_a(A_Y) + S_a(A_T) - S_a(A_Y o A_T / tr(A_Y o A_T))

(``o`` the elementwise product). ``A_X`` is the Gram matrix of the inputs; without inputs, the
delta kernel of N distinct inputs (``A_X = I / N``), for which ``I(X;T) = S_a(A_T)``. ``A_Y``
is the label kernel ``1[y_i = y_j]``, whose ``S_a`` is the Rényi entropy of the label
frequencies.

``a = 2`` needs no eigenvalues: ``sum lambda^2 = sum_ij A_ij^2`` (the Frobenius norm), and with
unit diagonals ``tr K = N``, so each entropy is ``-log2(sum_ij K_ij^2 / N^2)``: one pass over
row blocks of the pairwise distances, O(N^2 d) time and O(block N) memory, in-graph. Other
``a`` build the N x N matrices and take their eigenvalues: O(N^2) memory and O(N^3) time per
layer and network; measure on a few hundred rows (``mi_samples``). The eigenvalues come from
numpy on the host (a ``jax.pure_callback``, float64), not from ``jnp.linalg.eigvalsh``, which
sometimes hangs XLA's CPU runtime in programs holding several of them (see
:func:`_host_eigvalsh`).

Kernel width ``sigma``: ``"silverman"``, Silverman's rule of thumb per layer (and for the
inputs), ``sigma = s (4 / (d + 2))^(1 / (d + 4)) N^(-1 / (d + 4))`` with ``s`` the root mean
of the per-unit variances and d the width (Giraldo et al. and Yu et al. use
``sigma = gamma N^(-1/(4+d))``; this rule sets gamma from the layer's spread, so the width
follows a layer's scale, as ReLU layers need); or a number, used for the layers and the inputs
alike.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ibjax.mi._distances import map_row_blocks, mean_over_rows, squared_distances

SILVERMAN = "silverman"
MIN_SIGMA = 1e-15  # a constant layer (spread 0) gets this width; its kernel is all ones anyway


def kernel_width(columns: jax.Array, rule: str | float) -> jax.Array:
    """The Gaussian kernel width ``sigma`` of ``columns[d, N]`` (see the module docstring)."""
    if rule != SILVERMAN:
        return jnp.asarray(rule, columns.dtype)
    width, num_rows = columns.shape
    spread = jnp.sqrt(jnp.mean(jnp.var(columns, axis=1)))
    factor = (4.0 / (width + 2.0)) ** (1.0 / (width + 4.0)) * num_rows ** (-1.0 / (width + 4.0))
    return jnp.maximum(spread * factor, MIN_SIGMA)


LARGEST_MODERATE = 2.0**50  # beyond this magnitude squares summed over rows could overflow


def _moderate_scale(columns: jax.Array) -> jax.Array:
    """``columns[d, N]`` times a power of two (exact) bringing the largest magnitude into
    [0.5, 1) when it exceeds :data:`LARGEST_MODERATE` or is below its inverse (squares would
    underflow), else unchanged. With Silverman's
    width, which follows the layer's scale, the estimate does not depend on that scale (up to
    float rounding), but the variances and squared distances of values beyond ~1e17 would
    overflow float32 (a width of inf: an estimate of 0, or NaN), and below ~1e-15 underflow."""
    magnitude = jax.lax.stop_gradient(jnp.max(jnp.abs(columns)))
    exponent = jnp.frexp(magnitude)[1]
    one = jnp.ones((), columns.dtype)
    half = exponent // 2  # two normal factors: 2**-128 alone would be subnormal in float32
    scaled = columns * jnp.ldexp(one, -half) * jnp.ldexp(one, half - exponent)
    extreme = (magnitude > LARGEST_MODERATE) | ((magnitude < 1 / LARGEST_MODERATE)
                                                & (magnitude > 0))
    return jnp.where(extreme, scaled, columns)


def _inverse_two_sigma_squared(sigma: jax.Array) -> jax.Array:
    return 1.0 / (2.0 * jnp.maximum(sigma, MIN_SIGMA) ** 2)


def renyi_mi(t_columns: jax.Array, y: jax.Array, x_columns: jax.Array | None, alpha: float,
             sigma: str | float) -> tuple[jax.Array, jax.Array]:
    """Matrix-based Rényi ``(I(X;T), I(T;Y))`` in bits (module docstring).

    Args:
      t_columns: ``[d, N]`` activations.
      y: ``[N]`` integer labels (only equality is used).
      x_columns: ``[D, N]`` inputs of the same rows, or ``None`` (distinct inputs).
      alpha: the order a > 0.
      sigma: ``"silverman"`` or a kernel width > 0.

    Returns:
      float32 scalars, bits.
    """
    if sigma == SILVERMAN:  # the estimate does not depend on a layer's scale: keep squares finite
        t_columns = _moderate_scale(t_columns)
        x_columns = None if x_columns is None else _moderate_scale(x_columns)
    if alpha == 2.0:
        return _renyi2(t_columns, y, x_columns, sigma)
    return _renyi_eigen(t_columns, y, x_columns, alpha, sigma)


def _renyi2(t_columns, y, x_columns, sigma):
    """``a = 2`` by Frobenius sums in row blocks."""
    num_rows = t_columns.shape[1]
    t_scale = 2.0 * _inverse_two_sigma_squared(kernel_width(t_columns, sigma))  # K^2 exponent
    with_x = x_columns is not None
    if with_x:
        x_scale = 2.0 * _inverse_two_sigma_squared(kernel_width(x_columns, sigma))
    columns = (t_columns, y) + ((x_columns,) if with_x else ())

    def one_block(start, blocks):
        t_block, y_block = blocks[0], blocks[1]
        exponent_t = squared_distances(t_block, t_columns) * t_scale
        same = y_block[:, None] == y[None, :]
        squared_t = jnp.exp(-exponent_t)  # K_T^2
        sums = [jnp.sum(squared_t, axis=1), jnp.sum(jnp.where(same, squared_t, 0.0), axis=1),
                jnp.sum(same, axis=1).astype(squared_t.dtype)]  # the row's class size
        if with_x:
            exponent_x = squared_distances(blocks[2], x_columns) * x_scale
            sums += [jnp.sum(jnp.exp(-exponent_x), axis=1),
                     jnp.sum(jnp.exp(-(exponent_x + exponent_t)), axis=1)]
        return jnp.stack(sums)

    sums, valid = map_row_blocks(one_block, columns, num_rows)  # [blocks, k, block]
    totals = [mean_over_rows(sums[:, k], valid, num_rows) * num_rows
              for k in range(sums.shape[1])]
    log2_n2 = 2.0 * math.log2(num_rows)

    def entropy(total):  # S_2 of a unit-diagonal Gram matrix with squared sum ``total``
        return log2_n2 - jnp.log2(total)

    entropy_y = entropy(totals[2])  # sum_ij 1[y_i = y_j] = sum_c n_c^2
    entropy_t = entropy(totals[0])
    ity = entropy_y + entropy_t - entropy(totals[1])
    ixt = entropy_t if not with_x else entropy(totals[3]) + entropy_t - entropy(totals[4])
    return ixt.astype(jnp.float32), ity.astype(jnp.float32)


def _entropies_on_host(matrices: np.ndarray, alpha: float,
                       gradients: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``S_a`` in bits of symmetric PSD unit-trace ``matrices[..., N, N]``, in float64; with
    ``gradients``, also ``dS_a / dA`` ``[..., N, N]`` (see :func:`matrix_entropy`)."""
    values, vectors = (np.linalg.eigh(np.asarray(matrices, np.float64)) if gradients else
                       (np.linalg.eigvalsh(np.asarray(matrices, np.float64)), None))
    floor = np.finfo(np.float32).eps * values.max(axis=-1, keepdims=True)
    positive = values > floor
    # Unit trace in float64: the float32 matrix's trace is 1 only to ~1e-7, an error that
    # log(sum lambda^a) / (1 - a) would divide by 1 - a (0.01 bits at a = 1.00001).
    values = np.where(positive, values, 0.0)
    total = values.sum(axis=-1, keepdims=True)
    p = values / total
    logs = np.log(np.where(positive, p, 1.0))
    if alpha == 1.0:
        entropy = -np.sum(np.where(positive, p * logs, 0.0), axis=-1)
        slopes = -(logs + 1.0)  # dS/dp_i, nats
    else:  # log sum p^a as a log-sum-exp: no underflow for large a
        powers = np.where(positive, alpha * logs, -np.inf)
        top = powers.max(axis=-1, keepdims=True)
        log_sum = top[..., 0] + np.log(np.sum(np.exp(powers - top), axis=-1))
        entropy = log_sum / (1.0 - alpha)
        slopes = alpha / (1.0 - alpha) * np.exp((alpha - 1.0) * logs - log_sum[..., None])
    entropy = (entropy / np.log(2.0)).astype(matrices.dtype)
    if not gradients:
        return entropy
    # p = lambda / sum(lambda): dS/dlambda_j = (slope_j - sum_i slope_i p_i) / sum(lambda),
    # and dlambda_j = v_j' dA v_j; floored eigenvalues count as constants (0).
    mean_slope = np.sum(np.where(positive, slopes * p, 0.0), axis=-1, keepdims=True)
    per_value = np.where(positive, (slopes - mean_slope) / total, 0.0) / np.log(2.0)
    gradient = np.einsum("...ij,...j,...kj->...ik", vectors, per_value, vectors)
    return entropy, gradient.astype(matrices.dtype)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def matrix_entropy(a: jax.Array, alpha: float) -> jax.Array:
    """``S_a`` in bits of symmetric positive semi-definite matrices ``a[..., N, N]`` of unit
    trace (any leading axes), computed by numpy in float64 on the host.

    Not ``jnp.linalg.eigvalsh``: on XLA's CPU backend (jax 0.10), a program holding several
    batched ``eigvalsh`` calls beside other work sometimes never finished (every thread idle;
    reproduced with 3 layers x 4 networks of 512 rows). numpy's LAPACK runs outside XLA's
    thread pool, and float64 keeps ``log2(sum lambda^a) / (1 - a)`` accurate next to a = 1 and,
    as a log-sum-exp, finite for large a. It is a host callback: the matrices leave the device.
    Eigenvalues below ``eps * max(lambda)`` (float32's eps, the matrices' precision) count as
    0: for ``a < 1`` the rounding noise of a low-rank matrix's zero eigenvalues, raised to the
    power a, would add up (0.016 bits at a = 0.5, N = 300, rank 3; 0.003 with this floor).

    Differentiable: the derivative ``dS / dA = V diag(dS / dlambda) V'`` comes from a second
    host call (eigenvectors too) only when a gradient is taken; eigenvalues below the floor
    are held constant (the derivative of ``lambda^a`` at 0 is infinite for a < 1).
    """
    shape = jax.ShapeDtypeStruct(a.shape[:-2], a.dtype)
    return jax.pure_callback(lambda m: _entropies_on_host(m, alpha), shape, a,
                             vmap_method="expand_dims")


@matrix_entropy.defjvp
def _matrix_entropy_jvp(alpha, primals, tangents):
    (a,), (a_dot,) = primals, tangents
    shapes = (jax.ShapeDtypeStruct(a.shape[:-2], a.dtype), jax.ShapeDtypeStruct(a.shape, a.dtype))
    entropy, gradient = jax.pure_callback(lambda m: _entropies_on_host(m, alpha, True), shapes,
                                          a, vmap_method="expand_dims")
    return entropy, jnp.sum(gradient * a_dot, axis=(-2, -1))


def _label_entropy(frequencies: jax.Array, alpha: float) -> jax.Array:
    """Rényi entropy in bits of the labels, from each row's class frequency ``p(y_i)``:
    ``log2(mean_i p_i^(a - 1)) / (1 - a)``, kept accurate next to a = 1 (``expm1``/``log1p``)
    and finite for large a (log-sum-exp)."""
    logs = jnp.log(frequencies)
    if alpha == 1.0:
        return -jnp.mean(logs) / math.log(2.0)
    beta = alpha - 1.0
    if abs(beta) < 0.01:
        log_mean = jnp.log1p(jnp.mean(jnp.expm1(beta * logs)))
    else:
        log_mean = jax.nn.logsumexp(beta * logs) - math.log(frequencies.shape[0])
    return log_mean / (1.0 - alpha) / math.log(2.0)


def _gram(columns, sigma):
    """``A = K / tr K`` of ``columns[d, N]`` with the Gaussian kernel."""
    scale = _inverse_two_sigma_squared(kernel_width(columns, sigma))
    kernel = jnp.exp(-squared_distances(columns, columns) * scale)
    return kernel / jnp.trace(kernel)


def _joint(a, b):
    product = a * b
    return product / jnp.trace(product)


def _renyi_eigen(t_columns, y, x_columns, alpha, sigma):
    """Any ``a > 0`` by eigenvalues of the N x N matrices, all of one layer in one host call."""
    num_rows = t_columns.shape[1]
    a_t = _gram(t_columns, sigma)
    same = (y[:, None] == y[None, :]).astype(a_t.dtype)
    a_y = same / num_rows
    entropy_y = _label_entropy(jnp.sum(same, axis=1) / num_rows, alpha)  # p(y_i) per row
    matrices = [a_t, _joint(a_y, a_t)]
    if x_columns is not None:
        a_x = _gram(x_columns, sigma)
        matrices += [a_x, _joint(a_x, a_t)]
    entropies = matrix_entropy(jnp.stack(matrices), alpha)
    entropy_t = entropies[0]
    ity = entropy_y + entropy_t - entropies[1]
    ixt = entropy_t if x_columns is None else entropies[2] + entropy_t - entropies[3]
    return ixt.astype(jnp.float32), ity.astype(jnp.float32)
