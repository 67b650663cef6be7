"""SIGTERM handled like Ctrl-C: cluster schedulers send it before killing a job, so a run
saves its finished work and ends with status 143 (130 for Ctrl-C)."""

from __future__ import annotations

import signal


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an interrupt."""


def _raise_terminated(signum, frame):
    raise Terminated


def handle_sigterm():
    """Makes SIGTERM raise :class:`Terminated`; returns the handler it replaces."""
    return signal.signal(signal.SIGTERM, _raise_terminated)


def exit_status(stop: BaseException) -> int:
    """143 for SIGTERM (also when it caused ``stop``), 130 for Ctrl-C."""
    terminated = isinstance(stop, Terminated) or isinstance(stop.__context__, Terminated)
    return 143 if terminated else 130
