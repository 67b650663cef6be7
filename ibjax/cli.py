"""Command line: ``ibjax run`` trains and measures, ``ibjax plot RESULTS`` draws the figures.

Thin by design: the flags become a :class:`~ibjax.config.Config` (:mod:`ibjax.cli_flags`)
and each command calls the library; this module runs the commands and turns errors and
interrupts into one-line messages and exit statuses.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from ibjax.atomic import CannotWrite
from ibjax.cache import cache_dir
from ibjax.checkpoint import CheckpointError
from ibjax.cli_flags import (
    DEFAULT_OUT,
    build_parser,
    check_animation_flags,
    check_run_flags,
    config_from_args,
    flag_named,
)
from ibjax.config import ConfigError
from ibjax.interrupts import exit_status, handle_signals, restore
from ibjax.mi import MIError
from ibjax.results import ResultsFileError


def use_all_cpu_cores() -> None:
    """Exposes every CPU core as a JAX device (so seeds shard over them), unless the user chose.

    Must run before JAX initialises its CPU backend; only affects the CPU platform.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags or "JAX_NUM_CPU_DEVICES" in os.environ:
        return
    count = os.cpu_count() or 1
    if count > 1:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def use_compilation_cache() -> None:
    """Turns on JAX's persistent compilation cache for this process, unless the user chose.

    The cache lives in ``$IBJAX_CACHE_DIR/jax`` or ``~/.cache/ibjax/jax`` (:mod:`ibjax.cache`);
    a repeated run of the same configuration then loads its program instead of recompiling.
    Set ``JAX_COMPILATION_CACHE_DIR`` to choose another folder. (``import ibjax`` changes no
    JAX setting; only the command line does this.) A folder that cannot be written leaves the
    cache off, said in one line on stderr. With the cache on, the runner keeps the traced
    programs too (:mod:`ibjax.program_cache`). Programs that compile in 0.1 s or more are
    cached (JAX's default is 1 s; ``init``'s two programs take 0.2-0.5 s), unless
    ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` is set.
    """
    import jax

    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    if "JAX_COMPILATION_CACHE_DIR" in os.environ or jax.config.jax_compilation_cache_dir:
        return
    folder = cache_dir("jax")
    try:  # an unusable cache would make JAX warn at every program; say it once, run without
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        print(f"ibjax: compilation cache off ({folder}: {err.strerror or err}); every run "
              f"compiles from scratch", file=sys.stderr)
        return
    jax.config.update("jax_compilation_cache_dir", str(folder))


