"""Sample propagation: mutual information of a noise-injected network (Goldfeld et al. 2019).

Goldfeld, van den Berg, Greenewald, Melnyk, Nguyen, Kingsbury & Polyanskiy (2019),
"Estimating information flow in deep neural networks", ICML. Every hidden unit of the network
gets independent Gaussian noise, ``T_l = S_l + Z_l`` with ``Z_l ~ N(0, beta^2 I)``, where
``S_l = f_l(T_{l-1})`` is the layer's value before its noise. Then I(X;T_l) is finite, and
``h(T_l)`` and ``h(T_l | X)`` are entropies of Gaussian mixtures whose centres are samples of
``S_l``:

- the estimator is given ``m`` noisy propagations of the N inputs, ``s[j, :, i]`` (sample ``j``
  of ``S_l`` for input ``i``, noise in every earlier layer);
- it draws ``t_ij = s_ij + beta z_ij`` and evaluates, in nats (the Gaussian's normalising
  constant cancels in every difference)::

    h(T)       ~ -mean_ij ln (1 / mN) sum_{i'j'} phi(t_ij - s_i'j')       (all N m centres)
    h(T | X)   ~ -mean_ij ln (1 / m)  sum_{j'}   phi(t_ij - s_ij')        (input i's centres)
    h(T | Y)   ~ -mean_ij ln (1 / m N_y) sum_{i' in y_i, j'} phi(t_ij - s_i'j')

  with ``phi(u) = exp(-|u|^2 / (2 beta^2))``; I(X;T) = h(T) - h(T|X),
  I(T;Y) = h(T) - h(T|Y), reported in bits.

Each ``t_ij`` is a draw from the mixture it is evaluated on, so each mean is an unbiased Monte
Carlo estimate of that mixture's (cross-)entropy; the mixture over the N m centres is itself
the sample-propagation estimate of the distribution of ``S_l``. With noise only in the measured
layer (all ``m`` samples of an input equal) the true value lies between the KDE bounds of
:mod:`ibjax.mi._kde` with ``s2 = beta^2`` and the estimate approaches it as ``m`` grows.
Cost: O((N m)^2 d) for h(T) and h(T|Y) (row blocks, like the KDE), O(N m^2 d) for h(T|X).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ibjax.mi._distances import map_row_blocks, mean_over_rows, squared_distances

LN2 = math.log(2.0)


def noisy_mi(samples: jax.Array, y: jax.Array, noise_std: float,
             key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sample-propagation ``(I(X;T), I(T;Y))`` of one noisy layer, bits.

    Args:
      samples: ``[m, d, N]`` float: ``m`` propagations of the N inputs, each the layer's value
        before its own noise (with noise in every earlier layer).
      y: ``[N]`` integer labels (only equality is used).
      noise_std: beta > 0, the standard deviation of the layer's Gaussian noise.
      key: a JAX random key for the Monte Carlo noise draws.

    Returns:
      ``(ixt, ity)``, float32 scalars, bits.
    """
    m, d, n = samples.shape
    centres = jnp.transpose(samples, (1, 0, 2)).reshape(d, m * n)  # column j * n + i
    noise = jax.random.normal(key, samples.shape, samples.dtype)
    points = samples + noise_std * noise  # [m, d, N]
    scale = 1.0 / (2.0 * noise_std**2)

    # h(T | X): for each input, its m points against its m centres.
    def own_centres(point):  # [d, N] -> [N]: ln sum_j' phi(t_ij - s_ij')
        distances = jnp.sum((point[None] - samples) ** 2, axis=1)  # [j', N]
        return jax.nn.logsumexp(-distances * scale, axis=0)

    log_own = jax.lax.map(own_centres, points) - math.log(m)  # [j, N]
    entropy_given_x = -jnp.mean(log_own)

    labels = jnp.tile(y, m)
    point_columns = jnp.transpose(points, (1, 0, 2)).reshape(d, m * n)

    def one_block(start, blocks):
        t_block, y_block = blocks
        log_kernel = -squared_distances(t_block, centres) * scale  # [block, m N]
        same = y_block[:, None] == labels[None, :]
        log_all = jax.nn.logsumexp(log_kernel, axis=1)
        log_same = jax.nn.logsumexp(jnp.where(same, log_kernel, -jnp.inf), axis=1)
        log_count = jnp.log(jnp.sum(same, axis=1).astype(samples.dtype))
        return log_all, log_same, log_count

    (log_all, log_same, log_count), valid = map_row_blocks(
        one_block, (point_columns, labels), m * n)
    rows = m * n
    entropy = math.log(rows) - mean_over_rows(log_all, valid, rows)
    entropy_given_y = -mean_over_rows(log_same - log_count, valid, rows)
    ixt = (entropy - entropy_given_x) / LN2
    ity = (entropy - entropy_given_y) / LN2
    return ixt, ity
