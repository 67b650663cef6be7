"""Building a run's compiled programs: ``init`` and one segment, for a configuration.

:func:`compiled_program` traces, lowers and compiles both (once per configuration, seed count
and devices in a process). With JAX's persistent compilation cache on, on a CPU, the traced
programs are kept as :mod:`jax.export` modules (:mod:`ibjax.program_cache`) and compiled from
there, so a later process skips the tracing too. ``init`` compiles in a thread while the
segment is traced.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ibjax import initial_weights, native, program_cache
from ibjax.compiling import compiling, threefry_unrolled_on_cpu
from ibjax.config import Config, snapshot_epochs
from ibjax.plan import Plan, make_plan
from ibjax.segment import batched_steps, grouped_steps, num_training_groups, training_group_size
from ibjax.train import DataSpec, Steps, Trainer, make_trainer

# Counts traces of the segment program; a test checks that a second run does not retrace.
TRACE_COUNT = {"segment": 0}



class Program(NamedTuple):
    """A compiled run for one configuration and seed count."""

    trainer: Trainer
    plan: Plan
    init: Callable
    segment: Callable
    compile_s: float
    training_groups: int


def seed_sharding(devices: tuple[jax.Device, ...]) -> tuple[NamedSharding, NamedSharding]:
    """Shardings that split a leading seed axis over ``devices`` (mesh axis ``"seed"``).

    Returns:
      ``(by_seed, replicated)``.
    """
    mesh = Mesh(np.asarray(devices), ("seed",))
    return NamedSharding(mesh, PartitionSpec("seed")), NamedSharding(mesh, PartitionSpec())


@functools.lru_cache(maxsize=16)
def compiled_program(config: Config, spec: DataSpec, num_seeds: int,
                      devices: tuple[jax.Device, ...], target_segments: int = 50,
                      training_group: int | None = None, model=None) -> Program:
    """Compiles init and one segment for ``num_seeds`` (a multiple of ``len(devices)``).

    The program depends on the data only through ``spec`` (shapes): the arrays are an
    argument, so data sets of the same shapes share it. Each device trains its networks in
    groups of at most ``training_group`` (None: the platform's default,
    :func:`ibjax.segment.training_group_size`) and measures them all at once.
    """
    with compiling():
        return _compile_program(config, spec, num_seeds, devices, target_segments,
                                training_group, model)


def _compile_program(config: Config, spec: DataSpec, num_seeds: int,
                     devices: tuple[jax.Device, ...], target_segments: int,
                     training_group: int | None, model) -> Program:
    """:func:`compiled_program`'s work (inside :func:`ibjax.compiling.compiling`)."""
    trainer = make_trainer(config, spec, platform=devices[0].platform, model=model)
    plan = make_plan(snapshot_epochs(config.snapshots, config.num_epochs), config.num_epochs,
                     target_segments=target_segments)
    by_seed, replicated = seed_sharding(devices)
    groups = num_training_groups(num_seeds // len(devices),
                                 training_group_size(training_group, devices[0].platform))
    local_steps = batched_steps(trainer) if groups == 1 else grouped_steps(trainer, groups)
    # Each device runs the segment on its own networks, so XLA partitions nothing: a custom
    # call (ibjax's native routines) has no partitioning rule, and under jit's automatic
    # partitioning would be computed for all networks on every device.
    steps_fn = jax.shard_map(local_steps, mesh=by_seed.mesh,
                             in_specs=(by_seed.spec, replicated.spec, replicated.spec),
                             out_specs=by_seed.spec, check_vma=False)

    def segment(state, data, steps):
        TRACE_COUNT["segment"] += 1
        return steps_fn(state, data, steps)

    start = time.perf_counter()
    seeds = jax.ShapeDtypeStruct((num_seeds,), jnp.int32, sharding=by_seed)
    rates = jax.ShapeDtypeStruct((num_seeds,), jnp.float32, sharding=by_seed)
    data_shape = _sharded_like(trainer.data_shape, replicated)
    steps = Steps(
        jax.ShapeDtypeStruct((plan.steps_per_segment,), jnp.int32, sharding=replicated),
        jax.ShapeDtypeStruct((plan.steps_per_segment,), jnp.bool_, sharding=replicated))
    init_fn = jax.vmap(trainer.init)
    # ibjax's own networks draw their initial weights in two programs (ibjax.initial_weights).
    split = model is None
    key = None
    # Stored programs: for ibjax's own networks on a CPU in one process (a user's module has
    # no digest; GPU and multi-process runs are traced every time, untested with the store),
    # without host callbacks (matrix-renyi's eigenvalues, a != 2), which jax.export cannot save.
    if (model is None and devices[0].platform == "cpu" and jax.process_count() == 1
            and program_cache.enabled() and not config.host_callbacks):
        key = program_cache.program_key(
            config, spec, num_seeds, [(d.platform, d.device_kind, d.id) for d in devices],
            target_segments, groups, plan, trainer.layer_products,
            trainer.discrete_counting, _tracing_flags())
    bits_options = _bits_options(devices[0].platform)
    # init compiles in a thread beside the segment: XLA releases the GIL.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        if key is None:
            lowered_init, weights = _lower_init(init_fn, seeds, rates, by_seed, split)
            init = pool.submit(_compile_init, lowered_init, weights, bits_options)
            state_shape = _sharded_like(lowered_init.out_info, by_seed)
            compiled = jax.jit(segment, out_shardings=by_seed).lower(state_shape, data_shape,
                                                                    steps).compile()
        else:
            stored = program_cache.load(key)
            if stored is None:  # traced and exported; init compiles once both are
                stored = _export_init(init_fn, seeds, rates, by_seed, split)
                stored = _export_segment(stored, segment, data_shape, steps, by_seed)
                program_cache.save(key, stored)
            lowered_init, weights = _lower_stored_init(stored, seeds, rates, by_seed)
            init = pool.submit(_compile_init, lowered_init, weights, bits_options,
                               stored.out_trees)
            compiled = _compile_stored_segment(stored, data_shape, steps, by_seed)
        init = init.result()
    return Program(trainer, plan, init, compiled, time.perf_counter() - start, groups)


