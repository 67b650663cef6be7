"""Atomic file writes: a temporary file in the same folder, renamed over the target when done."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"


class CannotWrite(OSError):
    """A file could not be written; the message names it and why."""

    def __str__(self) -> str:
        return f"cannot write {self.filename} ({self.strerror})"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path to write; on success it is synced and renamed to ``path``.

    A reader (or a crash, even SIGKILL) sees the old file or the complete new one, never a
    partial one. The new file gets the usual permissions (0666 less the umask). On error the
    temporary file is removed and the old file stays. Missing parent folders are created.

    Raises:
      CannotWrite: (an OSError) ``path`` is a folder or a device, a parent is a file, or the
        file system refused (full, read-only...); the message names ``path``.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        raise CannotWrite(errno.EISDIR if path.is_dir() else errno.EEXIST,
                          "a folder" if path.is_dir() else "exists and is not a regular file",
                          str(path))
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CannotWrite(errno.ENOTDIR, f"{parent} is a file, not a folder", str(path))
            break
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
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
    except OSError as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, CannotWrite):
            raise
        raise CannotWrite(err.errno, err.strerror or str(err), str(path)) from err
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def remove_temporaries(folder: str | os.PathLike, pattern: str) -> list[Path]:
    """Removes temporary files that :func:`atomic_path` left for the files of ``folder``
    matching ``pattern`` (a glob, e.g. ``results.nc`` or ``gradients*.png``) when its process
    was killed (SIGKILL runs no cleanup); returns what was removed. Call it only while no
    other process may be writing those files (e.g. under the run folder's lock)."""
    removed = []
    for stale in Path(folder).glob(f".{pattern}.*{TEMPORARY_SUFFIX}"):
        stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed
