"""KL coordinate descent (solver="ccd"): monotone, safe on zeros, kernels = twins, sparse = dense."""

import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit
from nmfkit.engines import make_engine
from nmfkit.solvers._ccd_kernels import kl_cd_csr, kl_cd_csr_numpy, kl_cd_dense, kl_cd_dense_numpy
from nmfkit.solvers.ccd import kl_cd_rows


def kl(X, W, Ht):
    """D_KL(X‖W Htᵀ) straight from the definition, in float64."""
    X = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    L = W.astype(np.float64) @ Ht.astype(np.float64).T
    pos = X > 0
    return float(np.sum(X[pos] * np.log(X[pos] / L[pos])) - X.sum() + L.sum())


def random_data(seed, m=40, n=30, density=0.4, zero_rows=2, zero_cols=2, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.random((m, n)) * (rng.random((m, n)) < density)
    X[:zero_rows] = 0
    X[:, :zero_cols] = 0
    return X.astype(dtype)


def planted_data(seed, m=50, n=40, k=4, dtype=np.float64):
    """Poisson counts from a planted rank-k model, plus an all-zero row and column."""
    rng = np.random.default_rng(seed)
    L = rng.gamma(0.5, 1.0, (m, k)) @ rng.gamma(0.5, 3.0, (k, n))
    X = rng.poisson(L).astype(dtype)
    X[3] = 0
    X[:, 7] = 0
    return X


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make", [random_data, planted_data])
def test_objective_never_increases(make, dtype, sparse):
    for seed in range(3):
        X = make(seed, dtype=dtype)
        data = sp.csr_matrix(X) if sparse else X
        res = nmfkit.fit(data, 4, solver="ccd", loss="kl", init="random", seed=seed, max_iter=40, tol=0,
                         objective_every=1, extrapolate=False)
        f = np.asarray(res.history["objective"])
        assert len(f) == 41 and np.all(np.isfinite(f))
        slack = (1e-12 if dtype == np.float64 else 1e-6) * np.abs(f[:-1])
        assert np.all(np.diff(f) <= slack), np.max(np.diff(f) - slack)
        assert res.W.dtype == dtype and res.H.dtype == dtype
        assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H))
        assert res.W.min() >= 0 and res.H.min() >= 0
        assert not res.W[X.sum(axis=1) == 0].any() and not res.H[:, X.sum(axis=0) == 0].any()
        assert f[-1] == pytest.approx(kl(X, res.W, res.H.T), rel=1e-9 if dtype == np.float64 else 1e-5)


def test_left_step_cannot_overshoot():
    """f(w) = 101 w − log w (row x = (1, 0), Otherᵀ = (1, 100)) from w = 1: g = 100, h = 1, so plain
    projected Newton lands at 0 where f = ∞; the damped step t* = −g/(h + R g) must decrease f."""
    def f(w):
        return 101.0 * w - np.log(w)

    X, Other = np.array([[1.0, 0.0]]), np.array([[1.0], [100.0]])
    assert max(0.0, 1.0 - 100.0 / 1.0) == 0.0 and f(0.0 + 1e-300) > f(1.0)   # what Newton would do
    for kernel in (kl_cd_dense, kl_cd_dense_numpy):
        w, path = 1.0, []
        for _ in range(12):
            new = kernel(X, np.array([[w]]), Other, 1, 0.0)[0][0, 0]
            assert 0 < new <= w and f(new) <= f(w)
            w = new
            path.append(w)
        assert f(path[0]) < f(1.0) and path[4] < path[0]
        assert w == pytest.approx(1 / 101, rel=1e-12)      # and it still converges quadratically


def test_every_coordinate_step_decreases_the_row_objective():
    """Random 1-D problems, both directions, starts near and far from the optimum: one safeguarded
    step never raises Σ λ − x log λ (checked from its definition)."""
    rng = np.random.default_rng(5)
    for trial in range(300):
        n = int(rng.integers(1, 12))
        x = rng.random(n) * (rng.random(n) < 0.6) * 10.0 ** rng.uniform(-2, 2)
        Other = rng.random((n, 2)) * (rng.random((n, 2)) < 0.8)
        F = rng.random((1, 2)) * 10.0 ** rng.uniform(-4, 2, size=(1, 2))
        lam = (F @ Other.T)[0]
        if np.any(lam[x > 0] <= 0):
            continue

        def f(Fr):
            L = (Fr @ Other.T)[0]
            return np.sum(L) - np.sum(x[x > 0] * np.log(L[x > 0]))

        for kernel in (kl_cd_dense, kl_cd_dense_numpy):
            new = kernel(x[None, :], F, Other, 1, 0.0)[0]
            assert np.all(new >= 0)
            assert f(new) <= f(F) + 1e-12 * abs(f(F)), (trial, F, new)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("steps", [1, 3])