def _sharded_like(shapes, sharding):
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                                          sharding=sharding), shapes)


def _tracing_flags() -> tuple:
    """JAX settings that change what a trace produces (part of a stored program's key)."""
    return tuple((name, getattr(jax.config, name, None)) for name in (
        "jax_enable_x64", "jax_default_matmul_precision", "jax_threefry_partitionable",
        "jax_default_prng_impl", "jax_numpy_dtype_promotion"))


def _checks() -> list:
    # ibjax's native routines are custom calls that jax.export does not know; every process
    # that runs a stored program registers them first (ibjax.native, via make_trainer).
    return [jax.export.DisabledSafetyCheck.custom_call(target)
            for target in native.FFI_TARGETS]


def _bits_options(platform: str) -> dict | None:
    """Compiler options for init's first program when it draws bits only: XLA's optimisation
    level 0 on a CPU (integers come out the same at any level; ~3x quicker to compile).

    Exact only while that program computes no floats but copies: besides the bits, init's
    state is integers (keys, the split, masks), zeros and the learning rate passed through. A
    float computed there (a bias initialiser, a schedule) could round differently at level 0;
    ``tests/test_initial_weights.py`` compares every leaf of the state with one program's.
    """
    return {"xla_backend_optimization_level": 0} if platform == "cpu" else None


def _per_seed(tree):
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape[1:], leaf.dtype), tree)


def _lower_init(init_fn, seeds, rates, by_seed, split: bool):
    """``(lowered init, lowered weights or None)``: with ``split``, init drawing its weights'
    bits and the program making the weights of them, if every draw is a ``"kernel"`` leaf
    (:func:`ibjax.initial_weights.bits_match`); otherwise init in one program."""
    if split:
        with threefry_unrolled_on_cpu(), initial_weights.drawing_bits() as draws:
            lowered = jax.jit(init_fn, out_shardings=by_seed).lower(seeds, rates)
        params = lowered.out_info.params
        if initial_weights.bits_match(draws, _per_seed(params)):
            try:
                weights = jax.jit(jax.vmap(initial_weights.weights_from_bits),
                                  out_shardings=by_seed).lower(_sharded_like(params, by_seed))
                return lowered, weights
            except initial_weights.ReplayError:
                pass
    with threefry_unrolled_on_cpu():  # a new function: JAX keeps the trace of the bits
        return jax.jit(lambda s, r: init_fn(s, r), out_shardings=by_seed).lower(seeds, rates), None


def _compile_init(lowered, weights, bits_options, out_trees: dict | None = None) -> Callable:
    """Compiles :func:`_lower_init`'s or :func:`_lower_stored_init`'s programs (the latter
    with the pytrees of their flat results, ``out_trees``)."""
    init = lowered.compile(compiler_options=None if weights is None else bits_options)
    if out_trees is not None:
        init = _TreeCall(init, out_trees["init"])
    if weights is None:
        return init
    weights = weights.compile()
    if out_trees is not None:
        weights = _TreeCall(weights, out_trees["params"])
    return _TwoStageInit(init, weights)


