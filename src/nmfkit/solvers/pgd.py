"""Alternating projected gradient descent for the Frobenius loss.

It minimises f(W, H) = ½‖X − WH‖²_F by alternating gradient steps,
    ∇_H f = Wᵀ(WH − X),   ∇_W f = (WH − X)Hᵀ.
In the tall form (Ht = Hᵀ) a half-step on a factor F with data R, G
(R = Xᵀ W, G = WᵀW for Ht; R = X Ht, G = HtᵀHt for W) has gradient F G − R,
and one projected step is
    F ← max(0, F − α ∘ (F G − R)).
Step rules (`step=`):
  "lipschitz"  α = 1/L, L = λ_max(G): the descent lemma makes every step
               non-increasing (default);
  <float>      a fixed α: diverges when α > 2/L, so no monotonicity promise;
  "armijo"     Lin (Neural Comput. 19(10) 2007): the previous block's α is
               grown or shrunk by 10 until the sufficient-decrease condition
               f(F⁺) − f(F) ≤ σ⟨∇f, F⁺ − F⟩ (σ = 0.01) holds at the largest tried α;
               f is quadratic, so the test costs O(size·k), no pass over X;
  "lee-seung"  the diagonal step α = F / (F G) of Lee & Seung: then
               F − α(FG − R) = F ∘ R / (FG), the multiplicative update (Lee &
               Seung 2001), with MU's floor δ = eps² instead of 0, so it
               reproduces solver="mu" iterate for iterate.
Penalties (L1/L2) enter exactly through (R − λ₁, G + λ₂I) (penalties.py);
the Lee–Seung step then is α = F / (FG + λ₁ + λ₂F), which again equals MU.
`inner` projected steps reuse one (R, G) pair: the products with X dominate,
so a few cheap extra steps per half-step pay (the idea of Gillis–Glineur's
accelerated HALS); "auto" is 1 for "lee-seung" (= MU) and 1 + ½ρ (ρ = cost of
the products over one step, at most 50) otherwise.

Missing entries (masked engine): row i of W has its own Gram
G_i = Htᵀ diag(M_i·) Ht, built for all rows by one GEMM, and every rule is
applied row by row (per-row L_i for "lipschitz"); with "lee-seung" this is
masked MU.  The objective is then ½(‖M∘X‖² − 2⟨W, R⟩ + Σ_i w_iᵀ G_i w_i).

Cost per iteration: dense/sparse, the two products (2·m·n·k or 2·nnz·k) plus
inner·(m+n)·k² and a k×k eigenvalue problem; masked, 2·m·n·k² for the Grams,
inner·(m+n)·k² and (m+n) k×k eigenvalue problems.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..engines import array_ops
from ..engines.base import frobenius_from_products
from ..registry import register_solver
from ..validation import check_positive_int
from .base import Solver, floor_of

STEP_RULES = ("lipschitz", "armijo", "lee-seung")
ARMIJO_SIGMA, ARMIJO_FACTOR, ARMIJO_TRIALS = 0.01, 0.1, 30
MAX_INNER = 50


def gram_apply(F, G):
    """F G for a shared k×k Gram, or row by row (F_i G_i) for per-row Grams (m×k×k)."""
    if G.ndim == 2:
        return F @ G
    return (F[:, None, :] @ G)[:, 0, :]


def lipschitz(G):
    """λ_max of G (a scalar), or per row as an (m, 1) column for per-row Grams."""
    ops = array_ops(G)
    top = ops.clamp_min(ops.top_eigenvalue(G), ops.tiny(G))
    return top if G.ndim == 2 else top[:, None]


def quadratic_change(F, D, grad, G):
    """f(F + D) − f(F) for f(F) = ½⟨F G, F⟩ − ⟨R, F⟩ with gradient `grad` at F (exact)."""
    ops = array_ops(grad)
    return ops.vdot(grad, D) + 0.5 * ops.vdot(gram_apply(D, G), D)


class ProjectedGradient(Solver):
    """Alternating projected gradient; see the module docstring."""
    # In-memory data only (out-of-core data: hals, anls or mu); missing entries through per-row Grams.
    requires = frozenset({"core", "resident"})

    def __init__(self, engine, loss, beta, *, step="lipschitz", inner="auto", **options):
        super().__init__(engine, loss, beta, **options)
        if isinstance(step, numbers.Real) and not isinstance(step, (bool, np.bool_)):
            if not (np.isfinite(step) and step > 0):
                raise ValueError(f"step must be a positive number or one of {', '.join(STEP_RULES)}; got {step!r}")
            self.rule, self.fixed = "fixed", float(step)
        elif isinstance(step, str) and step in STEP_RULES:
            self.rule, self.fixed = step, None
        else:
            raise ValueError(f"unknown step {step!r}; choose one of: {', '.join(STEP_RULES)}, or a positive number")
        self.monotone = self.rule != "fixed"        # the driver's promise for this instance
        self.masked = "mask" in engine.capabilities      # per-row Grams
        self.inner = self._inner(inner)
        self.floor = floor_of(engine.dtype) if self.rule == "lee-seung" else 0.0
        self._alpha = {"W": None, "H": None}        # Armijo: the last accepted α per block

    def _inner(self, inner):
        if isinstance(inner, str) and inner == "auto":
            return None                                # resolved in prepare, once k is known
        return check_positive_int(inner, "inner")

    def prepare(self, W, Ht):
        if self.inner is None and self.rule == "lee-seung":
            self.inner = 1
        elif self.inner is None:
            # ρ = cost of the products with X over the cost of one projected step on both factors
            m, n = self.engine.shape
            k = W.shape[1]
            K = m * n * k if self.masked else self.engine.entries_per_pass
            rho = 1.0 + K / ((m + n) * (k + 1.0))
            self.inner = int(min(MAX_INNER, 1 + 0.5 * rho))
        ops = self.engine.ops
        return ops.clamp_min(W, self.floor), ops.clamp_min(Ht, self.floor)

    # -- one half-step ---------------------------------------------------------------------------
    def _penalised(self, R, G, which):
        """(R − λ₁, G + λ₂I) for a shared or per-row G, and λ₁ (the Lee–Seung step needs it)."""
        l1, l2 = self.penalty.terms(which)
        if G.ndim == 2:
            R, G = self.penalty.edit(R, G, which)
        else:
            R = R - l1 if l1 else R
            G = G + l2 * array_ops(G).eye(G.shape[-1], G) if l2 else G
        return R, G, l1

    def half_step(self, F, R, G, which):
        ops, F0 = self.engine.ops, F
        R, G, l1 = self._penalised(R, G, which)
        L = lipschitz(G) if self.rule == "lipschitz" else None
        for _ in range(self.inner):
            FG = gram_apply(F, G)
            grad = FG - R
            if self.rule == "lee-seung":
                den = FG + l1 if l1 else FG
                ops.clamp_min_(den, ops.tiny(F))
                F = F - (F / den) * grad
                ops.clamp_min_(F, self.floor)
            elif self.rule == "armijo":
                F = self._armijo(F, grad, G, which)
            else:
                alpha = (1.0 / L) if L is not None else self.fixed
                F = ops.clamp_min(F - alpha * grad, 0.0)
        return ops.cast_like(F, F0)

    def _armijo(self, F, grad, G, which):
        """Lin's search: start at the last α; grow it while the condition holds, else shrink."""
        ops = self.engine.ops
        alpha = self._alpha[which]
        if alpha is None:
            alpha = float((1.0 / lipschitz(G)).min())
        def trial(a):
            Fn = ops.clamp_min(F - a * grad, 0.0)
            D = Fn - F
            return Fn, quadratic_change(F, D, grad, G) <= ARMIJO_SIGMA * ops.vdot(grad, D)
        Fn, ok = trial(alpha)
        if ok:
            for _ in range(ARMIJO_TRIALS):
                bigger = alpha / ARMIJO_FACTOR
                if not math.isfinite(bigger):        # α = 1/L with L ≈ 0 (a dead component) is already huge
                    break
                Fb, ok_b = trial(bigger)
                if not ok_b or ops.equal(Fb, Fn):
                    break
                alpha, Fn = bigger, Fb
        else:
            for _ in range(ARMIJO_TRIALS):
                alpha *= ARMIJO_FACTOR
                Fn, ok = trial(alpha)
                if ok:
                    break
            else:
                Fn, alpha = F, self._alpha[which] or alpha     # no acceptable step: stay
        self._alpha[which] = alpha
        return Fn

    # -- one iteration ---------------------------------------------------------------------------
    def step(self, W, Ht):
        e, p = self.engine, self.penalty
        RH = e.XtW(W)
        GH = e.col_grams(W) if self.masked else W.T @ W
        Ht = self.half_step(Ht, RH, GH, "H")
        R = e.XHt(Ht)
        G = e.row_grams(Ht) if self.masked else Ht.T @ Ht
        W = self.half_step(W, R, G, "W")
        if self.masked:
            data = masked_frobenius_from_products(e.sqnorm, W, R, G)
            self.cache = {}
        else:
            data = frobenius_from_products(e.sqnorm, W, R, G)
            self.cache = {"XtW": RH, "WtW": GH, "XHt": R, "HtH": G}
        return W, Ht, data + p.value(W, Ht)


def masked_frobenius_from_products(sqnorm, W, R, G) -> float:
    """½‖M∘(X − W Htᵀ)‖² = ½(‖M∘X‖² − 2⟨W, R⟩ + Σ_i w_iᵀ G_i w_i), R = (M∘X) Ht, G_i per-row Grams."""
    W64 = W.astype(np.float64, copy=False)
    cross = float(np.vdot(W64, R.astype(np.float64, copy=False)))
    quad = float(np.vdot(gram_apply(W64, G.astype(np.float64, copy=False)), W64))
    return max(0.5 * (sqnorm - 2.0 * cross + quad), 0.0)


register_solver("pgd", losses=("frobenius",), monotone=True,
                max_iter=1000, default_init="nndsvda",
                summary="alternating projected gradient: 1/L, fixed, Armijo or Lee-Seung step",
                options={"step": "lipschitz", "inner": "auto"})(ProjectedGradient)
