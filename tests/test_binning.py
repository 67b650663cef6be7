import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import numpy_binned_mi

import ibjax
from ibjax.data import load_var_u
from ibjax.mi import bin_edges, bin_indices

TOL = 1e-6  # bits; float32 result, one rounding


def _check(t, y, **kwargs):
    got = np.array(jax.jit(ibjax.mi.binned_mi, static_argnames=("num_bins", "value_range",
                                                              "num_classes"))(t, y, **kwargs))
    ref_kwargs = {k: v for k, v in kwargs.items() if k != "num_classes"}
    want = np.array(numpy_binned_mi(np.asarray(t), np.asarray(y), **ref_kwargs))
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)


@pytest.mark.parametrize("width", [1, 2, 4, 6, 7, 10, 13])
def test_random_tanh_activations_match_numpy(rng, width):
    t = np.tanh(rng.normal(size=(4096, width)) * rng.uniform(0.3, 4.0)).astype(np.float32)
    y = rng.integers(0, 2, 4096)
    _check(t, y)
    _check(t, y, num_classes=2)


def test_saturated_activations(rng):
    t = np.tanh(rng.normal(size=(1000, 5)) * 50).astype(np.float32)  # mostly +-1
    _check(t, rng.integers(0, 3, 1000))


def test_values_on_and_outside_edges(rng):
    edges = bin_edges(30, (-1.0, 1.0))
    outside = np.array([-5.0, -1.0000001, 1.0, 1.5, 7.0], np.float32)
    pool = np.concatenate([edges, np.nextafter(edges, np.float32(-2)), outside])
    t = rng.choice(pool, size=(2000, 4)).astype(np.float32)
    _check(t, rng.integers(0, 2, 2000))
    _check(t, rng.integers(0, 2, 2000), num_bins=7, value_range=(-0.5, 2.0))


def test_constant_layer_is_zero():
    t = np.full((4096, 3), 0.3, np.float32)
    ixt, ity = ibjax.mi.binned_mi(t, load_var_u().y)
    assert float(ixt) == 0.0 and abs(float(ity)) < TOL


def test_identity_layer_on_var_u():
    data = load_var_u()
    ixt, ity = ibjax.mi.binned_mi(data.x, data.y)
    assert float(ixt) == pytest.approx(12.0, abs=TOL)
    assert float(ity) == pytest.approx(0.999157, abs=1e-6)


def test_arbitrary_label_values(rng):
    t = np.tanh(rng.normal(size=(3000, 6))).astype(np.float32)
    y = rng.integers(0, 4, 3000)
    a = ibjax.mi.binned_mi(t, y * 1000 - 7)
    b = ibjax.mi.binned_mi(t, y, num_classes=4)
    np.testing.assert_allclose(np.array(a), np.array(b), atol=TOL)


def test_vmap_over_seeds_equals_loop(rng):
    t = np.tanh(rng.normal(size=(5, 1024, 7))).astype(np.float32)
    y = rng.integers(0, 2, 1024)
    batched = jax.jit(jax.vmap(ibjax.mi.binned_mi, in_axes=(0, None)))(t, y)
    for s in range(5):
        single = ibjax.mi.binned_mi(t[s], y)
        assert float(batched[0][s]) == float(single[0])
        assert float(batched[1][s]) == float(single[1])


def test_invariant_to_permuting_neurons_and_samples(rng):
    t = np.tanh(rng.normal(size=(2048, 6))).astype(np.float32)
    y = rng.integers(0, 2, 2048)
    base = np.array(ibjax.mi.binned_mi(t, y))
    rows = rng.permutation(2048)
    np.testing.assert_allclose(np.array(ibjax.mi.binned_mi(t[:, ::-1], y)), base, atol=TOL)
    np.testing.assert_allclose(np.array(ibjax.mi.binned_mi(t[rows], y[rows])), base, atol=TOL)
    padded = np.concatenate([t, np.full((2048, 3), 0.5, np.float32)], axis=1)
    np.testing.assert_allclose(np.array(ibjax.mi.binned_mi(padded, y)), base, atol=TOL)


