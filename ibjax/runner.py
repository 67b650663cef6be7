"""Running a configuration: all seeds in one compiled program, segment by segment.

``run(config)`` validates, compiles ``jit(vmap(trainer.run_steps))`` once (cached per
configuration and seed count), then calls it for each segment of the plan, keeping the state on
the device; only each segment's snapshot measurements come back to the host.
"""

from __future__ import annotations

import functools
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ibjax import results
from ibjax.config import Config, snapshot_epochs
from ibjax.data import Dataset, load_dataset
from ibjax.plan import Plan, make_plan
from ibjax.train import Measurement, Steps, Trainer, make_trainer

# Counts traces of the segment program; a test checks that a second run does not retrace.
TRACE_COUNT = {"segment": 0}


class Progress(NamedTuple):
    """Passed to a progress callback after each segment."""

    epochs_done: int
    num_epochs: int
    num_seeds: int
    elapsed_s: float

    @property
    def seed_epochs_per_s(self) -> float:
        return self.epochs_done * self.num_seeds / max(self.elapsed_s, 1e-9)

    @property
    def eta_s(self) -> float:
        if self.epochs_done == 0:
            return float("nan")
        return self.elapsed_s * (self.num_epochs - self.epochs_done) / self.epochs_done


class Program(NamedTuple):
    """A compiled run for one configuration and seed count."""

    trainer: Trainer
    plan: Plan
    init: Callable
    segment: Callable
    compile_s: float


@functools.lru_cache(maxsize=16)
def _compiled_program(config: Config, num_seeds: int) -> Program:
    dataset = load_dataset(config.dataset)
    trainer = make_trainer(config, dataset)
    plan = make_plan(snapshot_epochs(config.snapshots, config.num_epochs), config.num_epochs)

    def segment(state, steps):
        TRACE_COUNT["segment"] += 1
        return jax.vmap(trainer.run_steps, in_axes=(0, None))(state, steps)

    start = time.perf_counter()
    seeds = jax.ShapeDtypeStruct((num_seeds,), jnp.int32)
    rates = jax.ShapeDtypeStruct((num_seeds,), jnp.float32)
    init = jax.jit(jax.vmap(trainer.init)).lower(seeds, rates).compile()
    state_shape = jax.eval_shape(jax.vmap(trainer.init), seeds, rates)
    steps = Steps(jax.ShapeDtypeStruct((plan.steps_per_segment,), jnp.int32),
                  jax.ShapeDtypeStruct((plan.steps_per_segment,), jnp.bool_))
    compiled = jax.jit(segment).lower(state_shape, steps).compile()
    return Program(trainer, plan, init, compiled, time.perf_counter() - start)


def run(config: Config, progress: Callable[[Progress], None] | None = None) -> xr.Dataset:
    """Trains ``config.num_seeds`` networks at once and measures them at every snapshot.

    Args:
      config: the run's configuration (validated before anything is compiled).
      progress: optional callback, called after each compiled segment with a :class:`Progress`.

    Returns:
      The results Dataset (see :mod:`ibjax.results`); ``attrs`` hold ``compile_s``, ``run_s``,
      ``seed_epochs_per_s`` and the hardware.
    """
    config.validate()
    dataset = load_dataset(config.dataset)
    config.validate(num_samples=dataset.x.shape[0])
    cached = _compiled_program.cache_info().currsize
    program = _compiled_program(config, config.num_seeds)
    newly_compiled = _compiled_program.cache_info().currsize > cached
    plan = program.plan
    seeds = np.arange(config.num_seeds, dtype=np.int32)
    rates = np.full(config.num_seeds, config.learning_rate, np.float32)

    start = time.perf_counter()
    state = program.init(seeds, rates)
    collected: list[Measurement] = []
    epochs_done = 0
    for segment in range(plan.num_segments):
        steps = Steps(plan.num_epochs[segment], plan.measure[segment])
        state, measured = program.segment(state, steps)
        measured = jax.device_get(measured)
        keep = plan.measure[segment]
        collected.append(jax.tree.map(lambda a, keep=keep: a[:, keep], measured))
        epochs_done = plan.epochs_after_segment(segment)
        if progress is not None:
            progress(Progress(epochs_done, config.num_epochs, config.num_seeds,
                              time.perf_counter() - start))
    jax.block_until_ready(state)
    run_s = time.perf_counter() - start

    stacked = jax.tree.map(lambda *parts: np.concatenate(parts, axis=1), *collected)
    info = {
        "compile_s": program.compile_s if newly_compiled else 0.0,
        "run_s": run_s,
        "seed_epochs_per_s": config.num_seeds * config.num_epochs / run_s,
        **hardware_info(),
    }
    return results.to_dataset(config, seeds, plan.snapshot_epochs,
                              program.trainer.layer_widths, stacked._asdict(), info)


def cpu_model() -> str:
    """The host CPU's model name (from /proc/cpuinfo where available) and core count."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def hardware_info() -> dict[str, str | int]:
    """The devices, host and library versions, for results and benchmark output."""
    devices = jax.devices()
    return {
        "device": f"{len(devices)} x {devices[0].device_kind} ({devices[0].platform})",
        "host": cpu_model(),
        "python": sys.version.split()[0],
        "jax_version": jax.__version__,
    }


def dataset_for(config: Config) -> Dataset:
    """The dataset a configuration trains on."""
    return load_dataset(config.dataset)