class _TwoStageInit:
    """init as two compiled programs: the state with its kernels' bits, then the weights."""

    def __init__(self, bits, weights):
        self.bits, self.weights = bits, weights

    def __call__(self, seeds, rates):
        state = self.bits(seeds, rates)
        return state._replace(params=self.weights(state.params))


def _export_init(init_fn, seeds, rates, by_seed, split: bool) -> program_cache.Stored:
    """Traces ``init`` into :mod:`jax.export` modules of flat results (as
    :func:`_lower_init`: ``"init"``, and ``"weights"`` when it draws bits)."""
    out_trees = {}

    def export(bits: bool):
        def init_flat(seed_index, learning_rate):  # a new function: JAX keeps traces per function
            flat, out_trees["init"] = jax.tree.flatten(init_fn(seed_index, learning_rate))
            return flat

        with threefry_unrolled_on_cpu(), (initial_weights.drawing_bits() if bits
                                          else contextlib.nullcontext([])) as draws:
            exported = jax.export.export(jax.jit(init_flat, out_shardings=by_seed),
                                         disabled_checks=_checks())(seeds, rates)
        return exported, draws

    exported, draws = export(split)
    if split:
        state = out_trees["init"].unflatten(exported.out_avals)
        if initial_weights.bits_match(draws, _per_seed(state.params)):
            params_tree = jax.tree.structure(state.params)

            def weights_flat(*leaves):
                return jax.tree.leaves(jax.vmap(initial_weights.weights_from_bits)(
                    params_tree.unflatten(leaves)))

            try:
                weights = jax.export.export(jax.jit(weights_flat, out_shardings=by_seed))(
                    *[jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=by_seed)
                      for a in jax.tree.leaves(state.params)])
                return program_cache.Stored({"init": exported, "weights": weights},
                                            {**out_trees, "params": params_tree})
            except initial_weights.ReplayError:
                pass
        exported, _ = export(False)
    return program_cache.Stored({"init": exported}, out_trees)


def _export_segment(stored: program_cache.Stored, segment_fn, data_shape, steps,
                    by_seed) -> program_cache.Stored:
    """``stored`` with the segment traced into a module of flat arguments and results."""
    state_tree, data_tree = stored.out_trees["init"], jax.tree.structure(data_shape)
    out_trees = dict(stored.out_trees)

    def segment_flat(*leaves):
        state = state_tree.unflatten(leaves[:state_tree.num_leaves])
        data = data_tree.unflatten(leaves[state_tree.num_leaves:-2])
        flat, out_trees["segment"] = jax.tree.flatten(
            segment_fn(state, data, Steps(*leaves[-2:])))
        return flat

    exported = jax.export.export(jax.jit(segment_flat, out_shardings=by_seed),
                                 disabled_checks=_checks())(
        *_state_leaves(stored, by_seed), *jax.tree.leaves(data_shape), *steps)
    return program_cache.Stored({**stored.exported, "segment": exported}, out_trees)


def _state_leaves(stored: program_cache.Stored, by_seed) -> list[jax.ShapeDtypeStruct]:
    return [jax.ShapeDtypeStruct(aval.shape, aval.dtype, sharding=by_seed)
            for aval in stored.exported["init"].out_avals]


def _lower_stored_init(stored: program_cache.Stored, seeds, rates, by_seed):
    """``(lowered init, lowered weights or None)`` of stored programs."""
    lowered = jax.jit(stored.exported["init"].call, out_shardings=by_seed).lower(seeds, rates)
    weights = stored.exported.get("weights")
    if weights is not None:
        weights = jax.jit(weights.call, out_shardings=by_seed).lower(
            *[jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=by_seed)
              for a in weights.in_avals])
    return lowered, weights


def _compile_stored_segment(stored: program_cache.Stored, data_shape, steps,
                            by_seed) -> _TreeCall:
    compiled = jax.jit(stored.exported["segment"].call, out_shardings=by_seed).lower(
        *_state_leaves(stored, by_seed), *jax.tree.leaves(data_shape), *steps).compile()
    return _TreeCall(compiled, stored.out_trees["segment"])


class _TreeCall:
    """A compiled program of flat arguments, called with pytrees and returning a pytree."""

    def __init__(self, compiled, out_tree):
        self.compiled, self.out_tree = compiled, out_tree

    def __call__(self, *args):
        return self.out_tree.unflatten(self.compiled(*jax.tree.leaves(args)))

    def memory_analysis(self):
        return self.compiled.memory_analysis()
