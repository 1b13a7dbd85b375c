"""Projected gradient (seed 002): step rules, monotonicity, and the Lee–Seung step = MU."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _planted import low_rank_with_noise_level as planted
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import nmfkit
from nmfkit.engines import DenseEngine, MaskedEngine
from nmfkit.solvers.pgd import gram_apply, lipschitz, quadratic_change


def iterates(X, solver, n_iter, **kw):
    """Every (W, H) the driver sees, via the callback."""
    seen = []
    nmfkit.fit(X, 3, solver=solver, max_iter=n_iter, tol=0, seed=1, init="random",
               callback=lambda s: seen.append((s.W.copy(), s.H.copy(), s.objective)) and False, **kw)
    return seen


@pytest.mark.parametrize("kind", ["dense", "sparse", "masked"])
@pytest.mark.parametrize("penalty", [{}, {"alpha_W": 0.01, "l1_ratio": 0.5}])
def test_lee_seung_step_reproduces_mu_iterate_for_iterate(kind, penalty):
    X, _ = planted(80, 60, 4)
    kw = dict(penalty)
    if kind == "sparse":
        X = sp.csr_matrix(X * (X > np.median(X)))
    if kind == "masked":
        kw["mask"] = np.random.default_rng(3).random(X.shape) > 0.2
    mu = iterates(X, "mu", 40, **kw)
    pg = iterates(X, "pgd", 40, step="lee-seung", **kw)
    assert len(mu) == len(pg) == 40
    for (Wm, Hm, fm), (Wp, Hp, fp) in zip(mu, pg):
        np.testing.assert_allclose(Wp, Wm, rtol=1e-9, atol=1e-300)
        np.testing.assert_allclose(Hp, Hm, rtol=1e-9, atol=1e-300)
        assert fp == pytest.approx(fm, rel=1e-9)


@pytest.mark.parametrize("step,max_iter,excess", [("lipschitz", 300, 1.5), ("armijo", 300, 1.5),
                                                  ("lee-seung", 1500, 2.5)])
def test_step_rules_recover_planted_factors(step, max_iter, excess):
    X, noise = planted(80, 60, 4)
    f = nmfkit.fit(X, 4, solver="pgd", step=step, max_iter=max_iter, tol=1e-10, seed=0)
    assert f.relative_error <= excess * noise, (f.relative_error, noise)
    assert f.W.min() >= 0 and f.H.min() >= 0
    assert np.all(np.diff(f.history["objective"]) <= 1e-9 * f.history["objective"][0])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# a dead component (G = 0, so 1/L = 1/tiny): Armijo's growth overflowed α to inf and made NaN
@example(seed=3238, m=2, n=2, k=1, step="armijo", kind="dense", alpha=0.0)
@given(seed=st.integers(0, 10_000), m=st.integers(2, 25), n=st.integers(2, 25), k=st.integers(1, 5),
       step=st.sampled_from(["lipschitz", "armijo", "lee-seung"]),
       kind=st.sampled_from(["dense", "sparse", "masked"]), alpha=st.sampled_from([0.0, 0.05]))
def test_objective_never_increases(seed, m, n, k, step, kind, alpha):
    rng = np.random.default_rng(seed)
    X = rng.random((m, n)) * (rng.random((m, n)) < 0.7)
    X[0, 0] = 1.0
    k = min(k, m, n)
    kw = {"alpha_W": alpha, "l1_ratio": 0.3}
    if kind == "sparse":
        X = sp.csr_matrix(X)
    if kind == "masked":
        M = rng.random((m, n)) > 0.3
        M[:, 0] = True
        M[0, :] = True
        kw["mask"] = M
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # the driver warns on any increase for a monotone solver
        f = nmfkit.fit(X, k, solver="pgd", step=step, init="random", seed=seed, max_iter=40, tol=0, **kw)
    obj = f.history["objective"]
    scale = 0.5 * float(np.sum(np.asarray(X.todense() if sp.issparse(X) else X) ** 2))
    assert np.all(np.diff(obj) <= 1e-10 * np.abs(obj[:-1]) + 1e-12 * scale)
    assert np.isfinite(f.W).all() and f.W.min() >= 0 and f.H.min() >= 0


def test_fixed_step_is_not_promised_monotone_and_a_too_large_one_is_caught():
    X, _ = planted(80, 60, 4)
    small = nmfkit.fit(X, 4, solver="pgd", step=1e-4, max_iter=200, tol=0, seed=0)
    assert small.relative_error < 0.1 and small.monotonicity == []
    with pytest.warns(RuntimeWarning, match="objective became"):
        big = nmfkit.fit(X, 4, solver="pgd", step=10.0, max_iter=200, tol=0, seed=0)
    assert big.stop_reason == "diverged"
    assert np.isfinite(big.W).all() and np.isfinite(big.loss)    # the best iterate is returned


def test_armijo_step_satisfies_sufficient_decrease():
    """Lin's condition f(F⁺) − f(F) ≤ σ⟨∇f, F⁺ − F⟩ at the accepted step, checked on the quadratic."""
    rng = np.random.default_rng(0)
    Wt = rng.random((30, 4))
    G, R, F = Wt.T @ Wt, rng.random((20, 4)), rng.random((20, 4))
    eng = DenseEngine(rng.random((30, 20)))
    solver = nmfkit.registry.SOLVERS["pgd"].cls(eng, "frobenius", 2.0, step="armijo", inner=1)
    grad = F @ G - R
    Fn = solver.half_step(F, R, G, "H")
    D = Fn - F

    def f(Z):
        return 0.5 * np.vdot(Z @ G, Z) - np.vdot(R, Z)
    assert f(Fn) - f(F) == pytest.approx(quadratic_change(F, D, grad, G), rel=1e-10)
    assert f(Fn) - f(F) <= 0.01 * np.vdot(grad, D) + 1e-12
    assert f(Fn) < f(F)


