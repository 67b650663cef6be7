"""ibjax throughput on the paper configuration: compile time apart from run time.

    python benchmarks/throughput.py --seeds 16 --epochs 2000

Prints the hardware, the sizes, compile and run time and seed-epochs per second. (The
comparison against a reference-style baseline in the same process is benchmarks/baseline.py.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform

from ibjax.cli import use_all_cpu_cores

use_all_cpu_cores()  # as `ibjax run` does (before JAX starts its CPU backend)

import ibjax  # noqa: E402
from ibjax.config import LAYER_PRODUCTS  # noqa: E402
from ibjax.hardware import hardware_info  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--snapshots", default="log", help="log, every:K, ...")
    parser.add_argument("--preset", choices=("default", "authors"), default="default")
    parser.add_argument("--layer-product", choices=LAYER_PRODUCTS,
                        default="auto", help="Config.layer_product (default auto)")
    parser.add_argument("--training-group", type=int, default=None,
                        help="networks a device trains at once (ibjax.run's training_group; "
                             "default: the platform's, 64 on a CPU)")
    args = parser.parse_args()
    make = ibjax.Config.authors if args.preset == "authors" else ibjax.Config
    config = make(num_seeds=args.seeds, num_epochs=args.epochs, snapshots=args.snapshots,
                  layer_product=args.layer_product)
    hardware = {**hardware_info(), "cpu_count": os.cpu_count(), "platform": platform.platform()}
    print("hardware:", json.dumps(hardware))
    result = ibjax.run(config, training_group=args.training_group)
    print(json.dumps({
        "seeds": args.seeds, "epochs": args.epochs, "snapshots": result.sizes["epoch"],
        "preset": args.preset, "layer_products": result.attrs["layer_products"],
        "training_groups": result.attrs["training_groups"],
        "compile_s": round(result.attrs["compile_s"], 2),
        "run_s": round(result.attrs["run_s"], 2),
        "seed_epochs_per_s": round(result.attrs["seed_epochs_per_s"], 1),
    }))


if __name__ == "__main__":
    main()
