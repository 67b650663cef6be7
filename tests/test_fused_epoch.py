"""The fused Pallas epoch kernel (ibjax.fused_epoch), in Pallas's interpret mode on the CPU,
against the trainer's XLA epoch from the same states: the same minibatches and the same Adam,
so weights, optimiser state and per-minibatch gradients agree up to float rounding. Tolerance:
every array within 1e-5 of its largest magnitude (measured: ~3e-8 on the paper network's
weights after 2 epochs, 1e-9 on its gradients)."""

import functools
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ibjax
from ibjax import fused_epoch
from ibjax.config import ConfigError
from ibjax.data import load_dataset
from ibjax.fused_epoch import make_fused_epochs, make_fused_train_steps, unsupported_reason
from ibjax.segment import grouped_steps
from ibjax.train import Steps, make_trainer


def leaves(tree):
    return [np.asarray(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
                       else x) for x in jax.tree.leaves(tree)]


def assert_close(actual, expected, name):
    """NaNs and infinities in the same places, finite values within 1e-5 of the largest."""
    assert actual.shape == expected.shape, name
    if expected.dtype.kind != "f":
        np.testing.assert_array_equal(actual, expected, err_msg=name)
        return
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=name)
    infinite = np.isinf(expected)
    np.testing.assert_array_equal(actual[infinite], expected[infinite], err_msg=name)
    finite = np.isfinite(expected)
    if finite.any():
        scale = np.max(np.abs(expected[finite]))
        np.testing.assert_allclose(actual[finite], expected[finite], rtol=0,
                                   atol=1e-5 * scale + 1e-30, err_msg=name)


def compare(config, rates, num_epochs, prepare=None):
    """Trains from the same states both ways; ``prepare(trainer, states, data)`` may change
    the initial states first."""
    dataset = load_dataset("var_u")
    trainer = make_trainer(config, dataset)
    data = trainer.device_data(dataset)
    rates = jnp.asarray(rates, jnp.float32)
    states = jax.vmap(trainer.init)(jnp.arange(rates.size), rates)
    if prepare is not None:
        states = prepare(trainer, states, data)
    fused, fused_grads = jax.jit(make_fused_epochs(trainer, num_epochs))(states, data)
    epoch = jax.jit(jax.vmap(trainer.train_epoch, in_axes=(0, None)))
    expected = states
    for _ in range(num_epochs):
        expected, grads = epoch(expected, data)
    assert jax.tree.structure(fused) == jax.tree.structure(expected)
    for index, (a, b) in enumerate(zip(leaves(fused), leaves(expected), strict=True)):
        assert_close(a, b, f"state leaf {index}")
    for index, (a, b) in enumerate(zip(fused_grads, grads, strict=True)):
        assert_close(np.asarray(a), np.asarray(b), f"layer {index} gradients")
    return fused, expected


@pytest.mark.parametrize("config, rates", [
    # a wider layer, ReLU, a batch size that is not a power of two (padded inside the kernel)
    (ibjax.Config(hidden=(40,), activation="relu", batch_size=300), [1e-3, 2e-3]),
    # unbounded activations grown by a large step size; a full-batch epoch (3277 rows)
    (ibjax.Config(hidden=(10, 7), activation="linear", batch_size=None), [0.5, 0.05]),
], ids=["wider-relu-batch300", "linear-large-full-batch"])
def test_other_networks(config, rates):
    compare(config, rates, num_epochs=1)


def test_diverging_seeds_are_flagged_at_their_epoch_and_leave_the_others_alone():
    """The paper network, two epochs per call: seed 0 trains as the XLA epochs do (every state
    leaf compared, the epoch counter too); seeds 1 and 2 diverge."""
    def prepare(trainer, states, data):  # one XLA epoch, then seed 2 steps by inf
        states, _ = jax.jit(jax.vmap(trainer.train_epoch, in_axes=(0, None)))(states, data)
        rates = states.opt_state.hyperparams["learning_rate"].at[2].set(jnp.inf)
        return states._replace(opt_state=states.opt_state._replace(
            hyperparams={**states.opt_state.hyperparams, "learning_rate": rates}))

    # 2 epochs per call: seed 1 diverged before the call, seed 2 in its first epoch (epoch 2)
    fused, _ = compare(ibjax.Config(), [4e-4, np.nan, 4e-4], num_epochs=2, prepare=prepare)
    assert list(np.asarray(fused.diverged_at)) == [-1, 1, 2]
    assert np.all(np.asarray(fused.epoch) == 3)  # 1 in prepare, 2 fused
    assert np.all(np.isfinite(np.asarray(fused.params["params"]["Dense_0"]["kernel"][0])))


