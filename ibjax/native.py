"""ibjax's own CPU routines (``native_products.cc``, ``native_counting.cc``): built, loaded
and registered as XLA FFI targets.

The library is compiled on first use with the system's C++ compiler (``$CXX`` or ``c++``;
``-O3 -march=native``, a few seconds) against the FFI headers that ship with jaxlib, and cached
in ``ibjax.cache.cache_dir("native")`` (``~/.cache/ibjax/native``) under a name that hashes the
sources, compiler, jax version and CPU, so a cache shared between different machines is safe.
Where that fails (no compiler, no ``jax.ffi``, not an x86-64 or arm64 CPU), :func:`available`
is False with the reason in :func:`unavailable_reason`, and ibjax uses XLA instead (the dense
products: :mod:`ibjax.native_products`; the discrete estimators' counting:
:mod:`ibjax.native_counting`).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import threading
from importlib import resources
from pathlib import Path

import jax

from ibjax.cache import cache_dir

SOURCES = ("native_products.cc", "native_counting.cc")
DENSE_FORWARD, DENSE_BACKWARD_INPUT, DENSE_BACKWARD_KERNEL = (
    "ibjax_dense_forward", "ibjax_dense_backward_input", "ibjax_dense_backward_kernel")
DISCRETE_MI_LIMBS, COLUMN_RANKS, KNN_COUNTS = (
    "ibjax_discrete_mi_limbs", "ibjax_column_ranks", "ibjax_knn_counts")
_SYMBOLS = {DENSE_FORWARD: "IbjaxDenseForward", DENSE_BACKWARD_INPUT: "IbjaxDenseBackwardInput",
            DENSE_BACKWARD_KERNEL: "IbjaxDenseBackwardKernel",
            DISCRETE_MI_LIMBS: "IbjaxDiscreteMiLimbs", COLUMN_RANKS: "IbjaxColumnRanks",
            KNN_COUNTS: "IbjaxKnnCounts"}
FFI_TARGETS = tuple(_SYMBOLS)
"""The XLA FFI custom-call targets the library registers (on the CPU platform)."""
COMPILE_FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-w", "-pipe")
COMPILE_TIMEOUT_S = 300


def _cpu_signature() -> str:
    """The CPU model and feature flags (``-march=native`` builds for exactly these)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    lines = [line for line in text.splitlines()
             if line.split(":")[0].strip() in ("model name", "flags", "Features")]
    return "\n".join(sorted(set(lines)))


def _compiler_version(compiler: str) -> str:
    out = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60)
    return out.stdout


_PRIVATE_PREFIX = "ibjax-native-"  # a library built for one process (the cache is read-only)


def _build(compiler: str) -> Path:
    """Compiles the library into the cache (atomically) unless it is there; returns its path."""
    sources = {name: resources.files("ibjax").joinpath(name).read_bytes() for name in SOURCES}
    include = jax.ffi.include_dir()
    key = hashlib.sha256(b"\0".join(s if isinstance(s, bytes) else s.encode() for s in (
        *sources.values(), _compiler_version(compiler), " ".join(COMPILE_FLAGS),
        jax.__version__, _cpu_signature(), platform.machine()))).hexdigest()[:16]
    path = cache_dir("native") / f"libibjax_native-{key}.so"
    if path.exists():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _compile(compiler, sources, include, path)
    except OSError:  # the cache cannot be written: build for this process, same library
        private = Path(tempfile.mkdtemp(prefix=_PRIVATE_PREFIX)) / path.name
        return _compile(compiler, sources, include, private)


def _compile(compiler: str, sources: dict[str, bytes], include: str, path: Path) -> Path:
    """Compiles ``sources`` (name: text) into the library ``path`` (atomically, via a temporary
    folder beside it)."""
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        files = []
        for name, text in sources.items():
            files.append(Path(tmp) / name)
            files[-1].write_bytes(text)
        built = Path(tmp) / path.name
        # In its own process group, so that an interrupt or a timeout stops the compiler's
        # own children too (cc1plus, as); -pipe leaves no temporary files behind them.
        process = subprocess.Popen([compiler, *COMPILE_FLAGS, f"-I{include}", *map(str, files),
                                    "-o", str(built)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            _, stderr = process.communicate(timeout=COMPILE_TIMEOUT_S)
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
        if process.returncode != 0:
            raise RuntimeError(f"{compiler} failed: {stderr.strip()[-2000:]}")
        os.replace(built, path)  # atomic: a concurrent process sees no half-written library
    return path


_LOAD_LOCK = threading.Lock()  # two threads asking first must not register the targets twice
_loaded: list[str | None] = []  # the outcome of the one _build_and_register call


def _load() -> str | None:
    """Builds, loads and registers the FFI targets once; returns None or why it failed."""
    with _LOAD_LOCK:
        if not _loaded:
            _loaded.append(_build_and_register())
        return _loaded[0]


def _build_and_register() -> str | None:
    if not hasattr(jax, "ffi") or not hasattr(jax.ffi, "include_dir"):
        return f"jax {jax.__version__} has no jax.ffi"
    if platform.machine().lower() not in ("x86_64", "amd64", "aarch64", "arm64"):
        return f"CPU architecture {platform.machine()} is not supported"
    compiler = os.environ.get("CXX") or "c++"
    if shutil.which(compiler) is None:
        return f"no C++ compiler ({compiler!r} not found; set $CXX)"
    try:
        path = _build(compiler)
        library = ctypes.CDLL(str(path))
        handlers = {target: getattr(library, symbol) for target, symbol in _SYMBOLS.items()}
    except (OSError, AttributeError, RuntimeError, subprocess.SubprocessError) as err:
        return f"building or loading {' and '.join(SOURCES)} failed: {err}"
    if path.parent.name.startswith(_PRIVATE_PREFIX):  # built for this process alone: loaded,
        shutil.rmtree(path.parent, ignore_errors=True)  # the file is no longer needed
    for target, handler in handlers.items():
        jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(handler), platform="cpu")
    return None


def available() -> bool:
    """Whether ibjax's native CPU routines can be used here (builds them on first call)."""
    return _load() is None


def unavailable_reason() -> str | None:
    """Why :func:`available` is False, or None when it is True."""
    return _load()


def require(what: str) -> None:
    """Builds and registers the library if needed; RuntimeError saying why if it cannot be."""
    reason = _load()
    if reason is not None:
        raise RuntimeError(f"{what} needs ibjax's native CPU routines, not available here: "
                           f"{reason}")
