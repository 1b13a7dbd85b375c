"""Rank survey, randomised baseline, Hoyer sparseness, feature scores and the figures.

The `r` test compares `feature_score`/`select_features` with R NMF's
`featureScore`/`extractFeatures` (method "kim"); it skips without R.
"""
import io
import shutil
import subprocess

import numpy as np
import pytest
import scipy.sparse as sp
from _planted import clustered as planted

import nmfkit
from nmfkit.rank.cross_validation import CrossValidation
from nmfkit.rank.estimate import hoyer_sparseness, parse_ranks, randomize
from nmfkit.rank.features import feature_score, select_features, top_features
from nmfkit.rank.plots import consensus_heatmap, cv_plot, survey_plot


@pytest.fixture(scope="module")
def survey():
    X, _ = planted()
    return nmfkit.estimate_rank(X, range(2, 5), n_runs=5, seed=0, n_jobs=1, progress=False, max_iter=300)


def test_survey_table(survey):
    assert survey.ranks == [2, 3, 4]
    assert [r["rank"] for r in survey.rows] == [2, 3, 4]
    rows = {r["rank"]: r for r in survey.rows}
    assert rows[3]["cophenetic"] == pytest.approx(1.0, abs=1e-9)
    assert rows[3]["evar"] > 0.99 > rows[2]["evar"]
    for r in survey.rows + survey.random_rows:
        assert r["rss"] >= 0 and r["evar"] <= 1 and 0 <= r["dispersion"] <= 1
        assert r["objective_min"] <= r["objective_mean"] and r["seconds"] > 0
        assert 0 <= r["sparseness_W"] <= 1 and 0 <= r["sparseness_H"] <= 1
    # structure beats chance: the real data is explained far better than its randomisation
    assert np.all(survey.column("evar") > survey.column("evar", random=True) + 0.2)
    assert survey.best_rank("cophenetic") in (2, 3, 4)
    assert set(survey.consensus) == {2, 3, 4} and set(survey.random_consensus) == {2, 3, 4}


def test_survey_rss_matches_best_fit(survey):
    X, _ = planted()
    best = survey.consensus[3].best
    assert survey.rows[1]["rss"] == pytest.approx(np.sum((X - best.W @ best.H) ** 2), rel=1e-9)


def test_survey_exports(survey, tmp_path):
    frame = survey.to_frame()
    assert len(frame) == 6
    assert list(frame["data"]) == ["real"] * 3 + ["random"] * 3
    path = survey.to_csv(tmp_path / "survey.csv")
    lines = open(path).read().splitlines()
    assert lines[0].startswith("data,rank,cophenetic") and len(lines) == 7
    assert "cophenetic" in repr(survey)


def test_survey_without_randomisation_on_sparse_data():
    X, _ = planted(noise=0.0)
    s = nmfkit.estimate_rank(sp.csr_matrix(X), [2, 3], n_runs=3, seed=1, n_jobs=1, progress=False,
                             randomized=False, max_iter=60)
    assert s.random_rows is None and len(s.to_frame()) == 2
    with pytest.raises(ValueError, match="randomised"):
        s.column("evar", random=True)


def test_parse_ranks_errors():
    assert parse_ranks(range(4, 1, -1), (10, 10)) == [2, 3, 4]
    assert parse_ranks(3, (10, 10)) == [3]
    with pytest.raises(ValueError, match="1…5"):
        parse_ranks([2, 9], (5, 10))
    with pytest.raises(TypeError, match="integers"):
        parse_ranks(["a"], (5, 10))
    with pytest.raises(ValueError):
        parse_ranks([], (5, 10))


def test_randomize_permutes_within_columns():
    X, _ = planted()
    R = randomize(X, seed=3)
    assert np.array_equal(np.sort(R, axis=0), np.sort(X, axis=0))
    assert not np.array_equal(R, X)
    assert np.array_equal(R, randomize(X, seed=3))
    S = sp.random(50, 20, density=0.2, random_state=1, format="csr")
    RS = randomize(S, seed=4)
    assert sp.issparse(RS) and RS.nnz == S.nnz
    assert np.array_equal(np.sort(RS.toarray(), axis=0), np.sort(S.toarray(), axis=0))


def test_hoyer_sparseness():
    assert hoyer_sparseness(np.eye(4)) == pytest.approx(1.0)
    assert hoyer_sparseness(np.ones((5, 3))) == pytest.approx(0.0)
    x = np.array([[3.0], [1.0], [0.0], [2.0]])
    expected = (2.0 - 6.0 / np.sqrt(14.0)) / (2.0 - 1.0)
    assert hoyer_sparseness(x) == pytest.approx(expected)


