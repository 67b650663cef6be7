"""Cost of each MI estimator per snapshot per seed, next to training time per epoch.

    python benchmarks/estimators.py --seeds 16 --memory-seeds 100 --json results/estimators.json

On the paper network (12-10-7-5-4-3-2, tanh, N = 4096 inputs, all 6 layers measured; the
inputs passed for matrix-renyi and knn; ``exact`` counts the same float layers, all of whose
rows are distinct, as a quantized layer's might be; ``noisy`` on ``m`` copies of each layer, as
its cost depends only on the shapes), in one process: one compiled program per estimator
measures every layer of ``--seeds`` networks (vmapped, and counting as inside a run: natively
on a CPU, see :mod:`ibjax.native_counting`; the discrete estimators and knn are measured again as
``ibjax.mi`` counts, in the program, beside them), and one compiled program trains them for an
epoch. Compile time is
reported apart; run times are the best of ``--repeats``. Then, in a subprocess, a full
``ibjax.run`` of ``--memory-seeds`` networks with both KDE bounds reports its peak resident
memory (the N x N kernel is built in row blocks).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time

from ibjax.cli import use_all_cpu_cores

use_all_cpu_cores()  # as `ibjax run` does (before JAX starts its CPU backend)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import ibjax  # noqa: E402
from ibjax.hardware import hardware_info  # noqa: E402
from ibjax.mi import ESTIMATORS  # noqa: E402
from ibjax.mi._estimators import estimate_columns  # noqa: E402
from ibjax.native_counting import native_routines  # noqa: E402
from ibjax.train import make_trainer  # noqa: E402


def timed(fn, *args, repeats: int):
    """(compile seconds, best run seconds) of a jitted function."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        best = min(best, time.perf_counter() - start)
    return compile_s, best


