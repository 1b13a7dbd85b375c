"""Hot loops of the sparse engine: Numba kernels with plain NumPy twins.

`sampled_dot(indptr, indices, W, Ht)` returns (W Htᵀ)_ij at the stored entries
of a CSR pattern: nnz·k flops and no m×n intermediate.  The Numba version runs
rows in parallel; the NumPy twin works in row blocks so its temporary stays
bounded.  tests/test_kernels.py checks they agree.
"""
from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is a core dependency
    numba = None


def sampled_dot_numpy(indptr, indices, W, Ht, block=1 << 16):
    m = len(indptr) - 1
    rows = np.repeat(np.arange(m), np.diff(indptr))
    out = np.empty(len(indices), dtype=np.result_type(W, Ht))
    for s in range(0, len(indices), block):
        e = min(s + block, len(indices))
        out[s:e] = np.einsum("ij,ij->i", W[rows[s:e]], Ht[indices[s:e]])
    return out


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

else:  # pragma: no cover
    sampled_dot = sampled_dot_numpy
