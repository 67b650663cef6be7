"""matrix-renyi and knn against float64 references written separately (numpy eigenvalues;
scipy's cKDTree and digamma), closed forms, and the trainer's in-graph measurement.

Tolerances: matrix-renyi sums N^2 float32 kernel values (2e-3 bits against float64); knn counts
neighbours exactly, but float32 distances may order near-ties differently from float64 ones
(1e-3 bits)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist
from scipy.special import digamma

import ibjax.mi
from ibjax.mi import MIError, mutual_information
from ibjax.mi._knn import jitter

RENYI_TOL = 2e-3
KNN_TOL = 1e-3


def layer_and_inputs(seed, n=400, d_x=3, d_t=4, scale=1.0, classes=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d_x))
    t = np.tanh(scale * x @ rng.normal(size=(d_x, d_t)) + 0.3 * rng.normal(size=(n, d_t)))
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int32) + (
        (x[:, 1] > 1).astype(np.int32) if classes == 3 else 0)
    return t.astype(np.float32), x.astype(np.float32), y


# ----------------------------------------------------------------- matrix-renyi reference


def silverman(v):
    n, d = v.shape
    spread = np.sqrt(np.mean(np.var(v, axis=0)))
    return max(spread * (4 / (d + 2)) ** (1 / (d + 4)) * n ** (-1 / (d + 4)), 1e-15)


def numpy_renyi(t, y, x, alpha, sigma="silverman"):
    """Giraldo et al.'s definitions, float64, eigenvalues for every order."""
    t = t.astype(np.float64)

    def gram(v):
        s = silverman(v) if sigma == "silverman" else sigma
        k = np.exp(-cdist(v, v, "sqeuclidean") / (2 * s * s))
        return k / np.trace(k)

    def entropy(a):
        lam = np.clip(np.linalg.eigvalsh(a), 0, None)
        if alpha == 1:
            lam = lam[lam > 0]
            return -np.sum(lam * np.log2(lam))
        return np.log2(np.sum(lam ** alpha)) / (1 - alpha)

    def mi(a, b):
        joint = a * b
        return entropy(a) + entropy(b) - entropy(joint / np.trace(joint))

    a_t = gram(t)
    a_y = (y[:, None] == y[None, :]).astype(np.float64)
    a_y /= np.trace(a_y)
    a_x = np.eye(len(t)) / len(t) if x is None else gram(x.astype(np.float64))
    return mi(a_x, a_t), mi(a_y, a_t)


@pytest.mark.parametrize("alpha", [2.0, 1.0, 0.5, 3.0])
@pytest.mark.parametrize("with_x", [True, False])
def test_matrix_renyi_matches_float64_eigenvalues(alpha, with_x):
    for seed, scale, classes in [(0, 1.0, 2), (1, 4.0, 3)]:
        t, x, y = layer_and_inputs(seed, n=300, scale=scale, classes=classes)
        got = mutual_information(t, y, "matrix-renyi", x=x if with_x else None,
                                 renyi_alpha=alpha)
        want = numpy_renyi(t, y, x if with_x else None, alpha)
        np.testing.assert_allclose(got, want, atol=RENYI_TOL, err_msg=f"seed {seed}")


@pytest.mark.parametrize("width,scale", [(64, 10.0), (512, 1.0)])
def test_matrix_renyi_wide_layers_and_fixed_sigma(width, scale):
    rng = np.random.default_rng(width)
    t = np.maximum(scale * rng.normal(size=(256, width)), 0).astype(np.float32)
    y = rng.integers(0, 3, 256).astype(np.int32)
    for sigma in ("silverman", 5.0 * scale):
        got = mutual_information(t, y, "matrix-renyi", renyi_sigma=sigma)
        np.testing.assert_allclose(got, numpy_renyi(t, y, None, 2.0, sigma), atol=RENYI_TOL)