def test_per_row_grams_helpers():
    rng = np.random.default_rng(0)
    F, G1 = rng.random((5, 3)), rng.random((3, 3))
    G1 = G1 @ G1.T
    stack = np.stack([G1 * (i + 1) for i in range(5)])
    np.testing.assert_allclose(gram_apply(F, stack), np.stack([F[i] @ stack[i] for i in range(5)]))
    np.testing.assert_allclose(lipschitz(stack)[:, 0], np.linalg.eigvalsh(G1)[-1] * np.arange(1, 6))
    assert float(lipschitz(G1)) == pytest.approx(np.linalg.eigvalsh(G1)[-1])


def test_masked_grams_match_definition():
    rng = np.random.default_rng(0)
    X, M, Ht, W = rng.random((7, 6)), rng.random((7, 6)) > 0.3, rng.random((6, 2)), rng.random((7, 2))
    e = MaskedEngine(X, M)
    G = e.row_grams(Ht)
    for i in range(7):
        np.testing.assert_allclose(G[i], Ht.T @ np.diag(M[i].astype(float)) @ Ht, atol=1e-14)
    Gc = e.col_grams(W)
    for j in range(6):
        np.testing.assert_allclose(Gc[j], W.T @ np.diag(M[:, j].astype(float)) @ W, atol=1e-14)


@pytest.mark.parametrize("bad,match", [({"step": "newton"}, "unknown step"), ({"step": -1.0}, "positive"),
                                       ({"inner": 0}, "inner"), ({"stepsize": 1}, "unknown options")])
def test_bad_options_are_refused(bad, match):
    X, _ = planted(20, 15, 4)
    with pytest.raises((ValueError, TypeError), match=match):
        nmfkit.fit(X, 2, solver="pgd", max_iter=2, **bad)


def test_pgd_refuses_other_losses():
    X, _ = planted(20, 15, 4)
    with pytest.raises(ValueError, match="does not support loss"):
        nmfkit.fit(X, 2, solver="pgd", loss="kl", max_iter=2)