def test_train_steps_match_the_trainers_for_any_number_of_epochs():
    """make_fused_train_steps (what segments call): one program, num_epochs an argument."""
    dataset = load_dataset("var_u")
    trainer = make_trainer(ibjax.Config(), dataset)
    data = trainer.device_data(dataset)
    states = jax.vmap(trainer.init)(jnp.arange(2), jnp.asarray([4e-4, 2e-3], jnp.float32))
    fused = jax.jit(make_fused_train_steps(trainer))
    expected = jax.jit(jax.vmap(trainer.train_steps, in_axes=(0, None, None)))
    for num_epochs in (3, 0, -2):  # none trained for 0 or less, as the trainer
        (a, a_stats), (b, b_stats) = [f(states, data, jnp.int32(num_epochs))
                                      for f in (fused, expected)]
        for index, (x, y) in enumerate(zip(leaves(a), leaves(b), strict=True)):
            assert_close(x, y, f"{num_epochs} epochs: state leaf {index}")
        for x, y in zip(a_stats, b_stats, strict=True):
            assert_close(np.asarray(x), np.asarray(y), f"{num_epochs} epochs: gradient stats")
        assert np.isnan(np.asarray(a_stats[0])).all() == (num_epochs <= 0)


def test_a_run_with_the_fused_kernel_measures_what_the_xla_run_measures():
    """ibjax.run(training_kernel='fused'): the segments train with the kernel."""
    def run(kernel):
        return ibjax.run(ibjax.Config(num_seeds=2, num_epochs=3, snapshots="every:1",
                                      training_kernel=kernel))

    fused, xla = run("fused"), run("xla")
    for name in ("ixt", "ity", "grad_mean", "grad_std", "train_loss", "test_accuracy"):
        assert_close(fused[name].values, xla[name].values, name)
    assert fused.attrs["config"] != xla.attrs["config"]  # the kernel is in the results


def test_an_unsupported_fused_run_is_refused_before_compiling():
    with pytest.raises(ConfigError, match="training_kernel 'fused' cannot train "
                                          "optimizer='sgd'"):
        ibjax.run(ibjax.Config(num_seeds=1, num_epochs=1, optimizer="sgd",
                               training_kernel="fused"))


class Tiny(nn.Module):
    """A user's MLP (samples-major), which the kernel does not know."""

    @nn.compact
    def __call__(self, x):
        hidden = jnp.tanh(nn.Dense(5)(x))
        logits = nn.Dense(2)(hidden)
        return logits, [hidden, jax.nn.softmax(logits)]


@pytest.mark.parametrize("config, data, expected", [
    (ibjax.Config(optimizer="sgd"), "var_u", "optimizer='sgd'"),
    (ibjax.Config(noise_std=0.1), "var_u", "noise_std"),
    (ibjax.Config(quantize=4), "var_u", "quantize"),
    (ibjax.Config(model="cnn", hidden=(3, 4, 8)), "digits", "model='cnn'"),
    (ibjax.Config(hidden=(100,)), "var_u", "1400 weights (at most 1024"),
    (ibjax.Config(), "var_u", "a model of your own"),
])
def test_unsupported_configurations_say_why(config, data, expected):
    model = Tiny() if expected == "a model of your own" else None
    trainer = make_trainer(config, load_dataset(data), model=model)
    assert expected in unsupported_reason(trainer)
    with pytest.raises(ConfigError, match="fused epoch kernel cannot train"):
        make_fused_epochs(trainer)


@pytest.mark.parametrize("arguments, message", [
    ({"num_epochs": 0}, "num_epochs must be an integer >= 1, got 0"),
    ({"num_warps": 3}, "num_warps must be a power of two"),
    ({"num_warps": 64}, "num_warps must be a power of two .1, 2, 4, 8, 16 or 32., got 64"),
    ({"num_epochs": True}, "num_epochs must be an integer >= 1, got True"),
    ({"interpret": "yes"}, "interpret must be True, False or None"),
])
def test_bad_arguments_are_named(arguments, message):
    config = ibjax.Config()
    trainer = make_trainer(config, load_dataset("var_u"))
    with pytest.raises(ConfigError, match=message):
        make_fused_epochs(trainer, **arguments)


