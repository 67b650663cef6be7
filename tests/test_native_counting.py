"""ibjax's native counting and ranking for the discrete estimators against the XLA path's
sorts (the independent implementation in ``ibjax.mi._entropy``): the same bits, exactly.

Needs a C++ compiler and JAX on a CPU (skipped with that reason elsewhere);
``tests/test_native_products.py`` checks what a machine without a compiler gets.
"""

import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ibjax
from ibjax import native, train
from ibjax.mi import _entropy
from ibjax.mi._estimators import Settings, estimate_columns
from ibjax.mi._knn import knn_mi
from ibjax.native_counting import column_ranks, knn_counts, native_routines
from ibjax.train import make_trainer

pytestmark = pytest.mark.skipif(
    shutil.which(os.environ.get("CXX") or "c++") is None or jax.default_backend() != "cpu",
    reason="no C++ compiler ($CXX or c++) to build ibjax's native routines, or JAX's default "
           "backend is not a CPU")


def both_ways(fn, *args, targets=("ibjax_discrete_mi_limbs",)):
    """``jax.jit(fn)(*args)`` with the sorts, and with the native routines (whose ``targets``
    the program must call), as NumPy."""

    def counted(*args):  # the choice is read while tracing: inside, so jit's cache sees it
        with native_routines("native"):
            return fn(*args)

    xla, native_ = jax.jit(fn).lower(*args), jax.jit(counted).lower(*args)
    for target in targets:
        assert target not in xla.as_text()
        assert target in native_.as_text()
    return (jax.tree.map(np.asarray, xla.compile()(*args)),
            jax.tree.map(np.asarray, native_.compile()(*args)))


