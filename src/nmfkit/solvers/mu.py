"""Multiplicative updates (Lee & Seung 2000) for the Frobenius and KL losses.

Frobenius, H half-step (tall form, R = Xᵀ W, G = WᵀW):
    Ht ← max(δ, Ht ∘ R / (Ht G))
KL, H half-step (Q = X / (W Htᵀ), only at the nonzeros for sparse X):
    Ht ← max(δ, Ht ∘ (Qᵀ W) / 1ᵀW)
and the same with the roles of W and Ht swapped.  Each is the exact minimiser
of a separable auxiliary function G(h|hᵏ) ≥ F(h) with G(hᵏ|hᵏ) = F(hᵏ)
(seed 002's theorem), clamped at the floor δ = floor_of(dtype); since the
auxiliary function is separable and convex, the clamped point still minimises
it over {h ≥ δ}, so the objective never increases.  The floor also prevents
division by zero and zero-locking.  A zero denominator only occurs when the
component has no effect on the loss; the entry then goes to the floor.

Cost per iteration: Frobenius 2 passes over X + O((m+n)k²); KL 4 passes.
"""
from __future__ import annotations

import numpy as np

from ..engines.base import frobenius_from_products
from ..registry import register_solver
from .base import Solver, floor_of


def mu_frobenius_half(F, R, G, floor, l1=0.0, l2=0.0):
    """One Frobenius MU half-step on the tall factor F (not in place).

    With penalties the denominator gains λ₁ + λ₂F (scikit-learn's form)."""
    den = F @ G
    if l1:
        den += l1
    if l2:
        den += l2 * F
    np.maximum(den, np.finfo(F.dtype).tiny, out=den)
    out = F * R
    out /= den
    np.maximum(out, floor, out=out)
    return out


def mu_kl_half(F, QtF_other, other_colsum, floor, l1=0.0, l2=0.0):
    """One KL MU half-step: F ∘ (Qᵀ·other) / (colsum(other) + λ₁ + λ₂F)."""
    den = other_colsum + l1
    if l2:
        den = den + l2 * F
    den = np.maximum(den, np.finfo(F.dtype).tiny)
    out = F * QtF_other
    out /= den
    np.maximum(out, floor, out=out)
    return out


@register_solver("mu", losses=("frobenius", "kl"), max_iter=1000,
                 summary="Lee-Seung multiplicative updates (monotone, simple, slow)")
class MultiplicativeUpdates(Solver):

    def __init__(self, engine, loss, beta, **options):
        super().__init__(engine, loss, beta, **options)
        self.floor = floor_of(engine.dtype)
        self._next = None          # KL: ratio products cached at the last iterate

    def prepare(self, W, Ht):
        return np.maximum(W, self.floor), np.maximum(Ht, self.floor)

    def step(self, W, Ht):
        if self.loss == "frobenius":
            return self._step_frobenius(W, Ht)
        return self._step_kl(W, Ht)

    def _step_frobenius(self, W, Ht):
        e = self.engine
        p = self.penalty
        RH, GH = e.XtW(W), W.T @ W
        Ht = mu_frobenius_half(Ht, RH, GH, self.floor, *p.terms("H"))
        R, G = e.XHt(Ht), Ht.T @ Ht
        W = mu_frobenius_half(W, R, G, self.floor, *p.terms("W"))
        self.cache = {"XtW": RH, "WtW": GH, "XHt": R, "HtH": G}
        return W, Ht, frobenius_from_products(e.sqnorm, W, R, G) + p.value(W, Ht)

    def _step_kl(self, W, Ht):
        e = self.engine
        cached = self._next
        if cached is not None and cached[0] is W and cached[1] is Ht:
            XW = cached[2]
        else:
            XW = e.kl_ratio(W, Ht, need=("XW",))["XW"]
        p = self.penalty
        Ht = mu_kl_half(Ht, XW, W.sum(axis=0), self.floor, *p.terms("H"))
        XH = e.kl_ratio(W, Ht, need=("XH",))["XH"]
        W = mu_kl_half(W, XH, Ht.sum(axis=0), self.floor, *p.terms("W"))
        nxt = e.kl_ratio(W, Ht, need=("XW",))
        self._next = (W, Ht, nxt["XW"])
        return W, Ht, nxt["loss"] + p.value(W, Ht)
