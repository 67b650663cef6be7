"""An epoch's minibatch arrays, features-major, with as little gathering as a CPU allows.

Every epoch needs the training rows in a new order, laid out features-major (``[features,
rows]``, the model's layout). XLA's CPU gather costs about 3 ns per gathered element and a
transpose of a 12-feature array is not much cheaper, so this module keeps both rare:

- The training rows of a seed are gathered once per compiled step (:meth:`Batcher.train_rows`),
  not once per epoch.
- Binary inputs with few features (the paper's 12-bit patterns; any 0/1 data with
  ``features + label bits <= 31``) are packed into one int32 code per row, input bits and label
  together; an epoch then gathers one int per row, and each minibatch unpacks its bits
  elementwise, with no transpose. Other data gather whole rows (contiguous) and transpose once
  per epoch.

Both paths give bit-identical arrays (``tests/test_minibatches.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

CODE_BITS = 31  # int32 codes stay non-negative


def binary_code_layout(x: np.ndarray, num_classes: int) -> int | None:
    """Input bits per code if ``x`` is 0/1 and input and label bits fit in 31 bits, else None."""
    label_bits = max(1, (num_classes - 1).bit_length())
    features = x.shape[1]
    if features + label_bits > CODE_BITS or not np.isin(x, (0.0, 1.0)).all():
        return None
    return features


class Batcher(NamedTuple):
    """Builds a seed's minibatches (all functions are pure and vmappable over seeds).

    The data enter as an argument (``rows_all``, made on the host by :attr:`device_rows`), so
    data sets of the same shapes share one compiled program.

    Attributes:
      device_rows: ``device_rows(x_all, y_all) -> rows_all``, on the host: all rows in the
        compact form below, as device arrays.
      train_rows: ``train_rows(rows_all, train_index [n_train]) -> rows``: the seed's training
        rows in a compact form (packed codes ``[n_train]`` int32, or ``(x [n_train, features],
        y [n_train])``). Called once per compiled step.
      epoch: ``epoch(rows, order) -> epoch_data``: the rows in ``order`` (``[padded]`` int32
        positions into ``rows``). Called once per epoch.
      batch: ``batch(epoch_data, start, size) -> (x_t, y_onehot_t)``: the minibatch of ``size``
        rows from position ``start`` (traced), features-major: ``x_t`` ``[features, size]``
        float32 and the one-hot labels ``[num_classes, size]`` float32.
      packed: whether rows are packed binary codes.
    """

    device_rows: Callable[[np.ndarray, np.ndarray], Any]
    train_rows: Callable[[Any, jax.Array], Any]
    epoch: Callable[[Any, jax.Array], Any]
    batch: Callable[[Any, jax.Array, int], tuple[jax.Array, jax.Array]]
    packed: bool


def make_batcher(num_features: int, num_classes: int, packed: bool) -> Batcher:
    """A :class:`Batcher` for rows of ``num_features`` inputs and ``num_classes`` labels.

    ``packed`` (binary inputs whose bits and label fit in an int32, see
    :func:`binary_code_layout`) chooses the packed path; False the general (row-gathering) one.
    """
    class_ids = jnp.arange(num_classes, dtype=jnp.int32)

    def one_hot_t(labels: jax.Array) -> jax.Array:
        return (labels[None, :] == class_ids[:, None]).astype(jnp.float32)

    def take(rows_all, train_index):
        return jax.tree.map(lambda a: a[train_index], rows_all)

    if packed:
        features = num_features
        bit_shifts = jnp.arange(features, dtype=jnp.int32)[:, None]

        def device_rows(x_all, y_all):
            weights = (1 << np.arange(features, dtype=np.int64))
            codes = (x_all.astype(np.int64) @ weights) | (y_all.astype(np.int64) << features)
            return jnp.asarray(codes.astype(np.int32))

        def epoch(rows, order):
            return rows[order]  # one int per row

        def batch(epoch_codes, start, size):
            code = jax.lax.dynamic_slice_in_dim(epoch_codes, start, size)
            x_t = ((code[None, :] >> bit_shifts) & 1).astype(jnp.float32)
            return x_t, one_hot_t(code >> features)

        return Batcher(device_rows, take, epoch, batch, packed=True)

    def device_rows(x_all, y_all):
        return jnp.asarray(x_all, jnp.float32), jnp.asarray(y_all, jnp.int32)

    def epoch(rows, order):
        x_rows, labels = rows
        # Rows are gathered (contiguous) and then transposed: gathering the columns of a
        # features-major array is several times slower on a CPU.
        return x_rows[order].T, one_hot_t(labels[order])

    def batch(epoch_arrays, start, size):
        return tuple(jax.lax.dynamic_slice_in_dim(a, start, size, axis=1) for a in epoch_arrays)

    return Batcher(device_rows, take, epoch, batch, packed=False)
