"""ibjax.compiling: quicker lowering that changes no number, and leaves JAX as it found it."""

import gc

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ibjax
from ibjax.compiling import _cpu_threefry_rule, compiling, threefry_unrolled_on_cpu
from ibjax.train import make_trainer


def _init_program(trainer, seeds):
    return jax.jit(jax.vmap(trainer.init)).lower(seeds, jnp.full(seeds.shape, 1e-3))


def test_init_is_bit_for_bit_the_same_and_jax_is_restored():
    trainer = make_trainer(ibjax.Config(), ibjax.load_var_u())
    seeds = jnp.arange(5, dtype=jnp.int32)
    found = _cpu_threefry_rule()
    rule_before = None if found is None else found[0].get(found[1])
    plain = _init_program(trainer, seeds)
    with compiling(), threefry_unrolled_on_cpu():
        assert not gc.isenabled()
        quick = _init_program(trainer, seeds)
        quick_compiled = quick.compile()
    assert gc.isenabled()
    if found is not None:  # this JAX has a CPU-specific (rolled) rule: it is back in place
        assert found[0].get(found[1]) is rule_before
        # Unrolled, the hash has no loop left; the plain lowering keeps JAX's loops.
        assert "stablehlo.while" not in quick.as_text()
        assert "stablehlo.while" in plain.as_text()
    a = jax.tree.leaves(plain.compile()(seeds, jnp.full(5, 1e-3)))
    b = jax.tree.leaves(quick_compiled(seeds, jnp.full(5, 1e-3)))
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_random_draws_are_the_same_inside_and_outside():
    def draws(key):
        k1, k2 = jax.random.split(jax.random.fold_in(key, 7))
        return (jax.random.normal(k1, (1001,)), jax.random.truncated_normal(k2, -2, 2, (33, 3)),
                jax.random.bits(k2, (17,)))

    keys = jax.random.split(jax.random.key(3), 4)
    outside = jax.jit(jax.vmap(draws)).lower(keys).compile()(keys)
    with threefry_unrolled_on_cpu():
        inside = jax.jit(jax.vmap(draws)).lower(keys).compile()(keys)
    for x, y in zip(outside, inside, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_overlapping_blocks_in_threads_restore_the_rule_once_all_have_ended():
    """Blocks that overlap (the runner lowers init in a thread) take the rule out once and put
    it back when the last one ends, not when the first does."""
    import threading

    found = _cpu_threefry_rule()
    if found is None or found[1] not in found[0]:
        pytest.skip("this JAX has no CPU-specific Threefry rule to take out")
    table, primitive = found
    rule = table[primitive]
    entered, release = threading.Event(), threading.Event()

    def other_block():
        with threefry_unrolled_on_cpu():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=other_block)
    with threefry_unrolled_on_cpu():
        thread.start()
        assert entered.wait(10)
        assert primitive not in table
    assert primitive not in table  # the other block is still open
    release.set()
    thread.join(10)
    assert table[primitive] is rule
