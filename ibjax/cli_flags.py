"""The command line's flags: their value types, the parser, and what they ask for.

:func:`build_parser` builds ``ibjax``'s parser (commands ``run``, ``merge``, ``info``, ``plot``
and ``view``); :func:`config_from_args` turns a ``run`` command line into a
:class:`~ibjax.config.Config`; the checks refuse flags that contradict each other before
anything starts, and :func:`flag_named` names the flag behind a configuration error.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ibjax.config import (
    ACTIVATIONS,
    DATASETS,
    ESTIMATOR_NAMES,
    LAYER_PRODUCTS,
    MODELS,
    OPTIMIZERS,
    TRAINING_KERNELS,
    Config,
    ConfigError,
    check_estimator_names,
)

DEFAULT_OUT = Path("ibjax_runs/latest")
_RUN_FLAGS: dict[str, str] = {}  # dest -> the run command's flag, filled by build_parser


def _widths(text: str) -> tuple[int, ...]:
    """Widths separated by commas (``10,7,5``) or dashes (``10-7-5``), each a positive integer."""
    parts = text.split(",") if "," in text else text.split("-")
    try:
        widths = tuple(int(part) for part in parts)
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(
            f"takes positive widths like 10,7,5,4,3 or 10-7-5-4-3; got {text!r}")
    return widths


def _parsed(text: str, parse, allowed, what: str):
    """``parse(text)`` when it parses and is ``allowed``; otherwise argparse's error, ``what``
    the flag takes."""
    try:
        value = parse(text)
    except ValueError:
        value = None
    if value is None or not allowed(value):
        raise argparse.ArgumentTypeError(f"{what}; got {text!r}")
    return value


def _seconds(text: str) -> float:
    return _parsed(text, float, lambda v: math.isfinite(v) and v >= 0,
                   "takes a finite number of seconds >= 0 (0: after every segment)")


def _timeout(text: str) -> int:
    return _parsed(text, int, lambda v: v >= 1, "takes a whole number of seconds >= 1")


def _bin_range(text: str) -> tuple[float, float] | str:
    if text in ("auto", "layer"):
        return text
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes auto, layer or lo,hi like -1,1; got {text!r}") from None
    return lo, hi


def _renyi_sigma(text: str) -> str | float:
    if text == "silverman":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes silverman or a number > 0; got {text!r}") from None


def _data(text: str) -> str:
    if text in DATASETS and not Path(text).exists():
        return text
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file or folder: {text} (built in: "
                                         f"{', '.join(DATASETS)})")
    return f"file:{path.resolve()}"


def _mi_samples(text: str) -> str | int:
    if text in ("all", "test"):
        return text
    return _parsed(text, int, lambda v: v >= 2,
                   "takes all, test or a number of rows >= 2")


def _estimators(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    try:
        return check_estimator_names(names)
    except ConfigError as err:
        # argparse says "argument --estimators: " before the message
        raise argparse.ArgumentTypeError(str(err).removeprefix("estimators: ")) from None


def _batch(text: str) -> int | None:
    if text.lower() == "full":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes a positive integer or 'full'; got {text!r}") from None


def _rates(text: str) -> float | tuple[float, ...]:
    try:
        rates = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes a number or a list like 1e-4,4e-4; got {text!r}") from None
    return rates[0] if len(rates) == 1 else rates


def _seed_range(text: str) -> range:
    try:
        start, stop = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes a:b like 0:50; got {text!r}") from None
    if not 0 <= start < stop:
        raise argparse.ArgumentTypeError(f"needs 0 <= a < b; got {text!r}")
    return range(start, stop)


def _snapshots(text: str) -> str | tuple[int, ...]:
    if text.startswith(("log", "every")):
        return text
    try:
        return tuple(int(e) for e in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes log, log:N, every:K or a list like 0,10,100; got {text!r}"
        ) from None


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block): ``ibjax run: error: ...``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but a flag no command knows is refused by that command's parser
        (``ibjax run: error: unrecognized arguments: ...``), and a flag's value may start
        with '-' (``--bin-range -1,1``, which argparse alone takes for a flag)."""
        args = self._values_with_dashes(sys.argv[1:] if args is None else list(args))
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            commands = getattr(self, "commands", {})
            commands.get(getattr(parsed, "command", None), self).error(
                f"unrecognized arguments: {' '.join(unknown)}")
        return parsed

    def _values_with_dashes(self, args: list[str]) -> list[str]:
        """``--flag -x`` as ``--flag=-x`` where ``--flag`` takes one value and ``-x`` is not a
        flag of that command."""
        command = getattr(self, "commands", {}).get(args[0] if args else None)
        if command is None:
            return args
        options = command._option_string_actions  # argparse's table of flags
        joined = [args[0]]
        rest = iter(args[1:])
        for arg in rest:
            action = options.get(arg)
            if action is not None and action.nargs is None and action.option_strings and (
                    not isinstance(action, (argparse._StoreConstAction,
                                            argparse._StoreTrueAction, argparse._HelpAction))):
                value = next(rest, None)
                if value is not None and value.startswith("-") and value not in options:
                    joined.append(f"{arg}={value}")
                    continue
                joined.append(arg)
                if value is not None:
                    joined.append(value)
                continue
            joined.append(arg)
        return joined


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ibjax", description="Information-plane experiments, many seeds in one program.")
    parser.add_argument("--version", action="version", version=f"ibjax {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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
    run.add_argument("--out", type=Path,
                     help=f"output folder (default {DEFAULT_OUT}; a finished run there is moved "
                          "to a folder named by its date first)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the finished or unfinished run in --out (by default a folder "
                          "holding one is refused)")
    run.add_argument("--model", choices=MODELS,
                     help="mlp (default: the paper's fully connected network) or cnn (a small "
                          "convolutional network for images: conv-pool-conv-pool-dense-dense)")
    run.add_argument("--hidden", type=_widths,
                     help="mlp: hidden widths (default 10,7,5,4,3); cnn: the two convolutions' "
                          "channels and the dense width (default 8,16,32)")
    run.add_argument("--activation", help=f"one of {', '.join(ACTIVATIONS)}")
    run.add_argument("--optimizer", help=f"one of {', '.join(OPTIMIZERS)}")
    run.add_argument("--lr", type=_rates, dest="learning_rate",
                     help="learning rate, or a list like 1e-4,4e-4,1e-3 trained side by side "
                          "in the same program (results gain a learning_rate dimension)")
    run.add_argument("--batch-size", type=_batch, dest="batch_size", default=argparse.SUPPRESS,
                     help="minibatch size or 'full' (default 512; 128 for --model cnn)")
    run.add_argument("--train-fraction", type=float, dest="train_fraction",
                     help="fraction of rows used for training, in (0, 1] (default 0.8, or 1 "
                          "when the data has its own test set)")
    run.add_argument("--split", help="'random' (per seed) or 'first' (authors')")
    shuffle = run.add_mutually_exclusive_group()
    shuffle.add_argument("--shuffle", dest="shuffle", action="store_true", default=None,
                         help="reshuffle the training set every epoch")
    shuffle.add_argument("--no-shuffle", dest="shuffle", action="store_false",
                         help="contiguous unshuffled batches (authors')")
    run.add_argument("--data", type=_data, dest="dataset", metavar="PATH",
                     help="the data instead of the paper's task: digits (8 x 8 handwritten "
                          "digits, built in), an .npz with arrays x, y (optional x_test, "
                          "y_test), mnist.npz, or a folder with the four MNIST IDX files "
                          "(gzipped or not)")
    run.add_argument("--mi-samples", type=_mi_samples, dest="mi_samples",
                     help="rows the MI is measured on: all (default), test (the data's test "
                          "set) or N (a fixed random subset of N rows)")
    run.add_argument("--estimators", type=_estimators,
                     help="comma-separated MI estimators computed side by side in the same "
                          f"program: {', '.join(ESTIMATOR_NAMES)} (default binning)")
    run.add_argument("--bins", type=int, dest="num_bins",
                     help="binning: number of bin edges; equal-mass: bins per neuron (30)")
    run.add_argument("--bin-range", type=_bin_range, dest="bin_range",
                     help="binning range: lo,hi; 'layer' (each layer's own min..max); 'auto' "
                          "(default: -1,1 for tanh, 'layer' for relu and linear)")
    run.add_argument("--bin-width", type=float, dest="bin_width",
                     help="bin width of the binning-width estimator (0.07)")
    run.add_argument("--kde-variance", type=float, dest="kde_variance",
                     help="noise variance of the KDE bounds (1e-3)")
    run.add_argument("--renyi-alpha", type=float, dest="renyi_alpha",
                     help="order of the matrix-renyi estimator (2; other orders take "
                          "eigenvalues: use --mi-samples of a few hundred)")
    run.add_argument("--renyi-sigma", type=_renyi_sigma, dest="renyi_sigma",
                     help="kernel width of matrix-renyi: silverman (default, per layer) or a "
                          "number")
    run.add_argument("--knn-k", type=int, dest="knn_k",
                     help="neighbours of the knn estimator (3)")
    run.add_argument("--quantize", type=int, metavar="K",
                     help="train a quantized network: every hidden activation and the softmax "
                          "output quantized to K bits (1-16), straight-through gradients; "
                          "measure it exactly with --estimators exact")
    run.add_argument("--noise-std", type=float, dest="noise_std", metavar="BETA",
                     help="train a noise-injected network: N(0, BETA^2) noise on every hidden "
                          "unit in training; measure it with --estimators noisy")
    run.add_argument("--noise-samples", type=int, dest="noise_samples", metavar="M",
                     help="noisy propagations of the MI rows per snapshot for the noisy "
                          "estimator (8; cost grows as (rows x M)^2)")
    run.add_argument("--null", action="store_true", default=None,
                     help="also measure I(T;Y) against labels permuted once per seed (the "
                          "null baseline, results variable ity_null), with every estimator")
    run.add_argument("--snapshots", type=_snapshots,
                     help="log (default), log:N, every:K or a list of epochs")
    run.add_argument("--layer-product", dest="layer_product", choices=LAYER_PRODUCTS,
                     help="how layer products are computed, full float32 either way: auto "
                          "(default: native on CPUs where it builds, broadcast on GPUs for "
                          "small layers, else matmul), matmul, broadcast or native (ibjax's "
                          "own CPU routines, built with the system's C++ compiler)")
    run.add_argument("--training-kernel", dest="training_kernel", choices=TRAINING_KERNELS,
                     help="xla (default) or fused: whole epochs in one Pallas kernel "
                          "(experimental; the MLP with Adam on binary inputs; slow on CPUs)")
    run.add_argument("--seed-range", type=_seed_range, dest="seed_range",
                     help="a:b runs only seeds a..b-1, with the keys they have in a full run "
                          "(for job arrays; join the files with 'ibjax merge')")
    run.add_argument("--resume", type=Path, metavar="DIR",
                     help="continue the killed or interrupted run whose --out was DIR, from its "
                          "last checkpoint (or from the start if it had none); the run's own "
                          "configuration is used, so give no configuration flags")
    run.add_argument("--checkpoint-every", type=_seconds, default=30.0, metavar="SECONDS",
                     dest="checkpoint_every_s",
                     help="save the run state to OUT/checkpoint.npz at most this often (30)")
    run.add_argument("--distributed", action="store_true",
                     help="one of several processes (hosts): start jax.distributed, run this "
                          "process's contiguous share of the seeds on its local devices and "
                          "write OUT/results.partI-of-N.nc; join with 'ibjax merge'")
    run.add_argument("--coordinator", metavar="HOST:PORT",
                     help="with --distributed: address of process 0 (omit where JAX detects "
                          "the cluster, e.g. under SLURM or Open MPI)")
    run.add_argument("--num-processes", type=int, help="with --distributed and --coordinator")
    run.add_argument("--process-id", type=int, help="with --distributed and --coordinator")
    run.add_argument("--distributed-timeout", type=_timeout, metavar="SECONDS",
                     help="with --distributed: give up if the processes have not all joined "
                          "within this many seconds (300)")
    run.add_argument("--no-plots", action="store_true", help="skip the figures")
    _animation_flags(run)
    run.add_argument("--quiet", action="store_true", help="no progress line")

    _RUN_FLAGS.update({action.dest: action.option_strings[0] for action in run._actions
                       if action.option_strings})

    merge = commands.add_parser(
        "merge", help="join results files of the same configuration along the seed axis")
    merge.add_argument("inputs", type=Path, nargs="+", help="results files to join")
    merge.add_argument("--out", type=Path, required=True, help="merged results file to write")

    info = commands.add_parser("info", help="print a results file's configuration and summary")
    info.add_argument("results", type=Path, help="a results file")

    plot = commands.add_parser("plot", help="draw the figures of a results file")
    plot.add_argument("results", type=Path, help="a results.nc written by ibjax run")
    plot.add_argument("--out", type=Path, help="folder for the figures (default: beside it)")
    _animation_flags(plot)

    view = commands.add_parser(
        "view", help="write one HTML file to explore a results file offline (epoch slider, "
                     "play button, every seed, estimator switch, hover values)")
    view.add_argument("results", type=Path,
                      help="a results file, or a run folder holding results.nc")
    view.add_argument("--out", type=Path,
                      help="the .html file to write, or a folder (any other name; made if "
                           "needed) to write view.html in (default: view.html beside the "
                           "results; a learning-rate sweep writes one file per rate, "
                           "VIEW_lrRATE.html)")
    view.add_argument("--frames", type=_frames, default=60,
                      help="slider positions, snapshots spread evenly (60; 'all' for every one)")
    # Configuration errors name Config's fields; the command line says which flag sets each.
    parser.commands = {"run": run, "merge": merge, "info": info, "plot": plot, "view": view}
    parser.run_flags = {**{action.dest: action.option_strings[0] for action in run._actions
                           if action.option_strings},
                        "num_seeds": "--seeds", "num_epochs": "--epochs"}
    return parser


def _version() -> str:
    from ibjax import __version__

    return __version__


def _frames(text: str) -> int | None:
    if text == "all":
        return None
    return _parsed(text, int, lambda v: v >= 2, "takes 'all' or a whole number >= 2")


def _animation_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--animate", action="store_true",
                        help="also write information_plane.mp4 (with ffmpeg) or .gif: the "
                             "information plane moving over training, every seed and the "
                             "median")
    parser.add_argument("--frames", type=_frames, default=None,
                        help="with --animate: frames, snapshots spread evenly (default all)")
    parser.add_argument("--format", dest="animation_format", default="auto",
                        choices=("auto", "gif", "mp4"),
                        help="with --animate: auto (mp4 if ffmpeg is installed, else gif)")


