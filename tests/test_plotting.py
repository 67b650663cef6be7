from test_results import synthetic

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
