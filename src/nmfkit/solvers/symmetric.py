"""Symmetric NMF, A ≈ H Hᵀ, by ANLS on the penalty formulation (Frobenius loss, dense and sparse A).

For a symmetric non-negative similarity or graph matrix A (n×n), symmetric NMF seeks H ≥ 0 (n×k)
with A ≈ H Hᵀ (Kuang, Ding & Park, SDM 2012); its rows are soft cluster memberships of the
graph's nodes.  Following Kuang, Yun & Park (J. Global Optim. 62(3) 2015), the two factors
are kept apart and tied by a penalty; nmfkit minimises

    f(W, Ht) = ½‖A − W Htᵀ‖²_F + (α/2)‖W − Ht‖²_F,     W, Ht ≥ 0 (both n×k),

with α fixed (`alpha`, default "auto" = max(A)², the choice of Kuang, Yun & Park).  Each half-step is
an exact non-negative least-squares solve by block principal pivoting (solvers/_anls_kernels.py):

    Ht ← argmin_{F ≥ 0} ½ tr(F G Fᵀ) − ⟨F, R⟩,   R = A W + α W,    G = WᵀW + α I
    W  ← the same with the roles of W and Ht swapped (R = A Ht + α Ht, G = HtᵀHt + α I)

Guarantee: every half-step minimises f exactly over one block, so f never increases (up to
rounding), and G is positive definite (α > 0), so each half-step has a unique solution.  The
penalty makes W and Ht agree increasingly as α grows; at a stationary point with W = Ht, H = W
is a stationary point of the symmetric problem min ½‖A − H Hᵀ‖² (Kuang, Yun & Park 2015).
The result holds both factors: W and H = Htᵀ, with W ≈ Hᵀ.  Nothing is promised about the
global minimum (the problem is non-convex).

A must be square and symmetric (up to 100 eps of its largest entry); anything else is refused
before any work.  Cost per iteration: two products with A (2·nnz·k) and two NNLS solves.
"""
from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp

from ..engines.base import frobenius_from_products
from ..registry import register_solver
from ._anls_kernels import nnls_bpp
from .base import Solver

SYMMETRY_TOL = 100.0      # × eps(dtype) × max |A|
ROW_BLOCK = 1024          # rows compared at a time for dense A (bounded temporaries)


def asymmetry(A) -> float:
    """max |A − Aᵀ| of a square dense or sparse matrix, without a dense copy."""
    if sp.issparse(A):
        D = (A - A.T).tocoo()
        return float(np.abs(D.data).max()) if D.nnz else 0.0
    worst = 0.0
    for i in range(0, A.shape[0], ROW_BLOCK):
        rows = np.asarray(A[i:i + ROW_BLOCK])
        worst = max(worst, float(np.abs(rows - np.asarray(A[:, i:i + ROW_BLOCK]).T).max()))
    return worst


def check_symmetric(A, dtype) -> float:
    """Refuse a non-square or non-symmetric A in one line; returns max |A|."""
    m, n = A.shape
    if m != n:
        raise ValueError(f"symmetric NMF needs a square symmetric matrix; X is {m}×{n}")
    top = float(A.max()) if A.shape[0] else 0.0          # X is validated non-negative: its largest |entry|
    gap = asymmetry(A)
    if gap > SYMMETRY_TOL * float(np.finfo(dtype).eps) * top:
        raise ValueError(f"symmetric NMF needs a symmetric X; max |X − Xᵀ| = {gap:.3g} "
                         f"(largest entry {top:.3g}); symmetrise it, e.g. (X + X.T) / 2")
    return top


@register_solver("symmetric", losses=("frobenius",), monotone=True, max_iter=500, default_init="nndsvda",
                 summary="symmetric NMF A ≈ H Hᵀ of a similarity/graph matrix (Kuang, Yun & Park 2015: "
                         "ANLS on ½‖A − W Hᵀ‖² + α/2 ‖W − H‖², monotone)",
                 options={"alpha": "auto"}, penalties=False)
class SymmetricNMF(Solver):
    """ANLS for penalised symmetric NMF; see the module docstring."""

    def __init__(self, engine, loss, beta, *, alpha="auto", **options):
        super().__init__(engine, loss, beta, **options)
        if self.penalty.active:
            raise ValueError(f"solver {self.name!r} takes no alpha_W/alpha_H penalties; its own `alpha` ties W to H")
        top = check_symmetric(engine.X, engine.dtype)
        if isinstance(alpha, str) and alpha == "auto":
            alpha = top * top
        elif (isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, numbers.Real)
              or not np.isfinite(alpha) or alpha <= 0):
            raise ValueError(f"alpha must be 'auto' or a finite number > 0; got {alpha!r}")
        self.alpha = float(alpha) if alpha > 0 else 1.0       # an all-zero A is refused earlier by fit

    def prepare(self, W, Ht):
        W = np.array(W, dtype=W.dtype, order="C", copy=True)
        Ht = np.array(Ht, dtype=Ht.dtype, order="C", copy=True)
        if not self.given_start:               # a generated start: one symmetric factor for both
            W = Ht = np.ascontiguousarray(0.5 * (W + Ht))
        return W, Ht

    def objective(self, W, Ht) -> float:
        return self.engine.loss(W, Ht, "frobenius", 2.0) + self._tie(W, Ht)

    def _tie(self, W, Ht) -> float:
        diff = W.astype(np.float64) - Ht
        return 0.5 * self.alpha * float(np.vdot(diff, diff))

    def _half(self, F_old, other, R):
        """argmin_{F ≥ 0} ½‖A − other Fᵀ‖² + α/2 ‖F − other‖² given R = A other (or Aᵀ other)."""
        k = other.shape[1]
        G = other.T.astype(np.float64) @ other + self.alpha * np.eye(k)
        return nnls_bpp(R + self.alpha * other, G, passive=F_old > 0).astype(F_old.dtype, copy=False)

    def step(self, W, Ht):
        e = self.engine
        Ht_new = self._half(Ht, W, e.XtW(W))
        R = e.XHt(Ht_new)
        W_new = self._half(W, Ht_new, R)
        data = frobenius_from_products(e.sqnorm, W_new, R, Ht_new.T @ Ht_new)
        return W_new, Ht_new, data + self._tie(W_new, Ht_new)
