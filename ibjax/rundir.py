"""The output folder of ``ibjax run``: checked before compiling, one run at a time, a record
of the run for resuming, finished work never lost.

A run folder holds ``results.nc`` (the finished run), ``checkpoint.npz`` (an unfinished one),
``run.json`` (what the run is: its configuration, seeds, data fingerprint and command, written
as it starts, so even a run killed before its first checkpoint can be resumed) and the
figures. Processes of a ``--distributed`` run add ``.partI-of-N`` to each name. While a run
uses the folder it holds an exclusive lock on ``.ibjax-run.lock`` (``flock``: the operating
system releases it when the process ends, however it ends, so a killed run leaves no stale
lock; the file records the holder's PID and host for the message a second run gets).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ibjax.atomic import atomic_path, remove_temporaries
from ibjax.config import Config, ConfigError

# What a run draws from its results: figures, the animation (--animate) and the HTML view.
FIGURE_PATTERNS = ("information_plane*.png", "gradients*.png", "accuracy*.png",
                   "information_plane*.gif", "information_plane*.mp4", "view*.html")
_PROBE_BYTES = 1 << 16


class RunFolder:
    """The files of one run (or of one process's share of a distributed run) in ``path``.

    Attributes:
      path: the folder.
      results, checkpoint, record, lock_file: the paths of ``results{suffix}.nc``,
        ``checkpoint{suffix}.npz``, ``run{suffix}.json`` and the lock.
    """

    def __init__(self, path: str | os.PathLike, suffix: str = ""):
        self.path = Path(path)
        self.results = self.path / f"results{suffix}.nc"
        self.checkpoint = self.path / f"checkpoint{suffix}.npz"
        self.record = self.path / f"run{suffix}.json"
        self.lock_file = self.path / f".ibjax-run{suffix}.lock"
        self._lock_handle = None

    # ------------------------------------------------------------------ before compiling

    def check_writable(self, needed_bytes: int = 0) -> None:
        """Creates the folder if needed and proves it writable, with room for ``needed_bytes``.

        Raises:
          ConfigError: naming ``--out`` and why it cannot be used.
        """
        where = f"--out {self.path}"
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{where} is a file, not a folder; choose another --out")
        created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"{where}: cannot create the folder ({_reason(err)})") from None
        try:
            self._check_usable(where, needed_bytes)
        except ConfigError:
            if created:  # a refused run leaves no empty folder behind
                with contextlib.suppress(OSError):
                    self.path.rmdir()
            raise

    def _check_usable(self, where: str, needed_bytes: int) -> None:
        for target in (self.results, self.checkpoint, self.record):
            if target.is_dir():
                raise ConfigError(f"{where}: {target.name} is a folder, so the run could not "
                                  f"be saved there; remove it or choose another --out")
        probe = self.path / f".ibjax-probe-{os.getpid()}.tmp"
        try:
            with open(probe, "wb") as handle:
                handle.write(b"\0" * _PROBE_BYTES)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            raise ConfigError(f"{where}: cannot write there ({_reason(err)})") from None
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
        free = shutil.disk_usage(self.path).free
        if needed_bytes > free:
            raise ConfigError(
                f"{where} has {_size(free)} free; this run's results and checkpoints need "
                f"about {_size(needed_bytes)}: free some space or choose another --out")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Holds the folder's lock for the body; refuses if another live run holds it.

        Raises:
          ConfigError: another process (named by PID and host) is using the folder.
        """
        handle = open(self.lock_file, "a+")
        try:
            if not _try_lock(handle, self.lock_file):
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise ConfigError(
                    f"--out {self.path} is in use by another ibjax run ({holder}); wait for it "
                    f"to finish or choose another --out")
            handle.seek(0)
            handle.truncate()
            handle.write(f"PID {os.getpid()} on {socket.gethostname()}\n")
            handle.flush()
            for pattern in (self.results.name, self.checkpoint.name, self.record.name,
                            *FIGURE_PATTERNS):
                remove_temporaries(self.path, pattern)
            yield
        finally:
            handle.close()  # releases the lock

    # ------------------------------------------------------------------ the run's record

    def state(self) -> str:
        """What the folder holds:

        - ``"empty"``: no run;
        - ``"checkpoint"``: an unfinished run with a checkpoint;
        - ``"started"``: a run record without results or checkpoint (stopped before its first
          checkpoint, or failed);
        - ``"finished"``: results (of the recorded run, if there is a record);
        - ``"started"`` too: results of another run, older than the record (an
          ``--overwrite`` stopped before its first checkpoint; they are replaced when the
          recorded run finishes);
        - ``"conflict"``: results of another run than the record describes, written after it
          (e.g. a merged file written over a run's results);
        - ``"unreadable"``: a damaged run record (and no checkpoint).
        """
        if self.checkpoint.exists():
            return "checkpoint"
        try:
            record = self.read_record()
        except ConfigError:
            return "unreadable"
        if not self.results.exists():
            return "empty" if record is None else "started"
        if record is None or self.is_finished(record):
            return "finished"
        try:
            replaced = self.results.stat().st_mtime < self.record.stat().st_mtime
        except OSError:
            replaced = False
        return "started" if replaced else "conflict"

    def is_finished(self, record: dict[str, Any]) -> bool:
        """True when ``results`` holds the run the record describes: the same configuration,
        seeds and data (a run is deterministic, so those results are this run's results)."""
        if not self.results.is_file():
            return False
        from ibjax.results import ResultsFileError, config_of, load

        try:
            done = load(self.results)
            return (config_of(done).replace(num_seeds=1) == record["config"].replace(num_seeds=1)
                    and sorted(int(s) for s in done["seed"].values) == sorted(record["seeds"])
                    and done.attrs.get("data_sha256") == record.get("data_sha256"))
        except (ResultsFileError, OSError, ValueError, KeyError):
            return False

    def write_record(self, config: Config, seeds: list[int], data_digest: str,
                     argv: list[str]) -> None:
        """Writes ``run.json`` atomically."""
        record = {
            "config": config.to_dict(), "seeds": _compact(seeds), "data_sha256": data_digest,
            "results": self.results.name, "command": argv,
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        with atomic_path(self.record) as tmp:
            tmp.write_text(json.dumps(record, indent=1) + "\n")

    def read_record(self) -> dict[str, Any] | None:
        """The record (``config`` a :class:`Config`, ``seeds`` a range or list), or None.

        Raises:
          ConfigError: the record is not readable.
        """
        if not self.record.is_file():
            return None
        try:
            record = json.loads(self.record.read_text())
            record["config"] = Config.from_json(json.dumps(record["config"]))
            record["seeds"] = _expand(record["seeds"])
            if not isinstance(record.get("data_sha256"), (str, type(None))):
                raise ValueError("data_sha256 is not a string")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"{self.record} is damaged ({type(err).__name__}); remove it, or "
                              f"replace the run: ibjax run --out {self.path} --overwrite "
                              f"...") from None
        return record

    def clear(self) -> None:
        """Removes the checkpoint, the record, the figures, animations and HTML view
        (``--overwrite``); the old results file stays until the new one replaces it (a new
        record written after it marks it as replaced: see :meth:`state`)."""
        for path in (self.checkpoint, self.record, *self.figures()):
            path.unlink(missing_ok=True)

    def figures(self) -> list[Path]:
        return sorted(p for pattern in FIGURE_PATTERNS for p in self.path.glob(pattern))


def claim_for_new_run(folder: RunFolder, overwrite: bool) -> str | None:
    """Under the folder's lock, before a new run: refuses to replace a run unless
    ``overwrite``. Returns a note to print, or None.

    Raises:
      ConfigError: the folder holds a run (finished, unfinished, or unreadable) and
        ``overwrite`` is False.
    """
    state = folder.state()
    where = f"--out {folder.path}"
    if state == "empty":
        return None
    if not overwrite:
        if state in ("checkpoint", "started"):
            raise ConfigError(
                f"{where} holds an unfinished run; continue it with 'ibjax run --resume "
                f"{folder.path}', replace it with --overwrite, or choose another --out")
        if state == "unreadable":
            raise ConfigError(f"{where} holds a damaged run record ({folder.record}); replace "
                              f"the run with --overwrite or choose another --out")
        raise ConfigError(f"{where} holds a finished run ({folder.results}); replace it with "
                          f"--overwrite or choose another --out")
    folder.clear()
    if state in ("checkpoint", "started", "unreadable"):
        return f"discarded the unfinished run in {folder.path} (--overwrite)"
    return f"{folder.results} will be replaced (--overwrite)"


def run_to_resume(folder: RunFolder):
    """``(config, seeds, from_checkpoint)`` of the run to continue in ``folder``: from its
    checkpoint, or from the start (its record) if it was stopped before the first checkpoint.

    Raises:
      ConfigError: nothing to resume (finished, empty, or a results file that is not the
        recorded run's), or a damaged record without a checkpoint.
      CheckpointError: a damaged checkpoint.
    """
    from ibjax import checkpoint

    state = folder.state()
    where = f"--resume {folder.path}"
    if state == "checkpoint":
        saved = checkpoint.load(folder.checkpoint)
        return saved.config, saved.seeds.tolist(), True
    if state == "started":
        record = folder.read_record()
        return record["config"], record["seeds"], False
    if state == "unreadable":
        folder.read_record()  # raises, naming the record
    if state == "finished":
        raise ConfigError(f"{where}: the run is finished ({folder.results}); nothing to resume")
    if state == "conflict":
        raise ConfigError(f"{where}: {folder.results} holds another run than {folder.record} "
                          f"describes; move one of them away")
    raise ConfigError(f"{where}: no run to resume there (no {folder.checkpoint.name} or "
                      f"{folder.record.name})")


def check_same_data(folder: RunFolder, dataset) -> None:
    """Refuses to resume on data that changed since the run started (by sha256; a folder
    without a readable record is left to the checkpoint's own check).

    Raises:
      ConfigError: naming the data and both fingerprints.
    """
    from ibjax.data import digest

    try:
        record = folder.read_record()
    except ConfigError:
        return
    if record is None or record.get("data_sha256") is None:
        return
    now = digest(dataset)
    if record["data_sha256"] != now:
        where = record["config"].dataset.removeprefix("file:")
        raise ConfigError(
            f"--resume {folder.path}: the data ({where}) changed since the run started "
            f"(sha256 {record['data_sha256'][:12]}... then, {now[:12]}... now); restore it or "
            f"start a new run")


def move_previous_default_run(folder: RunFolder) -> str | None:
    """The default folder holding a finished run is renamed (by its date) out of the way,
    under its lock (so a run in progress there is never moved). Returns a note, or None."""
    if not folder.path.is_dir():
        return None
    with folder.lock():
        if folder.state() != "finished":
            return None
        moved = move_aside(folder.path)
    return f"moved the previous run in {folder.path} to {moved}"


def move_aside(path: Path) -> Path:
    """Renames the folder ``path`` to a sibling named by its results' time; returns it."""
    stamp = datetime.datetime.fromtimestamp(
        max(p.stat().st_mtime for p in [path, *path.iterdir()])).strftime("%Y-%m-%d_%H-%M-%S")
    target = path.with_name(stamp)
    counter = 1
    while target.exists():
        counter += 1
        target = path.with_name(f"{stamp}_{counter}")
    path.rename(target)
    return target


def _try_lock(handle, path: Path) -> bool:
    """An exclusive, non-blocking lock on ``handle``'s file: True when taken.

    ``flock`` where the file system supports it (released by the OS when the holder dies);
    elsewhere the PID written in the file is checked for a live process on this host.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not a POSIX system
        fcntl = None
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
    handle.seek(0)
    words = handle.read().split()  # "PID 123 on host"
    if len(words) >= 4 and words[0] == "PID" and words[3] == socket.gethostname():
        with contextlib.suppress(ValueError):
            return not _alive(int(words[1]))
    return True


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _compact(seeds: list[int]) -> dict[str, int] | list[int]:
    """A contiguous seed list as ``{"start": a, "stop": b}``, else the list."""
    if seeds and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return {"start": int(seeds[0]), "stop": int(seeds[0]) + len(seeds)}
    return [int(s) for s in seeds]


def _expand(seeds: dict[str, int] | list[int]) -> range | list[int]:
    """The seeds of a record: a ``range`` (not materialised: its size is checked against the
    memory before anything is allocated) or a list."""
    if isinstance(seeds, dict):
        return range(int(seeds["start"]), int(seeds["stop"]))
    return [int(s) for s in seeds]


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


def _size(size: float) -> str:
    from ibjax.memory import format_bytes

    return format_bytes(size)
