"""Memory-mapped engine: X is a NumPy memmap (`np.load("X.npy", mmap_mode="r")`) read in row blocks.

Every pass reads X from storage block by block, BLOCK_BYTES of X at a time, so apart from the
factors only one block and its products with them are in memory: a matrix larger than memory
runs through the solvers that need only the core products and the KL and β terms (hals, anls,
mu).  X is never written to (a read-only map is enough).  Row blocks of a C-ordered file are
contiguous on disk; `transpose` reads column blocks of the same file (strided, slower), and only
solvers that need per-row access of Xᵀ call it.

Cost: as the dense engine (m·n·k flops per product), plus one read of X per pass; the KL and β
terms make the m×n product W Htᵀ one block at a time.
"""
from __future__ import annotations

import numpy as np

from .base import Engine
from .dense import beta_divergence_dense, beta_products_in_blocks

BLOCK_BYTES = 64 * 2 ** 20     # bytes of X read per block


class MemmapEngine(Engine):
    kind = "memmap"
    capabilities = frozenset({"core", "kl", "beta", "complete", "numpy_factors"})

    def __init__(self, X: np.memmap):
        self.X = X
        self.shape = tuple(X.shape)
        self.dtype = X.dtype
        sqnorm, nnz = 0.0, 0
        for _, _, Xb in self._blocks():        # one pass: ‖X‖² in float64 and the nonzeros
            sqnorm += float(np.einsum("ij,ij->", Xb, Xb, dtype=np.float64))
            nnz += int(np.count_nonzero(Xb))
        self.sqnorm, self.nnz = sqnorm, nnz

    def _blocks(self):
        """(start, stop, X[start:stop]) for row blocks of about BLOCK_BYTES each."""
        m, n = self.X.shape
        rows = max(1, BLOCK_BYTES // max(n * self.X.itemsize, 1))
        for s in range(0, m, rows):
            e = min(m, s + rows)
            yield s, e, np.asarray(self.X[s:e])

    # -- core ----------------------------------------------------------------------------------
    def XHt(self, Ht):
        out = np.empty((self.shape[0], Ht.shape[1]), dtype=np.result_type(self.dtype, Ht.dtype))
        for s, e, Xb in self._blocks():
            out[s:e] = Xb @ Ht
        return out

    def XtW(self, W):
        out = np.zeros((self.shape[1], W.shape[1]), dtype=np.result_type(self.dtype, W.dtype))
        for s, e, Xb in self._blocks():
            out += Xb.T @ W[s:e]
        return out

    def frobenius_exact(self, W, Ht):
        """½‖X − W Htᵀ‖² entry by entry, block by block."""
        total = 0.0
        for s, e, Xb in self._blocks():
            D = Xb - W[s:e] @ Ht.T
            total += float(np.einsum("ij,ij->", D, D, dtype=np.float64))
        return 0.5 * total

    def X_col_sums(self):
        sums = np.zeros(self.shape[1])
        for _, _, Xb in self._blocks():
            sums += Xb.sum(axis=0, dtype=np.float64)
        return sums

    def X_row_sums(self):
        return np.concatenate([Xb.sum(axis=1, dtype=np.float64) for _, _, Xb in self._blocks()])

    def mean(self) -> float:
        return float(self.X_col_sums().sum() / (self.shape[0] * self.shape[1]))

    def transpose(self):
        return MemmapEngine(self.X.T)

    # -- kl ------------------------------------------------------------------------------------
    def kl_ratio(self, W, Ht, need=("QHt", "QtW", "loss")):
        """Q = X/(W Htᵀ) products and the KL divergence, one row block of Q at a time."""
        m, n = self.shape
        k = W.shape[1]
        out = {}
        if "QHt" in need:
            out["QHt"] = np.empty((m, k), self.dtype)
        if "QtW" in need:
            out["QtW"] = np.zeros((n, k), self.dtype)
        loss = 0.0
        for s, e, Xb in self._blocks():
            L = W[s:e] @ Ht.T
            np.maximum(L, self.tiny, out=L)
            Q = Xb / L
            if "QHt" in need:
                out["QHt"][s:e] = Q @ Ht
            if "QtW" in need:
                out["QtW"] += Q.T @ W[s:e]
            if "loss" in need:
                loss += beta_divergence_dense(Xb, L, 1.0)
        if "loss" in need:
            out["loss"] = loss
        return out

    def kl_divergence(self, W, Ht):
        return self.kl_ratio(W, Ht, need=("loss",))["loss"]

    # -- beta ----------------------------------------------------------------------------------
    def beta_products(self, W, Ht, beta, need=("XH", "XW")):
        """β-MU numerators and denominators (see DenseEngine.beta_products), one row block at a time."""
        return beta_products_in_blocks(self._blocks(), self.shape, W, Ht, beta, need, self.dtype)

    def beta_divergence(self, W, Ht, beta):
        return self.beta_products(W, Ht, beta, need=())["loss"]
