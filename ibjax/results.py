"""Results as one self-describing file: an xarray Dataset with named dimensions.

Dimensions: ``seed`` (seed index), ``epoch`` (snapshot epochs), ``estimator`` (the
mutual-information estimator's name, for ``ixt`` and ``ity``), ``layer`` (1 = first hidden
layer, last = softmax output). The configuration is attached as JSON in ``attrs["config"]``.
Files are netCDF3 written through scipy (no HDF5 stack needed), atomically: a temporary file in
the same folder is renamed over the target only once complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ibjax.atomic import atomic_path
from ibjax.config import Config

SCHEMA_VERSION = 2  # 2: ixt and ity gained the estimator dimension


class ResultsFileError(ValueError):
    """A file is not a readable ibjax results file."""

VARIABLES = {
    # name: (dims, units, description)
    "ixt": (("seed", "epoch", "estimator", "layer"), "bits", "I(X;T)"),
    "ity": (("seed", "epoch", "estimator", "layer"), "bits", "I(T;Y)"),
    "ity_null": (("seed", "epoch", "estimator", "layer"), "bits",
                 "I(T;Y) against the labels permuted once per seed (null baseline)"),
    "grad_mean": (("seed", "epoch", "layer"), "1",
                  "norm of the mean weight gradient over the epoch's minibatches"),
    "grad_std": (("seed", "epoch", "layer"), "1",
                 "sqrt of the mean squared deviation of the minibatch weight gradients"),
    "train_loss": (("seed", "epoch"), "nats", "mean cross-entropy on the training rows"),
    "train_accuracy": (("seed", "epoch"), "1", "accuracy on the training rows"),
    "test_loss": (("seed", "epoch"), "nats", "mean cross-entropy on the test rows"),
    "test_accuracy": (("seed", "epoch"), "1", "accuracy on the test rows"),
}


OPTIONAL = ("ity_null",)
"""Variables only some runs record (``ity_null``: with ``Config.null``)."""


def to_dataset(config: Config, seeds: np.ndarray, epochs: np.ndarray,
               layer_widths: tuple[int, ...], arrays: Mapping[str, np.ndarray],
               info: Mapping[str, Any], diverged_epoch: np.ndarray | None = None,
               layer_names: tuple[str, ...] | None = None) -> xr.Dataset:
    """Assembles a results Dataset.

    Args:
      config: the run's configuration.
      seeds: ``[num_seeds]`` seed indices.
      epochs: ``[num_snapshots]`` snapshot epochs.
      layer_widths: width of each measured layer.
      arrays: one array per name in :data:`VARIABLES` (``ixt`` and ``ity`` at least; the
        others may be left out), shaped by its dims, with one row per network:
        ``num_seeds * len(config.learning_rates)`` rows, learning rate fastest. A
        learning-rate list becomes a ``learning_rate`` dimension after ``seed``.
      info: extra scalar/string attributes (timings, versions, device).
      diverged_epoch: ``[num_seeds]`` epoch after which a seed's weights became NaN/inf, or -1
        (default: none diverged).
      layer_names: each layer's name (default ``hidden 1`` ... and ``softmax output`` last).
    """
    data_vars = {}
    for name, (dims, units, description) in VARIABLES.items():
        if name not in arrays:  # e.g. a user's loop that records no gradient statistics
            continue
        data_vars[name] = xr.Variable(dims, np.asarray(arrays[name], np.float32),
                                      {"units": units, "long_name": description})
    if diverged_epoch is None:
        diverged_epoch = np.full(len(seeds) * len(config.learning_rates), -1)
    data_vars["diverged_epoch"] = xr.Variable(
        ("seed",), np.asarray(diverged_epoch, np.int32),
        {"long_name": "epoch after which the weights became NaN/inf (-1: never); "
                      "later measurements of that seed are NaN"})
    num_layers = len(layer_widths)
    names = list(layer_names) if layer_names is not None else (
        [f"hidden {i + 1}" for i in range(num_layers - 1)] + ["softmax output"])
    coords = {
        "seed": ("seed", np.asarray(seeds, np.int32)),
        "epoch": ("epoch", np.asarray(epochs, np.int32),
                  {"long_name": "epochs trained before the snapshot"}),
        "estimator": ("estimator", np.asarray(config.estimators)),
        "layer": ("layer", np.arange(1, num_layers + 1, dtype=np.int32)),
        "layer_width": ("layer", np.asarray(layer_widths, np.int32)),
        "layer_name": ("layer", np.asarray(names)),
    }
    attrs = {"schema_version": SCHEMA_VERSION, "title": "ibjax information-plane run"}
    attrs.update(dict(info))
    attrs["config"] = _config_json(config, attrs)
    if config.sweeps_learning_rate:
        data_vars = {name: _split_learning_rate(var, len(config.learning_rates))
                     for name, var in data_vars.items()}
        coords["learning_rate"] = ("learning_rate",
                                   np.asarray(config.learning_rates, np.float64))
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _split_learning_rate(var: xr.Variable, num_rates: int) -> xr.Variable:
    """``[seed * num_rates, ...]`` (rate fastest) -> dims ``(seed, learning_rate, ...)``."""
    shape = (var.shape[0] // num_rates, num_rates, *var.shape[1:])
    return xr.Variable((var.dims[0], "learning_rate", *var.dims[1:]),
                       var.values.reshape(shape), var.attrs)


def save(dataset: xr.Dataset, path: str | os.PathLike) -> Path:
    """Writes ``dataset`` to ``path`` (netCDF3) atomically; returns the path."""
    with atomic_path(path) as tmp:
        dataset.to_netcdf(tmp, engine="scipy", format="NETCDF3_64BIT")
    return Path(path)


def load(path: str | os.PathLike) -> xr.Dataset:
    """Loads a results file written by :func:`save` into memory.

    ``path``: the file, or the folder ``ibjax run --out`` wrote (its ``results.nc``).

    Raises:
      FileNotFoundError: no such file.
      ResultsFileError: (a ValueError) the file is not an ibjax results file.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "results.nc").is_file():
            raise FileNotFoundError(f"results file not found: {path} is a folder without a "
                                    f"results.nc")
        path = path / "results.nc"
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    try:
        with xr.open_dataset(path, engine="scipy") as handle:
            dataset = handle.load()
    except Exception as err:  # scipy raises many exception types on foreign bytes
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ResultsFileError(f"{path} is not a readable ibjax results file "
                               f"({reason})") from None
    if "config" not in dataset.attrs or "ixt" not in dataset or "ity" not in dataset:
        raise ResultsFileError(f"{path} is a netCDF file but not an ibjax results file (it "
                               f"needs a config attribute and the variables ixt and ity)")
    try:
        config_of(dataset)
    except (ValueError, TypeError) as err:
        raise ResultsFileError(f"{path}: its configuration attribute is not readable "
                               f"({err})") from None
    empty = [dim for dim in ("seed", "epoch", "estimator", "layer")
             if dataset.sizes.get(dim, 1) == 0]
    if empty:
        raise ResultsFileError(f"{path} holds no values: its {', '.join(empty)} "
                               f"dimension is empty")
    version = int(dataset.attrs.get("schema_version", 0))
    if version > SCHEMA_VERSION:
        raise ResultsFileError(
            f"{path} has schema version {version}; this ibjax reads up to {SCHEMA_VERSION} "
            f"(upgrade ibjax)")
    if version < 1:
        raise ResultsFileError(f"{path} has no valid schema_version attribute")
    if version == 1:  # one implicit binning estimator
        dataset = dataset.assign(
            ixt=dataset["ixt"].expand_dims(estimator=["binning"], axis=-2),
            ity=dataset["ity"].expand_dims(estimator=["binning"], axis=-2))
        dataset.attrs["schema_version"] = SCHEMA_VERSION
    return dataset


