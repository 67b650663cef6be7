import numpy as np
import pytest
from test_results import synthetic

from ibjax.cli import main
from ibjax.plotting import plot_results
from ibjax.results import save


def test_figures_from_the_results_file_alone(tmp_path):
    path = save(synthetic(), tmp_path / "results.nc")
    written = plot_results(path)
    assert sorted(p.name for p in written) == ["accuracy.png", "gradients.png",
                                                "information_plane.png"]
    for figure in written:
        data = figure.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_one_information_plane_panel_per_estimator():
    from ibjax.plotting import information_plane_figure

    figure = information_plane_figure(synthetic(estimators=("binning", "kde-upper")))
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == ["estimator: binning", "estimator: kde-upper"]
    # Seven estimators wrap onto two rows of four (one row was 5,226 pixels wide).
    names = ("binning", "binning-width", "equal-mass", "kde-upper", "kde-lower",
             "matrix-renyi", "knn")
    figure = information_plane_figure(synthetic(estimators=names))
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == [f"estimator: {name}" for name in names]
    width, height = figure.get_size_inches()
    assert width <= 1.0 + 5.6 * 4 and height >= 2 * 5.2


def _all_diverged():
    ds = synthetic()
    for name in ("ixt", "ity", "grad_mean", "grad_std", "train_loss", "test_loss",
                 "train_accuracy", "test_accuracy"):
        ds[name][:] = np.nan
    ds["diverged_epoch"][:] = 0
    return ds


def _flipped_bit():
    ds = synthetic()
    ds["ixt"][0, 2, 0, 1] = 2.46e10  # what a flipped exponent bit makes of a few bits
    return ds


def _holes():
    ds = synthetic()
    for name in ("ixt", "ity", "grad_mean", "grad_std", "train_loss", "test_loss",
                 "train_accuracy", "test_accuracy"):
        ds[name][:, 1] = np.nan  # a snapshot a user's loop never recorded
    return ds


ODD_FILES = {  # kind: (make, figures drawn, what plot says, what info says)
    "never-measured-snapshot": (_holes, 3, "", "no measurement for any network: epochs 1"),
    "all-diverged": (_all_diverged, 3, "", ""),
    "one-snapshot": (lambda: synthetic(num_epochs=1), 3, "", ""),
    "no-gradients": (lambda: synthetic().drop_vars(["grad_mean", "grad_std"]), 2,
                     "gradients.png not drawn", "not in this file: grad_mean, grad_std"),
    "no-losses": (lambda: synthetic().drop_vars(["train_loss", "test_loss", "train_accuracy",
                                                "test_accuracy"]), 2, "accuracy.png not drawn",
                  "not in this file: train_loss"),
    "flipped-bit": (_flipped_bit, 3, "impossible values", "impossible values"),
}


@pytest.mark.parametrize("null", [False, True])
@pytest.mark.parametrize("kind", list(ODD_FILES))
def test_plot_and_info_handle_every_results_file(kind, null, tmp_path, capsys):
    """All seeds diverged, one snapshot, a snapshot never measured, a file from a user's loop
    without gradients or losses, a damaged value, each with and without a null baseline:
    figures are drawn from what is there, what is missing or impossible is said in one line,
    and nothing crashes or warns."""
    make, num_figures, plot_note, info_note = ODD_FILES[kind]
    dataset = make()
    if null:  # the label-shuffle null beside I(T;Y), NaN where I(T;Y) is
        dataset["ity_null"] = dataset["ity"] * 0.5
        num_figures += 1
    path = save(dataset, tmp_path / "results.nc")
    assert main(["plot", str(path)]) == 0
    out, err = capsys.readouterr()
    assert len(out.split()) == num_figures and plot_note in err and "Traceback" not in err
    assert main(["info", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "softmax output" in out and info_note in err + out
    assert ("label-shuffle null" in out) == null
    if kind == "flipped-bit":
        assert "2.46e+10" in err and "2.46e+10" not in out and "24600000000" not in out


def test_impossible_values_are_flagged_not_used():
    from ibjax.results import check_values

    clean, problems = check_values(_flipped_bit())
    assert len(problems) == 1  # var_u: 4096 rows, so I(X;T) <= 12 bits
    assert problems[0].startswith("ixt: 1 of 45 values outside [0, 12]")
    assert np.isnan(clean.ixt.values[0, 2, 0, 1])
    assert np.isfinite(np.delete(clean.ixt.values.ravel(), 2 * 3 + 1)).all()
    assert check_values(synthetic())[1] == []