def peak_memory_of_kde_run(num_seeds: int) -> dict:
    """Runs num_seeds paper networks with both KDE bounds in a child; its peak RSS."""
    code = (
        "from ibjax.cli import use_all_cpu_cores; use_all_cpu_cores()\n"
        "import ibjax, json\n"
        f"r = ibjax.run(ibjax.Config(num_seeds={num_seeds}, num_epochs=10, snapshots=(0, 10),"
        " estimators=('binning', 'kde-upper', 'kde-lower')))\n"
        "print(json.dumps({'run_s': r.attrs['run_s'], 'chunk': int(r.attrs['networks_per_chunk']),"
        " 'kde_upper_last': float(r.ixt.sel(estimator='kde-upper').isel(epoch=-1).mean())}))\n")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seeds": num_seeds, "wall_s": round(wall, 1),
            "peak_rss_gib": round(peak_kib / 2**20, 2),
            **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-seeds", type=int, default=100,
                        help="networks in the KDE peak-memory run (0 skips it)")
    parser.add_argument("--eigen-rows", type=int, default=512,
                        help="rows of the matrix-renyi row with an order other than 2")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    print("hardware:", json.dumps(hardware_info()))
    plain = tuple(n for n in ESTIMATORS if n != "noisy")
    config = ibjax.Config(num_seeds=args.seeds,
                          estimators=tuple(n for n in plain if n != "exact"))
    trainer = make_trainer(config, ibjax.load_var_u())
    data = trainer.device_data(ibjax.load_var_u())
    y = jnp.asarray(ibjax.load_var_u().y, jnp.int32)
    seeds = jnp.arange(args.seeds)
    states = jax.jit(jax.vmap(trainer.init))(seeds, jnp.full(args.seeds, 4e-4))
    # Measure networks trained for 20 epochs, not initial ones (more distinct rows).
    for _ in range(20):
        states = jax.jit(jax.vmap(lambda s: trainer.train_epoch(s, data)[0]))(states)
    # the networks train without noise; only the noisy rows use a noise level
    settings = dataclasses.replace(config.estimator_settings(), noise_std=0.005)
    rows = []
    compile_s, run_s = timed(jax.vmap(lambda s: trainer.train_epoch(s, data)[0]), states,
                             repeats=args.repeats)
    rows.append({"what": "training, one epoch (8 minibatches)", "compile_s": compile_s,
                 "ms_per_seed": 1e3 * run_s / args.seeds})
    x_columns = data.x.T  # the inputs of the rows, for matrix-renyi and knn
    counted = ("binning", "binning-width", "equal-mass", "exact", "knn")  # native on CPUs
    for name in plain:
        countings = [trainer.discrete_counting]
        if name in counted and trainer.discrete_counting != "xla":
            countings.append("xla")
        for counting in countings:
            def measure(state, name=name, counting=counting):
                with native_routines(counting):
                    layers = trainer.layer_activations(state.params, data)
                    return [estimate_columns(t, y, 2, (name,), settings, x_columns)
                            for t in layers]

            compile_s, run_s = timed(jax.vmap(measure), states, repeats=args.repeats)
            label = f" ({counting} counting)" if name in counted else ""
            rows.append({"what": f"{name}, one snapshot (6 layers){label}",
                         "compile_s": compile_s, "ms_per_seed": 1e3 * run_s / args.seeds})
            print(f"  {rows[-1]['what']}: {rows[-1]['ms_per_seed']:.2f} ms per seed", flush=True)

    # noisy: m samples per row, N m points against N m centres (O((N m)^2 d) per layer)
    for num_samples, num_rows in ((4, 1024), (1, 4096)):
        subset = np.sort(np.random.default_rng(0).permutation(4096)[:num_rows])

        def measure_noisy(state, m=num_samples, subset=subset):
            layers = trainer.layer_activations(state.params, data)
            key = jax.random.key(0)
            return [estimate_columns(t[:, subset], y[subset], 2, ("noisy",), settings, None,
                                     (jnp.broadcast_to(t[:, subset], (m, *t[:, subset].shape)),
                                      jax.random.fold_in(key, i)))
                    for i, t in enumerate(layers)]

        compile_s, run_s = timed(jax.vmap(measure_noisy), states, repeats=args.repeats)
        rows.append({"what": f"noisy, m={num_samples} samples, {num_rows} rows",
                     "compile_s": compile_s, "ms_per_seed": 1e3 * run_s / args.seeds})
        print(f"  {rows[-1]['what']}: {rows[-1]['ms_per_seed']:.2f} ms per seed", flush=True)

    # Other Renyi orders take eigenvalues of N x N matrices: on a subset of the rows.
    subset = np.sort(np.random.default_rng(0).permutation(4096)[:args.eigen_rows])
    eigen_settings = dataclasses.replace(settings, renyi_alpha=1.01)

    def measure_eigen(state):
        layers = trainer.layer_activations(state.params, data)
        return [estimate_columns(t[:, subset], y[subset], 2, ("matrix-renyi",), eigen_settings,
                                 x_columns[:, subset]) for t in layers]

    compile_s, run_s = timed(jax.vmap(measure_eigen), states, repeats=args.repeats)
    rows.append({"what": f"matrix-renyi a=1.01 (eigenvalues), {args.eigen_rows} rows",
                 "compile_s": compile_s, "ms_per_seed": 1e3 * run_s / args.seeds})

    def measure_both(state):
        layers = trainer.layer_activations(state.params, data)
        return [estimate_columns(t, y, 2, ("kde-upper", "kde-lower"), settings)
                for t in layers]

    compile_s, run_s = timed(jax.vmap(measure_both), states, repeats=args.repeats)
    rows.append({"what": "kde-upper + kde-lower together (one kernel pass)",
                 "compile_s": compile_s, "ms_per_seed": 1e3 * run_s / args.seeds})
    print(f"{args.seeds} seeds of the paper network, N = 4096, vmapped; best of {args.repeats}")
    print(f"{'':56s} {'compile s':>10s} {'ms per seed':>12s}")
    for row in rows:
        print(f"{row['what']:56s} {row['compile_s']:10.1f} {row['ms_per_seed']:12.2f}")
    memory = None
    if args.memory_seeds:
        memory = peak_memory_of_kde_run(args.memory_seeds)
        print(f"ibjax.run with binning + both KDE bounds, {memory['seeds']} seeds x 10 epochs, "
              f"2 snapshots: peak RSS {memory['peak_rss_gib']} GiB, {memory['wall_s']} s wall, "
              f"{memory['chunk']} networks per chunk")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"hardware": hardware_info(), "seeds": args.seeds, "rows": rows,
                       "kde_memory": memory, "cpu_count": os.cpu_count()}, handle, indent=1)


if __name__ == "__main__":
    main()