class _ProgressLine:
    """A one-line progress display on stderr."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream

    def __call__(self, p) -> None:
        eta = "?" if p.eta_s != p.eta_s else f"{p.eta_s:5.0f} s"
        self.stream.write(
            f"\r  epoch {p.epochs_done:>6}/{p.num_epochs} "
            f"({100 * p.epochs_done / p.num_epochs:5.1f}%)"
            f"  elapsed {p.elapsed_s:6.1f} s  ETA {eta}  {p.seed_epochs_per_s:8.0f} seed-epochs/s")
        self.stream.flush()
        if p.epochs_done >= p.num_epochs:
            self.stream.write("\n")


FIGURE_FLAGS = ("animate", "frames", "animation_format", "no_plots")


def _figures_as_started(args: argparse.Namespace, folder) -> None:
    """``--resume`` without figure flags draws what the run's own command asked for
    (``--animate``, ``--frames``, ``--format``, ``--no-plots``, from its record)."""
    import contextlib
    import io

    plain = build_parser().parse_args(["run"])
    if any(getattr(args, name) != getattr(plain, name) for name in FIGURE_FLAGS):
        return
    try:
        command = (folder.read_record() or {}).get("command")
        with contextlib.redirect_stderr(io.StringIO()):
            started = build_parser().parse_args(command)
    except (ConfigError, SystemExit, TypeError):
        return  # a damaged record or a command this version does not know: the defaults
    if getattr(started, "command", None) == "run":
        for name in FIGURE_FLAGS:
            setattr(args, name, getattr(started, name))


def _cmd_run(args: argparse.Namespace) -> int:
    from ibjax import distributed, rundir
    from ibjax.data import digest, load_dataset
    from ibjax.memory import estimate_sizes
    from ibjax.runner import prepare

    check_run_flags(args)
    config = None
    if args.resume is None:  # check the configuration before anything else starts
        config = config_from_args(args).validate()
        config.validate_for(load_dataset(config.dataset))
    part = None
    if args.distributed:
        part = distributed.join(args.coordinator, args.num_processes, args.process_id,
                                300 if args.distributed_timeout is None
                                else args.distributed_timeout)
    suffix = "" if part is None else f".part{part[0]:03d}-of-{part[1]:03d}"
    default_out = args.resume is None and args.out is None
    folder = rundir.RunFolder(args.resume or args.out or DEFAULT_OUT, suffix)
    if args.resume is not None:
        config, seeds, from_checkpoint = rundir.run_to_resume(folder)
        rundir.check_same_data(folder, load_dataset(config.dataset))
        _figures_as_started(args, folder)
    else:
        seeds = range(config.num_seeds) if args.seed_range is None else args.seed_range
        if part is not None:
            seeds = distributed.share(seeds, part)
            config = config.replace(num_seeds=len(seeds))
        from_checkpoint = False
    config, seed_array, dataset = prepare(config, seeds)
    seeds = seed_array.tolist()
    sizes = estimate_sizes(config, dataset, len(seeds) * len(config.learning_rates))
    notes = []
    if default_out and not args.overwrite:
        notes.append(rundir.move_previous_default_run(folder))
    folder.check_writable(sizes.results_bytes + 2 * sizes.checkpoint_bytes)
    if not (args.no_plots or part is not None):
        import ibjax.plotting  # noqa: F401 - now, not after the run (an interrupt mid-import)
    with folder.lock():
        if args.resume is None:
            notes.append(rundir.claim_for_new_run(folder, args.overwrite))
            folder.write_record(config, seeds, digest(dataset), args.argv)
        elif not from_checkpoint:
            notes.append(f"{folder.path} was stopped before its first checkpoint; starting it "
                         f"again")
        for note in filter(None, notes):
            print(f"ibjax: {note}", flush=True)
        return _run_in(folder, args, config, seeds, from_checkpoint, part)


def _run_in(folder, args, config, seeds, from_checkpoint, part) -> int:
    """Runs (or resumes) ``config`` in ``folder`` (locked by the caller), then the figures."""
    from ibjax.runner import RunInterrupted, run

    if from_checkpoint:
        print(f"ibjax: resuming {folder.path} from {folder.checkpoint.name}", flush=True)
    hidden = "-".join(map(str, config.hidden))
    print(f"ibjax: {config.num_seeds} seeds x {config.num_epochs} epochs, {config.model} "
          f"{config.activation} {hidden}, {config.optimizer} lr {config.learning_rate}, "
          f"batch {config.batch_size or 'full'}, split {config.split}, "
          f"shuffle {config.shuffle}, estimators {','.join(config.estimators)}"
          f"{' with the label-shuffle null' if config.null else ''}"
          f"{f', {config.quantize}-bit quantized' if config.quantize else ''}"
          f"{f', noise std {config.noise_std:g}' if config.noise_std else ''}"
          f"{', fused training kernel' if config.training_kernel == 'fused' else ''}, data "
          f"{config.dataset.removeprefix('file:')}; compiling...", flush=True)
    start = time.perf_counter()
    try:
        ds = run(config, progress=None if args.quiet else _ProgressLine(), seeds=seeds,
                 checkpoint_path=folder.checkpoint, checkpoint_every_s=args.checkpoint_every_s,
                 resume=from_checkpoint, results_path=folder.results)
    except RunInterrupted as stop:
        where = (f"finished segments are saved in {stop.checkpoint}" if stop.checkpoint
                 else "nothing was finished yet")
        print(f"\ninterrupted: {where}; continue with: ibjax run --resume {folder.path}",
              file=sys.stderr)
        return exit_status(stop)
    except OSError as err:
        kept = (f"the last checkpoint is kept: free the space and continue with 'ibjax run "
                f"--resume {folder.path}'" if folder.checkpoint.exists() else
                f"no checkpoint could be kept: free the space and start the run again with "
                f"'ibjax run --resume {folder.path}'")
        print(f"\nibjax run: error: {err if isinstance(err, CannotWrite) else err.strerror}; "
              f"{kept}", file=sys.stderr)
        return 1
    except Exception:  # a failure, not an interrupt: if nothing was saved, there is no run
        if not folder.checkpoint.exists():
            folder.record.unlink(missing_ok=True)
        raise
    path = folder.results
    total = time.perf_counter() - start
    # A resumed run's run time counts the earlier sessions too; the wall time only this one.
    wall = "in this session" if from_checkpoint else "in all"
    print(f"compile time   {ds.attrs['compile_s']:.1f} s\n"
          f"run time       {ds.attrs['run_s']:.1f} s  ({total:.1f} s {wall})\n"
          f"throughput     {ds.attrs['seed_epochs_per_s']:.0f} seed-epochs/s "
          f"on {ds.attrs['device']}\n"
          f"diverged       {int((ds['diverged_epoch'] >= 0).sum())} of "
          f"{ds['diverged_epoch'].size} {'networks' if 'learning_rate' in ds.dims else 'seeds'} "
          f"(NaN/inf weights; their later measurements are NaN)\n"
          f"results        {path}\n"
          f"record         {folder.record}", flush=True)
    if ds.attrs.get("discrete_counting") == "xla" and _on_cpu():  # no C++ compiler
        from ibjax import native

        print(f"note           ibjax's native CPU routines are not available here "
              f"({native.unavailable_reason()}), so XLA's slower products and counting were "
              f"used: same results up to float rounding", flush=True)
    if args.no_plots or part is not None:
        return 0
    try:
        figures = _plot(path, folder.path, args)
    except OSError as err:
        print(f"ibjax run: error: could not write the figures ({err}); the results are saved "
              f"in {path}: draw them later with 'ibjax plot {path}'", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        print(f"\nibjax run: interrupted while drawing the figures; the results are saved in "
              f"{path}: draw them later with 'ibjax plot {path}'", file=sys.stderr)
        return exit_status(stop)
    for figure in figures:
        print(f"figure         {figure}")
    return 0


def _on_cpu() -> bool:
    import jax

    return jax.default_backend() == "cpu"


def _plot(path: Path, out: Path, args: argparse.Namespace | None = None) -> list[Path]:
    """The figures (and, with ``--animate``, the animation) of a results file; returns the
    paths written."""
    from ibjax.plotting import plot_results, skipped_figures
    from ibjax.results import load

    for name, why in skipped_figures(load(path)).items():
        print(f"ibjax: {name}.png not drawn: {why}", file=sys.stderr)
    written = plot_results(path, out)
    if args is not None and args.animate:
        from ibjax.animation import animate_results

        for animation in animate_results(path, out, args.frames, args.animation_format):
            print(f"ibjax: animation written with {animation.writer} ({animation.why})",
                  file=sys.stderr)
            written.append(animation.path)
    return written


def _flag_impossible_values(dataset):
    """Prints one line per variable holding impossible values; returns the cleaned dataset."""
    from ibjax.results import check_values

    clean, problems = check_values(dataset)
    for problem in problems:
        print(f"ibjax: warning: impossible values (a damaged file?): {problem}", file=sys.stderr)
    return clean


def _cmd_merge(args: argparse.Namespace) -> int:
    from ibjax import results as results_io

    if any(args.out.resolve() == path.resolve() for path in args.inputs):
        raise ConfigError(f"--out {args.out} is one of the files to merge; choose another")
    merged = results_io.merge([results_io.load(path) for path in args.inputs])
    path = results_io.save(merged, args.out)
    print(f"merged {len(args.inputs)} files, {merged.sizes['seed']} seeds -> {path}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from ibjax import phases
    from ibjax import results as results_io

    dataset = _flag_impossible_values(results_io.load(args.results))
    print(results_io.summary(dataset))
    print(phases.table(dataset))
    if "ity_null" in dataset:
        from ibjax import null

        print(null.summary(dataset))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from ibjax import results as results_io

    _flag_impossible_values(results_io.load(args.results))
    for figure in _plot(args.results, args.out or args.results.parent, args):
        print(figure)
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from ibjax import results as results_io
    from ibjax.view import plotly_missing, write_view

    missing = plotly_missing()
    if missing:
        raise ConfigError(missing)
    results = args.results / "results.nc" if args.results.is_dir() else args.results
    dataset = _flag_impossible_values(results_io.load(results))
    out = args.out or results.parent / "view.html"
    if out.suffix.lower() not in (".html", ".htm"):  # a folder: view.html in it
        out.mkdir(parents=True, exist_ok=True)
        out = out / "view.html"
    if "learning_rate" in dataset.dims:
        for rate in dataset["learning_rate"].values:
            path = out.with_name(f"{out.stem}_lr{rate:g}{out.suffix}")
            print(write_view(dataset.sel(learning_rate=rate), path, args.frames))
    else:
        print(write_view(dataset, out, args.frames))
    return 0


def _what_is_kept(args: argparse.Namespace) -> str:
    """For an interrupt: what the run folder keeps and how to go on."""
    if args.command != "run":
        return ""
    out = Path(args.resume or args.out or DEFAULT_OUT)
    if any(out.glob("checkpoint*.npz")):
        return f"; the last checkpoint is kept: continue with 'ibjax run --resume {out}'"
    if any(out.glob("run*.json")):
        return f" before anything was finished; start it again with: ibjax run --resume {out}"
    return " before anything was started"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv  # recorded with a run
    commands = {"run": _cmd_run, "merge": _cmd_merge, "info": _cmd_info, "plot": _cmd_plot,
                "view": _cmd_view}
    previous = handle_signals() if args.command == "run" else None
    try:
        if args.command in ("run", "plot"):
            check_animation_flags(args)
        if args.command == "run":
            use_all_cpu_cores()
            use_compilation_cache()
        return commands[args.command](args)
    except BrokenPipeError:  # e.g. ibjax info ... | head: the reader has gone, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except CannotWrite as err:  # e.g. --out of plot or merge in a place that cannot be written
        print(f"ibjax {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (ConfigError, MIError) as err:
        message = flag_named(str(err), parser.run_flags) if args.command == "run" else err
        print(f"ibjax {args.command}: error: {message}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ResultsFileError, CheckpointError) as err:
        print(f"ibjax {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"ibjax {args.command}: error: {err.strerror or err}"
              f"{f' ({err.filename})' if err.filename else ''}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:  # outside a run's own interrupt handling
        print(f"\nibjax {args.command}: interrupted{_what_is_kept(args)}", file=sys.stderr)
        return exit_status(stop)
    finally:
        restore(previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
