import os

import numpy as np
import pytest

import ibjax
from ibjax.config import Config
from ibjax.results import VARIABLES, save, to_dataset


def synthetic(num_seeds=3, num_epochs=5, widths=(4, 3, 2), estimators=("binning",),
              null=False):
    rng = np.random.default_rng(0)
    arrays = {}
    for name, (dims, _, _) in VARIABLES.items():
        if name == "ity_null" and not null:
            continue
        shape = {"seed": num_seeds, "epoch": num_epochs, "layer": len(widths),
                 "estimator": len(estimators)}
        arrays[name] = rng.random([shape[d] for d in dims])
    config = Config(num_seeds=num_seeds, hidden=widths[:-1], estimators=estimators, null=null)
    return to_dataset(config, np.arange(num_seeds),
                      np.array([0, 1, 3, 7, 15])[:num_epochs], widths, arrays,
                      {"compile_s": 1.5, "device": "test"})


def test_round_trip(tmp_path):
    ds = synthetic()
    path = save(ds, tmp_path / "r.nc")
    back = ibjax.load(path)
    np.testing.assert_allclose(back.ixt.values, ds.ixt.values)
    assert back.ixt.dims == ("seed", "epoch", "estimator", "layer")
    assert list(back.estimator.values) == ["binning"]
    assert back.ixt.attrs["units"] == "bits"
    assert list(back.layer_name.values) == ["hidden 1", "hidden 2", "softmax output"]
    assert ibjax.config_of(back) == Config(num_seeds=3, hidden=(4, 3))
    assert back.attrs["schema_version"] == 2
    assert os.listdir(tmp_path) == ["r.nc"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # usual permissions, not mkstemp's


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = save(synthetic(), tmp_path / "r.nc")
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    ds = synthetic()
    monkeypatch.setattr(type(ds), "to_netcdf", broken)
    with pytest.raises(RuntimeError):
        save(ds, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["r.nc"]


def test_a_run_folder_loads_as_its_results_file(tmp_path):
    save(synthetic(), tmp_path / "results.nc")
    np.testing.assert_array_equal(ibjax.load(tmp_path)["ixt"].values,
                                  ibjax.load(tmp_path / "results.nc")["ixt"].values)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        ibjax.load(tmp_path / "missing.nc")
    with pytest.raises(FileNotFoundError, match="folder without a results.nc"):
        ibjax.load(tmp_path)
    foreign = tmp_path / "foreign.nc"
    foreign.write_bytes(b"not a netcdf file at all")
    with pytest.raises(ValueError, match="not a readable ibjax results file"):
        ibjax.load(foreign)


def test_schema_1_files_load_with_one_binning_estimator(tmp_path):
    ds = synthetic().isel(estimator=0).drop_vars("estimator")
    ds.attrs["schema_version"] = 1
    path = save(ds, tmp_path / "old.nc")
    back = ibjax.load(path)
    assert back.ixt.dims == ("seed", "epoch", "estimator", "layer")
    np.testing.assert_array_equal(back.ixt.sel(estimator="binning").values, ds.ixt.values)


def test_newer_schema_and_truncated_files_are_refused(tmp_path):
    ds = synthetic()
    ds.attrs["schema_version"] = 99
    with pytest.raises(ValueError, match="schema version 99"):
        ibjax.load(save(ds, tmp_path / "new.nc"))
    whole = save(synthetic(), tmp_path / "whole.nc").read_bytes()
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="not a readable ibjax results file"):
        ibjax.load(truncated)
