"""Data sets: the paper's synthetic task (``var_u``), 8 x 8 digits, your own arrays or files,
and MNIST.

Shwartz-Ziv & Tishby (2017), https://arxiv.org/abs/1703.00810: all 4096 12-bit input patterns,
with a binary label; the MATLAB file ships inside the package (as distributed with the code of
Saxe et al. 2018, MIT licence). ``digits``: scikit-learn's bundled copy of the UCI handwritten
digits (1797 images, 10 classes), also shipped (``ibjax/resources/DIGITS.md``).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

VAR_U_SHA256 = "0ba9551878a855396a8de0cbaae620788ede1e7b1eb2b8373bbe017d5ea02036"
BUILT_IN = ("var_u", "digits")


class Dataset(NamedTuple):
    """A classification task held in memory.

    Attributes:
      x: ``[num_samples, num_features]`` float32 inputs (the rows a seed's training split is
        drawn from).
      y: ``[num_samples]`` int32 labels in ``0..num_classes-1``.
      num_classes: number of label values (the softmax width).
      name: short name stored in results.
      x_test: optional ``[num_test, num_features]`` float32 held-out inputs; when given, test
        loss and accuracy are measured on them (not on the untrained rows of ``x``).
      y_test: ``[num_test]`` int32 labels, with ``x_test``.
      sample_shape: one sample's shape before it was flattened into a row of ``x``, e.g.
        ``(28, 28, 1)`` for MNIST (the CNN needs it); None: ``(num_features,)``.
    """

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    name: str
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    sample_shape: tuple[int, ...] | None = None

    @property
    def num_test(self) -> int:
        return 0 if self.x_test is None else int(self.x_test.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape: ``sample_shape``, or ``(num_features,)``."""
        return tuple(self.sample_shape) if self.sample_shape else (int(self.x.shape[1]),)


def make_dataset(x, y, x_test=None, y_test=None, name: str = "arrays") -> Dataset:
    """Checks user arrays and returns a :class:`Dataset`.

    Args:
      x: ``[N, D]`` numbers (any D >= 1, N >= 2), all finite; stored as float32. Images
        ``[N, H, W]`` or ``[N, H, W, C]`` are flattened into rows, their shape kept as
        ``sample_shape`` (a channel axis added to ``[N, H, W]``).
      y: ``[N]`` integer labels ``0..C-1`` with ``C >= 2`` (C = largest label + 1, over ``y``
        and ``y_test``).
      x_test, y_test: optional held-out set, both or neither, same feature width.
      name: stored in results.

    Raises:
      ConfigError: (a ValueError) naming the array and what is allowed.
    """
    from ibjax.config import ConfigError

    if (x_test is None) != (y_test is None):
        raise ConfigError("x_test and y_test must be given together (or neither)")
    sample_shape = _sample_shape(x)
    x = _features("x", _as_rows(x))
    x_test = None if x_test is None else _as_rows(x_test)
    y = _labels("y", y, x.shape[0])
    if x.shape[0] < 2:
        raise ConfigError(f"x needs at least 2 rows, got {x.shape[0]}")
    if x_test is not None:
        x_test = _features("x_test", x_test)
        if x_test.shape[1] != x.shape[1]:
            raise ConfigError(f"x_test must have x's {x.shape[1]} features, got "
                              f"{x_test.shape[1]}")
        y_test = _labels("y_test", y_test, x_test.shape[0])
    top = int(max(y.max(), -1 if y_test is None or y_test.size == 0 else y_test.max()))
    present = np.unique(y)
    if present.size < 2:
        raise ConfigError(f"y must hold at least 2 classes (labels 0..C-1, C >= 2); it holds "
                          f"only label {int(present[0])}")
    return Dataset(x, y, top + 1, str(name), x_test, y_test, sample_shape)