CONFIG_FLAGS = ("seed", "model", "hidden", "activation", "optimizer", "learning_rate", "batch_size",
                "train_fraction", "split", "shuffle", "num_bins", "bin_range", "snapshots",
                "estimators", "bin_width", "kde_variance", "renyi_alpha", "renyi_sigma",
                "knn_k", "quantize", "noise_std", "noise_samples", "null", "dataset",
                "mi_samples", "layer_product", "training_kernel")


def config_from_args(args: argparse.Namespace) -> Config:
    """The Config a ``run`` command line asks for (preset, then the flags given)."""
    # --batch-size may legitimately be None ('full'), so it is absent unless given.
    overrides = {name: getattr(args, name) for name in CONFIG_FLAGS
                 if hasattr(args, name) and (name == "batch_size"
                                             or getattr(args, name) is not None)}
    if args.seeds is not None:
        overrides["num_seeds"] = args.seeds
    if getattr(args, "seed_range", None) is not None:
        overrides["num_seeds"] = len(args.seed_range)
    if args.epochs is not None:
        overrides["num_epochs"] = args.epochs
    if args.preset == "authors":
        return Config.authors(**overrides)
    return Config(**overrides)


def check_run_flags(args: argparse.Namespace) -> None:
    """Flags that contradict each other are refused, never silently dropped."""
    names = _RUN_FLAGS
    if args.resume is not None:
        given = [name for name in (*CONFIG_FLAGS, "seeds", "epochs", "seed_range", "out")
                 if getattr(args, name, None) is not None]
        if hasattr(args, "batch_size") and "batch_size" not in given:
            given.append("batch_size")  # --batch-size full is None but was given
        flags = [names.get(name, name) for name in given]
        if args.preset != "default":
            flags.append(f"--preset {args.preset}")
        if args.overwrite:
            flags.append("--overwrite")
        if flags:
            raise ConfigError(f"--resume continues the run with its own configuration and "
                              f"folder; drop {', '.join(flags)}")
    if args.seeds is not None and args.seed_range is not None:
        raise ConfigError(f"--seeds {args.seeds} and --seed-range cannot be combined: "
                          f"--seed-range a:b runs the b - a seeds a..b-1")
    if not args.distributed and (args.coordinator is not None or args.num_processes is not None
                                 or args.process_id is not None
                                 or args.distributed_timeout is not None):
        raise ConfigError("--coordinator, --num-processes, --process-id and "
                          "--distributed-timeout need --distributed")



def check_animation_flags(args: argparse.Namespace) -> None:
    """``--frames`` and ``--format`` need ``--animate``; an MP4 needs ffmpeg (said now, not
    after the run)."""
    if not args.animate:
        given = [flag for flag, value in (("--frames", args.frames is not None),
                                          ("--format", args.animation_format != "auto"))
                 if value]
        if given:
            raise ConfigError(f"{' and '.join(given)} {'goes' if len(given) == 1 else 'go'} "
                              f"with --animate")
        return
    if getattr(args, "no_plots", False):
        raise ConfigError("--animate draws with the figures; drop --no-plots or --animate")
    from ibjax.animation import choose_writer

    try:
        choose_writer(args.animation_format)
    except ValueError as err:
        raise ConfigError(f"--format: {err}") from None


def flag_named(message: str, flags: dict[str, str]) -> str:
    """``"num_seeds must be ..."`` as ``"--seeds (num_seeds) must be ..."``: the flag that sets
    the field a configuration error starts with, where there is one."""
    field, _, rest = message.partition(" ")
    field = field.rstrip(":")
    flag = flags.get(field)
    if flag is None:
        return message
    named = flag if flag == f"--{field}" else f"{flag} ({field})"
    return f"{named}{message[len(field):]}"
