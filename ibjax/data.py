"""The paper's synthetic task (``var_u``) and the per-seed train/test split.

Shwartz-Ziv & Tishby (2017), https://arxiv.org/abs/1703.00810: all 4096 12-bit input patterns,
with a binary label; the MATLAB file ships inside the package (as distributed with the code of
Saxe et al. 2018, MIT licence).
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import NamedTuple

import numpy as np

VAR_U_SHA256 = "0ba9551878a855396a8de0cbaae620788ede1e7b1eb2b8373bbe017d5ea02036"


class Dataset(NamedTuple):
    """A classification task held in memory.

    Attributes:
      x: ``[num_samples, num_features]`` float32 inputs.
      y: ``[num_samples]`` int32 labels in ``0..num_classes-1``.
      num_classes: number of label values.
      name: short name stored in results.
    """

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    name: str


def var_u_path():
    """Path (a ``Traversable``) of the shipped ``var_u.mat``."""
    return resources.files("ibjax") / "resources" / "var_u.mat"


def var_u_sha256() -> str:
    """sha256 of the shipped ``var_u.mat`` bytes (compare with :data:`VAR_U_SHA256`)."""
    return hashlib.sha256(var_u_path().read_bytes()).hexdigest()


def load_var_u() -> Dataset:
    """The paper's task: ``x`` [4096, 12] in {0, 1} (rows in MSB-first counting order),
    ``y`` [4096] with 2118 ones. H(X) = 12 bits, H(Y) = I(X;Y) = 0.999157 bits."""
    import io

    from scipy.io import loadmat

    mat = loadmat(io.BytesIO(var_u_path().read_bytes()))
    x = np.asarray(mat["F"], dtype=np.float32)
    y = np.asarray(mat["y"], dtype=np.int32).reshape(-1)
    return Dataset(x=x, y=y, num_classes=2, name="var_u")


def load_dataset(name: str) -> Dataset:
    """Loads a dataset by its config name."""
    if name == "var_u":
        return load_var_u()
    from ibjax.config import ConfigError

    raise ConfigError(f"dataset must be one of var_u; got {name!r}")
