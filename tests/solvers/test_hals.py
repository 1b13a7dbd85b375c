"""Accelerated HALS with extrapolation: monotone returned sequence, restarts,
dead-component revival, penalties, options and the product cache."""
import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit
from nmfkit.driver import run
from nmfkit.engines import make_engine
from nmfkit.registry import INITS, SOLVERS
from nmfkit.solvers.hals import inner_sweeps


def planted(m, n, k, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    L = rng.random((m, k)) @ rng.random((k, n))
    return np.abs(L + noise * L.std() * rng.standard_normal(L.shape))


def start(engine, k, seed=0):
    return INITS["nndsvda"](engine, k, np.random.default_rng(seed))


def hals(engine, **options):
    return SOLVERS["hals"].cls(engine, "frobenius", 2.0, **options)


@pytest.mark.parametrize("seed", range(4))
def test_returned_objective_never_increases_and_restarts_happen(seed):
    X = planted(120, 90, 5, seed=seed)
    e = make_engine(X)
    solver = hals(e)
    out = run(solver, *start(e, 5), max_iter=150, tol=0)
    obj = out.history["objective"]
    assert np.all(np.diff(obj) <= 0)            # exact: the best pair is returned
    assert solver.restarts > 0                  # the restart branch ran
    assert out.objective == pytest.approx(e.frobenius_exact(out.W, out.Ht), rel=1e-8)


def test_extrapolation_speeds_up_convergence():
    X = planted(200, 150, 6, seed=0)
    e = make_engine(X)
    W0, H0 = start(e, 6)
    with_ex = run(hals(e), W0, H0, max_iter=30, tol=0).history["objective"]
    without = run(hals(e, extrapolate=False), W0, H0, max_iter=30, tol=0).history["objective"]
    assert with_ex[-1] < 0.5 * without[-1]


def test_step_does_not_modify_inputs_and_objective_is_exact():
    X = planted(60, 40, 3, seed=1)
    e = make_engine(X)
    solver = hals(e)
    W, Ht = solver.prepare(*start(e, 3))
    for _ in range(5):
        W0, H0 = W.copy(), Ht.copy()
        W_new, Ht_new, obj = solver.step(W, Ht)
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(Ht, H0)
        assert obj == pytest.approx(e.frobenius_exact(W_new, Ht_new), rel=1e-9)
        if solver.cache:
            np.testing.assert_allclose(solver.cache["XHt"], X @ Ht_new)
            np.testing.assert_allclose(solver.cache["HtH"], Ht_new.T @ Ht_new)
        W, Ht = W_new, Ht_new


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_dead_components_in_the_start_are_revived(kind):
    X = planted(80, 60, 4, noise=0.0, seed=2)
    W0, H0 = start(make_engine(X), 4)
    W0[:, 1] = 0                        # a dead column of W
    H0[:, 3] = 0                        # a dead row of H (column of Ht)
    data = sp.csr_matrix(X) if kind == "sparse" else X
    fit = nmfkit.fit(data, 4, solver="hals", init=(W0, np.ascontiguousarray(H0.T)), max_iter=300, tol=0)
    assert np.isfinite(fit.W).all() and np.isfinite(fit.H).all()
    assert fit.W.any(axis=0).all() and fit.H.any(axis=1).all()
    assert fit.relative_error < 1e-3     # all four planted components found again


def test_components_that_die_during_the_run_are_revived():
    # Rank 2 data fitted with k = 6: surplus components get squeezed out.
    rng = np.random.default_rng(5)
    X = rng.random((50, 2)) @ rng.random((2, 40))
    e = make_engine(X)
    solver = hals(e)
    W0 = np.zeros((50, 6)) + 1e-3
    W0[:, :2] = rng.random((50, 2))
    H0 = rng.random((40, 6))
    H0[:, 2:] = 1e-9
    out = run(solver, W0, H0, max_iter=200, tol=0)
    assert np.isfinite(out.W).all() and np.isfinite(out.Ht).all()
    assert np.all(np.diff(out.history["objective"]) <= 0)
    assert np.sqrt(2 * out.objective / e.sqnorm) < 1e-4
    # No component is left dead in W (a column of Ht may be transiently zero
    # right after its partner was revived, and is recomputed next step).
    assert out.W.any(axis=0).all()


def test_revival_keeps_the_product_unchanged():
    from nmfkit.solvers.hals import revive
    rng = np.random.default_rng(0)
    F, other = rng.random((10, 3)), rng.random((8, 3))
    F[:, 1] = 0
    before = F @ other.T
    F2, other2, count = revive(F.copy(), other, 0.5)
    assert count == 1 and (F2[:, 1] == 0.5).all() and (other2[:, 1] == 0).all()
    np.testing.assert_array_equal(F2 @ other2.T, before)
    assert other[:, 1].all()            # the caller's array is not modified


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("alpha,l1_ratio", [(0.05, 1.0), (0.05, 0.0), (0.02, 0.5)])
def test_penalties_match_scikit_learn_cd(alpha, l1_ratio):
    sklearn = pytest.importorskip("sklearn.decomposition")
    X = planted(60, 40, 3, seed=3)
    e = make_engine(X)
    W0, H0 = start(e, 3)
    fit = nmfkit.fit(X, 3, solver="hals", init=(W0, H0.T), alpha_W=alpha, l1_ratio=l1_ratio,
                     max_iter=2000, tol=1e-10)
    ref = sklearn.NMF(3, init="custom", solver="cd", alpha_W=alpha, l1_ratio=l1_ratio,
                      max_iter=5000, tol=1e-10)
    W_ref = ref.fit_transform(X, W=W0.copy(), H=np.ascontiguousarray(H0.T))
    solver = hals(e, alpha_W=alpha, l1_ratio=l1_ratio)
    ours = solver.objective(fit.W, fit.H.T)
    theirs = solver.objective(W_ref, ref.components_.T)
    assert ours <= theirs * (1 + 1e-4)
    assert ours == pytest.approx(theirs, rel=1e-2)


def test_l1_penalty_makes_factors_sparser():
    X = planted(80, 60, 4, seed=4)
    plain = nmfkit.fit(X, 4, solver="hals", max_iter=300, seed=0)
    sparse = nmfkit.fit(X, 4, solver="hals", max_iter=300, seed=0, alpha_W=0.2, l1_ratio=1.0)
    assert (sparse.W == 0).mean() > (plain.W == 0).mean()


def test_inner_sweep_caps_follow_gillis_glineur():
    e = make_engine(np.ones((1000, 100)))
    nW, nH = inner_sweeps(e, 10, 0.5)
    # ρ_W = 1 + (1e5 + 1000)/(1000·11), ρ_H = 1 + (1e5 + 1e4)/(100·11)
    assert (nW, nH) == (int(1 + 0.5 * (1 + 101000 / 11000)), int(1 + 0.5 * (1 + 110000 / 1100)))
    sparse = make_engine(sp.random(1000, 100, density=0.01, random_state=0, format="csr"))
    assert inner_sweeps(sparse, 10, 0.5)[0] < nW       # uses nnz, not m·n


def test_options_are_checked():
    e = make_engine(planted(10, 8, 2))
    with pytest.raises(TypeError, match="unknown options"):
        hals(e, inner_sweeps=3)
    with pytest.raises(TypeError, match="extrapolate"):
        hals(e, extrapolate="yes")
    with pytest.raises(ValueError, match="inner_delta"):
        hals(e, inner_delta=-1)


def test_auto_picks_hals_for_frobenius():
    X = planted(40, 30, 3, seed=6)
    fit = nmfkit.fit(X, 3, seed=0)
    assert fit.options["solver"] == "hals"
    assert fit.relative_error < 0.03
    assert nmfkit.fit(sp.csr_matrix(X), 3, seed=0).options["solver"] == "hals"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", [{}, {"alpha_W": 0.02, "l1_ratio": 0.5}])
def test_compiled_helpers_change_nothing(monkeypatch, dtype, options):
    """The one-pass extrapolation, the dead-column scan and the lane-or-row choice of the sweep kernel
    are speed only: with their NumPy twins (and one row at a time everywhere) the fit is the same, bit
    for bit, iterates and history alike."""
    from nmfkit.solvers import _hals_kernels
    from nmfkit.solvers import hals as hals_module
    X = planted(150, 70, 6, seed=5).astype(dtype)
    X[:, 3] = 0                                         # a dead column of H from the start
    fast = nmfkit.fit(X, 6, solver="hals", max_iter=60, tol=0, seed=2, **options)
    monkeypatch.setattr(hals_module, "extrapolate", _hals_kernels.extrapolate_numpy)
    monkeypatch.setattr(hals_module, "zero_columns", _hals_kernels.zero_columns_numpy)
    monkeypatch.setattr(_hals_kernels, "use_lanes", lambda F: False)
    plain = nmfkit.fit(X, 6, solver="hals", max_iter=60, tol=0, seed=2, **options)
    np.testing.assert_array_equal(fast.W, plain.W)
    np.testing.assert_array_equal(fast.H, plain.H)
    np.testing.assert_array_equal(fast.history["objective"], plain.history["objective"])
