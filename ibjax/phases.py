"""The paper's two phases, found automatically in a results file.

Per network (seed, and learning rate if swept), estimator and layer:

- ``compression_epoch``: the snapshot epoch where I(X;T) peaks, the end of fitting and start
  of compression (Shwartz-Ziv & Tishby 2017, Fig. 3). The first such epoch if the peak repeats.
- ``bits_compressed``: I(X;T) at the peak minus I(X;T) at the last snapshot, bits (0 when the
  peak is the last snapshot: no compression).
- ``snr_epoch``: the first snapshot epoch where the gradient signal-to-noise ratio
  ``grad_mean / grad_std`` is below 1 and the median of it and the next ``window - 1``
  snapshots' ratios is below 1 too (one noisy dip does not count): the drift-to-diffusion
  transition of the paper's Fig. 4. NaN when it never happens.

:func:`summarize` aggregates over seeds: median and the 2.5 and 97.5 percentiles (the range
holding 95% of seeds). Diverged networks (NaN measurements) are left out.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

SNR_WINDOW = 5


def _peak_index(ixt: np.ndarray) -> np.ndarray:
    """Index of the first maximum along the last axis, ignoring NaN; -1 where all NaN."""
    finite = np.isfinite(ixt)
    filled = np.where(finite, ixt, -np.inf)
    index = np.argmax(filled, axis=-1)
    return np.where(finite.any(axis=-1), index, -1)


def _snr_index(snr: np.ndarray, window: int) -> np.ndarray:
    """First index along the last axis where snr < 1 and the window's median < 1; -1 if none."""
    num = snr.shape[-1]
    below = np.zeros(snr.shape, bool)
    for i in range(num):
        part = np.where(np.isfinite(snr[..., i:i + window]), snr[..., i:i + window], np.nan)
        with warnings.catch_warnings():  # all-NaN windows (diverged networks) give NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(part, axis=-1)
        with np.errstate(invalid="ignore"):
            below[..., i] = (snr[..., i] < 1) & (median < 1)
    return np.where(below.any(axis=-1), np.argmax(below, axis=-1), -1)


def detect(results: xr.Dataset, window: int = SNR_WINDOW) -> xr.Dataset:
    """Phase markers of every network, estimator and layer.

    Args:
      results: an ibjax results Dataset (``ixt``, ``grad_mean``, ``grad_std`` with an
        ``epoch`` dimension).
      window: snapshots over which the SNR must stay low in the median (default 5).

    Returns:
      Dataset with ``compression_epoch`` and ``bits_compressed`` (dims of ``ixt`` without
      ``epoch``) and ``snr_epoch`` (dims of ``grad_mean`` without ``epoch``; absent when the
      file has no gradient statistics); float, NaN where undefined.
    """
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    epochs = results["epoch"].values.astype(np.float64)
    ixt = results["ixt"].transpose(..., "epoch")
    values = ixt.values
    peak = _peak_index(values)
    safe = np.maximum(peak, 0)[..., None]
    at_peak = np.take_along_axis(values, safe, axis=-1)[..., 0]
    last = values[..., -1]
    valid = (peak >= 0) & np.isfinite(last)
    dims = ixt.dims[:-1]
    coords = {name: coord for name, coord in ixt.coords.items() if "epoch" not in coord.dims}
    markers = {
        "compression_epoch": (dims, np.where(valid, epochs[np.maximum(peak, 0)], np.nan),
                              {"long_name": "epoch of the I(X;T) peak", "units": "epoch"}),
        "bits_compressed": (dims, np.where(valid, at_peak - last, np.nan),
                            {"long_name": "I(X;T) lost from the peak to the last snapshot",
                             "units": "bits"}),
    }
    if "grad_mean" in results and "grad_std" in results:  # a user's own file may lack them
        grad_mean = results["grad_mean"].transpose(..., "epoch")
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = grad_mean.values / results["grad_std"].transpose(..., "epoch").values
        snr_index = _snr_index(snr, window)
        markers["snr_epoch"] = (
            grad_mean.dims[:-1], np.where(snr_index >= 0, epochs[np.maximum(snr_index, 0)],
                                          np.nan),
            {"long_name": "first epoch with gradient SNR below 1 (window median of "
                          f"{window} snapshots too)", "units": "epoch"})
    return xr.Dataset(markers, coords=coords)


def summarize(phases: xr.Dataset, dim: str = "seed") -> xr.Dataset:
    """Median and 95% interval over ``dim``: a ``stat`` dimension (median, low, high).

    Also ``count``: how many networks had the marker defined (a layer whose gradient SNR never
    falls below 1 has no ``snr_epoch``).
    """
    stats = {}
    for name, var in phases.data_vars.items():
        with warnings.catch_warnings():  # a marker undefined for every seed gives NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            quantiles = var.quantile([0.5, 0.025, 0.975], dim=dim, skipna=True)
        stats[name] = quantiles.rename(quantile="stat").assign_coords(
            stat=["median", "low", "high"])
        stats[f"{name}_count"] = var.notnull().sum(dim)
    return xr.Dataset(stats)


def table(results: xr.Dataset, window: int = SNR_WINDOW) -> str:
    """The phases of a results file as a text table (median [95% interval] over seeds)."""
    phases = detect(results, window)
    extra = [d for d in phases["compression_epoch"].dims if d not in ("seed", "estimator",
                                                                      "layer")]
    lines = []
    parts = [({}, "")] if not extra else [
        ({extra[0]: value}, f" ({extra[0]} {value:g})") for value in phases[extra[0]].values]
    for selection, label in parts:
        summary = summarize(phases.sel(selection))
        lines.append(f"phases{label}: median [2.5%, 97.5%] over "
                     f"{phases.sizes['seed']} seeds")
        lines.append(f"  {'estimator':14s} {'layer':16s} {'I(X;T) peak epoch':>26s} "
                     f"{'bits lost after peak':>24s} {'gradient SNR < 1 epoch':>26s}")
        for estimator in summary["estimator"].values:
            for i, name in enumerate(results["layer_name"].values):
                row = summary.sel(estimator=estimator).isel(layer=i)
                if "snr_epoch" in summary:
                    snr = summary["snr_epoch"].isel(layer=i)
                    count = int(summary["snr_epoch_count"].isel(layer=i))
                    snr_text = format_interval(snr, 0)
                    snr_text += "" if snr_text == "never" else f" n={count}"
                else:
                    snr_text = "no gradients"
                lines.append(
                    f"  {estimator!s:14s} {name!s:16s} "
                    f"{format_interval(row['compression_epoch'], 0):>26s} "
                    f"{format_interval(row['bits_compressed'], 2):>24s} {snr_text:>26s}")
    return "\n".join(lines)


def format_interval(stat: xr.DataArray, digits: int) -> str:
    """``"median [low, high]"`` of one :func:`summarize` entry, or ``"never"`` if undefined."""
    median, low, high = (float(stat.sel(stat=s)) for s in ("median", "low", "high"))
    if not np.isfinite(median):
        return "never"
    return f"{median:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
