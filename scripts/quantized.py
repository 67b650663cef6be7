"""Quantized networks, exact information planes: Lorenzen, Igel & Nielsen (2022) on ibjax.

    python scripts/quantized.py          # 20 seeds x 8000 epochs, 60 snapshots, all 4096 rows:
                                         # 8-bit tanh, 8-bit ReLU, 4-bit tanh (~15 min, 2 cores)
    python scripts/quantized.py --full   # 50 seeds, the 274-snapshot log schedule (GPU)

The paper's network (12-10-7-5-4-3-2, Adam 4e-4, minibatches of 512, 80% train) with every
hidden activation and the softmax output quantized to k bits (``Config.quantize``, rule in
:mod:`ibjax.quantization`), straight-through gradients. Each layer then takes finitely many
values, so I(X;T) and I(T;Y) are computed exactly by counting (``exact``: no bins to choose);
the paper's 30-bin ``binning`` of the same layers is computed beside it, in the same program.

Lorenzen et al.'s stated findings (abstract, ICLR 2022): a fitting phase for all layers, a
compression phase for the output layer in all experiments, and compression in the hidden
layers that depends on the activation function. A layer "fits" when I(T;Y) rises after epoch 0
in nearly every seed; it "compresses" as in ``scripts/estimators_compared.py``: the 2.5%
quantile over seeds of the bits of I(X;T) lost after its peak exceeds ``COMPRESSION_BITS``.
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
from ibjax import phases

RUNS = (("8-bit tanh", 8, "tanh"), ("8-bit relu", 8, "relu"), ("4-bit tanh", 4, "tanh"))


def fits_per_layer(results, estimator: str = "exact") -> tuple[np.ndarray, list[bool],
                                                               list[bool]]:
    """The rise of I(T;Y) from epoch 0 to its maximum ``[seed, layer]``; per layer whether it
    fits (2.5% quantile of the rise above 0.01 bits) and whether it starts at H(Y) already (the
    largest I(T;Y) of the run, i.e. nothing left to fit: within 0.01 bits in every seed)."""
    ity = results.ity.sel(estimator=estimator)
    rise = (ity.max("epoch", skipna=True) - ity.isel(epoch=0)).values  # [seed, layer]
    top = float(ity.max(skipna=True))
    at_top = [bool(np.all(ity.isel(epoch=0, layer=i).values >= top - 0.01))
              for i in range(rise.shape[1])]
    fits = [bool(np.nanquantile(rise[:, i], 0.025) > 0.01) for i in range(rise.shape[1])]
    return rise, fits, at_top


def fitting(results) -> str:
    """Markdown: per layer, the rise of I(T;Y) from epoch 0 to its maximum, median [95%] over
    seeds; bold where the layer fits."""
    rise, fits, at_top = fits_per_layer(results)
    cells = []
    for i in range(rise.shape[1]):
        low, mid, high = np.nanquantile(rise[:, i], [0.025, 0.5, 0.975])
        text = f"{mid:.3f} [{low:.3f}, {high:.3f}]" + (" (at H(Y) from epoch 0)"
                                                       if at_top[i] else "")
        cells.append(("**" if fits[i] else "") + text + ("**" if fits[i] else ""))
    names = list(map(str, results.layer_name.values))
    return "\n".join([
        "| | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---:" for _ in names) + " |",
        "| I(T;Y) rise (bits) | " + " | ".join(cells) + " |"])


def statements(results) -> str:
    """Plain statements of agreement with Lorenzen et al.'s three findings."""
    summary = phases.summarize(phases.detect(results)).bits_compressed.sel(estimator="exact")
    compresses = [float(summary.isel(layer=i).sel(stat="low")) > COMPRESSION_BITS
                  for i in range(results.sizes["layer"])]
    _, fits, at_top = fits_per_layer(results)
    hidden = compresses[:-1]
    neither = sum(1 for f, t in zip(fits, at_top, strict=True) if not (f or t))
    return "\n".join([
        f"- Fitting phase in every layer that has room to fit: "
        f"{'yes' if neither == 0 else 'no'} ({sum(fits)} of {len(fits)} layers fit in nearly "
        f"every seed, {sum(at_top)} hold I(T;Y) = H(Y) from epoch 0, {neither} neither).",
        f"- Output layer compresses: {'yes' if compresses[-1] else 'no'}.",
        f"- Hidden layers that compress: {sum(hidden)} of {len(hidden)}."])


def main() -> None:
    p = parser(__doc__.splitlines()[0], "ibjax_runs/quantized")
    p.add_argument("--seeds", type=int, help="networks per run (20; 50 with --full)")
    p.add_argument("--epochs", type=int, default=8000, help="(8000)")
    args = p.parse_args()
    started = time.perf_counter()
    base = ibjax.Config(num_seeds=args.seeds or (50 if args.full else 20),
                        num_epochs=args.epochs, snapshots="log" if args.full else "log:60",
                        estimators=("exact", "binning"))
    sections = [
        "Cells: median [2.5%, 97.5%] over seeds. Bold: the layer fits (I(T;Y) rise) or "
        f"compresses (bits of I(X;T) lost after its peak, 2.5% quantile > {COMPRESSION_BITS})."]
    for title, bits, activation in RUNS:
        folder = title.replace(" ", "_").replace("-", "")
        results = run_or_load(base.replace(quantize=bits, activation=activation),
                              args.out / folder, args.fresh)
        accuracy = results.test_accuracy.isel(epoch=-1).values
        learned = results.train_accuracy.isel(epoch=-1).values >= 0.9
        sections.append(
            f"## {title}\n\n{describe(results)}; final test accuracy median "
            f"{np.nanmedian(accuracy):.3f}; {int(learned.sum())} of {learned.size} seeds "
            f"learned the task (final train accuracy >= 0.9)\n\n"
            f"![information plane]({folder}/information_plane.png)\n\n"
            f"### Against Lorenzen et al.'s findings (exact)\n\n{statements(results)}\n\n"
            f"### Fitting: I(T;Y) rise after epoch 0 (exact)\n\n{fitting(results)}\n\n"
            f"### Compression: bits of I(X;T) lost after its peak\n\n{verdicts(results)}\n\n"
            f"### Phases\n\n{phase_table(results)}")
        if 0 < learned.sum() < learned.size:
            subset = results.isel(seed=np.flatnonzero(learned))
            sections.append(
                f"### {title}, only the {int(learned.sum())} seeds that learned\n\n"
                f"{statements(subset)}\n\n{fitting(subset)}\n\n{verdicts(subset)}")
    write_report(args.out / "report.md", "Quantized networks: exact information planes",
                 sections, started)


if __name__ == "__main__":
    main()
