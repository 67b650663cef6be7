"""Table-driven: bad configuration values, data files and result files each give a clear error
that names what is wrong, from the command line, before anything is compiled, with no
traceback (and none from inside JAX)."""

import numpy as np
import pytest
from data_files import tiny_mnist, write_mnist_folder
from test_results import synthetic

from ibjax.cli import main
from ibjax.results import save


def npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


def good_xy(n=64, classes=2):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype(np.float32), np.arange(n) % classes


def with_nan():
    x, y = good_xy()
    x[3, 1] = np.nan
    return {"x": x, "y": y}


def mnist_folder(tmp_path, truncate=False, drop=False):
    arrays = tiny_mnist(np.random.default_rng(1))
    folder = tmp_path / "mnist"
    write_mnist_folder(folder, arrays, gz=False)
    if truncate:
        path = folder / "train-images-idx3-ubyte"
        path.write_bytes(path.read_bytes()[:-10])
    if drop:
        (folder / "t10k-labels-idx1-ubyte").unlink()
    return str(folder)


def results_file(tmp_path, kind):
    path = tmp_path / "r.nc"
    if kind == "foreign":
        path.write_bytes(b"CDF\x01 but not really a netCDF file")
    elif kind == "truncated":
        data = save(synthetic(), path).read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif kind == "text":
        path.write_text("seed,epoch\n0,1\n")
    return str(path)


RUN = ["run", "--epochs", "4", "--seeds", "1", "--hidden", "3", "--quiet", "--no-plots"]

