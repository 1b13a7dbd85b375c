"""The R skin (nmfkit.r_api): method/seed mapping, accessors, and agreement with R NMF.

Tests marked `r` run R NMF on the same model and skip, saying why, when
Rscript or the NMF package is missing.
"""
import json
import shutil
import subprocess

import numpy as np
import pytest

import nmfkit
from nmfkit import r_api as R


@pytest.fixture(scope="module")
def V():
    return R.rmatrix(12, 9, seed=3) + 0.05


#: parameters R requires (or that make the method meaningful) for each R method
METHOD_ARGS = {"pe-nmf": {"alpha": 0.1, "beta": 0.05}, "siNMF": {"groups": ["a", "b", "c"] * 3},
               "ls-nmf": {"weight": 2.0}}


def test_methods_map_to_solvers_and_losses(V):
    assert list(R.METHODS) == ["brunet", "KL", "lee", "Frobenius", "offset", "nsNMF", "ls-nmf", "pe-nmf",
                               "siNMF", "snmf/r", "snmf/l"]        # R 0.25's nmfAlgorithm()
    for method, (solver, loss) in R.METHODS.items():
        fit = R.nmf(V, 2, method=method, seed=1, max_iter=50, **METHOD_ARGS.get(method, {}))
        assert fit.fit.options["solver"] == solver and fit.fit.options["loss"] == loss
        extra = 3 if method == "siNMF" else 0       # siNMF keeps its group components, as R
        assert R.basis(fit).shape == (12, 2 + extra) and R.coef(fit).shape == (2 + extra, 9)
        assert np.all(np.isfinite(R.fitted(fit)))
    hals = R.nmf(V, 2, method="hals", seed=1)
    assert hals.fit.options["solver"] == "hals"
    with pytest.raises(ValueError, match="choose one of") as err:
        R.nmf(V, 2, method="nope")
    listed = str(err.value).split("choose one of: ")[1].split(", ")
    assert len(listed) == len(set(listed)) and {"brunet", "lee", "snmf/r", "pe-nmf"} <= set(listed)


def test_method_parameters_reach_the_solvers(V):
    with pytest.raises(ValueError, match="'pe-nmf' needs alpha= and beta="):
        R.nmf(V, 2, "pe-nmf", seed=1)
    with pytest.raises(ValueError, match="'siNMF' needs groups="):
        R.nmf(V, 2, "siNMF", seed=1)
    pe = R.nmf(V, 2, "pe-nmf", seed=1, alpha=0.3, beta=0.2, **{".stop": 5})
    assert pe.fit.options["alpha"] == 0.3 and pe.fit.options["sparsity"] == 0.2 and pe.niter == 5
    ns = R.nmf(V, 2, "nsNMF", seed=1, theta=0.3, max_iter=20)
    assert ns.theta == 0.3
    np.testing.assert_allclose(R.fitted(ns), R.basis(ns) @ R.smoothing(ns) @ R.coef(ns))
    np.testing.assert_allclose(R.smoothing(ns), 0.7 * np.eye(2) + 0.15)
    off = R.nmf(V, 2, "offset", seed=1, max_iter=20)
    assert R.offset(off).shape == (12,) and R.offset(off).min() > 0
    np.testing.assert_allclose(R.fitted(off), R.basis(off) @ R.coef(off) + R.offset(off)[:, None])
    assert R.rss(off, V) == pytest.approx(2 * R.residuals(off), rel=1e-8)
    with pytest.raises(ValueError, match="no offset"):
        R.offset(ns)
    l_fit = R.nmf(V, 2, "snmf/l", seed=1, eta=0.5, beta=0.02, maxIter=30)
    assert l_fit.fit.options["version"] == "l" and l_fit.fit.options["sparsity"] == 0.02
    assert l_fit.fit.options["tol"] == 0.0 and l_fit.niter <= 30        # Kim & Park's own stop
    si = R.nmf(V, 2, "siNMF", seed=1, groups=np.repeat([1, 2, 3], 3), max_iter=10)
    np.testing.assert_array_equal(R.coef(si)[2:], np.repeat(np.eye(3), 3, axis=1))


