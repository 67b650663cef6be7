"""Saxe et al.'s counterexample: ReLU against tanh, same seeds, binning and KDE side by side.

    python scripts/saxe_relu.py                # 10 seeds x 8000 epochs, 83 snapshots: ~12 min
    python scripts/saxe_relu.py --full         # 50 seeds x 10,000 epochs, 274 snapshots (GPU)

Saxe et al. (2018), "On the information bottleneck theory of deep learning": Adam 4e-4,
minibatches of 256, 80% train. Every run computes four estimators in the same program:
``binning`` (tanh: 30 edges on [-1, 1]; relu: 30 edges on each layer's own range),
``binning-width`` (width 0.07, Saxe's), ``kde-upper`` and ``kde-lower`` (noise variance 1e-3).
Writes figures and ``report.md`` under ``--out``.
"""

import time

import numpy as np
from _common import describe, parser, phase_table, run_or_load, write_report

import ibjax


def main() -> None:
    args = parser(__doc__.splitlines()[0], "ibjax_runs/saxe_relu").parse_args()
    started = time.perf_counter()
    base = ibjax.Config(
        num_seeds=50 if args.full else 10, num_epochs=10_000 if args.full else 8000,
        snapshots="log" if args.full else "log:100", batch_size=256,
        estimators=("binning", "binning-width", "kde-upper", "kde-lower"))
    sections = []
    for activation in ("tanh", "relu"):
        results = run_or_load(base.replace(activation=activation), args.out / activation,
                              args.fresh)
        final_accuracy = results.train_accuracy.isel(epoch=-1).values
        learned = final_accuracy >= 0.9
        sections.append(
            f"## {activation}\n\n{describe(results)}; {int(learned.sum())} of {learned.size} "
            f"seeds learned the task (final train accuracy >= 0.9; per seed: "
            f"{', '.join(f'{a:.2f}' for a in final_accuracy)})\n\n"
            f"![information plane]({activation}/information_plane.png)\n\n"
            "Median [2.5%, 97.5%] over seeds; I(X;T) and I(T;Y) columns are means over seeds, "
            "bits.\n\n" + phase_table(results))
        if 0 < learned.sum() < learned.size:
            sections.append(f"### {activation}, only the {int(learned.sum())} seeds that learned"
                            "\n\n" + phase_table(results.isel(seed=np.flatnonzero(learned))))
    write_report(args.out / "report.md", "ReLU against tanh under binning and KDE", sections,
                 started)


if __name__ == "__main__":
    main()