def merge(parts: list[xr.Dataset]) -> xr.Dataset:
    """Joins results of the same configuration (seed ranges of one sweep) along ``seed``.

    Raises:
      ResultsFileError: the configurations (apart from the seed count) or the snapshot epochs
        differ, or a seed appears twice.
    """
    if not parts:
        raise ResultsFileError("merge needs at least one results file")
    configs = [config_of(part).replace(num_seeds=1) for part in parts]  # seed count may differ
    for i, (part, config) in enumerate(zip(parts[1:], configs[1:], strict=True), start=2):
        if config != configs[0]:
            first, other = configs[0].to_dict(), config.to_dict()
            fields = ", ".join(f"{name} ({first[name]!r} vs {other[name]!r})"
                               for name in first if first[name] != other[name])
            raise ResultsFileError(f"cannot merge different configurations: file {i} differs "
                                   f"from file 1 in {fields}")
        for attr, what in (("data_sha256", "data"), ("model", "models")):
            values = (parts[0].attrs.get(attr), part.attrs.get(attr))
            if None not in values and values[0] != values[1]:
                raise ResultsFileError(f"cannot merge runs of different {what}: file {i} "
                                       f"differs from file 1 in its {attr} attribute")
        if not np.array_equal(part["epoch"].values, parts[0]["epoch"].values):
            raise ResultsFileError("cannot merge results with different snapshot epochs")
    seeds = np.concatenate([part["seed"].values for part in parts])
    if len(set(seeds.tolist())) != seeds.size:
        raise ResultsFileError(f"cannot merge: seeds appear twice ({sorted(seeds.tolist())})")
    merged = xr.concat(parts, dim="seed", data_vars="all", coords="minimal",
                       compat="override", combine_attrs="override").sortby("seed")
    merged.attrs["config"] = _config_json(configs[0].replace(num_seeds=int(seeds.size)),
                                          merged.attrs)
    merged.attrs["merged_from"] = len(parts)
    products = sorted({str(part.attrs["layer_products"]) for part in parts
                       if "layer_products" in part.attrs})
    if len(products) > 1:  # e.g. parts run on a CPU and on a GPU
        merged.attrs["layer_products"] = "mixed: " + "; ".join(products)
    for key in ("compile_s", "run_s", "seed_epochs_per_s"):
        merged.attrs.pop(key, None)
    return merged


