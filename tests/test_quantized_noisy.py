"""Quantized networks with exact MI, and noise-injected networks with sample propagation.

References: ``np.unique`` counting of the same activations (exact, float32 rounding of the
entropy sum: 1e-4 bits); a float64 numpy implementation of the sample-propagation formulas on
the same draws (1e-3 bits: float32 distances and log-sum-exps over a few thousand terms);
closed forms of linear-Gaussian channels (0.06 bits: Monte Carlo with N m ~ 10^4 points);
the KDE bounds, which bracket the true value when only the measured layer is noisy.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ibjax
import ibjax.mi
from ibjax import Config, ConfigError
from ibjax.data import make_dataset
from ibjax.mi import MIError
from ibjax.model import CNN, MLP
from ibjax.quantization import quantize
from ibjax.train import Steps, make_trainer

EXACT_TOL = 1e-4
NOISY_TOL = 1e-3


def entropy_bits(rows):
    _, counts = np.unique(rows, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def counted_mi(t, y):
    """I(X;T) = H(T), I(T;Y) = H(T) + H(Y) - H(T, Y) by np.unique, bits."""
    t = np.asarray(t, np.float64).reshape(len(t), -1)
    joint = np.concatenate([t, np.asarray(y, np.float64)[:, None]], axis=1)
    return entropy_bits(t), entropy_bits(t) + entropy_bits(y[:, None]) - entropy_bits(joint)


# ------------------------------------------------------------------------- quantization


@pytest.mark.parametrize("bits", [1, 4, 8])
def test_quantize_levels_range_and_straight_through_gradient(bits):
    t = jnp.linspace(-1.2, 1.2, 1001)
    q = quantize(t, bits, (-1.0, 1.0))
    step = 2.0 / (2**bits - 1)
    index = (np.asarray(q, np.float64) + 1.0) / step
    assert np.allclose(index, np.round(index), atol=1e-4)
    assert len(np.unique(np.asarray(q))) == 2**bits  # every level reached, no float duplicates
    assert float(q.min()) == -1.0 and float(q.max()) == pytest.approx(1.0, abs=1e-6)
    assert np.max(np.abs(np.clip(np.asarray(t), -1, 1) - np.asarray(q))) <= step / 2 + 1e-6
    grad = jax.grad(lambda v: jnp.sum(quantize(v, bits, (-1.0, 1.0)) * jnp.arange(v.size)))(t)
    np.testing.assert_array_equal(np.asarray(grad), np.arange(t.size))


def test_unbounded_quantization_uses_the_pass_range_with_zero():
    t = jnp.asarray([[0.5, 3.0], [7.0, 2.0]])
    q = np.asarray(quantize(t, 3))  # range (0, 7): step 1
    np.testing.assert_array_equal(q, [[0.0, 3.0], [7.0, 2.0]])
    assert np.asarray(quantize(jnp.zeros(4), 8)).tolist() == [0.0] * 4  # no 0/0
    with pytest.raises(ValueError, match="bits"):
        quantize(t, 17)


# ------------------------------------------------------------------------- exact counting


@pytest.mark.parametrize("activation,width,scale", [("tanh", 10, 1.0), ("relu", 64, 30.0)])
def test_exact_equals_np_unique_on_quantized_layers(activation, width, scale):
    rng = np.random.default_rng(width)
    x = rng.normal(size=(12, 300)).astype(np.float32) * scale  # features-major, large values
    y = rng.integers(0, 3, 300)
    mlp = MLP(hidden=(width, 5), num_classes=3, activation=activation, quantize=4)
    params = mlp.init(jax.random.key(0), x)
    layers = [np.asarray(t).T for t in mlp.apply(params, x)[1]]
    ixt, ity = jax.jit(lambda ls: ibjax.mi.estimate(ls, y, ("exact",)))(layers)
    for index, layer in enumerate(layers):
        assert len(np.unique(layer)) <= 16
        ref_ixt, ref_ity = counted_mi(layer, y)
        assert ixt[0, index] == pytest.approx(ref_ixt, abs=EXACT_TOL)
        assert ity[0, index] == pytest.approx(ref_ity, abs=EXACT_TOL)


def test_exact_closed_forms_identity_layer_and_non_finite_rows():
    data = ibjax.load_var_u()
    ixt, ity = jax.jit(lambda layers: ibjax.mi.estimate(layers, data.y, ("exact",)))(
        [data.x, np.zeros_like(data.x)])
    assert float(ixt[0, 0]) == pytest.approx(12.0, abs=EXACT_TOL)  # the identity layer
    assert float(ity[0, 0]) == pytest.approx(0.999157, abs=1e-5)
    assert float(ixt[0, 1]) == pytest.approx(0.0, abs=EXACT_TOL)  # a constant layer
    t = np.zeros((8, 2), np.float32)
    t[3, 1] = np.inf
    assert np.isnan(ibjax.mi.mutual_information(t, np.arange(8) % 2, "exact")).all()


def test_exact_is_refused_without_quantization_and_bad_settings_are_named():
    with pytest.raises(ConfigError, match="'exact'.*quantize"):
        Config(estimators=("exact",)).validate()
    with pytest.raises(ConfigError, match="'noisy'.*noise_std"):
        Config(estimators=("noisy",)).validate()
    for field, value, message in (("quantize", 0, "quantize"), ("quantize", 17, "quantize"),
                                  ("noise_std", 0.0, "noise_std"),
                                  ("noise_std", float("inf"), "noise_std"),
                                  ("noise_samples", 0, "noise_samples")):
        with pytest.raises(ConfigError, match=message):
            Config(**{field: value}).validate()
    with pytest.raises(ConfigError, match="cannot be combined"):
        Config(quantize=8, noise_std=0.1).validate()


# ------------------------------------------------------------------------- sample propagation


def numpy_noisy(samples, y, beta, noise):
    """The sample-propagation formulas in float64, on given standard-normal draws.

    ``samples``, ``noise``: ``[m, N, d]``. Returns (I(X;T), I(T;Y)) in bits.
    """
    samples = samples.astype(np.float64)
    m, n, d = samples.shape
    points = samples + beta * noise.astype(np.float64)
    flat_points, flat_centres = points.reshape(m * n, d), samples.reshape(m * n, d)
    labels = np.tile(y, m)

    def log_mean_kernel(p, c):  # [P, d], [C, d] -> [P]: ln mean_c exp(-|p-c|^2 / 2b^2)
        logk = -((p[:, None, :] - c[None, :, :]) ** 2).sum(-1) / (2 * beta**2)
        top = logk.max(axis=1, keepdims=True)
        return (top + np.log(np.mean(np.exp(logk - top), axis=1, keepdims=True)))[:, 0]

    h = -np.mean(log_mean_kernel(flat_points, flat_centres))
    h_x = -np.mean([log_mean_kernel(points[:, i], samples[:, i]) for i in range(n)])
    h_y = 0.0
    for label in np.unique(y):
        mask = labels == label
        h_y -= np.sum(log_mean_kernel(flat_points[mask], flat_centres[mask])) / (m * n)
    return (h - h_x) / math.log(2), (h - h_y) / math.log(2)


@pytest.mark.parametrize("width,scale,m", [(3, 1.0, 4), (256, 10.0, 2)])
def test_noisy_against_a_float64_reference_on_the_same_draws(width, scale, m):
    rng = np.random.default_rng(width)
    n, beta = 300, 0.3
    samples = (scale * rng.normal(size=(m, n, width))).astype(np.float32)
    y = rng.integers(0, 3, n)
    key = jax.random.key(7)
    ixt, ity = ibjax.mi.mutual_information(samples[0], y, "noisy", noise_std=beta,
                                           noisy_samples=samples, noise_key=key)
    # the draws estimate() makes for layer 0: normal(fold_in(key, 0)) on [m, d, N]
    noise = np.asarray(jax.random.normal(jax.random.fold_in(key, 0), (m, width, n)))
    ref_ixt, ref_ity = numpy_noisy(samples, y, beta, np.swapaxes(noise, 1, 2))
    assert float(ixt) == pytest.approx(ref_ixt, abs=NOISY_TOL)
    assert float(ity) == pytest.approx(ref_ity, abs=NOISY_TOL)
    if scale == 10.0:  # far-apart points, kernels far below float32's range: log2 N, H(Y)
        assert float(ixt) == pytest.approx(math.log2(n), abs=NOISY_TOL)


def test_noisy_linear_gaussian_closed_forms_and_convergence_in_m():
    """X ~ N(0, 1) (N rows), T1 = X + Z1, T2 = T1 + Z2, Z ~ N(0, b^2): I(X;T1) = 1/2 log2(1 +
    1/b^2), I(X;T2) = 1/2 log2(1 + 1/(2 b^2)). T2's estimate needs the noise of T1 propagated:
    with m = 1 it sees one sample and overestimates; it approaches the closed form as m grows."""
    rng = np.random.default_rng(0)
    n, beta = 256, 0.5
    x = rng.normal(size=(n, 1)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)

    def forward(key):
        return [x, x + beta * jax.random.normal(key, x.shape)]

    closed = [0.5 * math.log2(1 + 1 / beta**2), 0.5 * math.log2(1 + 1 / (2 * beta**2))]
    errors = []
    for m in (1, 4, 32):
        samples = ibjax.mi.sample_propagation(forward, jax.random.key(m), m)
        ixt, _ = ibjax.mi.estimate([x, x], y, ("noisy",), noise_std=beta, noisy_samples=samples)
        errors.append(float(ixt[0, 1]) - closed[1])
        if m == 32:
            assert float(ixt[0, 0]) == pytest.approx(closed[0], abs=0.06)
            assert float(ixt[0, 1]) == pytest.approx(closed[1], abs=0.06)
    assert errors[0] > 0.3 and errors[0] > errors[1] > errors[2]


def test_noisy_lies_between_the_kde_bounds_and_approaches_the_truth_as_m_grows():
    """Noise in the measured layer only: T = s(X) + Z, exactly the KDE bounds' model."""
    rng = np.random.default_rng(1)
    n, beta = 128, 0.4
    layer = rng.normal(size=(n, 2)).astype(np.float32)
    y = rng.integers(0, 2, n)
    (upper, lower) = (ibjax.mi.mutual_information(layer, y, name, kde_variance=beta**2)[0]
                      for name in ("kde-upper", "kde-lower"))
    # the truth by float64 Monte Carlo with 51,200 draws of T (std error < 0.005 bits);
    # h(T | X) is the Gaussian's: in these unnormalised kernels, d / 2 nats
    points = (layer[None] + beta * rng.normal(size=(400, n, 2))).reshape(-1, 2)
    logk = -((points[:, None, :] - layer[None, :, :].astype(np.float64)) ** 2).sum(-1) / (
        2 * beta**2)
    top = logk.max(axis=1)
    h = -np.mean(top + np.log(np.mean(np.exp(logk - top[:, None]), axis=1)))
    truth = (h - 1.0) / math.log(2)
    assert float(lower) < truth < float(upper)
    deviations = []
    for m in (1, 64):
        estimates = [float(ibjax.mi.mutual_information(
            layer, y, "noisy", noise_std=beta, noisy_samples=np.broadcast_to(layer, (m, n, 2)),
            noise_key=jax.random.key(r))[0]) for r in range(4)]
        assert all(float(lower) - 0.05 < e < float(upper) + 0.05 for e in estimates)
        deviations.append(np.mean(np.abs(np.asarray(estimates) - truth)))
    assert deviations[1] < 0.03 and deviations[1] < deviations[0]


