"""Exact entropy of discrete rows, inside a compiled program, in 32-bit arithmetic.

A row of small non-negative integers (e.g. bin indices) and its label are packed exactly into
uint32 codes (mixed radix); a single-key sort, or a few radix-sort passes for wide rows, puts
equal rows next to each other; group sizes are counted with a
fixed-length segment sum; the entropy sum is done with an error-free (compensated) pairwise
summation of float64-accurate table values split into two float32 parts, so the result is
within one float32 rounding of the exact value. No hashing: two different rows never merge.
Nothing here changes JAX's global settings (no 64-bit mode).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np


def _chunk_layout(radices: list[int], capacity: int) -> list[list[int]] | None:
    """Groups digit columns (most significant first) into chunks whose code is < capacity.

    Returns chunks most significant first, each a list of column indices (most significant
    first), or None when a single column does not fit.
    """
    chunks: list[list[int]] = []
    current: list[int] = []
    product = 1
    for column in reversed(range(len(radices))):
        radix = radices[column]
        if radix > capacity:
            return None
        if current and product * radix > capacity:
            chunks.append(current)
            current, product = [], 1
        current.insert(0, column)
        product *= radix
    chunks.append(current)
    return chunks[::-1]


def _chunk_code(columns: list[jax.Array], radices: list[int]) -> jax.Array:
    """Mixed-radix uint32 code of digit columns (most significant first)."""
    code = jnp.zeros(columns[0].shape, jnp.uint32)
    for column, radix in zip(columns, radices, strict=True):
        code = code * jnp.uint32(radix) + column.astype(jnp.uint32)
    return code


def _materialised_chunk_code(columns: list[jax.Array], radices: list[int]) -> jax.Array:
    """:func:`_chunk_code`, computed once as an exact float32 product when codes are < 2**24.

    The codes are read by several gathers. Built elementwise, XLA's CPU compiler fuses the
    code (and the binning behind it) into every gather and recomputes it per gathered element
    (``optimization_barrier`` is dropped on CPU); a matrix product is never fused into its
    consumers, so the codes are materialised once. Digits and partial sums stay below 2**24,
    so the float32 product is exact.
    """
    if math.prod(radices) > 2**24:
        return _chunk_code(columns, radices)
    weights = np.cumprod([1, *radices[:0:-1]])[::-1].astype(np.float32)  # most significant first
    stacked = jnp.stack([c.astype(jnp.float32) for c in columns])
    code = jnp.matmul(jnp.asarray(weights), stacked, precision=jax.lax.Precision.HIGHEST)
    return code.astype(jnp.uint32)


def sorted_row_codes(columns: list[jax.Array], radices: list[int]) -> tuple[
        list[jax.Array], list[list[int]]] | None:
    """Sorts rows of digits lexicographically; returns the packed codes in sorted order.

    Rows are packed into uint32 chunk codes. When one chunk holds the whole row, one sort of
    that key does it. Otherwise a least-significant-first radix sort runs one single-key sort
    per chunk, with the sample's current position in the low bits of the key (so each pass is
    stable and the permutation can be read back). Single-operand sorts are several times
    faster than XLA's multi-operand ``lax.sort`` on CPU.

    Args:
      columns: ``width`` arrays ``[num_samples]`` of integer digits, most significant first.
      radices: each column's number of values (digits must lie in ``[0, radix)``).

    Returns:
      ``(codes, layout)``: sorted chunk codes (most significant chunk first) and the chunk
      layout (column indices per chunk), or None if a column is too wide for this method.
    """
    num_samples = columns[0].shape[0]
    layout = _chunk_layout(radices, 2**32)
    if layout is not None and len(layout) == 1:
        return [jnp.sort(_chunk_code(columns, radices))], layout
    index_bits = max(1, (num_samples - 1).bit_length())
    layout = _chunk_layout(radices, 2 ** (32 - index_bits))
    if layout is None:
        return None
    codes = [_materialised_chunk_code([columns[c] for c in chunk], [radices[c] for c in chunk])
             for chunk in layout]
    position = jnp.arange(num_samples, dtype=jnp.uint32)
    order = None
    for code in reversed(codes):
        current = code if order is None else code[order]
        keyed = jnp.sort((current << jnp.uint32(index_bits)) | position)
        step = (keyed & jnp.uint32((1 << index_bits) - 1)).astype(jnp.int32)
        order = step if order is None else order[step]
    return [code[order] for code in codes], layout


@functools.lru_cache(maxsize=64)
def _plogp_table(num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """``-(c/N) log2(c/N)`` for c = 0..N in float64, split as float32 ``hi + lo``."""
    counts = np.arange(num_samples + 1, dtype=np.float64)
    p = counts / num_samples
    with np.errstate(divide="ignore", invalid="ignore"):
        table = np.where(counts > 0, -p * np.log2(np.where(counts > 0, p, 1.0)), 0.0)
    hi = table.astype(np.float32)
    lo = (table - hi.astype(np.float64)).astype(np.float32)
    return hi, lo


def _two_sum(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Knuth's error-free sum: ``a + b == s + err`` exactly in floating point."""
    s = a + b
    b_virtual = s - a
    err = (a - (s - b_virtual)) + (b - b_virtual)
    return s, err


