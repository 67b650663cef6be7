"""The fused Pallas epoch kernel (ibjax.fused_epoch) against ibjax's XLA training, one process.

    python benchmarks/fused_epoch.py --seeds 1000 --epochs 8000        # on a GPU
    python benchmarks/fused_epoch.py --seeds 2 --epochs 4 --check-epochs 2 \
        --epochs-per-call 1 2   # on a CPU: interpret mode, a smoke test

Trains the paper configuration's seeds for ``--epochs`` epochs, training only (no snapshots),
two ways from the same initial states: the runner's training half
(``jax.vmap(trainer.train_steps)``, XLA) and the fused kernel
(:func:`ibjax.fused_epoch.make_fused_epochs`), ``--epochs-per-call`` epochs per launch,
``--num-warps`` warps per seed's program: the kernel's own speed. The runner's fused path
(``ibjax run --training-kernel fused``: one launch per epoch, gradient statistics, snapshots)
is timed by ``benchmarks/throughput.py --training-kernel fused``. Compile time is
apart from run time. Prints the hardware, then one JSON line per variant: seconds,
seed-epochs per second, the ratio to XLA, the training FLOP/s (as benchmarks/throughput.py
counts them) and the fraction of the device's float32 peak, and the largest difference of
the weights against XLA's after ``--check-epochs`` epochs (float rounding only: the same
minibatches and the same optimiser). Each variant is compiled once (the number of launches
is an argument); on a GPU the compile includes Triton's, ~40 s per variant for the paper
network on a 2-core CPU (``benchmarks/triton_compile.py``). ``--xla-epochs`` times XLA on fewer
epochs (for 10,000 seeds); the ratio compares seed-epochs per second.
On a CPU the kernel runs in Pallas's interpret mode, for a smoke test, not for timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
from throughput import fp32_peak_tflops, training_flop_per_seed_epoch

import ibjax
from ibjax.config import num_train
from ibjax.fused_epoch import make_fused_epochs
from ibjax.hardware import hardware_info
from ibjax.train import make_trainer


def compiled(fn, *args):
    """``(compile_s, executable)``: ``jax.jit(fn)`` lowered and compiled for ``args``."""
    start = time.perf_counter()
    executable = jax.jit(fn).lower(*args).compile()
    return time.perf_counter() - start, executable


def run(executable, *args) -> tuple[float, object]:
    """``(run_s, result)`` of one call, waited for."""
    start = time.perf_counter()
    result = jax.block_until_ready(executable(*args))
    return time.perf_counter() - start, result


def xla_training(trainer):
    """``train(states, data, num_epochs)``: the runner's training half, every seed at once."""
    def train(states, data, num_epochs):
        return jax.vmap(trainer.train_steps, in_axes=(0, None, None))(
            states, data, num_epochs)[0]
    return train


def fused_training(trainer, per_call: int, num_warps: int):
    """``train(states, data, num_calls)``: ``num_calls`` launches of ``per_call`` epochs."""
    epochs = make_fused_epochs(trainer, per_call, num_warps=num_warps)

    def train(states, data, num_calls):
        return jax.lax.fori_loop(0, num_calls, lambda _, s: epochs(s, data)[0], states)
    return train


def weight_difference(a, b) -> float:
    return max(float(jnp.max(jnp.abs(x - y)))
               for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True))


def compare(args, seeds: int, device, data_set) -> None:
    """Times XLA and every fused variant on ``seeds`` seeds; prints a JSON line for each."""
    config = ibjax.Config(num_seeds=seeds, num_epochs=args.epochs)
    trainer = make_trainer(config, data_set, device.platform)
    data = trainer.device_data(data_set)
    rates = jnp.full(seeds, config.learning_rates[0], jnp.float32)
    states = jax.jit(jax.vmap(trainer.init))(jnp.arange(seeds), rates)
    flop = training_flop_per_seed_epoch(
        config, data_set.x.shape[1], data_set.num_classes,
        num_train(config.train_fraction_for(0), data_set.x.shape[0]))
    peak = fp32_peak_tflops(device.device_kind)
    check = args.check_epochs
    xla_compile, xla = compiled(xla_training(trainer), states, data, jnp.int32(0))
    reference = run(xla, states, data, jnp.int32(check))[1]
    xla_epochs = args.xla_epochs or args.epochs
    xla_rate = seeds * xla_epochs / run(xla, states, data, jnp.int32(xla_epochs))[0]

    def report(name, compile_s, run_s, epochs, difference, **extra):
        rate = seeds * epochs / run_s
        print(json.dumps({
            "variant": name, **extra, "seeds": seeds, "epochs": epochs,
            "device": device.device_kind, "compile_s": round(compile_s, 2),
            "run_s": round(run_s, 3), "seed_epochs_per_s": round(rate, 1),
            "speedup_vs_xla": round(rate / xla_rate, 2),
            "training_tflop_per_s": round(flop * rate / 1e12, 4),
            "fraction_of_fp32_peak": None if peak is None else round(
                flop * rate / 1e12 / peak, 4),
            "max_weight_difference_vs_xla": difference}), flush=True)

    report("xla", xla_compile, seeds * xla_epochs / xla_rate, xla_epochs, 0.0)
    warps = args.num_warps if device.platform == "gpu" else args.num_warps[:1]
    variants = [(per_call, num_warps) for per_call in args.epochs_per_call
                for num_warps in warps]
    for per_call, num_warps in variants:
        extra = {"epochs_per_call": per_call, "num_warps": num_warps}
        try:
            compile_s, fused = compiled(fused_training(trainer, per_call, num_warps),
                                        states, data, jnp.int32(0))
            checked = run(fused, states, data, jnp.int32(check // per_call))[1]
            difference = weight_difference(checked, reference)
            run_s = run(fused, states, data, jnp.int32(args.epochs // per_call))[0]
        except Exception as error:  # a variant that fails to build: report it, go on
            print(json.dumps({"variant": "fused", **extra, "seeds": seeds,
                              "error": f"{type(error).__name__}: {error}"[:2000]}),
                  flush=True)
            continue
        report("fused", compile_s, run_s, args.epochs, difference, **extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1000])
    parser.add_argument("--epochs", type=int, default=8000)
    parser.add_argument("--epochs-per-call", type=int, nargs="+", default=[1, 10],
                        help="epochs per kernel launch (default: 1 10)")
    parser.add_argument("--num-warps", type=int, nargs="+", default=[4, 8],
                        help="warps per seed's program on a GPU (default: 4 8)")
    parser.add_argument("--xla-epochs", type=int, default=None,
                        help="epochs of the XLA run (default --epochs): fewer for many seeds; "
                             "the ratio compares seed-epochs per second")
    parser.add_argument("--check-epochs", type=int, default=10,
                        help="epochs after which the weights are compared with XLA's")
    args = parser.parse_args()
    for flag, values in (("--seeds", args.seeds), ("--epochs", [args.epochs]),
                         ("--check-epochs", [args.check_epochs]),
                         ("--xla-epochs", [args.xla_epochs or 1])):
        if min(values) < 1:
            parser.error(f"{flag} must be >= 1, got {min(values)}")
    for warps in args.num_warps:
        if warps < 1 or warps & (warps - 1) or warps > 32:
            parser.error(f"--num-warps {warps}: must be a power of two up to 32")
    for per_call in args.epochs_per_call:
        if per_call < 1 or args.epochs % per_call or args.check_epochs % per_call:
            parser.error(f"--epochs-per-call {per_call}: must be >= 1 and divide --epochs "
                         f"({args.epochs}) and --check-epochs ({args.check_epochs})")
    device = jax.devices()[0]
    print("hardware:", json.dumps({**hardware_info(), "cpu_count": os.cpu_count(),
                                   "platform": platform.platform()}))
    data_set = ibjax.load_var_u()
    for seeds in args.seeds:
        compare(args, seeds, device, data_set)


if __name__ == "__main__":
    main()