CASES = [
    # (id, argv builder taking tmp_path, text the error must contain)
    ("seeds", lambda p: ["run", "--seeds", "0"], "num_seeds"),
    ("epochs", lambda p: ["run", "--epochs", "-1"], "num_epochs"),
    ("activation", lambda p: ["run", "--activation", "sigmoid"], "activation"),
    ("optimizer", lambda p: ["run", "--optimizer", "rmsprop"], "optimizer"),
    ("lr", lambda p: ["run", "--lr", "-0.1"], "learning_rate"),
    ("lr-repeated", lambda p: ["run", "--lr", "1e-3,1e-3"], "learning_rate"),
    ("batch-zero", lambda p: ["run", "--batch-size", "0"], "batch_size"),
    ("batch-too-big", lambda p: ["run", "--batch-size", "5000"], "batch_size"),
    ("train-fraction", lambda p: ["run", "--train-fraction", "1.5"], "train_fraction"),
    ("split", lambda p: ["run", "--split", "middle"], "split"),
    ("hidden", lambda p: ["run", "--hidden", "4,0"], "hidden"),
    ("bins", lambda p: ["run", "--bins", "1"], "num_bins"),
    ("bin-range-order", lambda p: ["run", "--bin-range", "1,-1"], "bin_range"),
    ("bin-range-text", lambda p: ["run", "--bin-range", "wide"], "--bin-range"),
    ("snapshots-every", lambda p: ["run", "--snapshots", "every:0"], "snapshots"),
    ("snapshots-beyond", lambda p: ["run", "--epochs", "10", "--snapshots", "0,99"],
     "snapshots"),
    ("estimator", lambda p: ["run", "--estimators", "binning,ksg"], "--estimators"),
    ("bin-width", lambda p: ["run", "--bin-width", "0"], "bin_width"),
    ("kde-variance", lambda p: ["run", "--kde-variance", "-1"], "kde_variance"),
    ("renyi-alpha", lambda p: ["run", "--renyi-alpha", "0"], "renyi_alpha"),
    ("renyi-sigma", lambda p: ["run", "--renyi-sigma", "wide"],
     "argument --renyi-sigma: takes silverman"),
    ("renyi-sigma-negative", lambda p: ["run", "--renyi-sigma", "-2"], "renyi_sigma"),
    ("knn-k", lambda p: ["run", "--knn-k", "0"], "knn_k"),
    ("quantize-bits", lambda p: ["run", "--quantize", "17"], "quantize must be an integer in"),
    ("exact-unquantized", lambda p: ["run", "--estimators", "exact"],
     "'exact' counts the states of a quantized network"),
    ("noise-std", lambda p: ["run", "--noise-std", "0"],
     "--noise-std (noise_std) must be a positive"),
    ("noise-samples", lambda p: ["run", "--noise-std", "0.1", "--noise-samples", "0"],
     "--noise-samples (noise_samples) must be an integer"),
    ("noisy-without-noise", lambda p: ["run", "--estimators", "noisy"],
     "'noisy' measures a noise-injected network"),
    ("quantize-and-noise", lambda p: ["run", "--quantize", "8", "--noise-std", "0.1"],
     "cannot be combined"),
    ("knn-k-class-size", lambda p: RUN + ["--estimators", "knn", "--data", npz(
        p, x=good_xy()[0], y=np.r_[np.zeros(60, int), np.ones(4, int)]), "--knn-k", "4",
        "--batch-size", "full"], "knn_k=4 needs more than 4 rows in every class; class 1"),
    ("null-one-class-rows", lambda p: RUN + ["--null", "--mi-samples", "test", "--data", npz(
        p, x=good_xy()[0], y=good_xy()[1], x_test=good_xy(8)[0], y_test=np.zeros(8, int)),
        "--batch-size", "full"], "null=True permutes the labels of the MI rows"),
    ("renyi-eigen-rows", lambda p: RUN + ["--estimators", "matrix-renyi", "--renyi-alpha",
                                          "1.5"], "at most 2048 rows"),
    ("mi-samples-one", lambda p: ["run", "--mi-samples", "1"], "--mi-samples"),
    ("mi-samples-test", lambda p: ["run", "--mi-samples", "test"], "mi_samples"),
    ("mi-samples-many", lambda p: ["run", "--mi-samples", "99999"], "mi_samples"),
    ("checkpoint-every", lambda p: [*RUN, "--checkpoint-every", "-1", "--out", str(p / "o")],
     "--checkpoint-every"),
    ("seed-range", lambda p: ["run", "--seed-range", "5:2"], "--seed-range"),
    ("resume-nothing", lambda p: ["run", "--resume", str(p)], "checkpoint"),
    ("data-missing", lambda p: ["run", "--data", str(p / "none.npz")], "--data"),
    ("data-not-npz", lambda p: ["run", "--data", str(_write(p / "d.npz", b"PK\x03\x04junk"))],
     "not a readable .npz"),
    ("data-nan", lambda p: [*RUN, "--data", npz(p, **with_nan())], "NaN"),
    ("data-float-labels", lambda p: [*RUN, "--data", npz(p, x=good_xy()[0], y=np.ones(64) / 2)],
     "integer class labels"),
    ("data-one-class", lambda p: [*RUN, "--data", npz(p, x=good_xy()[0], y=np.zeros(64, int))],
     "at least 2 classes"),
    ("data-all-ones", lambda p: [*RUN, "--data", npz(p, x=good_xy()[0], y=np.ones(64, int))],
     "only label 1"),
    ("hidden-negative", lambda p: ["run", "--hidden", "10,-5"], "--hidden"),
    ("hidden-dash-negative", lambda p: ["run", "--hidden", "-5"], "--hidden"),
    ("checkpoint-every-nan", lambda p: ["run", "--checkpoint-every", "nan"],
     "--checkpoint-every"),
    ("seeds-and-seed-range", lambda p: ["run", "--seeds", "5", "--seed-range", "0:2"],
     "cannot be combined"),
    ("resume-batch-full", lambda p: ["run", "--resume", str(p), "--batch-size", "full"],
     "drop --batch-size"),
    ("resume-out", lambda p: ["run", "--resume", str(p), "--out", str(p / "x")], "drop --out"),
    ("resume-preset", lambda p: ["run", "--resume", str(p), "--preset", "authors"],
     "drop --preset authors"),
    ("seeds-beyond-memory", lambda p: ["run", "--seeds", "1000000000", "--out", str(p / "o")],
     "host memory"),
    ("out-is-a-file", lambda p: [*RUN, "--out", str(_write(p / "f", b""))], "is a file"),
    ("out-not-creatable", lambda p: [*RUN, "--out", str(_write(p / "f", b"") / "sub")],
     "cannot create"),
    ("results-path-is-a-folder", lambda p: [*RUN, "--out", str(_mkdir(p / "o" / "results.nc")
                                                             .parent)], "is a folder"),
    ("coordinator-alone", lambda p: [*RUN, "--coordinator", "h:1"], "need --distributed"),
    ("timeout-alone", lambda p: [*RUN, "--distributed-timeout", "5"], "need --distributed"),
    ("coordinator-empty", lambda p: [*RUN, "--coordinator="], "need --distributed"),
    ("unknown-run-flag", lambda p: [*RUN, "--bogus"],
     "ibjax run: error: unrecognized arguments: --bogus (see ibjax run --help)"),
    ("activation-named-by-flag", lambda p: ["run", "--activation", "sigmoid"],
     "--activation must be one of"),
    ("plot-out-not-writable", lambda p: ["plot", _results(p, "a", 2), "--out",
                                         str(_write(p / "f", b"") / "sub")], "cannot write"),
    ("merge-out-not-writable", lambda p: ["merge", _results(p, "a", 2), "--out",
                                          str(_write(p / "f", b"") / "sub" / "m.nc")],
     "cannot write"),
    ("data-negative-label", lambda p: [*RUN, "--data", npz(p, x=good_xy()[0],
                                                           y=np.arange(64) - 1)], "0..C-1"),
    ("data-length", lambda p: [*RUN, "--data", npz(p, x=good_xy()[0], y=np.arange(10) % 2)],
     "one label per row"),
    ("data-keys", lambda p: [*RUN, "--data", npz(p, inputs=good_xy()[0])], "must hold arrays"),
    ("data-test-width", lambda p: [*RUN, "--data", npz(p, x=good_xy()[0], y=good_xy()[1],
                                                       x_test=np.zeros((5, 3)),
                                                       y_test=np.zeros(5, int))], "x_test"),
    ("data-test-alone", lambda p: [*RUN, "--data", npz(p, x=good_xy()[0], y=good_xy()[1],
                                                       x_test=np.zeros((5, 4)))], "together"),
    ("data-1d-x", lambda p: [*RUN, "--data", npz(p, x=np.zeros(64), y=good_xy()[1])],
     "[samples, features]"),
    ("mnist-truncated", lambda p: [*RUN, "--data", mnist_folder(p, truncate=True)],
     "truncated"),
    ("mnist-missing-file", lambda p: [*RUN, "--data", mnist_folder(p, drop=True)],
     "t10k-labels-idx1-ubyte is missing"),
    ("results-foreign", lambda p: ["info", results_file(p, "foreign")],
     "not a readable ibjax results file"),
    ("results-truncated", lambda p: ["info", results_file(p, "truncated")],
     "not a readable ibjax results file"),
    ("results-text", lambda p: ["plot", results_file(p, "text")],
     "not a readable ibjax results file"),
    ("results-missing", lambda p: ["plot", str(p / "none.nc")], "not found"),
    ("data-unknown-name", lambda p: ["run", "--data", "Digits"], "built in: var_u, digits"),
    ("bins-beyond-table", lambda p: ["run", "--bins", "1000000000"], "num_bins"),
    ("seed-beyond-64-bits", lambda p: ["run", "--seed", str(2**63)], "seed"),
    ("epochs-beyond-int32", lambda p: ["run", "--epochs", "100000000000"], "num_epochs"),
    ("results-config-broken", lambda p: ["info", _damaged(p, "config")], "configuration"),
    ("results-without-ity", lambda p: ["plot", _damaged(p, "ity")], "variables ixt and ity"),
    ("results-without-seeds", lambda p: ["info", _damaged(p, "seeds")], "seed dimension"),
    ("merge-out-fifo", lambda p: ["merge", _results(p, "a", 2), "--out", _fifo(p)],
     "not a regular file"),
    ("merge-out-folder", lambda p: ["merge", _results(p, "a", 2), "--out", str(p)],
     "a folder"),
    ("merge-different", lambda p: ["merge", _results(p, "a", 3), _results(p, "b", 4, (5, 2)),
                                   "--out", str(p / "m.nc")], "differs from file 1 in hidden"),
]


