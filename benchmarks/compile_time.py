"""Where compile time goes: lowering and XLA compilation of ibjax's programs, and their size.

    python benchmarks/compile_time.py [--seeds 16] [--json results/compile_cpu.json]

For the paper configuration, per estimator set: the time to lower (trace to StableHLO) and to
compile (XLA) one segment program, its size (StableHLO operations; instructions of the
optimised HLO), and the same for its parts: the training half (``train_steps``), the
measuring half (``measure_if``) and the binning of a single layer. The persistent compilation
cache is off, so every figure is a cold compile. Also the whole command, ``ibjax run`` of
2 epochs from a cold and from a warm persistent cache (wall time of a fresh process, which
includes starting Python and JAX). The hardware is printed with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp

import ibjax
from ibjax.hardware import hardware_info
from ibjax.mi._estimators import estimate_columns
from ibjax.segment import batched_steps
from ibjax.train import Steps, make_trainer

ESTIMATOR_SETS = (("binning",), ("binning", "kde-upper", "kde-lower"), ("binning-width",),
                  ("equal-mass",))


def measure(label: str, fn, *args) -> dict:
    """Lowers and compiles ``jax.jit(fn)`` for ``args`` (shapes); returns the figures."""
    start = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    lowered_at = time.perf_counter()
    compiled = lowered.compile()
    compiled_at = time.perf_counter()
    row = {
        "what": label,
        "lower_s": round(lowered_at - start, 2),
        "compile_s": round(compiled_at - lowered_at, 2),
        "stablehlo_ops": sum(1 for line in lowered.as_text().splitlines()
                             if "stablehlo." in line and "=" in line),
        "hlo_instructions": sum(1 for line in compiled.as_text().splitlines() if " = " in line),
    }
    print(f"{label:44s} lower {row['lower_s']:5.2f} s  compile {row['compile_s']:6.2f} s  "
          f"StableHLO ops {row['stablehlo_ops']:6d}  HLO instructions "
          f"{row['hlo_instructions']:6d}", flush=True)
    return row


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
        rows.append(measure("  init", jax.vmap(trainer.init), seeds, jnp.zeros(num_seeds)))
        rows.append(measure("  train_steps (the training half)",
                            jax.vmap(trainer.train_steps, in_axes=(0, None, None)), state,
                            trainer.data_shape, jax.ShapeDtypeStruct((), jnp.int32)))
        rows.append(measure("  measure_if (the measuring half)",
                            jax.vmap(trainer.measure_if, in_axes=(0, None, None)), state,
                            trainer.data_shape, jax.ShapeDtypeStruct((), jnp.bool_)))
        y, settings = jnp.asarray(data.y), config.estimator_settings()

        def binning(t, y=y, settings=settings):
            return estimate_columns(t.T, y, 2, ("binning",), settings)

        for width in (10, 3):
            layer = jax.ShapeDtypeStruct((num_seeds, 4096, width), jnp.float32)
            rows.append(measure(f"  binning of one layer of {width} units",
                                jax.vmap(binning), layer))
    return rows


def whole_command() -> list[dict]:
    """``ibjax run`` of 16 seeds x 2 epochs in a fresh process: cold, then warm cache."""
    rows = []
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "IBJAX_CACHE_DIR": cache}
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
        for kind in ("cold cache", "warm cache"):
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "ibjax", "run", "--epochs", "2", "--no-plots", "--quiet",
                 "--out", os.path.join(out, kind.replace(" ", "-"))],
                env=env, capture_output=True, text=True, check=True)
            wall = time.perf_counter() - start
            reported = next(line for line in done.stdout.splitlines()
                            if line.startswith("compile time"))
            rows.append({"what": f"ibjax run --epochs 2 ({kind})", "wall_s": round(wall, 1),
                         "reported": reported})
            print(f"ibjax run --epochs 2, {kind:10s}: {wall:5.1f} s wall ({reported})",
                  flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    jax.config.update("jax_enable_compilation_cache", False)
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
