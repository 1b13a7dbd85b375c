"""Multiplicative updates: monotone (seed 002's theorem), safe on zeros, dtype-preserving."""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nmfkit
from nmfkit.solvers import floor_of


def _data(seed, m, n, density, zero_rows, zero_cols, dtype):
    rng = np.random.default_rng(seed)
    X = rng.random((m, n)) * (rng.random((m, n)) < density)
    X[:zero_rows] = 0
    X[:, :zero_cols] = 0
    if not X.any():
        X[-1, -1] = 1.0
    return X.astype(dtype)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), m=st.integers(2, 30), n=st.integers(2, 30), k=st.integers(1, 6),
       density=st.sampled_from([1.0, 0.5, 0.1]), zero_rows=st.integers(0, 2), zero_cols=st.integers(0, 2),
       dtype=st.sampled_from([np.float64, np.float32]), loss=st.sampled_from(["frobenius", "kl"]),
       sparse=st.booleans())
def test_objective_never_increases(seed, m, n, k, density, zero_rows, zero_cols, dtype, loss, sparse):
    X = _data(seed, m, n, density, zero_rows, zero_cols, dtype)
    k = min(k, m, n)
    data = sp.csr_matrix(X) if sparse else X
    res = nmfkit.fit(data, k, solver="mu", loss=loss, init="random", seed=seed, max_iter=60, tol=0)
    f = res.history["objective"]
    assert np.all(np.isfinite(f))
    # rounding slack: relative to f, plus the trace identity's error, which is
    # relative to ‖X‖² (Frobenius objective computed without forming X − WH)
    eps = np.finfo(dtype).eps
    slack = 1e-9 * np.abs(f[:-1]) + 50 * eps * (float(np.sum(X.astype(np.float64) ** 2)) + np.abs(f[0]))
    assert np.all(np.diff(f) <= slack), np.max(np.diff(f) - slack)
    assert res.W.dtype == dtype and res.H.dtype == dtype
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H))
    assert res.W.min() >= 0 and res.H.min() >= 0


def test_floor_prevents_zero_locking():
    """Entries started at exactly zero still grow where the loss wants them to.

    Plain Lee-Seung keeps a zero entry at zero forever; with the floor, an entry
    whose gradient is negative escapes multiplicatively."""
    rng = np.random.default_rng(1)
    w, h = rng.random(40) + 0.5, rng.random(30) + 0.5
    X = np.outer(w, h)
    W0, H0 = rng.random((40, 1)), rng.random((1, 30))
    W0[[3, 7], 0] = 0.0
    H0[0, 5] = 0.0
    for loss in ("frobenius", "kl"):
        res = nmfkit.fit(X, 1, solver="mu", loss=loss, init=(W0, H0), max_iter=500, tol=0)
        assert res.relative_error < 1e-6, (loss, res.relative_error)
        assert min(res.W[3, 0], res.W[7, 0], res.H[0, 5]) > 0.1


def test_recovers_planted_factorization():
    rng = np.random.default_rng(2)
    X = rng.random((80, 5)) @ rng.random((5, 60))
    for loss in ("frobenius", "kl"):
        res = nmfkit.fit(X, 5, solver="mu", loss=loss, seed=0, max_iter=3000, tol=1e-9)
        assert res.relative_error < 0.02, (loss, res.relative_error)


def test_sparse_and_dense_agree():
    X = sp.random(50, 40, density=0.2, random_state=3, format="csr")
    W0 = np.random.default_rng(0).random((50, 4))
    H0 = np.random.default_rng(1).random((4, 40))
    for loss in ("frobenius", "kl"):
        a = nmfkit.fit(X, 4, solver="mu", loss=loss, init=(W0, H0), max_iter=50, tol=0)
        b = nmfkit.fit(X.toarray(), 4, solver="mu", loss=loss, init=(W0, H0), max_iter=50, tol=0)
        np.testing.assert_allclose(a.W, b.W, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(a.H, b.H, rtol=1e-9, atol=1e-12)
        assert a.loss == pytest.approx(b.loss, rel=1e-9)


def test_penalty_increases_sparsity_and_is_in_objective():
    rng = np.random.default_rng(4)
    X = rng.random((60, 6)) @ rng.random((6, 50))
    plain = nmfkit.fit(X, 6, solver="mu", seed=0, max_iter=300, tol=0)
    l1 = nmfkit.fit(X, 6, solver="mu", seed=0, max_iter=300, tol=0, alpha_W=0.05, alpha_H=0.05, l1_ratio=1.0)
    assert (l1.W < 1e-6).mean() > (plain.W < 1e-6).mean()
    data_term = 0.5 * np.linalg.norm(X - l1.W @ l1.H) ** 2
    assert l1.loss > data_term  # the penalty is part of the reported objective
    assert np.all(np.diff(l1.history["objective"]) <= 1e-9 * l1.history["objective"][:-1])


def test_floor_is_tiny_and_normal():
    for dt in (np.float32, np.float64):
        assert np.finfo(dt).tiny < floor_of(dt) < 1e-12
