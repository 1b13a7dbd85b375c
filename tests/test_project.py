"""nmfkit.project: H_new = argmin_{H ≥ 0} D(X_new ‖ W H) with W fixed."""
import numpy as np
import pytest
import scipy.optimize as so
import scipy.sparse as sp

import nmfkit
from nmfkit.engines import make_engine
from nmfkit.project import project


def _problem(m=30, n=20, k=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((m, k)), rng.random((m, n))


def test_frobenius_equals_column_by_column_nnls():
    W, X = _problem()
    H = project(W, X)
    ref = np.column_stack([so.nnls(W, X[:, j])[0] for j in range(X.shape[1])])
    np.testing.assert_allclose(H, ref, atol=1e-10)
    assert H.shape == (5, 20) and (H == 0).any()          # the constraint is active somewhere


def test_sparse_and_float32_inputs():
    W, X = _problem()
    X[X < 0.5] = 0
    H = project(W, X)
    np.testing.assert_allclose(project(W, sp.csr_matrix(X)), H, atol=1e-12)
    np.testing.assert_allclose(project(W, sp.csc_matrix(X)), H, atol=1e-12)
    H32 = project(W, X.astype(np.float32))
    assert H32.dtype == np.float32
    np.testing.assert_allclose(H32, H, atol=1e-4)


def test_exact_recovery_and_zero_columns():
    rng = np.random.default_rng(1)
    W, H_true = rng.random((40, 4)), rng.random((4, 12))
    H_true[rng.random(H_true.shape) < 0.3] = 0
    X = W @ H_true
    X[:, 3] = 0
    H_true[:, 3] = 0
    np.testing.assert_allclose(project(W, X), H_true, atol=1e-10)
    np.testing.assert_allclose(project(W, X, loss="kl", max_iter=2000)[:, 3], 0, atol=1e-12)


def test_columns_are_independent():
    W, X = _problem()
    full = project(W, X)
    np.testing.assert_allclose(project(W, X[:, 5:9]), full[:, 5:9], atol=1e-12)
    kl_full = project(W, X, loss="kl")
    np.testing.assert_allclose(project(W, X[:, 5:9], loss="kl"), kl_full[:, 5:9], rtol=1e-12)


@pytest.mark.parametrize("alpha,l1_ratio", [(0.05, 0.0), (0.05, 1.0), (0.1, 0.3)])
def test_penalised_solution_satisfies_kkt(alpha, l1_ratio):
    W, X = _problem()
    m = X.shape[0]
    H = project(W, X, alpha_H=alpha, l1_ratio=l1_ratio)
    l1, l2 = alpha * l1_ratio * m, alpha * (1 - l1_ratio) * m
    grad = W.T @ W @ H - W.T @ X + l1 + l2 * H
    scale = np.abs(W.T @ X).max()
    assert (grad > -1e-9 * scale).all()                            # dual feasibility
    np.testing.assert_allclose(grad[H > 0], 0, atol=1e-9 * scale)  # complementarity
    if l1_ratio == 1.0:
        assert (H == 0).mean() > (project(W, X) == 0).mean()        # L1 makes it sparser


def test_kl_beats_the_fit_and_is_stationary():
    rng = np.random.default_rng(2)
    X = rng.random((30, 3)) @ rng.random((3, 25)) + 0.05 * rng.random((30, 25))
    fit = nmfkit.fit(X, 3, solver="mu", loss="kl", seed=0, max_iter=300)
    H = project(fit.W, X, loss="kl", tol=1e-10, max_iter=5000)
    engine = make_engine(X)
    assert engine.kl_divergence(fit.W, np.ascontiguousarray(H.T)) <= fit.loss * (1 + 1e-9)
    grad = fit.W.T @ (1 - X / (fit.W @ H))                          # KL gradient in H
    assert np.abs(grad[H > 1e-6]).max() < 1e-4
    dense = project(fit.W, X, loss="kl", tol=0, max_iter=200)       # sparse data: same iterates
    np.testing.assert_allclose(project(fit.W, sp.csr_matrix(X), loss="kl", tol=0, max_iter=200), dense,
                               rtol=1e-10, atol=1e-14)


def test_other_beta_losses():
    rng = np.random.default_rng(3)
    W, H_true = rng.random((20, 3)) + 0.1, rng.random((3, 10)) + 0.1
    X = W @ H_true
    np.testing.assert_allclose(project(W, X, loss="is", tol=1e-12, max_iter=20000), H_true, rtol=1e-3)
    np.testing.assert_allclose(project(W, X, beta=1.5, tol=1e-12, max_iter=20000), H_true, rtol=1e-3)
    X0 = X.copy()
    X0[0, 0] = 0
    with pytest.raises(ValueError, match="strictly positive"):
        project(W, X0, loss="is")


def test_bad_inputs_get_clear_errors():
    W, X = _problem()
    with pytest.raises(ValueError, match="W has 30 rows but X_new has 29"):
        project(W, X[:29])
    with pytest.raises(ValueError, match="negative"):
        project(W, X - 0.5)
    Wn = W.copy()
    Wn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        project(Wn, X)
    with pytest.raises(ValueError, match="choose one of"):
        project(W, X, loss="cosine")
    with pytest.raises(ValueError, match="max_iter"):
        project(W, X, loss="kl", max_iter=0)
    with pytest.raises(ValueError, match="2-D"):
        project(W, X[:, 0])
    assert nmfkit.project is project


@pytest.mark.parametrize("loss", ["frobenius", "kl"])
@pytest.mark.parametrize("layout", ["dense", "csr", "coo"])
def test_torch_and_dask_inputs_project_as_their_numpy_twin(loss, layout):
    torch = pytest.importorskip("torch")
    W, X = _problem()
    X[X < 0.4] = 0
    T = torch.as_tensor(X)
    T = {"dense": T, "csr": T.to_sparse_csr(), "coo": T.to_sparse()}[layout]
    expected = project(W, X, loss=loss)
    got = project(W, T, loss=loss)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * expected.max())
    da = pytest.importorskip("dask.array")
    np.testing.assert_allclose(project(W, da.from_array(X, chunks=(10, 20)), loss=loss), expected,
                               rtol=1e-12, atol=1e-12 * expected.max())
