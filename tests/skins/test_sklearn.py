"""nmfkit.NMF, the scikit-learn estimator: check_estimator, transform consistency, pipelines."""
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install nmfkit[sklearn])")

from sklearn.decomposition import NMF as SkNMF  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import nmfkit  # noqa: E402
from nmfkit.engines import make_engine  # noqa: E402
from nmfkit.sklearn import NMF, MiniBatchNMF, non_negative_factorization  # noqa: E402


def expected_failures(estimator):
    """Checks this estimator cannot pass, with the reason (none at present)."""
    return {}


@parametrize_with_checks([NMF(), NMF(solver="mu"), NMF(solver="mu", beta_loss="kullback-leibler"), NMF(solver="cd"),
                          MiniBatchNMF()],
                         expected_failed_checks=expected_failures)
def test_check_estimator(estimator, check):
    check(estimator)


def _data(m=40, n=25, k=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (rng.random((m, k)) @ rng.random((k, n)) + 0.01 * rng.random((m, n))).astype(dtype)


@pytest.mark.parametrize("beta_loss,solver", [("frobenius", "auto"), ("frobenius", "mu"), ("frobenius", "cd")])
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


def _kl(X, W, H):
    return make_engine(X).kl_divergence(W, np.ascontiguousarray(H.T))


@pytest.mark.parametrize("sparse", [False, True])
def test_kl_fit_transform_continues_from_the_solver_iterate(sparse):
    # Other losses than Frobenius: W continues the multiplicative updates from the solver's W, so it
    # is never worse than that W, and transform(X) (from the uniform start) reaches the same loss.
    X = _data()
    X[X < 0.6] = 0
    X = sp.csr_matrix(X) if sparse else X
    est = NMF(4, solver="mu", beta_loss="kullback-leibler", random_state=0, max_iter=300)
    W = est.fit_transform(X)
    H, fit = est.components_, est.factorization_
    assert fit.W.shape == W.shape and fit.H.shape == H.shape          # factorization_ in X's orientation
    assert _kl(X, W, H) <= _kl(X, fit.W, H) * (1 + 1e-12)
    # both minimise the same convex problem; MU converges sublinearly, so they meet to ~tol, not exactly
    assert _kl(X, est.transform(X), H) == pytest.approx(_kl(X, W, H), rel=1e-3)
    assert est.reconstruction_err_ == pytest.approx(np.sqrt(2 * _kl(X, W, H)), rel=1e-10)


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
    W = est.fit_transform(X)
    Ht = np.ascontiguousarray(est.components_.T)
    divergence = make_engine(X).beta_divergence
    assert divergence(W, Ht, 0.0) <= divergence(est.factorization_.W, Ht, 0.0) * (1 + 1e-12)


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
    assert nmfkit.NMF is NMF and nmfkit.MiniBatchNMF is MiniBatchNMF
    assert nmfkit.non_negative_factorization is non_negative_factorization


# -- scikit-learn parity: solvers, warnings, verbose, ranks, zero solutions ---------------------------
def test_cd_is_one_sweep_hals_and_refuses_other_losses():
    X = _data()
    X[X < 0.5] = 0
    est = NMF(4, solver="cd", init="random", random_state=0, tol=0, max_iter=60)
    W = est.fit_transform(X)
    assert est.factorization_.options["solver"] == "hals" and est.factorization_.options["inner_alpha"] == 0.0
    # one sweep per half-step does not depend on the storage: sparse input gives the same iterates
    Ws = NMF(4, solver="cd", init="random", random_state=0, tol=0, max_iter=60).fit_transform(sp.csr_matrix(X))
    np.testing.assert_allclose(Ws, W, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="solver 'cd' does not handle beta_loss = 1.0"):
        NMF(2, solver="cd", beta_loss="kullback-leibler").fit(X)
    with pytest.raises(ValueError, match="solver must be"):
        NMF(2, solver="newton").fit(X)


def test_mu_updates_W_first_like_scikit_learn():
    X = _data()
    rng = np.random.default_rng(1)
    W0, H0 = rng.random((40, 3)), rng.random((3, 25))
    W, H, n_iter = non_negative_factorization(X, W0.copy(), H0.copy(), 3, init="custom", solver="mu",
                                              max_iter=1, tol=0)
    W1 = W0 * (X @ H0.T) / (W0 @ H0 @ H0.T)        # one Lee-Seung step, W first, then H
    H1 = H0 * (W1.T @ X) / (W1.T @ W1 @ H0)
    np.testing.assert_allclose(H, H1, rtol=1e-12)
    assert n_iter == 1


@pytest.mark.parametrize("make", [lambda: NMF(2, solver="cd", max_iter=1), lambda: NMF(2, solver="mu", max_iter=1),
                                  lambda: MiniBatchNMF(2, max_iter=1, max_no_improvement=None)])
def test_convergence_warning_at_max_iter(make):
    X = _data()
    with pytest.warns(ConvergenceWarning, match="Maximum number of iterations 1 reached"):
        make().fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        make().set_params(tol=0).fit(X)                    # tol=0 asks for exactly max_iter iterations


def test_verbose_prints_to_stderr_when_it_is_not_a_terminal(capsys):
    X = _data()
    NMF(3, solver="mu", verbose=1, max_iter=20, tol=0, random_state=0).fit(X)
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" reached")[0] for line in err] == ["NMF: epoch 10", "NMF: epoch 20"]
    NMF(3, solver="cd", verbose=2, max_iter=3, tol=0, random_state=0).fit(X)
    assert len(capsys.readouterr().err.splitlines()) == 3
    MiniBatchNMF(3, batch_size=10, verbose=1, max_iter=1, tol=0, random_state=0).fit(X)
    assert capsys.readouterr().err.count("MiniBatchNMF: step") == 4


