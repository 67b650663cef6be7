"""Where ibjax keeps files between runs: under ``$IBJAX_CACHE_DIR``, or ``~/.cache/ibjax``.

- ``jax/``: JAX's persistent compilation cache (the command line turns it on, see
  :func:`ibjax.cli.use_compilation_cache`);
- ``programs/``: traced programs, kept while JAX's cache is on (:mod:`ibjax.program_cache`);
- ``native/``: the built library of ibjax's native CPU routines (:mod:`ibjax.native`).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(name: str) -> Path:
    """The folder ``name`` (``"jax"``, ``"programs"`` or ``"native"``) of ibjax's cache; not
    created here."""
    root = os.environ.get("IBJAX_CACHE_DIR") or Path.home() / ".cache" / "ibjax"
    return Path(root) / name
