"""A dense layer's product through ibjax's own CPU routines (``native_products.cc``).

XLA's CPU dot is slow for the paper network's products (per seed ``[10, 12] x [12, 512]``
and smaller, vmapped over seeds): they were ~75 % of a training step. ``native_products.cc``
implements the three products of a dense layer (forward, and the two of its gradient) as XLA
FFI handlers, register-blocked on 8-float vectors, that loop over the vmapped seeds; the
program calls them as custom calls (``layer_product="native"``, the CPU default where they
build, for layers of at most ``ibjax.model.NATIVE_MAX_WEIGHTS`` weights).

The library is compiled on first use with the system's C++ compiler (``$CXX`` or ``c++``;
``-O3 -march=native``, ~5 s) against the FFI headers that ship with jaxlib, and cached in
``ibjax.cache.cache_dir("native")`` (``~/.cache/ibjax/native``) under a name that hashes the
source, compiler, jax version and CPU, so a cache shared between different machines is safe.
Where that fails (no compiler, no ``jax.ffi``, not an x86-64 or arm64 CPU), :func:`available`
is False with the reason in :func:`unavailable_reason`, and ``layer_product="auto"`` uses XLA's
matrix product instead.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from importlib import resources
from pathlib import Path

import jax
import jax.numpy as jnp

from ibjax.cache import cache_dir

SOURCE = "native_products.cc"
FORWARD, BACKWARD_INPUT, BACKWARD_KERNEL = (
    "ibjax_dense_forward", "ibjax_dense_backward_input", "ibjax_dense_backward_kernel")
FFI_TARGETS = (FORWARD, BACKWARD_INPUT, BACKWARD_KERNEL)
"""The XLA FFI custom-call targets these routines register (on the CPU platform)."""
_SYMBOLS = {FORWARD: "IbjaxDenseForward", BACKWARD_INPUT: "IbjaxDenseBackwardInput",
            BACKWARD_KERNEL: "IbjaxDenseBackwardKernel"}
COMPILE_FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-w")
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


def _build(compiler: str) -> Path:
    """Compiles the library into the cache (atomically) unless it is there; returns its path."""
    source = resources.files("ibjax").joinpath(SOURCE).read_bytes()
    include = jax.ffi.include_dir()
    key = hashlib.sha256(b"\0".join(s if isinstance(s, bytes) else s.encode() for s in (
        source, _compiler_version(compiler), " ".join(COMPILE_FLAGS), jax.__version__,
        _cpu_signature(), platform.machine()))).hexdigest()[:16]
    path = cache_dir("native") / f"libibjax_native_products-{key}.so"
    if path.exists():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _compile(compiler, source, include, path)
    except OSError:  # the cache cannot be written: build for this process, same library
        private = Path(tempfile.mkdtemp(prefix="ibjax-native-")) / path.name
        return _compile(compiler, source, include, private)


def _compile(compiler: str, source: bytes, include: str, path: Path) -> Path:
    """Compiles ``source`` into ``path`` (atomically, via a temporary folder beside it)."""
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        src = Path(tmp) / SOURCE
        src.write_bytes(source)
        built = Path(tmp) / path.name
        result = subprocess.run([compiler, *COMPILE_FLAGS, f"-I{include}", str(src), "-o",
                                 str(built)], capture_output=True, text=True,
                                timeout=COMPILE_TIMEOUT_S)
        if result.returncode != 0:
            raise RuntimeError(f"{compiler} failed: {result.stderr.strip()[-2000:]}")
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
        library = ctypes.CDLL(str(_build(compiler)))
        handlers = {target: getattr(library, symbol) for target, symbol in _SYMBOLS.items()}
    except (OSError, AttributeError, RuntimeError, subprocess.SubprocessError) as err:
        return f"building or loading {SOURCE} failed: {err}"
    for target, handler in handlers.items():
        jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(handler), platform="cpu")
    return None


def available() -> bool:
    """Whether the native products can be used on this machine (builds them on first call)."""
    return _load() is None


def unavailable_reason() -> str | None:
    """Why :func:`available` is False, or None when it is True."""
    return _load()


def _call(target: str, shape: tuple[int, ...], a: jax.Array, b: jax.Array) -> jax.Array:
    # broadcast_all: under vmap every operand gets the same leading batch dimensions, which
    # the handlers loop over (one call for all seeds).
    return jax.ffi.ffi_call(target, jax.ShapeDtypeStruct(shape, jnp.float32),
                            vmap_method="broadcast_all")(a, b)


@jax.custom_vjp
def native_dense_product(kernel: jax.Array, h: jax.Array) -> jax.Array:
    """``kernel.T @ h`` by the native CPU routines: ``kernel`` ``[in, out]``, ``h`` ``[in, batch]``.

    Float32 (other dtypes are cast), differentiable (reverse mode) and vmappable; CPU only,
    and :func:`available` must be True. Summation order is fixed, so a seed's products are
    bitwise the same alone or vmapped with others.
    """
    return _call(FORWARD, (kernel.shape[1], h.shape[1]), kernel.astype(jnp.float32),
                 h.astype(jnp.float32))


def _forward(kernel, h):
    return native_dense_product(kernel, h), (kernel, h)


def _backward(residuals, grad_out):
    kernel, h = residuals
    grad_out = grad_out.astype(jnp.float32)
    grad_kernel = _call(BACKWARD_KERNEL, kernel.shape, h.astype(jnp.float32), grad_out)
    grad_h = _call(BACKWARD_INPUT, h.shape, kernel.astype(jnp.float32), grad_out)
    return grad_kernel.astype(kernel.dtype), grad_h.astype(h.dtype)


native_dense_product.defvjp(_forward, _backward)
