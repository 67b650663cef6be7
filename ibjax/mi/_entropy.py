"""Exact entropy of discrete rows, inside a compiled program, in 32-bit arithmetic.

A row of small non-negative integers (e.g. bin indices) and its label are packed exactly into
uint32 codes (mixed radix); a single-key sort, or a few radix-sort passes for wide rows, puts
equal rows next to each other; group sizes are counted with a
fixed-length segment sum; each group's term ``-(c/N) log2(c/N)`` is looked up as an exact
fixed-point integer (rounded at ``2**-(31 + log2 terms)``) and the terms are summed exactly in
int32 limbs, so the float32 result is within about one float32 rounding of the exact value.
No hashing: two different rows never merge.
Nothing here changes JAX's global settings (no 64-bit mode).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ibjax.mi import _hooks


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


_CUMSUM_BLOCK = 64


def inclusive_cumsum(values: jax.Array) -> jax.Array:
    """``jnp.cumsum`` of a 1-D array of small non-negative integers (0/1 flags here), exactly.

    Computed blockwise as float32 products with triangular matrices of ones: each block of 64
    values is summed by one product, the blocks' totals by a recursive call. Every partial sum
    is an integer below 2**24, so the float32 products are exact (``Precision.HIGHEST``
    keeps GPUs from rounding the inputs to TF32). This compiles to a handful of kernels (an
    associative scan needs ~9 per call, ``jnp.cumsum`` a reduce-window that runs 2x slower on
    a CPU) and runs as fast as the associative scan. Arrays whose sum could reach 2**24 use
    the associative scan.

    Args:
      values: ``[n]`` integers; for the product path each must be in ``[0, 2**24 / n)``.

    Returns:
      ``[n]`` int32 inclusive prefix sums.
    """
    size = values.shape[0]
    if size >= 2**24:
        return jax.lax.associative_scan(jnp.add, values.astype(jnp.int32))
    block = _CUMSUM_BLOCK
    num_blocks = -(-size // block)
    padded = jnp.pad(values.astype(jnp.float32), (0, num_blocks * block - size))
    blocks = padded.reshape(num_blocks, block)
    upper = jnp.asarray(np.triu(np.ones((block, block), np.float32)))
    within = jnp.matmul(blocks, upper, precision=jax.lax.Precision.HIGHEST)
    if num_blocks > 1:
        totals = within[:, -1]
        before = inclusive_cumsum(totals).astype(jnp.float32) - totals
        within = within + before[:, None]
    return within.reshape(-1)[:size].astype(jnp.int32)


def group_sizes(is_new_group: jax.Array) -> jax.Array:
    """Sizes of the runs of sorted samples, ``[num_samples]`` int32, zero past the last run.

    Args:
      is_new_group: ``[num_samples]`` bool, True where a sorted row differs from the previous
        one (and at index 0).
    """
    num_samples = is_new_group.shape[0]
    group_id = inclusive_cumsum(is_new_group.astype(jnp.int32)) - 1
    return jax.ops.segment_sum(
        jnp.ones(num_samples, jnp.int32), group_id, num_segments=num_samples,
        indices_are_sorted=True)


class FixedPointTable(NamedTuple):
    """``-(c/N) log2(c/N)`` for counts c = 0..N as exact integers, for summing in int32.

    Each term is ``round(value * 2**frac_bits)``, split into ``limbs`` base-``2**limb_bits``
    digits (least significant first), so ``num_terms`` terms with signs +-1 sum exactly in
    int32, limb by limb.

    Attributes:
      limbs: ``[N + 1, num_limbs]`` int32, each in ``[0, 2**limb_bits)``.
      limb_bits: bits per limb.
      frac_bits: fixed-point scale.
    """

    limbs: np.ndarray
    limb_bits: int
    frac_bits: int


@functools.lru_cache(maxsize=64)
def fixed_point_table(num_samples: int, num_terms: int) -> FixedPointTable:
    """The :class:`FixedPointTable` for samples of ``num_samples`` and sums of ``num_terms``.

    ``frac_bits = 30 + bit_length(num_terms)``, so the rounding of all terms together moves
    the sum by less than ``num_terms * 2**-(frac_bits + 1) < 2**-31`` bits. Limbs have at most
    18 bits and ``num_terms * 2**limb_bits < 2**31``, so limb sums do not overflow int32 and
    the normalised top limb of any sum of entropies below 64 bits is exact in float32.
    """
    term_bits = num_terms.bit_length()
    if term_bits > 24:
        raise ValueError(f"too many samples for exact entropy sums: {num_terms} terms (max 2**24)")
    frac_bits = 30 + term_bits
    limb_bits = min(18, 31 - term_bits)
    num_limbs = -(-frac_bits // limb_bits)
    counts = np.arange(num_samples + 1, dtype=np.float64)
    p = counts / num_samples
    with np.errstate(divide="ignore", invalid="ignore"):
        table = np.where(counts > 0, -p * np.log2(np.where(counts > 0, p, 1.0)), 0.0)
    scaled = np.round(np.ldexp(table, frac_bits)).astype(np.int64)  # < 2**frac_bits <= 2**54
    shifts = limb_bits * np.arange(num_limbs, dtype=np.int64)
    limbs = (scaled[:, None] >> shifts[None, :]) & ((1 << limb_bits) - 1)
    return FixedPointTable(limbs.astype(np.int32), limb_bits, frac_bits)


def combine_entropies(*signed_sizes: tuple[int, jax.Array]) -> jax.Array:
    """``sum(sign * H)`` of partitions given by their :func:`group_sizes`, as float32 bits.

    Every term ``-(c/N) log2(c/N)`` is looked up as an exact fixed-point integer
    (:func:`fixed_point_table`) and the terms are summed exactly in int32 limbs; the only
    errors are the terms' rounding (< 2**-31 bits in all) and the final conversion to
    float32 (about one rounding).

    Args:
      signed_sizes: ``(sign, sizes)`` pairs, sign +1 or -1, sizes ``[num_samples]`` int32
        (all of the same ``num_samples``).

    Returns:
      Scalar float32, bits.
    """
    num_samples = signed_sizes[0][1].shape[0]
    table = fixed_point_table(num_samples, sum(s.shape[0] for _, s in signed_sizes))
    limbs = jnp.asarray(table.limbs)
    totals = sum(sign * jnp.sum(limbs[sizes], axis=0) for sign, sizes in signed_sizes)
    return bits_from_limbs(totals, table)


def bits_from_limbs(totals: jax.Array, table: FixedPointTable) -> jax.Array:
    """A sum of fixed-point terms of ``table``, given as its int32 limb sums ``[num_limbs]``
    (least significant first), as float32 bits (about one rounding)."""
    # Carry each limb's excess into the next, so every limb but the top one is in
    # [0, 2**limb_bits); then each limb, scaled by its power of two, is an exact float32.
    parts, carry = [], jnp.int32(0)
    num_limbs = table.limbs.shape[1]
    for i in range(num_limbs):
        limb = totals[i] + carry
        if i < num_limbs - 1:
            carry = limb >> table.limb_bits
            limb = limb & ((1 << table.limb_bits) - 1)
        scale = np.float32(2.0 ** (table.limb_bits * i - table.frac_bits))
        parts.append(limb.astype(jnp.float32) * scale)
    return accurate_sum(jnp.stack(parts))


_EXACT_IN_FLOAT32 = (jnp.float32, jnp.float16, jnp.bfloat16)


def column_ranks(values: jax.Array, dense: bool) -> jax.Array:
    """Each value's rank within its row, in the order of ``jnp.sort`` (-0 equals 0, every NaN
    equal and above +inf; on a CPU, where XLA flushes subnormals to zero, they rank as 0): the
    number of smaller values in the row (``dense=False``) or of smaller distinct values
    (``dense=True``, an exact relabelling into ``[0, N)``).

    ``[d, N]`` float -> ``[d, N]`` int32.
    """
    ranks_fn = _hooks.RANKING.get()  # a substitute set while tracing, or None
    if ranks_fn is not None and values.dtype in _EXACT_IN_FLOAT32:  # exact in float32
        return ranks_fn(values.astype(jnp.float32), dense)
    if dense:
        return jax.vmap(dense_rank)(values)
    return jax.vmap(lambda row: jnp.searchsorted(jnp.sort(row), row, side="left"))(
        values).astype(jnp.int32)


def entropy_of_groups(is_new_group: jax.Array) -> jax.Array:
    """Entropy in bits (float32 scalar) of the partition of sorted samples into equal runs."""
    return combine_entropies((1, group_sizes(is_new_group)))


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
    limbs_fn = _hooks.COUNTING.get()  # a substitute set while tracing, or None
    if limbs_fn is not None:
        table_t = fixed_point_table(num_samples, num_samples)
        table_ty = fixed_point_table(num_samples, 3 * num_samples)  # as _mi_from_groups's
        stacked = jnp.stack(list(digits)) if isinstance(digits, (list, tuple)) else digits
        limbs_t, limbs_ty = limbs_fn(stacked.astype(jnp.int32), labels, radix, num_classes,
                                     table_t, table_ty)
        return bits_from_limbs(limbs_t, table_t), bits_from_limbs(limbs_ty, table_ty)
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
    per_chunk = width if radix == 1 else max(1, int(np.floor(np.log(capacity) / np.log(radix)
                                                             + 1e-9)))
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
    t_sizes = group_sizes(new_row)
    ixt = combine_entropies((1, t_sizes))
    ity = combine_entropies((1, t_sizes), (1, label_sizes(labels)),
                            (-1, group_sizes(new_row_label)))
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
    rank_sorted = inclusive_cumsum(first.astype(jnp.int32)) - 1
    return rank_sorted[jnp.searchsorted(sorted_labels, labels, side="left")]


def label_sizes(labels: jax.Array) -> jax.Array:
    """:func:`group_sizes` of ``[num_samples]`` integer labels (the classes' sizes)."""
    sorted_labels = jnp.sort(labels.astype(jnp.int32))
    return group_sizes(_differs_from_previous([sorted_labels]))
