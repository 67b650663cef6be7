"""Triton's compile of the fused epoch kernel for a CUDA GPU, measured without a GPU.

    pip install triton      # ~1 GB, not a dependency of ibjax
    python benchmarks/triton_compile.py [--hidden 10,7,5,4,3] [--num-warps 4 8] [--arch 90]

Lowers :mod:`ibjax.fused_epoch`'s kernel for CUDA on this machine, compiles its Triton module
with the ``triton`` package for the GPU architecture ``--arch`` (90: H100 and H200), and
assembles its PTX with Triton's ``ptxas`` for the registers and spills per thread. A GPU's JAX
runs the same passes with the Triton that jaxlib bundles (another version), so the figures
estimate what a GPU session pays before its first launch. Prints the hardware, then one JSON
line per network and warp count: its weights, the tensor loads and stores in the module
(Triton's coalescing pass takes time cubic in their number: the reason the kernel reads its
weights as scalars), Triton's compile time, registers and spilled bytes.
``MLIR_ENABLE_TIMING=1`` makes Triton print the time of each of its passes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp

import ibjax
from ibjax import fused_epoch
from ibjax.data import load_dataset
from ibjax.hardware import hardware_info
from ibjax.train import make_trainer


def triton_module(hidden: tuple[int, ...]) -> tuple[str, int]:
    """``(Triton module text, weights)`` of the kernel for the paper configuration with
    ``hidden`` widths, 10 epochs per launch, lowered for CUDA. Reads the module where Pallas
    builds it (a JAX internal, ``lower_jaxpr_to_triton_module``: Pallas's own ``debug=True``
    printout carries debug locations that Triton's parser does not read)."""
    from jax._src.pallas.triton import lowering

    dataset = load_dataset("var_u")
    trainer = make_trainer(ibjax.Config(hidden=hidden), dataset, platform="gpu")
    states = jax.eval_shape(jax.vmap(trainer.init), jnp.arange(8), jnp.zeros(8, jnp.float32))
    data = jax.eval_shape(lambda: trainer.device_data(dataset))
    weights = sum(leaf.size // 8 for leaf in jax.tree.leaves(states.params))
    original, modules = lowering.lower_jaxpr_to_triton_module, []

    def keep(*args, **kwargs):
        result = original(*args, **kwargs)
        modules.append(result.module.operation.get_asm(enable_debug_info=False))
        return result

    lowering.lower_jaxpr_to_triton_module = keep
    try:
        epochs = fused_epoch.make_fused_epochs(trainer, 10)
        jax.jit(epochs).trace(states, data).lower(lowering_platforms=("cuda",))
    finally:
        lowering.lower_jaxpr_to_triton_module = original
    if not modules:
        raise RuntimeError("no Triton module was built (another JAX version?)")
    return modules[-1], weights


def ptxas_report(ptx: str, arch: int) -> dict:
    """Registers and spilled bytes per thread, from Triton's ``ptxas -v`` (None if absent)."""
    import triton.backends.nvidia as nvidia

    folder = os.path.join(os.path.dirname(nvidia.__file__), "bin")
    for name in ("ptxas-blackwell", "ptxas"):
        ptxas = os.path.join(folder, name)
        if not os.path.exists(ptxas):
            continue
        with tempfile.TemporaryDirectory() as work:
            source = os.path.join(work, "kernel.ptx")
            with open(source, "w") as handle:
                handle.write(ptx)
            done = subprocess.run([ptxas, "-v", f"-arch=sm_{arch}a", source, "-o",
                                   os.path.join(work, "kernel.cubin")],
                                  capture_output=True, text=True)
        if done.returncode == 0:
            registers = re.search(r"Used (\d+) registers", done.stderr)
            spills = re.findall(r"(\d+) bytes spill (?:stores|loads)", done.stderr)
            return {"registers": int(registers.group(1)) if registers else None,
                    "spill_bytes": sum(map(int, spills)) if spills else None}
    return {"registers": None, "spill_bytes": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", nargs="+", default=["10,7,5,4,3"],
                        help="hidden widths, one network each (default the paper's 10,7,5,4,3)")
    parser.add_argument("--num-warps", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--arch", type=int, default=90, help="CUDA compute capability x 10")
    args = parser.parse_args()
    try:
        import triton
        from triton.backends.compiler import GPUTarget
    except ImportError:
        sys.exit("benchmarks/triton_compile.py needs the triton package: pip install triton")
    print("hardware:", json.dumps({**hardware_info(), "triton": triton.__version__,
                                   "machine": platform.machine()}), flush=True)
    for widths in args.hidden:
        hidden = tuple(int(w) for w in widths.split(","))
        module, weights = triton_module(hidden)
        tensor_accesses = len(re.findall(r"tt\.(?:load|store) [^\n]*: tensor<[^\n]*!tt\.ptr",
                                         module))
        with tempfile.TemporaryDirectory() as work:
            path = os.path.join(work, "kernel.ttir")
            with open(path, "w") as handle:
                handle.write(module)
            for num_warps in args.num_warps:
                start = time.perf_counter()
                kernel = triton.compile(path, target=GPUTarget("cuda", args.arch, 32),
                                        options={"num_warps": num_warps, "num_stages": 1})
                compile_s = time.perf_counter() - start
                print(json.dumps({"hidden": list(hidden), "weights": weights,
                                  "num_warps": num_warps, "arch": args.arch,
                                  "tensor_loads_and_stores": tensor_accesses,
                                  "triton_compile_s": round(compile_s, 1),
                                  **ptxas_report(kernel.asm["ptx"], args.arch)}), flush=True)


if __name__ == "__main__":
    main()
