"""Epoch arrays: packed binary codes and gathered rows give the same minibatches."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ibjax.data import load_var_u
from ibjax.minibatches import binary_code_layout, make_batcher


def _batcher(x, y, num_classes, allow_packing=True):
    packed = allow_packing and binary_code_layout(x, num_classes) is not None
    batcher = make_batcher(x.shape[1], num_classes, packed)
    return batcher, batcher.device_rows(x, y)


def _epoch(made, train_index, order, batch_size=None):
    """The epoch's minibatches, concatenated: ``(x_t, y_onehot_t)`` as numpy."""
    batcher, rows_all = made
    rows = batcher.train_rows(rows_all, jnp.asarray(train_index, jnp.int32))
    epoch = batcher.epoch(rows, jnp.asarray(order, jnp.int32))
    size = len(order) if batch_size is None else batch_size
    batches = [batcher.batch(epoch, jnp.int32(start), size) for start in range(0, len(order), size)]
    return [np.concatenate([np.asarray(b[i]) for b in batches], axis=1) for i in (0, 1)]


def test_packed_and_gathered_epochs_are_identical_and_match_numpy():
    data = load_var_u()
    rng = np.random.default_rng(0)
    train_index = rng.permutation(4096)[:3277]
    order = np.concatenate([rng.permutation(3277), np.arange(307)])  # a wrapped last batch
    packed = _batcher(data.x, data.y, 2)
    gathered = _batcher(data.x, data.y, 2, allow_packing=False)
    assert packed[0].packed and not gathered[0].packed
    x_packed, y_packed = _epoch(packed, train_index, order, batch_size=512)
    x_gathered, y_gathered = _epoch(gathered, train_index, order, batch_size=512)
    np.testing.assert_array_equal(x_packed, x_gathered)
    np.testing.assert_array_equal(y_packed, y_gathered)
    rows = train_index[order]
    np.testing.assert_array_equal(x_packed, data.x[rows].T)  # features-major
    np.testing.assert_array_equal(y_packed, np.eye(2)[data.y[rows]].T)
    assert x_packed.dtype == y_packed.dtype == np.float32


def test_packing_only_for_binary_data_that_fits_31_bits():
    binary = np.random.default_rng(1).integers(0, 2, size=(50, 12)).astype(np.float32)
    assert binary_code_layout(binary, 2) == 12
    assert binary_code_layout(binary, 10) == 12
    assert binary_code_layout(np.zeros((5, 30), np.float32), 2) == 30  # 30 + 1 label bit
    assert binary_code_layout(np.zeros((5, 30), np.float32), 3) is None  # 30 + 2 > 31
    assert binary_code_layout(binary * 0.5, 2) is None
    many_classes = _batcher(binary, np.arange(50) % 10, 10)
    x_t, y_t = _epoch(many_classes, np.arange(50), np.arange(50)[::-1])
    np.testing.assert_array_equal(x_t, binary[::-1].T)
    np.testing.assert_array_equal(np.argmax(y_t, axis=0), (np.arange(50) % 10)[::-1])


def test_vmapped_over_seeds():
    data = load_var_u()
    batcher, rows_all = _batcher(data.x, data.y, 2)
    index = jnp.stack([jnp.arange(100), jnp.arange(100, 200)])
    order = jnp.stack([jnp.arange(100)[::-1], jnp.arange(100)])
    x_t, _ = jax.vmap(lambda i, o: batcher.batch(
        batcher.epoch(batcher.train_rows(rows_all, i), o), 0, 100))(index, order)
    np.testing.assert_array_equal(np.asarray(x_t[0]), data.x[np.arange(100)[::-1]].T)
    np.testing.assert_array_equal(np.asarray(x_t[1]), data.x[np.arange(100, 200)].T)
