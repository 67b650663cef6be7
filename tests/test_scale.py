"""Seeds split over devices, over seed ranges, and merged back."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ibjax
from ibjax.cli import main
from ibjax.results import ResultsFileError, merge

CONFIG = ibjax.Config(hidden=(5, 3), num_epochs=8, snapshots="every:4", seed=3)


def assert_same_trajectories(a, b):
    """Equal up to float rounding: a batch of another size may round differently, and MI may
    move where a value sits on a bin edge."""
    np.testing.assert_array_equal(a.seed.values, b.seed.values)
    np.testing.assert_allclose(a.train_loss.values, b.train_loss.values, rtol=1e-5)
    np.testing.assert_allclose(a.grad_mean.values, b.grad_mean.values, rtol=1e-4)
    np.testing.assert_array_equal(a.ixt.values[:, 0], b.ixt.values[:, 0])  # same init
    assert np.abs(a.ixt.values - b.ixt.values).max() <= 0.01
    assert np.abs(a.ity.values - b.ity.values).max() <= 0.01


def test_split_and_merge_equals_one_run():
    whole = ibjax.run(CONFIG, seeds=range(4))
    merged = merge([ibjax.run(CONFIG, seeds=[2, 3]), ibjax.run(CONFIG, seeds=[0, 1])])
    assert ibjax.config_of(merged).num_seeds == 4
    assert_same_trajectories(whole, merged)
    assert merged.attrs["layer_products"] == whole.attrs["layer_products"]
    # Parts computed with other layer products (e.g. on a GPU) are said to be mixed.
    gpu_part = ibjax.run(CONFIG, seeds=[4])
    gpu_part.attrs["layer_products"] = "broadcast,broadcast"
    mixed = merge([merged, gpu_part])
    assert mixed.attrs["layer_products"].startswith("mixed: ")
    assert "broadcast,broadcast" in mixed.attrs["layer_products"]


def test_merge_refuses_mismatches():
    part = ibjax.run(CONFIG, seeds=[0, 1])
    with pytest.raises(ResultsFileError, match="twice"):
        merge([part, part])
    other = part.copy()
    other.attrs = {**part.attrs, "config": CONFIG.replace(learning_rate=1.0).to_json()}
    other = other.assign_coords(seed=[5, 6])
    with pytest.raises(ResultsFileError, match="different configurations"):
        merge([part, other])


def test_bad_seed_lists_raise():
    for seeds in ([], [-1, 2], [1, 1]):
        with pytest.raises(ibjax.ConfigError, match="seeds"):
            ibjax.run(CONFIG, seeds=seeds)


def test_cli_seed_range_and_merge(tmp_path, capsys):
    common = ["run", "--hidden", "5,3", "--epochs", "8", "--snapshots", "every:4", "--seed", "3",
              "--no-plots", "--quiet"]
    assert main([*common, "--seed-range", "2:4", "--out", str(tmp_path / "b")]) == 0
    assert main([*common, "--seed-range", "0:2", "--out", str(tmp_path / "a")]) == 0
    out = tmp_path / "merged.nc"
    assert main(["merge", str(tmp_path / "a" / "results.nc"), str(tmp_path / "b" / "results.nc"),
                 "--out", str(out)]) == 0
    merged = ibjax.load(out)
    np.testing.assert_array_equal(merged.seed.values, [0, 1, 2, 3])
    assert main(["merge", str(out), str(out), "--out", str(tmp_path / "x.nc")]) == 2
    assert "twice" in capsys.readouterr().err


def test_sharded_over_four_cpu_devices_matches_one_device(tmp_path):
    """6 seeds over 4 host devices (padded to 8) against the same seeds on one device; also
    with each device training its 2 networks one at a time (grouped, under shard_map)."""
    script = textwrap.dedent(f"""
        import jax, ibjax
        assert len(jax.local_devices()) == 4, jax.local_devices()
        config = ibjax.Config.from_json({CONFIG.to_json()!r})
        ds = ibjax.run(config, seeds=range(6))
        assert ds.attrs["num_devices"] == 4 and ds.attrs["training_groups"] == 1
        ibjax.save(ds, {str(tmp_path / "sharded.nc")!r})
        grouped = ibjax.run(config, seeds=range(6), training_group=1)
        assert grouped.attrs["training_groups"] == 2
        ibjax.save(grouped, {str(tmp_path / "grouped.nc")!r})
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    one_device = ibjax.run(CONFIG, seeds=range(6))
    assert_same_trajectories(one_device, ibjax.load(tmp_path / "sharded.nc"))
    assert_same_trajectories(one_device, ibjax.load(tmp_path / "grouped.nc"))


