"""Parity of the sparse engine's Numba kernels with their NumPy/SciPy twins."""
import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit.engines import _kernels, make_engine


def _csr(m, n, density, dtype, seed=0):
    X = sp.random(m, n, density=density, format="csr", random_state=seed, dtype=np.float64)
    X.data = (X.data * 5).astype(dtype)
    return X


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m,n,k,density", [(3000, 800, 30, 0.02), (5, 7, 3, 0.3), (400, 300, 1, 0.05)])
def test_csr_dense_matches_scipy(dtype, m, n, k, density):
    X = _csr(m, n, density, dtype)
    X.data[X.indptr[2]:X.indptr[3]] = 0       # an empty row
    X.eliminate_zeros()
    B = np.random.default_rng(1).random((n, k)).astype(dtype)
    ours = _kernels.csr_dense(X.indptr, X.indices, X.data, B)
    twin = _kernels.csr_dense_scipy(X.indptr, X.indices, X.data, B)
    assert ours.dtype == twin.dtype == dtype and ours.shape == (m, k)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ours, twin, rtol=rtol, atol=rtol * np.abs(twin).max())
    assert (ours[2] == 0).all()


def test_parallel_kernel_itself_matches_scipy():
    # Large enough to take the parallel kernel, not the SciPy fallback.
    X = _csr(4000, 1500, 0.01, np.float64, seed=2)
    B = np.random.default_rng(3).standard_normal((1500, 25))
    assert 2 * X.nnz * 25 >= _kernels.SPMM_PARALLEL_MIN_FLOPS
    out = np.empty((4000, 25))
    _kernels._csr_dense_parallel(X.indptr, X.indices, X.data, B, out)
    np.testing.assert_allclose(out, X @ B, rtol=1e-12, atol=1e-12 * np.abs(out).max())


def test_mixed_dtypes_follow_numpy_promotion():
    X = _csr(500, 200, 0.05, np.float32)
    B = np.random.default_rng(4).random((200, 6))          # float64
    out = _kernels.csr_dense(X.indptr, X.indices, X.data, B)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, X.astype(np.float64) @ B, rtol=1e-12)


def test_sparse_engine_products_match_dense_engine():
    X = _csr(3000, 900, 0.02, np.float64, seed=5)
    rng = np.random.default_rng(6)
    W, Ht = rng.random((3000, 12)), rng.random((900, 12))
    s, d = make_engine(X), make_engine(X.toarray())
    np.testing.assert_allclose(s.XHt(Ht), d.XHt(Ht), rtol=1e-10)
    np.testing.assert_allclose(s.XtW(W), d.XtW(W), rtol=1e-10)
    np.testing.assert_allclose(s.transpose().XHt(W), d.XtW(W), rtol=1e-10)


def test_sampled_dot_matches_numpy_twin():
    X = _csr(700, 300, 0.03, np.float64, seed=7)
    rng = np.random.default_rng(8)
    W, Ht = rng.random((700, 9)), rng.random((300, 9))
    a = _kernels.sampled_dot(X.indptr, X.indices, W, Ht)
    b = _kernels.sampled_dot_numpy(X.indptr, X.indices, W, Ht, block=101)
    np.testing.assert_allclose(a, b, rtol=1e-12)
    rows = np.repeat(np.arange(700), np.diff(X.indptr))
    np.testing.assert_allclose(a, (W @ Ht.T)[rows, X.indices], rtol=1e-12)
