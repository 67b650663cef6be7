"""The recorder for users' own training loops: in-graph measurement under jit, scan and vmap,
nothing leaving the device, and results files that the rest of ibjax reads unchanged."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ibjax
from ibjax import phases
from ibjax.cli import main
from ibjax.recorder import gradient_stats

N, EPOCHS, SEEDS = 200, 6, 3
SNAPSHOTS = (0, 1, 3, 6)
rng = np.random.default_rng(5)
X = jnp.asarray(rng.normal(size=(N, 5)).astype(np.float32))
Y = np.arange(N) % 3


def layers_of(w):
    """A toy two-layer 'network' whose layers drift with the epoch: [N, 4], [N, 2, 3]."""
    h1 = jnp.tanh(X @ w)
    return [h1, jnp.tanh(jnp.concatenate([h1, h1[:, :2]], axis=1)).reshape(N, 2, 3)]


def weights(key, epoch):
    return jax.random.normal(jax.random.fold_in(key, epoch), (5, 4)) * (1 + epoch)


def make(estimators=("binning", "kde-upper")):
    return ibjax.make_recorder(SNAPSHOTS, Y, estimators, layer_names=("a", "b"),
                               num_epochs=EPOCHS, kde_variance=0.05)


def train(recorder, key):
    """One 'seed': record at every epoch (only the snapshot epochs measure)."""
    def epoch(buffer, e):
        w = weights(key, e)
        stats = gradient_stats([jnp.stack([w, 2 * w]), jnp.stack([w[:2], w[:2]])])
        return recorder.record(buffer, e, layers_of(w), grad_mean=stats[0], grad_std=stats[1],
                               train_loss=e * 0.5), None

    buffer, _ = jax.lax.scan(epoch, recorder.init(), jnp.arange(EPOCHS + 1))
    return buffer


def test_record_in_a_vmapped_scan_equals_direct_estimates():
    recorder = make()
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(1), i))(jnp.arange(SEEDS))
    buffers = jax.jit(jax.vmap(lambda k: train(recorder, k)))(keys)
    assert buffers.ixt.shape == (SEEDS, len(SNAPSHOTS), 2, 2)
    for s in range(SEEDS):
        for k, e in enumerate(SNAPSHOTS):
            want = ibjax.mi.estimate(layers_of(weights(keys[s], e)), Y, ("binning", "kde-upper"),
                                     kde_variance=0.05)
            np.testing.assert_allclose(buffers.ixt[s, k], want[0], atol=1e-5)
            np.testing.assert_allclose(buffers.ity[s, k], want[1], atol=1e-5)
            assert float(buffers.train_loss[s, k]) == e * 0.5
    assert np.isfinite(np.asarray(buffers.grad_std)).all()
    np.testing.assert_array_equal(buffers.layer_widths[0], [4, 6])


def test_nothing_leaves_the_device_while_training():
    """The whole vmapped loop runs under jax.transfer_guard('disallow'): no implicit transfer
    between host and device, so no activation goes to the host."""
    recorder = make()
    keys = jax.device_put(jax.vmap(lambda i: jax.random.fold_in(jax.random.key(2), i))(
        jnp.arange(SEEDS)))
    train_all = jax.jit(jax.vmap(lambda k: train(recorder, k)))
    with jax.transfer_guard("disallow"):
        buffers = jax.block_until_ready(train_all(keys))
        with pytest.raises(Exception, match="Disallowed host-to-device"):
            jax.jit(lambda a: a + 1)(np.ones(3))  # the guard is live
    assert np.isfinite(np.asarray(buffers.ixt)).all()


def test_results_read_by_plot_info_phases_and_merge(tmp_path, capsys):
    recorder = make()
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(3), i))(jnp.arange(4))
    buffers = jax.jit(jax.vmap(lambda k: train(recorder, k)))(keys)
    parts = [recorder.to_dataset(jax.tree.map(lambda a, lo=lo: a[lo:lo + 2], buffers),
                                 seeds=[lo, lo + 1]) for lo in (0, 2)]
    whole = recorder.to_dataset(buffers)
    reference = ibjax.run(ibjax.Config(num_seeds=1, hidden=(3,), num_epochs=2, snapshots=(0, 2),
                                       estimators=("binning", "kde-upper")))
    assert whole.attrs["schema_version"] == reference.attrs["schema_version"]
    for name in ("ixt", "ity", "grad_mean", "grad_std", "train_loss"):
        assert whole[name].dims == reference[name].dims
    assert "test_loss" not in whole  # never recorded: left out, not NaN
    assert list(whole.layer_name.values) == ["a", "b"]
    assert whole.layer_width.values.tolist() == [4, 6]
    assert ibjax.config_of(whole).model == "own:model"
    import json
    stored = json.loads(whole.attrs["config"])  # no training settings the loop did not give
    assert "optimizer" not in stored and "learning_rate" not in stored and "knn_k" in stored
    paths = [ibjax.save(part, tmp_path / f"part{i}.nc") for i, part in enumerate(parts)]
    assert main(["merge", *map(str, paths), "--out", str(tmp_path / "all.nc")]) == 0
    merged = ibjax.load(tmp_path / "all.nc")
    np.testing.assert_array_equal(merged.ixt.values, whole.ixt.values)
    assert merged.attrs["config"] == whole.attrs["config"]
    assert main(["info", str(tmp_path / "all.nc")]) == 0
    out = capsys.readouterr().out
    assert "own:model" in out and "not in this file: train_accuracy, test_loss" in out
    assert "optimizer" not in out  # a training setting the recorder does not know
    assert main(["plot", str(tmp_path / "all.nc")]) == 0
    assert {"information_plane.png", "gradients.png", "accuracy.png"} <= {
        p.name for p in tmp_path.iterdir()}
    markers = phases.detect(merged)
    assert markers.compression_epoch.shape == (4, 2, 2)


def test_bad_arguments_are_named_before_tracing():
    with pytest.raises(ibjax.ConfigError, match="snapshots"):
        ibjax.make_recorder((0, 10), Y, layer_names=("a",), num_epochs=5)
    with pytest.raises(ibjax.ConfigError, match="unknown estimator 'ksg'"):
        ibjax.make_recorder((0, 1), Y, ("ksg",), layer_names=("a",))
    with pytest.raises(ibjax.ConfigError, match="y must be"):
        ibjax.make_recorder((0, 1), Y.astype(float), layer_names=("a",))
    with pytest.raises(ibjax.ConfigError, match="layer_names"):
        ibjax.make_recorder((0, 1), Y, layer_names=())
    recorder = make()
    with pytest.raises(ibjax.ConfigError, match="layers must be a list of 2 arrays"):
        recorder.record(recorder.init(), 0, layers_of(jnp.ones((5, 4)))[:1])
    with pytest.raises(ibjax.ConfigError, match="grad_mean must have shape"):
        recorder.record(recorder.init(), 0, layers_of(jnp.ones((5, 4))), grad_mean=jnp.ones(3))
    with pytest.raises(ibjax.ConfigError, match=r"layers\[1\] has shape \(10, 2, 3\): the "
                       r"recorder measures the 200 rows of its y"):
        recorder.record(recorder.init(), 0, [layers_of(jnp.ones((5, 4)))[0],
                                             jnp.ones((10, 2, 3))])
    with pytest.raises(ibjax.ConfigError, match=r"layer_names must be distinct.*\['a'\]"):
        ibjax.make_recorder((0, 1), Y, layer_names=("a", "b", "a"))


def test_gradient_stats_against_numpy():
    g = rng.normal(size=(7, 3, 4))
    mean, std = gradient_stats([jnp.asarray(g)])
    flat = g.reshape(7, -1)
    want_mean = np.linalg.norm(flat.mean(0))
    want_std = np.sqrt(((flat - flat.mean(0)) ** 2).sum(1).mean())
    np.testing.assert_allclose([float(mean[0]), float(std[0])], [want_mean, want_std], rtol=1e-5)


def test_mistakes_in_a_loop_are_named():
    recorder = make()
    layers = layers_of(jnp.ones((5, 4)))
    with pytest.raises(ibjax.ConfigError, match="train_loss must have shape"):
        recorder.record(recorder.init(), 0, layers, train_loss=jnp.ones(3))
    with pytest.raises(ibjax.ConfigError, match="epoch must be a scalar integer"):
        recorder.record(recorder.init(), 0.5, layers)
    with pytest.raises(ibjax.ConfigError, match="nothing was recorded"):
        recorder.to_dataset(recorder.init())
    state = recorder.record(recorder.init(), 0, layers)
    stacked = jax.tree.map(lambda a: jnp.stack([a, a]), state)
    with pytest.raises(ibjax.ConfigError, match="distinct integers"):
        recorder.to_dataset(stacked, seeds=[1, 1])
    with pytest.raises(ibjax.ConfigError, match="one leading seed axis"):
        recorder.to_dataset(jax.tree.map(lambda a: jnp.stack([a, a]), stacked))
    only_initial = ibjax.make_recorder([0], Y, layer_names=("a", "b"))
    assert only_initial.config.num_epochs == 1
