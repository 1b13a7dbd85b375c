"""Alternating non-negative least squares by block principal pivoting (Frobenius).

Each half-step solves, exactly, the non-negative least-squares problem

    min_{F ≥ 0}  ½ tr(F G Fᵀ) − ⟨F, R⟩      (rows of F independent, shared k×k G)

with (R, G) = (Xᵀ W, WᵀW) for Ht and (X Ht, HtᵀHt) for W, penalties folded in
by `penalty.edit`.  A row f is optimal iff, with y = G f − r and a passive
set P, f_P = G_PP⁻¹ r_P ≥ 0, f_rest = 0 and y_rest ≥ 0 (KKT).  Block
principal pivoting (Kim & Park, SIAM J. Sci. Comput. 33(6) 2011) flips every
infeasible variable between P and its complement at once; when the number of
infeasible variables stops decreasing for 3 rounds it falls back to flipping
only the last one (Murty's rule), which guarantees termination.

The kernels (a Numba one, rows in parallel, and its whole-array NumPy twin) are in
solvers/_anls_kernels.py.

Exact half-steps make the objective non-increasing (up to rounding).  Dead
components are revived as in `hals` (the product W Htᵀ is unchanged).
Cost per iteration: the two products (2·nnz·k, or 2·m·n·k dense) plus, per
row and round, |P|³/6 for the factorisation and O(k·|P|) for the gradient
(the twin: O(k³) per distinct passive set and O((m + n)·k²) for the mat-vecs).
"""
from __future__ import annotations

import numpy as np

from ..engines.base import frobenius_from_products
from ..registry import register_solver
from ._anls_kernels import nnls_bpp
from .base import Solver
from .hals import dead_columns, revival_level, revive


@register_solver("anls", losses=("frobenius",), max_iter=500, monotone=True, default_init="nndsvda",
                 summary="alternating NNLS by block principal pivoting (exact half-steps, monotone)")
class ANLS(Solver):
    requires = frozenset({"core", "complete", "numpy_factors"})   # Numba kernels on the factors

    def __init__(self, engine, loss, beta, **options):
        super().__init__(engine, loss, beta, **options)
        self.revived = 0

    def prepare(self, W, Ht):
        W = np.array(W, order="C", copy=True)
        Ht = np.array(Ht, order="C", copy=True)
        level = revival_level(self.engine, W.shape[1])
        for F in (W, Ht):                  # dead columns of the start are always revived
            dead = dead_columns(F)
            F[:, dead] = level
            self.revived += dead.size
        self.revive_level = None if self.penalty.active else level   # as in hals
        return W, Ht

    def _half(self, F_old, R, G, which):
        Rp, Gp = self.penalty.edit(R, G, which)
        return nnls_bpp(Rp, Gp, passive=F_old > 0).astype(F_old.dtype, copy=False)

    def step(self, W, Ht):
        e, p = self.engine, self.penalty
        RH, GH = e.XtW(W), W.T @ W
        Ht_new = self._half(Ht, RH, GH, "H")
        Ht_new, W_start, n = revive(Ht_new, W, self.revive_level)
        R, G = e.XHt(Ht_new), Ht_new.T @ Ht_new
        W_new = self._half(W_start, R, G, "W")
        data = frobenius_from_products(e.sqnorm, W_new, R, G)   # revival leaves W Htᵀ unchanged
        W_new, Ht_out, n2 = revive(W_new, Ht_new, self.revive_level)
        obj = data + p.value(W_new, Ht_out)
        self.revived += n + n2
        self.cache = {"XHt": R, "HtH": G} if Ht_out is Ht_new else {}
        if W_start is W:
            self.cache.update(XtW=RH, WtW=GH)
        return W_new, Ht_out, obj
