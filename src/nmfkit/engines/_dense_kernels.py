"""Fused KL products for dense X: one pass, no m×n temporaries (Numba, with the NumPy twin).

For X (m×n), W (m×k), Ht (n×k) and Λ = W Htᵀ, Q = X / Λ:

    QHt = Q Ht  (m×k),   QtW = Qᵀ W  (n×k),   D = Σ x log(x/λ) − x + λ   (0·log 0 = 0)

The NumPy twin forms Λ and Q (two m×n arrays, five passes over memory plus a
log pass for D).  The kernel walks the rows in parallel blocks and computes λ,
q and the requested sums entry by entry: 2k flops per entry per product and no
temporaries, which wins when k is small (the products are then memory-bound
for BLAS too).  QtW is reduced over per-block partial sums.  Both clamp λ at
the dtype's tiny, as the engines do.  tests/test_core.py checks they agree.

`kl_w_step` fuses a whole KL multiplicative W half-step with the products the
next H half-step needs, in one pass over the rows of X (Hᵀ stored k×n so the
inner loops run over contiguous columns and vectorise):

    Wᵢ' = max(δ, Wᵢ ∘ (qᵢ Ht) / max(tiny, d + λ₂Wᵢ)),  qᵢ = xᵢ / (Wᵢ Htᵀ)
    then  QtW = Q'ᵀ W',  D(X‖W' Htᵀ)  with Q' = X / (W' Htᵀ),  and colsum(W')

4k + 2 operations per entry (two λ rows, the row product, the QtW update), one
read of X instead of two.  Rows are independent, so the result does not
depend on the thread count; the partial sums of QtW are added per row block.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from ._blocks import ROW_BLOCKS, VECTORISE
from ._kernels import block_column_sums

FUSED_MAX_RANK = 3       # above this, BLAS wins on the products alone (the loss still goes fused)
FUSED_STEP_MAX_RANK = 8  # kl_w_step: the fused pass beats two BLAS passes up to about this rank
# error_model="numpy": IEEE division (no ZeroDivisionError check), which LLVM can vectorise; λ ≥ tiny anyway


def kl_divergence_terms(X, WH, Q, pos) -> float:
    """D_KL(X‖WH) = Σ x log(x/wh) − x + wh from WH and Q = X/WH, with 0·log 0 = 0."""
    with np.errstate(divide="ignore"):
        logs = np.log(Q, where=pos, out=np.zeros_like(Q))
    under = pos & (Q == 0)               # x/λ underflowed (a subnormal x): log x − log λ keeps the term finite
    if under.any():
        logs[under] = np.log(X[under]) - np.log(WH[under])
    return float(np.sum(X * logs, dtype=np.float64) - np.sum(X, dtype=np.float64)
                 + np.sum(WH, dtype=np.float64))


def kl_products_numpy(X, W, Ht, need, positive=None):
    WH = W @ Ht.T
    np.maximum(WH, np.finfo(WH.dtype).tiny, out=WH)
    Q = X / WH
    out = {}
    if "QHt" in need:
        out["QHt"] = Q @ Ht
    if "QtW" in need:
        out["QtW"] = Q.T @ W
    if "loss" in need:
        out["loss"] = kl_divergence_terms(X, WH, Q, X > 0 if positive is None else positive)
    return out



@numba.njit(parallel=True, cache=True, error_model="numpy")
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
                        loss += x * (math.log(q) if q > 0 else math.log(x) - math.log(lam))
            if want_xh:
                for a in range(k):
                    XH[i, a] = xh[a]
        loss_parts[b] = loss

def kl_products(X, W, Ht, need, positive=None):
    """The fused kernel on a C- or F-contiguous X (F: the transposed problem)."""
    if not X.flags.c_contiguous:
        if X.flags.f_contiguous:        # Xᵀ is C-ordered: swap the roles of W and Ht
            swap = {"QHt": "QtW", "QtW": "QHt", "loss": "loss"}
            out = kl_products(X.T, Ht, W, tuple(swap[t] for t in need))
            return {swap[t]: v for t, v in out.items()}
        X = np.ascontiguousarray(X)
    m, n = X.shape
    k = W.shape[1]
    dt = X.dtype
    W = np.ascontiguousarray(W, dtype=dt)
    Ht = np.ascontiguousarray(Ht, dtype=dt)
    blocks = min(ROW_BLOCKS, m)      # fixed, not the thread count: same rounding on any machine
    want_xw = "QtW" in need
    XH = np.empty((m, k) if "QHt" in need else (0, 0), dtype=dt)
    XW_parts = np.zeros((blocks, n, k) if want_xw else (blocks, 0, 0), dtype=dt)
    loss_parts = np.zeros(blocks)
    _kl_fused(X, W, Ht, "QHt" in need, want_xw, "loss" in need, XH, XW_parts, loss_parts,
              dt.type(np.finfo(dt).tiny))
    out = {}
    if "QHt" in need:
        out["QHt"] = XH
    if want_xw:
        out["QtW"] = XW_parts.sum(axis=0)
    if "loss" in need:
        out["loss"] = float(loss_parts.sum())
    return out

@numba.njit(parallel=True, cache=True, fastmath=VECTORISE, error_model="numpy")
def _kl_w_step(X, W, Hw, Hw_next, den, l2, floor, tiny, update, want_xw, want_loss, Wn, XW_parts,
               sum_parts, loss_parts):
    m, n = X.shape
    k = W.shape[1]
    blocks = loss_parts.shape[0]
    size = (m + blocks - 1) // blocks
    for b in numba.prange(blocks):
        lam = np.empty(n, dtype=X.dtype)
        q = np.empty(n, dtype=X.dtype)
        loss = 0.0
        for i in range(b * size, min(m, (b + 1) * size)):
            x = X[i]
            for stage in range(2):           # 0: the update of row i; 1: products at the new row
                if stage == 0 and not update:
                    for a in range(k):
                        Wn[i, a] = W[i, a]
                        sum_parts[b, a] += W[i, a]
                    continue
                F, H = (W, Hw) if stage == 0 else (Wn, Hw_next)
                if stage == 1 and not (want_xw or want_loss):
                    break
                lam[:] = 0.0
                for a in range(k):
                    f = F[i, a]
                    for j in range(n):
                        lam[j] += f * H[a, j]
                for j in range(n):
                    q[j] = x[j] / max(lam[j], tiny)
                if stage == 0:
                    for a in range(k):
                        s = 0.0
                        for j in range(n):
                            s += q[j] * Hw[a, j]
                        Wn[i, a] = max(W[i, a] * s / max(den[a] + l2 * W[i, a], tiny), floor)
                        sum_parts[b, a] += Wn[i, a]   # the stored (rounded) value
                else:
                    if want_xw:
                        for a in range(k):
                            f = Wn[i, a]
                            for j in range(n):
                                XW_parts[b, a, j] += f * q[j]
                    if want_loss:
                        for j in range(n):
                            loss += max(lam[j], tiny) - x[j]
                            if x[j] > 0:
                                loss += x[j] * (math.log(q[j]) if q[j] > 0
                                                else math.log(x[j]) - math.log(max(lam[j], tiny)))
        loss_parts[b] = loss

def kl_w_step(X, W, Ht, den, l2, floor, need, Ht_next=None, update=True):
    """The fused W half-step on a C-contiguous X; see the module docstring.
    The products at the new W use `Ht_next` (default Ht): R's brunet floors Ht between.
    `update=False` only makes the products at W (the same sums as after a step)."""
    m, n = X.shape
    k = W.shape[1]
    dt = X.dtype
    W = np.ascontiguousarray(W, dtype=dt)
    Hw = np.ascontiguousarray(Ht.T, dtype=dt)
    blocks = min(ROW_BLOCKS, m)
    want_xw = "QtW" in need
    Hw_next = Hw if Ht_next is None else np.ascontiguousarray(Ht_next.T, dtype=dt)
    Wn = np.empty_like(W)
    XW_parts = np.zeros((blocks, k, n) if want_xw else (blocks, 0, 0), dtype=dt)
    sum_parts = np.zeros((blocks, k), dtype=dt)
    loss_parts = np.zeros(blocks)
    _kl_w_step(X, W, Hw, Hw_next, np.ascontiguousarray(den, dtype=dt), dt.type(l2), dt.type(floor),
               dt.type(np.finfo(dt).tiny), update, want_xw, "loss" in need, Wn, XW_parts, sum_parts, loss_parts)
    out = {"W": Wn, "W_sum": sum_parts.sum(axis=0)}
    if want_xw:
        out["QtW"] = XW_parts.sum(axis=0).T
    if "loss" in need:
        out["loss"] = float(loss_parts.sum())
    return out

def column_sums(F):
    """Σᵢ F_ia added in the order `kl_w_step` adds its W_sum (equal to the last bit): its
    row blocks of ⌈m/blocks⌉ rows, then the blocks in order."""
    m = F.shape[0]
    blocks = max(1, min(ROW_BLOCKS, m))
    size = (m + blocks - 1) // blocks
    return block_column_sums(F, np.minimum(np.arange(blocks + 1) * size, m))
