"""ARD-NMF: automatic relevance determination of the rank (Tan & Févotte, IEEE TPAMI 35(7) 2013).

Model: X ≈ W H with a β-divergence data term and, for each component k, a relevance λ_k that is the
scale of the priors on its column w_k of W and its row h_k of H (exponential priors for prior="L1",
half-normal for prior="L2") and has an inverse-gamma prior IG(a, b).  The MAP objective is

    C(W, H, λ) = D_β(X | W H) / φ + Σ_k [ (f(w_k) + f(h_k) + b) / λ_k + c log λ_k ]

    L1:  f(x) = ‖x‖₁,       c = m + n + a + 1
    L2:  f(x) = ½‖x‖²₂,     c = (m + n)/2 + a + 1

(X is m×n, φ the dispersion: 1 for KL and IS, the noise variance for β = 2).  Minimising over λ gives
λ_k = (f(w_k) + f(h_k) + b)/c, so the objective reported (history, `loss`) is C at that λ:

    C(W, H) = D_β(X | W H)/φ + c Σ_k log((f(w_k) + f(h_k) + b)/c) + K c.

A component that does not help the fit is driven towards zero and its relevance to the bound b/c:
the rank selects itself from an upper guess K.  Updates (Λ = W H, tall Ht = Hᵀ, products from
`engine.beta_products`):

    Ht ← Ht ∘ [ (X∘Λ^{β−2})ᵀ W / ((Λ^{β−1})ᵀ W + φ P_H / λ) ]^ξ,   P_H = 1 (L1) or Ht (L2)
    W  ← W  ∘ [ (X∘Λ^{β−2}) Ht / (Λ^{β−1} Ht + φ P_W / λ) ]^ξ
    λ_k ← (f(w_k) + f(h_k) + b) / c

with ξ = γ(β) of Févotte & Idier (1/(2−β) for β < 1, 1 for 1 ≤ β ≤ 2, 1/(β−1) for β > 2) under the
L1 prior, and ξ = 1/(3−β) for β ≤ 2, 1/(β−1) for β > 2 under the L2 prior.  Guarantee: each factor
update minimises an auxiliary function of C (the β-divergence's convex–concave majorizer; the
penalty's power is merged into the larger of the divergence's powers by the weighted AM–GM bound
x^p ≤ (p/q) x^q + 1 − p/q, which is where these exponents come from), and the λ update is the exact
minimiser, so C(W, H) is non-increasing (the majorize–minimize argument of Tan & Févotte 2013).  Entries are kept at or
above floor_of(dtype) (the auxiliary functions are separable, so the clamped point still minimises
them).

Pruning: a component whose f(w_k) + f(h_k) has fallen below `prune_tol`·b is set exactly to zero
(and stays zero: a zero entry of a multiplicative update remains zero) when that does not raise C,
checked on the objective itself (one more pass over X, only when there is a candidate).  The
effective rank is the number of components left (`effective_rank`; zero columns of W and rows of H
in the result).

Options: prior ("L1" or "L2"), a ("auto": log(m + n), the authors' suggested start; smaller prunes
more), b ("auto": the method-of-moments value from the mean of X, sqrt((a−1)(a−2) mean(X)/K) for L1
and (π/2)(a−1) mean(X)/K for L2), phi (1.0), prune_tol (1e-10).
Cost per iteration: three β products (m·n·k each for dense data) and O(m·n) powers, as β-MU.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..registry import register_solver
from ..validation import choose
from .base import IterateCache, Solver, floor_of
from .mu import beta_exponent, check_positive_data


def ard_exponent(beta: float, prior: str) -> float:
    """ξ(β): γ(β) of Févotte & Idier for the L1 prior; 1/(3−β) (β ≤ 2) or 1/(β−1) (β > 2) for L2."""
    if prior == "L1":
        return beta_exponent(beta)
    return 1.0 / (3.0 - beta) if beta <= 2 else 1.0 / (beta - 1.0)


def _positive(value, name, above=0.0) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value <= above:
        raise ValueError(f"{name} must be a finite number > {above:g}; got {value!r}")
    return float(value)


class ARD(Solver):
    """ARD-NMF by multiplicative updates; see the module docstring."""
    requires = frozenset({"core", "complete", "beta", "numpy_factors"})

    def __init__(self, engine, loss, beta, *, prior="L1", a="auto", b="auto", phi=1.0, prune_tol=1e-10,
                 **options):
        for name in ("alpha_W", "alpha_H", "l1_ratio"):
            if name in options and options[name] not in (0, 0.0, "same"):
                raise ValueError(f"ard sets its own penalties (the relevance priors); {name} is not used")
        super().__init__(engine, loss, beta, **options)
        self.prior = choose(prior, ("L1", "L2"), "prior")
        m, n = engine.shape
        self.a = math.log(m + n) if isinstance(a, str) and a == "auto" else _positive(a, "a")
        least = 2.0 if self.prior == "L1" else 1.0     # the moment formula for b needs a above this
        if isinstance(b, str) and b == "auto":
            if self.a <= least:
                raise ValueError(f"b='auto' needs a > {least:g} with prior={self.prior!r} (got a={self.a:g}); "
                                 "give b as a number")
            self.b = None                                # set in prepare (depends on the rank)
        else:
            self.b = _positive(b, "b")
        self.phi = _positive(phi, "phi")
        self.prune_tol = _positive(prune_tol, "prune_tol") if prune_tol else 0.0
        self.c = (m + n + self.a + 1) if self.prior == "L1" else (0.5 * (m + n) + self.a + 1)
        self.xi = ard_exponent(beta, self.prior)
        self.floor = floor_of(engine.dtype)
        self._next = IterateCache()
        self.pruned = None
        self.relevance = None
        if beta <= 0:
            check_positive_data(engine, loss, beta)

    # -- the objective -------------------------------------------------------------------------------
    def _f(self, F):
        """f of each column of a tall factor (float64)."""
        F64 = np.asarray(F, dtype=np.float64)
        return F64.sum(axis=0) if self.prior == "L1" else 0.5 * (F64 * F64).sum(axis=0)

    def _relevance(self, W, Ht):
        return (self._f(W) + self._f(Ht) + self.b) / self.c

    def _prior_term(self, W, Ht) -> float:
        lam = self._relevance(W, Ht)
        return float(self.c * np.log(lam).sum() + self.c * len(lam))

    def objective(self, W, Ht) -> float:
        return self.engine.loss(W, Ht, self.loss, self.beta) / self.phi + self._prior_term(W, Ht)

    @property
    def penalised(self) -> bool:
        return True

    @property
    def effective_rank(self) -> int:
        return 0 if self.pruned is None else int((~self.pruned).sum())

    # -- set-up and one iteration -------------------------------------------------------------------
    def result_options(self) -> dict:
        """The rank ARD kept (components not pruned) and each component's relevance λ_k."""
        if self.relevance is None:
            return {}
        return {"effective_rank": self.effective_rank, "relevance": [float(v) for v in self.relevance]}

    def prepare(self, W, Ht):
        k = W.shape[1]
        if self.b is None:
            mean = max(self.engine.mean(), np.finfo(np.float64).tiny)
            self.b = (math.sqrt((self.a - 1) * (self.a - 2) * mean / k) if self.prior == "L1"
                      else 0.5 * math.pi * (self.a - 1) * mean / k)
        W = np.ascontiguousarray(W).copy()
        Ht = np.ascontiguousarray(Ht).copy()
        # zero components of a start (or of a resumed run) stay pruned; the rest at or above the floor
        self.pruned = ~(W.any(axis=0) & Ht.any(axis=0))
        for F in (W, Ht):
            live = F[:, ~self.pruned]
            np.maximum(live, self.floor, out=live)
            F[:, ~self.pruned] = live
            F[:, self.pruned] = 0
        self.relevance = self._relevance(W, Ht)
        self._next = IterateCache()
        return W, Ht

    def _update(self, F, num, den):
        """F ∘ (num / (den + φ P / λ))^ξ, floored; pruned components stay zero (a new array)."""
        penalty = self.phi / self.relevance
        den = den + (penalty if self.prior == "L1" else penalty * F)
        tiny = np.finfo(F.dtype).tiny
        ratio = num / np.maximum(den, tiny)
        if self.xi != 1.0:
            ratio **= self.xi
        out = np.maximum(F * ratio, self.floor).astype(F.dtype, copy=False)
        out[:, self.pruned] = 0
        return out

    def step(self, W, Ht):
        e, b = self.engine, self.beta
        prod = self._next.get(W, Ht) or e.beta_products(W, Ht, b, need=("XW",))
        Ht = self._update(Ht, prod["num_H"], prod["den_H"])
        prod = e.beta_products(W, Ht, b, need=("XH",))
        W = self._update(W, prod["num_W"], prod["den_W"])
        self.relevance = self._relevance(W, Ht)
        nxt = e.beta_products(W, Ht, b, need=("XW",))
        obj = nxt["loss"] / self.phi + self._prior_term(W, Ht)
        W, Ht, obj, nxt = self._prune(W, Ht, obj, nxt)
        self._next.put(W, Ht, nxt)
        return W, Ht, obj

    def _prune(self, W, Ht, obj, products):
        """Zero the components whose prior mass fell below prune_tol·b, if C does not rise."""
        if not self.prune_tol:
            return W, Ht, obj, products
        mass = self._f(W) + self._f(Ht)
        candidates = (mass <= self.prune_tol * self.b) & ~self.pruned
        if not candidates.any() or candidates.sum() == (~self.pruned).sum():
            return W, Ht, obj, products          # never prune the last components
        W2, Ht2 = W.copy(), Ht.copy()
        W2[:, candidates] = 0
        Ht2[:, candidates] = 0
        trial = self.engine.beta_products(W2, Ht2, self.beta, need=("XW",))
        obj2 = trial["loss"] / self.phi + self._prior_term(W2, Ht2)
        if not obj2 <= obj:
            return W, Ht, obj, products
        self.pruned = self.pruned | candidates
        self.relevance = self._relevance(W2, Ht2)
        return W2, Ht2, obj2, trial


register_solver("ard", losses=("frobenius", "kl", "is", "beta"), max_iter=2000, penalties=False,
                default_init="random",
                summary="ARD-NMF: β-divergence MU with relevance priors that prune unneeded components "
                        "(rank selection, monotone MAP objective)",
                options={"prior": "L1", "a": "auto", "b": "auto", "phi": 1.0, "prune_tol": 1e-10})(ARD)
