"""Divergence flagging, checkpoints, interruption (SIGINT) and SIGKILL + resume."""

import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ibjax
from ibjax import checkpoint
from ibjax.cli import main
from ibjax.config import Config
from ibjax.data import load_var_u
from ibjax.runner import RunInterrupted
from ibjax.train import Steps, make_trainer


def test_a_diverged_seed_is_flagged_and_does_not_touch_the_others():
    trainer = make_trainer(Config(hidden=(4, 3)), load_var_u())
    state = jax.vmap(trainer.init)(jnp.arange(3), jnp.full(3, 4e-4))
    poisoned = state._replace(params=jax.tree.map(lambda p: p.at[1].set(jnp.nan), state.params))
    steps = Steps(jnp.asarray([0, 2, 2], jnp.int32), jnp.ones(3, bool))
    data = trainer.device_data(load_var_u())
    run_steps = jax.jit(jax.vmap(trainer.run_steps, in_axes=(0, None, None)))
    clean_end, clean = run_steps(state, data, steps)
    end, measured = run_steps(poisoned, data, steps)
    np.testing.assert_array_equal(np.asarray(end.diverged_at), [-1, 1, -1])
    for name, values in measured._asdict().items():
        if values is None:  # ity_null without Config.null
            continue
        values = np.asarray(values)
        assert np.isnan(values[1, 1:]).all(), name  # NaN, not garbage, after divergence
        np.testing.assert_array_equal(values[[0, 2]], np.asarray(getattr(clean, name))[[0, 2]])


def test_too_large_a_learning_rate_is_reported_per_seed():
    ds = ibjax.run(Config(num_seeds=4, hidden=(6, 4), activation="linear", optimizer="sgd",
                          learning_rate=50.0, num_epochs=30, snapshots="every:10"))
    diverged = ds.diverged_epoch.values
    assert (diverged > 0).any()
    for seed in np.flatnonzero(diverged > 0):
        after = ds.epoch.values >= diverged[seed]
        assert np.isnan(ds.ixt.values[seed, after]).all()
        assert np.isnan(ds.train_accuracy.values[seed, after]).all()


CONFIG = Config(num_seeds=2, hidden=(5, 3), num_epochs=30, snapshots="every:1", seed=9)


def test_interrupt_then_resume_equals_an_uninterrupted_run(tmp_path):
    whole = ibjax.run(CONFIG)
    path = tmp_path / "checkpoint.npz"
    calls = []

    def stop_after_three(progress):
        calls.append(progress)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted) as stop:
        ibjax.run(CONFIG, progress=stop_after_three, checkpoint_path=path, checkpoint_every_s=0)
    assert stop.value.checkpoint == path and checkpoint.load(path).segments_done >= 3
    resumed = ibjax.run(CONFIG, checkpoint_path=path, resume=True,
                        results_path=tmp_path / "results.nc")
    assert not path.exists()  # removed once the results were written, not before
    for name in ("ixt", "ity", "grad_mean", "train_loss", "test_accuracy"):
        np.testing.assert_array_equal(resumed[name].values, whole[name].values)
        np.testing.assert_array_equal(ibjax.load(tmp_path / "results.nc")[name].values,
                                      whole[name].values)


def test_resume_refuses_another_runs_checkpoint(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="nothing to resume"):
        ibjax.run(CONFIG, checkpoint_path=tmp_path / "none.npz", resume=True)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(checkpoint.CheckpointError, match="not a readable"):
        checkpoint.load(broken)


def _wait_for_checkpoint(path, process, min_segments):
    deadline = time.time() + 300
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if checkpoint.load(path).segments_done >= min_segments:
                return
        except checkpoint.CheckpointError:
            pass
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def test_cli_survives_sigint_and_sigkill(tmp_path):
    config = Config(num_seeds=2, hidden=(5, 3), num_epochs=2000, snapshots="every:1", seed=4)
    out = tmp_path / "run"
    flags = ["--seeds", "2", "--hidden", "5,3", "--epochs", "2000", "--snapshots", "every:1",
             "--seed", "4", "--no-plots", "--quiet", "--checkpoint-every", "0"]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
           "JAX_PLATFORMS": "cpu"}
    ckpt = out / "checkpoint.npz"

    first = subprocess.Popen([sys.executable, "-m", "ibjax", "run", *flags, "--out", str(out)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(ckpt, first, 2)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 130, err
    assert f"ibjax run --resume {out}" in err
    done_at_interrupt = checkpoint.load(ckpt).segments_done

    second = subprocess.Popen([sys.executable, "-m", "ibjax", "run", "--resume", str(out),
                               "--no-plots", "--quiet", "--checkpoint-every", "0"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_checkpoint(ckpt, second, done_at_interrupt + 2)
    second.kill()  # SIGKILL: no handler runs
    second.communicate(timeout=60)
    assert checkpoint.load(ckpt).segments_done > done_at_interrupt

    assert main(["run", "--resume", str(out), "--no-plots", "--quiet"]) == 0
    assert not ckpt.exists()
    resumed = ibjax.load(out / "results.nc")
    whole = ibjax.run(config)
    for name in ("ixt", "ity", "grad_std", "train_loss", "test_loss"):
        np.testing.assert_array_equal(resumed[name].values, whole[name].values)


def test_fresh_run_will_not_overwrite_an_unfinished_one(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"x")
    assert main(["run", "--out", str(out), "--epochs", "3"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["run", "--resume", str(out), "--epochs", "3"]) == 2
    assert "drop" in capsys.readouterr().err


def test_resume_with_chunks_and_with_another_chunk_size(tmp_path):
    config = CONFIG.replace(num_seeds=5)
    whole = ibjax.run(config, max_networks_per_chunk=2)
    path = tmp_path / "checkpoint.npz"

    def interrupt_at_segment(n):
        calls = []

        def progress(p):
            calls.append(p)
            if len(calls) == n:
                raise KeyboardInterrupt
        return progress

    with pytest.raises(RunInterrupted):
        ibjax.run(config, progress=interrupt_at_segment(3), checkpoint_path=path,
                  checkpoint_every_s=0, max_networks_per_chunk=2)
    assert checkpoint.load(path).state_leaves[0].shape[0] == 5  # padding is not saved
    same = ibjax.run(config, checkpoint_path=path, resume=True, max_networks_per_chunk=2)
    for name in ("ixt", "ity", "train_loss", "grad_mean"):
        np.testing.assert_array_equal(same[name].values, whole[name].values)

    with pytest.raises(RunInterrupted):
        ibjax.run(config, progress=interrupt_at_segment(2), checkpoint_path=path,
                  checkpoint_every_s=0, max_networks_per_chunk=2)
    other = ibjax.run(config, checkpoint_path=path, resume=True)  # all 5 at once now
    np.testing.assert_allclose(other.train_loss.values, whole.train_loss.values, rtol=1e-5)
    assert np.abs(other.ixt.values - whole.ixt.values).max() <= 0.01
