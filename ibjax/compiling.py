"""Making ibjax's own programs quicker to trace and compile, without changing what they compute.

:func:`compiling` wraps the building of the runner's programs: Python's garbage collector is
paused. :func:`threefry_unrolled_on_cpu` wraps the lowering of ``init``: on a CPU, JAX's
Threefry hash is lowered as straight-line code instead of a loop. Both are undone when the
block ends, so programs that users lower themselves are not affected.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def compiling() -> Iterator[None]:
    """Python's garbage collector paused while the block traces, lowers and compiles."""
    with _garbage_collector_paused():
        yield


@contextlib.contextmanager
def _garbage_collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while JAX traces and lowers (restored after).

    Tracing creates many short-lived objects, and the collector's passes over them were a
    fifth of the paper network's trace-and-lower time (2.3 -> 1.8 s on a 2-core CPU); the
    cycles it would have freed are collected once the program is built.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _cpu_threefry_rule():
    """``(table, primitive)``: JAX's CPU-specific lowering table and the Threefry primitive,
    or None where this JAX keeps them elsewhere (then nothing is changed)."""
    try:
        from jax._src.interpreters import mlir
        try:
            from jax._src.random import threefry2x32 as threefry
        except ImportError:  # older JAX
            from jax._src import prng as threefry
        return mlir._platform_specific_lowerings["cpu"], threefry.threefry2x32_p
    except (ImportError, AttributeError, KeyError):
        return None


@contextlib.contextmanager
def threefry_unrolled_on_cpu() -> Iterator[None]:
    """Within the block, Threefry-2x32 lowers on CPU as on GPUs: its 20 rounds unrolled.

    JAX 0.10 lowers the hash on CPU as a ``while`` loop of 5 iterations, which XLA's CPU
    compiler turns into several kernels per call; ibjax's ``init`` program holds 18 calls
    (key derivations and the initial weights) and took 2.9-3.0 s to compile on a 2-core CPU,
    1.6-1.9 s with the hash unrolled (later JAX versions lower it unrolled on every platform).
    Only ``init`` is lowered so: in the training segment the unrolled hash made a one-network-
    per-device run 2.5x slower (the per-epoch shuffle keys; 3.3 -> 8.3 s for 1 seed x 8000
    epochs), though noise-injected training at 16 seeds ran ~15 % faster.
    The hash computes the same 32-bit integers either way, so every random number, and so
    every result, is unchanged bit for bit. The CPU rule is removed from JAX's lowering table
    for the duration of the block (the platform-independent unrolled rule then applies) and
    put back when the last such block, in any thread, ends (other threads lowering meanwhile
    get the unrolled hash: the same numbers); a JAX without that rule is left alone.
    """
    found = _cpu_threefry_rule()
    if found is None:
        yield
        return
    table, primitive = found
    global _unrolled_blocks, _saved_rule
    with _threefry_lock:  # the first block to enter takes the rule out, the last puts it back
        if _unrolled_blocks == 0:
            _saved_rule = table.pop(primitive, None)
        _unrolled_blocks += 1
    try:
        yield
    finally:
        with _threefry_lock:
            _unrolled_blocks -= 1
            if _unrolled_blocks == 0 and _saved_rule is not None:
                table[primitive] = _saved_rule
                _saved_rule = None


# Blocks of threefry_unrolled_on_cpu open in any thread, and the rule they took out.
_threefry_lock = threading.Lock()
_unrolled_blocks = 0
_saved_rule = None
