"""The ``ibjax`` command and ``python -m ibjax``.

The Ctrl-C and SIGTERM handlers (:mod:`ibjax.interrupts`) are in place before the command
line's modules import JAX (about a second); an interrupt during that import waits for its end
(jaxlib's extension, interrupted while it loads, can fail or crash the process), then ends
the command with one line. Then :func:`ibjax.cli.main` runs the command.
"""

from __future__ import annotations

import sys

from ibjax import interrupts  # the standard library only: JAX is not imported yet


def main(argv: list[str] | None = None) -> int:
    """Runs the command line (``argv``: its arguments, default ``sys.argv[1:]``); returns the
    exit status."""
    previous = interrupts.handle_signals()
    try:
        try:
            with interrupts.deferred():  # raised once the import is done
                from ibjax.cli import main as command_line
        except KeyboardInterrupt as stop:
            print("\nibjax: interrupted before anything was started", file=sys.stderr)
            return interrupts.exit_status(stop)
        return command_line(argv)
    finally:
        interrupts.restore(previous)


if __name__ == "__main__":
    sys.exit(main())
