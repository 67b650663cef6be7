"""One self-contained HTML file to explore a results file offline: the information plane with
an epoch slider and a play button, every seed and the median, a switch between estimators,
values on hover, and the gradient figure.

Drawn with plotly (an optional dependency: ``pip install "ibjax[view]"``), whose JavaScript
is embedded in the file, so it opens from disk on a machine with no network.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

DEFAULT_FRAMES = 60


def plotly_missing() -> str | None:
    """Why ``ibjax view`` cannot run here (plotly is not installed), or None."""
    try:
        import plotly  # noqa: F401
    except ImportError:
        return ('ibjax view needs plotly, an optional dependency: pip install "ibjax[view]" '
                '(or pip install plotly)')
    return None


def write_view(results: xr.Dataset, path: str | os.PathLike,
               frames: int | None = DEFAULT_FRAMES) -> Path:
    """Writes the HTML view of ``results`` (one learning rate: select it first) to ``path``.

    Args:
      results: a results Dataset.
      path: the HTML file to write (atomically).
      frames: slider positions (snapshots spread evenly; None: every snapshot).

    Raises:
      ImportError: plotly is not installed (the message says how to install it).
    """
    from ibjax.animation import frame_indices
    from ibjax.atomic import atomic_path

    missing = plotly_missing()
    if missing:
        raise ImportError(missing)
    plane = _information_plane(results, frame_indices(results.sizes["epoch"], frames))
    parts = [plane.to_html(include_plotlyjs=True, full_html=False, auto_play=False)]
    if "grad_mean" in results and "grad_std" in results:
        parts.append(_gradients(results).to_html(include_plotlyjs=False, full_html=False))
    title = _page_title(results)
    page = (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title>"
            f"</head><body style='font-family: sans-serif'>\n<h3>{title}</h3>\n"
            + "\n".join(parts) + "\n</body></html>\n")
    target = Path(path)
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return target


def _information_plane(results: xr.Dataset, indices: np.ndarray):
    import plotly.graph_objects as go

    estimators = [str(e) for e in results["estimator"].values]
    names = [str(n) for n in results["layer_name"].values]
    epochs = results["epoch"].values
    seeds = results["seed"].values
    ixt = results["ixt"].transpose("seed", "epoch", "estimator", "layer").values
    ity = results["ity"].transpose("seed", "epoch", "estimator", "layer").values
    with warnings.catch_warnings():  # all-NaN slices (diverged networks) give NaN medians
        warnings.simplefilter("ignore", RuntimeWarning)
        median_x, median_y = np.nanmedian(ixt, axis=0), np.nanmedian(ity, axis=0)
    palette = [f"hsl({int(300 * i / max(len(names) - 1, 1))}, 70%, 45%)"
               for i in range(len(names))]

    def traces(k: int) -> list:
        """Per estimator and layer: the seeds, the median's path, the median, at snapshot k."""
        out = []
        for e, estimator in enumerate(estimators):
            visible = e == 0
            for layer, name in enumerate(names):
                color = palette[layer]
                out.append(go.Scatter(
                    x=ixt[:, k, e, layer], y=ity[:, k, e, layer], mode="markers",
                    marker={"size": 5, "color": color, "opacity": 0.35}, visible=visible,
                    name=f"{name}: seeds", legendgroup=name, showlegend=False,
                    customdata=seeds, hovertemplate=(
                        f"{name}, seed %{{customdata}}<br>I(X;T) %{{x:.3f}} bits<br>"
                        f"I(T;Y) %{{y:.3f}} bits<extra>{estimator}</extra>")))
                out.append(go.Scatter(
                    x=median_x[:k + 1, e, layer], y=median_y[:k + 1, e, layer], mode="lines",
                    line={"color": color, "width": 1}, visible=visible, hoverinfo="skip",
                    legendgroup=name, showlegend=False))
                out.append(go.Scatter(
                    x=[median_x[k, e, layer]], y=[median_y[k, e, layer]], mode="markers",
                    marker={"size": 11, "color": color, "line": {"width": 1, "color": "black"}},
                    visible=visible, name=name, legendgroup=name, showlegend=True,
                    hovertemplate=(f"{name}, median over seeds<br>I(X;T) %{{x:.3f}} bits<br>"
                                   f"I(T;Y) %{{y:.3f}} bits<extra>{estimator}</extra>")))
        return out

    per_estimator = 3 * len(names)
    figure = go.Figure(data=traces(indices[0]), frames=[
        go.Frame(data=traces(k), name=str(int(epochs[k]))) for k in indices])
    slider = {"active": 0, "currentvalue": {"prefix": "epoch "}, "pad": {"t": 50},
              "x": 0.12, "len": 0.88,
              "steps": [{"label": str(int(epochs[k])), "method": "animate",
                         "args": [[str(int(epochs[k]))], {"mode": "immediate",
                                                          "frame": {"duration": 0},
                                                          "transition": {"duration": 0}}]}
                        for k in indices]}
    play = {"type": "buttons", "direction": "left", "x": 0.1, "y": 0.0, "xanchor": "right",
            "yanchor": "top", "pad": {"t": 60, "r": 10},
            "buttons": [
                {"label": "play", "method": "animate",
                 "args": [None, {"frame": {"duration": 120, "redraw": False},
                                 "fromcurrent": True, "transition": {"duration": 0}}]},
                {"label": "pause", "method": "animate",
                 "args": [[None], {"mode": "immediate", "frame": {"duration": 0}}]}]}
    switch = {"type": "dropdown", "x": 1.0, "y": 1.12, "xanchor": "right",
              "buttons": [{"label": f"estimator: {estimator}", "method": "restyle",
                           "args": [{"visible": [i // per_estimator == e
                                                 for i in range(len(figure.data))]}]}
                          for e, estimator in enumerate(estimators)]}
    finite_x, finite_y = ixt[np.isfinite(ixt)], ity[np.isfinite(ity)]
    if finite_x.size and finite_y.size:
        figure.update_xaxes(range=[finite_x.min() - 0.2, finite_x.max() + 0.2])
        figure.update_yaxes(range=[finite_y.min() - 0.05, finite_y.max() + 0.05])
    figure.update_layout(title="Information plane: every seed (faint) and the median (ringed)",
                         xaxis_title="I(X;T) [bits]", yaxis_title="I(T;Y) [bits]",
                         sliders=[slider], updatemenus=[play, switch], height=620,
                         template="plotly_white")
    return figure


