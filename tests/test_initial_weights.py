"""Initial weights built by two programs (ibjax.initial_weights, as the runner builds init):
the random bits (compiled at XLA's optimisation level 0 on a CPU), then the floats. They must
equal one init program's bit for bit, for every network ibjax builds, and anything that the
split cannot account for falls back to one program."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ibjax
from ibjax import initial_weights, program
from ibjax.data import load_dataset
from ibjax.model import paper_kernel_init
from ibjax.train import make_trainer


def leaves(tree):
    return [np.asarray(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
                       else x) for x in jax.tree.leaves(tree)]


def two_programs(trainer, seeds, rates, stored: bool):
    """init built as the runner builds it: traced, or exported and loaded as from the store."""
    by_seed, _ = program.seed_sharding(tuple(jax.devices()))
    shapes = (jax.ShapeDtypeStruct(seeds.shape, seeds.dtype, sharding=by_seed),
              jax.ShapeDtypeStruct(rates.shape, rates.dtype, sharding=by_seed))
    init_fn = jax.vmap(trainer.init)
    if stored:
        exported = program._export_init(init_fn, *shapes, by_seed, split=True)
        lowered, weights = program._lower_stored_init(exported, *shapes, by_seed)
        out_trees = exported.out_trees
    else:
        lowered, weights = program._lower_init(init_fn, *shapes, by_seed, split=True)
        out_trees = None
    options = program._bits_options(jax.devices()[0].platform)
    return program._compile_init(lowered, weights, options, out_trees)


@pytest.mark.parametrize("config, data, num_seeds", [
    # The paper network: 64 seeds hold ~15,000 weights, so ~60 of their bit patterns are NaNs
    # as float32 (exponent all ones), some of them signalling: any arithmetic on the bits
    # before they are turned into weights would change them.
    (ibjax.Config(), "var_u", 64),
    (ibjax.Config(hidden=(400, 300, 5)), "var_u", 3),  # wide layers
    (ibjax.Config(model="cnn", hidden=(3, 4, 8)), "digits", 4),  # convolutions
])
@pytest.mark.parametrize("stored", [False, True], ids=["traced", "stored"])
def test_two_programs_give_one_programs_weights_bit_for_bit(config, data, num_seeds, stored):
    dataset = load_dataset(data)
    trainer = make_trainer(config, dataset)
    seeds = jnp.arange(100, 100 + num_seeds, dtype=jnp.int32)
    rates = jnp.full(num_seeds, config.learning_rate, jnp.float32)
    init = two_programs(trainer, seeds, rates, stored)
    assert isinstance(init, program._TwoStageInit)
    bits_state = init.bits(seeds, rates)
    kernels = initial_weights._kernels(bits_state.params)
    if config == ibjax.Config():
        assert sum(int(jnp.isnan(k).sum()) for k in kernels) > 0  # the edge case is covered
    one = jax.jit(jax.vmap(trainer.init))(seeds, rates)
    two = init(seeds, rates)
    assert jax.tree.structure(one) == jax.tree.structure(two)
    for a, b in zip(leaves(one), leaves(two), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_outside_the_block_the_initializer_draws_weights():
    key = jax.random.key(0)
    assert initial_weights.raw_bits(key, (3, 2), jnp.float32) is None
    with initial_weights.drawing_bits() as draws:
        bits = paper_kernel_init(key, (3, 2))
    assert draws == [((3, 2), jnp.dtype(jnp.float32))]
    np.testing.assert_array_equal(
        np.asarray(jax.lax.bitcast_convert_type(bits, jnp.uint32)),
        np.asarray(jax.random.bits(key, (3, 2), jnp.uint32)))
    weights = paper_kernel_init(key, (3, 2))
    np.testing.assert_array_equal(np.asarray(weights), np.asarray(
        initial_weights.weights_from_bits({"kernel": bits})["kernel"]))
    assert np.all(np.abs(np.asarray(weights)) <= 2 / np.sqrt(3))


class _MixedInits(nn.Module):
    """One kernel drawn by paper_kernel_init, one by flax's default: the split cannot tell
    which leaf holds bits, so init stays one program."""

    @nn.compact
    def __call__(self, x):
        h = jnp.tanh(nn.Dense(4, kernel_init=paper_kernel_init)(x))
        logits = nn.Dense(2)(h)
        return logits, [h, jax.nn.softmax(logits)]


@pytest.mark.parametrize("stored", [False, True], ids=["traced", "stored"])
def test_draws_that_are_not_exactly_the_kernels_keep_one_program(stored):
    f32 = jnp.dtype(jnp.float32)
    params = {"a": {"kernel": jax.ShapeDtypeStruct((3, 2), f32)},
              "b": {"kernel": jax.ShapeDtypeStruct((2, 2), f32),
                    "bias": jax.ShapeDtypeStruct((2,), f32)}}
    assert initial_weights.bits_match([((3, 2), f32), ((2, 2), f32)], params)
    assert not initial_weights.bits_match([((3, 2), f32)], params)
    assert not initial_weights.bits_match([((3, 2), f32), ((2,), f32)], params)
    assert not initial_weights.bits_match([], {})
    half = {"kernel": jax.ShapeDtypeStruct((3, 2), jnp.float16)}
    assert not initial_weights.bits_match([((3, 2), jnp.dtype(jnp.float16))], half)

    trainer = make_trainer(ibjax.Config(), ibjax.load_var_u(), model=_MixedInits())
    seeds = jnp.arange(2, dtype=jnp.int32)
    rates = jnp.full(2, 1e-3, jnp.float32)
    init = two_programs(trainer, seeds, rates, stored)
    assert not isinstance(init, program._TwoStageInit)
    for a, b in zip(leaves(init(seeds, rates)),
                    leaves(jax.jit(jax.vmap(trainer.init))(seeds, rates)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_truncated_normal_that_draws_otherwise_keeps_one_program(monkeypatch):
    """A JAX whose truncated normal asked its key for more than one draw of its shape: the
    replayed key refuses, and init is built in one program."""
    def two_draws(key, lower, upper, shape, dtype):
        return jax.random.uniform(key, shape, dtype) + jax.random.uniform(key, (1, 1), dtype)

    with pytest.raises(initial_weights.ReplayError):
        with monkeypatch.context() as patch:
            patch.setattr(jax.random, "truncated_normal", two_draws)
            jax.jit(initial_weights.weights_from_bits).lower(  # raised while lowering
                {"kernel": jax.ShapeDtypeStruct((3, 2), jnp.float32)})
    trainer = make_trainer(ibjax.Config(hidden=(3,)), ibjax.load_var_u())
    seeds, rates = jnp.arange(2, dtype=jnp.int32), jnp.full(2, 1e-3, jnp.float32)
    monkeypatch.setattr(jax.random, "truncated_normal", two_draws)
    for stored in (False, True):
        init = two_programs(trainer, seeds, rates, stored)
        assert not isinstance(init, program._TwoStageInit)
        assert all(np.all(np.isfinite(k)) for k in initial_weights._kernels(
            init(seeds, rates).params))
