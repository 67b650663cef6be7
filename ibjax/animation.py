"""The information plane moving over training, with the seed spread: an animation (GIF or MP4).

Per frame (a snapshot): every layer's median over seeds as a large point, each seed as a small
faint point around it (the cloud shows the spread), the median's path up to that epoch as a
trailing line, and in the corner the epoch and the median train and test accuracy; one panel
per estimator. Made from a results file alone with ``matplotlib.animation``: MP4 through ffmpeg
when it is installed, otherwise a GIF through Pillow (always there with matplotlib).
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.animation import FFMpegWriter, FuncAnimation, PillowWriter
from matplotlib.figure import Figure

FPS = 10


class Written(NamedTuple):
    """An animation on disk: ``path``, the ``writer`` used and ``why`` that one."""

    path: Path
    writer: str
    why: str


def choose_writer(fmt: str = "auto") -> tuple[str, str]:
    """``(writer, why)``: ``"ffmpeg"`` (MP4) when asked for or found, else ``"pillow"`` (GIF).

    Args:
      fmt: ``"auto"``, ``"mp4"`` or ``"gif"``.

    Raises:
      ValueError: ``fmt`` is unknown, or ``"mp4"`` without ffmpeg.
    """
    has_ffmpeg = shutil.which("ffmpeg") is not None and FFMpegWriter.isAvailable()
    if fmt == "gif":
        return "pillow", "a GIF was asked for"
    if fmt == "mp4":
        if not has_ffmpeg:
            raise ValueError("format 'mp4' needs ffmpeg on the PATH; use 'gif' or 'auto'")
        return "ffmpeg", "an MP4 was asked for"
    if fmt != "auto":
        raise ValueError(f"format must be 'auto', 'mp4' or 'gif', got {fmt!r}")
    if has_ffmpeg:
        return "ffmpeg", "ffmpeg is installed"
    return "pillow", "ffmpeg is not installed: install it for an MP4"


def frame_indices(num_snapshots: int, frames: int | None) -> np.ndarray:
    """Snapshot indices of the frames: all, or ``frames`` spread evenly (first and last kept)."""
    if frames is None or frames >= num_snapshots:
        return np.arange(num_snapshots)
    if frames < 2:
        raise ValueError(f"frames must be an integer >= 2, got {frames!r}")
    return np.unique(np.round(np.linspace(0, num_snapshots - 1, frames)).astype(int))


def animate_information_plane(results: xr.Dataset, path: str | os.PathLike,
                              frames: int | None = None, fmt: str = "auto",
                              dpi: int = 80) -> Written:
    """Writes the animation of ``results`` (one learning rate: select it first).

    Args:
      results: a results Dataset (``ixt``, ``ity``; ``train_accuracy`` and ``test_accuracy``
        if present).
      path: where to write, without suffix (``.mp4`` or ``.gif`` is added).
      frames: number of frames (default one per snapshot).
      fmt: ``"auto"`` (MP4 if ffmpeg is installed, else GIF), ``"mp4"`` or ``"gif"``.
      dpi: resolution of the frames.

    Returns:
      A :class:`Written` (the path, the writer and why it was chosen).
    """
    from ibjax.atomic import atomic_path

    writer_name, why = choose_writer(fmt)
    indices = frame_indices(results.sizes["epoch"], frames)
    estimators = [str(e) for e in results["estimator"].values]
    epochs = results["epoch"].values
    ixt = results["ixt"].transpose("seed", "epoch", "estimator", "layer").values
    ity = results["ity"].transpose("seed", "epoch", "estimator", "layer").values
    with warnings.catch_warnings():  # all-NaN slices (diverged networks) give NaN medians
        warnings.simplefilter("ignore", RuntimeWarning)
        median_x, median_y = np.nanmedian(ixt, axis=0), np.nanmedian(ity, axis=0)
        accuracy = {split: np.nanmedian(results[f"{split}_accuracy"].values, axis=0)
                    for split in ("train", "test") if f"{split}_accuracy" in results}
    num_layers = ixt.shape[-1]
    colors = colormaps["viridis"](np.linspace(0.0, 0.9, num_layers))
    fig = Figure(figsize=(1.0 + 4.2 * len(estimators), 4.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(estimators), squeeze=False)[0])
    artists = []
    for e, (ax, estimator) in enumerate(zip(axes, estimators, strict=True)):
        finite_x, finite_y = ixt[:, :, e][np.isfinite(ixt[:, :, e])], ity[:, :, e][
            np.isfinite(ity[:, :, e])]
        if finite_x.size and finite_y.size:
            pad_x = 0.05 * max(finite_x.max() - finite_x.min(), 1e-3)
            pad_y = 0.05 * max(finite_y.max() - finite_y.min(), 1e-3)
            ax.set_xlim(finite_x.min() - pad_x, finite_x.max() + pad_x)
            ax.set_ylim(finite_y.min() - pad_y, finite_y.max() + pad_y)
        ax.set_xlabel("I(X;T) [bits]")
        ax.set_ylabel("I(T;Y) [bits]")
        ax.set_title(f"estimator: {estimator}", fontsize=9)
        ax.grid(alpha=0.3)
        per_layer = []
        for layer in range(num_layers):
            color = colors[layer]
            name = str(results["layer_name"].values[layer])
            cloud = ax.scatter([], [], s=6, color=color, alpha=0.25, edgecolors="none")
            (trail,) = ax.plot([], [], color=color, linewidth=1.0, alpha=0.7)
            median = ax.scatter([], [], s=45, color=color, edgecolors="black", linewidths=0.5,
                                zorder=3, label=name)
            per_layer.append((cloud, trail, median))
        ax.legend(fontsize=6, loc="lower right")
        corner = ax.text(0.02, 0.98, "", transform=ax.transAxes, va="top", fontsize=8,
                         family="monospace")
        artists.append((per_layer, corner))
    fig.suptitle(_title(results), fontsize=9)

    def draw(frame: int):
        k = indices[frame]
        changed = []
        for e, (per_layer, corner) in enumerate(artists):
            for layer, (cloud, trail, median) in enumerate(per_layer):
                cloud.set_offsets(np.column_stack([ixt[:, k, e, layer], ity[:, k, e, layer]]))
                trail.set_data(median_x[:k + 1, e, layer], median_y[:k + 1, e, layer])
                median.set_offsets([[median_x[k, e, layer], median_y[k, e, layer]]])
                changed += [cloud, trail, median]
            text = f"epoch {int(epochs[k])}"
            for split, values in accuracy.items():
                if np.isfinite(values[k]):
                    text += f"\n{split} acc {values[k]:.3f}"
            corner.set_text(text)
            changed.append(corner)
        return changed

    animation = FuncAnimation(fig, draw, frames=len(indices), blit=False)
    suffix = ".mp4" if writer_name == "ffmpeg" else ".gif"
    path = Path(path)  # "information_plane_lr0.001" keeps its ".001": only .gif/.mp4 are replaced
    target = path.with_suffix(suffix) if path.suffix.lower() in ("", ".gif", ".mp4") else (
        path.with_name(path.name + suffix))
    writer = FFMpegWriter(fps=FPS) if writer_name == "ffmpeg" else PillowWriter(fps=FPS)
    with atomic_path(target) as tmp:
        # matplotlib picks the container from the name: keep the suffix on the temporary file.
        staged = tmp.with_name(tmp.name + suffix)
        try:
            animation.save(staged, writer=writer, dpi=dpi)
            staged.replace(tmp)
        finally:
            staged.unlink(missing_ok=True)
    return Written(target, writer_name, why)


def _title(results: xr.Dataset) -> str:
    from ibjax.plotting import _title as figure_title

    return figure_title(results, "Information plane over training (median and seeds)")


def animate_results(results: xr.Dataset | str | os.PathLike,
                    out_dir: str | os.PathLike | None = None, frames: int | None = None,
                    fmt: str = "auto") -> list[Written]:
    """Writes ``information_plane.gif`` (or ``.mp4``) beside a results file or into
    ``out_dir``; with a ``learning_rate`` dimension one per rate
    (``information_plane_lr0.001.gif``). Impossible values (a damaged file) are left out."""
    from ibjax.results import check_values, load

    if not isinstance(results, xr.Dataset):
        out_dir = Path(results).parent if out_dir is None else out_dir
        results = load(results)
    if out_dir is None:
        raise ValueError("out_dir is required when results is a Dataset")
    results = check_values(results)[0]
    parts = ([(f"_lr{rate:g}", results.sel(learning_rate=rate))
              for rate in results["learning_rate"].values]
             if "learning_rate" in results.dims else [("", results)])
    return [animate_information_plane(part, Path(out_dir) / f"information_plane{suffix}",
                                      frames=frames, fmt=fmt) for suffix, part in parts]