def test_noisy_needs_its_samples_and_noise_std():
    t, y = np.zeros((10, 2), np.float32), np.arange(10) % 2
    with pytest.raises(MIError, match="noise_std"):
        ibjax.mi.estimate([t], y, ("noisy",), noisy_samples=[t[None]])
    with pytest.raises(MIError, match="noisy_samples"):
        ibjax.mi.estimate([t], y, ("noisy",), noise_std=0.1)
    with pytest.raises(MIError, match=r"noisy_samples\[0\] must have shape"):
        ibjax.mi.estimate([t], y, ("noisy",), noise_std=0.1, noisy_samples=[t[None, :5]])
    with pytest.raises(MIError, match="noise_std must be a positive"):
        ibjax.mi.estimate([t], y, ("noisy",), noise_std=-1.0, noisy_samples=[t[None]])
    for beta in (1e-20, 1e20):  # float32 kernels would be NaN
        with pytest.raises(MIError, match=r"noise_std must be in \[1e-12, 1e\+12\]"):
            ibjax.mi.estimate([t], y, ("noisy",), noise_std=beta, noisy_samples=[t[None]])
    with pytest.raises(MIError, match="noisy_samples: a list of 1"):
        ibjax.mi.estimate([t], y, ("noisy",), noise_std=0.1, noisy_samples=5)
    with pytest.raises(MIError, match="noise_key must be a JAX random key"):
        ibjax.mi.estimate([t], y, ("noisy",), noise_std=0.1, noisy_samples=[t[None]],
                          noise_key=3)
    with pytest.raises(MIError, match="forward must be a function"):
        ibjax.mi.sample_propagation(3, jax.random.key(0), 2)
    with pytest.raises(MIError, match="forward must return a list of layers"):
        ibjax.mi.sample_propagation(lambda k: jnp.zeros(3), jax.random.key(0), 2)
    with pytest.raises(MIError, match="'noisy' needs noisy_samples: the layer's"):
        ibjax.mi.mutual_information(t, y, "noisy", noise_std=0.1)
    assert np.isfinite(ibjax.mi.mutual_information(  # a concrete jax scalar is a number
        t, y, "noisy", noise_std=jnp.float32(0.1), noisy_samples=t[None])).all()
    for bad in ((1.0, -1.0), (float("nan"), 1.0), "tanh", (1.0,)):
        with pytest.raises(ValueError, match="value_range must be"):
            quantize(jnp.zeros(3), 4, bad)


