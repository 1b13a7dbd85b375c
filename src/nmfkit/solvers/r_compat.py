"""R NMF 0.25-exact multiplicative updates: `lee` (Frobenius) and `brunet` (KL).

Both reproduce the package's C++ updates (src/euclidean.cpp, src/divergence.cpp)
and R wrappers (`nmf_update.lee`, `nmf_update.brunet`) iterate for iterate from
the same (W0, H0).  One iteration i = 1, 2, … (R's counter starts at 1), written
in the usual wide form, H (k×n) first and then W with the new H:

lee  (ε = 1e-9, Lee & Seung 2001):
    H ← max(H ∘ (WᵀX), ε) / ((WᵀW) H + ε)
    W ← max(W ∘ (X Hᵀ), ε) / (W (H Hᵀ) + ε)
    W ← W diag(1 / colSums(W))          (H is not compensated; the next H
                                          update absorbs the scale)
brunet  (Brunet et al. 2004; generalised KL):
    H ← H ∘ (Wᵀ (X / WH)) / colSums(W)ᵀ
    W ← W ∘ ((X / WH) Hᵀ) / rowSums(H)ᵀ     (WH with the new H)
    if i mod 10 == 0:  H ← max(H, eps), W ← max(W, eps),  eps = 2.22e-16
                       (.Machine$double.eps, also for float32 data)

There is no ε in brunet's divisions: an all-zero row or column of X drives a
row of W or a column of H to 0 and then 0/0 = NaN, which is what R returns.
This module refuses such data instead; `solver="mu", loss="kl"` handles it.

Objective reported: ½‖X − WH‖²_F for lee (at the rescaled W), the generalised
KL divergence Σ x log(x/wh) − x + wh for brunet.  The iterate returned is the
last one, as in R (`returns_last_iterate`, honoured by the driver), even where
lee's rescaling makes the reported objective rise.  That rescaling is outside
the Lee–Seung theorem: lee's objective can rise (often every other iteration
for a while), so lee is registered `monotone=False`; brunet's KL steps are
monotone and its floor moves entries by at most 2.2e-16, so it is `monotone=True`.

Initial factors: R's own `seed="random"` draws W, H ~ U(0, max X) from R's
random stream; nmfkit's "random" init is scaled differently and uses NumPy's
generator, so to reproduce R's numbers exactly pass `init=(W0, H0)` with R's
factors (`basis(seed)`, `coef(seed)`).  R's default stop (consensus stability,
checked every 10 iterations) is not reproduced: use `tol=0, max_iter=N` for
R's `.stop=N`.

Cost per iteration: lee 2 passes over X + O((m+n)k²); brunet 2 evaluations
of Q = X / WH (m·n·k dense, nnz·k sparse: only at the nonzeros), each followed
by one product with Q (the one at the new iterate is reused by the next step).
Reference: R package NMF 0.25 (Gaujoux & Seoighe 2010).
"""
from __future__ import annotations

import numpy as np

from ..engines.base import frobenius_from_products
from ..registry import register_solver
from .base import IterateCache, Solver, kl_h_products

LEE_EPS = 1e-9                    # nmf_update.lee's default `eps = 10^-9`
R_DOUBLE_EPS = 2.220446049250313e-16   # .Machine$double.eps
BRUNET_FLOOR_EVERY = 10           # nmf_update.brunet: `if (i %% 10 == 0)`


def lee_half(F, R, G, eps=LEE_EPS):
    """One R-`lee` half-step on the tall factor F (not in place).

    max(F ∘ R, ε) / (F G + ε), with R = Xᵀ W, G = WᵀW for the H half-step
    (F = Ht) and R = X Ht, G = HtᵀHt for the W half-step (F = W)."""
    num = F * R
    np.maximum(num, eps, out=num)
    den = F @ G
    den += eps
    num /= den
    return num


def zero_lines(engine):
    """Indices of all-zero rows and columns of the (non-negative) data."""
    return np.flatnonzero(engine.X_row_sums() == 0), np.flatnonzero(engine.X_col_sums() == 0)


def refuse_zero_lines(engine, name, why, advice="Drop those rows/columns, or use solver='mu'."):
    """Refuse X with all-zero rows or columns for a solver that divides by their sums."""
    rows, cols = zero_lines(engine)
    if rows.size or cols.size:
        where = []
        if rows.size:
            where.append(f"{rows.size} all-zero row(s) (first: row {rows[0]})")
        if cols.size:
            where.append(f"{cols.size} all-zero column(s) (first: column {cols[0]})")
        raise ValueError(f"solver {name!r} {why}; X has {' and '.join(where)}. {advice}")


