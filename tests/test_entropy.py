import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ibjax.mi import _entropy as entropy


def test_accurate_sum_matches_fsum(rng):
    values = (rng.random(5000) * 10 ** rng.uniform(-6, 1, 5000)).astype(np.float32)
    got = float(jax.jit(entropy.accurate_sum)(jnp.asarray(values)))
    want = math.fsum(values.astype(np.float64))
    assert abs(got - want) <= 1.5 * np.spacing(np.float32(want))


@pytest.mark.parametrize("width, radix", [(3, 30), (12, 30), (20, 50), (4, 300000)])
def test_radix_passes_match_multikey_sort(rng, width, radix):
    # Few distinct values so that rows collide and groups have sizes > 1.
    digits = jnp.asarray(rng.integers(0, min(radix, 3), (4096, width)))
    digits = digits.at[:, 0].set(jnp.asarray(rng.integers(0, radix, 4096)))
    labels = jnp.asarray(rng.integers(0, 3, 4096), jnp.int32)
    columns = list(digits.T)
    fast = entropy.mutual_informations(columns, radix, labels, num_classes=3)
    slow = entropy._mutual_informations_multikey(columns, labels)
    np.testing.assert_allclose(np.array(fast), np.array(slow), atol=1e-6)


def test_dense_rank():
    labels = jnp.asarray([7, -3, 7, 100, -3, 5])
    np.testing.assert_array_equal(np.array(entropy.dense_rank(labels)), [2, 0, 2, 3, 0, 1])


def test_groups_entropy_closed_form():
    # Sizes 1, 2, 5 of 8 samples.
    new = jnp.asarray([1, 1, 0, 1, 0, 0, 0, 0], bool)
    p = np.array([1, 2, 5]) / 8
    assert float(entropy.entropy_of_groups(new)) == pytest.approx(-(p * np.log2(p)).sum(),
                                                                  abs=1e-7)


def _float64_entropy(sizes: np.ndarray, num_samples: int) -> float:
    p = sizes[sizes > 0] / num_samples
    return math.fsum(-p * np.log2(p))


@pytest.mark.parametrize("num_samples, new_fraction", [(4096, 0.4), (4096, 0.999), (3000, 0.01),
                                                       (70000, 0.3), (7, 0.5)])
def test_entropy_sums_match_float64(rng, num_samples, new_fraction):
    # H(A) + H(B) - H(C) for three random partitions, against math.fsum in float64: within
    # 1.5 float32 spacings of the result (the conversion) plus 2**-31 (the terms' rounding).
    flags = [np.r_[True, rng.random(num_samples - 1) < new_fraction] for _ in range(3)]
    sizes = [jax.jit(entropy.group_sizes)(jnp.asarray(f)) for f in flags]
    for f, s in zip(flags, sizes, strict=True):
        want_sizes = np.diff(np.r_[np.flatnonzero(f), num_samples])
        np.testing.assert_array_equal(np.array(s)[:len(want_sizes)], want_sizes)
        assert not np.array(s)[len(want_sizes):].any()
    got = float(jax.jit(lambda a, b, c: entropy.combine_entropies((1, a), (1, b), (-1, c)))(
        *sizes))
    h = [_float64_entropy(np.array(s), num_samples) for s in sizes]
    want = h[0] + h[1] - h[2]
    assert abs(got - want) <= 1.5 * np.spacing(np.float32(abs(want))) + 2.0**-31
    single = float(jax.jit(entropy.entropy_of_groups)(jnp.asarray(flags[0])))
    assert abs(single - h[0]) <= 1.5 * np.spacing(np.float32(h[0])) + 2.0**-31


def test_entropy_sum_cancels_exactly():
    # H(A) + H(B) - H(A) - H(B) is exactly 0 (integer sums), not a float32 rounding of
    # H (~5e-7 bits here) as a floating-point sum would give.
    rng = np.random.default_rng(1)
    a, b = (entropy.group_sizes(jnp.asarray(np.r_[True, rng.random(4095) < q]))
            for q in (0.5, 0.05))
    assert float(entropy.combine_entropies((1, a), (-1, a))) == 0.0
    assert float(entropy.combine_entropies((1, a), (1, b), (-1, a), (-1, b))) == 0.0


@pytest.mark.parametrize("num_samples, num_terms", [(4096, 3 * 4096), (70000, 3 * 70000), (2, 6)])
def test_fixed_point_table_is_exact_and_cannot_overflow(num_samples, num_terms):
    table = entropy.fixed_point_table(num_samples, num_terms)
    limbs = table.limbs.astype(np.int64)
    assert limbs.min() >= 0 and limbs.max() < 2**table.limb_bits
    # A sum of num_terms limbs (any signs) stays inside int32.
    assert num_terms * (2**table.limb_bits - 1) < 2**31
    value = sum(limbs[:, i] * 2.0 ** (table.limb_bits * i) for i in range(limbs.shape[1]))
    counts = np.arange(num_samples + 1)
    p = counts[1:] / num_samples
    exact = np.r_[0.0, -p * np.log2(p)]
    np.testing.assert_allclose(value * 2.0**-table.frac_bits, exact, rtol=0,
                               atol=2.0 ** -(table.frac_bits + 1) + 1e-16)
    assert num_terms * 2.0 ** -(table.frac_bits + 1) < 2.0**-31


@pytest.mark.parametrize("size", [1, 63, 64, 65, 4096, 4097, 300_001])
def test_inclusive_cumsum(rng, size):
    """Blockwise float32 products give numpy's integer cumsum exactly, over one, two and
    three levels of blocks, for random flags and for all ones (the largest partial sums)."""
    flags = (rng.random(size) < 0.3).astype(np.int32)
    for values in (flags, np.ones(size, np.int32)):
        np.testing.assert_array_equal(np.array(entropy.inclusive_cumsum(jnp.asarray(values))),
                                      np.cumsum(values))
