"""Convex NMF (solver="convex"): W = X G with G ≥ 0 kept as state, centroids recovered on
clustered data where plain NMF's basis is not, monotone objective, checkpoint/resume of G."""
import numpy as np
import pytest
import scipy.sparse as sp
from _planted import basis_error

import nmfkit
from nmfkit.engines import make_engine
from nmfkit.registry import SOLVERS


def clustered(m=50, n=120, k=4, spread=0.2, seed=0):
    """Samples = a cluster profile times log-normal noise (spread) times a random size; the planted
    basis is each cluster's mean of sum-1 samples (a convex combination of samples)."""
    rng = np.random.default_rng(seed)
    profiles = rng.random((m, k)) + 0.2
    labels = np.arange(n) % k
    X = profiles[:, labels] * np.exp(spread * rng.standard_normal((m, n))) * rng.uniform(0.5, 1.5, n)
    centroids = np.column_stack([(X[:, labels == j] / X[:, labels == j].sum(axis=0)).mean(axis=1)
                                 for j in range(k)])
    return X, centroids


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_cluster_centroids_better_than_plain_nmf(seed):
    X, centroids = clustered(seed=seed)
    convex = nmfkit.fit(X, 4, solver="convex", init="random", seed=seed, max_iter=1000)
    plain = nmfkit.fit(X, 4, solver="hals", init="random", seed=seed, max_iter=1000)
    # measured: convex ≈ 0.027, hals ≈ 0.15–0.20 (its basis leaves the data's cone)
    assert basis_error(centroids, convex.W) < 0.05
    assert basis_error(centroids, convex.W) + 0.08 < basis_error(centroids, plain.W)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_w_is_x_times_the_state_g_and_objective_never_increases(kind, dtype):
    X, _ = clustered(seed=3)
    X = X.astype(dtype)
    data = sp.csr_matrix(X) if kind == "sparse" else X
    fit = nmfkit.fit(data, 4, solver="convex", max_iter=60, tol=0, seed=0)
    obj = fit.history["objective"]
    slack = (1e-9 if dtype == np.float64 else 1e-5) * obj[0]    # Ding–Li–Jordan: monotone; rounding only
    assert np.diff(obj).max() <= slack and obj[-1] < obj[0]
    assert fit.W.dtype == dtype and (fit.W >= 0).all() and (fit.H >= 0).all()
    # the solver's state: W = X G exactly as the step made it
    engine = make_engine(data)
    solver = SOLVERS["convex"].cls(engine, "frobenius", 2.0)
    W, Ht = solver.prepare(fit.W, np.ascontiguousarray(fit.H.T))
    for _ in range(3):
        W, Ht, value = solver.step(W, Ht)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(W, engine.XHt(solver.G), rtol=rtol)
    assert value == pytest.approx(0.5 * np.linalg.norm(X.astype(np.float64) - W.astype(np.float64) @ Ht.T) ** 2,
                                  rel=1e-9 if dtype == np.float64 else 1e-4)


def test_checkpoint_resume_continues_with_g(tmp_path):
    X, _ = clustered(seed=4)
    full = nmfkit.fit(X, 4, solver="convex", max_iter=40, tol=0, seed=0)
    path = tmp_path / "convex.ckpt"
    nmfkit.fit(X, 4, solver="convex", max_iter=20, tol=0, seed=0, checkpoint=path, checkpoint_every=20)
    resumed = nmfkit.fit(X, 4, solver="convex", max_iter=40, tol=0, seed=0, resume=path)
    np.testing.assert_allclose(resumed.history["objective"], full.history["objective"], rtol=1e-12)
    np.testing.assert_allclose(resumed.W, full.W, rtol=1e-12)


def test_penalties_are_refused():
    X, _ = clustered()
    with pytest.raises(ValueError, match="takes no alpha_W/alpha_H penalties"):
        nmfkit.fit(X, 3, solver="convex", alpha_W=0.1)