@pytest.mark.parametrize("alpha", [2.0, 1.5])
def test_matrix_renyi_does_not_depend_on_the_layers_scale(alpha):
    """Silverman's width follows the scale: layers and inputs up to float32's largest give the
    estimate of the unscaled ones (values beyond ~1e17 used to give a width of inf: 0 or NaN)."""
    t, x, y = layer_and_inputs(4, n=120)
    want = numpy_renyi(t, y, x, alpha)
    for scale in (1.0, 1e19, 1e30, 1e38, 1e-20, 1e-30):
        got = mutual_information((t * scale).astype(np.float32), y, "matrix-renyi",
                                 x=(x * scale / np.abs(x).max()).astype(np.float32),
                                 renyi_alpha=alpha)
        np.testing.assert_allclose(got, want, atol=RENYI_TOL, err_msg=f"scale {scale:g}")


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.5, 3.0])
def test_matrix_entropy_derivative_against_finite_differences(alpha):
    """dS_a/dA of the host eigenvalues (float64) against central differences of S_a."""
    from ibjax.mi._renyi import _entropies_on_host

    rng = np.random.default_rng(int(alpha * 10))
    half = rng.normal(size=(30, 12))
    a = half @ half.T + 0.5 * np.eye(30)  # a spread of eigenvalues, none near 0
    a /= np.trace(a)
    direction = rng.normal(size=(30, 30))
    direction = (direction + direction.T) / np.linalg.norm(direction)
    _, gradient = _entropies_on_host(a, alpha, gradients=True)
    h = 1e-6
    numeric = (_entropies_on_host(a + h * direction, alpha)
               - _entropies_on_host(a - h * direction, alpha)) / (2 * h)
    np.testing.assert_allclose(np.sum(gradient * direction), numeric, rtol=1e-5)


def test_matrix_renyi_gradients_of_any_order():
    """jax.grad through matrix-renyi: at a = 2 the eigenvalue path's derivative equals that of
    the Frobenius path (an independent implementation, differentiated by JAX); at a = 1.5
    jax.grad of ibjax.mi.estimate equals central differences (float32: 1e-3 relative)."""
    from ibjax.mi._renyi import _renyi2, _renyi_eigen

    t, x, y = layer_and_inputs(6, n=96)
    t, x, y = jnp.asarray(t.T, jnp.float32), jnp.asarray(x.T, jnp.float32), jnp.asarray(y)

    def total(fn, s):
        return sum(fn(jnp.tanh(s * t), y, x, "silverman"))

    def eigen_at_2(a, b, c, sigma):
        return _renyi_eigen(a, b, c, 2.0, sigma)

    scales = jnp.asarray([0.5, 1.0, 2.0])
    eigen = jax.vmap(jax.grad(lambda s: total(eigen_at_2, s)))(scales)
    frobenius = jax.vmap(jax.grad(lambda s: total(_renyi2, s)))(scales)
    np.testing.assert_allclose(eigen, frobenius, rtol=1e-4)

    def estimate(s):
        ixt, ity = ibjax.mi.estimate([jnp.tanh(s * t.T)], y, ("matrix-renyi",), x=x.T,
                                     renyi_alpha=1.5)
        return ixt[0, 0] + ity[0, 0]

    h = 1e-2
    numeric = (estimate(1.0 + h) - estimate(1.0 - h)) / (2 * h)
    np.testing.assert_allclose(jax.grad(estimate)(1.0), numeric, rtol=1e-3)


