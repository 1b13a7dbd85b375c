"""Cyclic coordinate descent with Newton steps for the KL loss (Hsieh & Dhillon, KDD 2011).

    min_{W, H ≥ 0}  D(X‖W H) = Σ_ij x_ij log(x_ij/λ_ij) − x_ij + λ_ij,   λ = W Htᵀ

W half-step: each row i of X is an independent problem in W[i, :]; with λ_i = W[i, :] Htᵀ kept up
to date, each coordinate a = 1..k takes up to `inner_steps` safeguarded Newton steps on

    f(w) = Σ_j λ_ij(w) − x_ij log λ_ij(w):   g = Σ_j Ht_ja (1 − x_ij/λ_ij),   h = Σ_j Ht_ja² x_ij/λ_ij²,

and λ_i += Ht[:, a] Δw.  The H half-step is the same on Xᵀ with W in Ht's place.  This is the
paper's "CCD" for KL without its variable selection.  The linear term Σ_j Ht_ja is a column sum,
so sparse rows only visit their stored entries.

Monotone: every coordinate step minimises a function lying above the 1-D objective (the
argument is in solvers/_ccd_kernels.py: f'' decreases in w, so the Newton quadratic bounds f
from above to the right; to the left the step is damped to t* = −g/(h + R g), R = max o_j/λ_j
over the row's nonzeros, which bounds f'' there).  Hence D never increases and no λ_ij with
x_ij > 0 reaches 0.  Without extrapolation W, H ≥ 0 exactly (entries may be exactly 0: coordinate
descent does not zero-lock) and all-zero rows (columns) of X send their row of W (of Ht) to 0 in one
step; with it (below), to the floor eps².  The
start is floored at floor_of(dtype) so that D is finite there.

Extrapolation (the default; extrapolate=False turns it off), the scheme with restarts of Ang &
Gillis (Neural Comput. 31(2) 2019, "Accelerating nonnegative matrix factorization algorithms using
extrapolation"):

    H_n = CD(start Ĥ_{n−1}, using Ŵ_{n−1});   Ĥ_n = max(floor, H_n + β_n (H_n − H_{n−1}))
    W_n = CD(start Ŵ_{n−1}, using Ĥ_n);       Ŵ_n = max(floor, W_n + β_n (W_n − W_{n−1}))
    e_n = D(X‖W_n Ĥ_nᵀ)     (from the W half-step's kernel: a log per entry, every iteration)
    e_n > best:  restart from the best pair with a plain step, β̄ ← β_n, β_{n+1} = β_n / η
    otherwise:   β_{n+1} = min(β̄, γ β_n),  β̄ ← min(1, γ̄ β̄)

with Ang & Gillis's β₀ = 0.5, η = 1.5, γ = 1.01, γ̄ = 1.005.  `step` returns the best pair seen, so
the objective the driver sees still never increases: a rejected extrapolation is undone, and the plain
step that follows starts from the best pair, which it cannot make worse.  Extrapolated points and the
steps are floored at floor_of(dtype) (eps²) instead of 0: an extrapolated zero could leave λ_ij = 0
at some x_ij > 0, where D is infinite; entries of W, H are then ≥ eps², not exactly 0.
It costs one objective per iteration (about +15 % per iteration on dense 1797×64 data, k = 16) and
saves far more iterations: from the benchmarks' random starts, on digits (k = 16) and on sparse
Poisson 2000×800 (k = 30), 5 instances each, it came within 1e-3 of its final objective in 88–128
and 47–65 iterations against 237–407 and 72–109 without, and within 1e-3 of the lower of the two
runs' final objectives on 3/5 and 5/5 instances against 2/5 and 1/5 (800 iterations).  Checkpoints
carry the extrapolation's state, so a resumed run continues exactly where it stopped.

Cost per iteration: (2 + 6·inner_steps)·k flops per entry and half-step (dense: m·n entries,
sparse: nnz), one division per entry and Newton step, no matrix product; the objective (a log
per entry) is evaluated only every `objective_every` = 10 iterations unless the driver asks (with
extrapolation: every iteration).  Options: inner_steps (Newton steps per coordinate, default 1),
extrapolate (default True).  Penalties are not supported.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..registry import register_solver
from ..validation import check_positive_int
from ._ccd_kernels import kl_cd_csr, kl_cd_dense
from .base import Solver, floor_of

EXTRAPOLATION = {"beta0": 0.5, "eta": 1.5, "gamma": 1.01, "gamma_bar": 1.005}


def kl_cd_rows(engine, F, Other, inner_steps, floor, want_loss=False):
    """KL coordinate descent on every row of F against the rows of the engine's X (dense or CSR rows):
    returns (F', D_KL(X‖F' Otherᵀ) or None)."""
    layout, rows = engine.row_storage()
    kernel = kl_cd_dense if layout == "dense" else kl_cd_csr
    return kernel(*rows, F, Other, inner_steps, floor, want_loss)


@register_solver("ccd", losses=("kl",), max_iter=300, monotone=True,
                 default_init="nndsvda",
                 summary="cyclic coordinate descent with Newton steps for KL (Hsieh-Dhillon; fast, monotone)",
                 options={"inner_steps": 1, "extrapolate": True}, penalties=False)
class KLCoordinateDescent(Solver):
    requires = frozenset({"core", "complete", "kl", "rows"})
    objective_every = 10     # the KL objective costs a log per entry: more than a half-step for small k

    def __init__(self, engine, loss, beta, *, inner_steps=1, extrapolate=True, **options):
        super().__init__(engine, loss, beta, **options)
        if self.penalty.active:
            raise ValueError("solver 'ccd' does not support the alpha_W/alpha_H penalties; "
                             "use solver='mu' for a penalised KL fit")
        self.inner_steps = check_positive_int(inner_steps, "inner_steps")
        self.floor = 0.0     # exact zeros are fine: the steps never make D infinite
        self._transposed = None
        if not isinstance(extrapolate, (bool, np.bool_)):
            raise TypeError(f"extrapolate must be True or False; got {extrapolate!r}")
        self.extrapolate = bool(extrapolate)
        if self.extrapolate:     # extrapolated points are floored (see `extrapolated`): so are the steps,
            self.floor = floor_of(engine.dtype)   # and entries resting there skip their Newton steps
        self._state = None
        self.restarts = 0         # rejected extrapolations so far

    def prepare(self, W, Ht):
        # A zero start entry can leave λ_ij = 0 at some x_ij > 0 (D = ∞, division by 0): floor it.
        start = floor_of(self.engine.dtype)
        ops = self.engine.ops
        if self._transposed is None:
            self._transposed = self.engine.transpose()   # Xᵀ: the H half-step's rows
        self._state = None
        return ops.clamp_min(W, start), ops.clamp_min(Ht, start)

    def _half_steps(self, W, Ht, want_loss):
        """One plain iteration from (W, Ht): the H half-step, then the W half-step (and its loss)."""
        Ht, _ = kl_cd_rows(self._rows_of_Xt(), Ht, W, self.inner_steps, self.floor)
        W, loss = kl_cd_rows(self.engine, W, Ht, self.inner_steps, self.floor, want_loss=want_loss)
        return W, Ht, loss

    def step(self, W, Ht):
        if not self.extrapolate:
            return self._half_steps(W, Ht, self.want_objective)
        st = self._state
        if st is not None and st.out is None:      # restored from a checkpoint: (W, Ht) is its best pair
            st.best, st.out = (W, Ht, st.best[2]), (W, Ht)
        if st is None or W is not st.out[0] or Ht is not st.out[1]:
            st = self._state = Extrapolation(W=W, Ht=Ht, We=W, He=Ht, best=(W, Ht, np.inf),
                                               beta=EXTRAPOLATION["beta0"])
        beta = 0.0 if st.first else st.beta
        # H half-step from Ĥ_{n-1} with Ŵ_{n-1}, then Ĥ_n; W half-step from Ŵ_{n-1} with Ĥ_n.
        H_new, _ = kl_cd_rows(self._rows_of_Xt(), st.He, st.We, self.inner_steps, self.floor)
        He = extrapolated(H_new, st.Ht, beta)
        W_new, obj = kl_cd_rows(self.engine, st.We, He, self.inner_steps, self.floor, want_loss=True)
        if obj <= st.best[2] or st.first:
            # Accept (a plain step from the best pair cannot be worse than it: monotone).
            st.best = (W_new, He, obj)
            st.We, st.He = extrapolated(W_new, st.W, beta), He
            st.W, st.Ht, st.first = W_new, H_new, False
            if beta > 0:
                st.beta = min(st.beta_bar, EXTRAPOLATION["gamma"] * st.beta)
                st.beta_bar = min(1.0, EXTRAPOLATION["gamma_bar"] * st.beta_bar)
        else:
            # Reject: back to the best pair, a plain step next, a smaller β from now on.
            self.restarts += 1
            st.beta_bar, st.beta = st.beta, st.beta / EXTRAPOLATION["eta"]
            st.We = st.W = st.best[0]
            st.He = st.Ht = st.best[1]
            st.first = True
        st.out = st.best[:2]
        return st.best

    # -- checkpoints: the extrapolation state travels with them, so a resumed run is the same run ---
    def get_state(self) -> dict:
        st = self._state
        if st is None or st.out[0] is None:
            return {}
        return {"x_W": st.W, "x_Ht": st.Ht, "x_We": st.We, "x_He": st.He, "x_objective": float(st.best[2]),
                "x_beta": float(st.beta), "x_beta_bar": float(st.beta_bar), "x_first": bool(st.first)}

    def set_state(self, state: dict) -> None:
        if self.extrapolate and "x_W" in state:
            self._state = Extrapolation(W=state["x_W"], Ht=state["x_Ht"], We=state["x_We"], He=state["x_He"],
                                        best=(None, None, state["x_objective"]), beta=state["x_beta"],
                                        beta_bar=state["x_beta_bar"], first=state["x_first"], out=None)

    def _rows_of_Xt(self):
        if self._transposed is None:
            self._transposed = self.engine.transpose()   # Xᵀ: the H half-step's rows
        return self._transposed


def extrapolated(F, F_prev, beta):
    """max(floor, F + β (F − F_prev)) in F's dtype (F itself when β = 0).  The floor (as at the start)
    keeps every λ_ij > 0: at λ_ij = 0 with x_ij > 0 the objective is infinite and the Newton steps undefined."""
    if beta <= 0:
        return F
    return np.maximum(F + beta * (F - F_prev), floor_of(F.dtype))


@dataclass
class Extrapolation:
    """State of the extrapolation between steps (the module docstring's names)."""
    W: object                  # W_{n-1}, the last accepted plain iterate
    Ht: object                 # H_{n-1}
    We: object                 # Ŵ_{n-1}: the start of the next W half-step and the data of the next H one
    He: object                 # Ĥ_{n-1}: the start of the next H half-step
    best: tuple                # (W, Ht, objective) of the best pair so far
    beta: float                # β_n
    beta_bar: float = 1.0
    first: bool = True         # the next step is a plain one (start or restart)
    out: tuple | None = (None, None)  # the pair `step` returned last (None: restored, not yet stepped)
