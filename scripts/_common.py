"""Shared pieces of the reproduction scripts: run (or reuse) a configuration, write a report.

Each script is one command that writes its figures and a short markdown report with the
numbers under ``--out``. A finished run's ``results.nc`` is reused when its configuration
matches, so a report can be rebuilt without training again; ``--fresh`` retrains.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ibjax.cli import use_all_cpu_cores

use_all_cpu_cores()

import xarray as xr  # noqa: E402

import ibjax  # noqa: E402
from ibjax import phases  # noqa: E402
from ibjax.phases import format_interval  # noqa: E402
from ibjax.plotting import plot_results  # noqa: E402


def parser(description: str, default_out: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", type=Path, default=Path(default_out), help=f"({default_out})")
    p.add_argument("--full", action="store_true",
                   help="the full size (more seeds or snapshots; meant for a GPU)")
    p.add_argument("--fresh", action="store_true", help="retrain even if results exist")
    return p


def run_or_load(config: ibjax.Config, folder: Path, fresh: bool = False) -> xr.Dataset:
    """Runs ``config`` into ``folder/results.nc`` with figures, or loads a matching result."""
    path = folder / "results.nc"
    config = config.resolved()  # as a run records it (the scripts use var_u: no test set)
    if path.exists() and not fresh:
        existing = ibjax.load(path)
        if ibjax.config_of(existing) == config:
            print(f"reusing {path}", flush=True)
            return existing
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print(f"running {folder.name}: {config.num_seeds} seeds x {config.num_epochs} epochs ...",
          flush=True)
    results = ibjax.run(config, checkpoint_path=folder / "checkpoint.npz", results_path=path)
    plot_results(results, folder)
    print(f"  done in {time.perf_counter() - start:.0f} s "
          f"({results.attrs['seed_epochs_per_s']:.0f} seed-epochs/s)", flush=True)
    return results


def phase_table(results: xr.Dataset, estimator: str | None = None) -> str:
    """Markdown: per layer, median [95% interval] of the I(X;T) peak epoch, bits lost after
    it, the gradient-SNR < 1 epoch, and mean I(X;T) / I(T;Y) at the first and last snapshot."""
    summary = phases.summarize(phases.detect(results))
    estimators = [estimator] if estimator else [str(e) for e in results.estimator.values]
    lines = ["| estimator | layer | I(X;T) first | I(X;T) last | I(T;Y) last | I(X;T) peak epoch "
             "| bits lost after peak | gradient SNR < 1 epoch |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    ixt = results.ixt.mean("seed", skipna=True)
    ity = results.ity.mean("seed", skipna=True)
    for name in estimators:
        for i, layer in enumerate(results.layer_name.values):
            row = summary.sel(estimator=name).isel(layer=i)
            first = float(ixt.sel(estimator=name).isel(layer=i, epoch=0))
            last = float(ixt.sel(estimator=name).isel(layer=i, epoch=-1))
            last_ity = float(ity.sel(estimator=name).isel(layer=i, epoch=-1))
            lines.append(
                f"| {name} | {layer} | {first:.2f} | {last:.2f} | {last_ity:.3f} | "
                f"{format_interval(row.compression_epoch, 0)} | "
                f"{format_interval(row.bits_compressed, 2)} | "
                f"{format_interval(summary.snr_epoch.isel(layer=i), 0)} |")
    config = ibjax.config_of(results)
    if config.batch_size is None:
        lines.append("\nFull batch: one gradient per epoch, so no minibatch noise; the gradient "
                     "standard deviation is 0 and the signal-to-noise ratio never falls below 1.")
    return "\n".join(lines)


COMPRESSION_BITS = 0.05


def verdicts(results) -> str:
    """Markdown: per estimator, each layer's median [95% interval] bits lost after the I(X;T)
    peak, marked when the layer compresses, and how many layers do."""
    summary = phases.summarize(phases.detect(results))
    names = list(results.layer_name.values)
    lines = ["| estimator | layers that compress | " + " | ".join(map(str, names)) + " |",
             "| --- | ---: | " + " | ".join("---:" for _ in names) + " |"]
    for estimator in results.estimator.values:
        part = summary.bits_compressed.sel(estimator=estimator)
        cells, count = [], 0
        for i in range(len(names)):
            row = part.isel(layer=i)
            compresses = float(row.sel(stat="low")) > COMPRESSION_BITS
            count += compresses
            cells.append(("**" if compresses else "") + format_interval(row, 2)
                         + ("**" if compresses else ""))
        lines.append(f"| {estimator} | {count} of {len(names)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def describe(results: xr.Dataset) -> str:
    config = ibjax.config_of(results)
    return (f"{config.num_seeds} seeds, {config.activation} "
            f"12-{'-'.join(map(str, config.hidden))}-2, {config.optimizer} lr "
            f"{config.learning_rate}, batch {config.batch_size or 'full'}, "
            f"{100 * config.train_fraction_for(0):.0f}% train ({config.split} split, "
            f"{'shuffled' if config.shuffle else 'unshuffled'} batches), {config.num_epochs} "
            f"epochs, {results.sizes['epoch']} snapshots; {results.attrs.get('device', '?')}, "
            f"run {results.attrs.get('run_s', float('nan')):.0f} s")


def write_report(path: Path, title: str, sections: list[str], started: float) -> None:
    elapsed = time.perf_counter() - started
    text = "\n\n".join([f"# {title}", *sections,
                        f"_Written by `{' '.join(sys.argv)}` in {elapsed:.0f} s "
                        f"(this invocation; reused results cost nothing)._\n"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"report: {path}")
