"""Figures from a results file alone: the information plane and the gradient phases.

Figure 3 and Figure 4 of Shwartz-Ziv & Tishby (2017), https://arxiv.org/abs/1703.00810.
Uses matplotlib's non-interactive Agg canvas; importing this module does not import JAX.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib import cm, colormaps, colors
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from ibjax import phases


def _epoch_norm(epochs: np.ndarray) -> colors.Normalize:
    top = max(int(epochs.max()), 2)
    return colors.LogNorm(vmin=1, vmax=top)


def information_plane_figure(results: xr.Dataset) -> Figure:
    """The information plane: mean over seeds, one point per layer per snapshot.

    One panel per estimator, four to a row. x: I(X;T), y: I(T;Y), both in bits; points coloured
    by epoch (log scale, epoch 0 drawn as epoch 1), thin lines join the layers of one snapshot,
    markers grow from input to output. A red cross marks each layer at the median epoch of its
    I(X;T) peak over seeds (:mod:`ibjax.phases`).
    """
    estimators = [str(e) for e in results["estimator"].values]
    epochs = results["epoch"].values
    markers = phases.summarize(phases.detect(results))
    norm = _epoch_norm(epochs)
    cmap = colormaps["viridis"]
    fig, axes = _panels(len(estimators), 5.6, 5.2)
    shown = np.maximum(epochs, 1)
    for ax, estimator in zip(axes, estimators, strict=True):
        part = results.sel(estimator=estimator)
        ixt = part["ixt"].mean("seed", skipna=True).transpose("epoch", "layer").values
        ity = part["ity"].mean("seed", skipna=True).transpose("epoch", "layer").values
        for i in range(len(epochs)):
            ax.plot(ixt[i], ity[i], color=cmap(norm(shown[i])), alpha=0.35, linewidth=0.7)
        num_layers = ixt.shape[1]
        for layer in range(num_layers):
            ax.scatter(ixt[:, layer], ity[:, layer], c=shown, cmap=cmap, norm=norm,
                       s=12 + 6 * layer, edgecolors="none", zorder=3)
        for layer in range(num_layers):
            name = str(results["layer_name"].values[layer])
            ax.annotate(name, (ixt[-1, layer], ity[-1, layer]), fontsize=7,
                        xytext=(4, -8), textcoords="offset points")
        peaks = markers.compression_epoch.sel(estimator=estimator, stat="median").values
        for layer in range(num_layers):  # median I(X;T) peak epoch: start of compression
            if np.isfinite(peaks[layer]):
                i = int(np.argmin(np.abs(epochs - peaks[layer])))
                ax.scatter(ixt[i, layer], ity[i, layer], marker="x", color="crimson", s=45,
                           zorder=4, label="I(X;T) peak (median epoch)" if layer == 0 else None)
        if np.isfinite(peaks).any():
            ax.legend(fontsize=7, loc="lower right")
        ax.set_xlabel("I(X;T) [bits]")
        ax.set_ylabel("I(T;Y) [bits]")
        ax.set_title(f"estimator: {estimator}", fontsize=9)
        ax.grid(alpha=0.3)
        if not (np.isfinite(ixt).any() and np.isfinite(ity).any()):
            _say(ax, "no finite values\n(every network diverged, or nothing was measured)")
    mappable = cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(mappable, ax=list(axes), label="epoch")
    fig.suptitle(_title(results, "Information plane"), fontsize=9)
    return fig


def gradients_figure(results: xr.Dataset) -> Figure:
    """Per layer: norm of the mean (solid) and of the std (dashed) weight gradient vs epoch.

    Mean over seeds of each seed's norms; log-log axes; epoch 0 (no gradients yet) omitted.
    A dotted vertical line per layer marks the median epoch where the gradient signal-to-noise
    ratio falls below 1 (:mod:`ibjax.phases`); a bar at the top spans its 95% interval over
    seeds.
    """
    snr = phases.summarize(phases.detect(results)).snr_epoch
    mean = results["grad_mean"].mean("seed", skipna=True).values
    std = results["grad_std"].mean("seed", skipna=True).values
    epochs = results["epoch"].values
    keep = epochs > 0
    fig = Figure(figsize=(7.0, 5.0), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(_title(results, "Gradient mean (solid) and standard deviation (dashed)"),
                 fontsize=9)
    if not (keep.any() and np.isfinite(mean[keep]).any()):
        _say(ax, "no gradient statistics after epoch 0\n(a single snapshot, or every network "
                 "diverged)")
        return fig
    palette = [f"C{i}" for i in range(10)]
    top = blended_transform_factory(ax.transData, ax.transAxes)
    for layer in range(mean.shape[1]):
        name = str(results["layer_name"].values[layer])
        color = palette[layer % 10]
        ax.plot(epochs[keep], mean[keep, layer], color=color, label=f"{name} mean")
        ax.plot(epochs[keep], std[keep, layer], color=color, linestyle="--", label=f"{name} std")
        median, low, high = (float(snr.isel(layer=layer).sel(stat=s))
                             for s in ("median", "low", "high"))
        if np.isfinite(median):  # dotted line at the median, its 95% interval as a bar on top
            ax.axvline(median, color=color, linestyle=":", linewidth=1.2)
            height = 0.985 - 0.02 * layer
            ax.plot([max(low, 1), max(high, 1)], [height, height], color=color, linewidth=2.5,
                    alpha=0.7, transform=top, solid_capstyle="butt")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("weight-gradient norm")
    ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3, which="both")
    return fig


def accuracy_figure(results: xr.Dataset) -> Figure:
    """Train and test accuracy and loss against epoch (mean over seeds, 10-90% band); the
    variables a file lacks, or holds no finite values of, are left out (and said so)."""
    epochs = np.maximum(results["epoch"].values, 1)
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    for ax, metric in zip(fig.subplots(1, 2), ("accuracy", "loss"), strict=True):
        drawn = 0
        for split, color in (("train", "C0"), ("test", "C1")):
            name = f"{split}_{metric}"
            if name not in results or not np.isfinite(results[name].values).any():
                continue
            values = results[name]
            with warnings.catch_warnings():  # snapshots never measured give NaN, silently
                warnings.simplefilter("ignore", RuntimeWarning)
                low, high = (values.quantile(q, "seed", skipna=True).values
                             for q in (0.1, 0.9))
            ax.plot(epochs, values.mean("seed", skipna=True).values, color=color, label=split,
                    marker="o" if epochs.size == 1 else None)
            ax.fill_between(epochs, low, high, color=color, alpha=0.2)
            drawn += 1
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if not drawn:
            _say(ax, f"no {metric} values in this file")
            continue
        if epochs.max() > 1:
            ax.set_xscale("log")
        ax.legend(fontsize=8)
    return fig


def null_gap_figure(results: xr.Dataset) -> Figure:
    """I(T;Y) minus its label-shuffle null (:mod:`ibjax.null`) against epoch: one panel per
    estimator, one line per layer, median over seeds with the 25-75% band; grey where the seeds
    cannot tell I(T;Y) from the null (:func:`ibjax.null.indistinguishable`), bits."""
    from ibjax import null

    difference = null.gap(results)
    mask = null.indistinguishable(results)
    estimators = [str(e) for e in results["estimator"].values]
    epochs = np.maximum(results["epoch"].values, 1)
    fig, axes = _panels(len(estimators), 4.6, 3.8)
    cmap = colormaps["plasma"]
    num_layers = results.sizes["layer"]
    for ax, estimator in zip(axes, estimators, strict=True):
        part = difference.sel(estimator=estimator)
        ax.set_title(estimator, fontsize=10)
        if not np.isfinite(part.values).any():  # every network diverged, say
            _say(ax, "no finite I(T;Y) or null values")
            continue
        for i, name in enumerate(results["layer_name"].values):
            values = part.isel(layer=i).transpose("seed", "epoch").values
            with warnings.catch_warnings():  # snapshots never measured give NaN, silently
                warnings.simplefilter("ignore", RuntimeWarning)
                low, mid, high = (np.nanquantile(values, q, axis=0) for q in (0.25, 0.5, 0.75))
            color = cmap(i / max(num_layers - 1, 1) * 0.85)
            ax.plot(epochs, mid, color=color, label=str(name), linewidth=1.2)
            ax.fill_between(epochs, low, high, color=color, alpha=0.2)
            same = mask.sel(estimator=estimator).isel(layer=i).transpose("epoch").values
            ax.scatter(epochs[same], mid[same], color="0.6", s=8, zorder=3)
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_xlabel("epoch")
        ax.set_ylabel("I(T;Y) - null [bits]")
        if epochs.max() > 1:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=7, title="grey: indistinguishable", title_fontsize=7)
    fig.suptitle(_title(results, "I(T;Y) above the label-shuffle null"), fontsize=10)
    return fig


PANELS_PER_ROW = 4  # estimators' panels beyond this wrap onto further rows


def _panels(count: int, width: float, height: float) -> tuple[Figure, list]:
    """A figure of ``count`` panels (inches each), at most :data:`PANELS_PER_ROW` a row; the
    grid's unused cells are left blank. Returns ``(figure, axes in order)``."""
    columns = min(count, PANELS_PER_ROW)
    rows = -(-count // columns)
    fig = Figure(figsize=(1.0 + width * columns, height * rows), layout="constrained")
    grid = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in grid[count:]:
        ax.set_axis_off()
    return fig, list(grid[:count])


def _say(ax, text: str) -> None:
    """A note in the middle of an empty panel."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=9,
            color="0.35")


def _title(results: xr.Dataset, what: str) -> str:
    import json

    config = json.loads(results.attrs.get("config", "{}"))
    model = str(config.get("model", "mlp"))
    kind = (f", {config['quantize']}-bit quantized" if config.get("quantize") else "") + (
        f", noise std {config['noise_std']:g}" if config.get("noise_std") else "")
    if model.startswith("own:"):
        data = str(config.get("dataset", "")).removeprefix("arrays:")
        return f"{what}\n{results.sizes['seed']} seeds, {model[4:]} on {data}{kind}"
    hidden = "-".join(str(w) for w in config.get("hidden", []))
    if "learning_rate" in results.coords and results["learning_rate"].ndim == 0:
        config["learning_rate"] = float(results["learning_rate"])
    return (f"{what}\n{results.sizes['seed']} seeds, {config.get('activation', '?')} "
            f"{hidden}, {config.get('optimizer', '?')} lr {config.get('learning_rate', '?')}, "
            f"batch {config.get('batch_size') or 'full'}{kind}")


def skipped_figures(results: xr.Dataset) -> dict[str, str]:
    """The figures :func:`plot_results` cannot draw from ``results``: name -> why."""
    skipped = {}
    if "grad_mean" not in results or "grad_std" not in results:
        skipped["gradients"] = "the file has no gradient statistics (grad_mean, grad_std)"
    if not any(f"{split}_{metric}" in results for split in ("train", "test")
               for metric in ("accuracy", "loss")):
        skipped["accuracy"] = "the file has no losses or accuracies"
    return skipped


def plot_results(results: xr.Dataset | str | os.PathLike,
                 out_dir: str | os.PathLike | None = None) -> list[Path]:
    """Writes ``information_plane.png``, ``gradients.png`` and ``accuracy.png``, and, for a
    run with the null baseline (``ity_null``), ``null_gap.png`` (:func:`null_gap_figure`).

    With a ``learning_rate`` dimension, one set per rate, named ``information_plane_lr1e-4.png``
    and so on. A figure whose variables the file lacks is not drawn
    (:func:`skipped_figures` says which and why); impossible values (see
    :func:`ibjax.results.check_values`) are left out of the figures.

    Args:
      results: a results Dataset or the path of a results file.
      out_dir: folder for the figures; defaults to the results file's folder.

    Returns:
      The paths written.

    Raises:
      OSError: a figure could not be written (the figures written before it stay).
    """
    from ibjax.atomic import CannotWrite, atomic_path
    from ibjax.results import check_values, load

    if not isinstance(results, xr.Dataset):
        path = Path(results)
        out_dir = path.parent if out_dir is None else out_dir
        results = load(path)
    if out_dir is None:
        raise ValueError("out_dir is required when results is a Dataset")
    results = check_values(results)[0]
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CannotWrite(err.errno, "not a folder that can be created" if isinstance(
            err, FileExistsError) else err.strerror, str(out_dir)) from None
    if "learning_rate" in results.dims:  # one set of figures per learning rate
        parts = [(f"_lr{rate:g}", results.sel(learning_rate=rate))
                 for rate in results["learning_rate"].values]
    else:
        parts = [("", results)]
    skipped = skipped_figures(results)
    written = []
    for suffix, part in parts:
        for name, make in (("information_plane", information_plane_figure),
                           ("gradients", gradients_figure),
                           ("accuracy", accuracy_figure),
                           ("null_gap", null_gap_figure)):
            if name in skipped or (name == "null_gap" and "ity_null" not in part):
                continue
            target = out_dir / f"{name}{suffix}.png"
            with atomic_path(target) as tmp:
                make(part).savefig(tmp, dpi=130, format="png")
            written.append(target)
    return written
