"""The paper's training-size comparison: 5%, 45% and 85% of the data, same seeds.

    python scripts/training_size.py         # 20 seeds x 8000 epochs each: 5.4 min, 2-core CPU
    python scripts/training_size.py --full     # 100 seeds

The corrected default setup otherwise (random split per seed, shuffled batches of 512, Adam
4e-4). 5% of the data is 205 rows, fewer than one batch of 512: that run is full batch, which
is what the authors' code does too (its slicing yields one partial batch). Writes figures and
``report.md`` under ``--out``.
"""

import time

from _common import describe, parser, phase_table, run_or_load, write_report

import ibjax
from ibjax.config import num_train

FRACTIONS = (0.05, 0.45, 0.85)


def main() -> None:
    args = parser(__doc__.splitlines()[0], "ibjax_runs/training_size").parse_args()
    started = time.perf_counter()
    sections = []
    for fraction in FRACTIONS:
        rows = num_train(fraction, 4096)
        config = ibjax.Config(num_seeds=100 if args.full else 20, train_fraction=fraction,
                              batch_size=None if rows < 512 else 512)
        name = f"train{round(100 * fraction)}"
        results = run_or_load(config, args.out / name, args.fresh)
        test_accuracy = float(results.test_accuracy.isel(epoch=-1).mean())
        sections.append(
            f"## {100 * fraction:.0f}% of the data ({rows} rows)\n\n{describe(results)}; "
            f"final test accuracy {test_accuracy:.3f}\n\n"
            f"![information plane]({name}/information_plane.png)\n\n" + phase_table(results))
    write_report(args.out / "report.md", "Training-set size: 5%, 45%, 85%", sections, started)


if __name__ == "__main__":
    main()
