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

Cost: XHt and XtW are one pass over X each (m·n·k flops dense, nnz·k sparse).
"""
from __future__ import annotations

import numpy as np


class Engine:
    """Base class; subclasses set `X`, `shape`, `dtype`, `sqnorm`."""

    X = None
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
    W64 = W.astype(np.float64, copy=False)
    cross = float(np.vdot(W64, R.astype(np.float64, copy=False)))
    quad = float(np.vdot(W64.T @ W64, G.astype(np.float64, copy=False)))
    return max(0.5 * (sqnorm - 2.0 * cross + quad), 0.0)
