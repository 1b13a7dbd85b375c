"""Missing values: mask= / NaN with missing="mask"; the loss counts observed entries only."""
import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit
from nmfkit.engines import MaskedEngine, make_engine


def planted(m=60, n=50, k=3, seed=0, hide=0.2):
    """Exactly rank-k data + 1 % Gaussian noise, and a mask hiding `hide` of the entries."""
    rng = np.random.default_rng(seed)
    L = (rng.random((m, k)) + 0.1) @ (rng.random((k, n)) + 0.1)
    sigma = 0.01 * L.std()
    X = np.maximum(L + sigma * rng.standard_normal(L.shape), 0)
    M = rng.random((m, n)) > hide
    return X, M, sigma


def heldout_rmse(f, X, M):
    return float(np.sqrt(np.mean((f.W @ f.H - X)[~M] ** 2)))


@pytest.mark.parametrize("solver,max_iter", [("mu", 3000), ("pgd", 300), ("sgd", 300)])
def test_hidden_entries_are_recovered_near_the_noise_level(solver, max_iter):
    X, M, sigma = planted()
    f = nmfkit.fit(X, 3, solver=solver, mask=M, max_iter=max_iter, tol=0, seed=0)
    assert f.options["engine"] == "masked" and f.options["n_missing"] == int((~M).sum())
    # hidden entries carry their own noise (σ), so ≈ σ is the best any predictor can do
    assert heldout_rmse(f, X, M) < 1.6 * sigma, heldout_rmse(f, X, M) / sigma
    assert f.W.min() >= 0 and f.H.min() >= 0


def test_hidden_values_never_reach_the_fit():
    X, M, _ = planted()
    Y = X.copy()
    Y[~M] = 1e6                                          # garbage where missing
    for solver in ("mu", "pgd"):
        a = nmfkit.fit(X, 3, solver=solver, mask=M, max_iter=30, tol=0, seed=0, init="random")
        b = nmfkit.fit(Y, 3, solver=solver, mask=M, max_iter=30, tol=0, seed=0, init="random")
        np.testing.assert_array_equal(a.W, b.W)
        assert a.loss == b.loss


def test_nan_with_missing_mask_equals_an_explicit_mask():
    X, M, _ = planted()
    Y = X.copy()
    Y[~M] = np.nan
    a = nmfkit.fit(X, 3, solver="pgd", mask=M, max_iter=20, tol=0, seed=0)
    b = nmfkit.fit(Y, 3, solver="pgd", missing="mask", max_iter=20, tol=0, seed=0)
    np.testing.assert_allclose(b.W, a.W, rtol=1e-12)
    c = nmfkit.fit(Y, 3, solver="pgd", missing="mask", mask=np.ones_like(M), max_iter=20, tol=0, seed=0)
    np.testing.assert_allclose(c.W, a.W, rtol=1e-12)     # NaN joins the given mask


def test_reported_loss_counts_observed_entries_only():
    X, M, _ = planted()
    for solver, loss in (("mu", "frobenius"), ("pgd", "frobenius"), ("sgd", "frobenius"), ("mu", "kl")):
        f = nmfkit.fit(X, 3, solver=solver, loss=loss, mask=M, max_iter=15, tol=0, seed=0)
        P = f.W @ f.H
        if loss == "frobenius":
            want = 0.5 * np.sum(((X - P) ** 2)[M])
        else:
            want = np.sum((X * np.log(X / P) - X + P)[M])
        assert f.loss == pytest.approx(want, rel=1e-8), solver
        assert f.relative_error == pytest.approx(np.sqrt(np.sum(((X - P) ** 2)[M]) / np.sum(X[M] ** 2)), rel=1e-8)


def test_masked_mu_objective_never_increases():
    X, M, _ = planted(seed=5)
    for loss, beta in (("frobenius", None), ("kl", None), ("frobenius", 1.5), ("is", None)):
        f = nmfkit.fit(X + 0.01, 3, solver="mu", loss=loss, beta=beta, mask=M, max_iter=100, tol=0, seed=1)
        obj = f.history["objective"]
        assert np.all(np.diff(obj) <= 1e-10 * obj[:-1]), (loss, beta)
        assert f.monotonicity == []


def test_sparse_data_with_a_mask_matches_dense():
    X, M, _ = planted()
    X[X < np.median(X)] = 0
    a = nmfkit.fit(X, 3, solver="mu", mask=M, max_iter=20, tol=0, seed=0)
    b = nmfkit.fit(sp.csr_matrix(X), 3, solver="mu", mask=M, max_iter=20, tol=0, seed=0)
    np.testing.assert_allclose(b.W, a.W, rtol=1e-10)
    assert b.options["engine"] == "masked"