def assert_same_bits(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes(), (x, y)


# (samples, columns, radix, classes, digit values drawn): one row; all rows equal; every row
# distinct; the paper's 30 bins on a 10-unit layer (one 64-bit key); rows that need several
# words (wide layers, radix = N as binning-width uses); more columns than the XLA path sorts
# in one program (> 24); labels not given (any integers, dense-ranked); a large N (the tables'
# limbs change with N).
CASES = [
    (1, 3, 30, 2, 30), (2, 1, 2, 2, 2), (64, 5, 30, 2, 1), (100, 4, 4096, 3, 4096),
    (4096, 10, 30, 2, 30), (4096, 3, 30, 2, 4), (512, 13, 4096, 10, 4096),
    (300, 40, 30, 2, 3), (257, 30, 2, 2, 2), (1000, 7, 31, None, 31), (1, 1, 1, 1, 1),
    (20_000, 6, 30, 5, 6), (50, 30, 1, 2, 1),
]


@pytest.mark.parametrize(("n", "width", "radix", "classes", "spread"), CASES)
def test_the_same_bits_as_the_sorts(n, width, radix, classes, spread):
    """Four random draws per case, vmapped; labels in [0, classes), or arbitrary integers."""
    rng = np.random.default_rng(n * 31 + width)
    digits = jnp.asarray(rng.integers(0, spread, (4, width, n)), jnp.int32)
    if classes is None:
        labels = jnp.asarray(rng.integers(-10**9, 10**9, n), jnp.int32)
    else:
        labels = jnp.asarray(rng.integers(0, classes, n), jnp.int32)

    def mi(d, y):
        return _entropy.mutual_informations(d, radix, y, classes)

    xla, counted = both_ways(jax.vmap(mi, (0, None)), digits, labels)
    assert_same_bits(xla, counted)
    ixt, ity = xla
    assert np.all((ixt >= 0) & (ity >= -1e-6) & (ity <= ixt + 1e-6))


def test_labels_batched_alone_together_or_on_another_axis():
    """The handler broadcasts operands whose vmapped axes have size 1 (expand_dims)."""
    rng = np.random.default_rng(0)
    digits = jnp.asarray(rng.integers(0, 30, (3, 5, 256)), jnp.int32)
    labels = jnp.asarray(rng.integers(0, 2, (2, 256)), jnp.int32)

    def mi(d, y):
        return _entropy.mutual_informations(d, 30, y, 2)

    for fn, args in [(jax.vmap(mi, (0, None)), (digits, labels[0])),
                     (jax.vmap(mi, (None, 0)), (digits[0], labels)),
                     (jax.vmap(mi, (0, 0)), (digits[:2], labels)),
                     (jax.vmap(jax.vmap(mi, (0, None)), (None, 0)), (digits, labels))]:
        xla, counted = both_ways(fn, *args)
        assert_same_bits(xla, counted)


@pytest.mark.parametrize("name", ["binning", "binning-width", "equal-mass", "exact"])
def test_the_estimators_give_the_same_bits_on_hard_layers(name):
    """Activations on the bin edges, huge, constant, NaN, and a wide layer: every discrete
    estimator, with the native counting (and ranking), gives the bits of the sorts."""
    rng = np.random.default_rng(1)
    n = 777
    edges = np.linspace(-1, 1, 30).astype(np.float32)
    layers = [rng.standard_normal((10, n)).astype(np.float32),
              rng.choice(edges, (3, n)).astype(np.float32),           # exactly on edges
              (rng.standard_normal((4, n)) * 1e30).astype(np.float32),
              np.full((2, n), 0.25, np.float32),                      # one state
              np.where(rng.random((5, n)) < 0.1, np.nan, 0.5).astype(np.float32),
              np.tanh(rng.standard_normal((64, n))).astype(np.float32)]
    y = jnp.asarray(rng.integers(0, 3, n), jnp.int32)
    settings = Settings().checked()

    def every_layer(layers, y):
        return [estimate_columns(t, y, 3, (name,), settings) for t in layers]

    ranked = name in ("binning-width", "equal-mass", "exact")
    xla, counted = both_ways(every_layer, [jnp.asarray(t) for t in layers], y, targets=(
        "ibjax_discrete_mi_limbs", *(["ibjax_column_ranks"] if ranked else [])))
    assert_same_bits(xla, counted)


SPECIAL = np.array([0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-45, -1e-45, 1e-40, -1e-40,
                    np.finfo(np.float32).max, np.finfo(np.float32).min, 1.0, -1.0, 0.5],
                   np.float32)


@pytest.mark.parametrize("n", [1, 2, 255, 256, 257, 4096, 20_000])
def test_column_ranks_are_the_sorts(n):
    """Ranks (numbers of smaller values, and dense ranks) of random rows, ties, and the values
    whose order is delicate (-0 and 0, NaNs of both signs, infinities, subnormals), below and
    above the radix sort's threshold of 256, vmapped over two axes: the sorts' integers."""
    rng = np.random.default_rng(n)
    values = np.stack([rng.standard_normal((2, n)), rng.integers(-3, 3, (2, n)),
                       rng.choice(SPECIAL, (2, n))]).astype(np.float32)  # [3, 2, n]
    for dense in (False, True):
        def ranks(v, dense=dense):
            return _entropy.column_ranks(v, dense)

        xla, native_ = both_ways(jax.vmap(ranks), jnp.asarray(values),
                                 targets=("ibjax_column_ranks",))
        assert_same_bits(xla, native_)
        assert native_.min() >= 0 and native_.max() < n
    half = jnp.asarray(values[2], jnp.bfloat16)  # exact in float32: ranked natively too
    xla, native_ = both_ways(lambda v: _entropy.column_ranks(v, False), half,
                             targets=("ibjax_column_ranks",))
    assert_same_bits(xla, native_)
    np.testing.assert_array_equal(  # ordinary values: numpy's count of smaller values
        np.asarray(column_ranks(jnp.asarray(values[0]), False)),
        [np.searchsorted(np.sort(row), row, side="left") for row in values[0]])


def test_the_trainer_counts_natively_on_cpus_and_measures_the_same():
    """A CPU trainer counts natively (a GPU's in XLA), and its measurement of every discrete
    estimator, with the null baseline, is the XLA path's, bit for bit."""
    assert native.available(), native.unavailable_reason()
    data = ibjax.load_var_u()
    config = ibjax.Config(num_seeds=3, hidden=(10,),
                          estimators=("binning", "binning-width", "equal-mass"), null=True)
    assert train.discrete_counting_for("gpu") == "xla"
    counting = make_trainer(config, data)
    assert counting.discrete_counting == "native"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "discrete_counting_for", lambda platform: "xla")
        sorting = make_trainer(config, data)
    assert sorting.discrete_counting == "xla"
    state = jax.jit(jax.vmap(counting.init))(jnp.arange(3), jnp.full(3, 4e-4))
    device_data = counting.device_data(data)

    def measured(trainer):
        lowered = jax.jit(jax.vmap(trainer.measure, (0, None))).lower(state, device_data)
        for target in ("ibjax_discrete_mi_limbs", "ibjax_column_ranks"):
            assert (target in lowered.as_text()) == (trainer.discrete_counting == "native")
        return lowered.compile()(state, device_data)[:3]  # ixt, ity, ity_null

    counted, sorted_ = measured(counting), measured(sorting)
    assert_same_bits(sorted_, counted)
    assert np.isfinite(np.asarray(counted[0])).all()