def test_seed_forms(V):
    a, b = R.nmf(V, 2, "lee", seed=7, max_iter=30, tol=0), R.nmf(V, 2, "lee", seed=7, max_iter=30, tol=0)
    np.testing.assert_array_equal(R.basis(a), R.basis(b))          # integer seed → reproducible
    d = R.nmf(V, 2, "Frobenius", seed="nndsvd", max_iter=30)
    assert d.fit.options["init"] == "nndsvd"
    model = R.nmfModel(2, V, seed=0)
    g = R.nmf(V, 2, "KL", seed=model, max_iter=1, tol=0)
    assert g.fit.options["init"] == "given"
    g2 = R.nmf(V, 2, "KL", seed=(model.W, model.H), max_iter=1, tol=0)
    np.testing.assert_allclose(R.coef(g), R.coef(g2))
    with pytest.raises(ValueError, match="seed method"):
        R.nmf(V, 2, seed="nope")
    # R's seed="none": the model passed as rank (or seed) is the start, as given
    n = R.nmf(V, model, "KL", seed="none", max_iter=1, tol=0)
    assert n.rank == 2 and n.fit.options["init"] == "given"
    np.testing.assert_allclose(R.coef(n), R.coef(g))
    with pytest.raises(ValueError, match="seed='none' uses the start as given"):
        R.nmf(V, 2, seed="none")
    with pytest.raises(TypeError, match="seed must be"):
        R.nmf(V, 2, seed=1.5)


def test_nrun_keeps_best_and_r_option_names(V):
    fit = R.nmf(V, 2, "brunet", seed=5, nrun=3, maxIter=40)
    assert len(fit.runs) == 3 and fit.fit.options["max_iter"] == 40
    assert R.residuals(fit) == pytest.approx(min(r["loss"] for r in fit.runs))


def test_rss_evar_residuals_fitted(V):
    fit = R.nmf(V, 3, "lee", seed=2, max_iter=200)
    D = V - R.basis(fit) @ R.coef(fit)
    assert R.rss(fit, V) == pytest.approx(float((D ** 2).sum()), rel=1e-12)
    assert R.evar(fit, V) == pytest.approx(1 - (D ** 2).sum() / (V ** 2).sum(), rel=1e-12)
    # lee's objective is ½‖V − WH‖² at the returned factors
    assert R.residuals(fit) == pytest.approx(0.5 * R.rss(fit, V), rel=1e-8)
    np.testing.assert_allclose(R.fitted(fit), R.basis(fit) @ R.coef(fit))
    with pytest.raises(ValueError, match="shape"):
        R.rss(fit, V[:5])


def test_sparseness_extremes():
    assert R.sparseness(np.array([0.0, 0, 3, 0])) == pytest.approx(1.0)
    assert R.sparseness(np.ones(5)) == pytest.approx(0.0)
    s = R.sparseness(R.nmfModel(W=np.eye(3), H=np.ones((3, 4))))
    assert s == {"basis": pytest.approx(1.0), "coef": pytest.approx(0.0)}


def test_predict_and_extract():
    W = np.array([[5, 0.1], [4, 0.2], [0.1, 3], [1, 1.1]])
    H = np.array([[1, 0, 2], [0, 1, 1]])
    model = R.nmfModel(W=W, H=H)
    np.testing.assert_array_equal(R.predict(model), [0, 1, 0])
    np.testing.assert_array_equal(R.predict(model, "features"), [0, 0, 1, 1])
    lab, p = R.predict(model, prob=True)
    np.testing.assert_allclose(p, [1, 1, 2 / 3])
    assert [x.tolist() for x in R.extractFeatures(model, 1)] == [[0], [2]]
    assert [x.tolist() for x in R.extractFeatures(model, "max")] == [[0, 1], [2, 3]]
    assert R.extractFeatures(model, 0.5, format="combine").tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(R.extractFeatures(model, 1, format="subset"), W[[0, 2]])
    with pytest.raises(ValueError, match="method must be"):
        R.extractFeatures(model, -1)


