"""Traced programs kept between runs, so that a repeated configuration skips JAX's tracing.

JAX's persistent compilation cache skips XLA's compilation of a program it has seen, but not
the tracing and lowering that produce the program (~1.5 s of Python for the paper network's
segment). When that cache is on (the command line turns it on), the runner keeps each
program it builds as a serialised :mod:`jax.export` module in ``cache_dir("programs")``
and compiles the module from there, on the first run and on every later one, so later runs
load it instead of tracing, and XLA's cache finds the same module.

A program is stored under a digest of everything that shapes it: the configuration, the data's
shapes, the seeds' count and devices, the plan, ibjax's own source files and the versions of
Python, jax, jaxlib, flax, optax and numpy. Each file starts with the sha256 of the rest; a
file that cannot be read (missing, partial, damaged, another format, a JAX that cannot
deserialise it) is ignored and the program is traced again and rewritten;
one that cannot be written leaves the run as it was. Serialisation needs the ``flatbuffers``
package; without it programs are traced every time.
"""

from __future__ import annotations

import functools
import hashlib
import pickle
import platform
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import jax

from ibjax.atomic import atomic_path
from ibjax.cache import cache_dir

_FORMAT = 2
_CHECKSUM_BYTES = 32  # a file is the sha256 of its pickled record, then the record
_PACKAGE = Path(__file__).parent


class Stored(NamedTuple):
    """Programs of one run as :class:`jax.export.Exported` modules, with their pytree layouts.

    Attributes:
      exported: name -> the exported program (flat arguments and results).
      out_trees: name -> the ``PyTreeDef`` of the program's results.
    """

    exported: dict[str, Any]
    out_trees: dict[str, Any]


def enabled() -> bool:
    """True when JAX's persistent compilation cache is on (then programs are kept too)."""
    return bool(jax.config.jax_compilation_cache_dir)


@functools.lru_cache(maxsize=1)
def _environment_digest() -> str:
    """ibjax's source files and the versions of what traces them, as a hex digest."""
    digest = hashlib.sha256(f"format {_FORMAT} python {platform.python_version()}".encode())
    for package in ("jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{package} {version}\n".encode())
    for path in sorted(_PACKAGE.rglob("*")):
        if path.suffix in (".py", ".cc") and path.is_file():
            digest.update(str(path.relative_to(_PACKAGE)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def program_key(*parts: Any) -> str:
    """The file name for a program shaped by ``parts`` (reprs that are stable across runs)."""
    digest = hashlib.sha256(_environment_digest().encode())
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def _path(key: str) -> Path:
    return cache_dir("programs") / f"{key}.bin"


def load(key: str) -> Stored | None:
    """The programs stored under ``key``, or None if there are none that this JAX can read."""
    try:
        data = _path(key).read_bytes()
        checksum, payload = data[:_CHECKSUM_BYTES], data[_CHECKSUM_BYTES:]
        if hashlib.sha256(payload).digest() != checksum:  # damaged, even at the same size
            return None
        record = pickle.loads(payload)
        if record.get("format") != _FORMAT:
            return None
        exported = {name: jax.export.deserialize(blob)
                    for name, blob in record["exported"].items()}
        return Stored(exported, record["out_trees"])
    except Exception:  # any unreadable file is a miss, traced again
        return None


def save(key: str, stored: Stored) -> bool:
    """Stores ``stored`` under ``key`` (atomically); returns False if it could not be."""
    try:
        record = {"format": _FORMAT,
                  "exported": {name: bytes(exported.serialize())
                               for name, exported in stored.exported.items()},
                  "out_trees": stored.out_trees}
        with atomic_path(_path(key)) as temporary:
            payload = pickle.dumps(record)
            temporary.write_bytes(hashlib.sha256(payload).digest() + payload)
        return True
    except OSError as err:  # no room, no permission, a folder in the way: said, run goes on
        warnings.warn(f"ibjax could not store the compiled program in the cache "
                      f"({err}); later runs will trace and compile it again", stacklevel=2)
        return False
    except Exception:  # no serialisation: the run goes on untouched
        return False
