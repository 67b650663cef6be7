"""Every registered estimator against closed forms, invariances and numpy written separately.

Tolerances: discrete estimators are exact counts rounded once to float32 (1e-5 bits); the KDE
bounds are float32 sums of N kernel values (1e-3 bits against a float64 reference).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import numpy_discrete_mi
from scipy.spatial.distance import cdist
from scipy.special import logsumexp
from scipy.stats import rankdata

from ibjax.data import load_var_u
from ibjax.mi import ESTIMATORS, MIError, Settings, estimate, mutual_information
from ibjax.mi import _kde as kde
from ibjax.mi._estimators import estimate_columns

# matrix-renyi and knn: tests/test_renyi_knn.py; exact and noisy (which needs noisy samples):
# tests/test_quantized_noisy.py
NAMES = [n for n in ESTIMATORS if n not in ("matrix-renyi", "knn", "exact", "noisy")]
H_Y_VAR_U = 0.999157  # H(Y) of the paper's labels (2118 ones in 4096), bits
DISCRETE_TOL = 1e-5
KDE_TOL = 1e-3


def tolerance(name):
    return KDE_TOL if name.startswith("kde") else DISCRETE_TOL


# ----------------------------------------------------------------- independent numpy references


def numpy_layer_range_digits(t, num_bins):
    t = t.astype(np.float64)
    edges = np.linspace(t.min(), t.max(), num_bins)
    return np.clip(np.searchsorted(edges, t, side="right") - 1, 0, num_bins - 1)


def numpy_equal_mass_digits(t, num_bins):
    ranks = np.stack([rankdata(t[:, k], method="min") - 1 for k in range(t.shape[1])], axis=1)
    return ranks * num_bins // t.shape[0]


def numpy_kde(t, y, variance, bound):
    """Saxe et al.'s KDE code (kde.py of their ibsgd repository), in float64, in bits."""
    t = t.astype(np.float64)

    def entropy_kl(points, var):
        dims = points.shape[1]
        dists = cdist(points, points, "sqeuclidean")  # float64, exact zero diagonal
        normconst = dims / 2 * np.log(2 * np.pi * var)
        lprobs = logsumexp(-dists / (2 * var), axis=1) - np.log(len(points)) - normconst
        return dims / 2 - lprobs.mean()

    def entropy(points):
        if bound == "upper":
            return entropy_kl(points, variance)
        return entropy_kl(points, 4 * variance) + np.log(0.25) * points.shape[1] / 2

    cond = t.shape[1] / 2 * (np.log(2 * np.pi * variance) + 1)
    h = entropy(t)
    h_given_y = sum((y == c).mean() * entropy(t[y == c]) for c in np.unique(y))
    return (h - cond) / np.log(2), (h - h_given_y) / np.log(2)


def numpy_mi(name, t, y, num_bins=30, bin_range=(-1.0, 1.0), bin_width=0.07,
             kde_variance=1e-3):
    if name == "binning":
        if bin_range == "layer":
            return numpy_discrete_mi(numpy_layer_range_digits(t, num_bins), y)
        edges = np.linspace(*bin_range, num_bins).astype(np.float32)
        digits = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, num_bins - 1)
        return numpy_discrete_mi(digits, y)
    if name == "binning-width":
        return numpy_discrete_mi(np.floor(t.astype(np.float64) / bin_width), y)
    if name == "equal-mass":
        return numpy_discrete_mi(numpy_equal_mass_digits(t, num_bins), y)
    return numpy_kde(t, y, kde_variance, name.split("-")[1])


def random_layer(seed=0, n=600, d=4, scale=1.0, classes=2):
    rng = np.random.default_rng(seed)
    t = np.tanh(scale * rng.normal(size=(n, d))).astype(np.float32)
    y = rng.integers(0, classes, n).astype(np.int32)
    return t, y


# ----------------------------------------------------------------- closed forms


@pytest.mark.parametrize("name", NAMES)
def test_identity_layer_on_var_u(name):
    data = load_var_u()
    ixt, ity = mutual_information(data.x.astype(np.float32), data.y, name, num_classes=2)
    assert float(ixt) == pytest.approx(12.0, abs=tolerance(name))
    assert float(ity) == pytest.approx(H_Y_VAR_U, abs=max(tolerance(name), 1e-6))