def test_bad_states_are_refused_by_name():
    dataset = load_dataset("var_u")
    trainer = make_trainer(ibjax.Config(), dataset)
    data = trainer.device_data(dataset)
    epochs = make_fused_epochs(trainer)
    other = make_trainer(ibjax.Config(hidden=(3,)), dataset)  # another network
    states = jax.vmap(other.init)(jnp.arange(2), jnp.full(2, 1e-3))
    with pytest.raises(ConfigError, match="states are not of the trainer's network"):
        epochs(states, data)
    with pytest.raises(ConfigError, match="states must be a TrainState with a leading seed"):
        epochs(trainer.init(0, 1e-3), data)  # one seed, no seed axis
    with pytest.raises(TypeError, match="trainer must be an ibjax.train.Trainer"):
        make_fused_epochs(ibjax.Config())


def triton_memory_accesses(config, monkeypatch, capsys) -> tuple[int, int]:
    """The kernel lowered for CUDA on the CPU (Pallas prints its Triton module with
    ``debug=True``): ``(tensor loads and stores, scalar loads)`` in it."""
    dataset = load_dataset("var_u")
    trainer = make_trainer(config, dataset, platform="gpu")
    states = jax.eval_shape(jax.vmap(trainer.init), jnp.arange(8), jnp.zeros(8, jnp.float32))
    data = jax.eval_shape(lambda: trainer.device_data(dataset))
    epochs = make_fused_epochs(trainer, 2)  # built for GPUs
    monkeypatch.setattr(fused_epoch.pl, "pallas_call",
                        functools.partial(fused_epoch.pl.pallas_call, debug=True))
    capsys.readouterr()
    text = jax.jit(epochs).trace(states, data).lower(lowering_platforms=("cuda",)).as_text()
    assert "__gpu$xla.gpu.triton" in text
    module = capsys.readouterr().out
    assert "tt.func" in module, "Pallas printed no Triton module"
    tensor = len(re.findall(r"tt\.(?:load|store) [^\n]*: tensor<[^\n]*!tt\.ptr", module))
    scalar = len(re.findall(r"tt\.load [^\n]*: !tt\.ptr", module))
    return tensor, scalar


def test_the_kernel_lowers_to_triton_with_few_tensor_accesses(monkeypatch, capsys):
    """The GPU build is checked without a GPU: lowering for CUDA produces the Triton kernel.
    Its tensor loads and stores are few and do not grow with the network (weights are scalar
    loads, their gradients scalar stores): Triton's coalescing pass takes time cubic in their
    number (an earlier design with a tensor access per weight took over 15 minutes to compile
    for the paper network). What remains on a GPU is Triton's own compile and the timing;
    ``benchmarks/triton_compile.py`` compiles the module without a GPU."""
    paper = triton_memory_accesses(ibjax.Config(), monkeypatch, capsys)
    wider = triton_memory_accesses(ibjax.Config(hidden=(40, 10)), monkeypatch, capsys)
    assert paper[0] == wider[0] <= 8, (paper, wider)
    assert paper[1] >= 294 and wider[1] >= 12 * 40 + 40 * 10 + 10 * 2, (paper, wider)


def test_a_fused_segment_lowers_to_triton_for_cuda():
    """The runner's segment with training_kernel='fused', built for a GPU, lowered on the CPU:
    the kernel inside the scan and the loop over epochs."""
    dataset = load_dataset("var_u")
    trainer = make_trainer(ibjax.Config(training_kernel="fused"), dataset, platform="gpu")
    states = jax.eval_shape(jax.vmap(trainer.init), jnp.arange(8), jnp.zeros(8, jnp.float32))
    data = jax.eval_shape(lambda: trainer.device_data(dataset))
    steps = Steps(jax.ShapeDtypeStruct((5,), jnp.int32), jax.ShapeDtypeStruct((5,), bool))
    lowered = jax.jit(grouped_steps(trainer, 1)).trace(states, data, steps).lower(
        lowering_platforms=("cuda",))
    # the kernel once (one loop over the epochs): a GPU compiles it once per segment program
    assert lowered.as_text().count("__gpu$xla.gpu.triton") == 1
