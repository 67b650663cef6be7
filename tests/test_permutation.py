"""The sort-free shuffle: exact permutations, determinism, and chi-square uniformity.

The statistical tests use fixed keys, so they pass or fail deterministically. Their thresholds
are the chi-square quantile at p = 1e-4 (scipy), and each test has power: it fails for the
Feistel networks with fewer rounds (``test_the_tests_detect_too_few_rounds``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from ibjax import permutation as perm_module
from ibjax.permutation import num_rounds, permutation

P_VALUE = 1e-4


def _permutations(n: int, num_keys: int, seed: int = 1) -> np.ndarray:
    keys = jax.random.split(jax.random.key(seed), num_keys)
    return np.asarray(jax.jit(jax.vmap(lambda k: permutation(k, n)))(keys))


def _chi2(observed: np.ndarray, expected: np.ndarray) -> float:
    return float(((observed - expected) ** 2 / expected).sum())


def _position_and_pair_p_values(perms: np.ndarray) -> tuple[float, float]:
    """P-values of "each position is uniform" and "(perm[0], perm[1]) is uniform"."""
    num_keys, n = perms.shape
    counts = np.stack([np.bincount(perms[:, i], minlength=n) for i in range(n)])
    position_chi2 = _chi2(counts, np.full((n, n), num_keys / n))
    pairs = np.bincount(perms[:, 0] * n + perms[:, 1], minlength=n * n).reshape(n, n)
    off_diagonal = ~np.eye(n, dtype=bool)
    pair_chi2 = _chi2(pairs[off_diagonal], np.full(n * (n - 1), num_keys / (n * (n - 1))))
    return (stats.chi2.sf(position_chi2, (n - 1) ** 2),
            stats.chi2.sf(pair_chi2, n * (n - 1) - 1))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 9, 64, 65, 255, 256, 1000, 3277, 4096, 4097])
def test_every_value_exactly_once(n):
    perms = _permutations(n, 8)
    assert perms.dtype == np.int32 and perms.shape == (8, n)
    for p in perms:
        np.testing.assert_array_equal(np.sort(p), np.arange(n))


def test_deterministic_alone_batched_and_jitted():
    key = jax.random.key(7)
    alone = np.asarray(permutation(key, 3277))
    jitted = np.asarray(jax.jit(lambda k: permutation(k, 3277))(key))
    keys = jnp.stack([jax.random.key(6), key, jax.random.key(8)])
    batched = np.asarray(jax.vmap(lambda k: permutation(k, 3277))(keys))
    np.testing.assert_array_equal(alone, jitted)
    np.testing.assert_array_equal(alone, batched[1])
    assert (batched[0] != batched[1]).mean() > 0.99  # other keys, other orders


@pytest.mark.parametrize("n", [6, 8, 13, 20])
def test_small_permutations_are_uniform(n):
    """Every position uniform over the values; the first two positions jointly uniform."""
    p_position, p_pair = _position_and_pair_p_values(_permutations(n, 40_000))
    assert p_position > P_VALUE and p_pair > P_VALUE, (p_position, p_pair)


@pytest.mark.parametrize("n", [300, 3277, 4097])
def test_training_set_sized_permutations_are_uniform(n):
    """Coarse-grained (16 x 16 blocks of positions and values) over all positions, and for
    neighbouring positions (which would share a minibatch)."""
    num_keys, blocks = 3000, 16
    perms = _permutations(n, num_keys, seed=2)
    block = np.arange(n) * blocks // n
    size = np.bincount(block, minlength=blocks).astype(float)
    value_block = block[perms]
    position_block = np.broadcast_to(block, perms.shape)
    by_position = np.bincount((position_block * blocks + value_block).ravel(),
                              minlength=blocks * blocks)
    expected = (np.outer(size, size) / n * num_keys).ravel()
    neighbours = np.bincount((value_block[:, :-1] * blocks + value_block[:, 1:]).ravel(),
                             minlength=blocks * blocks)
    expected_neighbours = ((np.outer(size, size) - np.diag(size)) / (n * (n - 1))
                           * num_keys * (n - 1)).ravel()
    dof = (blocks - 1) ** 2
    assert stats.chi2.sf(_chi2(by_position, expected), dof) > P_VALUE
    assert stats.chi2.sf(_chi2(neighbours, expected_neighbours), dof) > P_VALUE
    fixed_points = (perms == np.arange(n)).sum(axis=1)
    assert abs(fixed_points.mean() - 1.0) < 5 * np.sqrt(1.0 / num_keys)  # Poisson(1)


def test_the_tests_detect_too_few_rounds(monkeypatch):
    """With 4 rounds instead of 16 the small-n tests above fail: they have power."""
    monkeypatch.setattr(perm_module, "num_rounds", lambda n: 4)
    p_position, p_pair = _position_and_pair_p_values(_permutations(8, 40_000))
    assert min(p_position, p_pair) < P_VALUE


def test_radices_factor_n_exactly_where_they_can():
    # The paper's 3277 training rows: 29 x 113, no cycle walking; 4097 = 17 x 241 is too
    # unbalanced and walks on 65 x 64; small n never use exact factors (3 = 1 x 3 would only
    # reach rotations).
    assert perm_module.feistel_radices(3277) == (29, 113)
    assert perm_module.feistel_radices(4096) == (64, 64)
    assert perm_module.feistel_radices(4097) == (65, 64)
    assert perm_module.feistel_radices(3) == (2, 2)
    for n in range(1, 3000, 7):
        a, b = perm_module.feistel_radices(n)
        assert a * b >= n and a * b - n < max(a, b)
        if a * b == n and n >= 256:
            assert a <= b <= perm_module.MAX_RADIX_RATIO * a


def test_rounds_and_bad_sizes():
    assert num_rounds(3277) == 8 and num_rounds(100) == 16
    for bad in (0, -3, 2**31, 2.5, True):
        with pytest.raises(ValueError, match="n must be an integer"):
            permutation(jax.random.key(0), bad)