def _write(path, data):
    path.write_bytes(data)
    return path


def _damaged(tmp_path, what):
    ds = synthetic()
    if what == "config":
        ds.attrs["config"] = "{not json"
    elif what == "ity":
        ds = ds.drop_vars("ity")
    elif what == "seeds":
        ds = ds.isel(seed=[])
    return str(save(ds, tmp_path / f"damaged-{what}.nc"))


def _fifo(tmp_path):
    import os

    path = tmp_path / "pipe"
    os.mkfifo(path)
    return str(path)


def _mkdir(path):
    path.mkdir(parents=True)
    return path


def _results(tmp_path, name, seeds, widths=(4, 3, 2)):
    return str(save(synthetic(num_seeds=seeds, widths=widths), tmp_path / f"{name}.nc"))


def test_the_table_is_long_enough():
    assert len(CASES) >= 25


@pytest.mark.parametrize("argv, expected", [(c[1], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_gives_a_clear_error(argv, expected, tmp_path, capsys, monkeypatch):
    from ibjax import runner

    monkeypatch.setattr(runner, "compiled_program",
                        lambda *a, **k: pytest.fail("compiled despite bad input"))
    try:
        code = main(argv(tmp_path))
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err, err
    assert "Traceback" not in err and "jax" not in err.lower().replace("ibjax", ""), err
    assert "error" in err


def test_a_refused_run_leaves_no_folder(tmp_path, capsys):
    """Settings the data cannot serve are refused before the run's folder is made (the
    eigenvalue-rows refusal left a folder holding only the lock file)."""
    out = tmp_path / "o"
    assert main([*RUN, "--out", str(out), "--estimators", "matrix-renyi",
                 "--renyi-alpha", "1.5"]) == 2
    assert "at most 2048 rows" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("argv, expected", [
    (["--seeds", "0"], "ibjax run: error: --seeds (num_seeds) must be an integer >= 1"),
    (["--epochs", "0"], "ibjax run: error: --epochs (num_epochs) must be an integer"),
    (["--lr", "-1"], "ibjax run: error: --lr (learning_rate) must be a positive"),
    (["--estimators", "ksg"], "ibjax run: error: argument --estimators: unknown estimator"),
    (["--training-kernel", "fused", "--optimizer", "sgd", "--epochs", "1"],
     "ibjax run: error: --training-kernel (training_kernel) 'fused' cannot train "
     "optimizer='sgd' (only 'adam')"),
    (["--training-kernel", "fused", "--data", "digits", "--epochs", "1"],
     "ibjax run: error: --training-kernel (training_kernel) 'fused' cannot train inputs that "
     "are not 0/1"),
])
def test_errors_name_the_flag(argv, expected, capsys, tmp_path):
    """A configuration error names the flag the user typed, not only Config's field."""
    try:
        status = main(["run", *argv, "--out", str(tmp_path / "run")])
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    assert status == 2
    assert capsys.readouterr().err.startswith(expected)
    assert not (tmp_path / "run").exists()  # refused before the run folder is touched
