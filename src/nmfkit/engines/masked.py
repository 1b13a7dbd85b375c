"""Masked engine: missing entries, for which the loss counts observed entries only.

With M the m×n observation mask (1 = observed) and X zero-filled where M = 0,

    Frobenius  ½‖M ∘ (X − W Htᵀ)‖²_F
    β          Σ_{M_ij = 1} d_β(X_ij ‖ (W Htᵀ)_ij)

The products the solvers need:
    X Ht = (M∘X) Ht,  Xᵀ W                      one GEMM each (X is zero-filled)
    β-MU pairs        num_W = (M∘X∘Λ^{β−2}) Ht,  den_W = (M∘Λ^{β−1}) Ht,   Λ = W Htᵀ
                      (β = 2: masked Frobenius MU, β = 1: masked KL MU)
    per-row Grams     G_i = Htᵀ diag(M_i·) Ht  (m×k×k), as one GEMM  M · [h_j h_jᵀ]_j
                      (m·n·k² flops), and the per-column Grams for the H half-step.
Unlike plain data, the Gram matrix differs from row to row, so a least-squares
half-step is m independent k×k problems rather than one shared G.

Memory: X, M (as X's dtype, for BLAS) and one m×n product Λ: O(m·n).  Sparse X
given with a mask is densified, since the mask is already an m×n array; for
very large sparse data with few observed entries, SGD over a list of entries
is the scalable route.
"""
from __future__ import annotations

import numpy as np

from .dense import DenseProducts, beta_divergence_dense


class MaskedEngine(DenseProducts):
    kind = "masked"
    capabilities = frozenset({"core", "kl", "beta", "entries", "mask",
                              "numpy_factors", "numpy_data", "dense_data", "resident"})
    n_observed: int = 0     # observed entries, set in __init__

    def __init__(self, X: np.ndarray, mask: np.ndarray, _M=None):
        mask = np.asarray(mask, dtype=bool)
        self.mask = mask
        self.X = np.where(mask, X, 0).astype(X.dtype, copy=False)
        self.M = self.X.dtype.type(1) * mask if _M is None else _M        # 0/1 in X's dtype
        self.shape = self.X.shape
        self.dtype = self.X.dtype
        self.n_observed = int(mask.sum())
        self.sqnorm = float(np.einsum("ij,ij->", self.X, self.X, dtype=np.float64))
        self.nnz = int(np.count_nonzero(self.X))

    # -- XHt, XtW and the sums of X are DenseProducts' (M∘X is stored) ----------------------------
    def transpose(self):
        return MaskedEngine(self.X.T, self.mask.T, _M=self.M.T)

    def mean(self) -> float:
        """Mean of the observed entries (initialisations scale to it)."""
        return float(self.X.sum(dtype=np.float64) / max(self.n_observed, 1))

    # -- losses ----------------------------------------------------------------------------------
    def frobenius(self, W, Ht):
        """½‖M ∘ (X − W Htᵀ)‖², entry by entry (no trace identity exists with a mask)."""
        D = self.X - W @ Ht.T
        D *= self.M
        return 0.5 * float(np.einsum("ij,ij->", D, D, dtype=np.float64))

    frobenius_exact = frobenius

    def _product(self, W, Ht, beta):
        L = W @ Ht.T
        if beta < 2:          # negative powers of Λ below: keep it positive
            np.maximum(L, np.finfo(self.dtype).eps, out=L)
        return L

    def beta_divergence(self, W, Ht, beta):
        L = self._product(W, Ht, beta)
        return beta_divergence_dense(self.X[self.mask], L[self.mask], beta)

    def kl_divergence(self, W, Ht):
        return self.beta_divergence(W, Ht, 1.0)

    def beta_products(self, W, Ht, beta, need=("XH", "XW")):
        """MU numerator/denominator pairs over the observed entries, and the loss at (W, Ht)."""
        L = self._product(W, Ht, beta)
        A = self.X if beta == 2 else self.X * L ** (beta - 2.0)   # zero where unobserved
        B = self.M * L if beta == 2 else (self.M if beta == 1 else self.M * L ** (beta - 1.0))
        out = {}
        if "XH" in need:
            out["num_W"], out["den_W"] = A @ Ht, B @ Ht
        if "XW" in need:
            out["num_H"], out["den_H"] = A.T @ W, B.T @ W
        out["loss"] = beta_divergence_dense(self.X[self.mask], L[self.mask], beta)
        return out

    def kl_ratio(self, W, Ht, need=("QHt", "QtW")):
        """Q = M∘X/(W Htᵀ) products; the KL MU denominators here are M Ht and Mᵀ W
        (`beta_products(…, 1)`), not the column sums of the unmasked update."""
        L = self._product(W, Ht, 1.0)
        Q = self.X / L
        out = {}
        if "QHt" in need:
            out["QHt"] = Q @ Ht
        if "QtW" in need:
            out["QtW"] = Q.T @ W
        out["loss"] = beta_divergence_dense(self.X[self.mask], L[self.mask], 1.0)
        return out

    # -- per-row least-squares data ----------------------------------------------------------------
    def row_grams(self, Ht) -> np.ndarray:
        """G_i = Σ_j M_ij h_j h_jᵀ for every row i: an m×k×k array (one GEMM, m·n·k² flops)."""
        n, k = Ht.shape
        outer = (Ht[:, :, None] * Ht[:, None, :]).reshape(n, k * k)
        return (self.M @ outer).reshape(self.shape[0], k, k)

    def col_grams(self, W) -> np.ndarray:
        """G_j = Σ_i M_ij w_i w_iᵀ for every column j: an n×k×k array."""
        m, k = W.shape
        outer = (W[:, :, None] * W[:, None, :]).reshape(m, k * k)
        return (self.M.T @ outer).reshape(self.shape[1], k, k)

    # -- entries, for stochastic solvers -----------------------------------------------------------
    def observed_flat(self):
        """Flat (row-major) indices of the observed entries."""
        return np.flatnonzero(self.mask)

    def values_at(self, rows, cols):
        return self.X[rows, cols]


