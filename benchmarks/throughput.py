"""ibjax throughput on the paper configuration: compile time apart from run time.

    python benchmarks/throughput.py --seeds 16 --epochs 2000

Prints the hardware, the sizes, compile and run time and seed-epochs per second, and for an
MLP the training arithmetic achieved: the multiply-adds of each epoch's forward and backward
passes over the training rows (weights only: each layer's forward product, its weight
gradient and, above the first layer, its input gradient), as FLOP/s over the whole run time
(snapshots included) and as a fraction of the device's float32 peak where it is known. (The
comparison against a reference-style baseline in the same process is benchmarks/baseline.py.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform

from ibjax.cli import use_all_cpu_cores

use_all_cpu_cores()  # as `ibjax run` does (before JAX starts its CPU backend)

import jax  # noqa: E402

import ibjax  # noqa: E402
from ibjax.config import LAYER_PRODUCTS, TRAINING_KERNELS, num_train  # noqa: E402
from ibjax.hardware import hardware_info  # noqa: E402

FP32_PEAK_TFLOPS = {"H200": 67.0, "H100 80GB HBM3": 67.0, "H100 SXM": 67.0, "H100 PCIe": 51.0,
                    "A100": 19.5}
"""Dense float32 peak (no tensor cores) by device kind, from NVIDIA's data sheets."""


def training_flop_per_seed_epoch(config: ibjax.Config, num_features: int, num_classes: int,
                                 num_train_rows: int) -> int | None:
    """FLOP (2 per multiply-add) of one epoch's weight products for an MLP, else None."""
    if config.model != "mlp":
        return None
    widths = [num_features, *config.hidden, num_classes]
    products = [a * b for a, b in zip(widths[:-1], widths[1:], strict=True)]
    multiply_adds = 2 * sum(products) + sum(products[1:])  # forward, weight grads, input grads
    return 2 * multiply_adds * num_train_rows


def fp32_peak_tflops(device_kind: str) -> float | None:
    return next((peak for name, peak in FP32_PEAK_TFLOPS.items() if name in device_kind), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--snapshots", default="log", help="log, every:K, ...")
    parser.add_argument("--preset", choices=("default", "authors"), default="default")
    parser.add_argument("--layer-product", choices=LAYER_PRODUCTS,
                        default="auto", help="Config.layer_product (default auto)")
    parser.add_argument("--training-kernel", choices=TRAINING_KERNELS, default="xla",
                        help="Config.training_kernel: xla (default) or fused (the Pallas "
                             "epoch kernel, ibjax.fused_epoch)")
    parser.add_argument("--training-group", type=int, default=None,
                        help="networks a device trains at once (ibjax.run's training_group; "
                             "default: the platform's, 64 on a CPU)")
    args = parser.parse_args()
    make = ibjax.Config.authors if args.preset == "authors" else ibjax.Config
    config = make(num_seeds=args.seeds, num_epochs=args.epochs, snapshots=args.snapshots,
                  layer_product=args.layer_product, training_kernel=args.training_kernel)
    hardware = {**hardware_info(), "cpu_count": os.cpu_count(), "platform": platform.platform()}
    print("hardware:", json.dumps(hardware))
    result = ibjax.run(config, training_group=args.training_group)
    data = ibjax.load_var_u()
    flop = training_flop_per_seed_epoch(config, data.x.shape[1], int(data.y.max()) + 1,
                                        num_train(config.train_fraction_for(0), data.x.shape[0]))
    achieved = None if flop is None else flop * result.attrs["seed_epochs_per_s"] / 1e12
    peak = fp32_peak_tflops(jax.devices()[0].device_kind)
    print(json.dumps({
        "seeds": args.seeds, "epochs": args.epochs, "snapshots": result.sizes["epoch"],
        "preset": args.preset, "layer_products": result.attrs["layer_products"],
        "training_kernel": args.training_kernel,
        "training_groups": result.attrs["training_groups"],
        "compile_s": round(result.attrs["compile_s"], 2),
        "run_s": round(result.attrs["run_s"], 2),
        "seed_epochs_per_s": round(result.attrs["seed_epochs_per_s"], 1),
        "training_mflop_per_seed_epoch": None if flop is None else round(flop / 1e6, 2),
        "training_tflop_per_s": None if achieved is None else round(achieved, 4),
        "fp32_peak_tflop_per_s": peak,
        "fraction_of_fp32_peak": None if achieved is None or peak is None else round(
            achieved / peak, 4),
    }))


if __name__ == "__main__":
    main()
