"""The examples run as a user would run them (small sizes), and their files are ibjax results."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ibjax

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.mark.parametrize("script", ["own_flax_model.py", "plain_jax.py"])
def test_example_writes_results_and_figures(script, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--out", str(out), "--seeds", "2",
         "--epochs", "3"], capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr[-3000:]
    results = ibjax.load(out / "results.nc")
    assert results.sizes["seed"] == 2 and results.sizes["estimator"] == 3
    assert ibjax.config_of(results).model.startswith("own:")
    for name in ("grad_mean", "train_loss", "test_accuracy"):
        assert name in results
    assert {"information_plane.png", "gradients.png", "accuracy.png"} <= {
        p.name for p in out.iterdir()}