# ------------------------------------------------------------------------- in the trainer


def small_images(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6, 6, 1)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0).astype(np.int32) + 2 * (x[:, 0, 0, 0] > 0)
    return make_dataset(x, y, name="images")


def train_and_measure(config, dataset, seeds):
    trainer = make_trainer(config, dataset)
    data = trainer.device_data(dataset)
    rate = jnp.asarray(config.learning_rates[0], jnp.float32)
    state = jax.vmap(lambda s: trainer.init(s, rate))(jnp.asarray(seeds))
    steps = Steps(jnp.asarray([0, 3], jnp.int32), jnp.asarray([True, True]))
    state, measured = jax.jit(jax.vmap(trainer.run_steps, in_axes=(0, None, None)))(
        state, data, steps)
    return trainer, data, state, measured


def test_trainer_quantized_mlp_exact_equals_counting():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    dataset = make_dataset(x, (x[:, 0] > 0).astype(np.int32), name="gauss")
    config = Config(num_seeds=2, num_epochs=3, hidden=(6, 4), batch_size=50, quantize=3,
                    activation="relu", estimators=("exact", "binning"), snapshots=(0, 3))
    trainer, data, state, measured = train_and_measure(config, dataset, [0, 1])
    for seed in range(2):
        params = jax.tree.map(lambda a, s=seed: a[s], state.params)
        layers = [np.asarray(t).T for t in trainer.layer_activations(params, data)]
        for index, layer in enumerate(layers):
            assert len(np.unique(layer)) <= 8
            ref_ixt, ref_ity = counted_mi(layer, np.asarray(data.y))
            assert float(measured.ixt[seed, 1, 0, index]) == pytest.approx(ref_ixt,
                                                                          abs=EXACT_TOL)
            assert float(measured.ity[seed, 1, 0, index]) == pytest.approx(ref_ity,
                                                                          abs=EXACT_TOL)