def test_matrix_renyi_closed_forms():
    """Far-apart distinct points: A = I / N, S_2 = log2 N. A layer that is a function of the
    label alone (classes far apart, rows of a class equal): A_T = A_Y, so I(T;Y) = S_2(A_Y),
    the Rényi-2 entropy -log2 sum p_c^2 of the label frequencies; and I(X;T) = S_2(A_T) too."""
    n = 300
    y = (np.arange(n) % 3 == 0).astype(np.int32) + (np.arange(n) % 7 == 0)
    far = (np.arange(n, dtype=np.float32) * 100.0)[:, None]
    ixt, _ = mutual_information(far, y, "matrix-renyi", renyi_sigma=1.0)
    assert float(ixt) == pytest.approx(np.log2(n), abs=1e-4)
    p = np.bincount(y) / n
    renyi2 = -np.log2(np.sum(p ** 2))
    by_label = (y[:, None] * 100.0).astype(np.float32)
    for alpha in (2.0, 0.5):
        ixt, ity = mutual_information(by_label, y, "matrix-renyi", renyi_sigma=1.0,
                                      renyi_alpha=alpha)
        want = renyi2 if alpha == 2.0 else np.log2(np.sum(p ** alpha)) / (1 - alpha)
        # a < 1 raises float32 eigenvalue noise of the rank-3 matrix to the power a (0.003)
        tol = 1e-4 if alpha == 2.0 else 5e-3
        assert float(ity) == pytest.approx(want, abs=tol)
        assert float(ixt) == pytest.approx(want, abs=tol)


# ----------------------------------------------------------------- knn reference


def numpy_knn(t, y, x, k):
    """Ross (2014) and Kraskov et al. (2004, algorithm 1), float64, with cKDTree (max-norm)."""
    t = np.asarray(jitter(jnp.asarray(t.T), 0)).T.astype(np.float64)
    x = np.asarray(jitter(jnp.asarray(x.T), 1)).T.astype(np.float64)
    n = len(t)
    tree = cKDTree(t)
    # Ross: k-th neighbour within the class, then all rows within that radius
    radius = np.empty(n)
    class_size = np.empty(n)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        dist, _ = cKDTree(t[members]).query(t[members], k=k + 1, p=np.inf)
        radius[members] = dist[:, -1]
        class_size[members] = len(members)
    within = np.array([len(tree.query_ball_point(t[i], radius[i], p=np.inf)) - 1
                       for i in range(n)])
    ity = digamma(n) - digamma(class_size).mean() + digamma(k) - digamma(within).mean()
    # KSG algorithm 1
    joint = np.concatenate([x, t], axis=1)
    eps = cKDTree(joint).query(joint, k=k + 1, p=np.inf)[0][:, -1]
    tree_x = cKDTree(x)
    n_x = np.array([len(tree_x.query_ball_point(x[i], np.nextafter(eps[i], 0), p=np.inf)) - 1
                    for i in range(n)])
    n_t = np.array([len(tree.query_ball_point(t[i], np.nextafter(eps[i], 0), p=np.inf)) - 1
                    for i in range(n)])
    ixt = digamma(k) + digamma(n) - (digamma(n_x + 1) + digamma(n_t + 1)).mean()
    return ixt / np.log(2), ity / np.log(2)


@pytest.mark.parametrize("k", [1, 3, 10, 20])  # 20: the top_k path
def test_knn_matches_ckdtree_reference(k):
    for seed, scale, classes in [(2, 1.0, 2), (3, 5.0, 3)]:
        t, x, y = layer_and_inputs(seed, n=500, scale=scale, classes=classes)
        got = mutual_information(t, y, "knn", x=x, knn_k=k)
        np.testing.assert_allclose(got, numpy_knn(t, y, x, k), atol=KNN_TOL,
                                   err_msg=f"seed {seed}")


def test_knn_ties_of_binary_inputs_and_saturated_units():
    """The paper's binary inputs (max-norm distances 0 or 1) and tanh units at exactly +-1:
    the seeded jitter breaks the ties, as in the reference."""
    data = ibjax.load_var_u()
    rows = np.random.default_rng(4).choice(4096, 512, replace=False)
    x, y = data.x[rows].astype(np.float32), data.y[rows]
    t = np.tanh(20.0 * (x[:, :3] - 0.5)).astype(np.float32)  # saturated: exactly +-1
    assert (np.abs(t) == 1.0).all()
    got = mutual_information(t, y, "knn", x=x)
    np.testing.assert_allclose(got, numpy_knn(t, y, x, 3), atol=KNN_TOL)


