"""Finished work is never lost, and ``ibjax run`` fails early and in one line: the run folder
(lock, record, checks before compiling), failures while saving, resuming on changed data,
interrupts before the first checkpoint, and a distributed peer that never starts. Faults are
injected in-process (monkeypatch) or in a subprocess (signals)."""

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest

import ibjax
from ibjax import interrupts, plotting, results, runner
from ibjax.cli import main
from ibjax.config import Config
from ibjax.rundir import RunFolder

FLAGS = ["--seeds", "2", "--hidden", "4,3", "--epochs", "40", "--snapshots", "every:2",
         "--seed", "5", "--quiet"]
CONFIG = Config(num_seeds=2, hidden=(4, 3), num_epochs=40, snapshots="every:2", seed=5)
ENV = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
       "JAX_PLATFORMS": "cpu"}


@pytest.fixture(scope="module")
def whole():
    return ibjax.run(CONFIG)


def same_results(path, whole):
    done = ibjax.load(path)
    for name in ("ixt", "ity", "grad_mean", "train_loss", "test_accuracy"):
        np.testing.assert_array_equal(done[name].values, whole[name].values)


def no_temporaries(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def test_checkpoint_outlives_a_failed_results_write(tmp_path, monkeypatch, capsys, whole):
    """The checkpoint is removed only after results.nc is written: a write that fails (disk
    full) leaves it, and --resume then finishes the run."""
    out = tmp_path / "o"

    def disk_full(dataset, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(results, "save", disk_full)
    # The default --checkpoint-every (30 s) is longer than this run: the run's end is saved
    # anyway, before the results are written.
    assert main(["run", *FLAGS, "--out", str(out), "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "the last checkpoint is kept" in err
    assert f"ibjax run --resume {out}" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (out / "checkpoint.npz").exists() and not (out / "results.nc").exists()
    monkeypatch.undo()
    assert main(["run", "--resume", str(out), "--quiet", "--no-plots"]) == 0
    assert not (out / "checkpoint.npz").exists()
    same_results(out / "results.nc", whole)
    assert no_temporaries(out)


def test_failed_figures_keep_the_results(tmp_path, monkeypatch, capsys):
    out = tmp_path / "o"

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out / "gradients.png"))

    monkeypatch.setattr(plotting, "plot_results", disk_full)
    assert main(["run", *FLAGS, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "could not write the figures" in err and "ibjax plot" in err
    assert len(err.strip().splitlines()) == 1
    assert ibjax.load(out / "results.nc").sizes["seed"] == 2
    assert not (out / "checkpoint.npz").exists()


def test_unusable_out_is_refused_before_compiling(tmp_path, monkeypatch, capsys):
    from ibjax import rundir

    monkeypatch.setattr(runner, "compiled_program",
                        lambda *a, **k: pytest.fail("compiled despite an unusable --out"))

    def fsync_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(rundir.os, "fsync", fsync_full)
    assert main(["run", *FLAGS, "--out", str(tmp_path / "full")]) == 2
    assert "cannot write there (No space left on device)" in capsys.readouterr().err
    monkeypatch.undo()
    monkeypatch.setattr(runner, "compiled_program",
                        lambda *a, **k: pytest.fail("compiled despite an unusable --out"))
    monkeypatch.setattr(rundir.shutil, "disk_usage",
                        lambda path: types.SimpleNamespace(total=10**9, used=10**9, free=1000))
    assert main(["run", *FLAGS, "--out", str(tmp_path / "small")]) == 2
    err = capsys.readouterr().err
    assert "has 1.0 kB free" in err and "need about" in err
    assert not (tmp_path / "small").exists()  # refused: the folder it made is gone again
    assert not (tmp_path / "full").exists()


@contextlib.contextmanager
def lock_held_by_another_process(folder):
    """Yields the PID of a process holding ``folder``'s run lock; SIGKILLs it at the end (its
    lock file stays, the lock itself goes with the process)."""
    folder.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom ibjax.rundir import RunFolder\n"
         "with RunFolder(sys.argv[1]).lock():\n    print('locked', flush=True)\n"
         "    time.sleep(300)\n", str(folder)],
        env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_one_run_per_folder_and_stale_locks(tmp_path, capsys):
    """A live run's lock refuses a second run in the same folder; a killed run's does not."""
    out = tmp_path / "o"
    with lock_held_by_another_process(out) as pid:
        assert main(["run", *FLAGS, "--out", str(out), "--no-plots"]) == 2
        err = capsys.readouterr().err
        assert f"in use by another ibjax run (PID {pid} on" in err
        assert not (out / "run.json").exists()  # nothing of the first run was touched
    assert (out / ".ibjax-run.lock").exists()
    assert main(["run", *FLAGS, "--out", str(out), "--no-plots"]) == 0


def test_finished_runs_are_not_overwritten_silently(tmp_path, monkeypatch, capsys):
    out = tmp_path / "o"
    assert main(["run", *FLAGS, "--out", str(out), "--no-plots"]) == 0
    before = (out / "results.nc").read_bytes()
    assert main(["run", *FLAGS, "--out", str(out), "--no-plots"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "results.nc").read_bytes() == before
    assert main(["run", *FLAGS, "--seed", "6", "--out", str(out), "--no-plots",
                 "--overwrite"]) == 0
    assert ibjax.config_of(ibjax.load(out / "results.nc")).seed == 6
    # The default folder is rotated instead: the previous run moves to a dated folder.
    monkeypatch.chdir(tmp_path)
    assert main(["run", *FLAGS, "--no-plots"]) == 0
    assert main(["run", *FLAGS, "--no-plots"]) == 0
    assert "moved the previous run in ibjax_runs/latest to" in capsys.readouterr().out
    runs = sorted(p.name for p in (tmp_path / "ibjax_runs").iterdir())
    assert len(runs) == 2 and "latest" in runs
    assert all((tmp_path / "ibjax_runs" / name / "results.nc").exists() for name in runs)


def test_interrupt_while_compiling_then_resume_from_the_record(tmp_path, monkeypatch, capsys,
                                                                whole):
    """Ctrl-C before the first checkpoint: one line, no traceback, no temporary file; the
    folder's run.json lets --resume start the run again."""
    out = tmp_path / "o"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "networks_per_chunk", interrupted)  # between compilations
    assert main(["run", *FLAGS, "--out", str(out), "--no-plots"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == (f"ibjax run: interrupted before anything was finished; start it "
                           f"again with: ibjax run --resume {out}")
    assert sorted(p.name for p in out.iterdir()) == [".ibjax-run.lock", "run.json"]
    monkeypatch.undo()
    assert main(["run", "--resume", str(out), "--quiet", "--no-plots"]) == 0
    assert "stopped before its first checkpoint" in capsys.readouterr().out
    same_results(out / "results.nc", whole)
    assert main(["run", "--resume", str(out)]) == 2
    assert "the run is finished" in capsys.readouterr().err


def test_resume_on_changed_data_is_refused(tmp_path, monkeypatch, capsys):
    from ibjax import cli

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 5)).astype(np.float32), np.arange(200) % 2
    data = tmp_path / "d.npz"
    np.savez(data, x=x, y=y)
    out = tmp_path / "o"
    calls = []

    def stop_after_two(self, progress):
        calls.append(progress)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli._ProgressLine, "__call__", stop_after_two)
    argv = ["run", "--seeds", "2", "--hidden", "4", "--epochs", "200", "--snapshots",
            "every:2", "--batch-size", "32", "--data", str(data), "--out", str(out),
            "--checkpoint-every", "0",
            "--no-plots"]
    assert main(argv) == 130
    assert (out / "checkpoint.npz").exists()
    np.savez(data, x=x, y=1 - y)  # labels flipped between the kill and the resume
    assert main(["run", "--resume", str(out), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert f"the data ({data}) changed since the run started" in err


def test_sigterm_saves_like_ctrl_c(tmp_path):
    out = tmp_path / "o"
    command = [sys.executable, "-m", "ibjax", "run", "--seeds", "2", "--hidden", "5,3",
               "--epochs", "3000", "--snapshots", "every:1", "--out", str(out),
               "--checkpoint-every", "0", "--quiet", "--no-plots"]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 300
    while not (out / "checkpoint.npz").exists():
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.05)
    process.terminate()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert f"continue with: ibjax run --resume {out}" in err and "Traceback" not in err
    assert (out / "checkpoint.npz").exists() and no_temporaries(out)


STUCK = """
import sys
import numpy as np
from ibjax import interrupts
interrupts.GRACE_S = float(sys.argv[1])
previous = interrupts.handle_signals()
matrix = np.random.default_rng(0).normal(size=(5000, 5000))
matrix = matrix + matrix.T
print("computing", flush=True)
for _ in range(10**6):  # a run that does not stop in time: it goes on after the interrupt
    try:
        np.linalg.eigvalsh(matrix)  # C code, ~10 s a call
    except KeyboardInterrupt:
        pass
"""


@pytest.mark.parametrize("grace, signals, said", [
    (1, 1, "did not stop within 1 s of the signal"), (600, 2, "a second signal")])
def test_a_signal_ends_a_run_that_does_not_stop_in_time(grace, signals, said):
    """SIGTERM while the run does not stop (a segment far longer than planned, waited for
    again after the interrupt; `timeout` sent one SIGTERM that waited 8+ minutes): the
    watchdog ends the process with 143 once GRACE_S has passed, or at once on a second
    signal."""
    process = subprocess.Popen([sys.executable, "-c", STUCK, str(grace)], env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "computing", process.communicate()
    time.sleep(1.0)
    start = time.monotonic()
    for _ in range(signals):
        process.terminate()
        time.sleep(0.5)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert said in err
    assert time.monotonic() - start < 30


SWALLOWED = """
import gc, os, signal, sys
from ibjax import interrupts
previous = interrupts.handle_signals()
def collecting(phase, info):  # like JAX's garbage-collector callback
    if phase == "start":
        os.kill(os.getpid(), signal.SIG{name})
        sum(range(1000))  # bytecodes: the handler runs here, its exception is discarded
gc.callbacks.append(collecting)
gc.collect()  # returns: Python discarded the interrupt raised in the callback
gc.callbacks.remove(collecting)
try:
    interrupts.raise_if_interrupted()
except KeyboardInterrupt as stop:
    print(type(stop).__name__, interrupts.exit_status(stop))
interrupts.raise_if_interrupted()  # once only
interrupts.restore(previous)
print(signal.getsignal(signal.SIGINT) is signal.default_int_handler,
      sys.unraisablehook is sys.__unraisablehook__)
"""


@pytest.mark.parametrize("name, raised", [("INT", "KeyboardInterrupt 130"),
                                          ("TERM", "Terminated 143")])
def test_an_interrupt_python_discarded_is_raised_again(name, raised):
    """A signal whose exception falls in a garbage-collector callback (Python drops it) is
    not lost: the runner's and the distributed wait's loops raise it again, and Python's
    "Exception ignored" report of it is left out. Without that, a Ctrl-C could let a run go
    on to its end."""
    done = subprocess.run([sys.executable, "-c", SWALLOWED.format(name=name)], env=ENV,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == [raised, "True True", ""]
    assert "Exception ignored" not in done.stderr  # not reported: it is raised again


EARLY = """
import os, signal, sys
class Interrupting:  # Ctrl-C to this process as the command line's modules (and JAX) import
    def find_spec(self, name, path=None, target=None):
        if name == "ibjax.cli":
            os.kill(os.getpid(), signal.SIG{name})
            sum(range(1000))  # bytecodes: the handler runs here
        return None
sys.meta_path.insert(0, Interrupting())
from ibjax.__main__ import main
status = main(["info", "nothing.nc"])
print("ibjax.cli" in sys.modules, status)
"""


@pytest.mark.parametrize("name, status", [("INT", 130), ("TERM", 143)])
def test_an_interrupt_while_the_command_imports_jax_ends_it_in_one_line(name, status):
    """The ``ibjax`` command's handlers are in place before JAX is imported; an interrupt
    then waits for the import to finish (jaxlib's extension, interrupted while it loads, can
    fail or crash the process) and ends the command with one line."""
    done = subprocess.run([sys.executable, "-c", EARLY.format(name=name)], env=ENV,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.split() == ["True", str(status)], done.stderr
    assert done.stderr.strip() == "ibjax: interrupted before anything was started"


def test_a_remembered_interrupt_before_the_first_segment_saves_no_checkpoint(tmp_path):
    """An interrupt remembered while compiling stops the run at its first segment; nothing
    finished, so no checkpoint is written (none would say "finished segments are saved")."""
    path = tmp_path / "checkpoint.npz"
    previous = interrupts.handle_signals()
    try:
        interrupts._received.append(signal.SIGINT)  # as the handler does
        with pytest.raises(runner.RunInterrupted) as stop:
            ibjax.run(CONFIG, checkpoint_path=path, checkpoint_every_s=0)
    finally:
        interrupts.restore(previous)
    assert stop.value.checkpoint is None and not path.exists()


def test_distributed_without_a_cluster_is_one_line(tmp_path):
    command = [sys.executable, "-m", "ibjax", "run", *FLAGS, "--out", str(tmp_path / "o"),
               "--distributed"]
    env = {k: v for k, v in ENV.items() if not k.startswith(("SLURM", "OMPI", "PMI"))}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("ibjax run: error: --distributed: found no cluster to join")
    assert len(done.stderr.strip().splitlines()) == 1


def test_distributed_after_jax_was_used_in_the_process_says_so(tmp_path, capsys):
    import jax.numpy as jnp

    jnp.ones(1).block_until_ready()  # JAX's backend is up in this process
    assert main(["run", *FLAGS, "--out", str(tmp_path / "o"), "--distributed",
                 "--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "0",
                 "--distributed-timeout", "5"]) == 2
    assert capsys.readouterr().err.strip() == (
        "ibjax run: error: --distributed: JAX was already used in this process; join the "
        "other processes first (ibjax run --distributed in a process of its own)")
    assert not (tmp_path / "o").exists()


def test_a_peer_that_never_starts_ends_in_bounded_time(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "ibjax", "run", *FLAGS, "--out", str(tmp_path / "o"),
               "--distributed", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
               "--process-id", "0", "--distributed-timeout", "3"]
    start = time.time()
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert time.time() - start < 60
    assert done.stderr.strip().splitlines() == [
        f"ibjax run: error: --distributed: the processes did not all join at 127.0.0.1:{port} "
        f"within 3 s (--distributed-timeout); check that every process was started with the "
        f"same --coordinator and --num-processes and its own --process-id"]
    # Ctrl-C reaches a process waiting for its peers (JAX waits inside C++): sent once the
    # process listens as the coordinator, so that it is waiting, however slow its start-up.
    command[-1] = "120"
    waiting = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 60
    while True:
        assert waiting.poll() is None and time.time() < deadline, waiting.communicate()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    start = time.time()
    waiting.send_signal(signal.SIGINT)
    _, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 130 and time.time() - start < 10, err
    assert "interrupted while waiting for the other processes" in err


def test_run_folder_record_round_trip(tmp_path):
    folder = RunFolder(tmp_path)
    folder.write_record(CONFIG, [3, 4, 5], "ab" * 32, ["run"])
    record = folder.read_record()
    assert record["config"] == CONFIG and list(record["seeds"]) == [3, 4, 5]
    folder.write_record(CONFIG, [0, 7], "ab" * 32, ["run"])
    assert folder.read_record()["seeds"] == [0, 7]
    assert folder.state() == "started"


def test_sizes_are_checked_before_memory_is_touched(monkeypatch):
    """A billion seeds is refused from the sizes alone (it allocated 4 GB of seed indices
    before refusing), and so is a network too wide for a device's memory budget."""
    # Peak resident set of this process's own memory (VmHWM; ru_maxrss would include the
    # parent's peak, inherited through fork).
    code = ("import re, sys\nfrom ibjax.cli import main\n"
            "code = main(['run', '--seeds', '1000000000', '--out', sys.argv[1]])\n"
            "status = open('/proc/self/status').read()\n"
            "print(code, re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1))\n")
    done = subprocess.run([sys.executable, "-c", code, "unused"], env=ENV, capture_output=True,
                          text=True, timeout=300, check=False)
    exit_code, max_rss_kb = (int(v) for v in done.stdout.split())
    assert exit_code == 2 and "host memory" in done.stderr
    assert max_rss_kb < 1_500_000, max_rss_kb  # JAX itself, not 4 GB of seed indices

    from ibjax import memory

    monkeypatch.setattr(memory, "host_available_bytes", lambda: 2 * 10**9)
    monkeypatch.setattr(runner, "compiled_program",
                        lambda *a, **k: pytest.fail("compiled a network that cannot fit"))
    with pytest.raises(ibjax.ConfigError, match="one network needs about 4.9 GB on a device"):
        ibjax.run(Config(num_seeds=1, hidden=(100_000,), num_epochs=2))


def test_ctrl_c_after_the_last_segment_keeps_the_run(tmp_path, monkeypatch, capsys, whole):
    """Ctrl-C while the results are assembled or written (no checkpoint was due): the
    complete run is in the checkpoint, the message says so, and --resume finishes at once."""
    out = tmp_path / "o"

    def interrupted(dataset, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(results, "save", interrupted)
    assert main(["run", *FLAGS, "--out", str(out), "--no-plots"]) == 130
    err = capsys.readouterr().err
    assert f"finished segments are saved in {out / 'checkpoint.npz'}" in err
    monkeypatch.undo()
    assert main(["run", "--resume", str(out), "--quiet", "--no-plots"]) == 0
    same_results(out / "results.nc", whole)


def test_resume_draws_what_the_run_asked_for(tmp_path, monkeypatch, capsys):
    """--resume without figure flags takes the started command's (--no-plots here; it drew
    the figures regardless)."""
    out = tmp_path / "o"

    def interrupted(dataset, path):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(results, "save", interrupted)
        assert main(["run", *FLAGS, "--out", str(out), "--no-plots"]) == 130
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    assert (out / "results.nc").exists() and not list(out.glob("*.png"))


def test_ctrl_c_while_drawing_keeps_the_results(tmp_path, monkeypatch, capsys):
    out = tmp_path / "o"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plotting, "plot_results", interrupted)
    assert main(["run", *FLAGS, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted while drawing the figures; the results are saved in" in err
    assert ibjax.load(out / "results.nc").sizes["seed"] == 2


def test_folder_states_are_never_misread(tmp_path, monkeypatch, capsys):
    """A damaged record, a results file of another run, a run that failed to start, and
    temporaries of killed figure writes."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "run.json").write_text("[]")
    (out / ".gradients.png.x1.tmp").write_bytes(b"")
    assert main(["run", *FLAGS, "--out", str(out), "--no-plots"]) == 2
    assert "damaged run record" in capsys.readouterr().err
    assert main(["run", *FLAGS, "--out", str(out), "--no-plots", "--overwrite"]) == 0
    assert not (out / ".gradients.png.x1.tmp").exists()
    # A results file that is not the recorded run's (here: another seed count) is a finished
    # run for a new command, and not something to resume.
    other = ibjax.run(CONFIG.replace(num_seeds=1, seed=7))
    ibjax.save(other, out / "results.nc")
    assert main(["run", *FLAGS, "--out", str(out), "--no-plots"]) == 2
    assert "holds a finished run" in capsys.readouterr().err
    assert main(["run", "--resume", str(out)]) == 2
    assert "holds another run than" in capsys.readouterr().err
    # --overwrite stopped before its first checkpoint: the old results stay, the new record is
    # newer: an unfinished run that --resume continues (it said "holds another run").
    (out / "information_plane.gif").write_bytes(b"old animation")
    (out / "view.html").write_text("old view")

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(runner, "run", stopped)
        assert main(["run", *FLAGS, "--out", str(out), "--no-plots", "--overwrite"]) == 130
    assert "--resume" in capsys.readouterr().err
    assert not (out / "information_plane.gif").exists() and not (out / "view.html").exists()
    assert main(["run", *FLAGS, "--out", str(out), "--no-plots"]) == 2
    assert "holds an unfinished run" in capsys.readouterr().err
    assert main(["run", "--resume", str(out), "--quiet", "--no-plots"]) == 0
    assert ibjax.load(out / "results.nc").sizes["seed"] == CONFIG.num_seeds
    # A run that fails before saving anything leaves no record behind.
    fresh = tmp_path / "fresh"

    def refused(*args, **kwargs):
        raise ibjax.ConfigError("refused after compiling")

    monkeypatch.setattr(runner, "run", refused)
    assert main(["run", *FLAGS, "--out", str(fresh), "--no-plots"]) == 2
    assert not (fresh / "run.json").exists()


def test_a_huge_seed_range_in_a_record_is_refused_not_allocated(tmp_path, capsys):
    import json

    from ibjax.data import digest

    folder = RunFolder(tmp_path)
    folder.write_record(CONFIG, [0, 1], digest(ibjax.load_var_u()), ["run"])
    record = json.loads(folder.record.read_text())
    record["seeds"] = {"start": 0, "stop": 10**12}
    folder.record.write_text(json.dumps(record))
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "host memory" in capsys.readouterr().err


def test_the_default_folder_in_use_is_not_moved(tmp_path, monkeypatch, capsys):
    latest = tmp_path / "ibjax_runs" / "latest"
    monkeypatch.chdir(tmp_path)
    assert main(["run", *FLAGS, "--no-plots"]) == 0
    with lock_held_by_another_process(latest):
        assert main(["run", *FLAGS, "--no-plots"]) == 2
        assert "in use by another ibjax run" in capsys.readouterr().err
        assert [p.name for p in (tmp_path / "ibjax_runs").iterdir()] == ["latest"]


def test_an_unusable_compilation_cache_is_said_once_and_turned_off(tmp_path):
    """IBJAX_CACHE_DIR naming a file: one line from ibjax, no JAX warnings, no cache."""
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    done = subprocess.run(
        [sys.executable, "-c", "from ibjax.cli import use_compilation_cache; "
         "use_compilation_cache(); import jax; print(jax.config.jax_compilation_cache_dir)"],
        env={**env, "IBJAX_CACHE_DIR": str(blocked)}, capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"
    assert done.stderr.startswith("ibjax: compilation cache off (")
    assert str(blocked) in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("chosen", [None, "2.5"])
def test_the_command_caches_programs_that_compile_in_a_tenth_of_a_second(tmp_path, chosen):
    """init's two programs compile in 0.2-0.5 s: under JAX's default threshold (1 s) a warm run
    would compile them again. The command lowers it to 0.1 s unless the user chose one."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")}
    if chosen is not None:
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = chosen
    done = subprocess.run(
        [sys.executable, "-c", "from ibjax.cli import use_compilation_cache; "
         "use_compilation_cache(); import jax; "
         "print(jax.config.jax_persistent_cache_min_compile_time_secs)"],
        env={**env, "IBJAX_CACHE_DIR": str(tmp_path)}, capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == (0.1 if chosen is None else float(chosen))
