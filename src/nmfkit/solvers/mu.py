"""Multiplicative updates (Lee & Seung 2000) for the Frobenius, KL and β-divergence losses.

Frobenius, H half-step (tall form, R = Xᵀ W, G = WᵀW):
    Ht ← max(δ, Ht ∘ R / (Ht G))
KL, H half-step (Q = X / (W Htᵀ), only at the nonzeros for sparse X):
    Ht ← max(δ, Ht ∘ (Qᵀ W) / 1ᵀW)
and the same with the roles of W and Ht swapped.  Each is the exact minimiser
of a separable auxiliary function G(h|hᵏ) ≥ F(h) with G(hᵏ|hᵏ) = F(hᵏ)
(Lee & Seung 2001, Theorem 1), clamped at the floor δ = floor_of(dtype); since the
auxiliary function is separable and convex, the clamped point still minimises
it over {h ≥ δ}, so the objective never increases.  The floor also prevents
division by zero and zero-locking.  A zero denominator only occurs when the
component has no effect on the loss; the entry then goes to the floor.

General β-divergence (loss="is" is β = 0, or beta=<float>), Févotte & Idier,
Neural Comput. 23(9) 2011, with Λ = W Htᵀ:
    Ht ← max(δ, Ht ∘ [((X∘Λ^{β−2})ᵀ W) / ((Λ^{β−1})ᵀ W)]^γ(β)),
    γ(β) = 1/(2−β) for β < 1,  1 for 1 ≤ β ≤ 2,  1/(β−1) for β > 2,
the exponent that makes the update the minimiser of a separable auxiliary
function for every β, hence non-increasing (plain MU, γ = 1, is only proven for
β ∈ [1, 2]).  β ≤ 0 needs X > 0 wherever the loss counts.  Masked data (missing
entries) uses the same update with the products restricted to observed entries
(engine.beta_products): β = 2 gives W ← W ∘ (M∘X)Ht / ((M∘Λ)Ht), β = 1 the
masked KL update.

Cost per iteration: Frobenius 2 passes over X + O((m+n)k²); KL 4 passes; β and
masked data 3 products of m·n·k plus O(m·n) powers (sparse data is processed in
row blocks with dense Λ blocks: the zeros of X count for β ∉ {1, 2}).
"""
from __future__ import annotations

from ..engines import array_ops
from ..engines.base import frobenius_from_products
from ..registry import register_solver
from .base import IterateCache, Solver, floor_of, kl_h_products


def mu_frobenius_half(F, R, G, floor, l1=0.0, l2=0.0):
    """One Frobenius MU half-step on the tall factor F (not in place).

    With penalties the denominator gains λ₁ + λ₂F (scikit-learn's form)."""
    ops = array_ops(F)
    den = F @ G
    if l1:
        den += l1
    if l2:
        den += l2 * F
    ops.clamp_min_(den, ops.tiny(F))
    out = F * R
    out /= den
    ops.clamp_min_(out, floor)
    return out


def mu_kl_half(F, QtF_other, other_colsum, floor, l1=0.0, l2=0.0):
    """One KL MU half-step: F ∘ (Qᵀ·other) / (colsum(other) + λ₁ + λ₂F)."""
    den = other_colsum + l1
    if l2:
        den = den + l2 * F
    ops = array_ops(F)
    den = ops.clamp_min(den, ops.tiny(F))
    out = F * QtF_other
    out /= den
    ops.clamp_min_(out, floor)
    return out


def beta_exponent(beta: float) -> float:
    """Févotte–Idier exponent γ(β) that makes β-MU non-increasing."""
    if beta < 1:
        return 1.0 / (2.0 - beta)
    if beta > 2:
        return 1.0 / (beta - 1.0)
    return 1.0


def mu_beta_half(F, num, den, gamma, floor, l1=0.0, l2=0.0):
    """One β-MU half-step: F ∘ (num / (den + λ₁ + λ₂F))^γ, floored (not in place)."""
    ops = array_ops(F)
    den = den + l1 if l1 else ops.copy(den)
    if l2:
        den += l2 * F
    ops.clamp_min_(den, ops.tiny(F))
    ratio = num / den
    if gamma != 1.0:
        ratio **= gamma
    out = F * ratio
    ops.clamp_min_(out, floor)
    return out


@register_solver("mu", losses=("frobenius", "kl", "is", "beta"), max_iter=1000,
                 summary="Lee-Seung multiplicative updates, any β (monotone, simple, slow)")
class MultiplicativeUpdates(Solver):
    requires = frozenset({"core", "kl", "beta"})   # missing entries through beta_products

    def __init__(self, engine, loss, beta, **options):
        super().__init__(engine, loss, beta, **options)
        self.floor = floor_of(engine.dtype)
        self._next = IterateCache()   # KL/β: products at the last returned iterate
        self.gamma = beta_exponent(beta)
        # Masked data and β ∉ {1, 2} share one path: (numerator, denominator) products.
        self._general = "mask" in engine.capabilities or loss not in ("frobenius", "kl")
        if loss == "kl" and not self._general:
            self.objective_every = 10   # the KL objective (a log per entry) would double the iteration's cost
        if beta <= 0:
            check_positive_data(engine, loss, beta)

    def prepare(self, W, Ht):
        ops = self.engine.ops
        return ops.clamp_min(W, self.floor), ops.clamp_min(Ht, self.floor)

    def step(self, W, Ht):
        if self._general:
            return self._step_beta(W, Ht)
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
        e, p = self.engine, self.penalty
        QtW, W_sum = kl_h_products(e, self._next, W, Ht)
        Ht = mu_kl_half(Ht, QtW, W_sum, self.floor, *p.terms("H"))
        l1, l2 = p.terms("W")
        nxt = e.kl_w_step(W, Ht, Ht.sum(axis=0) + l1, l2, self.floor,
                          need=("QtW", "loss") if self.want_objective else ("QtW",))
        W = nxt["W"]
        self._next.put(W, Ht, (nxt["QtW"], nxt["W_sum"]))
        return W, Ht, nxt["loss"] + p.value(W, Ht) if "loss" in nxt else None

    def _step_beta(self, W, Ht):
        e, p, b = self.engine, self.penalty, self.beta
        prod = self._next.get(W, Ht) or e.beta_products(W, Ht, b, need=("XW",))
        num_H, den_H = prod["num_H"], prod["den_H"]
        Ht = mu_beta_half(Ht, num_H, den_H, self.gamma, self.floor, *p.terms("H"))
        prod = e.beta_products(W, Ht, b, need=("XH",))
        W = mu_beta_half(W, prod["num_W"], prod["den_W"], self.gamma, self.floor, *p.terms("W"))
        nxt = e.beta_products(W, Ht, b, need=("XW",))
        self._next.put(W, Ht, nxt)
        self.cache = {}
        return W, Ht, nxt["loss"] + p.value(W, Ht)


def check_positive_data(engine, loss, beta):
    """β ≤ 0 (Itakura–Saito and beyond) is infinite at a zero entry: refuse it clearly."""
    counted = engine.n_observed
    if engine.nnz < counted:
        what = "loss='is'" if loss == "is" else f"beta={beta:g}"
        raise ValueError(f"{what} needs strictly positive data, but X has {counted - engine.nnz} zero "
                         "entries (observed ones, with a mask); add a small offset, mark them missing, "
                         "or use beta > 0")
