"""Running a configuration: all seeds in one compiled program, segment by segment.

``run(config)`` validates, compiles one segment program once (:mod:`ibjax.program`, cached per
configuration and seed count: the trainer's steps vmapped over the networks, trained in groups
on a CPU, see :mod:`ibjax.segment`), then calls it for each segment of the plan, keeping the
state on the device; only each segment's snapshot measurements come back to the host.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
import xarray as xr

from ibjax import checkpoint, results
from ibjax.config import Config, ConfigError
from ibjax.data import Dataset, digest, load_dataset
from ibjax.hardware import hardware_info
from ibjax.interrupts import raise_if_interrupted
from ibjax.memory import (
    budget_fraction,
    check_host_memory,
    check_network_fits,
    device_budget_bytes,
    network_too_large,
    networks_per_chunk,
    program_bytes,
)
from ibjax.mi._estimators import check_knn_classes
from ibjax.program import compiled_program, seed_sharding
from ibjax.train import (
    Measurement,
    Steps,
    data_spec,
    mi_sample_rows,
)


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


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run`; ``checkpoint`` is where the finished work was saved (or None)."""

    def __init__(self, checkpoint: Path | None):
        super().__init__(str(checkpoint))
        self.checkpoint = checkpoint


MAX_EIGENVALUE_ROWS = 2048
"""Most MI rows for ``matrix-renyi`` of an order other than 2: it takes the eigenvalues of N x N
matrices for every layer and network at every snapshot (O(N^2) memory, O(N^3) time)."""


def _check_estimators_fit_the_rows(config: Config, dataset: Dataset) -> None:
    """Refuses, before compiling, estimator settings that the MI rows cannot serve: ``knn_k``
    not below a class's size; a null baseline with one class; ``matrix-renyi`` by eigenvalues
    on too many rows."""
    num_test = 0 if dataset.x_test is None else len(dataset.x_test)
    rows = mi_sample_rows(config.mi_samples, len(dataset.x), num_test)
    labels = dataset.y if dataset.y_test is None else np.concatenate([dataset.y,
                                                                     dataset.y_test])
    labels = labels if rows is None else labels[rows]
    if "knn" in config.estimators:
        check_knn_classes(labels, config.knn_k, error=ConfigError)
    if config.null and np.unique(labels).size < 2:
        raise ConfigError(f"null=True permutes the labels of the MI rows, which needs at least "
                          f"two classes among them; mi_samples={config.mi_samples!r} gives "
                          f"only class {labels[0]}")
    num_rows = len(dataset.x) + num_test if rows is None else rows.size
    if ("matrix-renyi" in config.estimators and config.renyi_alpha != 2.0
            and num_rows > MAX_EIGENVALUE_ROWS):
        raise ConfigError(
            f"renyi_alpha={config.renyi_alpha:g} takes eigenvalues of {num_rows} x {num_rows} "
            f"matrices per layer and network at every snapshot; measure on at most "
            f"{MAX_EIGENVALUE_ROWS} rows (mi_samples, --mi-samples), or use renyi_alpha=2")


