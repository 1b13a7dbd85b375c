"""Weighted non-negative least squares, one problem per row: the `irls` solver's inner solve,
a Numba kernel and its whole-array NumPy twin.

Row p of a tall factor F (p×k) solves, for entry weights A (p×q) and weighted responses B (p×q)
against the other factor Other (q×k),

    min_{f ≥ 0}  ½ fᵀ G_p f − ⟨f, r_p⟩,     G_p = Σ_q A_pq Other_q Other_qᵀ,   r_p = Σ_q B_pq Other_q,

i.e. min Σ_q A_pq (z_pq − Other_q·f)² with B = A ∘ z: the weighted least-squares problem of one IRLS
step.  Each row has its own k×k Gram (the weights differ per entry), so the cost is q·k² per row
for the Gram plus k² per coordinate-descent sweep.

The solve is cyclic coordinate descent started at the row's current value (warm start): each
coordinate moves to the exact minimiser f_a ← max(0, f_a − (G f − r)_a / G_aa) and the gradient
G f − r is kept exact by a rank-one update.  Every coordinate step lowers the quadratic, so even a
truncated solve decreases it; the sweeps stop after `max_sweeps` or when the largest move in a
sweep is at most `tol` times the row's largest entry.  A coordinate with G_aa ≤ 0 (no weight on
its support) is left where it is.

`weighted_nnls_rows` (Numba, rows in parallel for large problems) and `weighted_nnls_rows_numpy` (the twin: batched
Grams by einsum, then the same sweeps on all rows at once, every row taking `max_sweeps` sweeps
when tol = 0) compute the same iterates up to summation order; tests/kernels compare them.  Both
work in float64 and return a new array; F is not modified.
"""
from __future__ import annotations

import numba
import numpy as np

PARALLEL_MIN_WORK = 1 << 22   # p·q·k² flops of Grams above which rows run in parallel (below: thread start-up
                              # and the wait for idle BLAS threads cost more than the work)


@numba.njit(cache=True)
def _solve_row(i, F, A, B, Other, max_sweeps, tol, out):
    k = F.shape[1]
    q = Other.shape[0]
    G = np.zeros((k, k))
    r = np.zeros(k)
    for j in range(q):
        a = A[i, j]
        b = B[i, j]
        for s in range(k):
            o = Other[j, s]
            r[s] += b * o
            ao = a * o
            for t in range(s, k):
                G[s, t] += ao * Other[j, t]
    for s in range(k):
        for t in range(s + 1, k):
            G[t, s] = G[s, t]
    f = F[i].copy()
    grad = G @ f - r
    for _ in range(max_sweeps):
        moved = 0.0
        for c in range(k):
            if G[c, c] <= 0.0:
                continue
            new = f[c] - grad[c] / G[c, c]
            if new < 0.0:
                new = 0.0
            d = new - f[c]
            if d != 0.0:
                for s in range(k):
                    grad[s] += d * G[s, c]
                f[c] = new
                if abs(d) > moved:
                    moved = abs(d)
        if moved <= tol * np.max(f):
            break
    out[i] = f


@numba.njit(cache=True)
def _rows_serial(F, A, B, Other, max_sweeps, tol, out):
    for i in range(F.shape[0]):
        _solve_row(i, F, A, B, Other, max_sweeps, tol, out)


@numba.njit(parallel=True, cache=True)
def _rows_parallel(F, A, B, Other, max_sweeps, tol, out):
    for i in numba.prange(F.shape[0]):
        _solve_row(i, F, A, B, Other, max_sweeps, tol, out)


def weighted_nnls_rows(F, A, B, Other, max_sweeps=50, tol=1e-8):
    """Row-wise weighted NNLS (see the module docstring), Numba kernel; float64 result."""
    F, A, B, Other = (np.ascontiguousarray(M, dtype=np.float64) for M in (F, A, B, Other))
    out = np.empty_like(F)
    work = A.size * F.shape[1] ** 2
    kernel = _rows_parallel if work >= PARALLEL_MIN_WORK else _rows_serial
    kernel(F, A, B, Other, int(max_sweeps), float(tol), out)
    return out


def weighted_nnls_rows_numpy(F, A, B, Other, max_sweeps=50, tol=1e-8):
    """The NumPy twin of `weighted_nnls_rows`: the same sweeps on all rows at once (a row that
    has converged takes further sweeps, which only move it by less than the tolerance)."""
    F, A, B, Other = (np.asarray(M, dtype=np.float64) for M in (F, A, B, Other))
    G = np.einsum("pq,qa,qb->pab", A, Other, Other)
    r = B @ Other
    f = F.copy()
    grad = np.einsum("pab,pb->pa", G, f) - r
    k = F.shape[1]
    for _ in range(int(max_sweeps)):
        moved = np.zeros(f.shape[0])
        for c in range(k):
            gcc = G[:, c, c]
            live = gcc > 0
            new = np.where(live, np.maximum(f[:, c] - grad[:, c] / np.where(live, gcc, 1.0), 0.0), f[:, c])
            d = new - f[:, c]
            grad += d[:, None] * G[:, :, c]
            f[:, c] = new
            moved = np.maximum(moved, np.abs(d))
        if np.all(moved <= tol * f.max(axis=1)):
            break
    return f
