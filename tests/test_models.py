"""Any model: the built-in CNN on images, a user's flax module through ibjax.run(model=...),
and data as arguments of the compiled program (data sets of the same shapes share it)."""

import subprocess
import sys

import flax.linen as nn
import jax
import numpy as np
import pytest

import ibjax
from ibjax import program
from ibjax.model import CNN


def test_estimator_core_imports_only_jax_and_numpy():
    code = ("import sys, ibjax.mi\n"
            "heavy = [m for m in ('flax', 'optax', 'xarray', 'matplotlib', 'scipy.io')\n"
            "         if m in sys.modules]\n"
            "print(heavy)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "[]"


def test_cnn_learns_the_digits_and_measures_its_four_layers():
    config = ibjax.Config(model="cnn", dataset="digits", num_seeds=2, num_epochs=40,
                          snapshots=(0, 10, 40), batch_size=128, learning_rate=3e-3,
                          estimators=("binning", "equal-mass"))
    results = ibjax.run(config)
    assert list(results.layer_name.values) == ["conv 1", "conv 2", "dense", "softmax output"]
    assert results.layer_width.values.tolist() == [4 * 4 * 8, 2 * 2 * 16, 32, 10]
    accuracy = results.test_accuracy.values
    assert (accuracy[:, 0] < 0.3).all() and np.median(accuracy[:, -1]) >= 0.85, accuracy
    assert np.isfinite(results.grad_mean.values[:, 1:]).all()  # each layer's own kernel
    assert (results.ixt.values <= np.log2(1797) + 1e-5).all()
    h_y = -sum(p * np.log2(p) for p in np.bincount(ibjax.load_digits().y) / 1797)
    assert (results.ity.values[:, -1, :, -1] > 0.8 * h_y).all()  # the softmax learned labels


def test_cnn_needs_images():
    with pytest.raises(ibjax.ConfigError, match="model='cnn' needs images"):
        ibjax.run(ibjax.Config(model="cnn", num_epochs=2))
    with pytest.raises(ibjax.ConfigError, match="hidden for model='cnn'"):
        ibjax.Config(model="cnn", hidden=(4, 3)).validate()


class TwoLayer(nn.Module):
    """A user's model: returns (logits, layers), samples-major."""

    width: int = 6

    @nn.compact
    def __call__(self, x):
        h = nn.tanh(nn.Dense(self.width)(x.reshape(x.shape[0], -1)))
        logits = nn.Dense(10)(h)
        return logits, [h, jax.nn.softmax(logits)]


class Unmatched(nn.Module):
    """Three parameter groups, two layers: the weights of each layer are ambiguous."""

    @nn.compact
    def __call__(self, x):
        h = nn.tanh(nn.Dense(5)(nn.Dense(7)(x.reshape(x.shape[0], -1))))
        logits = nn.Dense(10)(h)
        return logits, [h, logits]


def test_a_users_flax_module_trains_and_is_measured():
    config = ibjax.Config(dataset="digits", num_seeds=2, num_epochs=4, snapshots=(0, 4),
                          batch_size=256, estimators=("binning-width",))
    results = ibjax.run(config, model=TwoLayer())
    assert ibjax.config_of(results).model == "own:TwoLayer"
    assert list(results.layer_name.values) == ["layer 1", "layer 2"]
    assert results.layer_width.values.tolist() == [6, 10]
    assert np.isfinite(results.grad_mean.values[:, 1:]).all()
    with pytest.raises(ibjax.ConfigError, match="cannot tell which weights belong"):
        ibjax.run(config, model=Unmatched())
    with pytest.raises(ibjax.ConfigError, match="flax.linen Module"):
        ibjax.run(config, model=lambda x: x)


def test_data_of_the_same_shapes_share_one_compiled_program():
    rng = np.random.default_rng(0)
    config = ibjax.Config(num_seeds=2, hidden=(4,), num_epochs=3, snapshots=(0, 3),
                          batch_size=50)
    first = ibjax.make_dataset(rng.normal(size=(120, 6)), np.arange(120) % 3, name="first")
    second = ibjax.make_dataset(rng.normal(size=(120, 6)) * 2, (np.arange(120) // 7) % 3,
                                name="second")
    program.compiled_program.cache_clear()
    traces = program.TRACE_COUNT["segment"]
    a = ibjax.run(config, data=first)
    b = ibjax.run(config, data=second)
    assert program.TRACE_COUNT["segment"] == traces + 1  # traced and compiled once
    assert program.compiled_program.cache_info().misses == 1
    assert b.attrs["compile_s"] == 0.0 < a.attrs["compile_s"]
    assert not np.allclose(a.ixt.values, b.ixt.values)  # the second data set was used
    assert ibjax.config_of(b).dataset == "arrays:second"


def test_cnn_module_is_public_and_samples_major():
    params = CNN(num_classes=3).init(jax.random.key(0), np.zeros((2, 8, 8, 1), np.float32))
    logits, layers = CNN(num_classes=3).apply(params, np.zeros((2, 8, 8, 1), np.float32))
    assert logits.shape == (2, 3) and [t.shape for t in layers] == [
        (2, 4, 4, 8), (2, 2, 2, 16), (2, 32), (2, 3)]


def test_resuming_on_other_arrays_is_refused(tmp_path):
    """Arrays passed from Python are fingerprinted in the checkpoint: a resume with other
    arrays of the same shapes (which would share the compiled program) is refused."""
    from ibjax.checkpoint import CheckpointError
    from ibjax.runner import RunInterrupted

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(120, 6)), np.arange(120) % 3
    config = ibjax.Config(num_seeds=2, hidden=(4,), num_epochs=40, snapshots="every:1",
                          batch_size=50)
    calls = []

    def stop_after_two(progress):
        calls.append(progress)
        if len(calls) == 2:
            raise KeyboardInterrupt

    path = tmp_path / "checkpoint.npz"
    with pytest.raises(RunInterrupted):
        ibjax.run(config, data=ibjax.make_dataset(x, y, name="d"), progress=stop_after_two,
                  checkpoint_path=path, checkpoint_every_s=0)
    with pytest.raises(CheckpointError, match="the data changed since the run started"):
        ibjax.run(config, data=ibjax.make_dataset(x + 1, y, name="d"), checkpoint_path=path,
                  resume=True)
    resumed = ibjax.run(config, data=ibjax.make_dataset(x, y, name="d"), checkpoint_path=path,
                        resume=True)
    assert np.isfinite(resumed.ixt.values).all()


class NotBatchFirst(nn.Module):
    """Its second layer is transposed: no row per sample."""

    layer_param_names = ("Dense_0", "Dense_0")

    @nn.compact
    def __call__(self, x):
        logits = nn.Dense(10)(x.reshape(x.shape[0], -1))
        return logits, [logits, logits.T]


class LogitsOnly(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


@pytest.mark.parametrize("module, match", [
    (NotBatchFirst(), "layer 1 must be \\[batch, ...\\]"),
    (LogitsOnly(), "must return \\(logits, layers\\)"),
])
def test_a_module_whose_layers_are_not_per_sample_is_refused(module, match):
    with pytest.raises(ibjax.ConfigError, match=match):
        ibjax.run(ibjax.Config(dataset="digits", num_seeds=1, num_epochs=1), model=module)


def test_own_models_are_binned_on_their_own_range_and_merge_only_with_themselves(tmp_path):
    config = ibjax.Config(dataset="digits", num_seeds=1, num_epochs=2, snapshots=(0, 2),
                          batch_size=256)
    a = ibjax.run(config, model=TwoLayer(width=6))
    assert ibjax.config_of(a).bin_range == "layer"  # "auto": ibjax does not know its activation
    b = ibjax.run(config, model=TwoLayer(width=5), seeds=[1])
    with pytest.raises(ValueError, match="different models"):
        ibjax.merge([a, b])