def test_trainer_noisy_cnn_is_reproducible_in_any_batch_and_noise_trains():
    dataset = small_images()
    config = Config(num_seeds=3, num_epochs=3, model="cnn", hidden=(2, 3, 4), batch_size=32,
                    noise_std=0.2, noise_samples=3, estimators=("noisy", "kde-upper"),
                    kde_variance=0.04, snapshots=(0, 3), null=True, shuffle=False)
    _, _, _, batch = train_and_measure(config, dataset, [0, 1, 2])
    _, _, _, reordered = train_and_measure(config, dataset, [2, 0, 1])  # same program
    np.testing.assert_allclose(np.asarray(batch.ixt[2]), np.asarray(reordered.ixt[0]),
                               atol=1e-5)
    np.testing.assert_allclose(np.asarray(batch.ity_null[2]),
                               np.asarray(reordered.ity_null[0]), atol=1e-5)
    assert np.isfinite(np.asarray(batch.ixt)).all()
    # noise is drawn in training (not only when measuring): without shuffling, a noise-free
    # run's training steps draw no random numbers at all
    rate = jnp.float32(1e-3)

    def random_draws(cfg):
        trainer = make_trainer(cfg, dataset)
        state = trainer.init(jnp.int32(0), rate)
        jaxpr = jax.make_jaxpr(trainer.train_steps)(state, trainer.device_data(dataset),
                                                    jnp.int32(1))
        return str(jaxpr).count("random_bits")

    assert random_draws(config) > 0
    assert random_draws(config.replace(noise_std=None, estimators=("kde-upper",))) == 0