def _gradients(results: xr.Dataset):
    import plotly.graph_objects as go

    epochs = results["epoch"].values
    keep = epochs > 0
    mean = results["grad_mean"].mean("seed", skipna=True).values[keep]
    std = results["grad_std"].mean("seed", skipna=True).values[keep]
    figure = go.Figure()
    for layer, name in enumerate(str(n) for n in results["layer_name"].values):
        color = f"hsl({int(300 * layer / max(mean.shape[1] - 1, 1))}, 70%, 45%)"
        figure.add_trace(go.Scatter(x=epochs[keep], y=mean[:, layer], name=f"{name} mean",
                                    line={"color": color}))
        figure.add_trace(go.Scatter(x=epochs[keep], y=std[:, layer], name=f"{name} std",
                                    line={"color": color, "dash": "dash"}))
    figure.update_layout(title="Gradient norms: mean (solid) and standard deviation (dashed) "
                               "over an epoch's minibatches, mean over seeds",
                         xaxis_title="epoch", yaxis_title="weight-gradient norm",
                         xaxis_type="log", yaxis_type="log", height=480,
                         template="plotly_white")
    return figure


def _page_title(results: xr.Dataset) -> str:
    import html

    from ibjax.plotting import _title

    return html.escape(_title(results, "ibjax").replace("\n", ": "))
