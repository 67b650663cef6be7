"""Several processes (hosts), one run: joining ``jax.distributed`` and sharing the seeds.

Each process trains a contiguous share of the seeds on its own devices and writes its own
results part; the processes never wait for each other while training (join the parts with
``ibjax merge``).
"""

from __future__ import annotations

import os
import sys
import threading
import time

from ibjax.config import ConfigError
from ibjax.interrupts import exit_status, raise_if_interrupted


def join(coordinator: str | None, num_processes: int | None, process_id: int | None,
         timeout_s: int) -> tuple[int, int]:
    """Initialises ``jax.distributed``; returns ``(this process's index, process count)``.

    JAX waits inside C++ for the other processes, where neither Ctrl-C nor a timeout can
    reach Python, and its own timeout ends the process with a fatal error and a stack trace.
    So the initialisation runs in a thread while this one waits: after ``timeout_s`` seconds,
    or on Ctrl-C, the process ends at once with one line (status 2, or 130).

    Raises:
      ConfigError: no cluster to join (no coordinator given and none detected).
    """
    import jax

    outcome: list[BaseException | None] = []

    def initialise():
        try:
            jax.distributed.initialize(coordinator_address=coordinator,
                                       num_processes=num_processes, process_id=process_id,
                                       initialization_timeout=timeout_s + 60)
            outcome.append(None)
        except BaseException as err:  # handed to the waiting thread
            outcome.append(err)

    thread = threading.Thread(target=initialise, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while thread.is_alive() and time.monotonic() < deadline:
            thread.join(0.1)
            raise_if_interrupted()
    except KeyboardInterrupt as stop:
        _end(exit_status(stop), "interrupted while waiting for the other processes to join")
    if thread.is_alive():
        where = f" at {coordinator}" if coordinator else ""
        _end(2, f"error: --distributed: the processes did not all join{where} within "
                f"{timeout_s} s (--distributed-timeout); check that every process was started "
                f"with the same --coordinator and --num-processes and its own --process-id")
    if outcome and outcome[0] is not None and "before any JAX" in str(outcome[0]):
        raise ConfigError("--distributed: JAX was already used in this process; join the "
                          "other processes first (ibjax run --distributed in a process of "
                          "its own)") from None
    if outcome and outcome[0] is not None:
        raise ConfigError(
            f"--distributed: found no cluster to join ({outcome[0]}); outside SLURM or Open "
            f"MPI give --coordinator HOST:PORT --num-processes N --process-id I") from None
    return jax.process_index(), jax.process_count()


def _end(status: int, message: str) -> None:
    """Ends the process now (the initialising thread cannot be stopped) with one line."""
    sys.stderr.write(f"\nibjax run: {message}\n")
    sys.stderr.flush()
    os._exit(status)


def share(seeds: range | list[int], part: tuple[int, int]) -> list[int]:
    """Process ``part = (index, count)``'s contiguous share of the seeds (as
    ``numpy.array_split`` divides them)."""
    index, count = part
    if len(seeds) < count:
        raise ConfigError(f"--distributed over {count} processes needs at least {count} seeds")
    size, extra = divmod(len(seeds), count)
    start = index * size + min(index, extra)
    return [int(s) for s in seeds[start:start + size + (index < extra)]]
