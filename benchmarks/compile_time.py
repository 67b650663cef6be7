"""Where compile time goes, and how long `ibjax run` takes to start, cold and warm.

    python benchmarks/compile_time.py [--seeds 16] [--json results/compile_cpu.json]

For the paper configuration, per estimator set: the time to lower (trace to StableHLO) and to
compile (XLA) one segment program, its size (StableHLO operations; instructions of the
optimised HLO), and the same for its parts: ``init``, the training half (``train_steps``), the
measuring half (``measure``) and the binning of a single layer; ``init`` both in one
program and in the two the runner builds (:mod:`ibjax.initial_weights`); all lowered as the
runner lowers them (:mod:`ibjax.compiling`), with the persistent compilation cache off, so every
figure is a cold compile. For the ``binning`` segment, also its kernels counted by the ibjax
file and function that made them (:func:`kernel_sources`), and, on a CPU, its XLA compile in
phases read from XLA's own log in a child process (:func:`xla_phases`). Then, per estimator
set, the whole command
``ibjax run`` (16 seeds, 2 epochs) in a fresh process with empty caches (cold) and again with
the caches it filled (warm): the compile time it reports, the time from starting the command
to its first epoch's progress line, and to its exit. Each figure is printed next to the one
in ``--json``'s file from the previous run of this script, when there is one. The hardware is
printed with every figure.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp

import ibjax
from ibjax import initial_weights, native, program
from ibjax.cache import cache_dir
from ibjax.compiling import compiling, threefry_unrolled_on_cpu
from ibjax.hardware import hardware_info
from ibjax.mi._estimators import estimate_columns
from ibjax.segment import batched_steps
from ibjax.train import Steps, make_trainer

ESTIMATOR_SETS = (("binning",), ("binning", "kde-upper", "kde-lower"), ("binning-width",),
                  ("equal-mass",))


def measure(label: str, fn, *args, unrolled: bool = False, bits: bool = False,
            options: dict | None = None, sources: bool = False) -> dict:
    """Lowers and compiles ``jax.jit(fn)`` for ``args`` (shapes); returns the figures.
    ``unrolled``: Threefry unrolled, as the runner lowers ``init``; ``bits``: the weights'
    draws give their bits (:mod:`ibjax.initial_weights`); ``options``: XLA's; ``sources``:
    also count the compiled program's kernels by the ibjax code that made them."""
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
    if sources:
        by_file, by_function = kernel_sources(compiled.as_text())
        row["kernels"] = sum(by_file.values())
        row["kernels_by_file"] = dict(by_file.most_common())
        row["kernels_by_function"] = dict(by_function.most_common(15))
        print(f"  its {row['kernels']} kernels (operations outside fusions: fusions, copies, "
              f"sorts, custom calls, ...) by the ibjax file that made them:", flush=True)
        for name, count in by_file.most_common():
            print(f"    {count:5d}  {name}", flush=True)
        print("  by function (the 15 largest):", flush=True)
        for name, count in by_function.most_common(15):
            print(f"    {count:5d}  {name}", flush=True)
    return row


_NOT_KERNELS = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast", "while",
                "conditional", "call", "after-all", "opt-barrier", "copy-start", "copy-done"}


def kernel_sources(hlo: str) -> tuple[collections.Counter, collections.Counter]:
    """Counts the kernels of an optimised HLO module's text (instructions outside fused
    computations and reducers, less bookkeeping such as tuples and loops) by the innermost
    ibjax source file, and by file and function, that produced each (from the module's
    stack-frame tables; ``"(outside ibjax)"``: JAX's or optax's code, or XLA's copies)."""
    lines = hlo.splitlines()

    def table(name: str) -> dict[int, str]:
        if name not in lines:
            return {}
        out = {}
        for line in lines[lines.index(name) + 1:]:
            key, _, value = line.partition(" ")
            if not key.isdigit():
                break
            out[int(key)] = value
        return out

    def fields(text: str) -> dict[str, int]:
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", text)}

    files = {k: v.strip('"') for k, v in table("FileNames").items()}
    functions = {k: v.strip('"') for k, v in table("FunctionNames").items()}
    locations = {k: fields(v) for k, v in table("FileLocations").items()}
    frames = {k: fields(v) for k, v in table("StackFrames").items()}

    def source(frame: int) -> tuple[str, str] | None:
        seen = set()
        while frame in frames and frame not in seen:
            seen.add(frame)
            location = locations.get(frames[frame].get("file_location_id"), {})
            path = files.get(location.get("file_name_id"), "")
            if "/ibjax/" in path:
                name = path[path.rindex("/ibjax/") + 1:]
                return name, functions.get(location.get("function_name_id"), "?")
            frame = frames[frame].get("parent_frame_id", 0)
        return None

    computations: dict[str, list[str]] = {}
    current = None
    for line in lines:
        header = re.match(r"^(?:ENTRY )?%(\S+) \(", line)
        if header:
            current = computations.setdefault(header.group(1), [])
        elif line.startswith("}"):
            current = None
        elif current is not None and " = " in line:
            current.append(line)
    def operation(line: str) -> str:
        op = re.search(r"= (?:\([^=]*\)|\S+) ([\w-]+)\(", line)
        return op.group(1) if op else ""

    bodies = set()  # fused computations, reducers, comparators: not kernels of their own
    for body in computations.values():
        for line in body:
            bodies.update(re.findall(r"calls=%([\w.-]+)", line))
            if operation(line) != "call":
                bodies.update(re.findall(r"to_apply=%([\w.-]+)", line))
    by_file, by_function = collections.Counter(), collections.Counter()
    for name, body in computations.items():
        if name in bodies:
            continue
        for line in body:
            if operation(line) in _NOT_KERNELS | {""}:
                continue
            frame = re.search(r"stack_frame_id=(\d+)", line)
            where = source(int(frame.group(1))) if frame else None
            by_file[where[0] if where else "(outside ibjax)"] += 1
            by_function[f"{where[0]}: {where[1]}" if where else "(outside ibjax)"] += 1
    return by_file, by_function


