"""Every estimator on the same networks: which of them show compression, tanh and ReLU.

    python scripts/estimators_compared.py          # 20 seeds x 8000 epochs, 60 snapshots, 1024
                                                   # MI rows, tanh and relu: ~25 min on 2 cores
    python scripts/estimators_compared.py --full   # 50 seeds, the 274-snapshot log schedule, all
                                                   # 4096 rows (GPU)

The paper's setup (12-10-7-5-4-3-2, Adam 4e-4, minibatches of 512, 80% train) with tanh and
with ReLU. Each run computes all seven estimators of ``ibjax.mi`` in one compiled program, on
the same networks at the same snapshots, and the label-shuffle null of I(T;Y) beside them
(``null=True``): ``binning`` (tanh: 30 edges on [-1, 1]; relu: 30 edges on each layer's own
range), ``binning-width`` (0.07), ``equal-mass`` (30 bins), ``kde-upper`` and ``kde-lower``
(variance 1e-3), ``matrix-renyi`` (order 2, Silverman widths, against the inputs) and ``knn``
(k = 3, against the inputs). The default measures on a fixed random 1024 of the 4096 rows
(``mi_samples``): the pairwise estimators cost O(N^2) per layer and snapshot.

A layer "compresses" under an estimator when nearly every seed lost I(X;T) after its peak: the
2.5% quantile over seeds of the bits lost after the peak (:mod:`ibjax.phases`) exceeds
``COMPRESSION_BITS``. Writes figures and ``report.md`` under ``--out``.
"""

import time

import numpy as np
from _common import (
    COMPRESSION_BITS,
    describe,
    parser,
    phase_table,
    run_or_load,
    verdicts,
    write_report,
)

import ibjax
from ibjax.mi import ESTIMATORS

# exact and noisy measure quantized and noise-injected networks: scripts/quantized.py, noisy.py
SEVEN = tuple(name for name in ESTIMATORS if name not in ("exact", "noisy"))


def null_lines(results) -> str:
    """Per estimator, the last snapshot's mean I(T;Y) and its null, layer by layer."""
    last = results.isel(epoch=-1).mean("seed", skipna=True)
    lines = ["| estimator | " + " | ".join(map(str, results.layer_name.values)) + " |",
             "| --- | " + " | ".join("---:" for _ in results.layer_name.values) + " |"]
    for estimator in results.estimator.values:
        cells = [f"{float(last.ity.sel(estimator=estimator).isel(layer=i)):.3f} / "
                 f"{float(last.ity_null.sel(estimator=estimator).isel(layer=i)):.3f}"
                 for i in range(results.sizes["layer"])]
        lines.append(f"| {estimator} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = parser(__doc__.splitlines()[0], "ibjax_runs/estimators_compared")
    p.add_argument("--seeds", type=int, help="networks per activation (20; 50 with --full)")
    p.add_argument("--epochs", type=int, default=8000, help="(8000)")
    args = p.parse_args()
    started = time.perf_counter()
    seeds = args.seeds or (50 if args.full else 20)
    base = ibjax.Config(num_seeds=seeds, num_epochs=args.epochs,
                        snapshots="log" if args.full else "log:60",
                        estimators=SEVEN, null=True,
                        mi_samples="all" if args.full else 1024)
    sections = [
        f"Compression: a layer compresses when the 2.5% quantile over seeds of the bits of "
        f"I(X;T) lost after its peak exceeds {COMPRESSION_BITS} bits (bold). Cells: median "
        f"[2.5%, 97.5%] over seeds, bits."]
    for activation in ("tanh", "relu"):
        results = run_or_load(base.replace(activation=activation), args.out / activation,
                              args.fresh)
        accuracy = results.test_accuracy.isel(epoch=-1).values
        sections.append(
            f"## {activation}\n\n{describe(results)}; MI on {results.attrs.get('mi_rows')} rows; "
            f"final test accuracy median {np.nanmedian(accuracy):.3f}\n\n"
            f"![information plane]({activation}/information_plane.png)\n\n"
            f"### Which estimators show compression\n\n{verdicts(results)}\n\n"
            f"### I(T;Y) / its label-shuffle null at the last snapshot (mean over seeds, "
            f"bits)\n\n{null_lines(results)}\n\n"
            f"![I(T;Y) above the null]({activation}/null_gap.png)\n\n"
            f"### Phases\n\n{phase_table(results)}")
    write_report(args.out / "report.md", "Seven estimators on the same networks", sections,
                 started)


if __name__ == "__main__":
    main()
