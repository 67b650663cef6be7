"""Random permutations without a sort: a keyed Feistel bijection with cycle walking.

Reshuffling the training rows every epoch was the one sort in a training epoch, and XLA's CPU
sort is slow: a single-operand sort of random keys took 0.136 ms per 3277-row shuffle, about
a sixth of a paper-network epoch on a CPU core. :func:`permutation` instead evaluates a keyed
bijection of ``[0, a * b)`` elementwise and walks cycles back into ``[0, n)`` (Black & Rogaway,
"Ciphers with arbitrary finite domains", 2002): no sort, no scatter, 0.05 ms for the same
shuffle (``benchmarks/epoch_cost.py``).

The bijection is a mixed-radix Feistel network (as in format-preserving encryption) on
``a * b`` values (:func:`feistel_radices`): ``n`` itself when ``n >= 256`` and ``n = a * b``
with ``a <= b <= 4a`` (3277 = 29 x 113, the paper's training set), so no element needs a second
step; otherwise ``a = ceil(sqrt(n))``, ``b = ceil(n / a)``, a domain larger than ``n`` by less
than ``a``, whose few outside elements walk. Round functions hash the half-block with a round
key drawn from the JAX key (murmur3's 32-bit finaliser). As with any keyed shuffle this draws
from a large family of permutations, not exactly uniformly from all ``n!``;
``tests/test_permutation.py`` checks, at small and at training-set sizes, that every position is
uniformly distributed over the values and that pairs of positions and neighbours are
independent (chi-square), tests that fail for fewer rounds than used here.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def num_rounds(n: int) -> int:
    """Feistel rounds for a permutation of ``n``: 8, or 16 below 256 elements.

    With few values per half-block each round function has few possible values, so small
    domains need more rounds to mix (measured: 12 rounds still fail the pair test at n = 8).
    """
    return 8 if n >= 256 else 16


def _mix(value: jax.Array, round_key: jax.Array) -> jax.Array:
    """A 32-bit integer hash of ``value ^ round_key`` (murmur3's finaliser), uint32."""
    h = value ^ round_key
    h = (h ^ (h >> 16)) * jnp.uint32(0x85EBCA6B)
    h = (h ^ (h >> 13)) * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def _feistel(value: jax.Array, round_keys: jax.Array, radix_left: int,
             radix_right: int) -> jax.Array:
    """The keyed bijection of ``[0, radix_left * radix_right)``, elementwise on uint32 ``value``.

    ``value = left * radix_right + right``. Each round maps ``(left, right)`` to
    ``(right, (left + F(right)) mod radix_left)``, a bijection for any round function ``F``;
    the two radices trade places every round.
    """
    left, right = value // radix_right, value % radix_right
    for round_key in round_keys:
        # F(right) in [0, radix_left): the hash's top 16 bits, scaled (radices are < 2**16).
        offset = ((_mix(right, round_key) >> 16) * jnp.uint32(radix_left)) >> 16
        total = left + offset
        left, right = right, jnp.where(total >= radix_left, total - radix_left, total)
        radix_left, radix_right = radix_right, radix_left
    return left * jnp.uint32(radix_right) + right


MAX_RADIX_RATIO = 4  # an exact factorisation n = a * b is used when b <= 4 a


def feistel_radices(n: int) -> tuple[int, int]:
    """The Feistel network's two radices ``(a, b)``, ``a <= b``, ``a * b >= n``.

    For ``n >= 256``, ``a * b == n`` when ``n`` has a divisor ``a`` with
    ``n / MAX_RADIX_RATIO <= a**2 <= n`` (the largest such ``a``); otherwise, and for smaller
    ``n`` (where tiny radices would restrict the reachable permutations, e.g. ``3 = 1 x 3``
    gives only rotations), ``a = ceil(sqrt(n))`` and ``b = ceil(n / a)``.
    """
    root = math.isqrt(n) if n >= 256 else 0
    for a in range(root, 0, -1):
        if a * a * MAX_RADIX_RATIO < n:
            break
        if n % a == 0:
            return a, n // a
    radix_left = math.isqrt(n - 1) + 1
    return radix_left, -(-n // radix_left)


def permutation(key: jax.Array, n: int) -> jax.Array:
    """A random permutation of ``range(n)`` from a JAX key.

    Deterministic in ``key`` on every backend, and vmappable over keys. Element ``i`` is the
    Feistel image of ``i``, re-applied while it lies outside ``[0, n)`` (cycle walking).

    Args:
      key: a JAX PRNG key (typed or raw).
      n: the number of elements, ``1 <= n < 2**31`` (a Python int: shapes are static).

    Returns:
      ``[n]`` int32 holding each of ``0 .. n - 1`` once.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n < 2**31:
        raise ValueError(f"n must be an integer in [1, 2**31), got {n!r}")
    radix_left, radix_right = feistel_radices(n)
    round_keys = list(jax.random.bits(key, (num_rounds(n),), jnp.uint32))
    first = _feistel(jnp.arange(n, dtype=jnp.uint32), round_keys, radix_left, radix_right)
    if radix_left * radix_right == n:  # a bijection of [0, n) already
        return first.astype(jnp.int32)

    def walk(value):
        outside = value >= n
        return jnp.where(outside, _feistel(value, round_keys, radix_left, radix_right), value)

    # Two unconditional steps put all but a handful of elements in range; the loop does the rest.
    start = walk(walk(first))
    return jax.lax.while_loop(lambda value: jnp.any(value >= n), walk, start).astype(jnp.int32)