@pytest.mark.parametrize("name", NAMES)
def test_constant_layer_carries_no_information(name):
    data = load_var_u()
    t = np.full((data.x.shape[0], 3), 0.3, np.float32)
    ixt, ity = mutual_information(t, data.y, name)
    assert float(ixt) == pytest.approx(0.0, abs=tolerance(name))
    assert float(ity) == pytest.approx(0.0, abs=tolerance(name))


@pytest.mark.parametrize("bound", ["upper", "lower"])
def test_kde_far_apart_points_give_log2_n(bound):
    n = 257
    t = (np.arange(n, dtype=np.float32) * 10.0)[:, None]
    y = (np.arange(n) % 3).astype(np.int32)
    ixt, ity = mutual_information(t, y, f"kde-{bound}", kde_variance=1e-3)
    p = np.bincount(y) / n
    assert float(ixt) == pytest.approx(np.log2(n), abs=KDE_TOL)
    assert float(ity) == pytest.approx(-(p * np.log2(p)).sum(), abs=KDE_TOL)


def test_kde_lower_bound_is_below_upper_bound():
    for seed, scale in [(0, 0.3), (1, 1.0), (2, 3.0)]:
        t, y = random_layer(seed, scale=scale, n=500, d=3)
        upper = mutual_information(t, y, "kde-upper", kde_variance=0.05)
        lower = mutual_information(t, y, "kde-lower", kde_variance=0.05)
        assert float(lower[0]) <= float(upper[0]) + 1e-6
        assert 0.0 < float(lower[0]) < np.log2(500)


@pytest.mark.parametrize("num_bins", [16, 64])
def test_equal_mass_one_neuron_gives_log2_bins(num_bins):
    t = np.random.default_rng(3).normal(size=(4096, 1)).astype(np.float32)
    y = np.zeros(4096, np.int32)
    ixt, _ = mutual_information(t, y, "equal-mass", num_bins=num_bins)
    assert float(ixt) == pytest.approx(np.log2(num_bins), abs=DISCRETE_TOL)


