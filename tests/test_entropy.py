import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ibjax import entropy


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
