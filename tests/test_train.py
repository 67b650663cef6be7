import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ibjax
from ibjax import native, program
from ibjax.config import Config
from ibjax.data import load_var_u
from ibjax.model import MLP, layer_products
from ibjax.train import Steps, make_trainer

SMALL = {"hidden": (4, 3), "num_epochs": 6, "snapshots": "every:2"}
NATIVE = pytest.param("native", marks=pytest.mark.skipif(
    jax.default_backend() != "cpu" or not native.available(),
    reason="native products run on CPUs, and need a C++ compiler to build"))


def test_initialisation_is_truncated_normal_over_sqrt_fan_in():
    params = MLP(hidden=(400, 300), num_classes=2).init(jax.random.key(0), jnp.zeros((200, 1)))
    kernel = np.asarray(params["params"]["Dense_0"]["kernel"])
    scale = 1 / np.sqrt(200)
    assert np.abs(kernel).max() <= 2 * scale + 1e-7
    # Unit normal truncated at +-2 has std 0.8796.
    assert kernel.std() == pytest.approx(0.8796 * scale, rel=0.02)
    assert not np.asarray(params["params"]["Dense_0"]["bias"]).any()


@pytest.mark.parametrize("product", ["matmul", "broadcast", NATIVE])
def test_forward_matches_numpy(rng, product):
    model = MLP(hidden=(5, 3), num_classes=2, activation="tanh", products=(product,) * 3)
    params = model.init(jax.random.key(1), jnp.zeros((12, 1)))
    x = rng.normal(size=(12, 40)).astype(np.float32)  # features-major
    logits, layers = model.apply(params, x)
    h = x.T.astype(np.float64)
    for i in range(3):
        p = params["params"][f"Dense_{i}"]
        h = h @ np.asarray(p["kernel"], np.float64) + np.asarray(p["bias"], np.float64)
        if i < 2:
            h = np.tanh(h)
            np.testing.assert_allclose(np.asarray(layers[i]).T, h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(logits).T, h, rtol=1e-5, atol=1e-6)
    softmax = np.exp(h) / np.exp(h).sum(1, keepdims=True)
    np.testing.assert_allclose(np.asarray(layers[-1]).T, softmax, rtol=1e-5, atol=1e-6)


def test_first_epoch_matches_an_independent_training_loop():
    """Authors' setting (first rows, contiguous batches with a partial last one), one seed."""
    cfg = Config(num_seeds=1, hidden=(4, 3), num_epochs=2, split="first", shuffle=False,
                 batch_size=1000, learning_rate=1e-2)
    data = load_var_u()
    trainer = make_trainer(cfg, data)
    state = trainer.init(jnp.int32(0), jnp.float32(cfg.learning_rate))
    end, measured = jax.jit(trainer.run_steps)(
        state, trainer.device_data(data),
        Steps(jnp.asarray([0, 1], jnp.int32), jnp.asarray([True, True])))

    # Independent: plain Python loop over 4 batches (1000, 1000, 1000, 277 rows), numpy stats.
    model = MLP(hidden=(4, 3), num_classes=2)
    params = state.params
    adam = optax.adam(1e-2)
    opt_state = adam.init(params)

    def loss(p, x, y):
        logits, _ = model.apply(p, x.T)
        return optax.softmax_cross_entropy_with_integer_labels(logits.T, y).mean()

    kernels = []
    for start in range(0, 3277, 1000):
        rows = slice(start, min(start + 1000, 3277))
        grads = jax.grad(loss)(params, data.x[rows], data.y[rows])
        kernels.append([np.asarray(grads["params"][f"Dense_{i}"]["kernel"], np.float64).ravel()
                        for i in range(3)])
        updates, opt_state = adam.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
    for layer in range(3):
        g = np.stack([k[layer] for k in kernels])
        mean = np.linalg.norm(g.mean(0))
        std = np.sqrt(((g - g.mean(0)) ** 2).sum(1).mean())
        assert float(measured.grad_mean[1, layer]) == pytest.approx(mean, rel=1e-4)
        assert float(measured.grad_std[1, layer]) == pytest.approx(std, rel=1e-4)
    assert np.isnan(np.asarray(measured.grad_mean[0])).all()  # no epoch before epoch 0
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 end.params, params)
    # Loss on the training rows, and MI of the softmax layer, from the independent params.
    logits, layers = model.apply(params, data.x.T)
    train_loss = optax.softmax_cross_entropy_with_integer_labels(logits.T[:3277], data.y[:3277])
    assert float(measured.train_loss[1]) == pytest.approx(float(train_loss.mean()), rel=1e-5)
    assert int(end.train_mask.sum()) == 3277 and bool(end.train_mask[:3277].all())
    ixt, ity = ibjax.mi.binned_mi(layers[-1].T, data.y)
    assert float(measured.ixt[1, 0, -1]) == pytest.approx(float(ixt), abs=0.02)
    assert float(measured.ity[1, 0, -1]) == pytest.approx(float(ity), abs=0.02)


