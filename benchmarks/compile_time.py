"""Where compile time goes, and how long `ibjax run` takes to start, cold and warm.

    python benchmarks/compile_time.py [--seeds 16] [--json results/compile_cpu.json]

For the paper configuration, per estimator set: the time to lower (trace to StableHLO) and to
compile (XLA) one segment program, its size (StableHLO operations; instructions of the
optimised HLO), and the same for its parts: ``init``, the training half (``train_steps``), the
measuring half (``measure``) and the binning of a single layer; ``init`` both in one
program and in the two the runner builds (:mod:`ibjax.initial_weights`); all lowered as the
runner lowers them (:mod:`ibjax.compiling`), with the persistent compilation cache off, so every
figure is a cold compile. Then, per estimator set, the whole command
``ibjax run`` (16 seeds, 2 epochs) in a fresh process with empty caches (cold) and again with
the caches it filled (warm): the compile time it reports, the time from starting the command
to its first epoch's progress line, and to its exit. Each figure is printed next to the one
in ``--json``'s file from the previous run of this script, when there is one. The hardware is
printed with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp

import ibjax
from ibjax import initial_weights, native_products, program
from ibjax.cache import cache_dir
from ibjax.compiling import compiling, threefry_unrolled_on_cpu
from ibjax.hardware import hardware_info
from ibjax.mi._estimators import estimate_columns
from ibjax.segment import batched_steps
from ibjax.train import Steps, make_trainer

ESTIMATOR_SETS = (("binning",), ("binning", "kde-upper", "kde-lower"), ("binning-width",),
                  ("equal-mass",))


def measure(label: str, fn, *args, unrolled: bool = False, bits: bool = False,
            options: dict | None = None) -> dict:
    """Lowers and compiles ``jax.jit(fn)`` for ``args`` (shapes); returns the figures.
    ``unrolled``: Threefry unrolled, as the runner lowers ``init``; ``bits``: the weights'
    draws give their bits (:mod:`ibjax.initial_weights`); ``options``: XLA's."""
    with (compiling(), threefry_unrolled_on_cpu() if unrolled else contextlib.nullcontext(),
          initial_weights.drawing_bits() if bits else contextlib.nullcontext()):
        start = time.perf_counter()
        lowered = jax.jit(fn).lower(*args)
        lowered_at = time.perf_counter()
        compiled = lowered.compile(compiler_options=options)
        compiled_at = time.perf_counter()
    row = {
        "what": label,
        "lower_s": round(lowered_at - start, 2),
        "compile_s": round(compiled_at - lowered_at, 2),
        "stablehlo_ops": sum(1 for line in lowered.as_text().splitlines()
                             if "stablehlo." in line and "=" in line),
        "hlo_instructions": sum(1 for line in compiled.as_text().splitlines() if " = " in line),
    }
    print(f"{label:44s} lower {row['lower_s']:5.2f} s  compile {row['compile_s']:6.2f} s "
          f"{was(label, 'compile_s')}  StableHLO ops {row['stablehlo_ops']:6d}  HLO "
          f"instructions {row['hlo_instructions']:6d}", flush=True)
    return row


PREVIOUS: dict[str, dict] = {}
"""The previous run's rows by their ``what`` (from ``--json``'s file), for comparison."""


def was(label: str, field: str) -> str:
    value = PREVIOUS.get(label, {}).get(field)
    return "" if value is None else f"(was {value:5.2f} s)"


