"""SciPy sparse engine: X is never densified.

Keeps X as CSR and Xᵀ as CSR (so both big products are row-major SpMM, nnz·k
flops each).  SciPy's SpMM is single-threaded; with more than one Numba
thread the float64 products run in the row-parallel kernel `csr_dense`
(engines/_kernels.py), faster than SciPy where measured (float64, two or more threads).
KL/β terms are evaluated only at the stored entries, using
Σ_ij (W Htᵀ)_ij = (colsum W)·(colsum Ht) for the rest: no m×n intermediate.
The KL multiplicative W half-step and the next H half-step's Qᵀ W' run as one
fused pass over the rows of X (`kl_w_step` in engines/_kernels.py: 4k
multiply-adds per stored entry, no Q matrix, rows in parallel); `kl_ratio` without Q Ht and
`kl_divergence` use the same kernel at W, so the products a fit caches and those
a resumed fit recomputes are bit-identical.
"""
from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from ._kernels import block_column_sums, csr_dense, kl_w_step, row_blocks, sampled_dot
from .base import Engine
from .dense import beta_products_in_blocks

BLOCK = 1 << 22          # entries per dense block in the β products (32 MB in float64)


def _spmm(X, B):
    """X B for CSR X: the parallel kernel where it was measured faster (float64,
    more than one thread), else SciPy
    (in float32 SciPy's loop was as fast or faster)."""
    wide = numba.get_num_threads() > 1
    if wide and np.result_type(X.dtype, B.dtype) == np.float64:
        return csr_dense(X.indptr, X.indices, X.data, B)
    return np.asarray(X @ B)


def canonical_csr(X):
    """X as a CSR matrix with sorted indices, no duplicates and no explicit zeros: X itself (or a
    matrix sharing its arrays) when it already is, else a tidied copy; the caller's arrays are never
    changed (SciPy's `sum_duplicates` and `eliminate_zeros` work in place)."""
    X = sp.csr_matrix(X)
    if not X.has_canonical_format or not X.data.all():
        X = X.copy()
        X.sum_duplicates()
        X.eliminate_zeros()
    return X