@pytest.mark.parametrize("Estimator", [NMF, MiniBatchNMF])
def test_n_components_auto_takes_the_rank_of_a_custom_init(Estimator):
    X = _data(6, 5)
    rng = np.random.default_rng(0)
    W0, H0 = rng.random((6, 2)), rng.random((2, 5))
    est = Estimator(n_components="auto", init="custom", random_state=0).fit(X, W=W0, H=H0)
    assert est.n_components_ == 2 and est.components_.shape == (2, 5)
    W, H, _ = non_negative_factorization(X, H=H0, update_H=False)
    assert W.shape == (6, 2) and np.array_equal(H, H0)


def test_custom_init_is_checked_and_never_modified():
    X = _data(6, 5)
    rng = np.random.default_rng(0)
    W0, H0 = rng.random((6, 2)), rng.random((2, 5))
    copies = W0.copy(), H0.copy()
    MiniBatchNMF(2, init="custom", batch_size=3, max_iter=5).fit(X, W=W0, H=H0)
    NMF(2, init="custom", solver="mu", max_iter=5).fit(X, W=W0, H=H0)
    assert np.array_equal(W0, copies[0]) and np.array_equal(H0, copies[1])
    with pytest.raises(TypeError, match="should have the same dtype as X"):
        NMF(2, init="custom").fit(X, W=W0, H=H0.astype(np.float32))
    with pytest.raises(ValueError, match="wrong first dimension passed to NMF \\(input W\\). Expected 6, but got 5"):
        NMF(2, init="custom").fit(X, W=W0[:5], H=H0)
    with pytest.raises(ValueError, match="Negative values in data passed to NMF \\(input H\\)"):
        NMF(2, init="custom").fit(X, W=W0, H=-H0)
    with pytest.raises(ValueError, match="is full of zeros"):
        NMF(2, init="custom").fit(X, W=W0, H=0 * H0)
    with pytest.warns(RuntimeWarning, match="provided W or H are ignored"):
        NMF(2, max_iter=5, tol=0).fit(X, W=W0, H=H0)
    with pytest.raises(ValueError, match="When beta_loss <= 0 and X contains zeros"):
        NMF(2, solver="mu", beta_loss="itakura-saito").fit(np.eye(5))


def _penalised(X, W, H, alpha, l1_ratio):
    m, n = X.shape
    l1, l2 = alpha * l1_ratio, alpha * (1 - l1_ratio)
    return (0.5 * np.linalg.norm(X - W @ H) ** 2 + l1 * n * W.sum() + l1 * m * H.sum()
            + 0.5 * l2 * n * (W ** 2).sum() + 0.5 * l2 * m * (H ** 2).sum())


