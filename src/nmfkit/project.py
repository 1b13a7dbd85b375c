"""Projecting new data on a fixed basis: H_new = argmin_{H ≥ 0} D(X_new ‖ W H).

    H_new = nmfkit.project(W, X_new)            # W m×k fixed, X_new m×n → H_new k×n

Frobenius loss (½‖X_new − W H‖²_F + penalties): with G = WᵀW (k×k) and
R = X_newᵀ W (n×k) every column of H is an independent NNLS problem
min_h ½ hᵀG h − rᵀh, h ≥ 0, with the same G.  All columns are solved at once,
exactly, by block principal pivoting (Kim & Park, SIAM J. Sci. Comput. 33(6),
2011; `nmfkit.solvers.anls.nnls_bpp`), so the answer does not depend on a
tolerance or on which other columns are solved with it.  Penalties in
scikit-learn's meaning enter as R ← R − λ₁, G ← G + λ₂I with
λ₁ = alpha_H·l1_ratio·m, λ₂ = alpha_H·(1 − l1_ratio)·m.
Cost: one product with X_new (2·nnz·k or 2·m·n·k), k²m for G, and O(k³) per
distinct active set plus O(n k²) per pivoting round.

KL loss (generalised Kullback–Leibler): Lee & Seung's multiplicative update on H
with W fixed, H ← H ∘ (Wᵀ(X_new / WH)) / (Wᵀ1 + λ₁ + λ₂H), which never
increases the divergence; other β-divergences ("is", beta=…) use the β-MU
update of `nmfkit.solvers.mu` (exponent γ(β) keeps it monotone).  It starts from the uniform H whose fitted column
sums equal X_new's (a property every KL stationary point has) and stops each
column on its own when its relative L1 change falls below `tol` (a converged
column is frozen), so a column's result does not depend on the others either.
Cost per iteration: one KL ratio product (nnz·k sparse, m·n·k dense), plus one evaluation of the
divergence at the start and at the end.  The updates run through the driver of every fit
(`nmfkit.driver`), so an interrupted projection returns the coefficients reached so far.
"""
from __future__ import annotations

import numpy as np

from .driver import run
from .engines import is_sparse, is_torch, make_engine
from .penalties import Penalty
from .registry import resolve_loss
from .solvers._anls_kernels import nnls_bpp
from .solvers.base import Solver, floor_of
from .solvers.mu import beta_exponent, check_positive_data, mu_beta_half
from .validation import check_matrix, check_nonneg_float, check_positive_int


def _basis(W, dtype):
    W = check_matrix(W, "W", allow_zero=True)
    W = W.toarray() if is_sparse(W) else W
    return np.ascontiguousarray(W, dtype=dtype)


def project(W, X_new, *, loss="frobenius", beta=None, tol=1e-6, max_iter=1000, alpha_H=0.0,
            l1_ratio=0.0) -> np.ndarray:
    """Coefficients H_new ≥ 0 (k×n) that best reconstruct X_new (m×n) as W H_new with W (m×k) fixed.

    Parameters
    ----------
    W : basis, m×k, non-negative (a Factorization's W); a component whose column is all zero
        gets coefficients 0.
    X_new : m×n non-negative NumPy array or SciPy sparse matrix (never densified);
        its rows are the same features as W's rows.  A dask array is read block by
        block; a torch tensor (dense or sparse) is copied to the CPU and projected
        there, and the result is a NumPy array.
    loss, beta : "frobenius" (exact, by block principal pivoting), or "kl", "is", or
        a β-divergence via beta=… (multiplicative updates), as in `nmfkit.fit`.
    tol, max_iter : per-column stopping rule of the multiplicative updates (the
        Frobenius solve is exact and ignores them).
    alpha_H, l1_ratio : L1/L2 penalty on H_new, as in `nmfkit.fit`.

    Returns
    -------
    H_new : k×n array with X_new's floating dtype (float32 stays float32).
    """
    loss, beta = resolve_loss(loss, beta)
    if beta is None:       # a likelihood loss of solver irls (nb, gamma, …): no fixed-basis solve here
        raise ValueError(f"nmfkit.project supports the β-divergences (frobenius, kl, is, beta=…), not loss {loss!r}; "
                         f"fit the new columns with nmfkit.fit(X_new, k, loss={loss!r}, solver='irls')")
    tol = check_nonneg_float(tol, "tol")
    max_iter = check_positive_int(max_iter, "max_iter")
    X_new = check_matrix(X_new, "X_new", allow_zero=True)
    if is_torch(X_new):
        from .engines.torch_engine import to_host
        X_new = to_host(X_new)
    engine = make_engine(X_new)
    W = _basis(W, engine.dtype)
    m, n = engine.shape
    if W.shape[0] != m:
        raise ValueError(f"W has {W.shape[0]} rows but X_new has {m}; X_new must have the same features "
                         f"(rows) as the data W was fitted on, one column per new sample")
    penalty = Penalty.from_options((m, n), 0.0, alpha_H, l1_ratio)
    if loss != "frobenius" and beta <= 0:
        check_positive_data(engine, loss, beta)
    return np.ascontiguousarray(solve_coefficients(engine, W, loss, beta, penalty, tol, max_iter).T)