class SparseEngine(Engine):
    kind = "sparse"
    capabilities = frozenset({"core", "kl", "beta", "entries", "rows",
                              "complete", "numpy_factors", "numpy_data", "resident"})

    def __init__(self, X, Xt=None):
        X = canonical_csr(X)
        self.X = X
        self.Xt = sp.csr_matrix(X.T) if Xt is None else Xt
        self.shape = X.shape
        self.dtype = X.dtype
        self.sqnorm = float(np.dot(X.data.astype(np.float64), X.data.astype(np.float64)))
        self.nnz = X.nnz
        self._logx = None
        self._bounds = {}        # row blocks of the fused KL step, by rank

    @property
    def entries_per_pass(self) -> int:
        return self.nnz

    def XHt(self, Ht):
        return _spmm(self.X, Ht)

    def XtW(self, W):
        return _spmm(self.Xt, W)

    def transpose(self):
        return SparseEngine(self.Xt, Xt=self.X)

    def X_col_sums(self):
        return np.asarray(self.X.sum(axis=0, dtype=np.float64)).ravel()

    def X_row_sums(self):
        return np.asarray(self.X.sum(axis=1, dtype=np.float64)).ravel()

    def mean(self) -> float:
        return float(self.X.data.sum(dtype=np.float64) / (self.shape[0] * self.shape[1]))

    def _wh_at_nonzeros(self, W, Ht):
        wh = sampled_dot(self.X.indptr, self.X.indices, W, Ht)
        np.maximum(wh, np.finfo(self.dtype).tiny, out=wh)
        return wh

    def _kl(self, wh, W, Ht) -> float:
        x = self.X.data
        if self._logx is None:
            self._logx = np.log(x.astype(np.float64))
        total = float(W.sum(axis=0, dtype=np.float64) @ Ht.sum(axis=0, dtype=np.float64))
        return float(np.dot(x, self._logx - np.log(wh)) - x.sum(dtype=np.float64) + total)

    def kl_ratio(self, W, Ht, need=("QHt", "QtW")):
        """Q Ht, Qᵀ W and D_KL at (W, Ht) as asked; without "QHt", the fused step's own sums at W."""
        if set(need) <= {"QtW", "loss"} and self._fused(W):
            out = kl_w_step(*self._csr, W, Ht, W[0], 0.0, 0.0, tuple(need), bounds=self._row_blocks(W),
                            update=False)
            return {t: out[t] for t in need}
        wh = self._wh_at_nonzeros(W, Ht)
        Q = sp.csr_matrix((self.X.data / wh, self.X.indices, self.X.indptr), shape=self.shape)
        out = {}
        if "QHt" in need:
            out["QHt"] = np.asarray(Q @ Ht)
        if "QtW" in need:
            out["QtW"] = np.asarray(Q.T @ W)
        if "loss" in need:
            out["loss"] = self._kl(wh, W, Ht)
        return out

    def kl_divergence(self, W, Ht):
        if self._fused(W):
            return self.kl_ratio(W, Ht, need=("loss",))["loss"]
        return self._kl(self._wh_at_nonzeros(W, Ht), W, Ht)

    def kl_w_step(self, W, Ht, den, l2, floor, need=("QtW",), Ht_next=None):
        """One fused pass over the rows of X (see engines/_kernels.py); the generic two-pass
        step only where the kernel does not apply (no Numba, k = 0, a non-float dtype)."""
        if not self._fused(W):
            return super().kl_w_step(W, Ht, den, l2, floor, need, Ht_next)
        return kl_w_step(*self._csr, W, Ht, den, l2, floor, tuple(need), Ht_next, bounds=self._row_blocks(W))

    def factor_col_sums(self, F):
        """Σᵢ F_ia in `kl_w_step`'s order (row blocks, then blocks in order) for an m-row factor."""
        if not (self._fused(F) and F.shape[0] == self.shape[0]):
            return super().factor_col_sums(F)
        return block_column_sums(F, self._row_blocks(F))

    def _fused(self, W) -> bool:
        return W.shape[1] > 0 and self.dtype in (np.float32, np.float64)

    @property
    def _csr(self):
        return self.X.indptr, self.X.indices, self.X.data

    def _row_blocks(self, W):
        k = W.shape[1]
        if k not in self._bounds:
            self._bounds[k] = row_blocks(self.X.indptr, self.shape[1], k, self.dtype.itemsize)
        return self._bounds[k]

    def beta_products(self, W, Ht, beta, need=("XH", "XW")):
        """β-MU numerator/denominator products (see DenseEngine.beta_products).

        For β ∉ {1, 2} every zero of X contributes Λ_ij^β/β to the loss and
        Λ_ij^{β−1} to the denominators, so the work is m·n·k as for dense data;
        it runs in row blocks of about BLOCK entries, so memory stays O(BLOCK)
        and X itself is never densified whole."""
        m, n = self.shape
        rows = max(1, min(m, BLOCK // max(n, 1)))
        blocks = ((s, min(m, s + rows), self.X[s:min(m, s + rows)].toarray()) for s in range(0, m, rows))
        return beta_products_in_blocks(blocks, self.shape, W, Ht, beta, need, self.dtype)

    def beta_divergence(self, W, Ht, beta):
        return self.beta_products(W, Ht, beta, need=())["loss"]

    def observed_flat(self):
        """Every entry counts (zeros of sparse data are real zeros): None = all m·n."""
        return None

    def values_at(self, rows, cols):
        return np.asarray(self.X[rows, cols]).ravel()

    def frobenius_exact(self, W, Ht):
        """½‖X − W Htᵀ‖² via the trace identity (exact products, no m×n array)."""
        return self.frobenius(W, Ht)

    def row_storage(self):
        """X's rows as the row kernels read them: ("csr", (indptr, indices, data))."""
        return "csr", (self.X.indptr, self.X.indices, self.X.data)