def test_rmatrix_randomize_nmfmodel():
    A = R.rmatrix(4, 3, seed=0)
    assert A.shape == (4, 3) and (A >= 0).all() and (A < 1).all()
    assert R.rmatrix(3).shape == (3, 3)
    model = R.nmfModel(W=np.ones((4, 2)), H=np.ones((2, 3)))
    noisy = R.rmatrix(model, seed=1)
    assert noisy.shape == (4, 3) and (noisy >= 2).all()
    P = R.randomize(A, seed=1)
    np.testing.assert_allclose(np.sort(P, axis=0), np.sort(A, axis=0))     # within-column permutation
    with pytest.raises(ValueError, match="share a rank"):
        R.nmfModel(W=np.ones((4, 2)), H=np.ones((3, 3)))
    with pytest.raises(TypeError, match="expected an NMF model"):
        R.basis(np.ones(3))


def _r_available():
    if shutil.which("Rscript") is None:
        return "Rscript not found"
    ok = subprocess.run(["Rscript", "-e", "quit(status = !requireNamespace('NMF', quietly = TRUE))"],
                        capture_output=True)
    return None if ok.returncode == 0 else "R package NMF not installed"


R_CODE = r"""
suppressMessages(library(NMF))
W <- as.matrix(read.csv("W.csv", header = FALSE)); H <- as.matrix(read.csv("H.csv", header = FALSE))
V <- as.matrix(read.csv("V.csv", header = FALSE))
dimnames(W) <- NULL; dimnames(H) <- NULL; dimnames(V) <- NULL
m <- nmfModel(W = W, H = H)
ef <- extractFeatures(m)
mx <- extractFeatures(m, method = "max")
num <- extractFeatures(m, 3L)
fr <- extractFeatures(m, 0.6)
clean <- function(l) lapply(l, function(i) if (all(is.na(i))) integer(0) else as.integer(i) - 1L)
out <- list(score = featureScore(m), score_max = featureScore(m, method = "max"),
            threshold = median(featureScore(m)) + 3 * mad(featureScore(m)), kim = clean(ef), max = clean(mx),
            top3 = clean(num),
            frac = clean(fr), sparseness = as.list(sparseness(m)), evar = evar(m, V), rss = rss(m, V),
            predict = as.integer(predict(m)) - 1L, predict_features = as.integer(predict(m, "features")) - 1L)
cat(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE))
"""


