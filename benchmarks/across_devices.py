"""Same seeds on two platforms (e.g. GPU and CPU): do they give the same networks and curves?

    JAX_PLATFORMS=cpu python benchmarks/across_devices.py run --out cpu.nc
    python benchmarks/across_devices.py run --out gpu.nc          # on the GPU machine
    python benchmarks/across_devices.py compare cpu.nc gpu.nc

``run`` trains 8 paper networks for 300 epochs with every estimator and writes the results;
``compare`` prints, per variable, the largest difference at epoch 0 (the initial networks:
identical keys must give identical weights) and over the whole run (float rounding differs
between platforms and grows through training).
"""

from __future__ import annotations

import argparse

import numpy as np

CONFIG = {"num_seeds": 8, "num_epochs": 300, "snapshots": "every:50",
          "estimators": ("binning", "binning-width", "equal-mass", "kde-upper", "kde-lower")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run")
    run.add_argument("--out", required=True)
    compare = commands.add_parser("compare")
    compare.add_argument("files", nargs=2)
    args = parser.parse_args()
    from ibjax.cli import use_all_cpu_cores

    use_all_cpu_cores()  # as `ibjax run` does; no effect on a GPU
    import ibjax

    if args.command == "run":
        result = ibjax.run(ibjax.Config(**CONFIG))
        ibjax.save(result, args.out)
        print(f"{args.out}: {result.attrs['device']}, run {result.attrs['run_s']:.1f} s")
        return
    a, b = (ibjax.load(path) for path in args.files)
    print(f"{args.files[0]}: {a.attrs['device']}; {args.files[1]}: {b.attrs['device']}")
    for name in ("ixt", "ity", "train_loss", "test_accuracy"):
        diff = np.abs(a[name].values - b[name].values)
        print(f"{name:14s} epoch 0: max |diff| {np.nanmax(diff[:, 0]):.3g}   "
              f"whole run: max {np.nanmax(diff):.3g}, mean {np.nanmean(diff):.3g}")


if __name__ == "__main__":
    main()