_SLACK = 1e-3  # bits of float rounding allowed beyond a bound

# Config fields of ibjax's own training, which a user's loop (model "own:NAME") does not use.
TRAINING_FIELDS = ("hidden", "activation", "optimizer", "learning_rate", "batch_size",
                   "train_fraction", "split", "shuffle", "mi_samples", "layer_product",
                   "training_kernel")


def value_bounds(dataset: xr.Dataset) -> dict[str, tuple[float, float]]:
    """The range each variable can take, ``name -> (lo, hi)``: I(X;T) in ``[0, log2 N]``
    (N the MI rows, from ``attrs["mi_rows"]``, else the configuration; 64 bits when unknown),
    I(T;Y) in ``[-log2 N, log2 C]`` (C classes: KDE bounds of I(T;Y) can dip below 0),
    gradient norms and losses ``>= 0``, accuracies in ``[0, 1]``."""
    num_rows = dataset.attrs.get("mi_rows")
    if num_rows is None:
        config = config_of(dataset)
        if isinstance(config.mi_samples, int):
            num_rows = config.mi_samples
        elif config.dataset == "var_u" and config.mi_samples == "all":
            num_rows = 4096
    max_bits = float(np.log2(num_rows)) if num_rows else 64.0
    classes = dataset.attrs.get("num_classes")
    label_bits = float(np.log2(classes)) if classes else max_bits
    bounds = {"ixt": (0.0, max_bits), "ity": (-max_bits, label_bits),
              "ity_null": (-max_bits, label_bits)}
    for name in ("grad_mean", "grad_std", "train_loss", "test_loss"):
        bounds[name] = (0.0, np.inf)
    for name in ("train_accuracy", "test_accuracy"):
        bounds[name] = (0.0, 1.0)
    return bounds


def check_values(dataset: xr.Dataset) -> tuple[xr.Dataset, list[str]]:
    """Flags values a run cannot produce (a damaged file: a flipped bit, a foreign writer).

    Returns:
      ``(clean, problems)``: the dataset with every impossible value (outside
      :func:`value_bounds`, or infinite) replaced by NaN, and one line per variable that held
      any, saying how many and the worst. NaN itself is not a problem: it marks a diverged
      network or a missing measurement.
    """
    problems, clean = [], dataset.copy()
    for name, (lo, hi) in value_bounds(dataset).items():
        if name not in dataset:
            continue
        values = dataset[name].values
        with np.errstate(invalid="ignore"):
            bad = np.isinf(values) | (values < lo - _SLACK) | (values > hi + _SLACK)
        if bad.any():
            worst = values[bad][np.argmax(np.abs(values[bad]))]
            problems.append(f"{name}: {int(bad.sum())} of {values.size} values outside "
                            f"[{lo:g}, {hi:g}] (e.g. {worst:.6g}); treated as missing")
            clean[name] = dataset[name].where(~bad)
    if "diverged_epoch" in dataset:
        values = dataset["diverged_epoch"].values
        last = int(dataset["epoch"].values.max()) if dataset.sizes["epoch"] else 0
        num_epochs = max(config_of(dataset).num_epochs, last)
        bad = (values != -1) & ((values < 1) | (values > num_epochs))
        if bad.any():
            problems.append(f"diverged_epoch: {int(bad.sum())} of {values.size} values outside "
                            f"-1 or [1, {num_epochs}] (e.g. {values[bad][0]}); treated as "
                            f"never diverged")
            clean["diverged_epoch"] = dataset["diverged_epoch"].where(~bad, -1)
    return clean, problems


def missing_variables(dataset: xr.Dataset) -> list[str]:
    """Variables of :data:`VARIABLES` that ``dataset`` lacks (a file from a user's own loop
    may hold only I(X;T) and I(T;Y))."""
    return [name for name in VARIABLES if name not in dataset and name not in OPTIONAL]