def build_mask(X, mask, nan_is_missing: bool, is_sparse: bool):
    """Validate a mask (True = observed) and merge NaN positions into it.

    Returns (X as a dense array with missing entries zero-filled, mask), or (X, None)
    when nothing is missing.  Raises a clear error for a wrong shape or type and for
    a row or column with no observed entry (its factor row would be undetermined)."""
    shape = X.shape
    if mask is not None:
        M = np.asarray(mask)
        if M.ndim != 2 or M.shape != shape:
            raise ValueError(f"mask has shape {M.shape}; it must match X's shape {shape} "
                             "(True = observed, False = missing)")
        if M.dtype != np.bool_:
            if not (np.issubdtype(M.dtype, np.number) and np.isin(M, (0, 1)).all()):
                raise TypeError(f"mask must be boolean (True = observed) or 0/1; got dtype {M.dtype}")
            M = M.astype(bool)
    else:
        M = None
    dense = X
    if is_sparse and (M is not None or (nan_is_missing and np.isnan(X.data).any())):
        dense = X.toarray()
    if dense is not X or not is_sparse:
        nan = np.isnan(dense)
        if nan_is_missing and nan.any():
            M = ~nan if M is None else (M & ~nan)
        elif M is not None and (nan & M).any():
            i, j = (int(v) for v in np.argwhere(nan & M)[0])
            raise ValueError(f"X is NaN at observed entry ({i}, {j}) (mask True there); mark it missing "
                             "in the mask, or pass missing='mask' to treat every NaN as missing")
    if M is None or M.all():
        return X, None
    empty_rows = np.flatnonzero(~M.any(axis=1))
    if empty_rows.size:
        raise ValueError(f"{empty_rows.size} row(s) of X have no observed entry (the first is row "
                         f"{empty_rows[0]}); drop them or observe at least one entry per row")
    empty_cols = np.flatnonzero(~M.any(axis=0))
    if empty_cols.size:
        raise ValueError(f"{empty_cols.size} column(s) of X have no observed entry (the first is column "
                         f"{empty_cols[0]}); drop them or observe at least one entry per column")
    dense = np.where(M, np.nan_to_num(dense, nan=0.0), 0).astype(X.dtype, copy=False)
    return dense, M
