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
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from ibjax.atomic import atomic_path
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
      data_digest: sha256 of the data the run trains on (:func:`ibjax.data.digest`), or None
        (checkpoints written before it was recorded).
    """

    config: Config
    seeds: np.ndarray
    segments_done: int
    state_leaves: list[np.ndarray]
    measurements: dict[str, np.ndarray]
    elapsed_s: float
    data_digest: str | None = None


def _is_key(leaf: Any) -> bool:
    return hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def save(path: str | os.PathLike, config: Config, seeds: np.ndarray, segments_done: int,
         states: list[Any], measurements: dict[str, np.ndarray], elapsed_s: float,
         num_networks: int, data_digest: str | None = None) -> Path:
    """Writes a checkpoint atomically; returns its path.

    Args:
      states: the run's states, one per chunk of networks; the first ``num_networks`` (the
        real ones, without device padding) are saved, joined along the network axis.
      data_digest: sha256 of the run's data, checked when resuming.
    """
    arrays = {}
    per_chunk = [jax.tree.leaves(state) for state in states]
    for i, leaves in enumerate(zip(*per_chunk, strict=True)):
        raw = [jax.random.key_data(leaf) if _is_key(leaf) else leaf for leaf in leaves]
        joined = np.concatenate([np.asarray(jax.device_get(r)) for r in raw])
        arrays[f"state_{i}"] = joined[:num_networks]
    for name, value in measurements.items():
        arrays[f"measure_{name}"] = value
    meta = {"format": FORMAT_VERSION, "config": config.to_json(), "segments_done": segments_done,
            "elapsed_s": elapsed_s, "num_state_leaves": len(per_chunk[0]),
            "data_digest": data_digest}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    arrays["seeds"] = np.asarray(seeds)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    return Path(path)


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
                      leaves, measurements, float(meta["elapsed_s"]), meta.get("data_digest"))


def restore_state(templates: list[Any], leaves: list[np.ndarray]) -> list[Any]:
    """States shaped like ``templates`` (one per chunk), their first networks from ``leaves``.

    Networks beyond the saved ones (device padding, whose results are dropped) keep the
    template's values, so a run can resume with another device count or chunk size.

    Raises:
      CheckpointError: the saved state does not fit these templates.
    """
    treedef = jax.tree.structure(templates[0])
    chunk_leaves = [jax.tree.leaves(t) for t in templates]
    if len(chunk_leaves[0]) != len(leaves):
        raise CheckpointError("checkpoint state does not match this configuration")
    bounds = np.cumsum([t[0].shape[0] for t in chunk_leaves])[:-1]
    restored: list[list[Any]] = [[] for _ in templates]
    for position, saved in enumerate(leaves):
        likes = [t[position] for t in chunk_leaves]
        is_key = _is_key(likes[0])
        joined = np.concatenate([np.asarray(jax.device_get(
            jax.random.key_data(like) if is_key else like)) for like in likes])
        if (saved.shape[0] > joined.shape[0] or saved.shape[1:] != joined.shape[1:]
                or saved.dtype != joined.dtype):
            raise CheckpointError("checkpoint state does not match this configuration")
        joined[: saved.shape[0]] = saved
        for k, part in enumerate(np.split(joined, bounds)):
            if is_key:
                part = jax.random.wrap_key_data(part, impl=jax.random.key_impl(likes[0]))
            restored[k].append(part)
    return [jax.tree.unflatten(treedef, leaves_k) for leaves_k in restored]
