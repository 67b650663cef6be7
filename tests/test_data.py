import numpy as np

from ibjax.data import VAR_U_SHA256, load_var_u, var_u_sha256

PUBLISHED_SHA256 = "0ba9551878a855396a8de0cbaae620788ede1e7b1eb2b8373bbe017d5ea02036"


def test_shipped_file_matches_published_checksum():
    assert var_u_sha256() == PUBLISHED_SHA256
    assert VAR_U_SHA256 == PUBLISHED_SHA256


def test_var_u_contents():
    data = load_var_u()
    assert data.x.shape == (4096, 12) and data.x.dtype == np.float32
    assert data.y.shape == (4096,) and data.y.dtype == np.int32
    assert int(data.y.sum()) == 2118
    # Every 12-bit pattern once, MSB-first counting order.
    codes = data.x.astype(int) @ (1 << np.arange(11, -1, -1))
    np.testing.assert_array_equal(codes, np.arange(4096))


def test_label_rule_by_number_of_ones():
    # The paper's labels: p(y=1 | k ones) is 0 for k <= 4 and 1 for k >= 8.
    data = load_var_u()
    ones = data.x.sum(axis=1)
    assert data.y[ones <= 4].max() == 0
    assert data.y[ones >= 8].min() == 1


# ------------------------------------------------------------------ your own data and MNIST

import jax.numpy as jnp  # noqa: E402
import pytest  # noqa: E402
from data_files import tiny_mnist, write_mnist_folder  # noqa: E402

import ibjax  # noqa: E402
from ibjax.data import load_file, make_dataset, read_idx  # noqa: E402


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_folder_and_npz_read_the_same_arrays(tmp_path, rng, gz):
    arrays = tiny_mnist(rng)
    write_mnist_folder(tmp_path / "idx", arrays, gz=gz)
    from_idx = load_file(tmp_path / "idx")
    np.savez(tmp_path / "mnist.npz", x_train=arrays[0], y_train=arrays[1], x_test=arrays[2],
             y_test=arrays[3])
    from_npz = load_file(tmp_path / "mnist.npz")
    for data in (from_idx, from_npz):
        assert data.x.shape == (96, 36) and data.x_test.shape == (32, 36)
        assert data.num_classes == 10 and data.num_test == 32
        np.testing.assert_allclose(data.x, arrays[0].reshape(96, 36) / 255.0, rtol=1e-7)
        np.testing.assert_array_equal(data.y_test, arrays[3])
    np.testing.assert_array_equal(read_idx(next((tmp_path / "idx").glob("train-labels*"))),
                                  arrays[1])


def test_own_arrays_any_classes_and_width_through_the_python_api(rng):
    x = rng.normal(size=(300, 5))
    y = rng.integers(0, 3, 300)
    data = make_dataset(x, y, name="blobs")
    assert (data.num_classes, data.x.dtype, data.num_test) == (3, np.float32, 0)
    config = ibjax.Config(num_seeds=2, hidden=(4,), num_epochs=4, snapshots=(0, 4),
                          batch_size=64, estimators=("binning", "kde-upper"))
    results = ibjax.run(config, data=data)
    assert results.layer_width.values.tolist() == [4, 3]  # softmax follows the classes
    recorded = ibjax.config_of(results)
    assert recorded.dataset == "arrays:blobs"
    assert results.attrs["data_sha256"] == ibjax.data.digest(data)
    assert (recorded.train_fraction, recorded.bin_range) == (0.8, (-1.0, 1.0))  # resolved
    h_y = -sum(p * np.log2(p) for p in np.bincount(y) / 300)
    assert (results.ity.values <= h_y + 1e-5).all() and (results.ixt.values <= np.log2(300)
                                                         + 1e-5).all()
    assert np.isfinite(results.test_accuracy.values).all()  # 20% of rows held out


def test_separate_test_set_and_mi_subsets(rng):
    from ibjax.train import make_trainer

    x, y, x_test, y_test = tiny_mnist(rng)
    data = make_dataset(x.reshape(96, -1) / 255.0, y, x_test.reshape(32, -1) / 255.0, y_test)
    for mi_samples, rows in (("all", 128), ("test", 32), (50, 50)):
        config = ibjax.Config(hidden=(6,), batch_size=32, mi_samples=mi_samples)
        trainer = make_trainer(config, data)
        state = trainer.init(jnp.asarray(0), jnp.asarray(1e-3))
        assert int(state.train_mask.sum()) == 96  # train_fraction None: all of x trains
        layers = trainer.layer_activations(state.params, trainer.device_data(data))
        assert [t.shape for t in layers] == [(6, rows), (10, rows)]
    with pytest.raises(ibjax.ConfigError, match="mi_samples='test' needs"):
        make_trainer(ibjax.Config(mi_samples="test"), ibjax.load_var_u())


def test_run_on_an_npz_file_from_the_command_line(tmp_path, rng):
    from ibjax.cli import main

    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "mine.npz", x=x, y=y, x_test=x[:40] + 0.01, y_test=y[:40])
    out = tmp_path / "run"
    assert main(["run", "--data", str(tmp_path / "mine.npz"), "--seeds", "2", "--epochs", "3",
                 "--hidden", "3", "--snapshots", "0,3", "--batch-size", "50", "--out",
                 str(out), "--quiet", "--no-plots", "--mi-samples", "test"]) == 0
    results = ibjax.load(out / "results.nc")
    config = ibjax.config_of(results)
    assert config.dataset == f"file:{(tmp_path / 'mine.npz').resolve()}"
    assert config.mi_samples == "test"
    assert np.isfinite(results.test_loss.values).all()


def test_wide_layers_count_distinct_rows_exactly(rng):
    """1024 units: rows pack into many radix-sort passes; compare with np.unique."""
    from conftest import numpy_binned_mi

    base = rng.uniform(-1, 1, size=(64, 1024)).astype(np.float32)
    t = base[rng.integers(0, 64, 512)]  # 512 rows, at most 64 distinct
    t[::7, 1000] += 0.5  # some duplicates differ only in one late column
    y = rng.integers(0, 2, 512)
    got = ibjax.mi.mutual_information(t, y, "binning")
    np.testing.assert_allclose(got, numpy_binned_mi(t, y), atol=1e-5)
    got = ibjax.mi.mutual_information(t, y, "equal-mass", num_bins=8)
    assert 0 < float(got[0]) <= np.log2(512) + 1e-5
