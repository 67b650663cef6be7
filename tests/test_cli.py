import os
import shutil
import subprocess
import sys

import ibjax
from ibjax.cli import build_parser, config_from_args, main


def test_run_writes_results_and_figures(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--seeds", "3", "--epochs", "6", "--hidden", "4,3", "--snapshots",
                 "every:2", "--out", str(out), "--quiet"])
    assert code == 0
    text = capsys.readouterr().out
    for word in ("compile time", "run time", "seed-epochs/s", "results.nc"):
        assert word in text
    ds = ibjax.load(out / "results.nc")
    assert ds.sizes["seed"] == 3
    assert {p.name for p in out.iterdir()} >= {"results.nc", "information_plane.png",
                                               "gradients.png", "accuracy.png"}


def test_version(capsys):
    import pytest

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"ibjax {ibjax.__version__}"


def test_flags_reach_the_config():
    args = build_parser().parse_args(
        ["run", "--preset", "authors", "--seeds", "5", "--batch-size", "full", "--lr", "2e-4",
         "--activation", "relu", "--bin-range", "0,4", "--bins", "50", "--train-fraction",
         "1", "--shuffle", "--hidden", "10-7-5-4-4-3", "--layer-product", "broadcast"])
    cfg = config_from_args(args)
    assert (cfg.num_seeds, cfg.batch_size, cfg.learning_rate, cfg.activation, cfg.bin_range,
            cfg.num_bins, cfg.train_fraction, cfg.shuffle, cfg.split, cfg.hidden,
            cfg.layer_product) == (
        5, None, 2e-4, "relu", (0.0, 4.0), 50, 1.0, True, "first", (10, 7, 5, 4, 4, 3),
        "broadcast")
    swept = config_from_args(build_parser().parse_args(["run", "--lr", "1e-4,4e-4"]))
    assert swept.learning_rate == (1e-4, 4e-4)
    default = config_from_args(build_parser().parse_args(["run"]))
    assert default == ibjax.Config()
    # A value starting with '-' after a space (argparse alone took it for a flag).
    spaced = config_from_args(build_parser().parse_args(
        ["run", "--bin-range", "-1,0.5", "--activation", "relu", "--lr", "-1e-3,2e-3"]))
    assert (spaced.bin_range, spaced.learning_rate) == ((-1.0, 0.5), (-1e-3, 2e-3))
    assert build_parser().parse_args(["run", "--out", "-x", "--quiet"]).out.name == "-x"


def test_cli_fills_the_persistent_compilation_cache(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env.update(IBJAX_CACHE_DIR=str(tmp_path / "cache"), JAX_PLATFORMS="cpu")
    command = [sys.executable, "-m", "ibjax", "run", "--seeds", "2", "--epochs", "3",
               "--hidden", "3", "--no-plots", "--quiet", "--out", str(tmp_path / "run")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert any((tmp_path / "cache" / "jax").iterdir())  # the compiled programs were stored


def test_info_prints_config_and_summary(tmp_path, capsys):
    from test_results import synthetic

    from ibjax.results import save

    path = save(synthetic(), tmp_path / "results.nc")
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "hidden" in text and "softmax output" in text and "diverged: 0 of 3" in text
    assert main(["info", str(tmp_path / "missing.nc")]) == 2
    assert "not found" in capsys.readouterr().err


def test_console_script_plot(tmp_path):
    from test_results import synthetic

    from ibjax.results import save

    path = save(synthetic(), tmp_path / "results.nc")
    exe = shutil.which("ibjax")
    command = [exe] if exe else [sys.executable, "-m", "ibjax"]
    done = subprocess.run([*command, "plot", str(path)], capture_output=True, text=True,
                          check=False,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "information_plane.png").exists()


def test_merge_will_not_write_over_its_input_and_info_survives_a_closed_pipe(tmp_path, capsys):
    from test_results import synthetic

    from ibjax.results import save

    path = save(synthetic(), tmp_path / "a.nc")
    before = path.read_bytes()
    assert main(["merge", str(path), "--out", str(path)]) == 2
    assert "is one of the files to merge" in capsys.readouterr().err
    assert path.read_bytes() == before
    # `ibjax info a.nc | head -1`: the reader goes away early; no error, no traceback.
    reader = subprocess.Popen([sys.executable, "-m", "ibjax", "info", str(path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "JAX_PLATFORMS": "cpu"})
    reader.stdout.readline()
    reader.stdout.close()
    err = reader.stderr.read().decode()
    reader.stderr.close()
    assert reader.wait(timeout=120) == 0 and err == "", err


def test_the_installed_package_is_complete(tmp_path):
    """Run from outside the source tree, so the installed package is what gets imported (a
    non-editable install once missed ibjax.mi and the digits file)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("import ibjax, ibjax.mi\n"
            "assert ibjax.load_digits().x.shape == (1797, 64)\n"
            "assert ibjax.load_var_u().x.shape == (4096, 12)\n"
            "print(ibjax.mi.__file__)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