def test_a_mask_hiding_nothing_keeps_the_plain_engine():
    X, M, _ = planted()
    f = nmfkit.fit(X, 3, solver="mu", mask=np.ones_like(M), max_iter=3)
    assert f.options["engine"] == "dense"
    assert make_engine(sp.csr_matrix(X), mask=np.ones(X.shape, bool)).kind == "sparse"
    g = nmfkit.fit(X, 3, missing="mask", max_iter=3)          # no NaN: nothing missing
    assert g.options["engine"] == "dense"


def test_masked_engine_products_match_brute_force():
    rng = np.random.default_rng(0)
    X, M = rng.random((9, 7)) + 0.1, rng.random((9, 7)) > 0.3
    W, Ht = rng.random((9, 2)), rng.random((7, 2))
    e = MaskedEngine(X, M)
    Mf, Xm, L = M.astype(float), X * M, W @ Ht.T
    assert e.frobenius(W, Ht) == pytest.approx(0.5 * np.sum((Mf * (X - L)) ** 2))
    for beta in (0.0, 1.0, 1.5, 2.0):
        p = e.beta_products(W, Ht, beta)
        np.testing.assert_allclose(p["num_W"], (Xm * L ** (beta - 2)) @ Ht)
        np.testing.assert_allclose(p["den_W"], (Mf * L ** (beta - 1)) @ Ht)
        np.testing.assert_allclose(p["num_H"], (Xm * L ** (beta - 2)).T @ W)
        np.testing.assert_allclose(p["den_H"], (Mf * L ** (beta - 1)).T @ W)
    assert e.mean() == pytest.approx(X[M].mean())
    t = e.transpose()
    assert t.shape == (7, 9) and t.frobenius(Ht, W) == pytest.approx(e.frobenius(W, Ht))


def test_cross_validation_runs_on_the_fast_masked_solver():
    from nmfkit.rank import cross_validation as cv
    X, _, _ = planted(40, 30)
    res = cv.cross_validate_rank(X, [1, 3, 5], n_splits=1, seed=0, solver="pgd", max_iter=100)
    assert res.best_rank == 3


# -- clear errors ------------------------------------------------------------------------------------
def test_nan_without_missing_mask_is_a_clear_error():
    X, M, _ = planted()
    X[2, 3] = np.nan
    with pytest.raises(ValueError, match="missing='mask'"):
        nmfkit.fit(X, 3, max_iter=2)
    with pytest.raises(ValueError, match=r"NaN at observed entry \(2, 3\)"):
        nmfkit.fit(X, 3, solver="mu", mask=np.ones(X.shape, bool), max_iter=2)


@pytest.mark.parametrize("mask,match", [
    (np.ones((60, 49), bool), "must match X's shape"),
    (np.full((60, 50), 0.5), "boolean"),
    (np.ones(50, bool), "must match X's shape"),
])
def test_bad_masks_are_refused(mask, match):
    X, _, _ = planted()
    with pytest.raises((ValueError, TypeError), match=match):
        nmfkit.fit(X, 3, solver="mu", mask=mask, max_iter=2)


def test_empty_row_is_refused():
    X, M, _ = planted()
    M[7] = False
    with pytest.raises(ValueError, match="row.*no observed entry.*row 7"):
        nmfkit.fit(X, 3, solver="mu", mask=M, max_iter=2)


def test_empty_column_is_refused():
    X, M, _ = planted()
    M[:, 4] = False
    with pytest.raises(ValueError, match="column.*no observed entry"):
        nmfkit.fit(X, 3, solver="mu", mask=M, max_iter=2)


def test_solvers_without_mask_support_say_which_do():
    X, M, _ = planted()
    with pytest.raises(ValueError, match="missing entries.*choose one of: mu, pgd, sgd"):
        nmfkit.fit(X, 3, solver="hals", mask=M, max_iter=2)
    with pytest.raises(ValueError, match="unknown missing"):
        nmfkit.fit(X, 3, missing="drop", max_iter=2)


def test_auto_picks_the_fast_masked_solver():
    X, M, _ = planted()
    assert nmfkit.fit(X, 3, mask=M, max_iter=2).options["solver"] == "pgd"
    assert nmfkit.fit(X, 3, loss="kl", mask=M, max_iter=2).options["solver"] == "mu"