def _sample_shape(x) -> tuple[int, ...] | None:
    """``(H, W, C)`` of images ``[N, H, W]`` (C = 1) or ``[N, H, W, C]``, else None."""
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) not in (3, 4):
        return None
    return (*shape[1:], 1) if len(shape) == 3 else tuple(shape[1:])


def _features(name: str, values) -> np.ndarray:
    from ibjax.config import ConfigError

    try:
        array = np.asarray(values)
    except Exception as err:
        raise ConfigError(f"{name} is not an array ({err})") from None
    if array.ndim != 2 or 0 in array.shape:
        raise ConfigError(f"{name} must have shape [samples, features], got {array.shape}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.iscomplexobj(
            array):
        raise ConfigError(f"{name} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ConfigError(f"{name} holds {bad} NaN or infinite values (or values beyond "
                          f"float32's range); clean or drop those rows")
    return array


def _labels(name: str, values, rows: int) -> np.ndarray:
    from ibjax.config import ConfigError

    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or array.shape[0] != rows:
        raise ConfigError(f"{name} must have shape [{rows}] (one label per row), got "
                          f"{array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ConfigError(f"{name} must hold integer class labels 0..C-1, got dtype "
                          f"{array.dtype}")
    if array.size and array.min() < 0:
        raise ConfigError(f"{name} must hold labels 0..C-1, found {int(array.min())}")
    if array.size and array.max() >= 2**20:
        raise ConfigError(f"{name}: labels must be 0..C-1 with C < 2**20, found "
                          f"{int(array.max())}")
    return array.astype(np.int32)


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


def digest(dataset: Dataset) -> str:
    """sha256 (hex) of a dataset's contents: every array's shape, dtype and bytes, and the
    class count. Runs record it so that a resume on changed data is refused."""
    hasher = hashlib.sha256(str(dataset.num_classes).encode())
    for array in (dataset.x, dataset.y, dataset.x_test, dataset.y_test):
        if array is not None:
            hasher.update(f"{array.shape}{array.dtype}".encode())
            hasher.update(np.ascontiguousarray(array).tobytes())
    return hasher.hexdigest()


def load_digits() -> Dataset:
    """scikit-learn's 8 x 8 handwritten digits, shipped with ibjax: ``x`` [1797, 64] in
    [0, 1] (pixel counts / 16), ``y`` [1797] digits 0..9, ``sample_shape`` (8, 8, 1)."""
    with resources.as_file(resources.files("ibjax") / "resources" / "digits.npz") as path, \
            np.load(path) as archive:
        images, labels = archive["x"], archive["y"]
    x = images.reshape(images.shape[0], -1).astype(np.float32) / 16.0
    return Dataset(x=x, y=labels.astype(np.int32), num_classes=10, name="digits",
                   sample_shape=(8, 8, 1))


def load_dataset(spec: str) -> Dataset:
    """Loads a dataset by its config spec.

    ``"var_u"``: the paper's task; ``"digits"``: 8 x 8 handwritten digits; ``"file:PATH"``: a
    file or folder read by :func:`load_file`. (``"arrays:NAME"`` names arrays passed to
    :func:`ibjax.run` as ``data=``; they are not loaded by name.)

    Raises:
      ConfigError: unknown spec, unreadable or invalid data.
    """
    from ibjax.config import ConfigError

    if spec == "var_u":
        return load_var_u()
    if spec == "digits":
        return load_digits()
    if isinstance(spec, str) and spec.startswith("file:"):
        path = Path(spec[5:])
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            raise ConfigError(f"dataset: data file or folder not found: {path}") from None
        return _load_file_cached(str(path), stamp)
    if isinstance(spec, str) and spec.startswith("arrays:"):
        raise ConfigError(
            f"dataset {spec!r} names arrays given to ibjax.run(data=...); pass the same arrays "
            f"as data= again")
    raise ConfigError(f"dataset must be one of {', '.join(BUILT_IN)}, 'file:PATH' or arrays "
                      f"passed as data=; got {spec!r}")


@functools.lru_cache(maxsize=4)
def _load_file_cached(path: str, stamp: int) -> Dataset:
    return load_file(path)


def load_file(path) -> Dataset:
    """Reads a dataset from disk.

    - ``*.npz`` with arrays ``x``, ``y`` and optionally ``x_test``, ``y_test``;
    - ``*.npz`` in the common MNIST layout (``x_train``, ``y_train``, ``x_test``, ``y_test``,
      as Keras' ``mnist.npz``);
    - a folder holding the four MNIST IDX files (``train-images-idx3-ubyte``,
      ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``),
      each gzipped (``.gz``) or not.

    Images are flattened to one row each; uint8 pixel values are scaled to [0, 1].

    Raises:
      ConfigError: unreadable, missing or inconsistent arrays, with the file named.
    """
    from ibjax.config import ConfigError

    path = Path(path)
    if path.is_dir():
        return _load_idx_folder(path)
    if not path.is_file():
        raise ConfigError(f"data file or folder not found: {path}")
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as err:
        raise ConfigError(f"{path} is not a readable .npz file ({type(err).__name__}: {err})"
                          ) from None
    if "x" in arrays and "y" in arrays:
        keys = ("x", "y", "x_test", "y_test")
    elif "x_train" in arrays and "y_train" in arrays:
        keys = ("x_train", "y_train", "x_test", "y_test")
    else:
        raise ConfigError(f"{path} must hold arrays x and y (optionally x_test, y_test) or "
                          f"x_train, y_train, x_test, y_test; it holds {sorted(arrays)}")
    x, y, x_test, y_test = (_scaled(arrays.get(k)) if k.startswith("x") else arrays.get(k)
                            for k in keys)
    try:
        return make_dataset(x, y, x_test, y_test, name=path.stem)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def _as_rows(images):
    """Flattens ``[N, ...]`` arrays to ``[N, features]`` (anything else unchanged)."""
    if isinstance(images, np.ndarray) and images.ndim > 2:
        return images.reshape(images.shape[0], -1)
    return images


def _scaled(images: np.ndarray | None) -> np.ndarray | None:
    """uint8 pixels scaled to [0, 1] (float32); anything else unchanged."""
    if images is not None and images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")


def read_idx(path) -> np.ndarray:
    """Reads one IDX file (gzipped if its name ends in ``.gz``): an unsigned-byte array.

    Format (LeCun's MNIST page): two zero bytes, type code 0x08 (unsigned byte), the number of
    dimensions, then each dimension as a big-endian uint32, then the data.
    """
    from ibjax.config import ConfigError

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as err:
        raise ConfigError(f"{path} is not readable ({err})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ConfigError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ConfigError(f"{path} is not a valid IDX file (truncated header)")
    shape = tuple(int(v) for v in np.frombuffer(data[4:header], ">u4"))
    size = int(np.prod(shape))
    if len(data) - header != size:
        raise ConfigError(f"{path} is truncated or padded: header says {shape} = {size} bytes "
                          f"of data, the file has {len(data) - header}")
    return np.frombuffer(data[header:], np.uint8).reshape(shape)


def _load_idx_folder(folder: Path) -> Dataset:
    from ibjax.config import ConfigError

    arrays = []
    for stem in IDX_FILES:
        found = [folder / f"{stem}{suffix}" for suffix in ("", ".gz")
                 if (folder / f"{stem}{suffix}").is_file()]
        if not found:
            raise ConfigError(f"{folder} must hold the MNIST IDX files {', '.join(IDX_FILES)} "
                              f"(each optionally .gz); {stem} is missing")
        arrays.append(read_idx(found[0]))
    x, y, x_test, y_test = arrays
    try:
        return make_dataset(_scaled(x), y, _scaled(x_test), y_test, name=folder.name)
    except ConfigError as err:
        raise ConfigError(f"{folder}: {err}") from None