# -- features ------------------------------------------------------------------------------------
def test_feature_score_extremes_and_top_features():
    W = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 5.0, 0.0], [0.2, 0.1, 3.0]])
    s = feature_score(W)
    assert s[0] == pytest.approx(1.0) and s[1] == pytest.approx(0.0) and s[2] == pytest.approx(1.0)
    assert np.array_equal(feature_score(W, "max"), [1.0, 1.0, 5.0, 3.0])
    top = top_features(W, names=["a", "b", "c", "d"], n=2)
    assert [t[0] for t in top[1]] == ["c", "b"] and top[2][0] == ("d", 3.0)
    assert top_features(W, n=1)[0] == [(0, 1.0)]               # ties by index, labels default to indices
    with pytest.raises(ValueError, match="names"):
        top_features(W, names=["a"])


def test_top_features_of_a_factorization_use_row_names():
    X, _ = planted()
    f = nmfkit.fit(X, 3, seed=0)
    f.row_names = [f"g{i}" for i in range(X.shape[0])]
    top = top_features(f, n=5)
    assert len(top) == 3 and all(len(t) == 5 for t in top)
    assert all(name.startswith("g") for comp in top for name, _ in comp)
    assert all(t[0][1] == pytest.approx(f.W[:, q].max()) for q, t in enumerate(top))


@pytest.mark.r
def test_feature_selection_agrees_with_r_nmf(tmp_path):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not found: install R (r-base-core) to compare with R NMF")
    rng = np.random.default_rng(11)
    W = rng.random((200, 4)) ** 3 + 1e-3
    W[:20] *= np.eye(4)[rng.integers(0, 4, 20)] * 50 + 0.01   # a few specific features
    np.savetxt(tmp_path / "W.csv", W, fmt="%.17g", delimiter=",")
    script = f"""suppressMessages(library(NMF)); W <- as.matrix(read.csv("{tmp_path}/W.csv", header=FALSE))
    dimnames(W) <- NULL
    cat(sprintf("%.17g", featureScore(W)), "\\n")
    f <- extractFeatures(W)
    for (q in seq_along(f)) cat(if (all(is.na(f[[q]]))) "" else f[[q]] - 1, "\\n")"""
    out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, timeout=60)
    if out.returncode != 0 and "NMF" in out.stderr:
        pytest.skip("R package NMF not installed (apt-get install r-cran-nmf)")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert np.allclose(feature_score(W), np.array(lines[0].split(), dtype=float), atol=1e-12)
    selected, _ = select_features(W)
    for q in range(4):
        assert selected[q] == [int(v) for v in lines[1 + q].split()]


