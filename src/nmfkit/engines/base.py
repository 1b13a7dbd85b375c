"""The engine contract.

Factors are stored *tall*: W is m×k and Ht = Hᵀ is n×k, so the H half-step is
the W half-step on the transposed data.  An engine provides

    XHt(Ht)  = X Hᵀ   (m×k)          XtW(W) = Xᵀ W   (n×k)
    sqnorm   = ‖X‖²_F (float64)
    kl_ratio(W, Ht, need) = the parts of (Q Ht, Qᵀ W, D_KL) named in `need`
                       ("XH", "XW", "loss"), Q = X / (W Htᵀ), evaluated only
                       where X is nonzero for sparse data (engines may return
                       the loss even when not asked)
    frobenius(W, Ht) = ½‖X − W Htᵀ‖²_F  (exact; used for final reports)
    kl_w_step(W, Ht, den, l2, floor, need) = the KL multiplicative W half-step,
                       colsum(W') and the parts of (Q'ᵀ W', D_KL) named in `need`
                       at the new W' (a generic two-pass version here; engines may fuse it)

Cost: XHt and XtW are one pass over X each (m·n·k flops dense, nnz·k sparse).
"""
from __future__ import annotations

import numpy as np

from ._ops import NUMPY_OPS, array_ops


class Engine:
    """Base class; subclasses set `X`, `shape`, `dtype`, `sqnorm`."""

    X = None
    ops = NUMPY_OPS          # array operations on this engine's factors (see _ops.py)
    shape: tuple[int, int]
    dtype: np.dtype
    sqnorm: float
    nnz: int

    def XHt(self, Ht: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def XtW(self, W: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def kl_ratio(self, W, Ht, need=("XH", "XW", "loss")):  # pragma: no cover - abstract
        raise NotImplementedError

    def kl_divergence(self, W, Ht) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def kl_w_step(self, W, Ht, den, l2, floor, need=("XW",), Ht_next=None) -> dict:
        """KL MU W half-step and the next H half-step's products, by two `kl_ratio` calls.

        W' = max(floor, W ∘ (Q Ht) / max(tiny, den + l2 W)), Q = X / (W Htᵀ);
        returns {"W": W', "W_sum": colsum(W')} plus the parts of ("XW", "loss") in
        `need` at (W', Ht_next) (Ht_next defaults to Ht).
        Written with operators and indexing only, so any array type works."""
        tiny = self.tiny
        XH = self.kl_ratio(W, Ht, need=("XH",))["XH"]
        d = den + l2 * W if l2 else den + 0 * W[:1]   # a fresh array either way
        d[d < tiny] = tiny
        Wn = W * XH
        Wn /= d
        Wn[Wn < floor] = floor
        out = dict(self.kl_ratio(Wn, Ht if Ht_next is None else Ht_next, need=tuple(need))) if need else {}
        out["W"], out["W_sum"] = Wn, self.column_sums(Wn)
        return out

    def column_sums(self, F):
        """Σᵢ F_ia of a factor, added as this engine's `kl_w_step` adds its W_sum."""
        return F.sum(0)

    @property
    def tiny(self) -> float:
        """Smallest positive normal number of the data's dtype (the guard of divisions)."""
        return float(np.finfo(self.dtype).tiny)

    def frobenius(self, W: np.ndarray, Ht: np.ndarray) -> float:
        """½‖X − W Htᵀ‖² by the trace identity (no m×n product).

        ½(‖X‖² − 2⟨W, X Ht⟩ + ⟨WᵀW, HtᵀHt⟩); accumulated in float64.
        """
        R = self.XHt(Ht)
        return frobenius_from_products(self.sqnorm, W, R, Ht.T @ Ht)

    def col_sums(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def row_sums(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def transpose(self) -> "Engine":  # pragma: no cover - abstract
        raise NotImplementedError


def frobenius_from_products(sqnorm: float, W: np.ndarray, R: np.ndarray, G: np.ndarray) -> float:
    """½‖X − W Htᵀ‖² from R = X Ht and G = HtᵀHt, without touching X.

    The three terms are summed in float64; the result is clipped at 0 because
    cancellation can make it a hair negative at an exact fit.
    """
    ops = array_ops(W)
    W64 = ops.to64(W)
    cross = ops.vdot(W64, ops.to64(R))
    quad = ops.vdot(W64.T @ W64, ops.to64(G))
    return max(0.5 * (sqnorm - 2.0 * cross + quad), 0.0)
