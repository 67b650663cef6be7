"""Run configuration: one frozen, validated dataclass and the authors' preset.

Every field is checked by :meth:`Config.validate` before anything is compiled; a bad value
raises :class:`ConfigError` naming the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from ibjax.mi import ESTIMATORS, MIError, Settings
from ibjax.mi._errors import check_int, check_positive_float, check_range
from ibjax.mi._estimators import NOISE_STD_RANGE

ACTIVATIONS = ("tanh", "relu", "linear")
OPTIMIZERS = ("adam", "sgd")
SPLITS = ("random", "first")
LAYER_PRODUCTS = ("auto", "matmul", "broadcast", "native")  # see ibjax.model.layer_products
TRAINING_KERNELS = ("xla", "fused")  # see ibjax.fused_epoch
FUSED_MAX_WEIGHTS = 1024
"""The largest MLP (weights, biases not counted) ``training_kernel="fused"`` trains: its kernel
writes out one multiply-add per weight, so its size and compile time grow with them."""
DATASETS = ("var_u", "digits")
MODELS = ("mlp", "cnn")
DEFAULT_HIDDEN = {"mlp": (10, 7, 5, 4, 3), "cnn": (8, 16, 32)}
# Minibatch size by model: the paper's 512 for its MLP; 128 for the CNN (8 seeds of it on the
# digits reach a median test accuracy of 0.97 in 100 epochs, 0.89 with 512).
DEFAULT_BATCH_SIZE = {"mlp": 512, "cnn": 128}
ESTIMATOR_NAMES = tuple(ESTIMATORS)
MAX_NOISE_SAMPLES = 1024
"""Most noisy propagations per snapshot for the ``noisy`` estimator."""


class ConfigError(ValueError):
    """A configuration value, or an input of a run, is not allowed; the message names it."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that defines a run. Hashable: equal configs share one compiled program.

    Attributes:
      num_seeds: number of networks trained at once, one per seed index ``0..num_seeds-1``.
      seed: base seed; network ``i`` uses ``fold_in(key(seed), i)`` whatever the batch.
      num_epochs: training epochs per network.
      model: the network: ``"mlp"`` (the paper's fully connected network) or ``"cnn"`` (a
        small convolutional network for images: conv-pool-conv-pool-dense-dense, see
        :class:`ibjax.model.CNN`). ``"own:NAME"`` marks results of a user's own flax module
        (``ibjax.run(model=...)``) or training loop (:func:`ibjax.make_recorder`).
      hidden: for ``mlp``, the hidden-layer widths (default the paper's ``(10, 7, 5, 4, 3)``);
        for ``cnn``, the two convolutions' channels and the dense layer's width (default
        ``(8, 16, 32)``).
      activation: hidden activation, one of ``tanh``, ``relu``, ``linear``.
      optimizer: ``adam`` or ``sgd`` (optax).
      learning_rate: step size, or a tuple of step sizes: then every seed is trained with each
        of them (same initial network), all in the same compiled program, and the results gain
        a ``learning_rate`` dimension.
      batch_size: minibatch size in samples, or ``None`` for full batch (default: the paper's
        512 for ``mlp``, 128 for ``cnn``). A last partial batch is used, as in the authors'
        code (weighted as one batch of its own size).
      train_fraction: fraction of the data's rows ``x`` used for training, in (0, 1]. ``None``
        (default): 0.8 for data without a separate test set (``var_u``: the rest is the test
        set), 1.0 for data with one (e.g. MNIST: all training rows train).
      split: ``random`` (a fresh random split per seed) or ``first`` (the first rows train, as
        the authors' code does).
      shuffle: reshuffle the training set before every epoch (per seed). ``False`` gives the
        authors' contiguous, unshuffled batches.
      estimators: names of the mutual-information estimators computed at every snapshot, in
        the same compiled program (see :mod:`ibjax.mi`): ``binning`` (the paper's),
        ``binning-width``, ``equal-mass``, ``kde-upper``, ``kde-lower``, ``matrix-renyi``,
        ``knn``, ``exact`` (needs ``quantize``), ``noisy`` (needs ``noise_std``). Results
        gain an ``estimator`` dimension in this order.
      num_bins: number of bin *edges* for ``binning`` (the paper's 30); bins per neuron for
        ``equal-mass``.
      bin_range: ``(lo, hi)`` of the ``binning`` edges; ``"layer"``: each layer's own
        ``[min, max]`` at each snapshot; ``"auto"`` (default): ``(-1, 1)`` for tanh networks
        (the paper's), ``"layer"`` for relu and linear ones, whose activations are unbounded
        (a fixed ``(-1, 1)`` would put every value above 1 into one bin).
      bin_width: bin width of ``binning-width`` (Saxe et al. used 0.07 on this task).
      kde_variance: noise variance s2 of the KDE bounds (Saxe et al.: 1e-3 on this task).
      renyi_alpha: order of ``matrix-renyi`` (2: no eigenvalues, O(N^2 d) in row blocks; any
        other order in (0, 100] takes eigenvalues of N x N matrices, so measure on a few
        hundred rows with ``mi_samples``).
      renyi_sigma: kernel width of ``matrix-renyi``: ``"silverman"`` (per layer and for the
        inputs, from their spread) or a number used for layers and inputs alike.
      knn_k: neighbours of ``knn`` (3); every class of the MI rows needs more rows than this.
      quantize: k in ``[1, 16]``: train and measure a quantized network, every hidden
        activation and the softmax output quantized to k bits, straight-through gradients
        (Lorenzen et al. 2022; the rule is in :mod:`ibjax.quantization`); its layers take
        finitely many values, which the ``exact`` estimator counts. None (default): float32.
      noise_std: beta > 0: a noise-injected network (Goldfeld et al. 2019): independent
        N(0, beta^2) noise on every hidden unit in every training forward pass (per seed and
        minibatch, keyed reproducibly), which the ``noisy`` estimator measures. Loss and
        accuracy at the snapshots, and the other estimators, see the network without noise.
        None (default): no noise.
      noise_samples: m >= 1, noisy propagations of the MI rows per snapshot for ``noisy``
        (cost O((N m)^2 d) per layer for N MI rows: measure on a subset with ``mi_samples``).
      null: also measure, with every estimator, I(T;Y) against the MI rows' labels permuted
        once per seed (results variable ``ity_null``): what an estimator reports for a layer
        that carries no label information. Needs at least two classes.
      snapshots: when to measure: ``"log"`` (the authors' 400-point log-2 schedule, 274 epochs
        for 8000, as they wrote it: from 0 to E - 1, or E - 2 by float rounding, never the
        final network at E), ``"log:N"`` (N points), ``"every:K"`` (epochs 0, K, 2K, ...
        <= num_epochs; at most ``MAX_SNAPSHOTS``), or an explicit tuple of epochs in
        ``[0, num_epochs]``.
      dataset: the task: ``var_u`` (the paper's 4096 12-bit patterns), ``digits`` (8 x 8
        handwritten digits, 1797 images, 10 classes), ``file:PATH`` (an ``.npz`` file or an
        MNIST folder, see :func:`ibjax.data.load_file`), or arrays given to :func:`ibjax.run`
        as ``data=`` (``arrays:NAME``, set by ``run``).
      mi_samples: the rows on which every estimator measures I(X;T) and I(T;Y): ``"all"``
        (default: every row, training and test, as the paper), ``"test"`` (the separate test
        set) or an integer N (a fixed random subset of N rows of all, the same for every seed;
        for large data sets).
      layer_product: how each layer's product is computed, always in full float32:
        ``"matmul"`` (XLA's matrix product), ``"broadcast"`` (a broadcast multiply and a sum,
        which XLA fuses with its neighbours), ``"native"`` (ibjax's own CPU routines, built on
        first use with the system's C++ compiler, see :mod:`ibjax.native_products`; CPUs only)
        or ``"auto"`` (default: ``"native"`` on CPUs for layers of at most 1024 weights where it
        builds, 1.7x faster training than ``"matmul"`` for the paper network on 2 cores;
        ``"broadcast"`` on GPUs for layers of at most 256 weights, 2.7x faster training on an
        H100; ``"matmul"`` elsewhere). Results agree up to float rounding whichever is used.
      training_kernel: ``"xla"`` (default: each minibatch step as XLA operations) or
        ``"fused"`` (experimental: whole epochs of every seed's training in one Pallas kernel,
        :mod:`ibjax.fused_epoch`; the built-in MLP of at most :data:`FUSED_MAX_WEIGHTS`
        weights with Adam on binary inputs such as ``var_u``; not yet timed on a GPU, and
        ~3x slower than ``"xla"`` on a CPU, where it runs in interpret mode). Each step
        computes the same as ``"xla"`` up to float rounding; over thousands of epochs those
        differences grow, as between a CPU and a GPU, so a seed's long trajectory differs
        while the seeds' statistics do not.
    """

    num_seeds: int = 16
    seed: int = 0
    num_epochs: int = 8000
    model: str = "mlp"
    hidden: tuple[int, ...] | None = None  # the model's default (see DEFAULT_HIDDEN)
    activation: str = "tanh"
    optimizer: str = "adam"
    learning_rate: float | tuple[float, ...] = 4e-4
    batch_size: int | None | str = "model default"  # see DEFAULT_BATCH_SIZE
    train_fraction: float | None = None
    split: str = "random"
    shuffle: bool = True
    num_bins: int = 30
    bin_range: tuple[float, float] | str = "auto"
    snapshots: str | tuple[int, ...] = "log"
    dataset: str = "var_u"
    estimators: tuple[str, ...] = ("binning",)
    bin_width: float = 0.07
    kde_variance: float = 1e-3
    renyi_alpha: float = 2.0
    renyi_sigma: str | float = "silverman"
    knn_k: int = 3
    null: bool = False
    quantize: int | None = None
    noise_std: float | None = None
    noise_samples: int = 8
    mi_samples: str | int = "all"
    layer_product: str = "auto"
    training_kernel: str = "xla"

    def __post_init__(self):
        # numpy scalars (np.int64(4), np.float32(1e-3)) become Python numbers, so they pass the
        # checks, hash and compare like them and serialise to JSON.
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, (list, tuple)):
                value = type(value)(_plain(v) for v in value)
            object.__setattr__(self, field.name, _plain(value))
        if self.hidden is None:
            object.__setattr__(self, "hidden", DEFAULT_HIDDEN.get(self.model, ()))
        if self.batch_size == "model default":
            object.__setattr__(self, "batch_size", DEFAULT_BATCH_SIZE.get(self.model, 512))
        # Normalise sequences to tuples so the config stays hashable (lists from a CLI or JSON).
        if isinstance(self.estimators, str):
            object.__setattr__(self, "estimators", (self.estimators,))
        for name in ("hidden", "bin_range", "learning_rate", "estimators"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(value))
        if isinstance(self.snapshots, list):
            object.__setattr__(self, "snapshots", tuple(self.snapshots))

    @classmethod
    def authors(cls, **overrides: Any) -> Config:
        """The experiment as the authors' public code (IDNNs) runs it.

        First 80% of the rows train (no split shuffle, so train p(y=1) = 0.44), contiguous
        unshuffled minibatches of 512, Adam with learning rate 4e-4, 8000 epochs, 30 bin edges
        on [-1, 1], the 274-snapshot log schedule. The paper's text says SGD; its code says Adam.
        """
        base = {
            "num_epochs": 8000, "hidden": (10, 7, 5, 4, 3), "activation": "tanh",
            "optimizer": "adam",
            "learning_rate": 4e-4, "batch_size": 512, "train_fraction": 0.8, "split": "first",
            "shuffle": False, "num_bins": 30, "bin_range": (-1.0, 1.0), "snapshots": "log",
        }
        base.update(overrides)
        return cls(**base)

    @property
    def learning_rates(self) -> tuple[float, ...]:
        """The learning rate(s) as a tuple (one entry for a single rate)."""
        rate = self.learning_rate
        return tuple(rate) if isinstance(rate, tuple) else (rate,)

    @property
    def host_callbacks(self) -> bool:
        """True when the measurement calls back to the host (``matrix-renyi`` with
        ``renyi_alpha != 2`` takes its eigenvalues there): such a program is not stored, and
        on a CPU runs on one device."""
        return "matrix-renyi" in self.estimators and self.renyi_alpha != 2.0

    @property
    def sweeps_learning_rate(self) -> bool:
        """True when ``learning_rate`` is a list: results then have a learning_rate dim."""
        return isinstance(self.learning_rate, tuple)

    @property
    def resolved_bin_range(self) -> tuple[float, float] | str:
        """``bin_range`` with ``"auto"`` resolved: ``(-1, 1)`` for tanh networks of ibjax's own
        models, else (ReLU, linear, a user's model whose activations ibjax does not know)
        ``"layer"``."""
        if self.bin_range == "auto":
            own = self.model.startswith("own:")
            return (-1.0, 1.0) if self.activation == "tanh" and not own else "layer"
        if isinstance(self.bin_range, str):
            return self.bin_range
        return tuple(float(v) for v in self.bin_range)

    def estimator_settings(self) -> Settings:
        """The :class:`ibjax.mi.Settings` of this run."""
        return Settings(self.num_bins, self.resolved_bin_range, self.bin_width,
                        self.kde_variance, self.renyi_alpha, self.renyi_sigma, self.knn_k,
                        self.noise_std)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Config:
        fields = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(fields) - known
        if unknown:
            raise ConfigError(f"unknown config fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**fields)

    def train_fraction_for(self, num_test: int) -> float:
        """``train_fraction`` with ``None`` resolved: 1.0 with a test set, else 0.8."""
        if self.train_fraction is None:
            return 1.0 if num_test else 0.8
        return self.train_fraction

    def validate(self, num_samples: int | None = None, num_test: int = 0) -> Config:
        """Checks every field; returns self.

        Args:
          num_samples: rows of the data's ``x``, enabling size checks.
          num_test: rows of its separate test set (0: none).
        """
        _check_int("num_seeds", self.num_seeds, minimum=1)
        _check_int("seed", self.seed, minimum=0, maximum=2**63 - 1)  # a 64-bit key seed
        _check_int("num_epochs", self.num_epochs, minimum=1, maximum=2**31 - 1)  # int32 count
        if not (self.model in MODELS or (isinstance(self.model, str)
                                         and self.model.startswith("own:"))):
            raise ConfigError(f"model must be one of {', '.join(MODELS)}; got {self.model!r}")
        if self.model in MODELS and (not isinstance(self.hidden, tuple) or len(self.hidden) == 0):
            raise ConfigError(f"hidden must be a non-empty sequence of widths, got {self.hidden!r}")
        if self.model == "cnn" and len(self.hidden) != 3:
            raise ConfigError(f"hidden for model='cnn' gives the two convolutions' channels and "
                              f"the dense layer's width (3 numbers, e.g. (8, 16, 32)); got "
                              f"{self.hidden!r}")
        for width in self.hidden:
            _check_int("hidden", width, minimum=1)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("split", self.split, SPLITS)
        _check_choice("layer_product", self.layer_product, LAYER_PRODUCTS)
        _check_choice("training_kernel", self.training_kernel, TRAINING_KERNELS)
        if not isinstance(self.dataset, str) or not (
                self.dataset in DATASETS or self.dataset.startswith(("file:", "arrays:"))):
            raise ConfigError(f"dataset must be one of {', '.join(DATASETS)}, 'file:PATH' or "
                              f"arrays passed as data=; got {self.dataset!r}")
        rates = self.learning_rates
        if not rates or len(set(rates)) != len(rates):
            raise ConfigError(
                f"learning_rate must be a number or a non-empty list of distinct numbers, "
                f"got {self.learning_rate!r}")
        for rate in rates:
            _check_positive_float("learning_rate", rate)
        if not isinstance(self.shuffle, bool):
            raise ConfigError(f"shuffle must be True or False, got {self.shuffle!r}")
        if not isinstance(self.null, bool):
            raise ConfigError(f"null must be True or False, got {self.null!r}")
        if self.train_fraction is not None and (isinstance(self.train_fraction, bool) or (
                not isinstance(self.train_fraction, (int, float))) or (
                not 0.0 < self.train_fraction <= 1.0)):
            raise ConfigError(
                f"train_fraction must be a number in (0, 1] or None, got {self.train_fraction!r}")
        if not (self.mi_samples in ("all", "test") or (
                isinstance(self.mi_samples, int) and not isinstance(self.mi_samples, bool)
                and self.mi_samples >= 2)):
            raise ConfigError(f"mi_samples must be 'all', 'test' or an integer >= 2, got "
                              f"{self.mi_samples!r}")
        if self.batch_size is not None:
            _check_int("batch_size", self.batch_size, minimum=1)
        if isinstance(self.bin_range, str):
            if self.bin_range not in ("auto", "layer"):
                raise ConfigError(
                    f"bin_range must be 'auto', 'layer' or a pair (lo, hi); got {self.bin_range!r}")
        else:
            validate_range("bin_range", self.bin_range)
        check_estimator_settings(self.estimators, self.estimator_settings())
        self._validate_quantize_and_noise()
        snapshot_epochs(self.snapshots, self.num_epochs)  # raises ConfigError when malformed
        if num_samples is not None:
            fraction = self.train_fraction_for(num_test)
            n_train = num_train(fraction, num_samples)
            if self.batch_size is not None and self.batch_size > n_train:
                raise ConfigError(
                    f"batch_size={self.batch_size} is larger than the training set "
                    f"({n_train} rows = train_fraction {fraction} of {num_samples}); "
                    f"use batch_size <= {n_train} or None for full batch")
            if self.mi_samples == "test" and not num_test:
                raise ConfigError("mi_samples='test' needs data with a separate test set "
                                  "(x_test, y_test); use 'all' or a number of rows")
            if isinstance(self.mi_samples, int) and self.mi_samples > num_samples + num_test:
                raise ConfigError(f"mi_samples={self.mi_samples} is more than the data's "
                                  f"{num_samples + num_test} rows")
        problems = fused_kernel_problems(self)
        if problems:
            raise ConfigError(f"training_kernel 'fused' cannot train {', '.join(problems)}; "
                              f"use 'xla'")
        return self

    def _validate_quantize_and_noise(self) -> None:
        """``quantize``, ``noise_std``, ``noise_samples`` and the estimators that need them."""
        from ibjax.quantization import MAX_BITS

        if self.quantize is not None:
            _check_int("quantize", self.quantize, minimum=1, maximum=MAX_BITS)
        if self.noise_std is not None:
            _check_positive_float("noise_std", self.noise_std)
            low, high = NOISE_STD_RANGE
            if not low <= self.noise_std <= high:
                raise ConfigError(f"noise_std must be in [{low:g}, {high:g}], got "
                                  f"{self.noise_std!r}")
        _check_int("noise_samples", self.noise_samples, minimum=1, maximum=MAX_NOISE_SAMPLES)
        if self.quantize is not None and self.noise_std is not None:
            raise ConfigError("quantize and noise_std cannot be combined: noise makes a "
                              "quantized layer continuous again; use one of them")
        if "exact" in self.estimators and self.quantize is None:
            raise ConfigError("estimator 'exact' counts the states of a quantized network; set "
                              "quantize (--quantize K, 1-16 bits) or use another estimator")
        if "noisy" in self.estimators and self.noise_std is None:
            raise ConfigError("estimator 'noisy' measures a noise-injected network; set "
                              "noise_std (--noise-std BETA > 0) or use another estimator")

    def resolved(self, num_test: int = 0) -> Config:
        """This config with the data-dependent defaults made concrete: ``train_fraction``
        (None -> 0.8, or 1.0 with ``num_test`` test rows) and ``bin_range`` (``"auto"`` ->
        ``(-1, 1)`` or ``"layer"``). Runs record this form in results and checkpoints."""
        return self.replace(train_fraction=self.train_fraction_for(num_test),
                            bin_range=self.resolved_bin_range)

    def validate_for(self, dataset) -> Config:
        """:meth:`validate` with the sizes of an :class:`ibjax.data.Dataset`."""
        self.validate(num_samples=dataset.x.shape[0], num_test=dataset.num_test)
        if self.model == "cnn" and len(dataset.input_shape) != 3:
            raise ConfigError(
                f"model='cnn' needs images, [height, width, channels] per sample; the data "
                f"{dataset.name!r} has samples of shape {dataset.input_shape} (use model='mlp',"
                f" or image data such as 'digits' or MNIST)")
        from ibjax.minibatches import binary_code_layout  # data-dependent checks

        x_all = dataset.x if dataset.x_test is None else np.concatenate(
            [dataset.x, dataset.x_test])
        packed = binary_code_layout(x_all, dataset.num_classes) is not None
        problems = fused_kernel_problems(self, x_all.shape[1], dataset.num_classes, packed)
        if problems:
            raise ConfigError(f"training_kernel 'fused' cannot train {', '.join(problems)} "
                              f"(data {dataset.name!r}); use 'xla'")
        return self


def fused_kernel_problems(config: Config, num_features: int | None = None,
                          num_classes: int | None = None,
                          packed: bool | None = None) -> list[str]:
    """What ``training_kernel="fused"`` cannot train in ``config`` (empty: nothing, or another
    kernel); the data's checks only where its sizes and ``packed`` (binary inputs, see
    :func:`ibjax.minibatches.binary_code_layout`) are given."""
    if config.training_kernel != "fused":
        return []
    checks = [
        (config.model == "mlp", f"model={config.model!r} (only the built-in 'mlp')"),
        (config.optimizer == "adam", f"optimizer={config.optimizer!r} (only 'adam')"),
        (config.activation in ("tanh", "relu", "linear"), f"activation={config.activation!r}"),
        (not config.noise_std, "a network with training noise (noise_std)"),
        (not config.quantize, "a quantized network (quantize)"),
        (packed is not False, "inputs that are not 0/1 with few enough features (binary "
                              "inputs whose bits and label fit in 31 bits, such as var_u)"),
    ]
    if config.model == "mlp" and num_features is not None and num_classes is not None:
        widths = [num_features, *config.hidden, num_classes]
        weights = sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
        checks.append((weights <= FUSED_MAX_WEIGHTS,
                       f"a network of {weights} weights (at most {FUSED_MAX_WEIGHTS}: it "
                       f"writes out one multiply-add per weight)"))
    return [why for ok, why in checks if not ok]


def check_estimator_names(names: Any) -> tuple[str, ...]:
    """Checks a non-empty sequence of distinct registered estimator names."""
    from ibjax.mi._estimators import check_estimator_names as check

    try:
        return check(names)
    except MIError as err:
        raise ConfigError(str(err)) from None


def check_estimator_settings(names: Any, settings: Settings) -> None:
    """Checks estimator names and their :class:`ibjax.mi.Settings`."""
    check_estimator_names(names)
    try:
        settings.checked()
    except MIError as err:
        raise ConfigError(str(err)) from None


def num_train(train_fraction: float, num_samples: int) -> int:
    """Training-set size: ``round(train_fraction * num_samples)``, at least 1."""
    return max(1, min(num_samples, round(train_fraction * num_samples)))


def validate_range(name: str, value: Any) -> tuple[float, float]:
    """Checks a ``(lo, hi)`` pair of finite numbers with ``lo < hi``."""
    return check_range(name, value, error=ConfigError)


MAX_SNAPSHOTS = 1_000_000
"""Most snapshots ``every:K`` may give: results keep every snapshot of every network, and the
plan is built on the host (``every:1`` over 10**9 epochs would need tens of GB before any
check could run)."""


def snapshot_epochs(spec: str | tuple[int, ...], num_epochs: int) -> tuple[int, ...]:
    """The sorted, distinct epochs at which a run measures (epoch 0 = the initial network).

    Args:
      spec: ``"log"``, ``"log:N"``, ``"every:K"`` or a sequence of epochs (see :class:`Config`).
      num_epochs: total training epochs.

    Returns:
      Epochs in ``[0, num_epochs]``. ``"log"`` reproduces the authors' formula
      ``unique(int(logspace(0, log2(E), 400, base=2))) - 1``, which gives 274 epochs for E=8000.
    """
    if isinstance(spec, str):
        kind, _, arg = spec.partition(":")
        if kind == "log":
            points = _parse_count("snapshots", arg, default=400)
            grid = np.logspace(0, np.log2(num_epochs), points, base=2)
            return tuple(int(e) for e in np.unique(grid.astype(int)) - 1)
        if kind == "every" and arg:
            step = _parse_count("snapshots", arg, default=None)
            count = num_epochs // step + 1
            if count > MAX_SNAPSHOTS:
                raise ConfigError(
                    f"snapshots: {spec!r} over {num_epochs} epochs gives {count} snapshots; at "
                    f"most {MAX_SNAPSHOTS} (every snapshot is kept): use a larger K or 'log'")
            return tuple(range(0, num_epochs + 1, step))
        raise ConfigError(
            f"snapshots must be 'log', 'log:N', 'every:K' or a list of epochs, got {spec!r}")
    try:
        epochs = sorted({int(e) for e in spec})
    except (TypeError, ValueError):
        raise ConfigError(f"snapshots must be a list of integer epochs, got {spec!r}") from None
    if not epochs or epochs[0] < 0 or epochs[-1] > num_epochs:
        raise ConfigError(
            f"snapshots must be a non-empty list of epochs in [0, num_epochs={num_epochs}], "
            f"got {spec!r}")
    return tuple(epochs)


def _parse_count(name: str, text: str, default: int | None) -> int:
    if not text and default is not None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{name}: the number after ':' must be a positive integer, got {text!r}")
    return value


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (``item()``); anything else unchanged."""
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(
            value, "ndim", None) == 0:
        return value.item()
    return value


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    check_int(name, value, minimum, error=ConfigError, maximum=maximum)


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _check_positive_float(name: str, value: Any) -> None:
    check_positive_float(name, value, error=ConfigError)
