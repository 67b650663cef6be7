"""The label-shuffle null baseline: in the same program without changing the other results,
equal to the estimators on permuted labels, and its reading (ibjax.null) against scipy's
one-sample t-test."""

import jax
import numpy as np
import pytest
import xarray as xr
from scipy import stats

import ibjax
from ibjax import null
from ibjax.cli import main
from ibjax.mi import mutual_information
from ibjax.permutation import permutation
from ibjax.train import NULL_KEY_DATA, make_trainer


def test_null_is_measured_beside_the_rest_and_changes_nothing_else(tmp_path):
    names = ("binning", "kde-upper")
    config = ibjax.Config(num_seeds=2, hidden=(6, 3), num_epochs=20, snapshots=(0, 20),
                          estimators=names, mi_samples=1024)
    plain = ibjax.run(config)
    with_null = ibjax.run(config.replace(null=True))
    assert "ity_null" not in plain and with_null["ity_null"].dims == with_null["ity"].dims
    for name in ("ixt", "ity", "train_loss", "grad_mean"):
        np.testing.assert_array_equal(with_null[name].values, plain[name].values, name)
    # the null equals each estimator on the MI rows' labels permuted by the seed's null key
    data = ibjax.load_var_u()
    trainer = make_trainer(config.replace(null=True), data)
    rows = ibjax.train.mi_sample_rows(1024, 4096, 0)
    params = trainer.init(jax.numpy.asarray(1), jax.numpy.asarray(4e-4))
    order = np.asarray(permutation(jax.random.fold_in(params.key_shuffle, NULL_KEY_DATA), 1024))
    layers = trainer.layer_activations(params.params, trainer.device_data(data))
    for e, name in enumerate(names):
        for k, t in enumerate(layers):
            want = mutual_information(np.asarray(t).T, data.y[rows][order], name)[1]
            assert float(with_null["ity_null"].values[1, 0, e, k]) == pytest.approx(
                float(want), abs=1e-5)
    # the first layer's binned rows are all distinct at epoch 0: I(T;Y) = H(Y) for any labels
    first = with_null.isel(epoch=0, layer=0).sel(estimator="binning")
    np.testing.assert_allclose(first["ity_null"].values, first["ity"].values, atol=1e-6)
    assert null.indistinguishable(with_null).isel(epoch=0, layer=0).sel(
        estimator="binning").item()


def fake_results(differences):
    """Results with ity - ity_null = differences [seed, epoch]."""
    seeds, epochs = differences.shape
    base = np.full((seeds, epochs, 1, 1), 0.5)
    return xr.Dataset(
        {"ity": (("seed", "epoch", "estimator", "layer"), base + differences[..., None, None]),
         "ity_null": (("seed", "epoch", "estimator", "layer"), base)},
        coords={"seed": np.arange(seeds), "epoch": np.arange(epochs) * 10,
                "estimator": ["binning"], "layer": [1], "layer_name": ("layer", ["hidden 1"])})


def test_indistinguishable_agrees_with_scipys_one_sided_t_test():
    rng = np.random.default_rng(0)
    differences = np.stack([rng.normal(mean, 0.1, 6) for mean in
                            np.linspace(-0.1, 0.25, 40)], axis=1)  # [6 seeds, 40 snapshots]
    differences[2, 5] = np.nan  # a diverged seed at one snapshot
    got = null.indistinguishable(fake_results(differences)).values[:, 0, 0]
    p = np.array([stats.ttest_1samp(d[np.isfinite(d)], 0.0, alternative="greater").pvalue
                  for d in differences.T])
    np.testing.assert_array_equal(got, p >= 0.05)
    assert got[:5].all() and not got[-5:].any()
    zero = null.indistinguishable(fake_results(np.zeros((4, 3)))).values
    assert zero.all()  # identical to the null: indistinguishable
    one_seed = null.indistinguishable(fake_results(np.array([[0.0, 0.2, -0.1]]))).values
    assert one_seed[:, 0, 0].tolist() == [True, False, True]


def test_epoch_ranges():
    epochs = np.array([0, 1, 2, 5, 10, 20])
    assert null.epoch_ranges(np.array([1, 1, 0, 1, 0, 1], bool), epochs) == "0-1, 5, 20"
    assert null.epoch_ranges(np.zeros(6, bool), epochs) == "none"


def test_cli_null_run_info_and_figure(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--seeds", "2", "--epochs", "6", "--hidden", "4,3", "--null",
                 "--mi-samples", "512", "--quiet", "--out", str(out)]) == 0
    assert (out / "null_gap.png").stat().st_size > 10_000
    capsys.readouterr()
    assert main(["info", str(out / "results.nc")]) == 0
    text = capsys.readouterr().out
    assert "indistinguishable from the label-shuffle null" in text
    assert "not in this file" not in text
    plain = tmp_path / "plain"
    assert main(["run", "--seeds", "1", "--epochs", "2", "--hidden", "3", "--quiet",
                 "--no-plots", "--out", str(plain)]) == 0
    capsys.readouterr()
    main(["info", str(plain / "results.nc")])
    text = capsys.readouterr().out
    assert "label-shuffle null" not in text and "not in this file" not in text
