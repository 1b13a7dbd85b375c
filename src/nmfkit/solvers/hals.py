"""Accelerated HALS with extrapolation (Frobenius loss, dense and sparse data).

Half-step on a tall factor F with data R, G (R = Xᵀ W, G = WᵀW for Ht; R = X Ht,
G = HtᵀHt for W), penalties folded in exactly by `penalty.edit`:

    repeat ≤ 1 + α·ρ times:   F[:, j] ← max(0, F[:, j] + (R[:, j] − F G[:, j]) / G_jj),  j = 1..k
    a row stops early when a sweep moves it by less than δ times its first sweep
    (solvers/_hals_kernels.py: Numba kernel, rows in parallel, and its NumPy twin).

This is A-HALS (Gillis & Glineur, Neural Comput. 24(4) 2012): the expensive
products are made once per half-step and reused by several cheap sweeps.  With
K = nnz(X) (m·n for dense data), ρ_W = 1 + (K + n·k)/(m·(k+1)) and
ρ_H = 1 + (K + m·k)/(n·(k+1)) compare the cost of the products with that of a
sweep; α = 0.5, δ = 0.1 are the reference defaults.

On top, the extrapolation with restarts of Ang & Gillis (Neural Comput. 31(2)
2019, E-A-HALS):

    H_n = A-HALS(start Ĥ_{n−1}, using Ŵ_{n−1});   Ĥ_n = max(0, H_n + β_n (H_n − H_{n−1}))
    W_n = A-HALS(start Ŵ_{n−1}, using Ĥ_n);       Ŵ_n = max(0, W_n + β_n (W_n − W_{n−1}))
    e_n = f(W_n, Ĥ_n)        (free: trace identity on the W half-step's products)
    e_n > best:     restart from the best pair, β̄ ← β_n, β_{n+1} = β_n / η
    otherwise:      β_{n+1} = min(β̄, γ β_n),  β̄ ← min(1, γ̄ β̄)

with β₀ = 0.25, η = 1.5, γ = 1.01, γ̄ = 1.005, β̄₀ = 1 (the reference starts at
β₀ = 0.5; from random starts that first push can send a fit into a worse local
minimum, while β₀ = 0.25 reached the best objective on every benchmark problem).  Extrapolated points
are projected on the non-negative orthant, so every evaluated pair is
feasible.  Unlike the reference (which restarts from the plain iterates of
the failed step), a restart goes back to the best pair and takes one plain
A-HALS step from it, which cannot increase the objective.  `step` returns
(W_n, Ĥ_n) when it is the best pair seen and the best pair otherwise, so the
sequence the driver sees is non-increasing and stalls for one iteration at
most per restart.

Dead components: a column of W (or of Ht) that a half-step sets entirely to
zero is revived at sqrt(mean(X)/k), and the matching column of the other
factor — about to be recomputed — is zeroed, so the product W Htᵀ and the
objective are unchanged and G_jj > 0 at the next half-step.  Dead columns in
a generated start are revived in `prepare`.  Under an L1/L2 penalty a zero
component can be the penalised optimum, so only the start is revived; the
kernel never divides by G_jj = 0.

A given start (W0, H0) is used as given: its dead columns are left to the
kernel and the in-run revival, and the optimal rescaling of the start
(s = ⟨X, W Htᵀ⟩ / ‖W Htᵀ‖², applied to generated starts) is applied only when it
does not raise the penalised objective, so restarting from a previous result
never starts above it.

Options: inner_alpha (α, 0 = plain HALS, one sweep), inner_delta (δ),
extrapolate (True), and the per-factor penalties and constraints below.

Penalties and constraints per factor (nmfkit.penalties.FactorRule; RcppML 1.0's L21, angular,
graph, upper_bound and nonneg):

    nonneg_W / nonneg_H   False: that factor is unconstrained (nonneg_W=False is the semi-NMF of
                          Ding, Li & Jordan, IEEE TPAMI 32(1) 2010: W signed, H ≥ 0)
    upper_bound           u or (u_W, u_H): 0 ≤ F ≤ u (None: no bound)
    l21_W / l21_H         + λ Σ_j ‖F[:, j]‖₂: group sparsity, whole components driven to zero
    ortho_W / ortho_H     + λ Σ_{a<b} ⟨F[:, a], F[:, b]⟩: decorrelated components
    graph_W / graph_H     adjacency matrix A (square, symmetric, ≥ 0, dense or sparse), with
    graph_alpha           γ (one value or a pair): + (γ/2) tr(Fᵀ L F), L = D − A (Cai, He, Han & Huang,
                          IEEE TPAMI 33(8) 2011, GNMF: linked rows of F get similar loadings)

They run on NumPy and SciPy data (the dense, sparse and memmap engines), in a box-constrained twin of
the sweep kernel (`hals_box_sweeps`); without them the plain kernel runs, unchanged.

Why every half-step still does not increase the penalised objective.  Fix the other factor; the
half-step objective in F is ½ tr(F G Fᵀ) − ⟨F, R⟩ plus the penalties.  At the half-step's start F₀
each penalty is replaced by a function that equals it at F₀ and lies above it everywhere
(penalties.py gives each: ortho and L1/L2 are quadratic already, so exact; the graph term uses
L ⪯ 2D, L21 uses ‖f‖ ≤ (‖f‖² + ‖f₀‖²)/(2‖f₀‖)).  The result is a quadratic whose coordinate j of row i
has curvature G_jj (+ the L21 and graph diagonals) > 0, so the sweep's update — the unconstrained
coordinate minimiser clipped to [lower, upper] — is that coordinate's exact minimiser on the box,
and every sweep lowers the surrogate.  Then surrogate(F₁) ≤ surrogate(F₀) = objective(F₀) and
objective(F₁) ≤ surrogate(F₁): the half-step cannot raise the penalised objective.  The L21 zero test
after the sweeps only accepts a zero component when it lowers the surrogate with the exact norm,
which still lies above the objective.  Extrapolated points are projected on the box, and `step`
returns the best pair as above, so the objective `step` reports (data + every penalty) never
increases.  A penalty on one factor alone is scale-dependent (X ≈ (cW)(H/c)): pin the other factor's
scale (an upper bound, or an L2 penalty on it) or the fit shrinks the penalised factor instead.
Cost per iteration: the two products (2·K·k flops, or 2·m·n·k dense) plus
(m + n)·k² for the gradients and at most (m + n)·k² per sweep (entries resting
at zero are skipped).  The products are BLAS/SpMM and the sweeps scalar code,
so the sweeps often cost more than their flop count suggests: on Golub 5000×38 at k = 3 and digits
1797×64 at k = 16 the sweeps of the two half-steps take about half and two thirds of an iteration, the
two products about a quarter and a fifth.  For NumPy factors the extrapolation and the dead-column test
are single compiled passes (solvers/_hals_kernels.py, each with a NumPy twin that gives the same bits).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..engines import array_ops
from ..engines.base import frobenius_from_products
from ..penalties import FACTOR_OPTIONS, factor_rules
from ..registry import register_solver
from ..validation import check_nonneg_float
from ._hals_kernels import extrapolate, hals_box_sweeps, hals_sweeps, hals_sweeps_numpy, zero_columns
from .base import Solver

MAX_INNER_ALPHA = 1e6
EXTRAPOLATION = {"beta0": 0.25, "eta": 1.5, "gamma": 1.01, "gamma_bar": 1.005}


def inner_sweeps(engine, rank: int, alpha: float) -> tuple[int, int]:
    """Gillis–Glineur inner-iteration caps (for W, for Ht): ⌊1 + α·ρ⌋."""
    m, n = engine.shape
    K = engine.entries_per_pass
    rho_W = 1.0 + (K + n * rank) / (m * (rank + 1.0))
    rho_H = 1.0 + (K + m * rank) / (n * (rank + 1.0))
    return int(1 + alpha * rho_W), int(1 + alpha * rho_H)


def hals_update(F0, R, G, max_sweeps: int, delta: float, sweeps=None):
    """A-HALS half-step from F0 (not modified): returns a new C-contiguous F.

    `sweeps` defaults to the Numba kernel for NumPy arrays and to its whole-array
    twin for other array families (torch tensors)."""
    ops = array_ops(F0)
    F = ops.contiguous_copy(F0)
    if sweeps is None:
        sweeps = hals_sweeps if ops.compiled_kernels else hals_sweeps_numpy
    sweeps(F, R, G, max_sweeps, delta)
    return F


def dead_columns(F):
    """Indices of the all-zero columns of F (an index array of F's family; for NumPy arrays a compiled
    scan that stops once every column has shown a nonzero)."""
    return zero_columns(F) if isinstance(F, np.ndarray) else array_ops(F).zero_columns(F)


def revive(F, other, level):
    """Revive the all-zero columns of the fresh factor F (in place, at `level`) and
    zero them in a copy of `other`, so W Htᵀ is unchanged.  Returns (F, other, count).
    `level=None` disables revival (penalised fits: there a zero component can be
    the optimum, and reviving it would add to the penalty)."""
    if level is None:
        return F, other, 0
    dead = dead_columns(F)
    if len(dead):
        F[:, dead] = level
        other = array_ops(other).copy(other)
        other[:, dead] = 0
    return F, other, len(dead)


def revival_level(engine, rank) -> float:
    """sqrt(mean(X)/k): a revived pair of columns contributes ~ mean(X) to W Htᵀ."""
    return float(np.sqrt(max(engine.mean(), np.finfo(np.float64).tiny) / rank))


@dataclass
class Extrapolation:
    """E-A-HALS state between steps (the module docstring's names)."""
    W: object                 # W_{n-1}, the last accepted plain iterate
    Ht: object                # H_{n-1}
    We: object                # Ŵ_{n-1}, the extrapolated W the next H half-step uses
    He: object                # Ĥ_{n-1}, the start of the next H half-step
    beta: float = EXTRAPOLATION["beta0"]
    beta_bar: float = 1.0
    best: tuple | None = None  # (W, Ht, objective) of the best pair so far
    first: bool = True         # the next step is a plain A-HALS step (start or restart)
    W_out: object = None       # the pair `step` returned last
    Ht_out: object = None


class HALS(Solver):
    """E-A-HALS; see the module docstring."""
    requires = frozenset({"core", "complete"})

    def __init__(self, engine, loss, beta, *, inner_alpha=0.5, inner_delta=0.1, extrapolate=True,
                 **options):
        factor_options = {name: options.pop(name) for name in FACTOR_OPTIONS if name in options}
        super().__init__(engine, loss, beta, **options)
        self.rules = factor_rules(engine.shape, **factor_options)
        self.constrained = any(rule.active for rule in self.rules.values())
        self._check_rules()
        self.dropped = 0          # components the L21 penalty set to zero so far
        self.inner_alpha = check_nonneg_float(inner_alpha, "inner_alpha")
        if self.inner_alpha > MAX_INNER_ALPHA:    # ⌊1 + α·ρ⌋ sweeps must stay a 64-bit integer
            raise ValueError(f"inner_alpha must be at most {MAX_INNER_ALPHA:g}; got {inner_alpha!r}")
        self.inner_delta = check_nonneg_float(inner_delta, "inner_delta")
        if not isinstance(extrapolate, (bool, np.bool_)):
            raise TypeError(f"extrapolate must be True or False; got {extrapolate!r}")
        self.extrapolate = bool(extrapolate)
        self.revive_level = None  # set in prepare
        self._state = None
        self.revived = 0          # components revived so far
        self.restarts = 0         # extrapolation restarts so far

    def _check_rules(self):
        if not self.constrained:
            return
        if "numpy_factors" not in self.engine.capabilities:
            names = ", ".join(FACTOR_OPTIONS)
            raise ValueError(f"hals runs the options {names} on NumPy/SciPy data only (its factors must be "
                             "NumPy arrays); convert X first")
        for which, rule in self.rules.items():
            if not rule.nonneg and self.penalty.terms(which)[0]:
                raise ValueError(f"an L1 penalty (l1_ratio > 0) needs nonneg_{which}=True: on a signed factor "
                                 "it is not the sum of its entries; use l1_ratio=0 (ridge) there")

    @property
    def penalised(self) -> bool:
        return self.penalty.active or any(rule.penalised for rule in self.rules.values())

    def _feasible(self, F, which):
        """F projected on the factor's feasible set (a new array): [0, ∞) unless options say otherwise."""
        if not self.constrained:
            return self.engine.ops.clamp_min(F, 0)
        rule = self.rules[which]
        return rule.project(F) if rule.nonneg or rule.upper < np.inf else F

    def _extrapolated(self, F, F_prev, beta, which):
        """F + β (F − F_prev) projected on the factor's feasible set (a new array); one compiled pass for
        NumPy factors without options."""
        if not self.constrained and isinstance(F, np.ndarray):
            return extrapolate(F, F_prev, beta)
        return self._feasible(F + beta * (F - F_prev), which)

    def _half_step(self, F0, R, G, which, sweeps):
        """One A-HALS half-step on the factor `which` from F0 with data (R, G), every penalty folded in."""
        Rp, Gp = self.penalty.edit(R, G, which)
        if not self.constrained:
            return hals_update(F0, Rp, Gp, sweeps, self.inner_delta)
        rule = self.rules[which]
        Rq, Gq, row_diag, frozen = rule.edit(Rp, Gp, F0)
        F = np.array(F0, order="C", copy=True)
        hals_box_sweeps(F, Rq, Gq, sweeps, self.inner_delta, rule.lower, rule.upper, row_diag)
        if rule.l21:      # compare with the majorized objective without L21's ridge, with its exact norm
            Rl, Gl, _, _ = replace(rule, l21=0.0).edit(Rp, Gp, F0)
            self.dropped += rule.drop_components(F, Rl, Gl, row_diag)
        return F

    def constraint_value(self, W, Ht) -> float:
        """The per-factor penalties (l21, ortho, graph) at (W, Ht)."""
        if not self.constrained:
            return 0.0
        return self.rules["W"].value(W) + self.rules["H"].value(Ht)

    def objective(self, W, Ht) -> float:
        return super().objective(W, Ht) + self.constraint_value(W, Ht)

    # -- set-up -------------------------------------------------------------
    def prepare(self, W, Ht):
        ops = self.engine.ops
        W, Ht = ops.contiguous_copy(W), ops.contiguous_copy(Ht)
        if self.constrained:           # the start in the feasible set (a bound may cut it)
            W, Ht = self._feasible(W, "W"), self._feasible(Ht, "H")
        k = W.shape[1]
        self.sweeps_W, self.sweeps_H = inner_sweeps(self.engine, k, self.inner_alpha)
        level = revival_level(self.engine, k)
        given = self.given_start
        for F in (W, Ht) if not given else ():   # dead columns of a generated start are revived
            dead = dead_columns(F)
            F[:, dead] = level
            self.revived += len(dead)
        # During the run only without penalties: with L1/L2 a zero component can be
        # the penalised optimum, and reviving it would raise the objective.
        self.revive_level = None if self.penalised else level
        # Optimal scaling of the start (HALS codes rescale the initial point):
        # s = ⟨X, W Htᵀ⟩ / ‖W Htᵀ‖², one extra pass over X.
        num = ops.vdot(ops.to64(W), ops.to64(self.engine.XHt(Ht)))
        den = ops.vdot(ops.to64(W.T @ W), ops.to64(Ht.T @ Ht))
        if num > 0 and den > 0 and np.isfinite(num / den):
            root = float(np.sqrt(num / den).astype(self.engine.dtype))   # rounded as W's dtype
            if self.constrained:       # scaled only if it stays feasible and does not raise the objective
                if self._scaling_keeps_bounds(W, Ht, root) and self._scaling_helps(W, Ht, root, num, den):
                    W *= root
                    Ht *= root
            elif not given or self._scaling_helps(W, Ht, root, num, den):
                W *= root
                Ht *= root
        self._state = None
        return W, Ht

    def _scaling_helps(self, W, Ht, root, num, den) -> bool:
        """Whether scaling (W, Ht) by `root` does not raise the penalised objective (num = ⟨W, X Ht⟩,
        den = ⟨WᵀW, HtᵀHt⟩).  Without penalties it never does; with them it can."""
        s, sq, p = root * root, self.engine.sqnorm, self.penalty
        before = 0.5 * (sq - 2.0 * num + den) + p.value(W, Ht)
        after = 0.5 * (sq - 2.0 * s * num + s * s * den) + p.value(W * root, Ht * root)
        if self.constrained:
            before += self.constraint_value(W, Ht)
            after += self.constraint_value(W * root, Ht * root)
        return after <= before

    def _scaling_keeps_bounds(self, W, Ht, root) -> bool:
        return all(root * float(np.abs(F).max(initial=0)) <= self.rules[which].upper
                   for F, which in ((W, "W"), (Ht, "H")))

    def _revive(self, F, other, which):
        level = self.revive_level
        if level is not None and self.constrained:
            level = min(level, self.rules[which].upper)
        F, other, count = revive(F, other, level)
        self.revived += count
        return F, other

    # -- one iteration --------------------------------------------------------
    def step(self, W, Ht):
        st = self._state
        if st is None or W is not st.W_out or Ht is not st.Ht_out:
            # Fresh start (or the caller moved us): no extrapolation yet.
            st = self._state = Extrapolation(W=W, Ht=Ht, We=W, He=Ht)
        e, p = self.engine, self.penalty

        # H half-step from Ĥ_{n-1} with Ŵ_{n-1}.
        We = st.We
        RH, GH = e.XtW(We), We.T @ We
        H_new = self._half_step(st.He, RH, GH, "H", self.sweeps_H)
        H_new, We = self._revive(H_new, We, "H")
        beta = st.beta if (self.extrapolate and not st.first) else 0.0
        He = self._extrapolated(H_new, st.Ht, beta, "H") if beta > 0 else H_new

        # W half-step from Ŵ_{n-1} with Ĥ_n; its products give the objective for free.
        R, G = e.XHt(He), He.T @ He
        W_new = self._half_step(We, R, G, "W", self.sweeps_W)
        data = frobenius_from_products(e.sqnorm, W_new, R, G)   # revival leaves W Htᵀ unchanged
        W_new, He = self._revive(W_new, He, "W")
        obj = data + p.value(W_new, He) + self.constraint_value(W_new, He)
        if He is not H_new and not beta > 0:
            H_new = He                      # a revival zeroed columns of the un-extrapolated H

        best = st.best
        if best is None or obj <= best[2]:
            # Accept: extrapolate W with the same β, let β grow towards β̄.
            best = st.best = (W_new, He, obj)
            st.We = self._extrapolated(W_new, st.W, beta, "W") if beta > 0 else W_new
            st.He = He
            st.W, st.Ht, st.first = W_new, H_new, False
            if beta > 0:
                st.beta = min(st.beta_bar, EXTRAPOLATION["gamma"] * st.beta)
                st.beta_bar = min(1.0, EXTRAPOLATION["gamma_bar"] * st.beta_bar)
            self.cache = {"XHt": R, "HtH": G}
            if We is W:                     # the H half-step used the returned W itself
                self.cache.update(XtW=RH, WtW=GH)
        else:
            # Restart from the best pair with a smaller β.  The next step is a plain
            # A-HALS step from it, which cannot increase the objective, so a restart
            # costs the driver at most one flat iteration.
            self.restarts += 1
            st.beta_bar = st.beta
            st.beta = st.beta / EXTRAPOLATION["eta"]
            st.We = st.W = best[0]
            st.He = st.Ht = best[1]
            st.first = True
            self.cache = {}
        st.W_out, st.Ht_out = best[0], best[1]
        return best


register_solver("hals", losses=("frobenius",), max_iter=1000, monotone=True, default_init="nndsvda",
                summary="accelerated HALS / coordinate descent with extrapolation (fast, monotone)",
                options={"inner_alpha": 0.5, "inner_delta": 0.1, "extrapolate": True})(HALS)