@pytest.mark.r
def test_accessors_match_R(tmp_path):
    why = _r_available()
    if why:
        pytest.skip(why)
    rng = np.random.default_rng(11)
    W = 1 + 0.3 * rng.random((60, 4))            # positive (R's featureScore is NaN at zeros), unspecific
    W[np.arange(9), np.arange(9) % 4] += 5 + rng.random(9)   # a few specific features, for "kim" to select
    H = rng.random((4, 15))
    V = W @ H + rng.random((60, 15))
    for name, A in (("W", W), ("H", H), ("V", V)):
        np.savetxt(tmp_path / f"{name}.csv", A, delimiter=",", fmt="%.17g")
    (tmp_path / "run.R").write_text(R_CODE)
    proc = subprocess.run(["Rscript", "run.R"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 and "jsonlite" in proc.stderr:
        pytest.skip("R package jsonlite not installed")
    assert proc.returncode == 0, proc.stderr
    ref = json.loads(proc.stdout)
    model = R.nmfModel(W=W, H=H)
    np.testing.assert_allclose(R.featureScore(model), ref["score"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(R.featureScore(model, "max"), ref["score_max"], rtol=0, atol=1e-10)
    assert nmfkit.select_features(W)[1] == pytest.approx(ref["threshold"], abs=1e-10)
    for key, method in (("kim", "kim"), ("max", "max"), ("top3", 3), ("frac", 0.6)):
        got = [x.tolist() for x in R.extractFeatures(model, method)]
        want = [list(np.atleast_1d(x)) for x in ref[key]]
        assert got == want, key
    assert any(len(x) for x in ref["kim"])            # the comparison is not vacuous
    s = R.sparseness(model)
    assert s["basis"] == pytest.approx(ref["sparseness"]["basis"], abs=1e-10)
    assert s["coef"] == pytest.approx(ref["sparseness"]["coef"], abs=1e-10)
    assert R.evar(model, V) == pytest.approx(ref["evar"], abs=1e-10)
    assert R.rss(model, V) == pytest.approx(ref["rss"], rel=1e-10)
    assert R.predict(model).tolist() == ref["predict"]
    assert R.predict(model, "features").tolist() == ref["predict_features"]


def test_ica_seed_is_fastica_floored_at_eps(V):
    pytest.importorskip("sklearn")
    import warnings

    from sklearn.decomposition import FastICA
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # FastICA may not converge on 12×9 data; the seed is still defined
        fit = R.nmf(V, 2, "lee", seed="ica", max_iter=1, tol=0, ica_seed=4)
        ica = FastICA(n_components=2, whiten="unit-variance", random_state=4, max_iter=1000)
        S = ica.fit_transform(V)
    eps = np.finfo(float).eps
    W0, H0 = np.maximum(S, eps), np.maximum(ica.mixing_.T, eps)
    one = R.nmf(V, 2, "lee", seed=(W0, H0), max_iter=1, tol=0)
    np.testing.assert_allclose(R.basis(fit), R.basis(one), rtol=1e-12)


def test_options_string(V, capsys):
    fit = R.nmf(V, 2, "lee", seed=1, max_iter=3, tol=0, **{".options": "vt"})
    assert "3/3 iterations" in capsys.readouterr().err              # "v": progress lines
    assert set(fit.fit.history) > {"iteration", "seconds", "objective"}   # "t": tracked diagnostics
    quiet = R.nmf(V, 2, "lee", seed=1, max_iter=3, tol=0, **{".options": "-vt"})
    assert capsys.readouterr().err == "" and set(quiet.fit.history) > {"iteration", "objective"}
    with pytest.raises(ValueError, match="unknown letter 'z' in .options='vz'; known: v .verbose."):
        R.nmf(V, 2, seed=1, **{".options": "vz"})


def test_rank_survey_is_r_nmf_rank(V):
    est = R.nmf(V, range(2, 4), "brunet", nrun=3, seed=1, maxIter=60)
    assert isinstance(est, R.NMFrank) and est.ranks == [2, 3]
    cols = ["rank", "sparseness.basis", "sparseness.coef", "rss", "evar", "silhouette.coef", "silhouette.basis",
            "residuals", "niter", "cpu", "nrun", "cophenetic", "dispersion", "silhouette.consensus"]
    for m, k in zip(est.measures, (2, 3)):
        assert list(m) == cols and m["rank"] == k
        best = est.fit[k]
        assert m["rss"] == pytest.approx(R.rss(best, V), rel=1e-8)
        assert m["evar"] == pytest.approx(R.evar(best, V), rel=1e-8)
        assert m["residuals"] == pytest.approx(R.residuals(best), rel=1e-12)
        assert m["cophenetic"] == pytest.approx(R.cophcor(best), rel=1e-12)
        assert m["dispersion"] == pytest.approx(R.dispersion(best), rel=1e-12)
        assert m["sparseness.basis"] == pytest.approx(R.sparseness(best)["basis"], rel=1e-12)
        assert est.consensus[k].shape == (9, 9) and len(best.runs) == 3
        single = R.summary(best, target=V)
        for name in ("silhouette.coef", "silhouette.basis", "cophenetic", "rss", "silhouette.consensus"):
            assert m[name] == pytest.approx(single[name], rel=1e-12, nan_ok=True)
    assert R.cophcor(est) == {m["rank"]: m["cophenetic"] for m in est.measures}
    assert R.nmfEstimateRank(V, range(2, 4), nrun=3, seed=1, maxIter=60).measures[0]["rss"] == est.measures[0]["rss"]
    pytest.importorskip("matplotlib")
    assert len(est.plot().axes) == 6
    rand = R.nmf(R.randomize(V, seed=2), range(2, 4), nrun=3, seed=1, maxIter=60)
    assert len(est.plot(rand).axes[0].lines) == 2               # data and randomised data overlaid
    figs = R.consensusmap(est, annCol=["a", "b", "c"] * 3)
    assert set(figs) == {2, 3}
    with pytest.raises(ValueError, match="not offered"):
        R.nmf(V, [2, 3], "offset", nrun=2)
    with pytest.raises(TypeError, match="rank must be an integer, a range/list"):
        R.nmf(V, "3")


def test_purity_entropy_match_r_definitions():
    clusters = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    classes = np.array(["a", "a", "b", "b", "b", "b", "c", "a"])
    # table: cluster 0 = (a2, b1), 1 = (b3), 2 = (a1, c1)
    assert R.purity(clusters, classes) == pytest.approx((2 + 3 + 1) / 8)
    want = -(2 * np.log2(2 / 3) + np.log2(1 / 3) + 0 + 2 * np.log2(1 / 2)) / (8 * np.log2(3))
    assert R.entropy(clusters, classes) == pytest.approx(want)
    assert R.purity(classes, classes) == 1.0 and R.entropy(classes, classes) == 0.0
    model = R.nmfModel(W=np.ones((3, 2)), H=np.array([[1.0, 0, 2], [0, 1, 1]]))
    assert R.purity(model, ["x", "y", "x"]) == 1.0           # via predict(model) = [0, 1, 0]
    with pytest.raises(ValueError, match="got 2 classes for 3 samples"):
        R.purity(model, ["x", "y"])


def test_model_helpers():
    A = np.array([[1.0, 2, 0], [3, 0, 0], [0, 1, 4]])
    m1 = R.nmfModel(W=A, H=A.T)
    m2 = R.nmfModel(W=A.copy(), H=A.T * (1 + 1e-12))
    assert R.nmf_equal(m1, m1) and not R.nmf_equal(m1, m2) and R.nmf_equal(m1, m2, identical=False)
    assert getattr(R, "nmf.equal") is R.nmf_equal
    np.testing.assert_allclose(R.scoef(m1), A.T / A.T.sum(axis=0))
    np.testing.assert_allclose(R.scoef(m1, scale=2).sum(axis=0), 2.0)
    np.testing.assert_allclose(R.basiscor(m1), np.corrcoef(A.T))
    np.testing.assert_allclose(R.profcor(m1, m2), np.corrcoef(A.T, A.T)[:3, 3:], rtol=1e-9, atol=1e-12)
    r = R.rnmf(3, A * 5, seed=0)
    assert r.W.shape == (3, 3) and r.H.shape == (3, 3) and r.W.max() <= 20 and r.W.min() >= 0
    V, W, H, off, sample_group, feature_group = R.syntheticNMF(30, [4, 5, 6], None, noise=False, factors=True,
                                                              seed=3)
    assert V.shape == (30, 15) and off is None
    np.testing.assert_allclose(V, W @ H)
    np.testing.assert_array_equal(H.sum(axis=0), 1.0)
    np.testing.assert_array_equal(sample_group, np.repeat([0, 1, 2], [4, 5, 6]))
    assert np.all((W > 0).sum(axis=1) == 1)                   # each feature in one block
    noisy = R.syntheticNMF(20, 2, 10, offset=0.5, seed=1)
    assert noisy.shape == (20, 10) and noisy.min() >= 0
    pytest.importorskip("matplotlib")
    fit = R.nmfModel(W=np.abs(np.random.default_rng(0).random((10, 2))), H=np.random.default_rng(1).random((2, 4)))
    assert len(R.basismap(fit).axes) == 4                  # dendrogram, "basis" bar, heatmap, colour bar
    assert len(R.coefmap(fit, annCol=list("abab")).axes) == 5   # dendrogram, "basis" and "class" bars, …
    heat = R.coefmap(fit).axes[2].images[0].get_array()
    np.testing.assert_allclose(np.sort(heat.sum(axis=0)), 1.0)      # R's "c1": columns sum to 1
    with pytest.raises(ValueError, match="annCol has 3 entries for 4 samples"):
        R.coefmap(fit, annCol=list("abc"))
    with pytest.raises(ValueError, match="consensusmap needs an nmf.. result with nrun > 1"):
        R.consensusmap(fit)


R_SURVEY_CODE = r"""
suppressMessages(library(NMF))
C <- as.matrix(read.csv("C.csv", header = FALSE)); dimnames(C) <- NULL
cl <- scan("clusters.txt", what = integer(), quiet = TRUE)
truth <- scan("classes.txt", what = character(), quiet = TRUE)
W <- as.matrix(read.csv("W.csv", header = FALSE)); H <- as.matrix(read.csv("H.csv", header = FALSE))
dimnames(W) <- NULL; dimnames(H) <- NULL
s <- summary(nmfModel(W = W, H = H), class = truth)
out <- list(cophcor = cophcor(C), dispersion = dispersion(C),
            purity = purity(factor(cl), truth), entropy = entropy(factor(cl), truth),
            summary = as.list(s))
cat(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE))
"""


@pytest.mark.r
def test_survey_measures_match_R(tmp_path):
    """The rank survey's consensus measures and the clustering scores, on the same inputs as R."""
    why = _r_available()
    if why:
        pytest.skip(why)
    from nmfkit.rank.consensus import connectivity
    rng = np.random.default_rng(5)
    base = np.repeat([0, 1, 2], [6, 5, 7])
    runs = [np.where(rng.random(18) < 0.2, rng.integers(0, 3, 18), base) for _ in range(12)]
    C = np.mean([connectivity(r) for r in runs], axis=0)
    classes = np.array(["x", "y", "z"])[np.where(rng.random(18) < 0.25, rng.integers(0, 3, 18), base)]
    np.savetxt(tmp_path / "C.csv", C, delimiter=",", fmt="%.17g")
    (tmp_path / "clusters.txt").write_text("\n".join(str(v) for v in runs[0]))
    (tmp_path / "classes.txt").write_text("\n".join(classes))
    W = rng.random((40, 3)) + np.repeat(np.eye(3), [14, 13, 13], axis=0)
    H = rng.random((3, 18)) + 2 * (base[None, :] == np.arange(3)[:, None])
    np.savetxt(tmp_path / "W.csv", W, delimiter=",", fmt="%.17g")
    np.savetxt(tmp_path / "H.csv", H, delimiter=",", fmt="%.17g")
    (tmp_path / "run.R").write_text(R_SURVEY_CODE)
    proc = subprocess.run(["Rscript", "run.R"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 and "jsonlite" in proc.stderr:
        pytest.skip("R package jsonlite not installed")
    assert proc.returncode == 0, proc.stderr
    ref = json.loads(proc.stdout)
    assert R.cophcor(C) == pytest.approx(ref["cophcor"], abs=1e-10)
    assert R.dispersion(C) == pytest.approx(ref["dispersion"], abs=1e-10)
    assert R.purity(runs[0], classes) == pytest.approx(ref["purity"], abs=1e-12)
    assert R.entropy(runs[0], classes) == pytest.approx(ref["entropy"], abs=1e-12)
    assert 0 < ref["cophcor"] < 1 and 0 < ref["entropy"] < 1        # not a trivial case
    mine = R.summary(R.nmfModel(W=W, H=H), classes=classes)
    for name in ("rank", "sparseness.basis", "sparseness.coef", "purity", "entropy", "silhouette.coef",
                 "silhouette.basis"):
        assert mine[name] == pytest.approx(ref["summary"][name], abs=1e-10), name
