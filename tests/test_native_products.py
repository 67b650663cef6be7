"""ibjax's native CPU products against XLA's float32 matrix product (the independent reference).

Needs a C++ compiler (``$CXX`` or ``c++``) and JAX on a CPU; elsewhere these tests are skipped
with that reason, and ``test_without_a_compiler_auto_falls_back_to_matmul`` checks what users
then get.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ibjax import native, native_products
from ibjax.config import ConfigError
from ibjax.model import dense_product, layer_products

needs_compiler = pytest.mark.skipif(
    shutil.which(os.environ.get("CXX") or "c++") is None or jax.default_backend() != "cpu",
    reason="no C++ compiler ($CXX or c++) to build ibjax's native products, or JAX's default "
           "backend is not a CPU")

# Float32 products of <= 40 terms of |x| < ~5: both sides round, in different orders.
RTOL, ATOL = 1e-5, 1e-5

# (in, out, batch): the paper network's shapes, and sizes that exercise every remainder of the
# blocking (outputs in blocks of 3 and 4, inputs of 3, the batch in 32- and 8-float vectors).
SHAPES = [(12, 10, 512), (10, 7, 512), (3, 2, 4096), (1, 1, 1), (5, 4, 7), (7, 5, 33),
          (4, 3, 41), (2, 13, 9), (13, 2, 64)]


@needs_compiler
def test_builds_here():
    assert native.available(), native.unavailable_reason()
    assert native.unavailable_reason() is None


@needs_compiler
@pytest.mark.parametrize(("fan_in", "fan_out", "batch"), SHAPES)
def test_product_and_its_gradients_match_xla(rng, fan_in, fan_out, batch):
    kernel = jnp.asarray(rng.normal(size=(fan_in, fan_out)), jnp.float32)
    h = jnp.asarray(rng.normal(size=(fan_in, batch)), jnp.float32)
    cotangent = jnp.asarray(rng.normal(size=(fan_out, batch)), jnp.float32)
    y, vjp = jax.vjp(native_products.native_dense_product, kernel, h)
    y_ref, vjp_ref = jax.vjp(dense_product, kernel, h)
    np.testing.assert_allclose(y, y_ref, rtol=RTOL, atol=ATOL)
    for got, want in zip(vjp(cotangent), vjp_ref(cotangent), strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL * np.sqrt(batch))


@needs_compiler
def test_vmapped_seed_is_bitwise_the_same_as_alone(rng):
    """One call loops over the seeds in a fixed order: batching does not change any bit."""
    kernels = jnp.asarray(rng.normal(size=(2, 5, 12, 10)), jnp.float32)
    hs = jnp.asarray(rng.normal(size=(2, 5, 12, 100)), jnp.float32)

    def loss(kernel, h):
        return jnp.sum(jnp.tanh(native_products.native_dense_product(kernel, h)) ** 2)

    grad = jax.grad(loss, argnums=(0, 1))
    batched = jax.jit(jax.vmap(jax.vmap(grad)))(kernels, hs)  # two batch axes
    alone = jax.jit(grad)(kernels[1, 3], hs[1, 3])
    for b, a in zip(batched, alone, strict=True):
        np.testing.assert_array_equal(b[1, 3], a)
    reference = jax.vmap(jax.vmap(jax.grad(
        lambda k, h: jnp.sum(jnp.tanh(dense_product(k, h)) ** 2), argnums=(0, 1))))(kernels, hs)
    for b, r in zip(batched, reference, strict=True):
        np.testing.assert_allclose(b, r, rtol=1e-4, atol=1e-4)


@needs_compiler
def test_auto_uses_native_products_on_cpus_only():
    shapes = [(12, 10), (10, 2), (100, 20)]
    assert layer_products("auto", shapes, "cpu") == ("native", "native", "matmul")
    assert layer_products("auto", shapes, "gpu") == ("broadcast", "broadcast", "matmul")
    assert layer_products("native", shapes, "cpu") == ("native",) * 3
    with pytest.raises(ConfigError, match="layer_product='native' runs on CPUs only"):
        layer_products("native", shapes, "gpu")


@pytest.mark.parametrize(("compiler", "reason"), [
    ("no-such-compiler", "no C++ compiler ('{}' not found"),
    ("false", "building or loading native_products.cc and native_counting.cc failed: "
              "false failed"),  # exits 1
])
def test_without_a_compiler_auto_falls_back_to_matmul(tmp_path, compiler, reason):
    """No working compiler: "auto" is XLA's matmul, "native" a ConfigError saying why, and the
    discrete estimators count in XLA."""
    script = """
import json
from ibjax import native
from ibjax.config import ConfigError
from ibjax.model import layer_products
from ibjax.train import discrete_counting_for
out = {"available": native.available(), "reason": native.unavailable_reason(),
       "auto": layer_products("auto", [(12, 10)], "cpu"), "counting": discrete_counting_for("cpu")}
try:
    layer_products("native", [(12, 10)], "cpu")
except ConfigError as err:
    out["error"] = str(err)
print(json.dumps(out))
"""
    if compiler == "no-such-compiler":
        compiler = str(tmp_path / compiler)
        reason = reason.format(compiler)
    elif shutil.which(compiler) is None:
        pytest.skip(f"no {compiler!r} command here")
    env = {**os.environ, "CXX": compiler, "IBJAX_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["available"] is False
    assert out["reason"].startswith(reason)
    assert out["auto"] == ["matmul"]
    assert out["counting"] == "xla"
    assert out["error"] == f"layer_product='native' is not available here: {out['reason']}"
    assert not list(tmp_path.glob("cache/**/*.so"))  # nothing half-built left behind


@needs_compiler
def test_an_unwritable_cache_builds_the_same_library_for_this_process(tmp_path):
    """A cache folder that cannot be written must not turn the native routines off (that would
    change the numbers): the library is built in a private temporary folder, loaded, and the
    folder removed."""
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    (tmp_path / "tmp").mkdir()
    script = """
from ibjax import native
print(native.available(), native.unavailable_reason())
"""
    env = {**os.environ, "IBJAX_CACHE_DIR": str(blocked), "TMPDIR": str(tmp_path / "tmp")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300, check=True)
    assert done.stdout.split() == ["True", "None"]
    assert not list((tmp_path / "tmp").iterdir())  # the private copy is gone once loaded


def test_an_interrupted_build_stops_the_compilers_children_too(tmp_path):
    """Ctrl-C while the library builds: the compiler's own children (cc1plus, as) are stopped
    with it, not left running."""
    compiler = tmp_path / "slow-c++"
    child = tmp_path / "child.pid"
    compiler.write_text(f"""#!/bin/sh
[ "$1" = --version ] && {{ echo slow 1.0; exit 0; }}
sleep 60 &
echo $! > {child}
wait
""")
    compiler.chmod(0o755)
    env = {**os.environ, "CXX": str(compiler), "IBJAX_CACHE_DIR": str(tmp_path / "cache")}
    process = subprocess.Popen([sys.executable, "-c", "from ibjax import native; native._load()"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not child.exists() or not child.read_text().strip():
        assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    pid = int(child.read_text())
    time.sleep(0.2)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except FileNotFoundError:
        state = "gone"
    if state not in ("gone", "Z", "X"):
        os.kill(pid, signal.SIGKILL)  # not left behind by a failing test either
    assert state in ("gone", "Z", "X"), f"the compiler's child {pid} still runs ({state})"
