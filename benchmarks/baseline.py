"""ibjax against a reference-style implementation of the same experiment, in one process.

The baseline does what existing information-plane code does: a Python loop over seeds and
epochs calling a jitted train step (one whole epoch per call: a stronger baseline than the
per-minibatch calls of the authors' code), copying every layer's activations to the host at
each snapshot and computing I(X;T), I(T;Y) in numpy with ``np.unique`` over rows (float64).
It trains exactly the networks ibjax trains (same init, split, shuffles and optimiser), so both
must give the same MI on the same seed, up to values that float rounding moves across a bin
edge; over thousands of epochs, rounding differences between a vmapped and a single-seed
program also grow in the weights themselves, so agreement is reported early and overall.
It computes no gradient statistics (ibjax does, in its timings).

    python benchmarks/baseline.py --seeds 1 10 100 --baseline-seeds 1 --epochs 8000

Baseline times for seed counts above ``--baseline-seeds`` are extrapolated linearly from the
measured per-seed time (the baseline is a serial loop over seeds), and marked so.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from ibjax.cli import use_all_cpu_cores

use_all_cpu_cores()  # as `ibjax run` does: seeds shard over every core (before JAX starts)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import ibjax  # noqa: E402
from ibjax.config import snapshot_epochs  # noqa: E402
from ibjax.data import load_var_u  # noqa: E402
from ibjax.hardware import hardware_info  # noqa: E402
from ibjax.train import make_trainer  # noqa: E402


def numpy_binned_mi(t: np.ndarray, y: np.ndarray, num_bins: int, value_range) -> tuple:
    """The reference estimator: digitize, np.unique over rows, float64 entropies. t: [N, d]."""
    edges = np.linspace(value_range[0], value_range[1], num_bins).astype(t.dtype)
    digits = np.clip(np.digitize(t, edges) - 1, 0, num_bins - 1)

    def entropy(rows):
        _, counts = np.unique(rows, axis=0, return_counts=True)
        p = counts / counts.sum()
        return -(p * np.log2(p)).sum()

    h_t = entropy(digits)
    return h_t, h_t + entropy(y[:, None]) - entropy(np.concatenate([y[:, None], digits], 1))


def run_baseline(config: ibjax.Config, seeds) -> dict:
    data = load_var_u()
    trainer = make_trainer(config, data)
    init = jax.jit(trainer.init)
    device_data = trainer.device_data(data)  # an argument, as in ibjax's own programs
    epoch_step = jax.jit(lambda state, d: trainer.train_epoch(state, d)[0])
    layers_of = jax.jit(trainer.layer_activations)

    def train_epoch(state):
        return epoch_step(state, device_data)

    def activations(params):
        return layers_of(params, device_data)

    snapshots = set(snapshot_epochs(config.snapshots, config.num_epochs))
    start = time.perf_counter()
    state = init(jnp.int32(0), jnp.float32(config.learning_rate))
    jax.block_until_ready(train_epoch(state))
    jax.block_until_ready(activations(state.params))
    compile_s = time.perf_counter() - start

    ixt = np.zeros((len(seeds), len(snapshots), trainer.num_layers))
    ity = np.zeros_like(ixt)
    start = time.perf_counter()
    for i, seed in enumerate(seeds):
        state = init(jnp.int32(seed), jnp.float32(config.learning_rate))
        k = 0
        for epoch in range(config.num_epochs + 1):
            if epoch in snapshots:
                layers = [np.asarray(t).T for t in activations(state.params)]  # to the host
                for layer, t in enumerate(layers):
                    ixt[i, k, layer], ity[i, k, layer] = numpy_binned_mi(
                        t, data.y, config.num_bins, config.resolved_bin_range)
                k += 1
            if epoch < config.num_epochs:
                state = train_epoch(state)
        jax.block_until_ready(state)
    run_s = time.perf_counter() - start
    return {"compile_s": compile_s, "run_s": run_s, "ixt": ixt, "ity": ity}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--baseline-seeds", type=int, default=1,
                        help="seeds the baseline really runs; larger sizes are extrapolated")
    parser.add_argument("--epochs", type=int, default=8000)
    parser.add_argument("--snapshots", default="log")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    print("hardware:", json.dumps({**hardware_info(), "cpu_count": os.cpu_count()}))
    config = ibjax.Config(num_epochs=args.epochs, snapshots=args.snapshots)
    num_snapshots = len(snapshot_epochs(config.snapshots, config.num_epochs))
    print(f"config: paper network, {args.epochs} epochs, {num_snapshots} snapshots "
          f"({args.snapshots}), all 6 layers, batch 512, shuffled")

    base = run_baseline(config, list(range(args.baseline_seeds)))
    base_rate = args.baseline_seeds * args.epochs / base["run_s"]
    print(f"baseline: {args.baseline_seeds} seeds measured, compile {base['compile_s']:.1f} s, "
          f"run {base['run_s']:.1f} s, {base_rate:.0f} seed-epochs/s")

    rows = []
    for num_seeds in args.seeds:
        res = ibjax.run(config.replace(num_seeds=num_seeds))
        n = min(num_seeds, args.baseline_seeds)
        early = res.epoch.values <= 100  # before rounding differences can grow in training
        diff = {name: np.abs(res[name].sel(estimator="binning").values[:n] - base[name][:n])
                for name in ("ixt", "ity")}
        same = (f"seeds 0..{n - 1}: max |dI(X;T)|, |dI(T;Y)| = {diff['ixt'][:, early].max():.2g},"
                f" {diff['ity'][:, early].max():.2g} bits up to epoch 100; "
                f"{diff['ixt'].max():.2g}, {diff['ity'].max():.2g} bits over the whole run")
        rate = res.attrs["seed_epochs_per_s"]
        row = {
            "seeds": num_seeds, "ibjax_compile_s": round(res.attrs["compile_s"], 1),
            "ibjax_run_s": round(res.attrs["run_s"], 1), "ibjax_seed_epochs_per_s": round(rate),
            "baseline_run_s": round(base["run_s"] / args.baseline_seeds * num_seeds, 1),
            "baseline_extrapolated": num_seeds > args.baseline_seeds,
            "baseline_seed_epochs_per_s": round(base_rate), "ratio": round(rate / base_rate, 1),
            "devices": res.attrs["num_devices"], "agreement": same,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"hardware": hardware_info(), "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
