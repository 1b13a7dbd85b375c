"""Dense NumPy engine: BLAS products on a C- or F-ordered array.

KL terms need the full m×n product W Hᵀ (unavoidable for dense data): cost
m·n·k per product, plus O(m·n) element-wise work.
"""
from __future__ import annotations

import numpy as np

from ._dense_kernels import FUSED_MAX_RANK, FUSED_STEP_MAX_RANK, column_sums, kl_products, kl_products_numpy, kl_w_step
from ._kernels import log_ratio
from .base import Engine


class DenseProducts(Engine):
    """The products and sums of a dense NumPy X (`self.X`), shared by the dense and masked engines
    (the masked engine's X has its hidden entries set to zero)."""

    def XHt(self, Ht):
        return self.X @ Ht

    def XtW(self, W):
        return self.X.T @ W

    def X_col_sums(self):
        return self.X.sum(axis=0, dtype=np.float64)

    def X_row_sums(self):
        return self.X.sum(axis=1, dtype=np.float64)


class DenseEngine(DenseProducts):
    kind = "dense"
    capabilities = frozenset({"core", "kl", "beta", "entries", "rows",
                              "complete", "numpy_factors", "numpy_data", "dense_data", "resident"})

    def __init__(self, X: np.ndarray):
        self.X = X
        self.shape = X.shape
        self.dtype = X.dtype
        self.sqnorm = float(np.vdot(X, X).real) if X.dtype == np.float64 else float(
            np.einsum("ij,ij->", X, X, dtype=np.float64))
        self.nnz = int(np.count_nonzero(X))

    def transpose(self):
        return DenseEngine(self.X.T)

    def mean(self) -> float:
        return float(self.X.mean(dtype=np.float64))

    def kl_ratio(self, W, Ht, need=("QHt", "QtW", "loss")):
        """Q = X/(W Htᵀ) products and, if "loss" is in `need`, the KL divergence at (W, Ht).

        For k ≤ FUSED_MAX_RANK one fused pass computes everything; above, BLAS makes
        the products and a fused pass only the divergence (a log per entry, 3× faster
        than separate NumPy passes).  Which code makes a product depends on k alone,
        so results do not change with whether the loss was asked for (checkpoints
        resume bit-identically)."""
        if set(need) <= {"QtW", "loss"} and self._fused_step(W):   # the sums a fused step makes
            out = kl_w_step(self.X, W, Ht, W[0], 0.0, 0.0, need, update=False)
            return {t: out[t] for t in need}
        if W.shape[1] <= FUSED_MAX_RANK:
            return kl_products(self.X, W, Ht, need)
        out = kl_products_numpy(self.X, W, Ht, tuple(t for t in need if t != "loss"))
        if "loss" in need:
            out["loss"] = self.kl_divergence(W, Ht)
        return out

    def kl_divergence(self, W, Ht):
        return kl_products(self.X, W, Ht, ("loss",))["loss"]

    def factor_col_sums(self, F):
        return column_sums(np.ascontiguousarray(F))

    def kl_w_step(self, W, Ht, den, l2, floor, need=("QtW",), Ht_next=None):
        """One fused pass over the rows of a C-ordered X for k ≤ FUSED_STEP_MAX_RANK
        (see _dense_kernels); otherwise BLAS products in two passes.  The choice
        depends on k and the layout of X only, so reruns and resumes are bit-identical."""
        if not self._fused_step(W):
            return super().kl_w_step(W, Ht, den, l2, floor, need, Ht_next)
        return kl_w_step(self.X, W, Ht, den, l2, floor, need, Ht_next)

    def _fused_step(self, W) -> bool:
        return kl_w_step is not None and W.shape[1] <= FUSED_STEP_MAX_RANK and self.X.flags.c_contiguous

    def beta_products(self, W, Ht, beta, need=("XH", "XW")):
        """Numerator/denominator products of β-divergence MU at (W, Ht).

        num_W = (X ∘ Λ^{β−2}) Ht,  den_W = Λ^{β−1} Ht   (Λ = W Htᵀ), and the
        transposed pair for Ht, plus D_β(X‖Λ): X as one block of `beta_block`.
        """
        W_pair, H_pair, loss = beta_block(self.X, W, Ht, beta, need)
        return _beta_dict(W_pair, H_pair, loss)

    def beta_divergence(self, W, Ht, beta):
        L = W @ Ht.T
        np.maximum(L, np.finfo(self.dtype).eps, out=L)
        return beta_divergence_dense(self.X, L, beta)

    def observed_flat(self):
        """Every entry counts: None = all m·n (flat indices are made per batch)."""
        return None

    def values_at(self, rows, cols):
        return self.X[rows, cols]

    def frobenius_exact(self, W, Ht):
        """½‖X − W Htᵀ‖² computed entry by entry (accurate near an exact fit)."""
        D = self.X - W @ Ht.T
        return 0.5 * float(np.einsum("ij,ij->", D, D, dtype=np.float64))

    def row_storage(self):
        """X's rows as the row kernels read them: ("dense", (X,)); X may be C- or F-ordered."""
        return "dense", (self.X,)

