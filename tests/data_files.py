"""Small data files in the formats ibjax reads, generated in the tests (nothing downloaded)."""

import gzip
import struct

import numpy as np


def write_idx(path, array: np.ndarray, gz: bool = False) -> None:
    """Writes an unsigned-byte IDX file (MNIST's format), gzipped if ``gz``."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def tiny_mnist(rng, num_train=96, num_test=32, side=6, classes=10):
    """Random digit-like images ``[N, side, side]`` uint8 and labels 0..classes-1."""
    x = rng.integers(0, 256, size=(num_train, side, side), dtype=np.uint8)
    y = (np.arange(num_train) % classes).astype(np.uint8)
    x_test = rng.integers(0, 256, size=(num_test, side, side), dtype=np.uint8)
    y_test = (np.arange(num_test) % classes).astype(np.uint8)
    return x, y, x_test, y_test


def write_mnist_folder(folder, arrays, gz: bool) -> None:
    from ibjax.data import IDX_FILES

    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in zip(IDX_FILES, arrays, strict=True):
        write_idx(folder / stem, array, gz=gz)
