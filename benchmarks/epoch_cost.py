"""Where a training epoch's time goes: ablations on one device.

    python benchmarks/epoch_cost.py --seeds 50 --epochs 200

Times ``--epochs`` training epochs of ``--seeds`` vmapped paper networks (batch 512, 7
minibatch steps an epoch, no measurement) on one device, for: the default (Adam, reshuffled
batches), without the per-epoch shuffle, with SGD instead of Adam, and with neither. The
differences are the cost of the shuffle (a keyed Feistel permutation per epoch, see
ibjax.permutation) and of Adam's update. Compile time
is excluded (one warm-up call); best of two.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")

import jax
import jax.numpy as jnp

import ibjax
from ibjax.runner import hardware_info
from ibjax.train import make_trainer

VARIANTS = {
    "default (adam, shuffled)": {},
    "no shuffle": {"shuffle": False},
    "sgd, shuffled": {"optimizer": "sgd"},
    "sgd, no shuffle": {"optimizer": "sgd", "shuffle": False},
}


def ms_per_seed_epoch(num_seeds: int, num_epochs: int, **overrides) -> float:
    trainer = make_trainer(ibjax.Config(num_seeds=num_seeds, **overrides), ibjax.load_var_u())
    states = jax.jit(jax.vmap(trainer.init))(jnp.arange(num_seeds),
                                            jnp.full(num_seeds, 4e-4))

    def epochs(state):
        return jax.lax.fori_loop(0, num_epochs, lambda _, s: trainer.train_epoch(s)[0], state)

    run = jax.jit(jax.vmap(epochs))
    jax.block_until_ready(run(states))
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        jax.block_until_ready(run(states))
        best = min(best, time.perf_counter() - start)
    return 1e3 * best / (num_seeds * num_epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args()
    print("hardware:", json.dumps(hardware_info()))
    for label, overrides in VARIANTS.items():
        cost = ms_per_seed_epoch(args.seeds, args.epochs, **overrides)
        print(f"{label:28s} {cost:.3f} ms per seed-epoch", flush=True)


if __name__ == "__main__":
    main()
