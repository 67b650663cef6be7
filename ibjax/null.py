"""The label-shuffle null baseline: how much of I(T;Y) an estimator reports for nothing.

With ``Config.null`` a run also records ``ity_null``: every estimator's I(T;Y) of the same
layers against the MI rows' labels permuted once per seed. A permuted label carries no
information about T, so ``ity_null`` is the estimator's bias at that layer and snapshot (with
4,096 rows and a layer whose binned rows are all distinct, binning gives I(T;Y) = H(Y) for any
labels). Importing this module does not import JAX.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats

CONFIDENCE = 0.95


def gap(results: xr.Dataset) -> xr.DataArray:
    """``ity - ity_null`` per network, snapshot, estimator and layer, bits.

    Raises:
      KeyError: the results hold no ``ity_null`` (a run without ``null``).
    """
    if "ity_null" not in results:
        raise KeyError("these results hold no null baseline (ity_null): run with null=True "
                       "(ibjax run --null)")
    return results["ity"] - results["ity_null"]


def indistinguishable(results: xr.Dataset, confidence: float = CONFIDENCE) -> xr.DataArray:
    """Where I(T;Y) cannot be told from its null, per snapshot, estimator and layer (and
    learning rate, when swept): a bool array without the ``seed`` dimension.

    Over the seeds' paired differences ``d = ity - ity_null`` (NaN seeds left out), the
    one-sided lower ``confidence`` bound of their mean, ``mean - t_{conf, n-1} sd / sqrt(n)``,
    is at most 0. With one seed: ``d <= 0``. Snapshots with no finite difference are False.
    """
    difference = gap(results)
    values = np.moveaxis(difference.values, difference.dims.index("seed"), 0)
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.where(finite, values, 0.0).sum(axis=0)
        mean = total / count
        squares = np.where(finite, (values - mean) ** 2, 0.0).sum(axis=0)
        sd = np.sqrt(squares / np.maximum(count - 1, 1))
        quantile = stats.t.ppf(confidence, np.maximum(count - 1, 1))
        lower = np.where(count >= 2, mean - quantile * sd / np.sqrt(count), mean)
    mask = (count >= 1) & (lower <= 0.0)
    dims = [d for d in difference.dims if d != "seed"]
    coords = {name: coord for name, coord in difference.coords.items()
              if "seed" not in coord.dims}
    return xr.DataArray(mask, dims=dims, coords=coords)


def epoch_ranges(mask: np.ndarray, epochs: np.ndarray, most: int = 8) -> str:
    """Runs of consecutive snapshots where ``mask`` holds, as ``"0-120, 300, 2000-8000"``
    (epochs of the first and last snapshot of each run; after ``most`` runs, how many more);
    ``"none"`` if it never holds."""
    runs, start = [], None
    for i, hold in enumerate(list(mask) + [False]):
        if hold and start is None:
            start = i
        elif not hold and start is not None:
            first, last = int(epochs[start]), int(epochs[i - 1])
            runs.append(str(first) if first == last else f"{first}-{last}")
            start = None
    if len(runs) > most:
        runs = runs[:most] + [f"... ({len(runs) - most} more runs)"]
    return ", ".join(runs) if runs else "none"


def summary(results: xr.Dataset, confidence: float = CONFIDENCE) -> str:
    """Per estimator and layer, the snapshots (epoch ranges) where I(T;Y) is
    indistinguishable from its null (see :func:`indistinguishable`)."""
    mask = indistinguishable(results, confidence)
    epochs = results["epoch"].values
    seeds = results.sizes["seed"]
    rule = (f"the seeds' one-sided {confidence:.0%} lower bound of mean(ity - ity_null) <= 0"
            if seeds >= 2 else "ity - ity_null <= 0 (one seed)")
    lines = [f"I(T;Y) indistinguishable from the label-shuffle null ({rule}), epochs:"]
    rates = [None] if "learning_rate" not in mask.dims else list(mask["learning_rate"].values)
    for rate in rates:
        part = mask if rate is None else mask.sel(learning_rate=rate)
        for estimator in part["estimator"].values:
            header = f"  {estimator}" + ("" if rate is None else f", learning rate {rate:g}")
            lines.append(header + ":")
            for i, name in enumerate(part["layer_name"].values):
                held = part.sel(estimator=estimator).isel(layer=i).transpose("epoch").values
                lines.append(f"    {name!s:16s} {epoch_ranges(held, epochs)}")
    return "\n".join(lines)
