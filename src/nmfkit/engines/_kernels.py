"""Hot loops of the sparse engine: Numba kernels with plain NumPy/SciPy twins.

`sampled_dot(indptr, indices, W, Ht)` returns (W Htᵀ)_ij at the stored entries
of a CSR pattern: nnz·k flops and no m×n intermediate.  The Numba version runs
rows in parallel; the NumPy twin works in row blocks so its temporary stays
bounded.

`csr_dense(indptr, indices, data, B)` is the sparse × dense product X B for a
CSR X (m×n) and a tall B (n×k):

    (X B)[i, :] = Σ_{p ∈ row i} data[p] · B[indices[p], :]

2·nnz·k flops, memory-bound (one gathered row of B per stored entry).  SciPy's
SpMM runs on one thread; the Numba kernel runs rows in parallel, each output
row kept in a local accumulator so the inner loop over the k columns is a
contiguous, vectorisable axpy.  Its twin is SciPy's own product
(`csr_dense_scipy`).  The sum over a row runs in the same order in both, so
they agree to rounding (fused multiply-adds aside).
tests/test_core.py and tests/test_engine_kernels.py check the pairs agree.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

try:
    import numba
except ImportError:  # pragma: no cover - numba is a core dependency
    numba = None

# Below this many flops (2·nnz·k) a parallel region costs more than it saves.
SPMM_PARALLEL_MIN_FLOPS = 1 << 20


def sampled_dot_numpy(indptr, indices, W, Ht, block=1 << 16):
    m = len(indptr) - 1
    rows = np.repeat(np.arange(m), np.diff(indptr))
    out = np.empty(len(indices), dtype=np.result_type(W, Ht))
    for s in range(0, len(indices), block):
        e = min(s + block, len(indices))
        out[s:e] = np.einsum("ij,ij->i", W[rows[s:e]], Ht[indices[s:e]])
    return out


def csr_dense_scipy(indptr, indices, data, B):
    """X B with SciPy (the twin of the Numba kernel); X given by its CSR arrays."""
    X = sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, B.shape[0]))
    return np.asarray(X @ B)


if numba is not None:

    @numba.njit(parallel=True, cache=True, fastmath=False)
    def _sampled_dot_numba(indptr, indices, W, Ht, out):
        m = indptr.shape[0] - 1
        k = W.shape[1]
        for i in numba.prange(m):
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                acc = 0.0
                for a in range(k):
                    acc += W[i, a] * Ht[j, a]
                out[p] = acc
        return out

    def sampled_dot(indptr, indices, W, Ht):
        W = np.ascontiguousarray(W)
        Ht = np.ascontiguousarray(Ht)
        out = np.empty(len(indices), dtype=np.result_type(W, Ht))
        return _sampled_dot_numba(indptr, indices, W, Ht, out)

    def _csr_dense_rows(indptr, indices, data, B, out):
        m = indptr.shape[0] - 1
        k = B.shape[1]
        for i in numba.prange(m):
            acc = np.zeros(k, dtype=out.dtype)
            for p in range(indptr[i], indptr[i + 1]):
                v = data[p]
                j = indices[p]
                for a in range(k):
                    acc[a] += v * B[j, a]
            for a in range(k):
                out[i, a] = acc[a]
        return out

    _csr_dense_parallel = numba.njit(parallel=True, cache=True)(_csr_dense_rows)

    def csr_dense(indptr, indices, data, B):
        """X B for a CSR X (Numba, rows in parallel); B is made C-contiguous."""
        B = np.ascontiguousarray(B)
        dtype = np.result_type(data.dtype, B.dtype)
        out = np.empty((len(indptr) - 1, B.shape[1]), dtype=dtype)
        if 2 * len(data) * B.shape[1] < SPMM_PARALLEL_MIN_FLOPS or B.shape[1] == 0:
            return csr_dense_scipy(indptr, indices, data, B)
        data, B = data.astype(dtype, copy=False), B.astype(dtype, copy=False)
        return _csr_dense_parallel(indptr, indices, data, B, out)

else:  # pragma: no cover
    sampled_dot = sampled_dot_numpy
    csr_dense = csr_dense_scipy
