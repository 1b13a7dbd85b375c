"""Convex NMF, X ≈ X G H with G, H ≥ 0, by the multiplicative updates of Ding, Li & Jordan
(IEEE TPAMI 32(1) 2010) (Frobenius loss, dense and sparse data).

Each basis vector is a non-negative combination of data columns, W = X G (G n×k), so the
basis vectors live in the cone of the data and, with G's columns summing to one, are weighted
means of samples — interpretable as cluster centroids (the paper's link with k-means).  nmfkit
minimises ½‖X − X G Htᵀ‖²_F over G, Ht ≥ 0 (Ht n×k is the usual Hᵀ) with, for non-negative X
(so that Y = XᵀX = Y⁺ and Y⁻ = 0 in the paper's notation),

    Ht ← Ht ∘ sqrt( Y G / (Ht Gᵀ Y G) )          Y G = Xᵀ W,      Gᵀ Y G = Wᵀ W
    G  ← G ∘ sqrt( Y Ht / (Y G HtᵀHt) )          Y Ht = Xᵀ (X Ht)

Y is never formed: each product with it is two products with X, so an iteration costs four
passes over X (Xᵀ W, X Ht, Xᵀ(X Ht) and the new W = X G, which the next iteration reuses).
Entries are kept at or above a floor ε² (as in the `mu` solver) so that none is locked at zero.

Guarantee: Ding, Li & Jordan prove, with auxiliary functions, that each of the two updates does
not increase the objective; the floor clamps a separable majoriser's
minimiser, which keeps that property.  So the objective is non-increasing (up to rounding); the
limit is a stationary point at best, not a global minimum.

The solver keeps G as its state (`checkpoint_attrs`); the driver sees W = X G and Ht.  Start: G
from the start's Ht with columns scaled to sum 1 (each basis vector a weighted mean of samples),
then W = X G rescaled by the optimal factor; a given W0 cannot be represented as X G and is
replaced, only H0 is used.
"""
from __future__ import annotations

import numpy as np

from ..engines.base import frobenius_from_products
from ..registry import register_solver
from .base import Solver, floor_of


def sqrt_ratio_update(F, numerator, denominator, floor):
    """F ∘ sqrt(numerator / denominator), kept ≥ floor (a 0/0 entry keeps its value)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(denominator > 0, numerator / denominator, 1.0)
    return np.maximum(F * np.sqrt(np.maximum(ratio, 0.0)), floor).astype(F.dtype, copy=False)


@register_solver("convex", losses=("frobenius",), monotone=True, max_iter=1000, default_init="nndsvda",
                 summary="convex NMF X ≈ X G H, basis vectors = weighted sums of samples "
                         "(Ding, Li & Jordan 2010, multiplicative updates, monotone)", penalties=False)
class ConvexNMF(Solver):
    """Convex-NMF multiplicative updates; see the module docstring."""
    checkpoint_attrs = ("G",)

    def __init__(self, engine, loss, beta, **options):
        super().__init__(engine, loss, beta, **options)
        if self.penalty.active:
            raise ValueError(f"solver {self.name!r} takes no alpha_W/alpha_H penalties")
        self.floor = floor_of(engine.dtype)
        self.G = None
        self._basis = (None, None)     # (W, X G) the last step returned: W = X G, reused

    def prepare(self, W, Ht):
        e = self.engine
        Ht = np.maximum(np.array(Ht, order="C", copy=True), self.floor)
        sums = Ht.sum(axis=0)
        G = np.maximum(Ht / np.where(sums > 0, sums, 1.0), self.floor).astype(e.dtype)
        W = np.ascontiguousarray(e.XHt(G))
        num = float(np.vdot(W.astype(np.float64), e.XHt(Ht)))        # optimal scale s of (X G) Htᵀ
        den = float(np.vdot((W.T @ W).astype(np.float64), Ht.T @ Ht))
        if num > 0 and den > 0:
            s = np.asarray(num / den, dtype=e.dtype)
            G, W = G * s, W * s
        self.G, self._basis = G, (W, None)
        return W, Ht

    def step(self, W, Ht):
        e, floor = self.engine, self.floor
        G = self.G
        if W is not self._basis[0]:             # a fresh start or a resume: W = X G recomputed
            W = np.ascontiguousarray(e.XHt(G))
        YG = e.XtW(W)                                            # Xᵀ X G
        Ht = sqrt_ratio_update(Ht, YG, Ht @ (W.T @ W), floor)
        R = e.XHt(Ht)                                            # X Ht
        YH = e.XtW(R)                                            # Xᵀ X Ht
        HtH = Ht.T @ Ht
        G = sqrt_ratio_update(G, YH, YG @ HtH, floor)
        W_new = np.ascontiguousarray(e.XHt(G))
        self.G, self._basis = G, (W_new, None)
        obj = frobenius_from_products(e.sqnorm, W_new, R, HtH)
        return W_new, Ht, obj