# -- figures -------------------------------------------------------------------------------------
def _renders(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.tell() > 1000


def test_figures_render(survey):
    assert _renders(survey_plot(survey))
    res = survey.consensus[3]
    assert _renders(consensus_heatmap(res, labels=np.array(["a", "b", "c"] * 10)))
    with pytest.raises(ValueError, match="labels"):
        consensus_heatmap(res, labels=["a"])
    cv = CrossValidation(ranks=[1, 2, 3], errors=np.array([[3.0, 3.2], [1.0, 1.1], [1.2, 1.3]]), rule="min",
                         best_rank=2, loss="frobenius", seconds=0.1)
    assert _renders(cv_plot(cv))


# -- command line --------------------------------------------------------------------------------
def test_rank_command_writes_table_figures_and_report(tmp_path):
    cli = pytest.importorskip("nmfkit.cli")
    from nmfkit.cli.rank import parse_rank_list
    assert parse_rank_list("2-4,7") == [2, 3, 4, 7]
    with pytest.raises(ValueError, match="ranks"):
        parse_rank_list("5-2")
    X, _ = planted(m=30, n=12)
    path = tmp_path / "x.csv"
    np.savetxt(path, X, delimiter=",")
    out = tmp_path / "out"
    status = cli.main(["rank", str(path), "--ranks", "2-3", "--runs", "3", "--jobs", "1", "--seed", "1",
                       "--max-iter", "100", "--out", str(out), "-q"])
    assert status == 0
    names = {p.name for p in out.iterdir()}
    assert {"survey.csv", "survey.png", "consensus_k2.csv", "consensus_k3.png", "clusters.csv", "summary.json",
            "report.html"} <= names
    assert len(open(out / "survey.csv").read().splitlines()) == 5          # header + 2 real + 2 random
    assert cli.main(["rank", str(path), "--ranks", "x", "--out", str(out)]) == 2


# -- the verdict ------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_verdict_names_the_planted_rank_over_seeds_and_noise(k):
    for noise in (0.05, 0.3):
        for seed in (0, 1):
            X, _ = planted(m=40, n=30, k=k, noise=noise, seed=seed)
            survey = nmfkit.estimate_rank(X, range(max(2, k - 1), k + 3), n_runs=5, solver="hals", loss="frobenius",
                                          seed=seed, n_jobs=1, progress=False)
            verdict = survey.verdict()
            assert verdict.rank == k, (noise, seed, verdict.text)
            assert verdict.confidence in ("high", "moderate")
            assert verdict.text.startswith(f"Rank {k} (")
            assert {v.measure for v in verdict.votes} == {"fit vs random", "RSS bend", "cophenetic", "dispersion"}


def test_verdict_is_not_fooled_by_a_flat_cophenetic_curve():
    # three groups, KL as the CLI's default: cophenetic is 1.0 at ranks 2-4, so the
    # "largest drop" rule alone picks rank 2 or 4; the randomised baseline supports 3
    X, _ = planted(m=40, n=30, k=3, noise=0.01, seed=0)
    survey = nmfkit.estimate_rank(X, range(2, 6), n_runs=5, seed=0, n_jobs=1, progress=False, max_iter=300)
    verdict = survey.verdict()
    assert verdict.rank == 3, verdict.text
    votes = {v.measure: v for v in verdict.votes}
    assert votes["fit vs random"].rank == 3
    if votes["cophenetic"].rank is None:
        assert "singles out no rank" in votes["cophenetic"].reason
    elif votes["cophenetic"].rank != 3:
        assert "The measures disagree: cophenetic points to rank" in verdict.text
        assert verdict.confidence != "high"


def _fake_survey(ranks, rss, random_rss, cophenetic, dispersion):
    rows = [{"rank": k, "rss": r, "cophenetic": c, "dispersion": d}
            for k, r, c, d in zip(ranks, rss, cophenetic, dispersion)]
    random_rows = None if random_rss is None else [{"rank": k, "rss": r, "cophenetic": 0.8, "dispersion": 0.5}
                                                    for k, r in zip(ranks, random_rss)]
    return nmfkit.rank.RankSurvey(ranks=list(ranks), rows=rows, random_rows=random_rows)


def test_verdict_says_when_measures_disagree_and_how_sure_it_is():
    agree = _fake_survey([2, 3, 4, 5], [100, 10, 9.5, 9.0], [50, 40, 31, 23], [0.99, 1.0, 0.90, 0.85],
                         [0.6, 1.0, 0.8, 0.7]).verdict()
    assert (agree.rank, agree.confidence, agree.agree) == (3, "high", True)
    assert "disagree" not in agree.text
    split = _fake_survey([2, 3, 4, 5], [100, 10, 9.5, 9.0], [50, 40, 31, 23], [1.0, 1.0, 1.0, 0.9],
                         [1.0, 0.9, 0.8, 0.7]).verdict()
    assert split.rank == 3 and split.confidence == "moderate" and not split.agree
    assert "The measures disagree: cophenetic points to rank 4; dispersion points to rank 2." in split.text
    edge = _fake_survey([2, 3, 4], [100, 60, 30], [50, 45, 40], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]).verdict()
    assert edge.confidence == "low" and "Survey larger ranks" in edge.text


def test_verdict_with_cross_validation_and_without_baseline():
    survey = _fake_survey([2, 3, 4, 5], [100, 10, 9.5, 9.0], None, [1.0, 1.0, 1.0, 1.0], [0.6, 1.0, 0.99, 0.99])
    cv = CrossValidation(ranks=[2, 3, 4, 5], errors=np.ones((4, 3)), rule="min", best_rank=3, loss="frobenius",
                         seconds=1.0)
    verdict = survey.verdict(cv)
    assert verdict.rank == 3 and verdict.confidence == "high", verdict.text
    assert {v.measure: v.rank for v in verdict.votes} == {"cross-validation": 3, "RSS bend": 3, "cophenetic": None,
                                                         "dispersion": 3}
    assert "chance baseline is missing" in verdict.text


def test_cli_rank_prints_the_verdict(tmp_path, capsys):
    from nmfkit.cli import main
    X, _ = planted(m=40, n=30, k=3, noise=0.05, seed=0)
    np.savetxt(tmp_path / "groups.csv", X, delimiter=",")
    code = main(["rank", str(tmp_path / "groups.csv"), "--ranks", "2-5", "--runs", "5", "--seed", "0", "--jobs", "1",
                 "--solver", "hals", "--loss", "frobenius", "--out", str(tmp_path / "survey")])
    out = capsys.readouterr().out
    assert code == 0
    assert "Rank 3 (" in out and "Frigyesi & Höglund 2008" in out
    assert "cophenetic drop suggests" not in out
