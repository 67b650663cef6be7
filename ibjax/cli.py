"""Command line: ``ibjax run`` trains and measures, ``ibjax plot RESULTS`` draws the figures.

Thin by design: it parses flags into a :class:`~ibjax.config.Config` and calls the library.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ibjax.config import ACTIVATIONS, OPTIMIZERS, Config, ConfigError
from ibjax.results import ResultsFileError

RESULTS_NAME = "results.nc"


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.replace("-", ",").split(",") if w.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hidden takes widths like 10,7,5,4,3; got {text!r}") from None
    return widths


def _pair(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bin-range takes lo,hi like -1,1; got {text!r}") from None
    return lo, hi


def _batch(text: str) -> int | None:
    if text.lower() == "full":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--batch-size takes a positive integer or 'full'; got {text!r}") from None


def _snapshots(text: str) -> str | tuple[int, ...]:
    if text.startswith(("log", "every")):
        return text
    try:
        return tuple(int(e) for e in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--snapshots takes log, log:N, every:K or a list like 0,10,100; got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ibjax", description="Information-plane experiments, many seeds in one program.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run", help="train networks and measure the information plane",
        description="Train --seeds networks at once and measure I(X;T), I(T;Y), gradient "
                    "statistics and accuracy at every snapshot; write results.nc and figures.")
    run.add_argument("--preset", choices=("default", "authors"), default="default",
                     help="'authors': the authors' code as published (first 80%% of rows, "
                          "unshuffled batches of 512, Adam 4e-4, 8000 epochs, 30 bins); "
                          "'default': corrected (random split per seed, shuffled batches). "
                          "Other flags override the preset.")
    run.add_argument("--seeds", type=int, help="number of networks (default 16)")
    run.add_argument("--seed", type=int, help="base seed (default 0)")
    run.add_argument("--epochs", type=int, help="training epochs (default 8000)")
    run.add_argument("--out", type=Path, default=Path("ibjax_runs/latest"),
                     help="output folder (default ibjax_runs/latest)")
    run.add_argument("--hidden", type=_widths, help="hidden widths, e.g. 10,7,5,4,3")
    run.add_argument("--activation", help=f"one of {', '.join(ACTIVATIONS)}")
    run.add_argument("--optimizer", help=f"one of {', '.join(OPTIMIZERS)}")
    run.add_argument("--lr", type=float, dest="learning_rate", help="learning rate")
    run.add_argument("--batch-size", type=_batch, dest="batch_size", default=argparse.SUPPRESS,
                     help="minibatch size or 'full' (default 512)")
    run.add_argument("--train-fraction", type=float, dest="train_fraction",
                     help="fraction of rows used for training, in (0, 1] (default 0.8)")
    run.add_argument("--split", help="'random' (per seed) or 'first' (authors')")
    shuffle = run.add_mutually_exclusive_group()
    shuffle.add_argument("--shuffle", dest="shuffle", action="store_true", default=None,
                         help="reshuffle the training set every epoch")
    shuffle.add_argument("--no-shuffle", dest="shuffle", action="store_false",
                         help="contiguous unshuffled batches (authors')")
    run.add_argument("--bins", type=int, dest="num_bins", help="number of bin edges (30)")
    run.add_argument("--bin-range", type=_pair, dest="bin_range", help="lo,hi (default -1,1)")
    run.add_argument("--snapshots", type=_snapshots,
                     help="log (default), log:N, every:K or a list of epochs")
    run.add_argument("--no-plots", action="store_true", help="skip the figures")
    run.add_argument("--quiet", action="store_true", help="no progress line")

    plot = commands.add_parser("plot", help="draw the figures of a results file")
    plot.add_argument("results", type=Path, help="a results.nc written by ibjax run")
    plot.add_argument("--out", type=Path, help="folder for the figures (default: beside it)")
    return parser


CONFIG_FLAGS = ("seed", "hidden", "activation", "optimizer", "learning_rate", "batch_size",
                "train_fraction", "split", "shuffle", "num_bins", "bin_range", "snapshots")


def config_from_args(args: argparse.Namespace) -> Config:
    """The Config a ``run`` command line asks for (preset, then the flags given)."""
    # --batch-size may legitimately be None ('full'), so it is absent unless given.
    overrides = {name: getattr(args, name) for name in CONFIG_FLAGS
                 if hasattr(args, name) and (name == "batch_size"
                                             or getattr(args, name) is not None)}
    if args.seeds is not None:
        overrides["num_seeds"] = args.seeds
    if args.epochs is not None:
        overrides["num_epochs"] = args.epochs
    if args.preset == "authors":
        return Config.authors(**overrides)
    return Config(**overrides)


class _ProgressLine:
    """A one-line progress display on stderr."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream

    def __call__(self, p) -> None:
        eta = "?" if p.eta_s != p.eta_s else f"{p.eta_s:5.0f} s"
        self.stream.write(
            f"\r  epoch {p.epochs_done:>6}/{p.num_epochs} ({100 * p.epochs_done / p.num_epochs:5.1f}%)"
            f"  elapsed {p.elapsed_s:6.1f} s  ETA {eta}  {p.seed_epochs_per_s:8.0f} seed-epochs/s")
        self.stream.flush()
        if p.epochs_done >= p.num_epochs:
            self.stream.write("\n")


def _cmd_run(args: argparse.Namespace) -> int:
    config = config_from_args(args).validate()
    from ibjax.data import load_dataset

    config.validate(num_samples=load_dataset(config.dataset).x.shape[0])
    from ibjax import results as results_io
    from ibjax.runner import run

    hidden = "-".join(map(str, config.hidden))
    print(f"ibjax: {config.num_seeds} seeds x {config.num_epochs} epochs, {config.activation} "
          f"{hidden}, {config.optimizer} lr {config.learning_rate}, "
          f"batch {config.batch_size or 'full'}, split {config.split}, "
          f"shuffle {config.shuffle}; compiling...", flush=True)
    start = time.perf_counter()
    ds = run(config, progress=None if args.quiet else _ProgressLine())
    path = results_io.save(ds, args.out / RESULTS_NAME)
    figures = [] if args.no_plots else _plot(path, args.out)
    total = time.perf_counter() - start
    print(f"compile time   {ds.attrs['compile_s']:.1f} s\n"
          f"run time       {ds.attrs['run_s']:.1f} s  ({total:.1f} s in all)\n"
          f"throughput     {ds.attrs['seed_epochs_per_s']:.0f} seed-epochs/s on {ds.attrs['device']}\n"
          f"results        {path}")
    for figure in figures:
        print(f"figure         {figure}")
    return 0


def _plot(path: Path, out: Path) -> list[Path]:
    from ibjax.plotting import plot_results

    return plot_results(path, out)


def _cmd_plot(args: argparse.Namespace) -> int:
    for figure in _plot(args.results, args.out or args.results.parent):
        print(figure)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _cmd_run(args)
        return _cmd_plot(args)
    except (ConfigError, FileNotFoundError, ResultsFileError) as err:
        print(f"ibjax {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