@pytest.mark.parametrize(("n", "num_bins"), [(4096, 2**20), (50_000, 45_000)])
def test_equal_mass_with_more_bins_than_int32_products_allow(n, num_bins):
    """rank * num_bins beyond 2**31 (it wrapped around before): numpy's int64 bins."""
    rng = np.random.default_rng(n)
    t = rng.normal(size=(n, 2)).astype(np.float32)
    t[: n // 3, 1] = 0.5  # ties: a third of the rows share a rank
    y = rng.integers(0, 3, n)
    ixt, ity = mutual_information(t, y, "equal-mass", num_bins=num_bins)
    want = numpy_discrete_mi(numpy_equal_mass_digits(t, num_bins), y)
    np.testing.assert_allclose([float(ixt), float(ity)], want, atol=DISCRETE_TOL)


# ----------------------------------------------------------------- invariances


@pytest.mark.parametrize("name", NAMES)
def test_invariant_to_permuting_neurons_and_samples(name):
    t, y = random_layer(4, n=512, d=5, scale=2.0)
    rng = np.random.default_rng(5)
    rows, cols = rng.permutation(512), rng.permutation(5)
    kwargs = {"bin_range": "layer"} if name == "binning" else {}
    base = mutual_information(t, y, name, **kwargs)
    shuffled = mutual_information(t[rows][:, cols], y[rows], name, **kwargs)
    np.testing.assert_allclose(shuffled, base, atol=tolerance(name))


@pytest.mark.parametrize("name", ["binning", "binning-width", "equal-mass"])
def test_padding_with_constant_columns_changes_nothing(name):
    t, y = random_layer(6, n=512, d=3)
    padded = np.concatenate([t, np.full((512, 2), 0.5, np.float32)], axis=1)
    np.testing.assert_allclose(mutual_information(padded, y, name),
                               mutual_information(t, y, name), atol=DISCRETE_TOL)


def test_equal_mass_is_invariant_under_increasing_maps_per_neuron():
    t, y = random_layer(7, n=1000, d=3, scale=2.0)
    mapped = np.stack([np.exp(3 * t[:, 0]), t[:, 1] ** 3 + 5 * t[:, 1], 10 * t[:, 2] - 4],
                      axis=1).astype(np.float32)
    np.testing.assert_allclose(mutual_information(mapped, y, "equal-mass", num_bins=12),
                               mutual_information(t, y, "equal-mass", num_bins=12),
                               atol=DISCRETE_TOL)


def test_merging_bins_never_raises_the_entropy():
    t, y = random_layer(8, n=800, d=3, scale=2.0)
    fine = mutual_information(t, y, "binning-width", bin_width=0.05)[0]
    coarse = mutual_information(t, y, "binning-width", bin_width=0.10)[0]  # merges pairs
    assert float(coarse) <= float(fine) + DISCRETE_TOL


# ----------------------------------------------------------------- independent implementations


@pytest.mark.parametrize("name,kwargs", [
    ("binning", {}),
    ("binning", {"bin_range": "layer"}),
    ("binning", {"bin_range": (-0.5, 0.5), "num_bins": 7}),
    ("binning-width", {}),
    ("binning-width", {"bin_width": 0.5}),
    ("equal-mass", {}),
    ("equal-mass", {"num_bins": 5}),
    ("kde-upper", {}),
    ("kde-lower", {}),
    ("kde-upper", {"kde_variance": 0.1}),
    ("kde-lower", {"kde_variance": 0.1}),
])
def test_matches_numpy_reference(name, kwargs):
    for seed, scale, classes in [(10, 1.0, 2), (11, 3.0, 3), (12, 0.2, 10)]:
        t, y = random_layer(seed, n=700, d=4, scale=scale, classes=classes)
        if name == "binning" and kwargs.get("bin_range") == "layer":
            t = np.maximum(t * 4.0, 0.0)  # a relu-like layer far outside [-1, 1]
        got = mutual_information(t, y, name, **kwargs)
        want = numpy_mi(name, t, y, **kwargs)
        np.testing.assert_allclose(got, want, atol=tolerance(name), err_msg=f"{name} {seed}")


def test_kde_blocks_with_a_partial_last_block_match(monkeypatch):
    t, y = random_layer(13, n=1000, d=3, scale=0.5)
    want = numpy_kde(t, y, 1e-2, "upper")
    monkeypatch.setattr(kde, "KDE_BLOCK_ELEMENTS", 64 * 1000)  # 16 blocks of 64 rows
    got = mutual_information(t, y, "kde-upper", kde_variance=1e-2)
    np.testing.assert_allclose(got, want, atol=KDE_TOL)


def clustered_layer(seed, n, d, scale, classes=3):
    """Rows on 8 cluster centres in [0, scale]^d (ReLU-like: non-negative), each row jittered
    by ~0.02 so that neighbours lie at distances of the order of the KDE noise, plus exact
    duplicates; labels from the cluster, so I(T;Y) is well above 0."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.0, scale, size=(8, d))
    cluster = rng.integers(0, 8, n)
    t = centres[cluster] + rng.normal(0.0, 0.02, size=(n, d)) / np.sqrt(d)
    t[1::7] = t[0::7][: len(t[1::7])]  # duplicated rows
    return np.maximum(t, 0.0).astype(np.float32), (cluster % classes).astype(np.int32)


@pytest.mark.parametrize("width", [33, 128, 512, 1024])
@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_kde_wide_layers_with_large_activations_match_float64(width, scale):
    """Layers wider than 32 units used to get their squared distances from the matrix-product
    form |a|^2 + |b|^2 - 2 a.b, which lost the zero diagonal and cancelled: 0.25 bits off at
    1024 units and activations up to 10, and I(X;T) above log2 N on a ReLU layer."""
    t, y = clustered_layer(width, n=384, d=width, scale=scale)
    for bound in ("upper", "lower"):
        got = mutual_information(t, y, f"kde-{bound}", kde_variance=1e-3)
        np.testing.assert_allclose(got, numpy_kde(t, y, 1e-3, bound), atol=KDE_TOL,
                                   err_msg=f"{bound}, width {width}, scale {scale}")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("width,scale", [(1, 1e3), (33, 10.0), (128, 1e3), (1024, 100.0),
                                         (200, 1e-4)])
def test_estimates_never_exceed_their_bounds(name, width, scale):
    """I(X;T) in [0, log2 N] and I(T;Y) <= H(Y), finite, for every estimator at any width and
    scale (float32 rounding allowed: 1e-5 bits), on scattered and on clustered rows. (The
    matrix-product distances gave KDE I(X;T) = 8.69 > log2 300 = 8.23 bits for 128 scattered
    units in [0, 10], and inf for [0, 100].)"""
    rng = np.random.default_rng(width)
    scattered = (rng.uniform(0.0, scale, size=(300, width)).astype(np.float32),
                 rng.integers(0, 2, 300).astype(np.int32))
    for t, y in (scattered, clustered_layer(width + 1, n=300, d=width, scale=scale)):
        h_y = -sum(p * np.log2(p) for p in np.bincount(y) / y.size if p > 0)
        ixt, ity = (float(v) for v in mutual_information(t, y, name, kde_variance=1e-3,
                                                          bin_range="layer"))
        assert -1e-5 <= ixt <= np.log2(len(t)) + 1e-5, (name, ixt)
        assert np.isfinite(ity) and ity <= h_y + 1e-5, (name, ity, h_y)
        if not name.startswith("kde"):
            assert ity >= -1e-5, (name, ity)


@pytest.mark.parametrize("name", NAMES)
def test_jit_and_vmap_over_seeds_match_one_at_a_time(name):
    layers = np.stack([random_layer(20 + s, n=256, d=3, scale=1.5)[0] for s in range(3)])
    y = random_layer(20, n=256)[1]
    settings = Settings()

    @jax.jit
    def batched(t):  # [S, N, d]
        return jax.vmap(lambda one: estimate_columns(one.T, y, 2, (name,), settings))(t)

    ixt, ity = batched(jnp.asarray(layers))
    for s in range(3):
        single = mutual_information(layers[s], y, name, num_classes=2)
        np.testing.assert_allclose([ixt[s, 0], ity[s, 0]], single, atol=1e-6)


def test_non_finite_activations_give_nan():
    t, y = random_layer(30, n=64)
    t[3, 1] = np.inf
    for name in NAMES:
        assert np.isnan(mutual_information(t, y, name)).all()


def test_half_precision_layers_are_measured_on_their_values_in_float32():
    """A bfloat16 or float16 layer measures as its values cast to float32 (not with distances,
    edges and kernel sums rounded to half precision: kde-upper came out above log2 N)."""
    t, y = random_layer(33, n=256, d=5)
    names = (*NAMES, "matrix-renyi")
    for dtype in (jnp.bfloat16, jnp.float16):
        half = jnp.asarray(t).astype(dtype)
        got = estimate([half], y, names, bin_range="layer")
        want = estimate([half.astype(jnp.float32)], y, names, bin_range="layer")
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w, err_msg=str(dtype))
        assert float(got[0][names.index("kde-upper"), 0]) <= 8.0 + 1e-6


def test_layers_at_floats_largest_are_binned_or_nan():
    """Values near float32's largest: bin_range="layer" bins them as the same layer scaled
    down (max - min overflowed: every value in bin 0); binning-width, whose bin numbers
    t / width overflow, gives NaN rather than merging them."""
    y = np.arange(128) % 2
    small = np.concatenate([-np.linspace(1, 2, 64), np.linspace(1, 2, 64)])[:, None]
    huge = (small * 1.7e38).astype(np.float32)
    np.testing.assert_array_equal(
        estimate([huge], y, ("binning",), bin_range="layer")[0],
        estimate([small.astype(np.float32)], y, ("binning",), bin_range="layer")[0])
    assert np.isnan(mutual_information(huge, y, "binning-width")).all()
    assert not np.isnan(mutual_information(huge, y, "binning-width", bin_width=1.0)).any()
    assert float(mutual_information(huge, y, "binning-width", bin_width=1.0)[0]) == 7.0
    # The layer's maximum is in the last bin (lo + (hi - lo) * 1 rounded above it).
    t = np.random.default_rng(5).normal(size=(200, 1)).astype(np.float32)  # max-min rounds up
    labels = np.random.default_rng(0).integers(0, 2, 200)
    for bins in (2, 3, 5, 10):
        np.testing.assert_array_equal(
            estimate([t], labels, ("binning",), bin_range="layer", num_bins=bins),
            estimate([t], labels, ("binning",), bin_range=(float(t.min()), float(t.max())),
                     num_bins=bins), err_msg=str(bins))


def test_settings_given_as_arrays_or_traced():
    t, y = random_layer(34, n=64)
    np.testing.assert_array_equal(
        mutual_information(t, y, "binning-width", bin_width=jnp.float32(0.25)),
        mutual_information(t, y, "binning-width", bin_width=0.25))
    assert float(mutual_information(t, y, num_bins=np.int64(8))[0]) == float(
        mutual_information(t, y, num_bins=8)[0])
    for name in ("binning", "equal-mass"):
        np.testing.assert_array_equal(
            mutual_information(t, y % 2, name, num_classes=jnp.int32(2)),
            mutual_information(t, y % 2, name, num_classes=2))
    with pytest.raises(MIError, match="kde_variance must be a static Python number, not a "
                                      "traced value"):
        jax.jit(lambda v: mutual_information(t, y, "kde-upper", kde_variance=v))(0.1)
    with pytest.raises(MIError, match="bin_range must be a pair of static Python numbers"):
        jax.jit(lambda v: mutual_information(t, y, bin_range=(-v, v)))(1.0)


def test_traced_labels_outside_num_classes_give_nan():
    t, y = random_layer(35, n=64)
    measure = jax.jit(lambda labels: estimate([t], labels, ("binning", "kde-upper"),
                                              num_classes=2))
    ixt, ity = measure(jnp.asarray(y % 2))
    assert np.isfinite(ity).all()
    bad_ixt, bad_ity = measure(jnp.asarray(y % 2) * 5)
    assert np.isnan(bad_ity).all()
    np.testing.assert_array_equal(bad_ixt, ixt)  # I(X;T) does not use the labels


@pytest.mark.parametrize("kwargs,match", [
    ({"estimator": "ksg"}, "unknown estimator 'ksg'"),
    ({"bin_width": 0.0}, "bin_width must be a positive"),
    ({"kde_variance": -1.0}, "kde_variance must be a positive"),
    ({"bin_range": "auto"}, "bin_range must be 'layer' or a pair"),
    ({"num_bins": 1}, r"num_bins must be an integer in \[2, 1048576\]"),
])
def test_bad_arguments_are_named(kwargs, match):
    t, y = random_layer(31, n=32)
    with pytest.raises(MIError, match=match):
        mutual_information(t, y, **kwargs)


def test_all_estimators_in_one_trained_relu_program_match_standalone_calls():
    """The trainer's in-graph measurement of every estimator at once equals each estimator
    called alone on the same network's layers; relu layers get the layer's own bin range."""
    from ibjax.config import Config
    from ibjax.train import Steps, make_trainer

    data = load_var_u()
    config = Config(num_seeds=1, hidden=(5, 3), activation="relu", num_epochs=3,
                    snapshots=(0, 3), estimators=tuple(NAMES), kde_variance=1e-2)
    assert config.estimator_settings().bin_range == "layer"
    trainer = make_trainer(config, data)
    state = trainer.init(jnp.asarray(0), jnp.asarray(4e-4))
    steps = Steps(jnp.asarray([0, 3], jnp.int32), jnp.asarray([True, True]))
    state, measured = jax.jit(trainer.run_steps)(state, trainer.device_data(data), steps)
    assert measured.ixt.shape == (2, len(NAMES), 3)
    layers = [np.asarray(t).T for t in
              trainer.layer_activations(state.params, trainer.device_data(data))]
    assert float(np.max(layers[0])) > 1.0  # relu values beyond the tanh range
    for e, name in enumerate(NAMES):  # each estimator alone, every layer in one program
        want = jax.jit(lambda ls, y, n=name: estimate(
            ls, y, (n,), num_classes=2, bin_range="layer", kde_variance=1e-2))(layers, data.y)
        for got, expected in zip((measured.ixt[1, e], measured.ity[1, e]), want, strict=True):
            np.testing.assert_allclose(got, expected[0], atol=tolerance(name) + 1e-5,
                                       err_msg=name)


@pytest.mark.parametrize("name", ["binning", "binning-width", "equal-mass"])
def test_wide_layers_take_the_looped_radix_sort_and_stay_exact(name):
    from ibjax.mi._entropy import WIDE_LAYER_COLUMNS

    rng = np.random.default_rng(40)
    base = np.tanh(rng.normal(size=(40, WIDE_LAYER_COLUMNS + 16))).astype(np.float32)
    t = base[rng.integers(0, 40, 400)]  # 400 rows, at most 40 distinct
    t[::5, -1] += 0.3  # duplicates that differ only in the last column
    y = rng.integers(0, 3, 400).astype(np.int32)
    for num_classes in (None, 3):
        got = mutual_information(t, y, name, num_classes=num_classes, num_bins=8)
        np.testing.assert_allclose(got, numpy_mi(name, t, y, num_bins=8), atol=DISCRETE_TOL)


def test_estimate_every_layer_and_estimator_at_once_under_jit_and_vmap():
    """ibjax.mi.estimate: [estimators, layers] in one call, vmapped over a seed axis of every
    layer, equal to one layer and one estimator at a time; a NaN spoils its layer only."""
    import ibjax.mi

    rng = np.random.default_rng(50)
    n, names = 300, ("binning", "equal-mass", "kde-upper", "kde-lower")
    layers = [np.tanh(rng.normal(size=(2, n, 3))).astype(np.float32),
              np.tanh(rng.normal(size=(2, n, 7))).astype(np.float32),
              np.tanh(rng.normal(size=(2, n, 2, 2, 2))).astype(np.float32)]
    layers[1][1, 5, 2] = np.nan
    y = rng.integers(0, 5, n) * 3 + 1  # five classes, labels not 0..C-1
    ixt, ity = jax.jit(jax.vmap(lambda ls: ibjax.mi.estimate(ls, y, names, kde_variance=0.05))
                       )(layers)
    assert ixt.shape == ity.shape == (2, len(names), 3)
    for s in range(2):
        for e, name in enumerate(names):
            for k, layer in enumerate(layers):
                want = mutual_information(layer[s].reshape(n, -1), y, name, kde_variance=0.05)
                np.testing.assert_allclose([ixt[s, e, k], ity[s, e, k]], want, atol=1e-6,
                                           err_msg=f"seed {s} {name} layer {k}")
    assert np.isnan(ixt[1, :, 1]).all() and np.isfinite(ixt[1, :, [0, 2]]).all()


@pytest.mark.parametrize("layers, y, match", [
    (np.zeros((10, 3)), np.zeros(10, int), "layers must be a non-empty sequence"),
    ([], np.zeros(10, int), "got an empty sequence"),
    ([np.zeros((10, 3)), np.zeros((9, 2))], np.zeros(10, int), r"layers\[1\] has 9 rows and "
                                                                r"layers\[0\] 10"),
    ([np.zeros(10)], np.zeros(10, int), r"layers\[0\] must have shape \[N, d\]"),
    ([np.zeros((10, 3))], np.zeros(10), "integer labels"),
])
def test_estimate_names_bad_arguments(layers, y, match):
    import ibjax.mi

    with pytest.raises(MIError, match=match):
        ibjax.mi.estimate(layers, y)


@pytest.mark.parametrize("call, match", [
    (lambda t, y: mutual_information(t, y - 3, num_classes=2), r"labels in \[0, num_classes"),
    (lambda t, y: mutual_information(t, (y.astype(np.int64) << 33) + 1), "within int32"),
    (lambda t, y: mutual_information(t, y, "kde-upper", kde_variance=1e-44), "kde_variance"),
    (lambda t, y: mutual_information(t, y, "binning-width", bin_width=1e31), "bin_width"),
    (lambda t, y: mutual_information("abc", y), "t must be an array of numbers"),
    (lambda t, y: mutual_information(None, y), "t must"),
    (lambda t, y: mutual_information(t + 1j, y), "real numbers"),
])
def test_values_that_would_give_silent_nonsense_are_refused(call, match):
    """Out-of-range labels with num_classes, labels beyond int32 (truncated without 64-bit
    mode), noise variances whose inverse overflows float32, complex or non-numeric layers."""
    t, y = random_layer(60, n=64)
    with pytest.raises(MIError, match=match):
        call(t, y)


def test_binning_width_is_unbounded():
    """Bin numbers are never clipped: activations of 1e30 at width 0.07 keep every row apart."""
    rng = np.random.default_rng(61)
    t = (rng.permutation(256)[:, None] * 1e28).astype(np.float32)  # 0 .. 2.5e30, distinct
    y = np.arange(256) % 2
    ixt, ity = mutual_information(t, y, "binning-width", bin_width=0.07)
    assert float(ixt) == pytest.approx(8.0, abs=1e-5) and float(ity) == pytest.approx(1.0,
                                                                                     abs=1e-5)
