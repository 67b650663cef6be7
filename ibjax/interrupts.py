"""Ctrl-C and SIGTERM for the command line: cluster schedulers send SIGTERM before killing a
job, so a run saves its finished work and ends with status 143 (130 for Ctrl-C).

Python runs a signal's handler between two bytecodes of the main thread, which can fall inside
a garbage-collector callback (JAX registers one); an exception raised there is printed as
"Exception ignored" and discarded, so the interrupt would be lost (a run would go on to its
end, a process waiting for its peers would keep waiting). The handlers here also remember the
signal, and the long loops (the runner's segments, the wait for other processes) call
:func:`raise_if_interrupted`, which raises it again; Python's "Exception ignored" report of
such an interrupt is left out (``sys.unraisablehook``), since it is not lost.

An interrupt takes effect when the segment in flight ends (the run waits for it, then saves).
A watchdog thread (woken by Python's signal wakeup file descriptor) ends the process with the
signal's status if it has not ended within :data:`GRACE_S` seconds of the signal (a segment far
longer than planned), or at once on a second signal; the finished segments are then in the
checkpoint, written atomically, as after ``kill -9``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time

GRACE_S = 120.0  # after a signal, the longest wait for the run to stop before exiting


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an interrupt."""


_received: list[int] = []  # signals handled since handle_signals()


_watchdog: list = []  # (read fd, write fd, previous wakeup fd) while one watches


def _interrupt(signum, frame):
    _received.append(signum)
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def _watch(read_fd: int) -> None:
    """The watchdog thread: after a SIGINT or SIGTERM, exits the process if it has not ended
    within :data:`GRACE_S`, or at once on a second one."""
    first, deadline = None, None
    while True:
        timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        ready, _, _ = select.select([read_fd], [], [], timeout)
        if not ready:  # the grace period has passed
            _exit(first, f"the run did not stop within {GRACE_S:.0f} s of the signal")
        try:
            data = os.read(read_fd, 1)
        except OSError:
            data = b""
        if not data:  # restore() closed the pipe: the command ended normally
            os.close(read_fd)
            return
        if data[0] not in (signal.SIGINT, signal.SIGTERM):
            continue
        if first is not None:
            _exit(data[0], "a second signal")
        first, deadline = data[0], time.monotonic() + GRACE_S


def _exit(signum: int, why: str) -> None:
    print(f"\nibjax: {why}; stopping now (finished segments are in the checkpoint)",
          file=sys.stderr, flush=True)
    os._exit(143 if signum == signal.SIGTERM else 130)


def _start_watchdog() -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except ValueError:  # not the main thread of the main interpreter
        os.close(read_fd)
        os.close(write_fd)
        return
    _watchdog.append((read_fd, write_fd, previous))
    threading.Thread(target=_watch, args=(read_fd,), name="ibjax-interrupt-watchdog",
                     daemon=True).start()


def _stop_watchdog() -> None:
    if _watchdog:
        read_fd, write_fd, previous = _watchdog.pop()
        signal.set_wakeup_fd(previous)
        os.close(write_fd)  # the thread reads the end of the pipe and returns


def _unraisable(report) -> None:
    """``sys.unraisablehook``: an interrupt discarded after :func:`_interrupt` remembered it
    is not reported; anything else goes to the hook that was there before."""
    if not (isinstance(report.exc_value, KeyboardInterrupt) and _received):
        _previous_unraisable[-1](report)


_previous_unraisable: list = []


def handle_signals() -> tuple | None:
    """SIGINT raises ``KeyboardInterrupt`` and SIGTERM :class:`Terminated`, both remembered
    for :func:`raise_if_interrupted`; returns what :func:`restore` puts back (the previous
    SIGINT and SIGTERM handlers and unraisable hook). Outside the main thread, where Python
    sets no signal handlers, nothing changes (None). Calls may nest."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGINT) is not _interrupt:  # not nested: a fresh start
        _received.clear()
        _start_watchdog()
    _previous_unraisable.append(sys.unraisablehook)
    sys.unraisablehook = _unraisable
    return (signal.signal(signal.SIGINT, _interrupt), signal.signal(signal.SIGTERM, _interrupt),
            _previous_unraisable[-1])


def restore(previous: tuple | None) -> None:
    """Puts back what :func:`handle_signals` returned (``None`` signal handlers, set outside
    Python, are left)."""
    if previous is None:
        return
    *handlers, unraisable = previous
    for signum, handler in zip((signal.SIGINT, signal.SIGTERM), handlers, strict=True):
        if handler is not None:
            signal.signal(signum, handler)
    sys.unraisablehook = unraisable
    if _previous_unraisable:
        _previous_unraisable.pop()
    if signal.getsignal(signal.SIGINT) is not _interrupt:  # the outermost call ended
        _received.clear()
        _stop_watchdog()


def _remember(signum, frame):
    _received.append(signum)


@contextlib.contextmanager
def deferred():
    """Inside, SIGINT and SIGTERM are only remembered, then raised on leaving (for code that
    must not be interrupted halfway, such as a C extension initialising: jaxlib's can fail or
    crash). Main thread, within :func:`handle_signals`."""
    handlers = signal.signal(signal.SIGINT, _remember), signal.signal(signal.SIGTERM, _remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    raise_if_interrupted()


def raise_if_interrupted() -> None:
    """Raises the interrupt of a signal whose exception Python discarded (module docstring);
    nothing when no signal came, or when :func:`handle_signals` is not in use."""
    if _received:
        signum = _received[-1]
        _received.clear()
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def exit_status(stop: BaseException) -> int:
    """143 for SIGTERM (also when it caused ``stop``), 130 for Ctrl-C."""
    terminated = isinstance(stop, Terminated) or isinstance(stop.__context__, Terminated)
    return 143 if terminated else 130
