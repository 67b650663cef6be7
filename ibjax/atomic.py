"""Atomic file writes: a temporary file in the same folder, renamed over the target when done."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path to write; on success it is synced and renamed to ``path``.

    A reader (or a crash, even SIGKILL) sees the old file or the complete new one, never a
    partial one. The new file gets the usual permissions (0666 less the umask). On error the
    temporary file is removed and the old file stays.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        # Created inside the try: an interrupt right after mkstemp must not leave an empty
        # temporary file behind.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX,
                                   dir=path.parent)
        os.close(fd)
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def remove_temporaries(folder: str | os.PathLike, name: str) -> list[Path]:
    """Removes temporary files that :func:`atomic_path` left for ``folder/name`` when its
    process was killed (SIGKILL runs no cleanup); returns what was removed. Call it only
    while no other process may be writing that file (e.g. under the run folder's lock)."""
    removed = []
    for stale in Path(folder).glob(f".{name}.*{TEMPORARY_SUFFIX}"):
        stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed
