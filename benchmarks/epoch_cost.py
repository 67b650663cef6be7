"""Where a training epoch's time goes: ablations on one device.

    python benchmarks/epoch_cost.py --seeds 50 --epochs 200
    python benchmarks/epoch_cost.py --seeds 1000 --variants default,broadcast --profile /tmp/t

Times ``--epochs`` training epochs of ``--seeds`` vmapped paper networks (batch 512, 7
minibatch steps an epoch, no measurement) on one device, for each of ``--variants``:

- ``default``: Adam, rows reshuffled every epoch (a keyed Feistel permutation, see
  ibjax.permutation), ``layer_product="auto"`` (ibjax's native products on a CPU where they
  build, broadcast-and-sum products on a GPU);
- ``no-shuffle``, ``sgd``, ``sgd-no-shuffle``: the differences are the cost of the shuffle and
  of Adam's update;
- ``matmul``, ``broadcast``, ``native``: every layer's product as XLA's full-float32 matrix
  product, as a broadcast multiply and a sum over the input features (which XLA fuses with its
  neighbours instead of calling a matrix-product library), or by ibjax's own CPU routines
  (:mod:`ibjax.native_products`);
- ``tf32``: matrix products at the backend's default precision (TF32 on recent NVIDIA GPUs),
  for reference only: ibjax uses full float32.

Compile time is excluded (one warm-up call); best of two. With ``--profile DIR`` the default
variant is traced for one call with ``jax.profiler`` and the device's most expensive operations
are printed (total milliseconds and count).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import glob
import gzip
import json
import os
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")

import jax
import jax.numpy as jnp

import ibjax
import ibjax.model
from ibjax.hardware import hardware_info
from ibjax.train import make_trainer


def default_precision_product(kernel: jax.Array, h: jax.Array) -> jax.Array:
    """``kernel.T @ h`` at the backend's default precision (TF32 on recent NVIDIA GPUs)."""
    return jnp.matmul(kernel.T, h)


# name: (Config overrides, replacement for the "matmul" product or None)
VARIANTS = {
    "default": ({}, None),
    "no-shuffle": ({"shuffle": False}, None),
    "sgd": ({"optimizer": "sgd"}, None),
    "sgd-no-shuffle": ({"optimizer": "sgd", "shuffle": False}, None),
    "matmul": ({"layer_product": "matmul"}, None),
    "broadcast": ({"layer_product": "broadcast"}, None),
    "native": ({"layer_product": "native"}, None),
    "tf32": ({"layer_product": "matmul"}, default_precision_product),
}


@contextlib.contextmanager
def matmul_product(product):
    """Temporarily replaces the "matmul" layer product (None keeps it) while tracing."""
    original = ibjax.model.PRODUCT_FNS["matmul"]
    ibjax.model.PRODUCT_FNS["matmul"] = product or original
    try:
        yield
    finally:
        ibjax.model.PRODUCT_FNS["matmul"] = original


def compiled_epochs(num_seeds: int, num_epochs: int, variant: str):
    """(jitted run over the epochs, initial states) for one variant; compiled before return."""
    overrides, product = VARIANTS[variant]
    data = ibjax.load_var_u()
    trainer = make_trainer(ibjax.Config(num_seeds=num_seeds, **overrides), data)
    states = jax.jit(jax.vmap(trainer.init))(jnp.arange(num_seeds), jnp.full(num_seeds, 4e-4))
    device_data = trainer.device_data(data)

    def epochs(state, data):
        return jax.lax.fori_loop(0, num_epochs, lambda _, s: trainer.train_epoch(s, data)[0],
                                 state)

    with matmul_product(product):
        compiled = jax.jit(jax.vmap(epochs, in_axes=(0, None))).lower(states,
                                                                      device_data).compile()

    def run(state):
        return compiled(state, device_data)

    return run, states


def ms_per_seed_epoch(run, states, num_seeds: int, num_epochs: int) -> float:
    jax.block_until_ready(run(states))
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        jax.block_until_ready(run(states))
        best = min(best, time.perf_counter() - start)
    return 1e3 * best / (num_seeds * num_epochs)


def print_device_profile(run, states, trace_dir: str, top: int = 25) -> None:
    """Traces one call and prints the most expensive device operations (GPU, else all)."""
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
        jax.block_until_ready(run(states))
    paths = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)
    if not paths:
        print("profile: no trace file written")
        return
    with gzip.open(max(paths, key=os.path.getmtime)) as handle:
        events = json.load(handle)["traceEvents"]
    process_names = {e["pid"]: e["args"]["name"] for e in events
                     if e.get("ph") == "M" and e.get("name") == "process_name"}
    thread_names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
                    if e.get("ph") == "M" and e.get("name") == "thread_name"}
    device_pids = {pid for pid, name in process_names.items() if "GPU" in name or "TPU" in name}
    totals, counts = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X" and (not device_pids or e["pid"] in device_pids):
            name = f"[{thread_names.get((e['pid'], e['tid']), '?')[:20]}] {e['name']}"
            totals[name] += e.get("dur", 0) / 1e3
            counts[name] += 1
    print(f"profile ({'device' if device_pids else 'all'} events by [thread] name, one call; "
          f"threads overlap): {sum(counts.values())} events")
    for name, ms in totals.most_common(top):
        print(f"  {ms:10.2f} ms {counts[name]:8d}x  {name[:110]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--variants", default="default,no-shuffle,sgd,sgd-no-shuffle",
                        help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--profile", metavar="DIR",
                        help="trace the default variant's run into DIR and print its top ops")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {unknown}; allowed: {', '.join(VARIANTS)}")
    print("hardware:", json.dumps(hardware_info()))
    print(f"{args.seeds} seeds x {args.epochs} epochs; XLA_FLAGS={os.environ['XLA_FLAGS']!r}")
    for variant in variants:
        start = time.perf_counter()
        run, states = compiled_epochs(args.seeds, args.epochs, variant)
        compile_s = time.perf_counter() - start
        cost = ms_per_seed_epoch(run, states, args.seeds, args.epochs)
        print(f"{variant:16s} {cost:.4f} ms per seed-epoch (compile {compile_s:.1f} s)",
              flush=True)
        if args.profile and variant == "default":
            print_device_profile(run, states, args.profile)


if __name__ == "__main__":
    main()