class _RCompat(Solver):
    """Shared plumbing: no penalties (R's methods have none)."""
    requires = frozenset({"core", "complete", "numpy_factors", "numpy_data"})   # NumPy code on engine.X
    checkpoint_attrs = ("iteration",)   # brunet floors on every 10th iteration

    returns_last_iterate = True   # R returns its last iterate, never a "best" one

    def __init__(self, engine, loss, beta, **options):
        super().__init__(engine, loss, beta, **options)
        if self.penalty.active:
            raise ValueError(f"solver {self.name!r} reproduces R NMF exactly and takes no penalties; "
                             "use solver='mu' for alpha_W/alpha_H")
        self.iteration = 0

    def prepare(self, W, Ht):
        # R starts from the seed as given; only the iteration counter resets.
        self.iteration = 0
        return W, Ht


@register_solver("lee", losses=("frobenius",), monotone=False, max_iter=2000, default_init="random",
                 summary="R NMF 0.25 'lee': Frobenius MU with eps=1e-9 and W columns summing to 1 (R-exact)",
                 penalties=False)
class RLee(_RCompat):
    """R NMF's `lee`.  Not monotone: rescaling W's columns without
    compensating H changes W H, so the reported objective may rise (mostly in
    the early iterations); the driver still returns the last iterate, as R does."""

    def step(self, W, Ht):
        e = self.engine
        XtW, WtW = e.XtW(W), W.T @ W
        Ht = lee_half(Ht, XtW, WtW)
        XHt, HtH = e.XHt(Ht), Ht.T @ Ht
        W = lee_half(W, XHt, HtH)
        W /= W.sum(axis=0)
        self.iteration += 1
        self.cache = {"XtW": XtW, "WtW": WtW, "XHt": XHt, "HtH": HtH}
        return W, Ht, frobenius_from_products(e.sqnorm, W, XHt, HtH)


@register_solver("brunet", losses=("kl",), monotone=True, max_iter=2000, default_init="random",
                 summary="R NMF 0.25 'brunet': KL MU, no eps, floor every 10th iteration (R-exact)", penalties=False)
class RBrunet(_RCompat):
    """R NMF's `brunet`.  Refuses data with all-zero rows or columns, on which
    R's update divides 0 by 0.  Monotone: the KL MU steps never increase the
    objective and the periodic floor moves entries by at most 2.2e-16."""

    requires = _RCompat.requires | {"kl"}
    objective_every = 10   # R evaluates no objective while iterating; the KL one costs a log per entry

    def __init__(self, engine, loss, beta, **options):
        super().__init__(engine, loss, beta, **options)
        refuse_zero_lines(engine, "brunet", "reproduces R NMF's brunet exactly, which has no epsilon and "
                          "returns NaN on data with all-zero rows or columns",
                          "Use solver='mu', loss='kl' (safe on zero rows/columns), or drop those rows/columns.")
        self._next = IterateCache()   # Qᵀ W at the last returned iterate

    def prepare(self, W, Ht):
        # A zero column of W (row of H) makes R divide by a zero sum: NaN.
        for F, what in ((W, "column of W0"), (Ht, "row of H0")):
            dead = np.flatnonzero(F.sum(axis=0) == 0)
            if dead.size:
                raise ValueError(f"solver 'brunet' needs a start without all-zero components; component "
                                 f"{dead[0]} is an all-zero {what} (R's brunet would return NaN). "
                                 "Use solver='mu', loss='kl' or a positive start.")
        return super().prepare(W, Ht)

    def step(self, W, Ht):
        e = self.engine
        QtW, W_sum = kl_h_products(e, self._next, W, Ht)
        Ht = Ht * QtW
        Ht /= W_sum
        self.iteration += 1
        floor = 0.0 if self.iteration % BRUNET_FLOOR_EVERY else R_DOUBLE_EPS
        # W ← W ∘ (Q Hᵀ) / rowSums(H), fused with the next step's Qᵀ W; R floors H after W's update
        Ht_next = np.maximum(Ht, floor) if floor else Ht
        nxt = e.kl_w_step(W, Ht, Ht.sum(axis=0), 0.0, floor,
                          need=("QtW", "loss") if self.want_objective else ("QtW",), Ht_next=Ht_next)
        W, Ht = nxt["W"], Ht_next
        self._next.put(W, Ht, (nxt["QtW"], nxt["W_sum"]))
        return W, Ht, nxt.get("loss")