def test_kernels_match_their_twins(dtype, steps):
    rng = np.random.default_rng(2)
    X = random_data(2, m=37, n=23, dtype=dtype)
    F = (rng.random((37, 5)) * (rng.random((37, 5)) < 0.8)).astype(dtype)   # exact zeros too
    Other = rng.random((23, 5)).astype(dtype) + 0.01
    F[:, 0] += 0.1                                                           # λ > 0 wherever x > 0
    rtol = 1e-10 if dtype == np.float64 else 2e-5
    S = sp.csr_matrix(X)
    runs = {"dense": kl_cd_dense(X, F, Other, steps, 0.0, True),
            "twin": kl_cd_dense_numpy(X, F, Other, steps, 0.0, True),
            "F-ordered": kl_cd_dense(np.asfortranarray(X), F, Other, steps, 0.0, True),
            "csr": kl_cd_csr(S.indptr, S.indices, S.data, F, Other, steps, 0.0, True),
            "csr twin": kl_cd_csr_numpy(S.indptr, S.indices, S.data, F, Other, steps, 0.0, True)}
    F_ref, loss_ref = runs["twin"]
    assert loss_ref == pytest.approx(kl(X, F_ref, Other), rel=1e-10)
    for name, (Fn, loss) in runs.items():
        assert Fn.dtype == dtype and Fn.shape == F.shape, name
        np.testing.assert_allclose(Fn, F_ref, rtol=rtol, atol=rtol * F_ref.max(), err_msg=name)
        assert loss == pytest.approx(loss_ref, rel=rtol), name
    assert not np.shares_memory(runs["dense"][0], F)
    # the transposed data (an F-ordered view, as engine.transpose() gives) updates the other factor
    G, _ = kl_cd_dense(X.T, Other, F_ref, steps, 0.0)
    np.testing.assert_allclose(G, kl_cd_dense_numpy(np.ascontiguousarray(X.T), Other, F_ref, steps, 0.0)[0],
                               rtol=rtol, atol=rtol * G.max())