def test_knn_on_gaussians_approaches_the_closed_form():
    """Correlated Gaussians: I = -0.5 log2(1 - rho^2); KSG's bias at N = 2000, k = 3 is within
    0.03 bits here (Kraskov et al., fig. 4). Independent ones: about 0."""
    rng = np.random.default_rng(5)
    n, rho = 2000, 0.9
    x = rng.normal(size=(n, 1))
    t = rho * x + np.sqrt(1 - rho ** 2) * rng.normal(size=(n, 1))
    y = (rng.random(n) < 0.5).astype(np.int32)
    ixt, ity = mutual_information(t.astype(np.float32), y, "knn", x=x.astype(np.float32))
    assert float(ixt) == pytest.approx(-0.5 * np.log2(1 - rho ** 2), abs=0.03)
    assert abs(float(ity)) < 0.03  # labels independent of t
    ixt0, _ = mutual_information(rng.normal(size=(n, 1)).astype(np.float32), y, "knn",
                                 x=x.astype(np.float32))
    assert abs(float(ixt0)) < 0.03


def test_knn_small_classes_are_refused_or_nan_when_traced():
    t, x, y = layer_and_inputs(6, n=100)
    y = y.copy()
    y[:3] = 7  # a class of 3 rows
    with pytest.raises(MIError, match="knn_k=3 needs more than 3 rows in every class; class 7"):
        mutual_information(t, y, "knn", x=x)
    ixt, ity = jax.jit(lambda y: ibjax.mi.estimate([t], y, ("knn",), x=x))(y)
    assert np.isnan(ity).all() and np.isfinite(ixt).all()
    ixt, ity = mutual_information(t, y, "knn", x=x, knn_k=2)
    assert np.isfinite([ixt, ity]).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"estimator": "knn"}, "estimator 'knn' needs x"),
    ({"estimator": "knn", "knn_k": 0}, r"knn_k must be an integer in \[1, 1024\]"),
    ({"estimator": "matrix-renyi", "renyi_alpha": 0.0}, "renyi_alpha must be a positive"),
    ({"estimator": "matrix-renyi", "renyi_alpha": 101.0}, r"renyi_alpha must be in \(0, 100\]"),
    ({"estimator": "matrix-renyi", "renyi_sigma": -1.0}, "renyi_sigma must be a positive"),
    ({"estimator": "matrix-renyi", "renyi_sigma": "scott"}, "renyi_sigma must be 'silverman'"),
    ({"estimator": "matrix-renyi", "x": np.zeros((5, 2))}, "x has 5 rows and layers"),
])
def test_bad_settings_are_named(kwargs, match):
    t, _, y = layer_and_inputs(7, n=64)
    with pytest.raises(MIError, match=match):
        mutual_information(t, y, **kwargs)


def test_new_estimators_under_jit_and_vmap_with_other_estimators():
    rng = np.random.default_rng(8)
    n, names = 256, ("binning", "matrix-renyi", "knn", "kde-upper")
    x = rng.normal(size=(n, 3)).astype(np.float32)
    layers = [np.tanh(rng.normal(size=(2, n, 3)) + x[None, :, :1]).astype(np.float32),
              np.tanh(rng.normal(size=(2, n, 5))).astype(np.float32)]
    y = (x[:, 0] > 0).astype(np.int32)
    ixt, ity = jax.jit(jax.vmap(lambda ls: ibjax.mi.estimate(ls, y, names, x=x)))(layers)
    for s in range(2):
        for e, name in enumerate(names):
            for k, layer in enumerate(layers):
                want = mutual_information(layer[s], y, name, x=x)
                np.testing.assert_allclose([ixt[s, e, k], ity[s, e, k]], want, atol=1e-5,
                                           err_msg=f"seed {s} {name} layer {k}")