def programs(num_seeds: int) -> list[dict]:
    data = ibjax.load_var_u()
    rows = []
    for estimators in ESTIMATOR_SETS:
        config = ibjax.Config(estimators=estimators)
        trainer = make_trainer(config, data)
        seeds = jnp.zeros(num_seeds, jnp.int32)
        state = jax.eval_shape(jax.vmap(trainer.init), seeds, jnp.zeros(num_seeds))
        steps = Steps(jax.ShapeDtypeStruct((8,), jnp.int32),
                      jax.ShapeDtypeStruct((8,), jnp.bool_))
        name = ",".join(estimators)
        rows.append(measure(f"segment [{name}]", batched_steps(trainer), state,
                            trainer.data_shape, steps))
        if estimators != ("binning",):
            continue
        rows.append(measure("  init in one program", jax.vmap(trainer.init), seeds,
                            jnp.zeros(num_seeds), unrolled=True))
        rows.append(measure("  init: the state, with the weights' bits", jax.vmap(trainer.init),
                            seeds, jnp.zeros(num_seeds), unrolled=True, bits=True,
                            options=program._bits_options("cpu")))
        rows.append(measure("  init: the weights made of the bits",
                            jax.vmap(initial_weights.weights_from_bits), state.params))
        rows.append(measure("  train_steps (the training half)",
                            jax.vmap(trainer.train_steps, in_axes=(0, None, None)), state,
                            trainer.data_shape, jax.ShapeDtypeStruct((), jnp.int32)))
        rows.append(measure("  measure (the measuring half)",
                            jax.vmap(trainer.measure, in_axes=(0, None)), state,
                            trainer.data_shape))
        y, settings = jnp.asarray(data.y), config.estimator_settings()

        def binning(t, y=y, settings=settings):
            return estimate_columns(t.T, y, 2, ("binning",), settings)

        for width in (10, 3):
            layer = jax.ShapeDtypeStruct((num_seeds, 4096, width), jnp.float32)
            rows.append(measure(f"  binning of one layer of {width} units",
                                jax.vmap(binning), layer))
    return rows


def first_epoch_run(env: dict, out: str, estimators: str) -> tuple[float, float, float]:
    """``ibjax run`` in a fresh process; returns (reported compile s, s to the first epoch's
    progress line, s to exit), all from the moment the command is started."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "ibjax", "run", "--epochs", "2", "--no-plots", "--estimators",
         estimators, "--out", out], env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text, first_epoch = b"", None
    while chunk := process.stdout.read1(4096):
        text += chunk
        if first_epoch is None and b"epoch " in text.split(b"compiling...")[-1]:
            first_epoch = time.perf_counter() - start
    if process.wait() != 0:
        raise RuntimeError(f"ibjax run failed:\n{text.decode()}")
    wall = time.perf_counter() - start
    reported = next(line for line in text.decode().replace("\r", "\n").splitlines()
                    if line.startswith("compile time"))
    return float(reported.split()[2]), first_epoch, wall


def whole_command() -> list[dict]:
    """Per estimator set, ``ibjax run`` of 16 seeds x 2 epochs: cold caches, then warm (the
    native products' library, built once per machine, is there in both)."""
    rows = []
    native_products.available()  # built once per machine: copied, not rebuilt, below
    for estimators in ESTIMATOR_SETS:
        name = ",".join(estimators)
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
            if cache_dir("native").exists():
                shutil.copytree(cache_dir("native"), os.path.join(cache, "native"))
            env = {**os.environ, "IBJAX_CACHE_DIR": cache}
            env.pop("JAX_COMPILATION_CACHE_DIR", None)
            for kind in ("cold", "warm"):
                compile_s, first_s, wall_s = first_epoch_run(env, os.path.join(out, kind), name)
                label = f"ibjax run --estimators {name} ({kind})"
                rows.append({"what": label, "compile_s": compile_s, "first_epoch_s":
                             round(first_s, 2), "wall_s": round(wall_s, 2)})
                print(f"{label:52s} compile {compile_s:5.1f} s {was(label, 'compile_s')}  "
                      f"first epoch at {first_s:5.2f} s {was(label, 'first_epoch_s')}  "
                      f"exit at {wall_s:5.2f} s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    jax.config.update("jax_enable_compilation_cache", False)
    if args.json and os.path.exists(args.json):
        with open(args.json) as handle:
            PREVIOUS.update({row["what"]: row for row in json.load(handle)["rows"]})
    hardware = hardware_info()
    print("hardware:", json.dumps(hardware), flush=True)
    print(f"the paper network, {args.seeds} seeds vmapped, one device", flush=True)
    rows = programs(args.seeds) + whole_command()
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"hardware": hardware, "seeds": args.seeds, "rows": rows}, handle,
                      indent=1)


if __name__ == "__main__":
    main()