def run(config: Config, progress: Callable[[Progress], None] | None = None,
        seeds: Sequence[int] | None = None,
        devices: Sequence[jax.Device] | None = None,
        checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every_s: float = 30.0,
        resume: bool = False,
        max_networks_per_chunk: int | None = None,
        target_segments: int = 50,
        data: Dataset | None = None,
        training_group: int | None = None,
        results_path: str | os.PathLike | None = None,
        model=None) -> xr.Dataset:
    """Trains one network per seed, all at once, and measures them at every snapshot.

    The seed axis is split over ``devices`` (all local devices by default; on a CPU host the
    command line exposes every core as a device). A seed count that does not divide the device
    count is padded with extra networks whose results are dropped.

    Args:
      config: the run's configuration (validated before anything is compiled).
      progress: optional callback, called after each compiled segment with a :class:`Progress`.
      seeds: seed indices to run (default ``range(config.num_seeds)``); seed ``i`` is the same
        network in any subset, so a sweep can be split and merged.
      devices: devices to shard the seeds over (default ``jax.local_devices()``).
      checkpoint_path: if given, the run state is saved there atomically between segments (at
        most every ``checkpoint_every_s`` seconds, and on Ctrl-C); see :mod:`ibjax.checkpoint`.
        It is removed only once ``results_path`` is written; without ``results_path`` it is
        kept when the run ends (delete it once your results are safe).
      checkpoint_every_s: minimum seconds between checkpoints (0: after every segment).
      resume: continue from ``checkpoint_path`` (its config, seeds and data must match: the
        data's contents are compared by sha256). The result is identical to an uninterrupted
        run.
      max_networks_per_chunk: cap on networks run at once. By default ibjax asks XLA how much
        memory the program needs and, if all networks do not fit in a fraction of the device
        memory (:mod:`ibjax.memory`), runs each segment chunk by chunk (all states stay
        resident; they are small).
      target_segments: about how many compiled segments (host round trips: progress,
        checkpoints) the run is cut into; 1 runs it in one call. The cost of segmenting is
        measured by ``benchmarks/segmenting.py``.
      data: your own data (a :class:`~ibjax.data.Dataset` from :func:`ibjax.make_dataset` or
        :func:`ibjax.load_file`) instead of ``config.dataset``; the results' configuration then
        names it ``arrays:NAME`` (and ``attrs["data_sha256"]`` fingerprints its contents).
        The data enter the compiled program as an argument: data sets of the same shapes share
        one program.
      training_group: most networks a device trains at once; more are trained group after
        group, then all are measured together, in the same compiled step (see
        :mod:`ibjax.segment`). Default: 64 on a CPU (faster there for large seed counts), no
        limit on GPUs and TPUs. Only speed changes (results agree up to float rounding).
      results_path: if given, the results are saved there atomically (netCDF, see
        :func:`ibjax.save`) before the checkpoint is removed, so a failure or a kill at any
        moment leaves either the results or a checkpoint to resume from.
      model: your own flax module to train instead of ``config.model``: its ``__call__(x)``
        takes a batch ``[batch, *sample_shape]`` and returns ``(logits [batch, classes],
        layers)``, the layers to measure, each ``[batch, ...]`` (flattened per sample). Which
        weights belong to each layer, for the gradient statistics: see
        :func:`ibjax.network.flax_network`. The results' configuration names it
        ``own:CLASSNAME``.

    Returns:
      The results Dataset (see :mod:`ibjax.results`); ``attrs`` hold ``compile_s``, ``run_s``,
      ``seed_epochs_per_s`` (network-epochs per second: seeds x learning rates) and the
      hardware, ``networks_per_chunk`` and ``training_groups`` (per device and chunk),
      ``layer_products`` and ``discrete_counting`` (``"native"`` or ``"xla"``, see
      :class:`ibjax.train.Trainer`); ``diverged_epoch`` flags networks whose weights became
      NaN/inf.

    Raises:
      ConfigError: bad configuration or seeds, or sizes that cannot fit in memory, before
        anything is compiled.
      CheckpointError: ``resume`` without a matching checkpoint, or on changed data.
      OSError: ``results_path`` could not be written (the checkpoint is kept).
      RunInterrupted: Ctrl-C; the finished segments are in the checkpoint, if one was asked for.
    """
    config, seeds, dataset = prepare(config, seeds, data, model)
    if progress is not None and not callable(progress):
        raise ConfigError("progress must be None or a function called with a Progress, got "
                          f"{progress!r}")
    if isinstance(target_segments, bool) or not isinstance(target_segments, int) or (
            target_segments < 1):
        raise ConfigError(f"target_segments must be an integer >= 1, got {target_segments!r}")
    if training_group is not None:
        if isinstance(training_group, bool) or not isinstance(
                training_group, (int, np.integer)) or training_group < 1:
            raise ConfigError(f"training_group must be None or an integer >= 1, got "
                              f"{training_group!r}")
        training_group = int(training_group)  # a plain int: part of the program cache key
    data_digest = digest(dataset)
    saved = None
    if resume:
        if checkpoint_path is None:
            raise ConfigError("resume=True needs checkpoint_path")
        saved = checkpoint.load(checkpoint_path)
        if saved.data_digest is not None and saved.data_digest != data_digest:
            raise checkpoint.CheckpointError(
                f"{checkpoint_path}: the data changed since the run started "
                f"({config.dataset.removeprefix('file:')}: sha256 {saved.data_digest[:12]}... "
                f"then, {data_digest[:12]}... now); restore the data or start a new run")
        if saved.config.replace(num_seeds=1) != config.replace(num_seeds=1) or not np.array_equal(
                saved.seeds, seeds):
            raise checkpoint.CheckpointError(
                f"{checkpoint_path} belongs to another run (config or seeds differ)")
    devices = tuple(jax.local_devices() if devices is None else devices)
    if config.host_callbacks and devices[0].platform == "cpu":
        # Host callbacks made by several of XLA's CPU devices at once never finished (each
        # callback's arguments are moved to the first device, busy with its own part).
        devices = devices[:1]
    check_network_fits(config, dataset, devices)
    num_devices = len(devices)
    # One network per (seed, learning rate): network n has seed n // H and rate n % H.
    rate_values = np.asarray(config.learning_rates, np.float32)
    num_real = seeds.size * rate_values.size
    all_padded = -(-num_real // num_devices) * num_devices
    # The program's cache key: the configuration without what does not shape the program
    # (the seed count, the data's name: data of the same shapes share one program).
    static = config.replace(num_seeds=1, dataset="arrays:program")
    spec = data_spec(dataset)
    misses_before = compiled_program.cache_info().misses
    program = compiled_program(static, spec, all_padded, devices, target_segments,
                                training_group, model)
    budget = device_budget_bytes(devices)
    chunk = networks_per_chunk(all_padded, program_bytes(program.segment), budget, num_devices)
    if max_networks_per_chunk is not None:
        chunk = min(chunk, max(num_devices,
                               max_networks_per_chunk // num_devices * num_devices))
    while chunk < all_padded:  # does not fit at once: a program for one chunk of networks
        program = compiled_program(static, spec, chunk, devices, target_segments,
                                    training_group, model)
        needed = program_bytes(program.segment)
        if budget is None or needed is None or needed <= budget:
            break
        if chunk == num_devices:  # not even one network per device fits
            raise ConfigError(network_too_large(needed, budget, config, dataset))
        chunk = max(num_devices, chunk // 2 // num_devices * num_devices)  # not quite linear
    # Misses, not the cache size: a full cache evicts one program for each one it adds.
    newly_compiled = compiled_program.cache_info().misses > misses_before
    num_chunks = -(-num_real // chunk)
    padding = num_chunks * chunk - num_real
    network_seeds = np.concatenate([np.repeat(seeds, rate_values.size),
                                    seeds.max() + 1 + np.arange(padding)]).astype(np.int32)
    rates = np.concatenate([np.tile(rate_values, seeds.size),
                            np.full(padding, rate_values[0])]).astype(np.float32)
    by_seed, _ = seed_sharding(devices)
    states = [program.init(jax.device_put(network_seeds[k * chunk:(k + 1) * chunk], by_seed),
                           jax.device_put(rates[k * chunk:(k + 1) * chunk], by_seed))
              for k in range(num_chunks)]
    _, replicated = seed_sharding(devices)
    device_data = jax.device_put(program.trainer.device_data(dataset), replicated)
    loop = _SegmentLoop(program, config, seeds, num_real, devices, progress, checkpoint_path,
                        checkpoint_every_s, data_digest, device_data)
    states, stacked, run_s = loop.run(states, saved)
    try:  # a Ctrl-C from here on finds the complete run in the checkpoint
        diverged_epoch = np.concatenate(
            [np.asarray(jax.device_get(s.diverged_at)) for s in states])[:num_real]
        info = {
            "compile_s": program.compile_s if newly_compiled else 0.0,
            "run_s": run_s,
            "seed_epochs_per_s": num_real * config.num_epochs / run_s,
            "num_devices": num_devices,
            "networks_per_chunk": chunk,
            "training_groups": program.training_groups,
            "layer_products": ",".join(program.trainer.layer_products),
            "discrete_counting": program.trainer.discrete_counting,
            "data_sha256": data_digest,
            "mi_rows": program.trainer.num_mi_rows,
            "num_classes": dataset.num_classes,
        **({"model": repr(model)} if model is not None else {}),
            **hardware_info(devices),
        }
        dataset_out = results.to_dataset(config.replace(num_seeds=num_real), seeds,
                                         program.plan.snapshot_epochs, program.trainer.layer_widths,
                                         stacked, info, diverged_epoch=diverged_epoch,
                                         layer_names=program.trainer.layer_names)
        if results_path is not None:
            results.save(dataset_out, results_path)
            if checkpoint_path is not None:  # only now: the results file holds it all
                Path(checkpoint_path).unlink(missing_ok=True)
        return dataset_out
    except KeyboardInterrupt:
        kept = checkpoint_path is not None and Path(checkpoint_path).exists()
        raise RunInterrupted(Path(checkpoint_path) if kept else None) from None


def prepare(config: Config, seeds: Sequence[int] | None = None, data: Dataset | None = None,
            model=None) -> tuple[Config, np.ndarray, Dataset]:
    """Checks a run's inputs before anything is compiled.

    Returns:
      ``(config, seeds, dataset)``: the validated configuration with its data-dependent
      defaults resolved (``dataset`` naming ``data``, and ``model`` naming ``model``, if
      given), the ``[num_seeds]`` int32 seed indices (``range(config.num_seeds)`` by default),
      and the data.

    Raises:
      ConfigError: a bad configuration, data, model or seed list, sizes that cannot fit in
        memory, or a bad ``$IBJAX_MEMORY_FRACTION``.
    """
    if data is not None:
        if not isinstance(data, Dataset):
            hint = (f"; for a built-in data set use Config(dataset={data!r})"
                    if isinstance(data, str) else "")
            raise ConfigError(f"data must be an ibjax Dataset (see ibjax.make_dataset), got "
                              f"{type(data).__name__}{hint}")
        config = config.replace(dataset=f"arrays:{data.name}")
    if model is not None:
        import flax.linen as nn

        if not isinstance(model, nn.Module):
            raise ConfigError(f"model must be a flax.linen Module returning (logits, layers), "
                              f"got {type(model).__name__}")
        config = config.replace(model=f"own:{type(model).__name__}", hidden=())
    config.validate()
    dataset = data if data is not None else load_dataset(config.dataset)
    config = config.validate_for(dataset).resolved(dataset.num_test)
    _check_estimators_fit_the_rows(config, dataset)  # before the CLI makes the run's folder
    if seeds is None:
        num_seeds = config.num_seeds
    else:
        try:
            num_seeds = len(seeds)
        except TypeError:
            raise ConfigError(f"seeds must be a sequence of integers, got {seeds!r}") from None
    # From the sizes alone, before the seed list (or anything else) is allocated.
    check_host_memory(config, dataset, num_seeds * len(config.learning_rates))
    seeds = np.arange(config.num_seeds) if seeds is None else np.asarray(seeds)
    if (seeds.ndim != 1 or seeds.size == 0 or not np.issubdtype(seeds.dtype, np.integer)
            or (seeds < 0).any() or len(set(seeds.tolist())) != seeds.size):
        raise ConfigError(f"seeds must be distinct non-negative integers, got {seeds!r}")
    budget_fraction()  # a bad $IBJAX_MEMORY_FRACTION fails here, not after compiling
    if model is not None:
        from ibjax.network import flax_network

        flax_network(model, dataset.input_shape, dataset.num_classes)  # checks the model
    return config, seeds.astype(np.int32), dataset


class _SegmentLoop:
    """Runs the plan's segments, fetching measurements and writing checkpoints in between."""

    def __init__(self, program, config, seeds, num_networks, devices, progress,
                 checkpoint_path, checkpoint_every_s, data_digest, data):
        self.program, self.plan, self.config, self.seeds = program, program.plan, config, seeds
        self.num_networks = num_networks
        self.by_seed, self.replicated = seed_sharding(devices)
        self.progress, self.checkpoint_path = progress, checkpoint_path
        self.checkpoint_every_s = checkpoint_every_s
        self.data_digest = data_digest
        self.data = data
        self.collected: list[dict[str, np.ndarray]] = []
        self.collected_through = 0  # segments whose measurements are in self.collected
        self.elapsed_before = 0.0

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.start

    def collect(self, measured: list[Measurement], segment: int) -> None:
        """Fetches one segment's measurements (one Measurement per chunk) to the host."""
        if segment < self.collected_through:  # already in (an interrupt can re-ask for it)
            return
        keep = self.plan.measure[segment]
        chunks = [m._asdict() for m in jax.device_get(measured)]
        self.collected.append({
            name: np.concatenate([c[name] for c in chunks])[: self.num_networks, keep]
            for name in chunks[0] if chunks[0][name] is not None})  # ity_null without null
        self.collected_through = segment + 1
        if self.progress is not None:
            self.progress(Progress(self.plan.epochs_after_segment(segment),
                                   self.config.num_epochs, self.num_networks, self.elapsed()))

    def stacked(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate([part[name] for part in self.collected], axis=1)
                for name in self.collected[0]} if self.collected else {}

    def save(self, states, segments_done: int) -> None:
        checkpoint.save(self.checkpoint_path, self.config, self.seeds, segments_done, states,
                        self.stacked(), self.elapsed(), self.num_networks, self.data_digest)
        self.last_save = time.perf_counter()

    def run(self, states: list, saved: checkpoint.Checkpoint | None):
        """Runs every segment on each chunk's state; returns (states, measurements, seconds)."""
        first = 0
        if saved is not None:
            restored = checkpoint.restore_state(states, saved.state_leaves)
            states = [jax.device_put(s, self.by_seed) for s in restored]
            if saved.measurements:
                self.collected.append(saved.measurements)
            first = self.collected_through = saved.segments_done
            self.elapsed_before = saved.elapsed_s
        self.start = self.last_save = time.perf_counter()
        done, pending = first, None
        try:
            for segment in range(first, self.plan.num_segments):
                steps = jax.device_put(
                    Steps(self.plan.num_epochs[segment], self.plan.measure[segment]),
                    self.replicated)
                raise_if_interrupted()  # a Ctrl-C whose exception Python discarded
                outputs = [self.program.segment(state, self.data, steps) for state in states]
                states, done = [out[0] for out in outputs], segment + 1
                measured = [out[1] for out in outputs]
                if pending is not None:  # fetch the previous segment while this one runs
                    self.collect(*pending)
                pending = (measured, segment)
                due = time.perf_counter() - self.last_save >= self.checkpoint_every_s
                if self.checkpoint_path is not None and due and done < self.plan.num_segments:
                    self.collect(*pending)
                    pending = None
                    self.save(states, done)
            if pending is not None:
                self.collect(*pending)
            if self.checkpoint_path is not None and first < self.plan.num_segments:
                # The complete run, so that nothing is lost between here and the results file.
                self.save(states, self.plan.num_segments)
        except KeyboardInterrupt:
            path = None
            if self.checkpoint_path is not None:
                if pending is not None and pending[1] == done - 1:
                    self.collect(*pending)
                # State and measurements agree, and a segment finished since the start (or
                # since the checkpoint resumed from, which stays): save them.
                if self.collected_through == done > first:
                    self.save(states, done)
                path = Path(self.checkpoint_path) if Path(self.checkpoint_path).exists() else None
            raise RunInterrupted(path) from None
        jax.block_until_ready(states)
        return states, self.stacked(), self.elapsed()
