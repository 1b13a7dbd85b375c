"""HTML reports: self-contained (inline images, no network), escaped, and rendered by a real browser."""
import base64
import re
import shutil
import subprocess

import numpy as np
import pytest

import nmfkit
from nmfkit import report

pytest.importorskip("matplotlib")
X = np.random.default_rng(0).random((64, 30))


@pytest.fixture(scope="module")
def fit_result():
    return nmfkit.fit(X, 6, solver="mu", tol=0, max_iter=60, seed=0, track=True)


def test_write_html_is_self_contained(tmp_path):
    from nmfkit import plots
    fig = plots.heatmap(np.eye(4))
    path = report.write_html(tmp_path / "r.html", "A <title>", [
        ("Figure", fig), ("Table", {"a": 1.23456789, "b": "x<y"}),
        ("Rows", [{"run": 0, "loss": 1.0}, {"run": 1, "seconds": 2.0}]), ("Raw", report.Html("<em>ok</em>"))])
    text = open(path, encoding="utf-8").read()
    assert "A &lt;title&gt;" in text and "x&lt;y" in text and "<em>ok</em>" in text
    assert "1.23457" in text and "<th>seconds</th>" in text
    png = re.search(r'src="data:image/png;base64,([^"]+)"', text).group(1)
    assert base64.b64decode(png)[:4] == b"\x89PNG"
    assert not re.search(r'(src|href)="(https?:)?//', text)     # nothing fetched from a network
    with pytest.raises(TypeError, match="cannot put"):
        report.write_html(tmp_path / "bad.html", "t", [("x", object())])


def test_factorization_report_sections(tmp_path, fit_result):
    path = fit_result.report(tmp_path / "fit.html", image_shape=(8, 8))
    text = open(path, encoding="utf-8").read()
    for heading in ("Summary", "Parameters", "Monotonicity", "Convergence", "Factors"):
        assert f"<h2>{heading}</h2>" in text
    assert text.count("data:image/png;base64,") == 7   # 3 convergence + basis images, top, 2 heatmaps
    assert "No objective increase" in text
    untracked = nmfkit.fit(X, 3, max_iter=20, seed=0)
    text = open(untracked.report(tmp_path / "plain.html"), encoding="utf-8").read()
    assert text.count("data:image/png;base64,") == 4


def test_report_shows_monotonicity_violations(tmp_path, fit_result):
    import dataclasses
    bad = dataclasses.replace(fit_result, monotonicity=[(7, 0.25)])
    text = open(bad.report(tmp_path / "bad.html"), encoding="utf-8").read()
    assert 'class="warn"' in text and "<td>7</td><td>0.25</td>" in text


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium): "
                                             "the report was not rendered in a browser")
def test_report_renders_in_headless_chromium(tmp_path, fit_result):
    page = fit_result.report(tmp_path / "fit.html", image_shape=(8, 8))
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1100,2400", f"file://{page}"],
                   capture_output=True, timeout=120, check=False)
    assert shot.exists() and shot.read_bytes()[:4] == b"\x89PNG"
    from matplotlib.image import imread
    pixels = imread(str(shot))
    assert pixels.shape[0] >= 2000 and pixels[..., :3].std() > 0.05    # not a blank page