def test_the_trainer_measures_against_the_mi_rows_inputs():
    """In the trained program, matrix-renyi and knn see the inputs of the MI rows: each equals
    a standalone call with x = those rows' inputs, next to the binning of the same program."""
    from ibjax.config import Config
    from ibjax.train import Steps, make_trainer, mi_sample_rows

    data = ibjax.load_var_u()
    names = ("binning", "matrix-renyi", "knn")
    config = Config(num_seeds=1, hidden=(5, 3), num_epochs=3, snapshots=(0, 3),
                    estimators=names, mi_samples=384, knn_k=4)
    trainer = make_trainer(config, data)
    state = trainer.init(jnp.asarray(0), jnp.asarray(4e-4))
    steps = Steps(jnp.asarray([0, 3], jnp.int32), jnp.asarray([True, True]))
    device_data = trainer.device_data(data)
    state, measured = jax.jit(trainer.run_steps)(state, device_data, steps)
    rows = mi_sample_rows(384, 4096, 0)
    layers = [np.asarray(t).T for t in trainer.layer_activations(state.params, device_data)]
    for e, name in enumerate(names):  # each estimator alone, every layer in one program
        want = jax.jit(lambda ls, y, x, n=name: ibjax.mi.estimate(ls, y, (n,), x=x, knn_k=4))(
            layers, data.y[rows], data.x[rows])
        np.testing.assert_allclose(measured.ixt[1, e], want[0][0], atol=1e-5, err_msg=name)
        np.testing.assert_allclose(measured.ity[1, e], want[1][0], atol=1e-5, err_msg=name)


def test_recorder_passes_its_inputs():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(200, 2, 3)).astype(np.float32)
    y = (x[:, 0, 0] > 0).astype(np.int32)
    layer = np.tanh(x.reshape(200, -1) @ rng.normal(size=(6, 4))).astype(np.float32)
    recorder = ibjax.make_recorder((0,), y, ("matrix-renyi", "knn"), layer_names=("h",), x=x)
    ixt, ity = recorder.measure([layer])
    want = ibjax.mi.estimate([layer], y, ("matrix-renyi", "knn"), x=x)
    np.testing.assert_allclose(ixt, want[0], atol=1e-6)
    np.testing.assert_allclose(ity, want[1], atol=1e-6)
    one_value = ibjax.make_recorder((0,), y, ("matrix-renyi",), layer_names=("h",),
                                    x=x[:, 0, 0]).measure([layer])  # x [N]: a value per row
    want = ibjax.mi.estimate([layer], y, ("matrix-renyi",), x=x[:, :1, 0])
    np.testing.assert_array_equal(one_value[0], want[0])
    assert float(ibjax.mi.estimate([layer], y, ("matrix-renyi",), x=x[:, 0, 0])[0][0, 0]) == (
        float(want[0][0, 0]))
    with pytest.raises(ibjax.ConfigError, match="'knn' needs x"):
        ibjax.make_recorder((0,), y, ("knn",), layer_names=("h",))
    with pytest.raises(ibjax.ConfigError, match="x must be"):
        ibjax.make_recorder((0,), y, ("knn",), layer_names=("h",), x=x[:10])


