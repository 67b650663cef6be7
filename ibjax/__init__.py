"""ibjax: information-plane experiments for hundreds of seeds in one compiled JAX program.

Shwartz-Ziv & Tishby (2017), "Opening the Black Box of Deep Neural Networks via Information",
https://arxiv.org/abs/1703.00810.

Two layers:

- :mod:`ibjax.mi`, the estimator core (jax and numpy only): ``ibjax.mi.estimate`` inside any
  jitted training loop.
- The experiment layer, built on it: :class:`Config` and :func:`run` (networks trained and
  measured together, one per seed), :func:`make_recorder` (measurement inside your own
  training loop), data sets, results files, figures, phases and the ``ibjax`` command.

Names are imported on first use, so ``import ibjax.mi`` does not load flax, optax, xarray or
matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module it lives in
_EXPORTS = {
    "Config": "ibjax.config", "ConfigError": "ibjax.config",
    "snapshot_epochs": "ibjax.config",
    "Dataset": "ibjax.data", "make_dataset": "ibjax.data", "load_file": "ibjax.data",
    "load_var_u": "ibjax.data", "load_digits": "ibjax.data",
    "run": "ibjax.runner", "make_trainer": "ibjax.train",
    "make_recorder": "ibjax.recorder", "gradient_stats": "ibjax.recorder",
    "load": "ibjax.results", "save": "ibjax.results", "merge": "ibjax.results",
    "config_of": "ibjax.results",
    "plot_results": "ibjax.plotting",
    "MLP": "ibjax.model", "CNN": "ibjax.model", "quantize": "ibjax.quantization",
}
_MODULES = ("mi", "phases")

__all__ = [
    "CNN", "MLP", "Config", "ConfigError", "Dataset", "config_of", "gradient_stats", "load",
    "load_digits", "load_file", "load_var_u", "make_dataset", "make_recorder", "make_trainer",
    "merge", "mi", "phases", "plot_results", "quantize", "run", "save", "snapshot_epochs",
]
assert sorted(__all__) == sorted([*_EXPORTS, *_MODULES])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"ibjax.{name}")
    else:
        raise AttributeError(f"module 'ibjax' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from ibjax import mi, phases
    from ibjax.config import Config, ConfigError, snapshot_epochs
    from ibjax.data import Dataset, load_digits, load_file, load_var_u, make_dataset
    from ibjax.model import CNN, MLP
    from ibjax.plotting import plot_results
    from ibjax.recorder import gradient_stats, make_recorder
    from ibjax.results import config_of, load, merge, save
    from ibjax.runner import run
    from ibjax.train import make_trainer