def test_loss_is_none_unless_asked():
    X = planted_data(0)
    e = make_engine(X)
    rng = np.random.default_rng(0)
    W, Ht = rng.random((50, 4)), rng.random((40, 4))
    Wn, loss = kl_cd_rows(e, W, Ht, 2, 0.0)
    assert loss is None
    Wn2, loss2 = kl_cd_rows(make_engine(sp.csr_matrix(X)), W, Ht, 2, 0.0, want_loss=True)
    np.testing.assert_allclose(Wn, Wn2, rtol=1e-12)
    assert loss2 == pytest.approx(kl(X, Wn2, Ht), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sparse_equals_dense(dtype):
    X = planted_data(1, dtype=dtype)
    rng = np.random.default_rng(1)
    W0, H0 = rng.random((50, 4)), rng.random((4, 40))
    fits = [nmfkit.fit(data, 4, solver="ccd", loss="kl", init=(W0, H0), max_iter=30, tol=0)
            for data in (X, sp.csr_matrix(X))]
    tol = 1e-8 if dtype == np.float64 else 1e-4
    for A, B in ((fits[0].W, fits[1].W), (fits[0].H, fits[1].H)):
        np.testing.assert_allclose(A, B, rtol=tol, atol=tol * A.max())
    assert fits[0].loss == pytest.approx(fits[1].loss, rel=tol)
    assert fits[0].n_iter == fits[1].n_iter == 30


def test_objective_every_ten_iterations_without_extrapolation():
    X = planted_data(2)
    res = nmfkit.fit(X, 4, solver="ccd", loss="kl", init="random", seed=0, max_iter=25, tol=0, extrapolate=False)
    assert list(res.history["iteration"]) == [0, 10, 20, 25]
    res = nmfkit.fit(X, 4, solver="ccd", loss="kl", init="random", seed=0, max_iter=25, tol=0)
    assert list(res.history["iteration"]) == list(range(26))    # extrapolation needs every objective


def test_zero_start_entries_are_safe():
    """nndsvd starts contain exact zeros (λ = 0 at some nonzero x): the floored start stays finite."""
    X = planted_data(3)
    res = nmfkit.fit(X, 4, solver="ccd", loss="kl", init="nndsvd", max_iter=30, tol=0, objective_every=1)
    f = np.asarray(res.history["objective"])
    assert np.all(np.isfinite(f)) and np.all(np.diff(f) <= 1e-12 * f[:-1])
    W0, H0 = np.zeros((50, 4)), np.zeros((4, 40))
    with pytest.raises(ValueError, match="all zeros"):   # W = H = 0 is refused as a start
        nmfkit.fit(X, 4, solver="ccd", loss="kl", init=(W0, H0), max_iter=30, tol=0)
    W0[0, 0] = H0[0, 0] = 1.0                            # exact zeros everywhere else
    res = nmfkit.fit(X, 4, solver="ccd", loss="kl", init=(W0, H0), max_iter=30, tol=0)
    assert np.isfinite(res.loss) and res.loss < kl(X, np.full((50, 4), 1e-3), np.full((40, 4), 1e-3))


def test_beats_ten_times_as_many_multiplicative_updates():
    # Deterministic stand-in for "faster than mu": a ccd iteration costs 1-4x a mu iteration
    # (benchmarks/RESULTS.md), so 40 ccd iterations below 400 mu ones is a win in time too.
    rng = np.random.default_rng(4)
    X = rng.poisson(rng.gamma(0.5, 1.0, (300, 6)) @ rng.gamma(0.5, 4.0, (6, 200))).astype(float)
    W0, H0 = rng.random((300, 6)), rng.random((6, 200))
    args = dict(loss="kl", init=(W0, H0), tol=0)
    ccd = nmfkit.fit(X, 6, solver="ccd", max_iter=40, **args)
    mu = nmfkit.fit(X, 6, solver="mu", max_iter=400, **args)
    assert ccd.loss < mu.loss, (ccd.loss, mu.loss)


def test_refuses_what_it_does_not_support():
    X = planted_data(0)
    with pytest.raises(ValueError, match="penalt"):
        nmfkit.fit(X, 3, solver="ccd", loss="kl", alpha_W=0.1)
    with pytest.raises(ValueError, match="does not support loss 'frobenius'"):
        nmfkit.fit(X, 3, solver="ccd", loss="frobenius")
    for name in ("ccd", "CCD"):                      # without loss=, a KL-only solver fits its own loss
        assert nmfkit.fit(X, 3, solver=name, max_iter=2).options["loss"] == "kl"
    with pytest.raises(TypeError, match="unknown options"):
        nmfkit.fit(X, 3, solver="ccd", loss="kl", inner_alpha=0.5)
    with pytest.raises(ValueError, match="inner_steps"):
        nmfkit.fit(X, 3, solver="ccd", loss="kl", inner_steps=0)
    mask = np.ones(X.shape, bool)
    mask[0, 0] = False
    with pytest.raises(ValueError, match="does not run on data with missing entries"):
        nmfkit.fit(X, 3, solver="ccd", loss="kl", mask=mask)


def test_auto_picks_ccd_for_kl_and_mu_when_penalised():
    X = np.random.default_rng(0).random((30, 20))
    assert nmfkit.fit(X, 3, loss="kl", max_iter=5).options["solver"] == "ccd"
    assert nmfkit.fit(sp.csr_matrix(X), 3, loss="kl", max_iter=5).options["solver"] == "ccd"
    assert nmfkit.fit(X, 3, loss="kl", max_iter=5, alpha_W=0.1).options["solver"] == "mu"
    assert nmfkit.fit(X, 3, loss="kl", max_iter=5, alpha_H=0.1).options["solver"] == "mu"


# -- extrapolation (Ang & Gillis 2019) ------------------------------------------------------------------
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_extrapolated_objective_never_increases(dtype, sparse):
    """Every returned pair is the best so far: a rejected extrapolation is undone, so the recorded
    objective is non-increasing and equals the KL divergence at the returned factors."""
    restarts = 0
    for seed in range(3):
        X = planted_data(seed, dtype=dtype)
        data = sp.csr_matrix(X) if sparse else X
        res = nmfkit.fit(data, 4, solver="ccd", loss="kl", init="random", seed=seed, max_iter=60, tol=0,
                         extrapolate=True)
        f = np.asarray(res.history["objective"])
        assert len(f) == 61 and np.all(np.isfinite(f))          # the loss comes with every step
        slack = (1e-12 if dtype == np.float64 else 1e-6) * np.abs(f[:-1])
        assert np.all(np.diff(f) <= slack), np.max(np.diff(f) - slack)
        restarts += int(np.sum(np.diff(f) == 0))                # a rejected step repeats the best pair
        assert res.W.dtype == dtype and res.W.min() >= 0 and res.H.min() >= 0
        floor = np.finfo(dtype).eps ** 2                        # all-zero rows/columns go to the floor
        assert res.W[X.sum(axis=1) == 0].max() <= floor and res.H[:, X.sum(axis=0) == 0].max() <= floor
        assert f[-1] == pytest.approx(kl(X, res.W, res.H.T), rel=1e-9 if dtype == np.float64 else 1e-5)
    assert restarts > 0                                          # the rejection branch ran


def test_rejected_extrapolation_returns_the_best_pair():
    """Driven by hand: each step returns either a new pair with a lower objective or exactly the
    previous best arrays (identity), and a rejection lowers β."""
    from nmfkit.solvers.ccd import KLCoordinateDescent
    X = planted_data(5)
    e = make_engine(X)
    rng = np.random.default_rng(5)
    solver = KLCoordinateDescent(e, "kl", 1.0, extrapolate=True)
    W, Ht = solver.prepare(rng.random((50, 4)), rng.random((40, 4)))
    best = kl(X, W, Ht)
    rejected = 0
    for _ in range(80):
        beta = solver._state.beta if solver._state is not None else None
        W_new, Ht_new, obj = solver.step(W, Ht)
        assert obj == pytest.approx(kl(X, W_new, Ht_new), rel=1e-10)
        if W_new is W:                                         # rejected: the same pair, β shrinks
            assert Ht_new is Ht and obj == best and solver._state.beta < beta
            rejected += 1
        else:
            assert obj <= best * (1 + 1e-12)
        W, Ht, best = W_new, Ht_new, obj
    assert rejected == solver.restarts > 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_extrapolated_sparse_equals_dense(dtype):
    X = planted_data(1, dtype=dtype)
    rng = np.random.default_rng(1)
    W0, H0 = rng.random((50, 4)), rng.random((4, 40))
    fits = [nmfkit.fit(data, 4, solver="ccd", loss="kl", init=(W0, H0), max_iter=30, tol=0, extrapolate=True)
            for data in (X, sp.csr_matrix(X))]
    tol = 1e-8 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(fits[0].W, fits[1].W, rtol=tol, atol=tol * fits[0].W.max())
    assert fits[0].loss == pytest.approx(fits[1].loss, rel=tol)


def test_extrapolation_option_is_checked():
    X = planted_data(0)
    with pytest.raises(TypeError, match="extrapolate must be True or False"):
        nmfkit.fit(X, 3, solver="ccd", loss="kl", extrapolate="yes")


def test_extrapolation_takes_fewer_iterations():
    """On planted Poisson data both runs reach the same minimum, the extrapolated one in fewer
    iterations (to within 1e-2 of it: on these seeds 10-16 against 15-25 iterations)."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        X = rng.poisson(rng.gamma(0.5, 1.0, (200, 8)) @ rng.gamma(0.5, 2.0, (8, 150))).astype(float)
        W0, H0 = rng.random((200, 8)), rng.random((8, 150))
        f = {ex: np.asarray(nmfkit.fit(X, 8, solver="ccd", loss="kl", init=(W0, H0), max_iter=120, tol=0,
                                       objective_every=1, extrapolate=ex).history["objective"])
             for ex in (False, True)}
        best = min(f[False][-1], f[True][-1])
        assert f[True][-1] == pytest.approx(f[False][-1], rel=1e-6)
        reach = {ex: int(np.argmax(v <= best * (1 + 1e-2))) for ex, v in f.items()}
        assert 0 < reach[True] < reach[False], reach


@pytest.mark.parametrize("sparse", [False, True])
def test_extrapolated_resume_is_bit_identical(tmp_path, sparse):
    """The extrapolation's state (previous iterates, β, β̄) travels with the checkpoint."""
    X = planted_data(6)
    data = sp.csr_matrix(X) if sparse else X
    path = tmp_path / "fit.ckpt.npz"
    args = dict(solver="ccd", loss="kl", seed=3, max_iter=40, tol=0)
    full = nmfkit.fit(data, 4, **args)
    part = nmfkit.fit(data, 4, checkpoint=path, checkpoint_every=7, callback=lambda s: s.iteration == 23, **args)
    assert part.stop_reason == "callback"
    resumed = nmfkit.fit(data, 4, resume=path, **args)
    assert resumed.n_iter == 40
    np.testing.assert_array_equal(resumed.W, full.W)
    np.testing.assert_array_equal(resumed.H, full.H)
    np.testing.assert_array_equal(resumed.history["objective"], full.history["objective"])
