"""ANLS by block principal pivoting: exact NNLS per row, batching by passive set,
monotone objective, penalties, dead components."""
import numpy as np
import pytest
from _planted import low_rank as planted
from scipy.optimize import nnls

import nmfkit
from nmfkit.driver import run
from nmfkit.engines import make_engine
from nmfkit.registry import INITS, SOLVERS
from nmfkit.solvers import _anls_kernels as anls


def least_squares(p, k, seed):
    """Rows of the answer solve min ‖A f − b_i‖, f ≥ 0: G = AᵀA, R = BᵀA."""
    rng = np.random.default_rng(seed)
    A = rng.random((2 * k + 5, k))
    B = rng.standard_normal((2 * k + 5, p)) + 0.5
    return A, B, A.T @ A, B.T @ A


@pytest.mark.parametrize("p,k,seed", [(200, 6, 0), (50, 15, 1), (30, 70, 2)])   # k = 70: > 62-bit keys
@pytest.mark.parametrize("warm", [False, True])
@pytest.mark.parametrize("solve", [anls.nnls_bpp, anls.nnls_bpp_numpy], ids=["numba", "numpy"])
def test_matches_scipy_nnls(p, k, seed, warm, solve):
    A, B, G, R = least_squares(p, k, seed)
    passive = np.random.default_rng(seed).random((p, k)) < 0.5 if warm else None
    F = solve(R, G, passive)
    expected = np.array([nnls(A, B[:, i], maxiter=50 * k)[0] for i in range(p)])
    np.testing.assert_allclose(F, expected, atol=1e-8 * max(1, np.abs(expected).max()))


def test_kkt_conditions_hold():
    A, B, G, R = least_squares(500, 10, 3)
    F = anls.nnls_bpp(R, G)
    grad = F @ G - R
    scale = np.abs(R).max()
    assert (F >= 0).all()
    assert (grad >= -1e-9 * scale).all()
    assert np.abs(F * grad).max() <= 1e-9 * scale * max(1, F.max())


def test_rows_are_solved_in_batches(monkeypatch):
    A, B, G, R = least_squares(2000, 8, 4)
    batches = []
    real = anls._batched_inverse
    monkeypatch.setattr(anls, "_batched_inverse", lambda M: batches.append(len(M)) or real(M))
    anls.nnls_bpp_numpy(R, G)
    assert len(batches) <= 10                # one batched call per pivoting round
    assert max(batches) <= 2 ** 8            # at most one inverse per distinct passive set
    assert batches[0] == 1                   # cold start: every row has the empty set


def test_solve_passive_matches_row_by_row_solves():
    A, B, G, R = least_squares(300, 7, 10)
    passive = np.random.default_rng(0).random(R.shape) < 0.6
    F, Y = anls.solve_passive(R, G, passive)
    for i in range(300):
        P = passive[i]
        expect = np.zeros(7)
        if P.any():
            expect[P] = np.linalg.solve(G[np.ix_(P, P)], R[i, P])
        np.testing.assert_allclose(F[i], expect, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(Y[~passive], (F @ G - R)[~passive])
    assert not Y[passive].any()


@pytest.mark.parametrize("max_rounds", [0, 1, 2, None])
def test_numba_kernel_matches_numpy_twin(max_rounds):
    # Same pivoting rules row by row: same iterates, so the same answer even when
    # the round cap stops the pivoting early (differences are rounding only).
    A, B, G, R = least_squares(400, 12, 7)
    passive = np.random.default_rng(7).random((400, 12)) < 0.3
    F_numba = anls.nnls_bpp(R, G, passive, max_rounds=max_rounds)
    F_numpy = anls.nnls_bpp_numpy(R, G, passive, max_rounds=max_rounds)
    np.testing.assert_allclose(F_numba, F_numpy, rtol=1e-9, atol=1e-9 * np.abs(F_numpy).max())


def test_backup_rule_and_round_cap_terminate():
    A, B, G, R = least_squares(100, 12, 5)
    for solve in (anls.nnls_bpp, anls.nnls_bpp_numpy):
        F = solve(R, G, max_rounds=1)   # stopped early: still feasible
        assert (F >= 0).all() and np.isfinite(F).all()


@pytest.mark.parametrize("solve", [anls.nnls_bpp, anls.nnls_bpp_numpy], ids=["numba", "numpy"])
def test_singular_gram_does_not_give_nan(solve):
    rng = np.random.default_rng(6)
    A = rng.random((20, 3))
    A = np.column_stack([A, A[:, 0]])        # collinear components
    G, R = A.T @ A, rng.random((40, 20)) @ A
    F = solve(R, G)
    assert np.isfinite(F).all() and (F >= 0).all()
    # Same optimal value as SciPy's NNLS on the equivalent least-squares rows.
    B = np.linalg.lstsq(A.T, R.T, rcond=None)[0]          # A B = R-rows' targets
    ours = 0.5 * np.einsum("ij,jk,ik->i", F, G, F) - np.einsum("ij,ij->i", F, R)
    ref_F = np.array([nnls(A, b)[0] for b in B.T])
    theirs = 0.5 * np.einsum("ij,jk,ik->i", ref_F, G, ref_F) - np.einsum("ij,ij->i", ref_F, R)
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_objective_non_increasing_and_recovers(dtype):
    X = planted(150, 100, 5, seed=7).astype(dtype)
    e = make_engine(X)
    solver = SOLVERS["anls"].cls(e, "frobenius", 2.0)
    W0, H0 = INITS["random"](e, 5, np.random.default_rng(0))
    out = run(solver, W0, H0, max_iter=100, tol=0)
    obj = out.history["objective"]
    slack = (1e-12 if dtype == np.float64 else 1e-5) * obj[0]
    assert np.all(np.diff(obj) <= slack)
    assert out.W.dtype == dtype and out.Ht.dtype == dtype
    assert np.sqrt(2 * e.frobenius_exact(out.W, out.Ht) / e.sqnorm) < 0.012


def test_each_half_step_is_exact():
    X = planted(60, 50, 4, seed=8)
    e = make_engine(X)
    solver = SOLVERS["anls"].cls(e, "frobenius", 2.0, alpha_W=0.01, l1_ratio=0.5)
    W, Ht = solver.prepare(*INITS["nndsvda"](e, 4, np.random.default_rng(0)))
    W, Ht, _ = solver.step(W, Ht)
    # W must solve its penalised NNLS given Ht: KKT with the penalty-edited (R, G).
    R, G = solver.penalty.edit(X @ Ht, Ht.T @ Ht, "W")
    grad = W @ G - R
    tol = 1e-9 * np.abs(R).max()
    assert (grad >= -tol).all() and np.abs(W * grad).max() < tol * max(1, W.max())


def test_dead_start_components_are_revived():
    X = planted(60, 50, 3, noise=0.0, seed=9)
    W0, H0 = INITS["nndsvda"](make_engine(X), 3, np.random.default_rng(0))
    W0[:, 0] = 0
    fit = nmfkit.fit(X, 3, solver="anls", init=(W0, H0.T), max_iter=200, tol=0)
    assert np.isfinite(fit.W).all() and fit.W.any(axis=0).all() and fit.H.any(axis=1).all()
    assert fit.relative_error < 2e-3          # noiseless rank 3: all three components in use
    weight = np.linalg.norm(fit.W, axis=0) * np.linalg.norm(fit.H, axis=1)
    assert weight.min() > 0.05 * weight.max()