PREVIOUS: dict[str, dict] = {}
"""The previous run's rows by their ``what`` (from ``--json``'s file), for comparison."""


def was(label: str, field: str) -> str:
    value = PREVIOUS.get(label, {}).get(field)
    return "" if value is None else f"(was {value:5.2f} s)"


def _paper_segment(estimators: tuple[str, ...], num_seeds: int):
    """``(trainer, state, steps)``: the paper network's trainer, and the shapes of its state
    for ``num_seeds`` networks and of a segment's steps (8)."""
    trainer = make_trainer(ibjax.Config(estimators=estimators), ibjax.load_var_u())
    state = jax.eval_shape(jax.vmap(trainer.init), jnp.zeros(num_seeds, jnp.int32),
                           jnp.zeros(num_seeds))
    steps = Steps(jax.ShapeDtypeStruct((8,), jnp.int32), jax.ShapeDtypeStruct((8,), jnp.bool_))
    return trainer, state, steps


def programs(num_seeds: int) -> list[dict]:
    data = ibjax.load_var_u()
    rows = []
    for estimators in ESTIMATOR_SETS:
        trainer, state, steps = _paper_segment(estimators, num_seeds)
        config, seeds = trainer.config, jnp.zeros(num_seeds, jnp.int32)
        name = ",".join(estimators)
        rows.append(measure(f"segment [{name}]", batched_steps(trainer), state,
                            trainer.data_shape, steps, sources=estimators == ("binning",)))
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


_LOG_TIME = r"(\d\d):(\d\d):(\d\d\.\d+)"
_DURATION = r"time: ([\d.]+) (us|ms|s) "


def _seconds(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def xla_phases(num_seeds: int) -> dict | None:
    """The binning segment's XLA compile on a CPU, in its phases, from XLA's own log (a
    child process with ``TF_CPP_VMODULE``): HLO passes (incl. sharding passes), emitting the
    kernels' LLVM IR (one thread), and LLVM compiling them (a pool of threads; CPU-seconds
    and wall). None where XLA writes no such lines (another platform or XLA version)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0",
           "TF_CPP_VMODULE": "cpu_compiler=1,ir_compiler=1"}
    child = subprocess.run([sys.executable, __file__, "--seeds", str(num_seeds),
                            "--compile-segment-only"], env=env, capture_output=True, text=True)
    log = child.stderr.splitlines()
    starts = [i for i, line in enumerate(log) if "Compiling: jit_segment" in line]
    if child.returncode != 0 or not starts:
        return None
    passes = [_seconds(*m.groups()) for line in log
              if (m := re.search(r"Running HLO passes on \[jit_segment\].*?" + _DURATION, line))]

    def clock(line: str) -> float:
        hours, minutes, seconds = re.search(_LOG_TIME, line).groups()
        return 3600 * int(hours) + 60 * int(minutes) + float(seconds)

    body = log[starts[-1]:]
    modules = [(clock(line), _seconds(*re.search(_DURATION, line).groups()))
               for line in body if "Compiled LLVM module" in line]
    finished = next((clock(line) for line in body if "Compilation finished" in line), None)
    if not passes or not modules or finished is None:
        return None
    start = clock(body[0])
    first_module_done = modules[0][0] - modules[0][1]
    row = {"what": "segment [binning]: XLA's phases", "hlo_passes_s": round(passes[-1], 2),
           "emit_ir_s": round(first_module_done - start, 2),
           "llvm_modules": len(modules), "llvm_cpu_s": round(sum(t for _, t in modules), 2),
           "llvm_wall_s": round(finished - first_module_done, 2)}
    print(f"segment [binning], XLA's phases: HLO passes {row['hlo_passes_s']:.2f} s, emitting "
          f"LLVM IR {row['emit_ir_s']:.2f} s (one thread), LLVM {row['llvm_modules']} modules "
          f"in {row['llvm_cpu_s']:.2f} CPU-s, {row['llvm_wall_s']:.2f} s wall", flush=True)
    return row


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
    native.available()  # built once per machine: copied, not rebuilt, below
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
    parser.add_argument("--compile-segment-only", action="store_true",
                        help=argparse.SUPPRESS)  # the child process of xla_phases
    args = parser.parse_args()
    jax.config.update("jax_enable_compilation_cache", False)
    if args.compile_segment_only:
        trainer, state, steps = _paper_segment(("binning",), args.seeds)
        with compiling():
            jax.jit(batched_steps(trainer)).lower(state, trainer.data_shape, steps).compile()
        return
    if args.json and os.path.exists(args.json):
        with open(args.json) as handle:
            PREVIOUS.update({row["what"]: row for row in json.load(handle)["rows"]})
    hardware = hardware_info()
    print("hardware:", json.dumps(hardware), flush=True)
    print(f"the paper network, {args.seeds} seeds vmapped, one device", flush=True)
    rows = programs(args.seeds)
    phases = xla_phases(args.seeds)
    rows += ([phases] if phases else []) + whole_command()
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"hardware": hardware, "seeds": args.seeds, "rows": rows}, handle,
                      indent=1)


if __name__ == "__main__":
    main()
