import numpy as np
import pytest
from test_results import synthetic

from ibjax import phases


def planted(num_seeds=40, num_epochs=5):
    """Results whose I(X;T) peaks at snapshot 2 of 5 for seeds 0..29 and at the last snapshot
    for the rest, and whose gradient SNR falls below 1 from snapshot 3 on (or never)."""
    ds = synthetic(num_seeds=num_seeds, num_epochs=num_epochs)
    ixt = np.tile(np.array([1.0, 2.0, 3.0, 2.5, 2.0])[None, :, None, None],
                  (num_seeds, 1, 1, 3))
    ixt[30:] = np.array([1.0, 2.0, 3.0, 3.5, 4.0])[None, :, None, None]
    snr = np.tile(np.array([np.nan, 5.0, 0.5, 3.0, 0.4])[None, :, None], (num_seeds, 1, 3))
    snr[:, :, 2] = 2.0  # the last layer never crosses
    snr[0] = np.nan  # a diverged seed
    ixt[0] = np.nan
    ds["ixt"].values[:] = ixt
    ds["grad_std"].values[:] = 1.0
    ds["grad_mean"].values[:] = snr
    return ds


def test_detect_finds_the_planted_phases():
    ds = planted()
    found = phases.detect(ds, window=2)
    epochs = ds.epoch.values  # [0, 1, 3, 7, 15]
    peak = found.compression_epoch.sel(estimator="binning")
    assert np.isnan(peak.values[0]).all()
    np.testing.assert_array_equal(peak.values[1:30], epochs[2])
    np.testing.assert_array_equal(peak.values[30:], epochs[4])
    lost = found.bits_compressed.sel(estimator="binning")
    np.testing.assert_allclose(lost.values[1:30], 1.0)
    np.testing.assert_allclose(lost.values[30:], 0.0)
    # snapshot 2 dips below 1 but the median of it and the next (3.0) is not below 1 with
    # window 2 ... median(0.5, 3.0) = 1.75; snapshot 4 (0.4, alone) is.
    np.testing.assert_array_equal(found.snr_epoch.values[1:, :2], epochs[4])
    assert np.isnan(found.snr_epoch.values[:, 2]).all()
    # window 1: the first dip counts.
    np.testing.assert_array_equal(phases.detect(ds, window=1).snr_epoch.values[1:, 0], epochs[2])


def test_summary_medians_intervals_and_table():
    ds = planted()
    summary = phases.summarize(phases.detect(ds, window=2))
    peak = summary.compression_epoch.sel(estimator="binning", layer=1)
    assert float(peak.sel(stat="median")) == 3.0
    assert float(peak.sel(stat="high")) == pytest.approx(15.0)
    assert int(summary.compression_epoch_count.sel(estimator="binning", layer=1)) == 39
    text = phases.table(ds, window=2)
    assert "hidden 1" in text and "never" in text and "n=39" in text


def test_window_is_checked():
    with pytest.raises(ValueError, match="window"):
        phases.detect(planted(), window=0)


def test_table_and_figures_with_a_learning_rate_dimension(tmp_path):
    from ibjax.config import Config
    from ibjax.plotting import plot_results
    from ibjax.results import VARIABLES, to_dataset

    rng = np.random.default_rng(0)
    sizes = {"seed": 6, "epoch": 5, "layer": 3, "estimator": 2}  # 3 seeds x 2 rates
    arrays = {name: rng.random([sizes[d] for d in dims])
              for name, (dims, _, _) in VARIABLES.items()}
    config = Config(num_seeds=3, hidden=(4, 3), learning_rate=(1e-3, 2e-3),
                    estimators=("binning", "kde-upper"), null=True)  # arrays hold ity_null
    ds = to_dataset(config, np.arange(3), np.array([0, 1, 3, 7, 15]), (4, 3, 2), arrays, {})
    text = phases.table(ds)
    assert "learning_rate 0.001" in text and "learning_rate 0.002" in text
    assert text.count("kde-upper") == 6  # 3 layers x 2 rates
    written = sorted(path.name for path in plot_results(ds, tmp_path))
    assert len(written) == 8 and "null_gap_lr0.001.png" in written  # 4 figures x 2 rates