def test_layer_products_resolve_by_platform_and_size():
    shapes = [(12, 10), (10, 7), (300, 200)]
    assert layer_products("auto", shapes, "gpu") == ("broadcast", "broadcast", "matmul")
    small = "native" if native.available() else "matmul"
    assert layer_products("auto", shapes, "cpu") == (small, small, "matmul")
    assert layer_products("auto", [(32, 32), (32, 33)], "cpu") == (small, "matmul")
    assert layer_products("auto", shapes, "tpu") == ("matmul",) * 3
    assert layer_products("auto", [(16, 16), (16, 17)], "gpu") == ("broadcast", "matmul")
    assert layer_products("broadcast", shapes, "cpu") == ("broadcast",) * 3
    assert layer_products("matmul", shapes, "gpu") == ("matmul",) * 3
    trainer = make_trainer(Config(hidden=(4, 3)), load_var_u(), platform="gpu")
    assert trainer.layer_products == ("broadcast",) * 3


@pytest.mark.parametrize("product", ["broadcast", NATIVE])
def test_products_train_like_matrix_products(product):
    """Each way of computing a layer's product gives XLA's matmul training up to rounding."""
    data = load_var_u()
    steps = Steps(jnp.asarray([0, 10, 10], jnp.int32), jnp.ones(3, bool))
    outputs = {}
    for name in ("matmul", product):
        trainer = make_trainer(Config(hidden=(6, 4), layer_product=name), data)
        assert trainer.layer_products == (name,) * 3
        seeds = jnp.arange(3, dtype=jnp.int32)
        state = jax.jit(jax.vmap(trainer.init))(seeds, jnp.full(3, 4e-4))
        outputs[name] = jax.jit(jax.vmap(trainer.run_steps, in_axes=(0, None, None)))(
            state, trainer.device_data(data), steps)
    (m_state, m), (b_state, b) = outputs["matmul"], outputs[product]
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6),
                 m_state.params, b_state.params)
    np.testing.assert_allclose(m.train_loss, b.train_loss, rtol=1e-5)
    # MI can differ only where rounding moves an activation across a bin edge.
    assert np.abs(np.asarray(m.ixt) - np.asarray(b.ixt)).max() <= 0.01
    assert np.abs(np.asarray(m.ity) - np.asarray(b.ity)).max() <= 0.01


def test_run_end_to_end_and_no_retrace():
    cfg = Config(num_seeds=3, seed=11, **SMALL)  # a config no other test compiles
    traces = program.TRACE_COUNT["segment"]
    ds = ibjax.run(cfg)
    assert dict(ds.sizes) == {"seed": 3, "epoch": 4, "estimator": 1, "layer": 3}
    np.testing.assert_array_equal(ds.epoch.values, [0, 2, 4, 6])
    assert np.isfinite(ds.ixt.values).all() and np.isfinite(ds.ity.values).all()
    assert (ds.ixt.values <= 12 + 1e-6).all() and (ds.ity.values <= 0.999158).all()
    assert np.isfinite(ds.grad_mean.values[:, 1:]).all()
    assert ((ds.train_accuracy >= 0) & (ds.train_accuracy <= 1)).all()
    assert ds.attrs["compile_s"] > 0
    auto = "native" if native.available() else "matmul"  # "auto" on a CPU
    assert ds.attrs["layer_products"] == ",".join([auto] * 3)
    again = ibjax.run(cfg)
    assert program.TRACE_COUNT["segment"] == traces + 1  # compiled once, reused
    assert again.attrs["compile_s"] == 0.0
    np.testing.assert_array_equal(again.ixt.values, ds.ixt.values)
    # Random split per seed: train rows differ between seeds, so do the losses.
    assert len(set(np.round(ds.train_loss.values[:, 0], 6))) == 3


def test_seed_gives_same_trajectory_alone_or_among_many():
    data = load_var_u()
    cfg = Config(hidden=(6, 4), num_epochs=20)
    trainer = make_trainer(cfg, data)
    init = jax.jit(jax.vmap(trainer.init))
    segment = jax.jit(jax.vmap(trainer.run_steps, in_axes=(0, None, None)))
    steps = Steps(jnp.asarray([0, 5, 5, 10], jnp.int32), jnp.ones(4, bool))
    device_data = trainer.device_data(data)

    def trajectory(seeds):
        seeds = jnp.asarray(seeds, jnp.int32)
        return segment(init(seeds, jnp.full(seeds.shape, 4e-4)), device_data, steps)

    alone_state, alone = trajectory([7])
    many_state, many = trajectory(list(range(100)))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[0], b[7], rtol=1e-5, atol=1e-6),
                 alone_state.params, many_state.params)
    # MI can differ only where float rounding moves an activation across a bin edge.
    assert np.abs(np.asarray(alone.ixt[0]) - np.asarray(many.ixt[7])).max() <= 0.01
    assert np.abs(np.asarray(alone.ity[0]) - np.asarray(many.ity[7])).max() <= 0.01
    np.testing.assert_array_equal(alone.ixt[0, 0], many.ixt[7, 0])  # identical init


@pytest.mark.parametrize("overrides", [
    {"activation": "relu", "optimizer": "sgd", "learning_rate": 0.05, "bin_range": (0.0, 5.0)},
    {"activation": "linear", "batch_size": None, "train_fraction": 1.0},
])
def test_other_activations_optimisers_and_full_batch(overrides):
    ds = ibjax.run(Config(num_seeds=2, **{**SMALL, **overrides}))
    assert np.isfinite(ds.ixt.values).all()
    if overrides.get("batch_size", 512) is None:
        np.testing.assert_allclose(ds.grad_std.values[:, 1:], 0.0, atol=1e-7)  # one batch
        assert np.isnan(ds.test_loss.values).all()  # no test rows