@pytest.mark.parametrize("solver", ["cd", "auto", "mu"])
def test_all_zero_components_are_returned_when_optimal(solver):
    X = np.abs(np.random.default_rng(42).standard_normal((6, 5)))
    est = NMF(3, alpha_W=0.5, l1_ratio=1.0, solver=solver, random_state=42)
    W = est.fit_transform(X)
    # the penalised objective at W = H = 0 (‖X‖²/2) beats every fit a random restart finds
    other = NMF(3, alpha_W=0.5, l1_ratio=1.0, solver="mu", init="random", random_state=1, max_iter=50, tol=0)
    W_other = other.fit_transform(X)
    assert _penalised(X, W, est.components_, 0.5, 1.0) <= _penalised(X, W_other, other.components_, 0.5, 1.0)
    if solver != "mu":                 # HALS reaches the optimum exactly
        assert not W.any() and not est.components_.any()
        assert est.reconstruction_err_ == pytest.approx(np.linalg.norm(X))
    assert np.array_equal(est.transform(X), W)


def test_project_gives_zero_coefficients_to_all_zero_basis_vectors():
    rng = np.random.default_rng(0)
    W, X_new = rng.random((8, 3)), rng.random((8, 4))
    W[:, 1] = 0
    for loss in ("frobenius", "kl"):
        H = nmfkit.project(W, X_new, loss=loss)
        expected = nmfkit.project(W[:, [0, 2]], X_new, loss=loss)
        assert not H[1].any()
        np.testing.assert_allclose(H[[0, 2]], expected, rtol=1e-12)
        assert not nmfkit.project(np.zeros((8, 3)), X_new, loss=loss).any()


def test_shuffle_sweeps_the_components_in_a_random_order():
    X = _data()
    rng = np.random.default_rng(3)
    W0, H0 = rng.random((40, 4)), rng.random((4, 25))
    one = dict(n_components=4, solver="cd", init="custom", max_iter=1, tol=0, random_state=0)
    plain = NMF(**one).fit(X, W=W0, H=H0).components_
    shuffled = NMF(shuffle=True, **one).fit(X, W=W0, H=H0).components_
    assert not np.allclose(plain, shuffled, rtol=1e-6)         # another coordinate order, another iterate
    # after convergence both reach fits of the same quality, components in the caller's order
    full = dict(one, max_iter=500, tol=1e-8)
    a, b = NMF(**full).fit(X, W=W0, H=H0), NMF(shuffle=True, **full).fit(X, W=W0, H=H0)
    assert b.reconstruction_err_ == pytest.approx(a.reconstruction_err_, rel=1e-3)
    np.testing.assert_array_equal(b.factorization_.H, b.components_)
    with pytest.raises(ValueError, match="shuffle must be True or False"):
        NMF(2, shuffle="yes").fit(X)


