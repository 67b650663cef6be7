"""The moving information plane: the animation (decoded frame by frame) and the offline HTML
view (rendered in headless Chromium when it is installed)."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_results import synthetic

from ibjax.cli import main
from ibjax.results import save

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser",
                                                  "google-chrome") if shutil.which(name)), None)


def test_plot_animate_writes_a_decodable_animation(tmp_path, capsys):
    path = save(synthetic(num_seeds=4, estimators=("binning", "kde-upper")),
                tmp_path / "results.nc")
    assert main(["plot", str(path), "--animate", "--format", "gif"]) == 0
    out, err = capsys.readouterr()
    assert "animation written with pillow (a GIF was asked for)" in err
    assert str(tmp_path / "information_plane.gif") in out
    with Image.open(tmp_path / "information_plane.gif") as gif:
        assert gif.n_frames == 5  # one per snapshot
        width, height = gif.size
        assert width > 1.5 * height > 300  # two panels side by side
        first = np.asarray(gif.convert("RGB"))
        gif.seek(4)
        last = np.asarray(gif.convert("RGB"))
    assert (first != last).any()  # the points move
    assert main(["plot", str(path), "--animate", "--frames", "3"]) == 0
    assert "animation written with" in capsys.readouterr().err
    animation = next(tmp_path.glob("information_plane.*[fp4]"))
    if animation.suffix == ".gif":
        with Image.open(animation) as gif:
            assert gif.n_frames == 3


@pytest.mark.parametrize("argv, message", [
    (["--frames", "3"], "--frames goes with --animate"),
    (["--animate", "--frames", "1"], "--frames"),
    (["--animate", "--format", "webm"], "--format"),
])
def test_animation_flags_are_checked(argv, message, tmp_path, capsys):
    path = save(synthetic(), tmp_path / "results.nc")
    try:
        code = main(["plot", str(path), *argv])
    except SystemExit as stop:
        code = stop.code
    assert code == 2 and message in capsys.readouterr().err


def test_run_animate_says_where_every_file_went(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "--seeds", "2", "--hidden", "4,3", "--epochs", "6", "--snapshots",
                 "every:2", "--out", str(out), "--quiet", "--animate"]) == 0
    printed = capsys.readouterr().out
    for name in ("results.nc", "run.json", "information_plane.png", "gradients.png",
                 "accuracy.png", "information_plane."):
        assert str(out / name) in printed, name


def test_view_writes_one_self_contained_html_file(tmp_path, capsys):
    path = save(synthetic(num_seeds=4, estimators=("binning", "kde-upper")),
                tmp_path / "results.nc")
    assert main(["view", str(path)]) == 0
    html_path = tmp_path / "view.html"
    assert capsys.readouterr().out.strip() == str(html_path)
    text = html_path.read_text()
    assert "<script src=" not in text  # no script fetched from anywhere: it works offline
    assert "estimator: kde-upper" in text and "hidden 2" in text
    folder = tmp_path / "views"
    folder.mkdir()
    assert main(["view", str(path), "--out", str(folder)]) == 0  # a folder: view.html in it
    assert capsys.readouterr().out.strip() == str(folder / "view.html")
    assert "estimator: kde-upper" in (folder / "view.html").read_text()
    assert main(["view", str(tmp_path), "--out", str(tmp_path / "new")]) == 0  # run folder in,
    assert (tmp_path / "new" / "view.html").exists()  # a name without .html: a folder made
    capsys.readouterr()
    if CHROMIUM is None:
        pytest.skip("headless rendering needs Chromium (Debian package chromium), not "
                    "installed here; the HTML file itself was checked")
    shot = tmp_path / "shot.png"
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900",
             "--enable-logging=stderr", "--v=0"]
    env = {**os.environ, "HOME": str(tmp_path)}
    rendered = subprocess.run([*flags, f"--screenshot={shot}", html_path.as_uri()], env=env,
                              capture_output=True, text=True, timeout=120, check=False)
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    console = [line for line in rendered.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert (pixels < 200).mean() > 0.01  # axes, points, text: not a blank page
    dom = subprocess.run([*flags, "--dump-dom", html_path.as_uri()], env=env,
                         capture_output=True, text=True, timeout=120, check=False).stdout
    assert dom.count('class="main-svg"') >= 2  # plotly drew both figures
    assert "slider" in dom and "updatemenu" in dom


def test_view_without_plotly_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    from ibjax import view

    monkeypatch.setattr(view, "plotly_missing", lambda: "ibjax view needs plotly (test)")
    path = save(synthetic(), tmp_path / "results.nc")
    assert main(["view", str(path)]) == 2
    assert "ibjax view needs plotly (test)" in capsys.readouterr().err
    assert not Path(tmp_path / "view.html").exists()
