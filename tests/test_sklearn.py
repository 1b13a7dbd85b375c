"""nmfkit.NMF, the scikit-learn estimator: check_estimator, transform consistency, pipelines."""
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install nmfkit[sklearn])")

from sklearn.decomposition import NMF as SkNMF                       # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer          # noqa: E402
from sklearn.linear_model import LogisticRegression                  # noqa: E402
from sklearn.model_selection import GridSearchCV                     # noqa: E402
from sklearn.pipeline import Pipeline                                # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks   # noqa: E402

import nmfkit                                                        # noqa: E402
from nmfkit.sklearn import NMF                                       # noqa: E402


def expected_failures(estimator):
    """Checks this estimator cannot pass, with the reason (none at present)."""
    return {}


@parametrize_with_checks([NMF(), NMF(solver="mu"), NMF(solver="mu", beta_loss="kullback-leibler")],
                         expected_failed_checks=expected_failures)
def test_check_estimator(estimator, check):
    check(estimator)


def _data(m=40, n=25, k=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (rng.random((m, k)) @ rng.random((k, n)) + 0.01 * rng.random((m, n))).astype(dtype)


@pytest.mark.parametrize("beta_loss,solver", [("frobenius", "auto"), ("frobenius", "mu"),
                                              ("kullback-leibler", "mu")])
@pytest.mark.parametrize("sparse", [False, True])
def test_transform_after_fit_equals_fit_transform(beta_loss, solver, sparse):
    X = _data()
    X[X < 0.6] = 0 if sparse else X[X < 0.6]
    X = sp.csr_matrix(X) if sparse else X
    est = NMF(4, solver=solver, beta_loss=beta_loss, random_state=0, max_iter=300)
    W = est.fit_transform(X)
    np.testing.assert_allclose(est.transform(X), W, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(NMF(4, solver=solver, beta_loss=beta_loss, random_state=0, max_iter=300)
                               .fit(X).transform(X), W, rtol=1e-10, atol=1e-12)


def test_fit_transform_is_no_worse_than_the_solver_iterate():
    X = _data()
    est = NMF(4, solver="mu", random_state=0, max_iter=200)
    W = est.fit_transform(X)
    fit = est.factorization_
    assert est.reconstruction_err_ == pytest.approx(np.linalg.norm(X - W @ est.components_))
    assert est.reconstruction_err_ <= np.linalg.norm(X - fit.W @ fit.H) * (1 + 1e-12)
    assert est.n_iter_ == fit.n_iter and est.n_components_ == 4 and est.components_.shape == (4, 25)


def test_matches_scikit_learn_quality():
    X = _data(60, 30, 5, seed=1)
    ours = NMF(5, random_state=0, max_iter=500, tol=1e-6).fit(X).reconstruction_err_
    theirs = SkNMF(5, random_state=0, max_iter=500, tol=1e-6).fit(X).reconstruction_err_
    assert ours <= theirs * 1.05


def test_float32_sparse_and_inverse_transform():
    X = _data(dtype=np.float32)
    est = NMF(3, random_state=0)
    W = est.fit_transform(X)
    assert W.dtype == np.float32 and est.components_.dtype == np.float32
    assert est.inverse_transform(W).shape == X.shape and est.inverse_transform(W).dtype == np.float32
    Ws = NMF(3, random_state=0).fit_transform(sp.csr_matrix(X))
    assert Ws.dtype == np.float32
    with pytest.raises(ValueError, match="one column per component"):
        est.inverse_transform(np.ones((2, 5)))


def test_feature_names_and_options():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(_data(), columns=[f"g{j}" for j in range(25)])
    est = NMF(3, random_state=0, alpha_W=0.01, l1_ratio=0.5).fit(X)
    assert list(est.feature_names_in_) == list(X.columns) and est.n_features_in_ == 25
    assert list(est.get_feature_names_out()) == ["nmf0", "nmf1", "nmf2"]
    assert est.factorization_.options["l1_ratio"] == 0.5
    assert NMF(random_state=0).fit(X.to_numpy()[:5]).n_components_ == 5     # None → min(n_samples, n_features)
    with pytest.raises(ValueError, match="too large"):
        NMF(50).fit(X)
    with pytest.raises(ValueError, match="beta_loss"):
        NMF(2, beta_loss="cosine").fit(X)


def test_custom_init_and_is_loss():
    X = _data() + 0.1
    rng = np.random.default_rng(0)
    W0, H0 = rng.random((40, 3)), rng.random((3, 25))
    est = NMF(3, init="custom", solver="mu", max_iter=5, tol=0)
    est.fit_transform(X, W=W0, H=H0)
    assert est.factorization_.options["init"] == "given" and est.n_iter_ == 5
    with pytest.raises(ValueError, match="needs both W and H"):
        NMF(3, init="custom").fit_transform(X)
    est = NMF(3, solver="mu", beta_loss="itakura-saito", random_state=0, max_iter=100)
    np.testing.assert_allclose(est.fit_transform(X), est.transform(X), rtol=1e-10)


CORPUS = ["the striker scored a late goal in the football match", "the goalkeeper saved the penalty kick",
          "fans cheered as the team won the league match", "the coach praised the team defence and the striker",
          "simmer the sauce and add garlic and basil", "bake the bread in a hot oven for an hour",
          "whisk the eggs with sugar and butter for the cake", "roast the garlic and season the sauce with salt",
          "the referee stopped the match after the goal", "knead the dough then bake the bread until golden",
          "the league title went to the team with the best striker", "stir the butter into the warm sauce"]
LABELS = [0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1]


def test_pipeline_and_grid_search_on_text():
    pipe = Pipeline([("tfidf", TfidfVectorizer()), ("nmf", NMF(solver="mu", random_state=0, max_iter=300)),
                     ("clf", LogisticRegression())])
    grid = GridSearchCV(pipe, {"nmf__n_components": [2, 3]}, cv=3)
    grid.fit(CORPUS, LABELS)
    assert grid.best_params_["nmf__n_components"] in (2, 3)
    assert grid.score(CORPUS, LABELS) >= 0.9
    topics = grid.best_estimator_[:2].fit(CORPUS).transform(["a goal in the match", "garlic sauce"])
    assert topics.shape[0] == 2 and (topics >= 0).all()


def test_nmfkit_imports_without_scikit_learn():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import nmfkit\n"
            "try:\n    nmfkit.NMF\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install nmfkit[sklearn]" in out.stdout
    assert nmfkit.NMF is NMF