def test_reported_zeros_reproduce_the_zeros_of_exactly_factorable_data():
    W_true = np.kron(np.eye(3), np.ones((2, 1)))           # 6×3, disjoint supports
    H_true = np.kron(np.eye(3), np.ones((1, 2))) * [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    X = W_true @ H_true
    est = NMF(3, solver="mu", beta_loss="kullback-leibler", max_iter=2000, random_state=0)
    W = est.fit_transform(X)
    np.testing.assert_array_equal(W @ est.components_ == 0, X == 0)
    np.testing.assert_allclose(W @ est.components_, X, rtol=1e-6)


# -- MiniBatchNMF and non_negative_factorization --------------------------------------------------
def test_minibatch_with_one_batch_and_no_memory_is_batch_mu():
    X = _data()
    kw = dict(random_state=0, tol=0, max_iter=50)
    for beta in (2.0, 1.0, 0.5):
        W = NMF(4, solver="mu", beta_loss=beta, **kw).fit_transform(X)
        mb = MiniBatchNMF(4, beta_loss=beta, batch_size=40, forget_factor=0.0, max_no_improvement=None, **kw)
        np.testing.assert_allclose(mb.fit_transform(X), W, rtol=1e-9, atol=1e-12)
        assert mb.n_steps_ == 50 and mb.n_iter_ == 50


def test_minibatch_learns_a_planted_factorization_online():
    rng = np.random.default_rng(0)
    W_true, H_true = rng.random((400, 3)), rng.random((3, 20))
    X = W_true @ H_true
    errors = []
    for epochs in (30, 300):
        mb = MiniBatchNMF(3, batch_size=50, random_state=0, max_iter=epochs, tol=0, max_no_improvement=None)
        W = mb.fit_transform(X)
        assert mb.n_steps_ == 8 * epochs and mb.n_iter_ == epochs
        errors.append(np.linalg.norm(X - W @ mb.components_) / np.linalg.norm(X))
    assert errors[1] < 0.5 * errors[0] and errors[1] < 2e-2     # online MU converges slowly, but it does
    online = MiniBatchNMF(3, random_state=0)
    for _ in range(30):
        for start in range(0, 400, 50):
            online.partial_fit(X[start:start + 50])
    assert online.n_steps_ == 240
    W = online.transform(X)
    assert np.linalg.norm(X - W @ online.components_) / np.linalg.norm(X) < 5e-2


def test_minibatch_float32_sparse_and_parameter_checks():
    X = _data(dtype=np.float32)
    X[X < 0.6] = 0
    mb = MiniBatchNMF(3, batch_size=16, random_state=0, max_iter=20)
    W = mb.fit_transform(sp.csr_matrix(X))
    assert W.dtype == np.float32 and mb.components_.dtype == np.float32
    np.testing.assert_allclose(W, MiniBatchNMF(3, batch_size=16, random_state=0, max_iter=20).fit_transform(X),
                               rtol=1e-4, atol=1e-5)          # float32: sparse and dense products round differently
    for bad, match in [(dict(batch_size=0), "batch_size"), (dict(forget_factor=1.5), "forget_factor"),
                       (dict(max_no_improvement=0), "max_no_improvement")]:
        with pytest.raises(ValueError, match=match):
            MiniBatchNMF(2, **bad).fit(X)


def test_non_negative_factorization_matches_the_estimator():
    X = _data()
    kw = dict(init="nndsvda", random_state=0, max_iter=100, alpha_W=0.01)
    W, H, n_iter = non_negative_factorization(X, n_components=3, **kw)
    est = NMF(3, **kw)
    np.testing.assert_array_equal(est.fit_transform(X), W)
    np.testing.assert_array_equal(est.components_, H)
    assert n_iter == est.n_iter_
    W2, H2, n2 = non_negative_factorization(X, H=H, n_components=3, update_H=False, **kw)
    np.testing.assert_array_equal(W2, est.transform(X))
    assert n2 == 0 and H2 is not H and np.array_equal(H2, H)
    W0, _, _ = non_negative_factorization(X, H=np.zeros((3, 25)), update_H=False)   # fixed zero components
    assert not W0.any()
    with pytest.warns(RuntimeWarning, match="the provided initial W is not used"):
        non_negative_factorization(X, W=W, H=H, update_H=False)
    with pytest.raises(ValueError, match="update_H=False needs the fixed components H"):
        non_negative_factorization(X, update_H=False)


@pytest.mark.parametrize("Estimator", [NMF, MiniBatchNMF])
def test_set_output_pandas(Estimator):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(_data(), columns=[f"g{j}" for j in range(25)])
    est = Estimator(3, random_state=0, max_iter=50).set_output(transform="pandas")
    W = est.fit_transform(X)
    assert isinstance(W, pd.DataFrame) and list(W.columns) == [f"{Estimator.__name__.lower()}{i}" for i in range(3)]
    assert list(W.index) == list(X.index) and list(est.feature_names_in_) == list(X.columns)
    assert isinstance(est.transform(X), pd.DataFrame)


@pytest.mark.parametrize("scale", [1e300, 1e-300])
@pytest.mark.parametrize("make", [lambda: nmfkit.NMF(2, random_state=0),
                                  lambda: nmfkit.MiniBatchNMF(2, random_state=0)])
def test_data_beyond_the_dtype_range_is_refused_before_work(scale, make):
    X = np.random.default_rng(0).random((12, 8)) * scale
    with pytest.raises(ValueError, match="largest entry .* rescale X first"):
        make().fit(X)