def test_merging_bins_never_raises_entropy(rng):
    t = np.tanh(rng.normal(size=(4096, 3))).astype(np.float32)
    y = rng.integers(0, 2, 4096)
    # 30 edges -> 29 intervals; 15 edges on the same range merge pairs of them.
    fine = ibjax.mi.binned_mi(t, y, num_bins=30)
    coarse = ibjax.mi.binned_mi(t, y, num_bins=15)
    assert float(coarse[0]) <= float(fine[0]) + TOL


def test_bounds(rng):
    t = np.tanh(rng.normal(size=(4096, 10)) * 3).astype(np.float32)
    y = load_var_u().y
    ixt, ity = ibjax.mi.binned_mi(t, y)
    assert 0 <= float(ity) <= 0.999157 + TOL and 0 <= float(ixt) <= 12 + TOL


def test_bin_index_convention():
    t = jnp.asarray([-3.0, -1.0, -0.99, 0.0, 0.999, 1.0, 2.0, np.nan], jnp.float32)
    idx = np.array(bin_indices(t, 3, (-1.0, 1.0)))  # edges -1, 0, 1
    np.testing.assert_array_equal(idx, [0, 0, 0, 1, 1, 2, 2, 0])


@pytest.mark.parametrize("num_bins", [2, 30, 31, 64, 65, 300])
def test_both_bin_index_paths_count_edges_exactly(rng, num_bins):
    """Comparison with every edge (<= 64 edges) and guess-and-correct (more) both equal
    numpy's edge count, also for values exactly on the float32 edges and just beside them."""
    edges = bin_edges(num_bins, (-1.0, 1.0))
    beside = np.concatenate([np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    # Next to an edge at 0 lie subnormals, which XLA's CPU code flushes to 0 (they bin as 0).
    beside = beside[np.abs(beside) >= np.finfo(np.float32).tiny]
    t = np.concatenate([edges, beside, rng.uniform(-1.2, 1.2, 5000),
                        [-np.inf, np.inf, np.nan]]).astype(np.float32)
    want = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, num_bins - 1)
    want[np.isnan(t)] = 0
    got = np.asarray(jax.jit(lambda v: bin_indices(v, num_bins, (-1.0, 1.0)))(jnp.asarray(t)))
    np.testing.assert_array_equal(got, want)


def test_non_finite_activations_give_nan():
    t = np.zeros((16, 2), np.float32)
    t[3, 1] = np.inf
    ixt, ity = ibjax.mi.binned_mi(t, np.zeros(16, int))
    assert np.isnan(float(ixt)) and np.isnan(float(ity))


@pytest.mark.parametrize("kwargs, match", [
    ({"num_bins": 1}, "num_bins"),
    ({"num_bins": 2.5}, "num_bins"),
    ({"value_range": (1.0, -1.0)}, "value_range"),
    ({"value_range": (0.0, 0.0)}, "value_range"),
    ({"value_range": (0.0, np.inf)}, "value_range"),
    ({"num_classes": 0}, "num_classes"),
])
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(ibjax.mi.MIError, match=match):
        ibjax.mi.binned_mi(np.zeros((8, 2), np.float32), np.zeros(8, int), **kwargs)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="y must have shape"):
        ibjax.mi.binned_mi(np.zeros((8, 2), np.float32), np.zeros(7, int))
    with pytest.raises(ValueError, match="t must have shape"):
        ibjax.mi.binned_mi(np.zeros((8,), np.float32), np.zeros(8, int))
    with pytest.raises(ValueError, match="integer labels"):
        ibjax.mi.binned_mi(np.zeros((8, 2), np.float32), np.zeros(8, np.float32))


def test_zero_rows_are_refused_by_name():
    with pytest.raises(ibjax.mi.MIError, match="t must have at least one row"):
        ibjax.mi.binned_mi(np.zeros((0, 3), np.float32), np.zeros(0, np.int32))
