"""Fused KL products for dense X: one pass, no m×n temporaries (Numba, with the NumPy twin).

For X (m×n), W (m×k), Ht (n×k) and Λ = W Htᵀ, Q = X / Λ:

    XH = Q Ht  (m×k),   XW = Qᵀ W  (n×k),   D = Σ x log(x/λ) − x + λ   (0·log 0 = 0)

The NumPy twin forms Λ and Q (two m×n arrays, five passes over memory plus a
log pass for D).  The kernel walks the rows in parallel blocks and computes λ,
q and the requested sums entry by entry: 2k flops per entry per product and no
temporaries, which wins when k is small (the products are then memory-bound
for BLAS too).  XW is reduced over per-block partial sums.  Both clamp λ at
the dtype's tiny, as the engines do.  tests/test_core.py checks they agree.
"""
from __future__ import annotations

import math

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is a core dependency
    numba = None

ROW_BLOCKS = 16          # row blocks of the kernel (partial sums of XW are added in this order)
FUSED_MAX_RANK = 3       # above this, BLAS wins on the products alone (the loss still goes fused)


def kl_divergence_terms(X, WH, Q, pos) -> float:
    """D_KL(X‖WH) = Σ x log(x/wh) − x + wh from WH and Q = X/WH, with 0·log 0 = 0."""
    logs = np.log(Q, where=pos, out=np.zeros_like(Q))
    return float(np.sum(X * logs, dtype=np.float64) - np.sum(X, dtype=np.float64)
                 + np.sum(WH, dtype=np.float64))


def kl_products_numpy(X, W, Ht, need, positive=None):
    WH = W @ Ht.T
    np.maximum(WH, np.finfo(WH.dtype).tiny, out=WH)
    Q = X / WH
    out = {}
    if "XH" in need:
        out["XH"] = Q @ Ht
    if "XW" in need:
        out["XW"] = Q.T @ W
    if "loss" in need:
        out["loss"] = kl_divergence_terms(X, WH, Q, X > 0 if positive is None else positive)
    return out


if numba is not None:

    @numba.njit(parallel=True, cache=True)
    def _kl_fused(X, W, Ht, want_xh, want_xw, want_loss, XH, XW_parts, loss_parts, tiny):
        m, n = X.shape
        k = W.shape[1]
        blocks = XW_parts.shape[0]
        size = (m + blocks - 1) // blocks
        for b in numba.prange(blocks):
            lo = b * size
            hi = min(m, lo + size)
            loss = 0.0
            xh = np.zeros(k, dtype=XH.dtype)
            for i in range(lo, hi):
                for a in range(k):
                    xh[a] = 0.0
                for j in range(n):
                    lam = 0.0
                    for a in range(k):
                        lam += W[i, a] * Ht[j, a]
                    if lam < tiny:
                        lam = tiny
                    x = X[i, j]
                    q = x / lam
                    if want_xh:
                        for a in range(k):
                            xh[a] += q * Ht[j, a]
                    if want_xw:
                        for a in range(k):
                            XW_parts[b, j, a] += q * W[i, a]
                    if want_loss:
                        loss += lam - x
                        if x > 0:
                            loss += x * math.log(q)
                if want_xh:
                    for a in range(k):
                        XH[i, a] = xh[a]
            loss_parts[b] = loss

    def kl_products(X, W, Ht, need, positive=None):
        """The fused kernel on a C- or F-contiguous X (F: the transposed problem)."""
        if not X.flags.c_contiguous:
            if X.flags.f_contiguous:        # Xᵀ is C-ordered: swap the roles of W and Ht
                swap = {"XH": "XW", "XW": "XH", "loss": "loss"}
                out = kl_products(X.T, Ht, W, tuple(swap[t] for t in need))
                return {swap[t]: v for t, v in out.items()}
            X = np.ascontiguousarray(X)
        m, n = X.shape
        k = W.shape[1]
        dt = X.dtype
        W = np.ascontiguousarray(W, dtype=dt)
        Ht = np.ascontiguousarray(Ht, dtype=dt)
        blocks = min(ROW_BLOCKS, m)      # fixed, not the thread count: same rounding on any machine
        want_xw = "XW" in need
        XH = np.empty((m, k) if "XH" in need else (0, 0), dtype=dt)
        XW_parts = np.zeros((blocks, n, k) if want_xw else (blocks, 0, 0), dtype=dt)
        loss_parts = np.zeros(blocks)
        _kl_fused(X, W, Ht, "XH" in need, want_xw, "loss" in need, XH, XW_parts, loss_parts,
                  dt.type(np.finfo(dt).tiny))
        out = {}
        if "XH" in need:
            out["XH"] = XH
        if want_xw:
            out["XW"] = XW_parts.sum(axis=0)
        if "loss" in need:
            out["loss"] = float(loss_parts.sum())
        return out

else:  # pragma: no cover
    kl_products = kl_products_numpy
