"""Saving and restoring a run between compiled segments, atomically.

A checkpoint is one ``.npz`` file: the carried :class:`~ibjax.train.TrainState` of every seed
(typed keys stored as their raw key data), the measurements collected so far, how many
segments are done, the seed indices and the configuration as JSON. It is written to a
temporary file in the same folder and renamed over the old one, so a run killed at any moment
(even with SIGKILL) leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from ibjax.config import Config

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, or belongs to another run."""


class Checkpoint(NamedTuple):
    """What a resumed run needs.

    Attributes:
      config: the run's configuration.
      seeds: ``[num_seeds]`` seed indices (without device padding).
      segments_done: compiled segments completed.
      state_leaves: the padded state's leaves, in ``jax.tree.leaves`` order, as numpy arrays.
      measurements: name -> ``[num_seeds, snapshots_so_far, ...]`` arrays collected so far.
      elapsed_s: run time spent before the checkpoint.
    """

    config: Config
    seeds: np.ndarray
    segments_done: int
    state_leaves: list[np.ndarray]
    measurements: dict[str, np.ndarray]
    elapsed_s: float


def _is_key(leaf: Any) -> bool:
    return hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def save(path: str | os.PathLike, config: Config, seeds: np.ndarray, segments_done: int,
         state: Any, measurements: dict[str, np.ndarray], elapsed_s: float) -> Path:
    """Writes a checkpoint atomically; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, leaf in enumerate(jax.tree.leaves(state)):
        if _is_key(leaf):
            leaf = jax.random.key_data(leaf)
        arrays[f"state_{i}"] = np.asarray(jax.device_get(leaf))
    for name, value in measurements.items():
        arrays[f"measure_{name}"] = value
    meta = {"format": FORMAT_VERSION, "config": config.to_json(), "segments_done": segments_done,
            "elapsed_s": elapsed_s, "num_state_leaves": len(jax.tree.leaves(state))}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    arrays["seeds"] = np.asarray(seeds)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike) -> Checkpoint:
    """Reads a checkpoint written by :func:`save`.

    Raises:
      CheckpointError: (a ValueError) the file is missing or not a readable checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: nothing to resume")
    try:
        # Open the file ourselves: np.load leaks its handle when the zip is damaged.
        with open(path, "rb") as handle, np.load(handle) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            if meta.get("format") != FORMAT_VERSION:
                raise CheckpointError(f"{path}: unknown checkpoint format {meta.get('format')}")
            leaves = [data[f"state_{i}"] for i in range(meta["num_state_leaves"])]
            measurements = {key[len("measure_"):]: data[key] for key in data.files
                            if key.startswith("measure_")}
            seeds = data["seeds"]
    except CheckpointError:
        raise
    except Exception as err:  # zipfile/pickle/json raise many types on damaged files
        raise CheckpointError(f"{path} is not a readable ibjax checkpoint ({err})") from None
    return Checkpoint(Config.from_json(meta["config"]), seeds, int(meta["segments_done"]),
                      leaves, measurements, float(meta["elapsed_s"]))


def restore_state(template: Any, leaves: list[np.ndarray]) -> Any:
    """Rebuilds a state pytree shaped like ``template`` from saved leaves (keys re-wrapped)."""
    template_leaves, treedef = jax.tree.flatten(template)
    if len(template_leaves) != len(leaves):
        raise CheckpointError("checkpoint state does not match this configuration")
    restored = []
    for like, saved in zip(template_leaves, leaves, strict=True):
        if _is_key(like):
            saved = jax.random.wrap_key_data(saved, impl=jax.random.key_impl(like))
        elif saved.shape != like.shape or saved.dtype != like.dtype:
            raise CheckpointError("checkpoint state does not match this configuration")
        restored.append(saved)
    return jax.tree.unflatten(treedef, restored)