def test_the_recorder_counts_natively_on_cpus_and_measures_the_same():
    """On a CPU the recorder's discrete estimators count natively, with the bits of
    ``ibjax.mi.estimate``'s sorts, and say so in the results; with the routines off they sort.
    Labels not 0..C-1 (dense-ranked in the program) and a layer on the bin edges."""
    from ibjax import recorder as recorder_module

    rng = np.random.default_rng(3)
    edges = np.linspace(-1, 1, 30).astype(np.float32)
    layers = [jnp.asarray(rng.choice(edges, size=(500, 4))),
              jnp.asarray(np.tanh(rng.normal(size=(500, 3, 2)) * 3).astype(np.float32))]
    y = np.where(np.arange(500) % 3 == 0, 7, -2)
    names = ("binning", "binning-width", "equal-mass")

    def measured():
        rec = ibjax.make_recorder((0, 1), y, names, layer_names=("a", "b"))
        lowered = jax.jit(rec.measure).lower(layers)
        counts = tuple(target in lowered.as_text()
                       for target in ("ibjax_discrete_mi_limbs", "ibjax_column_ranks"))
        buffer = jax.jit(lambda s: rec.record(s, 1, layers))(rec.init())
        attrs = rec.to_dataset(buffer).attrs
        return counts, jax.tree.map(np.asarray, lowered.compile()(layers)), attrs

    counts, native_, attrs = measured()
    assert counts == (True, True) and attrs["discrete_counting"] == "native"
    sorting = jax.jit(lambda t: ibjax.mi.estimate(t, y, names))(layers)
    assert_same_bits(jax.tree.map(np.asarray, sorting), native_)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recorder_module, "discrete_counting_for", lambda platform: "xla")
        counts, sorted_, attrs = measured()
    assert counts == (False, False) and attrs["discrete_counting"] == "xla"
    assert_same_bits(sorted_, native_)


# (rows, layer width, input width, k, classes): one block of rows, several blocks with the last
# padded (3000 rows: blocks of 349), no inputs, k above the XLA path's rounds of minima (its
# top_k), a class smaller than k (NaN), a layer wider than the unrolled distances (a scan).
KNN_CASES = [(300, 3, 4, 3, 3), (3000, 6, 12, 3, 2), (257, 1, 0, 5, 2), (120, 2, 3, 20, 2),
             (200, 4, 2, 3, 40), (150, 40, 5, 2, 2)]


