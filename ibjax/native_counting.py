"""The estimators' integer work through ibjax's own CPU routines (``native_counting.cc``):
the discrete estimators' exact counting and per-neuron ranking, and kNN's neighbour counts.

Every discrete estimator (binning, binning-width, equal-mass) ends in
:func:`ibjax.mi._entropy.mutual_informations`: sort the rows of bin indices with their labels,
count the groups of equal rows, and sum each group's fixed-point entropy term. XLA compiles
that into ~200 small kernels per program (sorts, prefix sums, segment sums, table lookups)
and spends ~1.5 s of a 2-core CPU's compile on them for the paper network's six layers. On a
CPU, ibjax's trainer instead calls one FFI handler per layer (:func:`discrete_mi_limbs`), which
sorts and counts in C++ and returns the same integer limb sums, so the bits are the same as
the XLA path's, bit for bit (``tests/test_native_counting.py``). The library is built on first
use (:mod:`ibjax.native`); where it cannot be, the trainer counts in XLA.

``binning-width``, ``equal-mass`` and ``exact`` first rank each neuron's values among its N
samples (:func:`ibjax.mi._entropy.column_ranks`): in XLA a sort and a search per neuron,
~0.3 ms per 4096 values on a CPU, 10 times the counting; :func:`column_ranks` does it in C++
with a radix sort, with the same integers.

``knn`` counts neighbours within max-norm radii; XLA builds the distances in blocks of rows
and finds each row's k-th neighbour in k rounds of row minima. :func:`knn_counts` does each
row in one pass over the others (distances exact, so the counts are the same on the same
jittered values), 3-5 times faster on the paper network's layers on a CPU.

:func:`native_routines` turns all three on; the trainer and the recorder use it on CPUs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from ibjax import native
from ibjax.mi._entropy import FixedPointTable
from ibjax.mi._hooks import COUNTING, NEIGHBOURS, RANKING


def discrete_counting_for(platform: str) -> str:
    """``"native"`` on CPUs where ibjax's native routines build (:func:`ibjax.native.available`),
    else ``"xla"``: how the trainer's and the recorder's discrete estimators count."""
    return "native" if platform == "cpu" and native.available() else "xla"


def discrete_mi_limbs(digits: jax.Array, labels: jax.Array, radix: int, num_classes: int,
                      table_t: FixedPointTable, table_ty: FixedPointTable) -> tuple[
                          jax.Array, jax.Array]:
    """The int32 limb sums of H(T) and of H(T) + H(Y) - H(T, Y), counted natively.

    Args:
      digits: ``[width, N]`` int32, each in ``[0, radix)``: row i of T is ``digits[:, i]``.
      labels: ``[N]`` int32 in ``[0, num_classes)``.
      radix, num_classes: the digits' and labels' number of values.
      table_t, table_ty: the fixed-point tables of the two sums (``N + 1`` rows).

    Returns:
      ``([Lt], [Lty])`` int32, the limbs of :func:`ibjax.mi._entropy.bits_from_limbs`.
      Vmappable (the handler loops over the vmapped axes); runs on CPUs only.

    Raises:
      RuntimeError: ibjax's native routines cannot be built here (the reason said).
    """
    native.require("the native counting")
    results = (jax.ShapeDtypeStruct((table_t.limbs.shape[1],), jnp.int32),
               jax.ShapeDtypeStruct((table_ty.limbs.shape[1],), jnp.int32))
    # expand_dims: an operand not vmapped (the labels, usually) keeps size 1 on that axis
    # instead of being copied for every seed; the handler broadcasts it.
    return jax.ffi.ffi_call(native.DISCRETE_MI_LIMBS, results, vmap_method="expand_dims")(
        digits.astype(jnp.int32), labels.astype(jnp.int32), radix=np.int64(radix),
        num_classes=np.int64(num_classes),
        table_t=np.ascontiguousarray(table_t.limbs, np.int32).reshape(-1),
        table_ty=np.ascontiguousarray(table_ty.limbs, np.int32).reshape(-1))


def column_ranks(values: jax.Array, dense: bool) -> jax.Array:
    """:func:`ibjax.mi._entropy.column_ranks` of ``values`` ``[..., N]`` (along the last axis;
    float32, float16 or bfloat16), computed natively: the same int32 ranks as the program's
    sorts. Vmappable, and differentiable (zero gradient, as the sorts'); runs on CPUs only.

    Raises:
      TypeError: ``values`` of another dtype (its ranks would not be exact in float32).
      RuntimeError: ibjax's native routines cannot be built here (the reason said).
    """
    values = jnp.asarray(values)
    if values.dtype not in (jnp.float32, jnp.float16, jnp.bfloat16):
        raise TypeError(f"values must be float32, float16 or bfloat16 (exact in float32), got "
                        f"{values.dtype}")
    native.require("the native ranking")
    # Ranks are integers: no gradient flows (as through the sorts), and an FFI call has no rule.
    values = jax.lax.stop_gradient(values).astype(jnp.float32)
    return jax.ffi.ffi_call(native.COLUMN_RANKS, jax.ShapeDtypeStruct(values.shape, jnp.int32),
                            vmap_method="expand_dims")(values, dense=np.int64(bool(dense)))


def knn_counts(t: jax.Array, y: jax.Array, x: jax.Array, k: int) -> jax.Array:
    """The neighbour counts of :data:`ibjax.mi._hooks.NEIGHBOURS`, computed natively.

    Args:
      t: ``[d, N]`` float32, the layer's jittered columns (finite).
      y: ``[N]`` int32 labels.
      x: ``[D, N]`` float32, the inputs' jittered columns (``D = 0`` or None: none).
      k: neighbours, >= 1.

    Returns:
      ``[4, N]`` int32: class sizes, rows within the k-th same-class neighbour, other rows
      closer than the k-th joint neighbour in x and in t. Vmappable, and differentiable (zero
      gradient, as the counts in the program); runs on CPUs only.

    Raises:
      ValueError: ``k`` not an integer in ``[1, N]``.
      RuntimeError: ibjax's native routines cannot be built here (the reason said).
    """
    t = jnp.asarray(t)
    x = jnp.zeros((0, t.shape[-1]), jnp.float32) if x is None else x
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= t.shape[-1]:
        raise ValueError(f"k must be an integer in [1, N = {t.shape[-1]}], got {k!r}")
    native.require("the native kNN counts")
    result = jax.ShapeDtypeStruct((4, t.shape[-1]), jnp.int32)
    t, x = (jax.lax.stop_gradient(a).astype(jnp.float32) for a in (t, x))  # integer counts
    return jax.ffi.ffi_call(native.KNN_COUNTS, result, vmap_method="expand_dims")(
        t, y.astype(jnp.int32), x, k=np.int64(k))


@contextlib.contextmanager
def native_routines(counting: str) -> Iterator[None]:
    """Within the block (inside the traced function), the estimators rank, count and find
    neighbours with the native routines if ``counting`` is ``"native"``, in the program if
    ``"xla"`` (the same integers either way)."""
    native_ = counting == "native"
    with COUNTING.using(discrete_mi_limbs if native_ else None), RANKING.using(
            column_ranks if native_ else None), NEIGHBOURS.using(knn_counts if native_ else None):
        yield
