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
x_ij > 0 reaches 0; W, H ≥ 0 exactly (entries may be exactly 0: coordinate descent does not
zero-lock).  All-zero rows (columns) of X send their row of W (of Ht) to 0 in one step.  The
start is floored at floor_of(dtype) so that D is finite there.

Cost per iteration: (2 + 6·inner_steps)·k flops per entry and half-step (dense: m·n entries,
sparse: nnz), one division per entry and Newton step, no matrix product; the objective (a log
per entry) is evaluated only every `objective_every` = 10 iterations unless the driver asks.
Options: inner_steps (Newton steps per coordinate, default 1).  Penalties are not supported.
"""
from __future__ import annotations

from ..registry import register_solver
from ..validation import check_positive_int
from ._ccd_kernels import kl_cd_csr, kl_cd_dense
from .base import Solver, floor_of


def kl_cd_rows(engine, F, Other, inner_steps, floor, want_loss=False):
    """KL coordinate descent on every row of F against the rows of the engine's X (dense or CSR rows):
    returns (F', D_KL(X‖F' Otherᵀ) or None)."""
    layout, rows = engine.row_storage()
    kernel = kl_cd_dense if layout == "dense" else kl_cd_csr
    return kernel(*rows, F, Other, inner_steps, floor, want_loss)


@register_solver("ccd", losses=("kl",), max_iter=300, monotone=True,
                 default_init="nndsvda",
                 summary="cyclic coordinate descent with Newton steps for KL (Hsieh-Dhillon; fast, monotone)",
                 options={"inner_steps": 1}, penalties=False)
class KLCoordinateDescent(Solver):
    requires = frozenset({"core", "complete", "kl", "rows"})
    objective_every = 10     # the KL objective costs a log per entry: more than a half-step for small k

    def __init__(self, engine, loss, beta, *, inner_steps=1, **options):
        super().__init__(engine, loss, beta, **options)
        if self.penalty.active:
            raise ValueError("solver 'ccd' does not support the alpha_W/alpha_H penalties; "
                             "use solver='mu' for a penalised KL fit")
        self.inner_steps = check_positive_int(inner_steps, "inner_steps")
        self.floor = 0.0     # exact zeros are fine: the steps never make D infinite
        self._transposed = None

    def prepare(self, W, Ht):
        # A zero start entry can leave λ_ij = 0 at some x_ij > 0 (D = ∞, division by 0): floor it.
        start = floor_of(self.engine.dtype)
        ops = self.engine.ops
        if self._transposed is None:
            self._transposed = self.engine.transpose()   # Xᵀ: the H half-step's rows
        return ops.clamp_min(W, start), ops.clamp_min(Ht, start)

    def step(self, W, Ht):
        if self._transposed is None:
            self._transposed = self.engine.transpose()
        Ht, _ = kl_cd_rows(self._transposed, Ht, W, self.inner_steps, self.floor)
        W, loss = kl_cd_rows(self.engine, W, Ht, self.inner_steps, self.floor, want_loss=self.want_objective)
        return W, Ht, loss
