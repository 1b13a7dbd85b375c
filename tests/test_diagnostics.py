"""Convergence diagnostics: the seed-000 quantities against direct NumPy formulas, the monotonicity
report, and seed 002's auxiliary-function lemma over random draws."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import nmfkit
from nmfkit import diagnostics
from nmfkit.driver import run
from nmfkit.engines import make_engine
from nmfkit.solvers import Solver


# -- the reference implementation of the analysis, transcribed in its orientation (M ≈ U V) -------------
def seed_theta(Uk, Vk, Vk1):
    norm = np.sum(np.square(Uk @ (Vk - Vk1)))
    den = np.sum(np.square(Vk - Vk1))
    return norm / den if den != 0.0 else None


def seed_inner1(M, Uk, Vk, Vk1):
    return np.sum(np.transpose(Vk1 - Vk) * (M.T @ Uk - Vk1.T @ (Uk.T @ Uk)))


def seed_inner2(Uk, Vk, Vk1):          # the seed's triple loop, kept as the reference
    X = Uk.T @ Uk
    total = 0.0
    for i in range(Vk.shape[1]):
        vk, vk1 = Vk[:, i], Vk1[:, i]
        for z in range(Vk.shape[0]):
            for j in range(Vk.shape[0]):
                if j != z:
                    total += X[z, j] * np.square(np.sqrt(vk[z] / vk[j]) * (vk1[j] - vk[j])
                                                 - np.sqrt(vk[j] / vk[z]) * (vk1[z] - vk[z]))
    return 0.5 * total


def F(M, U, V):
    return 0.5 * np.sum(np.square(M - U @ V))


def tracked_fit(M, U, V, iters, **kw):
    iterates = [(U.copy(), V.copy())]
    res = nmfkit.fit(M, U.shape[1], solver="mu", init=(U, V), tol=0, max_iter=iters, track=True,
                     callback=lambda s: iterates.append((s.W.copy(), s.H.copy())) and False, **kw)
    return res, iterates


def seed_problem(seed=0, m=15, n=8, k=5):
    rng = np.random.default_rng(seed)
    return rng.random((m, n)), rng.random((m, k)), rng.random((k, n)) + 1.0


def test_step_quantities_match_direct_formulas():
    M, U, V = seed_problem()
    res, its = tracked_fit(M, U, V, 25)
    h = res.history
    for r in range(1, len(its)):
        (Uk, Vk), (Uk1, Vk1) = its[r - 1], its[r]
        assert h["theta_V"][r] == pytest.approx(seed_theta(Uk, Vk, Vk1), rel=1e-9)
        assert h["theta_U"][r] == pytest.approx(seed_theta(Vk1.T, Uk.T, Uk1.T), rel=1e-9)
        assert h["diff_norm_V"][r] == pytest.approx(0.5 * np.sum(np.square(Uk @ (Vk - Vk1))), rel=1e-9)
        assert h["decrease_V"][r] == pytest.approx(F(M, Uk, Vk) - F(M, Uk, Vk1), rel=1e-7, abs=1e-12)
        assert h["inner_product"][r] == pytest.approx(seed_inner1(M, Uk, Vk, Vk1), rel=1e-9, abs=1e-14)
        assert h["inner_product2"][r] == pytest.approx(seed_inner2(Uk, Vk, Vk1), rel=1e-9, abs=1e-14)
        assert h["objective"][r] == pytest.approx(F(M, Uk1, Vk1), rel=1e-10)
        assert h["relative_error"][r] == pytest.approx(np.linalg.norm(M - Uk1 @ Vk1) / np.linalg.norm(M),
                                                       rel=1e-8)
        sw = np.linalg.svd(Uk1.T @ Uk1, compute_uv=False)
        sv = np.linalg.svd(Vk1 @ Vk1.T, compute_uv=False)
        assert [h["sv_min_WtW"][r], h["sv_max_WtW"][r]] == pytest.approx([sw.min(), sw.max()], rel=1e-8)
        assert [h["sv_min_HHt"][r], h["sv_max_HHt"][r]] == pytest.approx([sv.min(), sv.max()], rel=1e-8)


def test_kkt_residual_is_the_projected_gradient_of_each_iterate():
    M, U, V = seed_problem(1)
    res, its = tracked_fit(M, U, V, 12)
    floor = np.finfo(float).eps ** 2
    for r, (W, H) in enumerate(its):
        R = W @ H - M
        gW, gH = R @ H.T, W.T @ R
        pW = np.where(W > floor, gW, np.minimum(gW, 0))
        pH = np.where(H > floor, gH, np.minimum(gH, 0))
        expect = np.sqrt(np.sum(pW ** 2) + np.sum(pH ** 2))
        assert res.history["kkt_residual"][r] == pytest.approx(expect, rel=1e-8)


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_two_inner_product_forms_agree_on_mu_steps(seed):
    M, U, V = seed_problem(seed, m=30, n=20, k=6)
    res, _ = tracked_fit(M, U, V, 200)
    h = res.history
    np.testing.assert_allclose(h["inner_product2"][1:], h["inner_product"][1:], rtol=1e-7, atol=1e-15)
    # g is quadratic: the decrease is the inner product plus ½‖U(Vk − Vk1)‖², and both are ≥ 0 on MU
    np.testing.assert_allclose(h["decrease_V"][1:], h["inner_product"][1:] + h["diff_norm_V"][1:],
                               rtol=1e-9, atol=1e-15)
    assert np.all(h["decrease_V"][1:] >= -1e-12) and np.all(h["inner_product"][1:] >= -1e-12)


def test_inner_products_differ_when_the_step_is_not_lee_seung():
    """The innerProd2 identity holds for MU steps only: a check that the test above can fail."""
    M, U, V = seed_problem(2)
    engine = make_engine(M)
    tr = diagnostics.Tracker()

    class Fake:
        loss, floor, penalty = "frobenius", 0.0, None

    Fake.engine = engine
    tr.start(Fake(), U, V.T.copy(), F(M, U, V))
    tr.record(U, V.T.copy(), U * 1.1, V.T * 0.9, None, engine, 0.0)
    c = tr.columns()
    assert abs(c["inner_product"][1] - c["inner_product2"][1]) > 1e-6 * abs(c["inner_product"][1])


def test_theta_zero_over_zero_is_carried_forward():
    M, U, V = seed_problem(4)
    engine = make_engine(M)
    Ht = V.T.copy()

    class Fake:
        loss, floor, penalty = "frobenius", 0.0, None

    Fake.engine = engine
    tr = diagnostics.Tracker(["theta"])
    tr.start(Fake(), U, Ht, 0.0)
    tr.record(U, Ht, U, Ht, None, engine, 0.0)            # nothing moved: undefined, nothing to carry
    tr.record(U, Ht, U * 0.5, Ht * 0.5, None, engine, 0.0)
    tr.record(U * 0.5, Ht * 0.5, U * 0.5, Ht * 0.5, None, engine, 0.0)   # undefined again: carried
    c = tr.columns()
    assert list(c) == ["theta_V", "theta_U"]
    assert np.isnan(c["theta_V"][1]) and np.isnan(c["theta_U"][1])
    assert c["theta_V"][2] == pytest.approx(seed_theta(U, V, 0.5 * V))
    assert c["theta_V"][3] == c["theta_V"][2] and c["theta_U"][3] == c["theta_U"][2]


def test_selection_custom_quantities_and_errors():
    X = np.random.default_rng(5).random((20, 12))

    def frob_W(step):
        return float(np.linalg.norm(step.W1))

    res = nmfkit.fit(X, 3, solver="mu", tol=0, max_iter=5, seed=0,
                     track=["theta_V", frob_W, ("ht_sum", lambda s: s.Ht1.sum())])
    assert set(res.history) == {"iteration", "seconds", "objective", "theta_V", "frob_W", "ht_sum"}
    assert res.history["frob_W"][-1] == pytest.approx(np.linalg.norm(res.W))
    assert res.history["ht_sum"][-1] == pytest.approx(res.H.sum())
    with pytest.raises(ValueError, match="tracked quantity"):
        nmfkit.fit(X, 3, solver="mu", max_iter=2, track=["thetaV"])
    with pytest.raises(TypeError, match="track must be"):
        nmfkit.fit(X, 3, solver="mu", max_iter=2, track="yes")


def test_tracking_on_sparse_kl_multiple_runs_and_persistence(tmp_path):
    rng = np.random.default_rng(6)
    X = rng.random((40, 25)) * (rng.random((40, 25)) < 0.4)
    dense = nmfkit.fit(X, 4, solver="mu", tol=0, max_iter=15, seed=1, track=True)
    sparse = nmfkit.fit(sp.csr_matrix(X), 4, solver="mu", tol=0, max_iter=15, seed=1, track=True)
    for col in ("theta_V", "inner_product2", "kkt_residual", "relative_error"):
        np.testing.assert_allclose(sparse.history[col], dense.history[col], rtol=1e-6, equal_nan=True)
    kl = nmfkit.fit(X, 4, solver="mu", loss="kl", tol=0, max_iter=10, seed=1, track=True)
    assert np.all(np.isnan(kl.history["inner_product"])) and np.all(np.isnan(kl.history["kkt_residual"]))
    assert np.all(np.isfinite(kl.history["theta_V"][1:])) and np.all(np.isfinite(kl.history["relative_error"]))
    assert kl.history["relative_error"][-1] == pytest.approx(kl.relative_error, rel=1e-8)
    multi = nmfkit.fit(X, 4, solver="mu", tol=0, max_iter=8, seed=2, n_runs=2, init="random", track=True)
    assert len(multi.history["theta_V"]) == 9
    back = nmfkit.Factorization.load(dense.save(tmp_path / "f"))
    np.testing.assert_array_equal(back.history["inner_product"], dense.history["inner_product"])
    frame = dense.to_frame()
    assert len(frame) == 16 and "kkt_residual" in (frame.columns if hasattr(frame, "columns")
                                                    else frame.dtype.names)


# -- monotonicity report ------------------------------------------------------------------------------
def test_objective_increases_with_rounding_slack():
    f = [10.0, 5.0, 5.0 + 1e-13, 4.0, 4.5, 4.4, 4.4 * (1 + 1e-9)]
    assert diagnostics.objective_increases(f) == [(4, pytest.approx(0.5)), (6, pytest.approx(4.4e-9))]
    assert diagnostics.objective_increases(f, scale=1e10) == [(4, pytest.approx(0.5))]


class IncreasingSolver(Solver):
    """A 'monotone' solver that is not: its objective goes up at iteration 3."""

    def __init__(self, engine):
        super().__init__(engine, "frobenius", 2.0)
        self.calls = 0

    def prepare(self, W, Ht):
        return W, Ht

    def objective(self, W, Ht):
        return 10.0

    def step(self, W, Ht):
        self.calls += 1
        return W.copy(), Ht.copy(), 10.0 - self.calls + (3.0 if self.calls == 3 else 0.0)


def test_monotonicity_violations_are_flagged_and_warned():
    X = np.random.default_rng(0).random((10, 6))
    W, Ht = np.ones((10, 2)), np.ones((6, 2))
    with pytest.warns(RuntimeWarning, match="increased at 1 iteration"):
        out = run(IncreasingSolver(make_engine(X)), W, Ht, max_iter=5, tol=0, monotone=True,
                  tracker=diagnostics.Tracker())
    assert out.monotonicity == [(3, pytest.approx(2.0))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = run(IncreasingSolver(make_engine(X)), W, Ht, max_iter=5, tol=0, monotone=False)
    assert out.monotonicity == []


def test_mu_fit_reports_no_increase():
    X = np.random.default_rng(1).random((50, 30))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = nmfkit.fit(X, 5, solver="mu", tol=0, max_iter=300, seed=0, track=True)
    assert res.monotonicity == [] and res.summary()["monotonicity"] == []


# -- seed 002's lemma ---------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 12), st.integers(1, 6), st.floats(1e-3, 1e3))
def test_auxiliary_function_majorizes(seed, m, k, scale):
    rng = np.random.default_rng(seed)
    W = rng.random((m, k)) * scale
    v = rng.random(m) * scale
    hk = rng.random(k) + 1e-3
    h = rng.random(k) * rng.choice([0.0, 1.0, 10.0]) * (rng.random(k) < 0.7)
    size = (np.abs(W).sum() * (np.abs(h).sum() + hk.sum()) + np.abs(v).sum()) ** 2
    gap = diagnostics.auxiliary_gap(W, h, hk, v)
    assert gap >= -1e-12 * size
    assert abs(diagnostics.auxiliary_gap(W, hk, hk, v)) <= 1e-12 * size
    d = h - hk                                   # the lemma's closed form: ½ dᵀ(K − WᵀW)d
    K = np.diag((W.T @ W @ hk) / hk)
    assert gap == pytest.approx(0.5 * d @ (K - W.T @ W) @ d, rel=1e-6, abs=1e-11 * size)
    # minimising G gives the multiplicative update, which therefore does not increase F
    h_mu = hk * (W.T @ v) / (W.T @ W @ hk)
    f = lambda x: 0.5 * np.sum((v - W @ x) ** 2)  # noqa: E731
    assert f(h_mu) <= f(hk) + 1e-12 * size


def test_auxiliary_gap_columns_and_errors():
    rng = np.random.default_rng(0)
    W, V, Hk, H = rng.random((8, 3)), rng.random((8, 5)), rng.random((3, 5)) + 0.1, rng.random((3, 5))
    gaps = diagnostics.auxiliary_gap(W, H, Hk, V)
    assert gaps.shape == (5,)
    assert gaps[2] == pytest.approx(diagnostics.auxiliary_gap(W, H[:, 2], Hk[:, 2], V[:, 2]))
    with pytest.raises(ValueError, match="strictly positive"):
        diagnostics.auxiliary_gap(W, H, Hk * 0, V)
    with pytest.raises(ValueError, match="shapes"):
        diagnostics.auxiliary_gap(W, H[:2], Hk, V)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_what_is_monotone_with_and_without_extrapolation(dtype, rtol):
    """decrease_V ≥ 0 when the recorded H is the half-step's own result; hals' extrapolated H may
    raise g, but the objective of the recorded iterates never rises (as the guide says)."""
    X = np.random.default_rng(3).random((30, 20)).astype(dtype)
    for options in ({"solver": "mu"}, {"solver": "anls"}, {"solver": "hals", "extrapolate": False}):
        steps = nmfkit.fit(X, 4, seed=0, tol=0, max_iter=40, track=True, **options).history["decrease_V"][1:]
        assert np.all(steps >= -rtol * np.max(np.abs(steps))), options
    fit = nmfkit.fit(X, 4, seed=0, tol=0, max_iter=40, track=True)
    assert fit.options["solver"] == "hals" and np.any(fit.history["decrease_V"][1:] < 0)
    objective = fit.history["objective"]
    assert np.all(np.diff(objective) <= rtol * objective[0]) and fit.monotonicity == []