@pytest.mark.parametrize(("n", "width", "inputs", "k", "classes"), KNN_CASES)
def test_knn_counts_neighbours_natively_with_the_same_bits(n, width, inputs, k, classes):
    """kNN's I(X;T) and I(T;Y) with the native neighbour counts: the row blocks' bits, on
    saturated layers and binary inputs (ties before the jitter), two seeds vmapped with the
    inputs and labels shared."""
    rng = np.random.default_rng(n + width)
    t = np.tanh(rng.normal(size=(2, width, n)) * 4).astype(np.float32)  # many at +-1
    x = None if inputs == 0 else jnp.asarray(rng.integers(0, 2, (inputs, n)), jnp.float32)
    y = jnp.asarray(rng.integers(0, classes, n), jnp.int32)

    def mi(t):
        return knn_mi(t, y, x, k)

    xla, native_ = both_ways(jax.vmap(mi), jnp.asarray(t), targets=("ibjax_knn_counts",))
    assert_same_bits(xla, native_)
    assert np.isnan(native_[0]).all() == (inputs == 0)
    smallest_class = np.bincount(np.asarray(y), minlength=classes).min()
    assert np.isnan(native_[1]).all() == (smallest_class <= k)


def test_measuring_inside_a_differentiated_function():
    """A loss that also records (``jax.grad`` with ``has_aux``; ``ibjax.quantize`` passes a
    straight-through tangent to the layer): the native routines take no gradient, as the
    program's sorts and counts give none, so the loss's gradient and the measurement are the
    ones without them."""
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(300, 5)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(5, 4)), jnp.float32)
    y = np.arange(300) % 3
    names = ("equal-mass", "exact", "knn", "binning-width")
    rec = ibjax.make_recorder([0], y, names, layer_names=("h",), x=x, quantize=8)

    def layer(w):
        return ibjax.quantize(jnp.tanh(x @ w), 8)

    def loss(w, state):
        h = layer(w)
        return jnp.mean(h ** 2), rec.record(state, 0, [h])

    step = jax.jit(jax.grad(loss, has_aux=True))
    text = step.lower(w, rec.init()).as_text()
    assert "ibjax_column_ranks" in text and "ibjax_knn_counts" in text
    grads, state = step(w, rec.init())
    np.testing.assert_array_equal(grads, jax.jit(jax.grad(lambda w: jnp.mean(layer(w) ** 2)))(w))
    want = jax.jit(lambda h: ibjax.mi.estimate([h], y, names, x=x))(layer(w))  # in the program
    assert_same_bits((np.asarray(state.ixt[0]), np.asarray(state.ity[0])),
                     jax.tree.map(np.asarray, want))
    with pytest.raises(TypeError, match="values must be float32"):
        column_ranks(jnp.arange(4), dense=True)


def test_knn_on_huge_features_and_wide_labels():
    """A finite feature near float32's largest is standardised without overflow (it was NaN
    after the jitter, and each path turned that into different numbers): the estimate is the
    one of the feature scaled down by 2**-100 on both paths. A direct call with k beyond the
    rows is refused."""
    rng = np.random.default_rng(4)
    t = rng.normal(size=(3, 400)).astype(np.float32)
    huge = t.copy()
    huge[0] *= np.float32(3e38) / np.abs(t[0]).max()
    scaled = huge.copy()
    scaled[0] = huge[0] * np.float32(2.0**-100)
    x = jnp.asarray(rng.normal(size=(2, 400)), jnp.float32)
    y = jnp.asarray(np.arange(400) % 2, jnp.int32)

    def mi(t):
        return knn_mi(t, y, x, 3)

    xla, native_ = both_ways(mi, jnp.asarray(huge), targets=("ibjax_knn_counts",))
    assert_same_bits(xla, native_)
    assert np.isfinite(native_).all()
    assert_same_bits(native_, both_ways(mi, jnp.asarray(scaled),
                                        targets=("ibjax_knn_counts",))[1])
    with pytest.raises(ValueError, match="k must be an integer in"):
        knn_counts(jnp.asarray(t), y, None, 401)