def beta_divergence_dense(X, L, beta) -> float:
    """D_β(X‖L) for β ∉ {1} (β = 2 is ½ Frobenius, β = 0 Itakura–Saito)."""
    X = X.astype(np.float64, copy=False)
    L = L.astype(np.float64, copy=False)
    if beta == 2:
        return 0.5 * float(np.sum((X - L) ** 2))
    if beta == 1:
        pos = X > 0
        logs = np.zeros_like(X)
        logs[pos] = log_ratio(X[pos], L[pos])
        return float(np.sum(X * logs - X + L))
    if beta == 0:
        R = X / L
        return float(np.sum(R - np.log(R) - 1.0))
    return float(np.sum(X ** beta + (beta - 1.0) * L ** beta - beta * X * L ** (beta - 1.0))
                 / (beta * (beta - 1.0)))


# -- the β and KL products of one dense row block: the dense engine (X as one block), the memmap
#    engine (blocks read from storage) and the dask engine (one task per block) all use these --------
def beta_block(Xb, Wb, Ht, beta, need):
    """One row block's share of the β-MU products at (W, Ht), Xb = X[s:e], Wb = W[s:e]:
    ((num_W, den_W) rows s:e, or None; the block's partial sums of (num_H, den_H) stacked as a
    2×n×k array, or None; D_β(Xb‖Wb Htᵀ)), with Λ = Wb Htᵀ floored at eps."""
    L = Wb @ Ht.T
    np.maximum(L, np.finfo(Xb.dtype).eps, out=L)
    A = Xb * L ** (beta - 2.0)
    B = L ** (beta - 1.0)
    W_pair = (A @ Ht, B @ Ht) if "XH" in need else None
    H_pair = np.stack([A.T @ Wb, B.T @ Wb]) if "XW" in need else None
    return W_pair, H_pair, beta_divergence_dense(Xb, L, beta)


def _beta_dict(W_pair, H_pair, loss) -> dict:
    out = {}
    if W_pair is not None:
        out["num_W"], out["den_W"] = W_pair
    if H_pair is not None:
        out["num_H"], out["den_H"] = H_pair[0], H_pair[1]
    out["loss"] = loss
    return out


def beta_products_in_blocks(blocks, shape, W, Ht, beta, need, dtype) -> dict:
    """β-MU numerators and denominators (see DenseEngine.beta_products) and D_β(X‖W Htᵀ), summed
    over dense row blocks of X: `blocks` yields (start, stop, X[start:stop] as a dense array), so
    only one block of Λ = W Htᵀ is in memory at a time."""
    m, n = shape
    k = W.shape[1]
    num_W = den_W = H_pair = None
    if "XH" in need:
        num_W, den_W = np.empty((m, k), dtype), np.empty((m, k), dtype)
    if "XW" in need:
        H_pair = np.zeros((2, n, k), dtype)
    loss = 0.0
    for s, e, Xb in blocks:
        W_part, H_part, block_loss = beta_block(Xb, W[s:e], Ht, beta, need)
        if W_part is not None:
            num_W[s:e], den_W[s:e] = W_part
        if H_part is not None:
            H_pair += H_part
        loss += block_loss
    return _beta_dict(None if num_W is None else (num_W, den_W), H_pair, loss)


def kl_products_in_blocks(blocks, shape, W, Ht, need, dtype) -> dict:
    """Q = X/(W Htᵀ) products (see DenseEngine.kl_ratio) and, if asked, D_KL(X‖W Htᵀ), summed over
    dense row blocks of X as `beta_products_in_blocks` does: one block of Q in memory at a time."""
    m, n = shape
    k = W.shape[1]
    out = {}
    if "QHt" in need:
        out["QHt"] = np.empty((m, k), dtype)
    if "QtW" in need:
        out["QtW"] = np.zeros((n, k), dtype)
    loss = 0.0
    for s, e, Xb in blocks:
        part = kl_products_numpy(Xb, W[s:e], Ht, need)
        if "QHt" in need:
            out["QHt"][s:e] = part["QHt"]
        if "QtW" in need:
            out["QtW"] += part["QtW"]
        if "loss" in need:
            loss += part["loss"]
    if "loss" in need:
        out["loss"] = loss
    return out