def test_learning_rates_batched_in_one_program(tmp_path):
    from ibjax import program
    from ibjax.plotting import plot_results

    rates = (1e-3, 2e-2)
    traces = program.TRACE_COUNT["segment"]
    swept = ibjax.run(CONFIG.replace(num_seeds=2, learning_rate=rates))
    assert program.TRACE_COUNT["segment"] == traces + 1  # one compiled program for all rates
    assert swept.ixt.dims == ("seed", "learning_rate", "epoch", "estimator", "layer")
    assert swept.diverged_epoch.dims == ("seed", "learning_rate")
    np.testing.assert_allclose(swept.learning_rate.values, rates)
    for rate in rates:
        alone = ibjax.run(CONFIG.replace(num_seeds=2, learning_rate=rate))
        assert_same_trajectories(alone, swept.sel(learning_rate=rate))
    # Same seed, same initial network, different rates -> different training.
    first = swept.train_loss.isel(epoch=-1).values
    assert not np.allclose(first[:, 0], first[:, 1])
    back = ibjax.load(ibjax.save(swept, tmp_path / "r.nc"))
    assert ibjax.config_of(back).learning_rate == rates
    names = sorted(p.name for p in plot_results(back, tmp_path))
    assert names[:2] == ["accuracy_lr0.001.png", "accuracy_lr0.02.png"] and len(names) == 6
    text = ibjax.results.summary(back)  # a table per rate, not a mean over rates
    assert "mean over seeds, learning rate 0.001]" in text
    assert "mean over seeds, learning rate 0.02]" in text


def test_two_processes_with_jax_distributed_then_merge(tmp_path):
    """The multi-host path, as two local CPU processes: each runs its share of 5 seeds."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "run"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
           "JAX_PLATFORMS": "cpu"}
    common = [sys.executable, "-m", "ibjax", "run", "--seeds", "5", "--hidden", "5,3",
              "--epochs", "8", "--snapshots", "every:4", "--seed", "3", "--quiet",
              "--out", str(out), "--distributed", "--coordinator", f"127.0.0.1:{port}",
              "--num-processes", "2"]
    workers = [subprocess.Popen([*common, "--process-id", str(i)], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for i in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-3000:]
    parts = sorted(out.glob("results.part*-of-002.nc"))
    assert [p.name for p in parts] == ["results.part000-of-002.nc", "results.part001-of-002.nc"]
    np.testing.assert_array_equal(ibjax.load(parts[0]).seed.values, [0, 1, 2])
    assert main(["merge", *map(str, parts), "--out", str(out / "results.nc")]) == 0
    assert_same_trajectories(ibjax.run(CONFIG.replace(num_seeds=5)),
                             ibjax.load(out / "results.nc"))


def test_one_segment_equals_many():
    many = ibjax.run(CONFIG.replace(num_seeds=2))
    one = ibjax.run(CONFIG.replace(num_seeds=2), target_segments=1)
    assert_same_trajectories(many, one)
    with pytest.raises(ibjax.ConfigError, match="target_segments"):
        ibjax.run(CONFIG, target_segments=0)
    with pytest.raises(ibjax.ConfigError, match="progress must be None or a function"):
        ibjax.run(CONFIG, progress=False)