def test_cnn_quantized_layers_take_few_values_and_noise_feeds_forward():
    x = np.random.default_rng(0).normal(size=(20, 6, 6, 1)).astype(np.float32)
    cnn = CNN(channels=(2, 3), dense=4, num_classes=3, activation="tanh", quantize=2)
    params = cnn.init(jax.random.key(0), x)
    for layer in cnn.apply(params, x)[1]:
        assert len(np.unique(np.asarray(layer))) <= 4
    noisy = CNN(channels=(2, 3), dense=4, num_classes=3, noise_std=0.5)
    params = noisy.init(jax.random.key(0), x)
    clean = noisy.apply(params, x)[1]
    with_noise = noisy.apply(params, x, jax.random.key(1))[1]
    np.testing.assert_array_equal(np.asarray(clean[0]), np.asarray(with_noise[0]))  # before
    assert not np.allclose(np.asarray(clean[1]), np.asarray(with_noise[1]))  # its noise


def test_user_models_are_told_to_quantize_or_add_noise_themselves():
    class Tiny(CNN):
        pass

    with pytest.raises(ConfigError, match="ibjax.quantize"):
        ibjax.run(Config(num_seeds=1, num_epochs=1, quantize=4, dataset="digits"),
                  model=Tiny(channels=(2, 2), dense=3))


# ------------------------------------------------------------------------- the recorder


def test_recorder_noisy_and_exact_equal_direct_estimates():
    rng = np.random.default_rng(5)
    n, beta = 120, 0.3
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    w1, w2 = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(4, 2)).astype(
        np.float32)

    def forward(scale, key):  # layers before their own noise
        h1 = jnp.tanh(scale * x @ w1)
        t1 = h1 + beta * jax.random.normal(key, h1.shape)
        return [h1, jnp.tanh(t1 @ w2)]

    recorder = ibjax.make_recorder((0, 1), y, ("noisy", "kde-upper"), layer_names=("a", "b"),
                                   noise_std=beta, noise_samples=5, kde_variance=beta**2)

    def one(scale, key):
        buffer = recorder.init()
        for epoch in (0, 1):
            layers = [jnp.tanh(scale * x @ w1), jnp.tanh(jnp.tanh(scale * x @ w1) @ w2)]
            buffer = recorder.record(buffer, epoch, layers,
                                     noisy_forward=lambda k: forward(scale, k), noise_key=key)
        return buffer

    keys = jax.random.split(jax.random.key(3), 2)
    scales = jnp.asarray([1.0, 2.0])
    buffers = jax.jit(jax.vmap(one))(scales, keys)
    for s in range(2):
        snapshot_key = jax.random.fold_in(keys[s], 1)
        samples = ibjax.mi.sample_propagation(lambda k, s=s: forward(scales[s], k),
                                              jax.random.fold_in(snapshot_key, 0), 5)
        layers = [np.tanh(float(scales[s]) * x @ w1)]
        layers.append(np.tanh(layers[0] @ w2))
        ixt, ity = ibjax.mi.estimate(layers, y, ("noisy", "kde-upper"), noise_std=beta,
                                     noisy_samples=samples, kde_variance=beta**2,
                                     noise_key=jax.random.fold_in(snapshot_key, 1))
        np.testing.assert_allclose(np.asarray(buffers.ixt[s, 1]), np.asarray(ixt), atol=1e-4)
        np.testing.assert_allclose(np.asarray(buffers.ity[s, 1]), np.asarray(ity), atol=1e-4)
    with pytest.raises(ConfigError, match="noisy_forward"):
        recorder.record(recorder.init(), 0, [x[:, :4], x[:, :2]])
    with pytest.raises(ConfigError, match="noisy_forward must return 2 layers"):
        recorder.measure([x[:, :3], x[:, :2]], lambda k: forward(1.0, k)[:1])
    with pytest.raises(ConfigError, match="'exact'.*quantize"):
        ibjax.make_recorder((0,), y, ("exact",), layer_names=("a",))
    exact = ibjax.make_recorder((0,), y, ("exact",), layer_names=("a",), quantize=2)
    layer = np.asarray(quantize(jnp.asarray(x), 2, (-3.0, 3.0)))
    buffer = exact.record(exact.init(), 0, [layer])
    assert float(buffer.ixt[0, 0, 0]) == pytest.approx(counted_mi(layer, y)[0], abs=EXACT_TOL)
