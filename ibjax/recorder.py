"""Measuring the information plane inside your own training loop.

Build a recorder on the host, then call its pure functions inside your own ``jit``,
``lax.scan`` and ``vmap`` over seeds; the measurements collect in a preallocated buffer on the
device, and one host call turns the buffers of all seeds into the results file that
``ibjax.run`` writes (same variables, dimensions and attributes), so ``ibjax plot``,
``ibjax info``, :mod:`ibjax.phases` and ``ibjax merge`` work on it unchanged::

    recorder = ibjax.make_recorder(snapshot_epochs, y_mi, ("binning", "kde-upper"),
                                   layer_names=("conv 1", "conv 2", "dense", "softmax"))

    def train(key):                                   # your code, one seed
        def step(carry, e):       # the network after e epochs: record it, then train on
            params, buffer = carry
            buffer = recorder.record(buffer, e, layers_on_mi_rows(params))
            return (train_one_epoch(params, e), buffer), None
        carry = (init(key), recorder.init())
        (params, buffer), _ = jax.lax.scan(step, carry, jnp.arange(E + 1))
        return buffer

    buffers = jax.jit(jax.vmap(train))(keys)           # nothing leaves the device here
    ibjax.save(recorder.to_dataset(buffers), "results.nc")

Quantized networks: quantize your layers with :func:`ibjax.quantize` and pass
``quantize=K`` (the bits) to measure them with ``"exact"``. Noise-injected networks: pass
``noise_std=beta`` and give ``record`` a ``noisy_forward(key) -> layers``, your network on the
MI rows with fresh N(0, beta^2) noise on every hidden layer, returning each layer before its
own noise (a closure over the current parameters); ``"noisy"`` calls it ``noise_samples``
times, at the snapshot epochs only.

``record`` measures only when ``epoch`` is one of the snapshot epochs (a ``lax.cond``; keep
the epoch the same for every seed, as a loop counter is, so that under ``vmap`` the other
epochs cost nothing). Call it from one place in your loop: every call site compiles its own
copy of the estimators. Where JAX's default backend is a CPU, the discrete estimators count
with ibjax's native routine (:mod:`ibjax.native_counting`; the same bits as the sorts of
:mod:`ibjax.mi`, a smaller program), as the runner's do; the results' ``discrete_counting``
attribute says which way they counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ibjax.config import Config, ConfigError, snapshot_epochs
from ibjax.mi import MIError
from ibjax.mi import estimate as estimate_mi
from ibjax.mi._estimators import check_knn_classes, sample_propagation
from ibjax.native_counting import discrete_counting_for, native_routines


class RecorderState(NamedTuple):
    """The on-device buffer of one network (``vmap`` adds a leading seed axis).

    Attributes:
      ixt: ``[num_snapshots, num_estimators, num_layers]`` I(X;T), bits; NaN until recorded.
      ity: same shape, I(T;Y), bits.
      grad_mean: ``[num_snapshots, num_layers]`` norm of the mean minibatch weight gradient.
      grad_std: ``[num_snapshots, num_layers]`` norm of its standard deviation.
      train_loss, train_accuracy, test_loss, test_accuracy: ``[num_snapshots]``.
      layer_widths: ``[num_layers]`` int32 units per sample of each layer (set when recorded).
    """

    ixt: jax.Array
    ity: jax.Array
    grad_mean: jax.Array
    grad_std: jax.Array
    train_loss: jax.Array
    train_accuracy: jax.Array
    test_loss: jax.Array
    test_accuracy: jax.Array
    layer_widths: jax.Array


class Recorder(NamedTuple):
    """Pure functions for your own loop, and a host function for the results; see the module
    docstring and :func:`make_recorder`.

    Attributes:
      init: ``init() -> RecorderState``, NaN everywhere.
      record: ``record(state, epoch, layers, *, grad_mean=None, grad_std=None,
        train_loss=None, train_accuracy=None, test_loss=None, test_accuracy=None,
        noisy_forward=None, noise_key=None) -> RecorderState``: if ``epoch`` (a scalar int,
        traced or not) is a snapshot epoch, measures every estimator on ``layers`` (L arrays
        ``[N, ...]``, the MI rows) and writes it, and whichever of the optional values are given
        (``grad_mean``, ``grad_std``: ``[L]``, e.g. from :func:`gradient_stats`; the others
        scalars), into that snapshot's slot. ``noisy_forward`` (required with ``"noisy"``): see
        the module docstring; ``noise_key``: that network's key (default ``key(0)``), folded
        with the epoch.
      measure: ``measure(layers, noisy_forward=None, noise_key=None) -> (ixt, ity)``, each
        ``[num_estimators, L]`` bits: the measurement alone (:func:`ibjax.mi.estimate` with
        the recorder's settings).
      to_dataset: ``to_dataset(states, seeds=None, diverged_epoch=None, info=None) ->
        xarray.Dataset`` on the host: ``states`` with a leading seed axis (as ``vmap``
        returns them) or of one network; ``seeds`` their indices (default ``0..S-1``).
        Variables never recorded (NaN for every seed) are left out of the file.
      snapshot_epochs: the epochs measured, in order.
      config: the :class:`~ibjax.config.Config` stored with the results (``model`` and
        ``dataset`` name your model and data).
    """

    init: Callable[[], RecorderState]
    record: Callable[..., RecorderState]
    measure: Callable[[Sequence[jax.Array]], tuple[jax.Array, jax.Array]]
    to_dataset: Callable[..., Any]
    snapshot_epochs: tuple[int, ...]
    config: Config


def make_recorder(snapshots: Sequence[int] | str, y, estimators: Sequence[str] = ("binning",),
                  *, layer_names: Sequence[str], x=None, num_epochs: int | None = None,
                  num_bins: int = 30, bin_range: tuple[float, float] | str = (-1.0, 1.0),
                  bin_width: float = 0.07, kde_variance: float = 1e-3,
                  renyi_alpha: float = 2.0, renyi_sigma: str | float = "silverman",
                  knn_k: int = 3, quantize: int | None = None,
                  noise_std: float | None = None, noise_samples: int = 8,
                  model_name: str = "model", data_name: str = "data") -> Recorder:
    """A :class:`Recorder` (built on the host; its ``init``/``record`` are pure).

    Args:
      snapshots: the epochs to measure: a sequence of epochs (0 = before training; measured
        in increasing order, each once), or a schedule name (``"log"``, ``"log:N"``,
        ``"every:K"``) with ``num_epochs``.
      y: ``[N]`` integer labels of the rows the layers are measured on (the MI rows).
      estimators: names from :data:`ibjax.mi.ESTIMATORS`.
      layer_names: one name per measured layer, input to output (their number is L).
      x: optional ``[N, ...]`` inputs of the MI rows, for the estimators that compare a layer
        with its inputs (``matrix-renyi``; ``knn`` requires them). Kept on the device.
      num_epochs: the run's length (required with a schedule name; default the last snapshot).
      num_bins, bin_range, bin_width, kde_variance, renyi_alpha, renyi_sigma, knn_k: estimator
        settings, see :func:`ibjax.mi.estimate`.
      quantize: the bits your network's layers are quantized to (:func:`ibjax.quantize`);
        needed for ``"exact"``, stored with the results.
      noise_std: beta of your network's Gaussian noise on every hidden unit; needed for
        ``"noisy"``, stored with the results.
      noise_samples: m, noisy propagations per snapshot for ``"noisy"`` (8).
      model_name, data_name: stored in the results' configuration as ``model="own:NAME"`` and
        ``dataset="arrays:NAME"``.

    Raises:
      ConfigError: a bad argument, naming it, before anything is traced.
    """
    if isinstance(snapshots, str):
        if num_epochs is None:
            raise ConfigError(f"snapshots={snapshots!r} needs num_epochs")
        epochs = snapshot_epochs(snapshots, num_epochs)
    else:
        try:
            epochs = tuple(sorted({int(e) for e in snapshots}))
        except (TypeError, ValueError):
            raise ConfigError(f"snapshots must be a sequence of epochs or a schedule name, got "
                              f"{snapshots!r}") from None
        if not epochs or epochs[0] < 0:
            raise ConfigError(f"snapshots must hold at least one epoch >= 0, got {snapshots!r}")
        num_epochs = max(epochs[-1], 1) if num_epochs is None else num_epochs
        snapshot_epochs(epochs, num_epochs)  # epochs beyond num_epochs are refused here
    labels = np.asarray(y)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or labels.size < 1:
        raise ConfigError(f"y must be [N] integer labels of the MI rows, got shape "
                          f"{labels.shape}, dtype {labels.dtype}")
    if isinstance(layer_names, str) or not layer_names:
        raise ConfigError(f"layer_names must be a non-empty sequence of names, got "
                          f"{layer_names!r}")
    layer_names = tuple(str(name) for name in layer_names)
    if len(set(layer_names)) != len(layer_names):
        twice = sorted({name for name in layer_names if layer_names.count(name) > 1})
        raise ConfigError(f"layer_names must be distinct (they label the results' layers); "
                          f"{twice} appear more than once")
    config = Config(num_seeds=1, num_epochs=int(num_epochs), model=f"own:{model_name}",
                    hidden=(), snapshots=epochs, dataset=f"arrays:{data_name}",
                    estimators=tuple(estimators) if not isinstance(estimators, str) else (
                        estimators,),
                    num_bins=num_bins, bin_width=bin_width, kde_variance=kde_variance,
                    renyi_alpha=renyi_alpha, renyi_sigma=renyi_sigma, knn_k=knn_k,
                    quantize=quantize, noise_std=noise_std, noise_samples=noise_samples,
                    bin_range=bin_range if isinstance(bin_range, str) else tuple(bin_range))
    config.validate()  # the estimator settings, named
    if config.bin_range == "auto":
        raise ConfigError("bin_range must be (lo, hi) or 'layer' (a recorder does not know "
                          "the activation)")
    settings = config.estimator_settings()
    names = config.estimators
    y_device = jnp.asarray(labels, jnp.int32)
    x_device = None
    if x is not None:
        x_host = np.asarray(x)
        if x_host.ndim == 1:  # one input value per row
            x_host = x_host[:, None]
        if x_host.shape[0] != labels.size or not (
                np.issubdtype(x_host.dtype, np.number)):
            raise ConfigError(f"x must be [N, ...] numeric inputs of the {labels.size} MI rows, "
                              f"got shape {x_host.shape}, dtype {x_host.dtype}")
        if not np.isfinite(x_host).all():
            raise ConfigError("x must hold finite inputs of the MI rows; it holds NaN or inf")
        x_device = jnp.asarray(x_host.reshape(labels.size, -1), jnp.float32)
    elif "knn" in config.estimators:
        raise ConfigError("estimator 'knn' needs x, the [N, ...] inputs of the MI rows")
    if "knn" in config.estimators:
        try:
            check_knn_classes(labels, config.knn_k)
        except MIError as err:
            raise ConfigError(str(err)) from None
    num_classes = int(np.unique(labels).size)
    dense = labels.min() >= 0 and labels.max() < num_classes  # labels 0..C-1: faster path
    epochs_device = jnp.asarray(epochs, jnp.int32)
    num_snapshots, num_layers, num_estimators = len(epochs), len(layer_names), len(names)
    counted = {}  # how the discrete estimators counted when last traced, for the results

    def init() -> RecorderState:
        nan = jnp.float32(jnp.nan)
        return RecorderState(
            ixt=jnp.full((num_snapshots, num_estimators, num_layers), nan),
            ity=jnp.full((num_snapshots, num_estimators, num_layers), nan),
            grad_mean=jnp.full((num_snapshots, num_layers), nan),
            grad_std=jnp.full((num_snapshots, num_layers), nan),
            train_loss=jnp.full(num_snapshots, nan), train_accuracy=jnp.full(num_snapshots, nan),
            test_loss=jnp.full(num_snapshots, nan), test_accuracy=jnp.full(num_snapshots, nan),
            layer_widths=jnp.zeros(num_layers, jnp.int32))

    def check_noisy_forward(noisy_forward) -> None:
        if "noisy" in names and not callable(noisy_forward):
            raise ConfigError("estimator 'noisy' needs noisy_forward: a function key -> layers "
                              "running your network on the MI rows with fresh noise on every "
                              "hidden layer, returning each layer before its own noise")

    def measure(layers: Sequence[jax.Array], noisy_forward=None,
                noise_key=None) -> tuple[jax.Array, jax.Array]:
        if not isinstance(layers, (list, tuple)) or len(layers) != num_layers:
            raise ConfigError(f"layers must be a list of {num_layers} arrays (one per name in "
                              f"layer_names), got {type(layers).__name__} of "
                              f"{len(layers) if isinstance(layers, (list, tuple)) else '?'}")
        for index, layer in enumerate(layers):
            rows = np.shape(layer)[0] if np.ndim(layer) else None
            if rows != labels.size:
                raise ConfigError(f"layers[{index}] has shape {np.shape(layer)}: the recorder "
                                  f"measures the {labels.size} rows of its y (make_recorder's "
                                  f"y), so every layer needs [{labels.size}, ...]")
        check_noisy_forward(noisy_forward)
        samples = None
        if "noisy" in names:
            noise_key = jax.random.key(0) if noise_key is None else noise_key
            try:
                samples = sample_propagation(noisy_forward, jax.random.fold_in(noise_key, 0),
                                             config.noise_samples)
            except MIError as err:
                raise ConfigError(f"noisy_forward: {err}") from None
            for index, (sample, layer) in enumerate(zip(samples, layers, strict=False)):
                if len(samples) != num_layers or np.shape(sample)[1:] != np.shape(layer):
                    raise ConfigError(
                        f"noisy_forward must return {num_layers} layers shaped like the "
                        f"recorded ones; it returned {len(samples)}, layer {index} of shape "
                        f"{np.shape(sample)[1:]} where the recorded one is {np.shape(layer)}")
            noise_key = jax.random.fold_in(noise_key, 1)
        counted["discrete_counting"] = discrete_counting_for(jax.default_backend())
        try:
            with native_routines(counted["discrete_counting"]):  # read while tracing
                return estimate_mi(
                    layers, y_device, names, x=x_device, num_bins=settings.num_bins,
                    bin_range=settings.bin_range, bin_width=settings.bin_width,
                    kde_variance=settings.kde_variance, renyi_alpha=settings.renyi_alpha,
                    renyi_sigma=settings.renyi_sigma, knn_k=settings.knn_k,
                    noise_std=settings.noise_std, noisy_samples=samples, noise_key=noise_key,
                    num_classes=num_classes if dense else None)
        except MIError as err:
            raise ConfigError(str(err)) from None

    def record(state: RecorderState, epoch, layers: Sequence[jax.Array], *,
               grad_mean=None, grad_std=None, train_loss=None, train_accuracy=None,
               test_loss=None, test_accuracy=None, noisy_forward=None,
               noise_key=None) -> RecorderState:
        widths = jnp.asarray([int(np.prod(np.shape(t)[1:])) for t in layers], jnp.int32) \
            if isinstance(layers, (list, tuple)) else None
        for name, value, shape in (("grad_mean", grad_mean, (num_layers,)),
                                   ("grad_std", grad_std, (num_layers,)),
                                   ("train_loss", train_loss, ()),
                                   ("train_accuracy", train_accuracy, ()),
                                   ("test_loss", test_loss, ()),
                                   ("test_accuracy", test_accuracy, ())):
            if value is not None and np.shape(value) != shape:
                raise ConfigError(f"{name} must have shape {shape}"
                                  f"{' (one per layer)' if shape else ' (a scalar)'}, got "
                                  f"{np.shape(value)}")
        if not jnp.issubdtype(jnp.asarray(epoch).dtype, jnp.integer) or np.shape(epoch) != ():
            raise ConfigError(f"epoch must be a scalar integer (the epochs trained so far), got "
                              f"{epoch!r}")
        check_noisy_forward(noisy_forward)
        epoch = jnp.asarray(epoch, jnp.int32)
        index = jnp.clip(jnp.searchsorted(epochs_device, epoch), 0, num_snapshots - 1)
        snapshot_key = None if noise_key is None else jax.random.fold_in(noise_key, epoch)
        if snapshot_key is None and "noisy" in names:
            snapshot_key = jax.random.fold_in(jax.random.key(0), epoch)

        def write(state: RecorderState) -> RecorderState:
            ixt, ity = measure(layers, noisy_forward, snapshot_key)
            changes = {"ixt": state.ixt.at[index].set(ixt),
                       "ity": state.ity.at[index].set(ity), "layer_widths": widths}
            for name, value in (("grad_mean", grad_mean), ("grad_std", grad_std),
                                ("train_loss", train_loss),
                                ("train_accuracy", train_accuracy), ("test_loss", test_loss),
                                ("test_accuracy", test_accuracy)):
                if value is not None:
                    changes[name] = getattr(state, name).at[index].set(
                        jnp.asarray(value, jnp.float32))
            return state._replace(**changes)

        return jax.lax.cond(epochs_device[index] == epoch, write, lambda s: s, state)

    def to_dataset(states: RecorderState, seeds=None, diverged_epoch=None, info=None):
        from ibjax.hardware import hardware_info
        from ibjax.results import VARIABLES
        from ibjax.results import to_dataset as results_dataset

        if not isinstance(states, RecorderState):
            raise ConfigError(f"states must be the RecorderState that record returned, got "
                              f"{type(states).__name__}")
        host = jax.tree.map(np.asarray, jax.device_get(states))
        if host.ixt.ndim == 3:  # one network, no seed axis
            host = jax.tree.map(lambda a: a[None], host)
        if host.ixt.ndim != 4:
            raise ConfigError(f"states must have one leading seed axis (as one jax.vmap gives "
                              f"them), got ixt of shape {host.ixt.shape}: reshape them to "
                              f"[seeds, ...] first")
        if np.isnan(host.ixt).all():
            raise ConfigError("nothing was recorded: every I(X;T) of every network is NaN "
                              "(was record called at the snapshot epochs? a layer holding NaN "
                              "or inf also measures as NaN)")
        num_seeds = host.ixt.shape[0]
        seeds = np.arange(num_seeds) if seeds is None else np.asarray(seeds)
        if seeds.shape != (num_seeds,) or not np.issubdtype(seeds.dtype, np.integer) or len(
                set(seeds.tolist())) != num_seeds:
            raise ConfigError(f"seeds must be {num_seeds} distinct integers, one per network, "
                              f"got {seeds!r}")
        widths = tuple(int(w) for w in host.layer_widths.max(axis=0))
        arrays = {name: getattr(host, name) for name in VARIABLES if hasattr(host, name) and (
            name in ("ixt", "ity") or not np.isnan(getattr(host, name)).all())}
        details = {"mi_rows": int(labels.size), "num_classes": num_classes,
                   "recorded_by": "ibjax.make_recorder", **counted, **hardware_info(),
                   **(info or {})}
        return results_dataset(config.replace(num_seeds=num_seeds), seeds, np.asarray(epochs),
                               widths, arrays, details, diverged_epoch=diverged_epoch,
                               layer_names=layer_names)

    return Recorder(init, record, measure, to_dataset, epochs, config)


def gradient_stats(kernels: Sequence[jax.Array]) -> tuple[jax.Array, jax.Array]:
    """Per layer, the norm of the mean and of the standard deviation of minibatch gradients.

    The paper's Figure 4: over the B minibatches of an epoch, ``mean = ||(1/B) sum_b g_b||``
    and ``std = sqrt((1/B) sum_b ||g_b - mean_b g||^2)``.

    Args:
      kernels: one array per layer, ``[B, ...]``: that layer's weight gradient for each of
        the epoch's minibatches (e.g. the stacked output of a ``lax.scan`` over minibatches).

    Returns:
      ``(grad_mean, grad_std)``, each ``[num_layers]`` float32.
    """
    means, stds = [], []
    for g in kernels:
        g = g.reshape(g.shape[0], -1)
        g_mean = jnp.mean(g, axis=0)
        means.append(jnp.linalg.norm(g_mean))
        stds.append(jnp.sqrt(jnp.mean(jnp.sum((g - g_mean[None]) ** 2, axis=-1))))
    return jnp.stack(means), jnp.stack(stds)
