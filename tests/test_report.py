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


def _cli(*args):
    from nmfkit.cli import main
    return main([str(a) for a in args])


def _groups_csv(tmp_path, n_groups=3, per_group=8, genes=24, seed=0):
    """Samples in `n_groups` clear groups, with gene and sample names."""
    from nmfkit.io import write_matrix
    rng = np.random.default_rng(seed)
    W = rng.random((genes, n_groups)) * 0.05
    H = rng.random((n_groups, n_groups * per_group)) * 0.05
    for g in range(n_groups):
        W[g * genes // n_groups:(g + 1) * genes // n_groups, g] += 1.0
        H[g, g * per_group:(g + 1) * per_group] += 1.0
    X = W @ H + 0.01 * rng.random((genes, H.shape[1]))
    return write_matrix(tmp_path / "groups.csv", X, [f"g{i}" for i in range(genes)],
                        [f"s{j}" for j in range(H.shape[1])])


def _files_written(folder):
    import os
    return sorted(e for e in os.listdir(folder) if not e.startswith("."))


def test_untracked_report_says_what_it_plots(tmp_path):
    text = open(nmfkit.fit(X, 3, max_iter=20, seed=0).report(tmp_path / "plain.html"), encoding="utf-8").read()
    assert "Only the objective was recorded" in text
    for internal in ("M-UV", "time steps", "seed 0"):
        assert internal not in text


def test_hals_report_says_how_often_the_extrapolated_step_rises(tmp_path):
    fit = nmfkit.fit(X, 4, tol=0, max_iter=30, seed=0, track=True)
    rises = int(np.sum(fit.history["decrease_V"][1:] < 0))
    assert fit.options["solver"] == "hals" and rises > 0
    text = open(fit.report(tmp_path / "hals.html"), encoding="utf-8").read()
    assert f"negative at {rises} of 30 steps" in text and "Ang &amp; Gillis 2019" in text
    assert "never rises" in text and "No objective increase" in text


def test_consensus_report_shows_the_consensus_the_users_seed_and_runs(tmp_path):
    import csv
    import json
    data = _groups_csv(tmp_path)
    out = tmp_path / "cons"
    assert _cli("fit", data, "--rank", 3, "--consensus", "--runs", 6, "--seed", 1, "--report", "--solver", "mu",
                "--max-iter", 200, "-q", "--out", out) == 0
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>Consensus</h2>" in text and "cophenetic correlation" in text and "dispersion" in text
    assert "<tr><th>seed</th><td>1</td></tr>" in text and "<tr><th>n_runs</th><td>6</td></tr>" in text
    assert text.count("data:image/png;base64,") == 5      # consensus map, objective, top, W, H
    with open(out / "clusters.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    consensus = [int(r["consensus_cluster"]) for r in rows]
    best = [int(r["best_fit_cluster"]) for r in rows]
    assert sorted(set(consensus)) == sorted(set(best)) == [1, 2, 3]         # 1-based, like NMF1..NMF3
    assert consensus == best                    # the planted groups: one partition, numbered one way
    summary = json.loads((out / "summary.json").read_text())
    assert summary["consensus"]["seed"] == 1 and summary["consensus"]["n_runs"] == 6
    assert sorted(summary["files"]) == _files_written(out)


def test_consensus_clusters_are_renumbered_to_match_the_components():
    import dataclasses

    from nmfkit.cli.fit import clusters_numbered_like_components
    H = np.zeros((3, 6))
    H[[2, 2, 0, 0, 1, 1], np.arange(6)] = 1.0       # dominant components 3, 3, 1, 1, 2, 2
    best = nmfkit.fit(np.ones((4, 6)), 3, max_iter=2, seed=0)
    best = dataclasses.replace(best, H=H)
    cons = nmfkit.consensus(np.random.default_rng(0).random((5, 6)), 3, n_runs=2, n_jobs=1, progress=False,
                            max_iter=5)
    cons = dataclasses.replace(cons, best=best, sample_clusters=np.array([0, 0, 1, 1, 2, 2]))
    renumbered = clusters_numbered_like_components(cons)
    assert renumbered.sample_clusters.tolist() == [2, 2, 0, 0, 1, 1]
    assert cons.sample_clusters.tolist() == [0, 0, 1, 1, 2, 2]          # the given result is untouched


def test_fit_summary_lists_every_file_written(tmp_path):
    import json
    out = tmp_path / "fit"
    assert _cli("fit", _groups_csv(tmp_path), "--rank", 2, "--report", "--max-iter", 20, "-q", "--out", out) == 0
    assert sorted(json.loads((out / "summary.json").read_text())["files"]) == _files_written(out)


def test_rank_report_states_the_verdict_and_its_table_fits(tmp_path):
    import html
    import json
    out = tmp_path / "survey"
    assert _cli("rank", _groups_csv(tmp_path), "--ranks", "2-4", "--runs", 4, "--seed", 1, "--jobs", 1,
                "--max-iter", 200, "-q", "--out", out) == 0
    text = (out / "report.html").read_text(encoding="utf-8")
    summary = json.loads((out / "summary.json").read_text())
    verdict = summary["verdict"]
    assert "<h2>Conclusion</h2>" in text and html.escape(verdict["text"]) in text
    assert verdict["text"].startswith(f"Rank {verdict['rank']} (")
    assert text.index("<h2>Conclusion</h2>") < text.index("<h2>Survey</h2>")
    assert '<div class="table"><table><tr><th>data</th><th>rank</th>' in text     # scrolls, never overflows
    survey = text.split("<h2>Survey</h2>", 1)[1].split("</section>", 1)[0]
    assert "objective_mean" not in survey and "0.123456789" not in survey
    assert sorted(summary["files"]) == _files_written(out)


def test_consensus_report_map_shows_the_annotated_classes(tmp_path, monkeypatch):
    import nmfkit.rank.plots as rank_plots
    drawn = []
    original = rank_plots.consensus_heatmap
    monkeypatch.setattr(rank_plots, "consensus_heatmap",
                        lambda res, **kw: drawn.append(kw.get("labels")) or original(res, **kw))
    data = _groups_csv(tmp_path, n_groups=2, per_group=4)
    classes = tmp_path / "classes.csv"
    classes.write_text("sample,type\n" + "".join(f"s{j},{'AB'[j // 4]}\n" for j in range(8)))
    assert _cli("fit", data, "--rank", 2, "--consensus", "--runs", 3, "--report", "--solver", "mu", "--max-iter", 50,
                "--annotations", classes, "-q", "--out", tmp_path / "out") == 0
    assert drawn == [["A"] * 4 + ["B"] * 4] * 2       # consensus.png and the report's Consensus section
