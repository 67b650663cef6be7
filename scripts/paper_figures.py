"""The paper's Figures 3 and 4 (information plane; gradient mean and std) with tanh, many seeds.

    python scripts/paper_figures.py         # 50 seeds x 8000 epochs, twice: 8.6 min, 2-core CPU
    python scripts/paper_figures.py --full     # 500 seeds (a GPU)

Two setups on the same seeds: the authors' code as published (``--preset authors``: first 80%
of rows, unshuffled batches of 512) and ibjax's corrected default (random split per seed,
shuffled batches). Writes figures and ``report.md`` under ``--out``.
"""

import time

from _common import describe, parser, phase_table, run_or_load, write_report

import ibjax


def main() -> None:
    args = parser(__doc__.splitlines()[0], "ibjax_runs/paper_figures").parse_args()
    started = time.perf_counter()
    seeds = 500 if args.full else 50
    sections = []
    for name, config in (("authors", ibjax.Config.authors(num_seeds=seeds)),
                         ("default", ibjax.Config(num_seeds=seeds))):
        results = run_or_load(config, args.out / name, args.fresh)
        sections.append(
            f"## {name} setup\n\n{describe(results)}\n\n"
            f"![information plane]({name}/information_plane.png)\n"
            f"![gradients]({name}/gradients.png)\n\n"
            "Median [2.5%, 97.5%] over seeds; I(X;T) and I(T;Y) columns are means over seeds, "
            "bits.\n\n" + phase_table(results))
    write_report(args.out / "report.md", "Figures 3 and 4 of Shwartz-Ziv & Tishby (2017)",
                 sections, started)


if __name__ == "__main__":
    main()
