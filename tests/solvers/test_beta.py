"""β-divergence MU (Févotte–Idier exponent): monotone for every β, IS needs X > 0, sparse = dense."""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nmfkit
from nmfkit.registry import SOLVERS, resolve_loss
from nmfkit.solvers.mu import beta_exponent


def d_beta(X, L, beta):
    """The β-divergence written entry by entry from its definition (Févotte & Idier 2011, eq. 2)."""
    X, L = np.asarray(X, float), np.asarray(L, float)
    if beta == 0:
        return np.sum(X / L - np.log(X / L) - 1)
    if beta == 1:
        return np.sum(np.where(X > 0, X * np.log(np.where(X > 0, X, 1) / L), 0) - X + L)
    return np.sum(X ** beta / (beta * (beta - 1)) + L ** beta / beta - X * L ** (beta - 1) / (beta - 1))


def positive_planted(m=40, n=30, k=3, seed=0):
    rng = np.random.default_rng(seed)
    L = (rng.random((m, k)) + 0.2) @ (rng.random((k, n)) + 0.2)
    return L * rng.gamma(50.0, 1 / 50.0, size=L.shape)        # multiplicative noise, strictly positive


def test_exponent_of_fevotte_idier():
    assert beta_exponent(0.0) == 0.5 and beta_exponent(-1.0) == pytest.approx(1 / 3)
    assert beta_exponent(0.5) == pytest.approx(1 / 1.5)
    assert beta_exponent(1.0) == beta_exponent(1.5) == beta_exponent(2.0) == 1.0
    assert beta_exponent(3.0) == 0.5


def test_losses_are_registered_and_resolved():
    assert {"frobenius", "kl", "is", "beta"} <= set(SOLVERS["mu"].losses)
    assert resolve_loss("is") == ("is", 0.0)
    assert resolve_loss("itakura-saito") == ("is", 0.0)
    assert resolve_loss("frobenius", beta=1.5) == ("beta", 1.5)
    assert resolve_loss("frobenius", beta=0) == ("is", 0.0)
    with pytest.raises(ValueError, match="needs its exponent"):
        resolve_loss("beta")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), m=st.integers(2, 20), n=st.integers(2, 20), k=st.integers(1, 4),
       beta=st.sampled_from([-0.5, 0.0, 0.3, 0.5, 1.5, 2.5, 3.0, 4.0]),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_objective_never_increases_for_every_beta(seed, m, n, k, beta, dtype):
    rng = np.random.default_rng(seed)
    X = (rng.random((m, n)) + 0.05).astype(dtype)
    k = min(k, m, n)
    f = nmfkit.fit(X, k, solver="mu", beta=beta, init="random", seed=seed, max_iter=40, tol=0)
    obj = f.history["objective"]
    assert np.all(np.isfinite(obj))
    # rounding slack: relative to f, plus summation error on the scale of the start (an exact fit reaches 0)
    slack = (1e-9 if dtype == np.float64 else 1e-4) * np.abs(obj[:-1]) + 50 * np.finfo(dtype).eps * obj[0]
    assert np.all(np.diff(obj) <= slack), (np.diff(obj).max(), beta)
    assert f.W.dtype == dtype and f.W.min() > 0 and f.H.min() > 0


def test_large_beta_from_a_far_start_stays_monotone():
    """β = 4 is outside [1, 2], where only the exponent γ = 1/(β−1) carries the proof (anchors §5.10a);
    a start far from the data (entries up to 2 against data near 0.3) is where steps are largest."""
    X = positive_planted(seed=4)
    rng = np.random.default_rng(1)
    W0, H0 = rng.random((40, 3)) * 2, rng.random((3, 30)) * 2
    ours = nmfkit.fit(X, 3, solver="mu", beta=4.0, init=(W0, H0), max_iter=60, tol=0)
    assert np.all(np.diff(ours.history["objective"]) <= 1e-9 * ours.history["objective"][:-1])


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.5, 3.0])
def test_reported_loss_is_the_beta_divergence(beta):
    X = positive_planted()
    f = nmfkit.fit(X, 3, solver="mu", beta=beta, max_iter=20, tol=0, seed=0)
    assert f.loss == pytest.approx(d_beta(X, f.W @ f.H, beta), rel=1e-9)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.5, 3.0])
def test_fits_planted_data_well(beta):
    X = positive_planted()
    f = nmfkit.fit(X, 3, solver="mu", beta=beta, max_iter=400, tol=1e-9, seed=0)
    assert f.relative_error < 0.2
    obj = f.history["objective"]
    assert obj[-1] < 0.05 * obj[0]


def test_is_needs_strictly_positive_data():
    X = positive_planted()
    X[3, 4] = 0.0
    with pytest.raises(ValueError, match="strictly positive"):
        nmfkit.fit(X, 3, solver="mu", loss="is", max_iter=5)
    with pytest.raises(ValueError, match="strictly positive"):
        nmfkit.fit(X, 3, solver="mu", beta=-1.0, max_iter=5)
    with pytest.raises(ValueError, match="strictly positive"):
        nmfkit.fit(sp.csr_matrix(X), 3, solver="mu", loss="is", max_iter=5)
    f = nmfkit.fit(X, 3, solver="mu", beta=0.5, max_iter=5)     # zeros are fine for β > 0
    assert np.isfinite(f.loss)
    M = np.ones_like(X, dtype=bool)
    M[3, 4] = False                                             # the zero is missing: IS is fine again
    g = nmfkit.fit(X, 3, solver="mu", loss="is", mask=M, max_iter=5)
    assert np.isfinite(g.loss)


@pytest.mark.parametrize("beta", [0.5, 1.5, 3.0])
def test_sparse_beta_equals_dense(beta):
    rng = np.random.default_rng(0)
    X = rng.random((45, 35)) * (rng.random((45, 35)) < 0.3)
    d = nmfkit.fit(X, 3, solver="mu", beta=beta, max_iter=25, tol=0, seed=0)
    s = nmfkit.fit(sp.csr_matrix(X), 3, solver="mu", beta=beta, max_iter=25, tol=0, seed=0)
    np.testing.assert_allclose(s.W, d.W, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(s.history["objective"], d.history["objective"], rtol=1e-9)


def test_sparse_blocks_do_not_change_the_result(monkeypatch):
    from nmfkit.engines import sparse
    rng = np.random.default_rng(2)
    X = sp.csr_matrix(rng.random((50, 20)) * (rng.random((50, 20)) < 0.4))
    whole = nmfkit.fit(X, 2, solver="mu", beta=1.5, max_iter=10, tol=0, seed=0)
    monkeypatch.setattr(sparse, "BLOCK", 60)                    # 3 rows per block
    blocked = nmfkit.fit(X, 2, solver="mu", beta=1.5, max_iter=10, tol=0, seed=0)
    np.testing.assert_allclose(blocked.W, whole.W, rtol=1e-10)


def test_beta_one_and_two_are_kl_and_frobenius():
    X = positive_planted()
    a = nmfkit.fit(X, 3, solver="mu", beta=1.0, max_iter=10, tol=0, seed=0)
    b = nmfkit.fit(X, 3, solver="mu", loss="kl", max_iter=10, tol=0, seed=0)
    assert a.options["loss"] == "kl" and a.loss == pytest.approx(b.loss)


def test_auto_picks_mu_for_beta_and_other_solvers_refuse():
    X = positive_planted()
    f = nmfkit.fit(X, 3, beta=1.5, max_iter=5)
    assert f.options["solver"] == "mu"
    with pytest.raises(ValueError, match="does not support loss"):
        nmfkit.fit(X, 3, solver="pgd", loss="is", max_iter=5)