def accurate_sum(values: jax.Array) -> jax.Array:
    """Compensated pairwise sum of a 1-D float array (error ~ one rounding of the result)."""
    size = values.shape[0]
    padded = 1 << max(0, (size - 1).bit_length())
    total = jnp.pad(values, (0, padded - size))
    compensation = jnp.zeros_like(total)
    while total.shape[0] > 1:
        pairs = total.reshape(-1, 2)
        total, err = _two_sum(pairs[:, 0], pairs[:, 1])
        compensation = compensation.reshape(-1, 2).sum(axis=1) + err
    return total[0] + compensation[0]


def group_terms(is_new_group: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-group entropy terms ``-(c/N) log2(c/N)`` of sorted samples, as float32 ``hi + lo``.

    Args:
      is_new_group: ``[num_samples]`` bool, True where a sorted row differs from the previous
        one (and at index 0).

    Returns:
      ``(hi, lo)``, each ``[num_samples]`` float32 (zero past the last group); their exact sum
      is the entropy of the partition, in bits, to float64 accuracy.
    """
    num_samples = is_new_group.shape[0]
    group_id = jnp.cumsum(is_new_group.astype(jnp.int32)) - 1
    counts = jax.ops.segment_sum(
        jnp.ones(num_samples, jnp.int32), group_id, num_segments=num_samples,
        indices_are_sorted=True)
    hi, lo = _plogp_table(num_samples)
    return jnp.asarray(hi)[counts], jnp.asarray(lo)[counts]


def combine_terms(*signed_terms: tuple[int, tuple[jax.Array, jax.Array]]) -> jax.Array:
    """``sum(sign * entropy)`` of several :func:`group_terms`, rounded once to float32.

    Args:
      signed_terms: ``(sign, (hi, lo))`` pairs, sign +1 or -1.

    Returns:
      Scalar float32, bits, within one float32 rounding of the exact combination.
    """
    his = jnp.concatenate([sign * hi for sign, (hi, _) in signed_terms])
    los = sum(sign * jnp.sum(lo) for sign, (_, lo) in signed_terms)
    return accurate_sum(his) + los


def entropy_of_groups(is_new_group: jax.Array) -> jax.Array:
    """Entropy in bits (float32 scalar) of the partition of sorted samples into equal runs."""
    return combine_terms((1, group_terms(is_new_group)))


def _differs_from_previous(keys: list[jax.Array]) -> jax.Array:
    changed = jnp.zeros(keys[0].shape, dtype=bool).at[0].set(True)
    for key in keys:
        changed = changed | jnp.concatenate([jnp.ones(1, bool), key[1:] != key[:-1]])
    return changed


def mutual_informations(digits: list[jax.Array], radix: int, labels: jax.Array,
                        num_classes: int | None = None) -> tuple[jax.Array, jax.Array]:
    """H(T) and H(T) + H(Y) - H(T, Y) in bits, for rows T of digits and integer labels Y.

    With T a deterministic function of X and X uniform over the rows, these are I(X;T) and
    I(T;Y). One lexicographic sort of the rows (T, Y) serves both: T runs and (T, Y) runs.

    Args:
      digits: ``width`` columns, each ``[num_samples]`` integers in ``[0, radix)`` (a list, or
        an array ``[width, num_samples]``). Layers wider than :data:`WIDE_LAYER_COLUMNS` use a
        radix sort whose passes run in a loop, so the program stays small.
      radix: number of distinct digit values.
      labels: ``[num_samples]`` integer labels.
      num_classes: if given, labels must lie in ``[0, num_classes)`` (faster); if None, any
        integers (they are replaced in-graph by their dense rank).

    Returns:
      ``(ixt, ity)``, float32 scalars in bits, each rounded once.
    """
    num_samples, width = labels.shape[0], len(digits)
    if num_classes is None:
        labels, num_classes = dense_rank(labels), num_samples
    labels = labels.astype(jnp.int32)
    if width > WIDE_LAYER_COLUMNS:
        return _mutual_informations_wide(jnp.stack(list(digits)) if isinstance(
            digits, (list, tuple)) else digits, radix, labels, num_classes)
    digits = list(digits)
    columns = [*digits, labels]
    radices = [radix] * width + [num_classes]
    packed = sorted_row_codes(columns, radices)
    if packed is None:
        return _mutual_informations_multikey(digits, labels)
    codes, _ = packed
    # The label is the least significant digit of the last chunk.
    row_keys = codes[:-1] + [codes[-1] // jnp.uint32(num_classes)]
    new_row = _differs_from_previous(row_keys)
    new_row_label = new_row | _differs_from_previous([codes[-1]])
    return _mi_from_groups(new_row, new_row_label, labels)


WIDE_LAYER_COLUMNS = 24


def _mutual_informations_wide(digits: jax.Array, radix: int, labels: jax.Array,
                              num_classes: int) -> tuple[jax.Array, jax.Array]:
    """:func:`mutual_informations` for wide rows ``digits[width, N]``, exactly.

    Columns are packed ``k`` at a time into uint32 chunk codes with room for the sample
    position in the low bits; a least-significant-first radix sort runs one single-key sort
    per chunk inside ``lax.scan`` (after a first pass on the label, the least significant
    key), so the compiled program does not grow with the width.
    """
    width, num_samples = digits.shape
    index_bits = max(1, (num_samples - 1).bit_length())
    capacity = 2 ** (32 - index_bits)
    if radix > capacity or num_classes > capacity:
        return _mutual_informations_multikey(list(digits), labels)
    per_chunk = max(1, int(np.floor(np.log(capacity) / np.log(radix) + 1e-9)))
    while radix**per_chunk > capacity:
        per_chunk -= 1
    num_chunks = -(-width // per_chunk)
    padded = jnp.pad(digits.astype(jnp.uint32), ((0, num_chunks * per_chunk - width), (0, 0)))
    grouped = padded.reshape(num_chunks, per_chunk, num_samples)
    codes = jnp.zeros((num_chunks, num_samples), jnp.uint32)
    for j in range(per_chunk):
        codes = codes * jnp.uint32(radix) + grouped[:, j]
    position = jnp.arange(num_samples, dtype=jnp.uint32)
    low_mask = jnp.uint32((1 << index_bits) - 1)

    def stable_pass(order, code):
        keyed = jnp.sort((code[order] << jnp.uint32(index_bits)) | position)
        return order[(keyed & low_mask).astype(jnp.int32)]

    order = stable_pass(jnp.arange(num_samples, dtype=jnp.int32), labels.astype(jnp.uint32))
    order, _ = jax.lax.scan(lambda o, code: (stable_pass(o, code), None), order, codes[::-1])
    sorted_codes = codes[:, order]
    sorted_labels = labels[order]
    changed = jnp.any(sorted_codes[:, 1:] != sorted_codes[:, :-1], axis=0)
    new_row = jnp.concatenate([jnp.ones(1, bool), changed])
    new_row_label = new_row | jnp.concatenate(
        [jnp.ones(1, bool), sorted_labels[1:] != sorted_labels[:-1]])
    return _mi_from_groups(new_row, new_row_label, labels)


def _mi_from_groups(new_row, new_row_label, labels):
    t_terms = group_terms(new_row)
    ixt = combine_terms((1, t_terms))
    ity = combine_terms((1, t_terms), (1, label_terms(labels)), (-1, group_terms(new_row_label)))
    return ixt, ity


def _mutual_informations_multikey(digits: list[jax.Array], labels: jax.Array):
    """Fallback for rows too wide to pack with positions: one multi-operand ``lax.sort``."""
    operands = [*digits, labels]
    sorted_all = jax.lax.sort(tuple(operands), num_keys=len(operands), is_stable=False)
    new_row = _differs_from_previous(list(sorted_all[:-1]))
    new_row_label = new_row | _differs_from_previous([sorted_all[-1]])
    return _mi_from_groups(new_row, new_row_label, labels)


def dense_rank(labels: jax.Array) -> jax.Array:
    """``[num_samples]`` int32: each label's rank among the distinct label values."""
    sorted_labels = jnp.sort(labels)
    first = jnp.concatenate([jnp.ones(1, bool), sorted_labels[1:] != sorted_labels[:-1]])
    rank_sorted = jnp.cumsum(first.astype(jnp.int32)) - 1
    return rank_sorted[jnp.searchsorted(sorted_labels, labels, side="left")]


def label_terms(labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """:func:`group_terms` of ``[num_samples]`` integer labels (their entropy H(Y))."""
    sorted_labels = jnp.sort(labels.astype(jnp.int32))
    return group_terms(_differs_from_previous([sorted_labels]))
