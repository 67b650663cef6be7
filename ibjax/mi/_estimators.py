"""Mutual-information estimators, registered by name, and the entry points that run them.

Every estimator sees one layer's activations for the N inputs, features-major ``t[d, N]``, the
``[N]`` integer labels and, when given, the inputs ``x[D, N]`` of the same rows, and returns
``(I(X;T), I(T;Y))`` in bits, with X uniform over the N rows. All are pure, shape-static and
safe under ``jax.jit`` and ``jax.vmap``.

==================  ============================================================================
name                what it does
==================  ============================================================================
``binning``         The paper's: ``num_bins`` edges on a fixed ``(lo, hi)`` or, with
                    ``bin_range="layer"``, on the layer's own ``[min, max]`` at that snapshot.
``binning-width``   Bins of fixed width: ``floor(t / bin_width)``, unbounded (Saxe et al. 2018).
``equal-mass``      Per neuron, ``num_bins`` bins holding equal numbers of samples
                    (Chelombiev et al. 2019).
``kde-upper``       Kolchinsky & Tracey (2017) pairwise-KL upper bound for T + N(0, s2 I).
``kde-lower``       The Bhattacharyya lower bound of the same mixture.
``matrix-renyi``    Matrix-based Rényi alpha-entropy (Giraldo et al. 2015), Gaussian Gram
                    matrices of width ``renyi_sigma``, order ``renyi_alpha``; I(X;T) against the
                    inputs' Gram matrix (without inputs: N distinct inputs).
``knn``             k-nearest neighbours, max-norm, ``knn_k`` neighbours: I(T;Y) by Ross (2014),
                    I(X;T) by Kraskov et al. (2004) against the inputs (NaN without inputs).
``exact``           Every distinct value of a unit is its own state: the exact I(X;T) and
                    I(T;Y) of a layer that takes finitely many values (a quantized network,
                    Lorenzen et al. 2022). No bins to choose; on continuous activations every
                    row is its own state (I(X;T) = log2 N), so use it on quantized layers.
``noisy``           Goldfeld et al. (2019) sample propagation for a network with Gaussian noise
                    N(0, ``noise_std``^2) on every hidden unit: needs ``m`` noisy propagations
                    of the inputs per layer (``noisy_samples``), see :mod:`ibjax.mi._noisy`.
==================  ============================================================================

For the discrete estimators a layer's state is its row of bin indices and I(X;T) = H(T),
I(T;Y) = H(T) + H(Y) - H(T,Y), counted exactly (:mod:`ibjax.mi._entropy`); the KDE formulas
are in :mod:`ibjax.mi._kde`, the Rényi ones in :mod:`ibjax.mi._renyi`, the kNN ones in
:mod:`ibjax.mi._knn`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ibjax.mi._binning import (
    bin_indices,
    dense_width_bins,
    equal_mass_bins,
    layer_range_bins,
    width_bins_overflow,
)
from ibjax.mi._entropy import column_ranks, mutual_informations
from ibjax.mi._errors import (
    MIError,
    check_int,
    check_positive_float,
    check_range,
    static_value,
)
from ibjax.mi._kde import kde_bounds
from ibjax.mi._knn import knn_mi
from ibjax.mi._noisy import noisy_mi
from ibjax.mi._renyi import SILVERMAN, renyi_mi

SCALE_RANGE = (1e-30, 1e30)
"""Allowed ``bin_width`` and ``kde_variance``: their inverses are float32 factors."""

MAX_RENYI_ALPHA = 100.0
"""Highest Rényi order: beyond it ``lambda**alpha`` underflows float32 for every eigenvalue."""

NOISE_STD_RANGE = (1e-12, 1e12)
"""Allowed ``noise_std``: the kernels' float32 factor ``1 / (2 beta^2)`` and the squared noise
``(beta z)^2`` stay finite (beta = 1e-20 or 1e20 gave NaN)."""

MAX_KNN_K = 1024
"""Most kNN neighbours (each row keeps its k nearest in a top-k of this length)."""

MAX_BINS = 2**20
"""Most bins (edges) per neuron: more than rows anyone measures on (and the edges are a
table of this length)."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Estimator parameters.

    Attributes:
      num_bins: bin edges for ``binning`` (the paper's 30); bins per neuron for ``equal-mass``.
      bin_range: ``(lo, hi)`` of the ``binning`` edges, or ``"layer"`` for the layer's own
        ``[min, max]`` at each snapshot (needed for ReLU and linear layers).
      bin_width: width of the ``binning-width`` bins, in activation units.
      kde_variance: variance s2 of the Gaussian noise added for the KDE bounds.
      renyi_alpha: the order a > 0 of ``matrix-renyi`` (2: in row blocks, no eigenvalues; any
        other order takes eigenvalues of N x N matrices).
      renyi_sigma: the Gaussian kernel width of ``matrix-renyi``: ``"silverman"`` (per layer and
        for the inputs, from their spread) or a number > 0 used for layers and inputs alike.
      knn_k: neighbours of ``knn``, >= 1 (and below every class's size).
      noise_std: for ``noisy``, the standard deviation beta > 0 of the network's Gaussian noise
        on every hidden unit (None: not set; ``noisy`` needs it).
    """

    num_bins: int = 30
    bin_range: tuple[float, float] | str = (-1.0, 1.0)
    bin_width: float = 0.07
    kde_variance: float = 1e-3
    renyi_alpha: float = 2.0
    renyi_sigma: str | float = SILVERMAN
    knn_k: int = 3
    noise_std: float | None = None

    def checked(self) -> Settings:
        """These settings, validated, with ``bin_range`` as floats.

        Raises:
          MIError: naming the setting and what is allowed.
        """
        check_int("num_bins", self.num_bins, minimum=2, maximum=MAX_BINS)
        if isinstance(self.bin_range, str):
            if self.bin_range != "layer":
                raise MIError(f"bin_range must be 'layer' or a pair (lo, hi); got "
                              f"{self.bin_range!r}")
            bin_range = self.bin_range
        else:
            bin_range = check_range("bin_range", self.bin_range)
        for setting in ("bin_width", "kde_variance"):
            value = getattr(self, setting)
            check_positive_float(setting, value)
            if not SCALE_RANGE[0] <= value <= SCALE_RANGE[1]:  # float32 must hold 1/value
                raise MIError(f"{setting} must be in [{SCALE_RANGE[0]:g}, "
                              f"{SCALE_RANGE[1]:g}], got {value!r}")
        check_positive_float("renyi_alpha", self.renyi_alpha)
        if not self.renyi_alpha <= MAX_RENYI_ALPHA:
            raise MIError(f"renyi_alpha must be in (0, {MAX_RENYI_ALPHA:g}], got "
                          f"{self.renyi_alpha!r}")
        sigma = self.renyi_sigma
        if isinstance(sigma, str):
            if sigma != SILVERMAN:
                raise MIError(f"renyi_sigma must be {SILVERMAN!r} or a number > 0, got "
                              f"{sigma!r}")
        else:
            check_positive_float("renyi_sigma", sigma)
            if not SCALE_RANGE[0] <= sigma <= SCALE_RANGE[1]:
                raise MIError(f"renyi_sigma must be in [{SCALE_RANGE[0]:g}, "
                              f"{SCALE_RANGE[1]:g}], got {sigma!r}")
            sigma = float(sigma)
        check_int("knn_k", self.knn_k, minimum=1, maximum=MAX_KNN_K)
        noise_std = self.noise_std
        if noise_std is not None:
            if isinstance(noise_std, jax.core.Tracer):
                raise MIError("noise_std must be a Python number, not a traced value (it is a "
                              "constant of the compiled estimator)")
            if isinstance(noise_std, (jax.Array, np.ndarray)) and noise_std.ndim == 0:
                noise_std = noise_std.item()  # a concrete scalar array
            check_positive_float("noise_std", noise_std)
            if not NOISE_STD_RANGE[0] <= noise_std <= NOISE_STD_RANGE[1]:
                raise MIError(f"noise_std must be in [{NOISE_STD_RANGE[0]:g}, "
                              f"{NOISE_STD_RANGE[1]:g}], got {noise_std!r}")
            noise_std = float(noise_std)
        return dataclasses.replace(self, num_bins=int(self.num_bins), bin_range=bin_range,
                                   bin_width=float(self.bin_width),
                                   kde_variance=float(self.kde_variance),
                                   renyi_alpha=float(self.renyi_alpha), renyi_sigma=sigma,
                                   knn_k=int(self.knn_k), noise_std=noise_std)


# --------------------------------------------------------------------------- the estimators


def _binning(t_columns, y, num_classes, settings: Settings, x_columns=None):
    """The paper's binning (Shwartz-Ziv & Tishby 2017, arXiv:1703.00810, section 3), bits."""
    if isinstance(settings.bin_range, str):  # "layer"
        digits = layer_range_bins(t_columns, settings.num_bins)
    else:
        digits = bin_indices(t_columns, settings.num_bins, settings.bin_range)
    return mutual_informations(digits, settings.num_bins, y, num_classes)


def _binning_width(t_columns, y, num_classes, settings: Settings, x_columns=None):
    """Bins of fixed width ``floor(t / bin_width)`` on an unbounded range, bits.

    Saxe et al. (2018), "On the information bottleneck theory of deep learning", ICLR: width
    0.07 for the paper task, 0.5 on MNIST.
    """
    digits = dense_width_bins(t_columns, settings.bin_width)
    ixt, ity = mutual_informations(digits, y.shape[0], y, num_classes)
    overflow = width_bins_overflow(t_columns, settings.bin_width)  # bins past float's range
    return jnp.where(overflow, jnp.nan, ixt), jnp.where(overflow, jnp.nan, ity)


def _equal_mass(t_columns, y, num_classes, settings: Settings, x_columns=None):
    """Adaptive equal-mass binning per neuron, ``num_bins`` bins each, bits.

    Chelombiev, Houghton & O'Donnell (2019), "Adaptive estimators show information compression
    in deep neural networks", ICLR.
    """
    digits = equal_mass_bins(t_columns, settings.num_bins)
    return mutual_informations(digits, settings.num_bins, y, num_classes)


def _kde_upper(t_columns, y, num_classes, settings: Settings, x_columns=None):
    """KDE pairwise-KL upper bound (Kolchinsky & Tracey 2017), bits."""
    return kde_bounds(t_columns, y, settings.kde_variance)[0]


def _kde_lower(t_columns, y, num_classes, settings: Settings, x_columns=None):
    """KDE Bhattacharyya lower bound (Kolchinsky & Tracey 2017), bits."""
    return kde_bounds(t_columns, y, settings.kde_variance)[1]


def _matrix_renyi(t_columns, y, num_classes, settings: Settings, x_columns=None):
    """Matrix-based Rényi alpha-entropy MI (Giraldo et al. 2015), bits."""
    return renyi_mi(t_columns, y, x_columns, settings.renyi_alpha, settings.renyi_sigma)


def _knn(t_columns, y, num_classes, settings: Settings, x_columns=None):
    """kNN MI: Ross (2014) for I(T;Y), Kraskov et al. (2004) for I(X;T), bits."""
    return knn_mi(t_columns, y, x_columns, settings.knn_k)


def _exact(t_columns, y, num_classes, settings: Settings, x_columns=None):
    """Exact counting of a discrete layer's states: each unit's distinct values, bits.

    Lorenzen, Igel & Nielsen (2022), "Information bottleneck: exact analysis of (quantized)
    neural networks", ICLR. Each unit's values are replaced by their dense rank (an exact
    relabelling), so two rows share a state exactly when every unit's value is equal.
    """
    digits = column_ranks(jnp.nan_to_num(t_columns, nan=0.0), dense=True)
    return mutual_informations(digits, y.shape[0], y, num_classes)


def _noisy(t_columns, y, num_classes, settings: Settings, x_columns=None):
    raise MIError("estimator 'noisy' needs noisy_samples (m noisy propagations of the inputs "
                  "per layer) and noise_std; see ibjax.mi.estimate")


class Estimator(NamedTuple):
    """A registered estimator.

    Attributes:
      name: registry key.
      columns_fn: ``fn(t[d, N], y[N], num_classes | None, Settings, x[D, N] | None) -> (ixt,
        ity)`` in bits.
      description: one line for help texts.
    """

    name: str
    columns_fn: Callable
    description: str


ESTIMATORS: dict[str, Estimator] = {e.name: e for e in (
    Estimator("binning", _binning,
              "the paper's: num_bins edges on bin_range (fixed, or 'layer')"),
    Estimator("binning-width", _binning_width, "bins of width bin_width, unbounded range"),
    Estimator("equal-mass", _equal_mass, "per neuron, num_bins bins of equal sample counts"),
    Estimator("kde-upper", _kde_upper, "KDE pairwise-KL upper bound, noise kde_variance"),
    Estimator("kde-lower", _kde_lower, "KDE Bhattacharyya lower bound, noise kde_variance"),
    Estimator("matrix-renyi", _matrix_renyi,
              "matrix-based Renyi entropy, order renyi_alpha, kernel width renyi_sigma"),
    Estimator("knn", _knn, "k nearest neighbours (Ross; Kraskov et al.), knn_k neighbours"),
    Estimator("exact", _exact, "exact counting of a quantized layer's states (no bins)"),
    Estimator("noisy", _noisy,
              "sample propagation for noise-injected networks (Goldfeld et al.), noise_std"),
)}
"""The estimators by name (see the module docstring)."""


def check_estimator_names(names: Any) -> tuple[str, ...]:
    """A non-empty sequence of distinct registered names, as a tuple; else :class:`MIError`."""
    allowed = ", ".join(ESTIMATORS)
    if isinstance(names, str) or not isinstance(names, (tuple, list)) or not names:
        raise MIError(f"estimators must be a non-empty list of names from {allowed}; got "
                      f"{names!r}")
    for name in names:
        if name not in ESTIMATORS:
            raise MIError(f"estimators: unknown estimator {name!r}; allowed: {allowed}")
    if len(set(names)) != len(names):
        raise MIError(f"estimators must not repeat a name, got {list(names)}")
    return tuple(names)


# --------------------------------------------------------------------------- entry points


def estimate_columns(t_columns: jax.Array, y: jax.Array, num_classes: int | None,
                     names: Sequence[str], settings: Settings,
                     x_columns: jax.Array | None = None,
                     noisy: tuple[jax.Array, jax.Array] | None = None) -> tuple[
                         jax.Array, jax.Array]:
    """Every estimator in ``names`` on one features-major layer ``t[d, N]`` (and the inputs
    ``x[D, N]`` of the same rows, or ``None``), no checks; the KDE bounds share one kernel
    pass. ``noisy``: ``(samples [m, d, N], key)`` for the ``noisy`` estimator. (The trainer's
    path; use :func:`estimate`.)

    Returns:
      ``(ixt, ity)``, each ``[len(names)]`` float32, bits, in the order of ``names``.
    """
    results, kde = [], None
    for name in names:
        if name in ("kde-upper", "kde-lower"):
            if kde is None:
                kde = kde_bounds(t_columns, y, settings.kde_variance)
            results.append(kde[0] if name == "kde-upper" else kde[1])
        elif name == "noisy":
            if noisy is None:
                _noisy(t_columns, y, num_classes, settings)
            results.append(noisy_mi(noisy[0], y, settings.noise_std, noisy[1]))
        else:
            results.append(ESTIMATORS[name].columns_fn(t_columns, y, num_classes, settings,
                                                       x_columns))
    return (jnp.stack([jnp.asarray(r[0], jnp.float32) for r in results]),
            jnp.stack([jnp.asarray(r[1], jnp.float32) for r in results]))


def estimate(layers: Sequence[jax.Array], y: jax.Array,
             estimators: Sequence[str] = ("binning",), *, x: jax.Array | None = None,
             num_bins: int = 30, bin_range: tuple[float, float] | str = (-1.0, 1.0),
             bin_width: float = 0.07, kde_variance: float = 1e-3, renyi_alpha: float = 2.0,
             renyi_sigma: str | float = SILVERMAN, knn_k: int = 3,
             noise_std: float | None = None, noisy_samples: Sequence[jax.Array] | None = None,
             noise_key: jax.Array | None = None,
             num_classes: int | None = None) -> tuple[jax.Array, jax.Array]:
    """I(X;T) and I(T;Y) in bits of every layer by every estimator, X uniform over the rows.

    Pure and shape-static: call it inside your own ``jax.jit``, ``lax.scan`` and ``jax.vmap``
    (for example over a leading seed axis of every layer). Bad arguments raise
    :class:`MIError`, naming the argument, before anything is traced.

    Args:
      layers: a sequence of L arrays ``[N, d_l]`` (any widths; more axes, e.g.
        ``[N, H, W, C]``, are flattened per row): row i of every layer belongs to input i.
      y: ``[N]`` integer labels, any number of classes.
      estimators: names from :data:`ESTIMATORS`; the two KDE bounds share one kernel pass.
      x: optional ``[N, ...]`` inputs of the same rows (flattened per row), for the
        estimators that compare a layer with its inputs: ``matrix-renyi`` (without ``x``: N
        distinct inputs) and ``knn`` (required). The others ignore it.
      num_bins: bin edges of ``binning`` (30), bins per neuron of ``equal-mass``.
      bin_range: ``(lo, hi)`` of the ``binning`` edges, or ``"layer"`` for each layer's own
        ``[min, max]``.
      bin_width: width of the ``binning-width`` bins.
      kde_variance: noise variance s2 of the KDE bounds.
      renyi_alpha: order of ``matrix-renyi`` (2, or any a in (0, 100]; a != 2 takes the
        eigenvalues of N x N matrices: keep N in the hundreds).
      renyi_sigma: kernel width of ``matrix-renyi``: ``"silverman"`` or a number.
      knn_k: neighbours of ``knn`` (3); every class needs more than ``knn_k`` rows.
      noise_std: for ``noisy``: beta, the standard deviation of the Gaussian noise on every
        hidden unit of the network (the measurement adds it to every layer, the output too).
      noisy_samples: for ``noisy``: one array ``[m, N, ...]`` per layer, the layer's values
        before its own noise in ``m`` propagations of the N inputs with noise in every earlier
        layer (:func:`sample_propagation` makes them from your forward function).
      noise_key: for ``noisy``: a JAX random key for its Monte Carlo draws (default
        ``jax.random.key(0)``; layer l uses ``fold_in(noise_key, l)``).
      num_classes: optional: labels then lie in ``[0, num_classes)`` (faster for the discrete
        estimators); by default any integers (ranked in-graph). Concrete labels outside are
        refused; traced ones give NaN for I(T;Y).

    Returns:
      ``(ixt, ity)``, each ``[len(estimators), L]`` float32, bits. A layer holding a NaN or
      inf gives NaN for that layer only. Layers of float16 or bfloat16 are measured in
      float32, float64 ones in float64. Differentiable: the kernel estimators (KDE bounds,
      ``matrix-renyi``, ``noisy``) have gradients; the counting ones (binning, equal-mass,
      ``exact``, ``knn``) are piecewise constant, with gradient 0.
    """
    names = check_estimator_names(estimators)
    if num_classes is not None:  # a constant of the program: a Python int from here on
        check_int("num_classes", num_classes, minimum=1)
        num_classes = int(static_value("num_classes", num_classes))
    settings = Settings(num_bins, bin_range, bin_width, kde_variance, renyi_alpha, renyi_sigma,
                        knn_k, noise_std).checked()
    if isinstance(layers, (jax.Array, np.ndarray, str)) or not isinstance(layers, Sequence):
        raise MIError("layers must be a non-empty sequence (list or tuple) of [N, d] arrays, "
                      f"one per layer; got {type(layers).__name__}")
    if not layers:
        raise MIError("layers must hold at least one [N, d] array; got an empty sequence")
    columns, labels = [], None
    for index, layer in enumerate(layers):
        shape = getattr(layer, "shape", None)
        if columns and shape and shape[0] != columns[0].shape[1]:
            raise MIError(f"layers[{index}] has {shape[0]} rows and layers[0] "
                          f"{columns[0].shape[1]}: every layer needs one row per input")
        t, labels = _check_layer(f"layers[{index}]", layer, y, num_classes)
        if math.prod(t.shape[1:]) == 0:
            raise MIError(f"layers[{index}] has no units (shape {t.shape}); every layer needs "
                          "at least one value per row")
        columns.append(t.reshape(t.shape[0], -1).T)
    x_columns = None
    if x is not None:
        x_shape = getattr(x, "shape", None)
        if x_shape and len(x_shape) >= 1 and x_shape[0] != columns[0].shape[1]:
            raise MIError(f"x has {x_shape[0]} rows and layers[0] {columns[0].shape[1]}: x "
                          "needs one row (the input) per row of the layers")
        if x_shape is not None and len(x_shape) == 1:  # one input value per row
            x = jnp.asarray(x)[:, None]
        x_array, _ = _check_layer("x", x, y, num_classes)
        if not isinstance(x, jax.core.Tracer) and not np.isfinite(
                np.asarray(x, np.float64)).all():
            raise MIError("x must hold finite inputs; it holds NaN or inf")
        x_columns = x_array.reshape(x_array.shape[0], -1).T
    elif "knn" in names:
        raise MIError("estimator 'knn' needs x, the [N, ...] inputs of the rows (for "
                      "I(X;T) by Kraskov et al.)")
    if "knn" in names:
        check_knn_classes(y, settings.knn_k)
    samples = _check_noisy_samples(names, settings, noisy_samples, columns)
    if "noisy" in names:
        noise_key = jax.random.key(0) if noise_key is None else _check_key("noise_key",
                                                                           noise_key)
    # Traced labels cannot be checked against num_classes before tracing: outside, NaN.
    labels_fit = jnp.asarray(True) if num_classes is None or not isinstance(
        y, jax.core.Tracer) else jnp.all((labels >= 0) & (labels < num_classes))
    ixt, ity = [], []
    for index, t_columns in enumerate(columns):
        noisy = None if samples is None else (samples[index],
                                              jax.random.fold_in(noise_key, index))
        layer_ixt, layer_ity = estimate_columns(t_columns, labels, num_classes, names, settings,
                                                x_columns, noisy)
        finite = jnp.all(jnp.isfinite(t_columns))
        ixt.append(jnp.where(finite, layer_ixt, jnp.nan))
        ity.append(jnp.where(finite & labels_fit, layer_ity, jnp.nan))
    return jnp.stack(ixt, axis=1), jnp.stack(ity, axis=1)


def mutual_information(t: jax.Array, y: jax.Array, estimator: str = "binning", *,
                       x: jax.Array | None = None, num_classes: int | None = None,
                       num_bins: int = 30, bin_range: tuple[float, float] | str = (-1.0, 1.0),
                       bin_width: float = 0.07, kde_variance: float = 1e-3,
                       renyi_alpha: float = 2.0, renyi_sigma: str | float = SILVERMAN,
                       knn_k: int = 3, noise_std: float | None = None,
                       noisy_samples: jax.Array | None = None,
                       noise_key: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """:func:`estimate` of one layer ``t[N, d]`` by one estimator: float32 scalars, bits
    (``noisy_samples``: the layer's ``[m, N, ...]`` samples for ``noisy``)."""
    _check_layer("t", t, y, num_classes)
    if estimator == "noisy" and noisy_samples is None:
        raise MIError("estimator 'noisy' needs noisy_samples: the layer's [m, N, ...] values "
                      "before its own noise in m noisy propagations (see "
                      "ibjax.mi.sample_propagation)")
    ixt, ity = estimate([t], y, (estimator,), x=x, num_bins=num_bins, bin_range=bin_range,
                        bin_width=bin_width, kde_variance=kde_variance,
                        renyi_alpha=renyi_alpha, renyi_sigma=renyi_sigma, knn_k=knn_k,
                        noise_std=noise_std,
                        noisy_samples=None if noisy_samples is None else [noisy_samples],
                        noise_key=noise_key, num_classes=num_classes)
    return ixt[0, 0], ity[0, 0]


def binned_mi(t: jax.Array, y: jax.Array, num_bins: int = 30,
              value_range: tuple[float, float] = (-1.0, 1.0),
              num_classes: int | None = None) -> tuple[jax.Array, jax.Array]:
    """The paper's binning of one layer ``t[N, d]``: :func:`mutual_information` with
    ``estimator="binning"`` and ``bin_range=value_range``. Float32 scalars, bits."""
    return mutual_information(t, y, "binning", num_classes=num_classes, num_bins=num_bins,
                              bin_range=check_range("value_range", value_range))


def sample_propagation(forward: Callable[[jax.Array], Sequence[jax.Array]], key: jax.Array,
                       num_samples: int) -> list[jax.Array]:
    """``num_samples`` noisy propagations, the ``noisy_samples`` of :func:`estimate`.

    Args:
      forward: ``forward(key) -> [layer, ...]``: your network on the N inputs with fresh
        Gaussian noise (drawn from ``key``) added to every hidden unit, returning each measured
        layer's value *before* its own noise (``[N, ...]`` each); the noisy values feed the
        next layer. Pure and traceable (it is vmapped over keys).
      key: a JAX random key.
      num_samples: m >= 1 propagations.

    Returns:
      One ``[m, N, ...]`` array per layer.
    """
    check_int("num_samples", num_samples, minimum=1)
    if not callable(forward):
        raise MIError(f"forward must be a function key -> [layer, ...], got "
                      f"{type(forward).__name__}")
    keys = jax.random.split(_check_key("key", key), num_samples)
    layers = jax.vmap(forward)(keys)
    if not isinstance(layers, (list, tuple)) or not layers:
        raise MIError(f"forward must return a list of layers [N, ...] (one per measured layer), "
                      f"got {type(layers).__name__}")
    return list(layers)


def _check_key(name: str, key: Any) -> jax.Array:
    """A JAX random key (typed, or a legacy ``uint32[2]``); else :class:`MIError` naming it."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and (jnp.issubdtype(dtype, jax.dtypes.prng_key) or (
            dtype == jnp.uint32 and getattr(key, "shape", None) == (2,))):
        return key
    raise MIError(f"{name} must be a JAX random key (e.g. jax.random.key(0)), got "
                  f"{type(key).__name__}")


def _check_noisy_samples(names: tuple[str, ...], settings: Settings,
                         noisy_samples: Any, columns: list[jax.Array]) -> list[jax.Array] | None:
    """The ``noisy`` estimator's samples, features-major ``[m, d, N]`` per layer, checked
    against the layers (``columns``, each ``[d, N]``); None without ``noisy``."""
    if "noisy" not in names:
        return None
    if settings.noise_std is None:
        raise MIError("estimator 'noisy' needs noise_std, the standard deviation of the "
                      "network's Gaussian noise on every hidden unit")
    if not isinstance(noisy_samples, (list, tuple)) or len(noisy_samples) != len(columns):
        raise MIError(f"estimator 'noisy' needs noisy_samples: a list of {len(columns)} arrays "
                      f"[m, N, ...], one per layer (see ibjax.mi.sample_propagation)")
    samples = []
    for index, (sample, t_columns) in enumerate(zip(noisy_samples, columns, strict=True)):
        sample = _as_array(f"noisy_samples[{index}]", sample)
        width, rows = t_columns.shape
        if sample.ndim < 3 or sample.shape[0] < 1 or sample.shape[1] != rows or math.prod(
                sample.shape[2:]) != width:
            raise MIError(f"noisy_samples[{index}] must have shape [m, {rows}, ...] with "
                          f"{width} values per row (like layers[{index}]), got {sample.shape}")
        sample = as_float(sample)
        samples.append(jnp.swapaxes(sample.reshape(sample.shape[0], rows, width), 1, 2))
    return samples


def check_knn_classes(y: Any, k: int, error: type[ValueError] = MIError) -> None:
    """Refuses ``knn_k = k`` unless every class of the labels ``y`` (when concrete, not traced)
    has more than ``k`` rows: Ross's estimator takes each row's k-th neighbour of its own
    class. (Traced labels are not checked here; a class too small gives NaN.)"""
    if isinstance(y, jax.core.Tracer):
        return
    labels, counts = np.unique(np.asarray(y), return_counts=True)
    if counts.size and counts.min() <= k:
        smallest = labels[np.argmin(counts)]
        raise error(f"knn_k={k} needs more than {k} rows in every class; class {smallest} has "
                    f"{counts.min()} ({'lower knn_k or ' if k > 1 else ''}measure on more "
                    f"rows)")


def _check_layer(name: str, t: Any, y: Any, num_classes: Any) -> tuple[jax.Array, jax.Array]:
    """One layer ``[N, ...]``, labels ``[N]`` and ``num_classes`` checked; returns the layer as
    float and the labels as int32. Raises :class:`MIError` naming the argument.

    Labels that are concrete arrays (not traced) are also checked for values: within int32,
    and within ``[0, num_classes)`` when ``num_classes`` is given.
    """
    t = _as_array(name, t)
    y_given = y
    y = _as_array("y", y)
    if t.ndim < 2:
        raise MIError(f"{name} must have shape [N, d] (one row per input), got {t.shape}")
    if t.shape[0] == 0:
        raise MIError(f"{name} must have at least one row (one per input), got shape {t.shape}")
    if y.ndim != 1 or y.shape[0] != t.shape[0]:
        raise MIError(f"y must have shape [N] matching {name}'s N={t.shape[0]}, got {y.shape}")
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise MIError(f"y must hold integer labels, got dtype {y.dtype}")
    if num_classes is not None:
        check_int("num_classes", num_classes, minimum=1)
    if not isinstance(y_given, jax.core.Tracer):
        values = np.asarray(y_given)
        info = np.iinfo(np.int32)
        if values.size and (values.min() < info.min or values.max() > info.max):
            raise MIError(f"y must hold labels within int32, got values from {values.min()} "
                          f"to {values.max()}")
        if num_classes is not None and values.size and (
                values.min() < 0 or values.max() >= num_classes):
            raise MIError(f"y must hold labels in [0, num_classes={num_classes}) when "
                          f"num_classes is given, got values from {values.min()} to "
                          f"{values.max()}")
    return as_float(t), y.astype(jnp.int32)


def as_float(values: jax.Array) -> jax.Array:
    """``values`` in the dtype the estimators compute in: float32, or float64 as given.
    Integers and half-precision floats (float16, bfloat16, float8) become float32 (exactly:
    float32 holds each of their values), so an estimate depends on the values, not on the
    dtype they arrive in."""
    if jnp.issubdtype(values.dtype, jnp.floating) and values.dtype.itemsize >= 4:
        return values
    return values.astype(jnp.float32)


def _as_array(name: str, value: Any) -> jax.Array:
    """``value`` as a jax array of numbers (complex refused); else :class:`MIError`."""
    try:
        array = jnp.asarray(value)
    except (TypeError, ValueError) as err:
        raise MIError(f"{name} must be an array of numbers, got {type(value).__name__} "
                      f"({err})") from None
    if jnp.issubdtype(array.dtype, jnp.complexfloating):
        raise MIError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array