def test_eigenvalue_orders_finish_with_several_layers_and_networks():
    """jnp.linalg.eigvalsh hung XLA's CPU runtime (every thread idle) in a program with three
    layers of four vmapped networks; the eigenvalue path must finish, in a fresh process."""
    import subprocess
    import sys

    code = (
        "import jax, numpy as np, ibjax.mi\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.integers(0, 2, (512, 12)).astype(np.float32)\n"
        "y = rng.integers(0, 2, 512)\n"
        "layers = [np.tanh(rng.normal(size=(4, 512, w))).astype(np.float32) for w in (4, 5, 6)]\n"
        "f = jax.jit(jax.vmap(lambda ls: ibjax.mi.estimate(ls, y, ('matrix-renyi',), x=x,\n"
        "                                                  renyi_alpha=1.01)))\n"
        "print(np.isfinite(np.asarray(f(layers)[0])).all())\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "True", done.stderr[-2000:]


def test_cli_runs_eigenvalue_orders_on_two_cpu_devices(tmp_path):
    """`ibjax run --renyi-alpha 1.5` failed storing its program (jax.export cannot save host
    callbacks), and on two CPU devices the host callbacks never finished; now the program is
    not stored and the run takes one device. In a fresh process with two CPU devices and the
    program store on."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "2", "IBJAX_CACHE_DIR": str(tmp_path / "c")}
    done = subprocess.run(
        [sys.executable, "-m", "ibjax", "run", "--out", str(tmp_path / "r"), "--seeds", "2",
         "--epochs", "2", "--hidden", "4,3", "--estimators", "matrix-renyi",
         "--renyi-alpha", "1.5", "--mi-samples", "64", "--no-plots"],
        capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "on 1 x cpu" in done.stdout
    results = ibjax.load(tmp_path / "r" / "results.nc")
    assert np.isfinite(results.ixt.values).all()


def test_knn_is_invariant_to_each_features_offset_and_scale():
    """Max-norm neighbourhoods would otherwise follow the units: inputs of 0-255 beside tanh
    units left KSG's joint distance to the inputs alone (I(X;T) 1.34 -> 2e-6 bits at x * 10)."""
    t, x, y = layer_and_inputs(10, n=400)
    base = mutual_information(t, y, "knn", x=x)
    scaled = mutual_information(t * np.float32(10) + 3, y, "knn",
                                x=x * np.array([100, 1, 0.01], np.float32) - 7)
    np.testing.assert_allclose(scaled, base, atol=1e-3)
    assert float(base[0]) > 0.5


def test_knn_breaks_the_ties_of_a_saturated_unit():
    """tanh(7 + 0.5 z) takes a few hundred float32 values within 4e-6 of 1: with labels
    independent of it, Ross's I(T;Y) is about 0 (it was -3.0 bits before standardising)."""
    rng = np.random.default_rng(11)
    z = rng.normal(size=(4096, 1))
    t = np.tanh(7 + 0.5 * z).astype(np.float32)
    y = rng.integers(0, 2, 4096)
    _, ity = mutual_information(t, y, "knn", x=z.astype(np.float32))
    assert abs(float(ity)) < 0.03


def test_matrix_renyi_is_finite_for_large_orders_and_smooth_next_to_one():
    t, x, y = layer_and_inputs(12, n=300)
    for alpha in (30.0, 100.0):
        got = mutual_information(t, y, "matrix-renyi", x=x, renyi_alpha=alpha)
        assert np.isfinite(got).all(), alpha
    np.testing.assert_allclose(mutual_information(t, y, "matrix-renyi", x=x, renyi_alpha=30.0),
                               numpy_renyi(t, y, x, 30.0), atol=RENYI_TOL)
    at_one = mutual_information(t, y, "matrix-renyi", x=x, renyi_alpha=1.0)
    for alpha in (1.00001, 0.99999, 1.001):
        np.testing.assert_allclose(
            mutual_information(t, y, "matrix-renyi", x=x, renyi_alpha=alpha), at_one,
            atol=2e-3, err_msg=str(alpha))


@pytest.mark.parametrize("layer, x, match", [
    (np.zeros((64, 0), np.float32), None, r"layers\[0\] has no units"),
    (None, "nan", "x must hold finite inputs"),
    (None, "short", "x has 10 rows and layers"),
])
def test_inputs_and_layers_that_would_give_silent_nonsense_are_refused(layer, x, match):
    t, inputs, y = layer_and_inputs(13, n=64)
    if x == "nan":
        inputs = inputs.copy()
        inputs[0, 0] = np.nan
    elif x == "short":
        inputs = inputs[:10]
    with pytest.raises(MIError, match=match):
        ibjax.mi.estimate([t if layer is None else layer], y, ("matrix-renyi", "knn"),
                          x=inputs)
