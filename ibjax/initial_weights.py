"""The initial weights of ibjax's networks built by two programs: random bits, then floats.

``init`` draws every weight matrix with :func:`ibjax.model.paper_kernel_init`: Threefry bits
(integers), then a truncated normal made of them (floats). On a CPU most of ``init``'s compile
time is LLVM optimising the hash's straight-line code (~3 CPU-seconds on a 2-core CPU for the
paper network), which XLA's optimisation level 0 compiles in a third of the time, but at that
level the float part rounds differently (no fused multiply-adds) and ~3 % of the weights would
move by one ulp. So the runner builds ``init`` in two programs: within :func:`drawing_bits`
the initializer returns each draw's raw 32-bit integers (bit-cast to float32, so the parameter
tree keeps its dtypes), a program XLA may compile at any level since it computes integers only;
:func:`weights_from_bits` then turns them into the weights with JAX's own
``truncated_normal``, fed the same bits, in a program compiled as usual. The weights are the
same bit for bit as one ``init`` program's (``tests/test_initial_weights.py``).
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

try:
    from jax.extend.random import define_prng_impl
except ImportError:  # a JAX without it builds init in one program
    define_prng_impl = None

# While drawing bits: the (shape, dtype) of every draw made so far; otherwise None.
_DRAWS: contextvars.ContextVar[list | None] = contextvars.ContextVar("ibjax_weight_draws",
                                                                    default=None)


@contextlib.contextmanager
def drawing_bits() -> Iterator[list[tuple[tuple[int, ...], Any]]]:
    """Within the block, :func:`ibjax.model.paper_kernel_init` returns its draw's raw bits.

    Yields the list of ``(shape, dtype)`` of the draws traced in the block (see
    :func:`bits_match`).
    """
    draws: list = []
    token = _DRAWS.set(draws)
    try:
        yield draws
    finally:
        _DRAWS.reset(token)


def raw_bits(key: jax.Array, shape, dtype) -> jax.Array | None:
    """Within :func:`drawing_bits`: the 32-bit integers a truncated normal of ``shape`` would
    be made of, as ``dtype`` (float32); otherwise None (draw the weights)."""
    draws = _DRAWS.get()
    if draws is None:
        return None
    draws.append((tuple(shape), jnp.dtype(dtype)))
    return lax.bitcast_convert_type(jax.random.bits(key, tuple(shape), jnp.uint32), dtype)


def bits_match(draws: list, params: Any) -> bool:
    """True when the draws of :func:`drawing_bits` are exactly the ``"kernel"`` leaves of
    ``params`` (shapes, one seed's), all float32: then :func:`weights_from_bits` knows which
    leaves hold bits."""
    kernels = [(tuple(leaf.shape), jnp.dtype(leaf.dtype)) for leaf in _kernels(params)]
    return (bool(draws) and all(dtype == jnp.float32 for _, dtype in draws)
            and collections.Counter(draws) == collections.Counter(kernels)
            and define_prng_impl is not None)


def weights_from_bits(params: Any) -> Any:
    """``params`` (one seed's) with each ``"kernel"`` leaf, drawn as bits, made the weights
    :func:`ibjax.model.paper_kernel_init` draws from those bits.

    JAX's ``truncated_normal`` is called with a key that gives back the bits; it must ask for
    one 32-bit draw of the weights' shape (as JAX 0.4-0.11 do), else tracing raises
    :class:`ReplayError` (and the runner builds init in one program).
    """
    from ibjax.model import paper_kernel_init

    def weights(path, leaf):
        if not _is_kernel(path):
            return leaf
        key = jax.random.wrap_key_data(lax.bitcast_convert_type(leaf, jnp.uint32),
                                       impl=_replay(tuple(leaf.shape)))
        return paper_kernel_init(key, leaf.shape, leaf.dtype)

    return jax.tree_util.tree_map_with_path(weights, params)


class ReplayError(Exception):
    """JAX's truncated normal asked a replayed key for something other than its bits."""


def _is_kernel(path) -> bool:
    return bool(path) and getattr(path[-1], "key", None) == "kernel"


def _kernels(params: Any) -> list:
    return [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
            if _is_kernel(path)]


@functools.cache
def _replay(shape: tuple[int, ...]):
    """A JAX PRNG implementation whose key of ``shape`` uint32 *is* the bits it draws."""

    def random_bits(key_data, bit_width, draw_shape):
        if bit_width != 32 or tuple(draw_shape) != shape:
            raise ReplayError(f"a replayed draw of {shape} was asked for {bit_width}-bit "
                              f"{tuple(draw_shape)}")
        return key_data

    def unsupported(*args):
        raise ReplayError("a replayed draw only gives back its bits")

    return define_prng_impl(
        key_shape=shape, seed=unsupported, split=unsupported, random_bits=random_bits,
        fold_in=unsupported, name=f"ibjax_replay{shape}")