def summary(dataset: xr.Dataset) -> str:
    """A short text: configuration, sizes, timings, divergence, and per layer the mean I(X;T)
    at the first snapshot, its peak (with epoch) and the last snapshot, and the last I(T;Y)."""
    config = config_of(dataset)
    # A user's own loop (the recorder) did its own training; a user's module trained by
    # ibjax.run used the training settings but not the MLP's shape.
    hidden = (TRAINING_FIELDS if dataset.attrs.get("recorded_by") else
              ("hidden", "activation", "layer_product") if config.model.startswith("own:")
              else ())
    lines = ["configuration:"]
    lines += [f"  {name:15s} {value}" for name, value in config.to_dict().items()
              if name not in hidden]
    if "model" in dataset.attrs:
        lines.append(f"model: {dataset.attrs['model']}")
    lines.append(f"sizes: {dict(dataset.sizes)}")
    for key in ("compile_s", "run_s", "seed_epochs_per_s", "device", "host", "jax_version",
                "layer_products", "discrete_counting"):
        if key in dataset.attrs:
            value = dataset.attrs[key]
            lines.append(f"{key}: {value:.1f}" if isinstance(value, float) else f"{key}: {value}")
    if "diverged_epoch" in dataset:
        diverged = int((dataset["diverged_epoch"] >= 0).sum())
        lines.append(f"diverged: {diverged} of {dataset['diverged_epoch'].size} networks")
    missing = missing_variables(dataset)
    if missing:
        lines.append(f"not in this file: {', '.join(missing)}")
    never = dataset["epoch"].values[dataset["ixt"].isnull().all(
        [d for d in dataset["ixt"].dims if d != "epoch"]).values]
    if never.size:
        lines.append(f"snapshots with no measurement for any network: epochs "
                     f"{', '.join(str(int(e)) for e in never[:20])}"
                     f"{' ...' if never.size > 20 else ''}")
    # One table per learning rate of a sweep: a mean over rates would describe no network.
    rates = dataset["learning_rate"].values if "learning_rate" in dataset.dims else [None]
    for rate in rates:
        part = dataset if rate is None else dataset.sel(learning_rate=rate)
        lines += _layer_table(part, "" if rate is None else f", learning rate {rate:g}")
    return "\n".join(lines)


def _layer_table(dataset: xr.Dataset, what: str) -> list[str]:
    """Per estimator and layer: mean I(X;T) over seeds at the first snapshot, its peak (with
    epoch) and the last, and the last I(T;Y)."""
    reduce_dims = [d for d in dataset["ixt"].dims if d not in ("epoch", "layer", "estimator")]
    ixt = dataset["ixt"].mean(reduce_dims, skipna=True)
    ity = dataset["ity"].mean(reduce_dims, skipna=True)
    epochs = dataset["epoch"].values
    lines = []
    for estimator in dataset["estimator"].values:
        lines.append(f"{estimator}: layer  I(X;T) first   peak (epoch)      last   I(T;Y) last"
                     f"  [bits, mean over seeds{what}]")
        for i, name in enumerate(dataset["layer_name"].values):
            x = ixt.sel(estimator=estimator).isel(layer=i).values
            last_ity = float(ity.sel(estimator=estimator).isel(layer=i).values[-1])
            peak = int(np.nanargmax(np.where(np.isfinite(x), x, -np.inf))) if np.isfinite(
                x).any() else 0
            lines.append(f"  {name!s:16s} {x[0]:12.2f} {x[peak]:7.2f} ({epochs[peak]:>6}) "
                         f"{x[-1]:9.2f} {last_ity:12.3f}")
    return lines


def _config_json(config: Config, attrs: dict) -> str:
    """``attrs["config"]``: the configuration as JSON, without :data:`TRAINING_FIELDS` for a
    user's own loop (``attrs["recorded_by"]``), which chose its own training."""
    fields = config.to_dict()
    if attrs.get("recorded_by"):
        fields = {name: value for name, value in fields.items() if name not in TRAINING_FIELDS}
    return json.dumps(fields, sort_keys=True)


def config_of(dataset: xr.Dataset) -> Config:
    """The :class:`~ibjax.config.Config` a results Dataset was produced with. Fields the file
    does not hold take :class:`~ibjax.config.Config`'s defaults: a file of your own loop
    (:func:`ibjax.make_recorder`, ``attrs["recorded_by"]``) holds no training settings
    (:data:`TRAINING_FIELDS`: your loop chose them), so they read as the defaults there."""
    return Config.from_json(dataset.attrs["config"])