def solve_coefficients(engine, W, loss, beta, penalty, tol, max_iter, start=None):
    """Ht (n×k) minimising the loss for the engine's X with the basis W fixed; `start` (n×k)
    is where the multiplicative updates begin (default: the uniform start).  A component whose
    basis vector is all zero does not change the fit: its coefficients are 0, the smallest
    choice and the only penalised optimum."""
    live = np.flatnonzero(W.any(axis=0))
    Ht = np.zeros((engine.shape[1], W.shape[1]), dtype=engine.dtype)
    if live.size == 0:
        return Ht
    W_live = W if live.size == W.shape[1] else np.ascontiguousarray(W[:, live])
    if loss == "frobenius":
        Ht[:, live] = _frobenius(engine, W_live, penalty)
    else:
        start = None if start is None else np.ascontiguousarray(start[:, live], dtype=engine.dtype)
        Ht[:, live] = _multiplicative(engine, W_live, beta, penalty, tol, max_iter, start)
    return Ht


def multiplicative_coefficients(engine, W, beta, penalty, tol, max_iter):
    """`solve_coefficients` by β-multiplicative updates from the uniform start, for any β (also 2)."""
    live = np.flatnonzero(W.any(axis=0))
    Ht = np.zeros((engine.shape[1], W.shape[1]), dtype=engine.dtype)
    if live.size:
        Ht[:, live] = _multiplicative(engine, np.ascontiguousarray(W[:, live]), beta, penalty, tol, max_iter)
    return Ht


def _frobenius(engine, W, penalty):
    R, G = penalty.edit(engine.XtW(W).astype(np.float64), (W.T @ W).astype(np.float64), "H")
    return nnls_bpp(R, G).astype(engine.dtype, copy=False)


class FixedBasisMU(Solver):
    """β-multiplicative updates of the coefficients Ht (n×k) with the basis W fixed, run by the
    driver like any fit (progress, time, Ctrl-C keep the coefficients reached so far).

    Every column of X (row of Ht) is an independent problem; it stops on its own when its relative
    L1 change falls below `tol` and is frozen from then on, so its result does not depend on the
    other columns.  The run ends (`done`) when every column is frozen, or at `max_iter`.  Each
    update minimises the Févotte–Idier auxiliary function of its column, so the objective never
    increases (monotone)."""
    requires = frozenset({"core", "kl", "beta", "complete", "numpy_factors"})

    def __init__(self, engine, beta, penalty, tol):
        super().__init__(engine, resolve_loss(None, beta)[0], beta)
        self.penalty, self.tol = penalty, tol
        self.floor = floor_of(engine.dtype)
        self.gamma = beta_exponent(beta)
        self.active = np.ones(engine.shape[1], dtype=bool)
        self.w_sums = None

    def prepare(self, W, Ht):
        self.w_sums = W.sum(axis=0).astype(self.engine.dtype)
        return W, np.maximum(Ht, self.floor).astype(self.engine.dtype)

    def step(self, W, Ht):
        l1, l2 = self.penalty.terms("H")
        if self.beta == 1.0:      # KL: Wᵀ1 is the denominator; sparse data costs nnz·k
            numer = self.engine.kl_ratio(W, Ht, need=("QtW",))["QtW"]
            denom = np.broadcast_to(self.w_sums, Ht.shape)
        else:
            prod = self.engine.beta_products(W, Ht, self.beta, need=("XW",))
            numer, denom = prod["num_H"], prod["den_H"]
        new = mu_beta_half(Ht, numer, denom, self.gamma, self.floor, l1, l2).astype(self.engine.dtype, copy=False)
        change = np.abs(new - Ht).sum(axis=1) / np.maximum(np.abs(Ht).sum(axis=1), self.floor)
        Ht = np.where(self.active[:, None], new, Ht)
        self.active &= change > self.tol
        self.done = not self.active.any()
        return W, Ht, self.objective(W, Ht) if self.want_objective or self.done else None


def _multiplicative(engine, W, beta, penalty, tol, max_iter, start=None):
    total = float(W.sum(axis=0).astype(engine.dtype).sum(dtype=np.float64))
    if total <= 0:
        raise ValueError("W is all zeros; there is no basis to project on")
    if start is None:   # the uniform start whose fitted column sums match the data's column sums
        start = np.repeat((engine.X_col_sums() / total)[:, None], W.shape[1], axis=1)
    solver = FixedBasisMU(engine, beta, penalty, tol)
    return run(solver, W, start, max_iter=max_iter, tol=0.0, objective_every=max_iter + 1,
               label="projection").Ht
