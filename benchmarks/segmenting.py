"""What cutting a run into compiled segments costs: the same run in 1 segment and in many.

    python benchmarks/segmenting.py --seeds 32 --epochs 2000

Between segments the host fetches the snapshot measurements and reports progress (and, with a
checkpoint path, saves the state); this measures that overhead with no checkpointing, in one
process, best of ``--repeats`` runs each, compile time apart.
"""

from __future__ import annotations

import argparse
import json

from ibjax.cli import use_all_cpu_cores

use_all_cpu_cores()  # as `ibjax run` does (before JAX starts its CPU backend)

import ibjax  # noqa: E402
from ibjax.hardware import hardware_info  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--segments", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print("hardware:", json.dumps(hardware_info()))
    config = ibjax.Config(num_seeds=args.seeds, num_epochs=args.epochs)
    best = {}
    for segments in args.segments:
        runs = [ibjax.run(config, target_segments=segments) for _ in range(args.repeats)]
        best[segments] = min(r.attrs["run_s"] for r in runs)
        print(json.dumps({"target_segments": segments, "seeds": args.seeds,
                          "epochs": args.epochs, "compile_s": round(runs[0].attrs["compile_s"], 1),
                          "best_run_s": round(best[segments], 2)}), flush=True)
    base = best[min(best)]
    for segments, run_s in best.items():
        print(f"{segments:4d} segments: {run_s:7.2f} s  overhead {100 * (run_s / base - 1):+5.1f}%")


if __name__ == "__main__":
    main()
