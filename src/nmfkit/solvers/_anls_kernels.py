"""Block principal pivoting for many non-negative least-squares rows sharing one Gram: Numba, with
a NumPy twin (the `anls` solver's math; Kim & Park, SIAM J. Sci. Comput. 33(6) 2011).

Each row f of F solves  min_{f ≥ 0} ½ fᵀ G f − ⟨f, r⟩; see solvers/anls.py for the pivoting rule.

Two implementations of the same pivoting.  `nnls_bpp` (used by the solver) is
a Numba kernel that takes the rows in parallel and pivots each one to
completion, solving G_PP f_P = r_P by a Cholesky factorisation of just G_PP
(|P|³/6 flops).  `nnls_bpp_numpy`, its whole-array twin, groups rows by
identical passive set; each distinct set's G_PP is embedded in a k×k matrix
(identity off the set) and the stack is inverted in one batched LAPACK call —
few calls when the sets repeat (dense data, small k), but one k×k inverse per
row and round when every row has its own set (sparse data: 50–200× the cost of
the products that way, the kernel about 4×).  Passive sets start from the
previous factor's support (warm start), so late iterations need one or two
rounds.  The k×k algebra is done in float64 and the result cast back to the
data's dtype.
"""
from __future__ import annotations

import numba
import numpy as np

BACKUP_ROUNDS = 3


def _patterns(passive):
    """Distinct passive sets (u×k) and, for each row, the index of its own."""
    p, k = passive.shape
    if k <= 62:
        keys = passive.astype(np.int64) @ (np.int64(1) << np.arange(k, dtype=np.int64))
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        return passive[first], inverse.ravel()
    uniq, inverse = np.unique(passive, axis=0, return_inverse=True)
    return uniq, inverse.ravel()


def _batched_inverse(M):
    """Inverses of a stack of SPD matrices; pseudo-inverses if any is singular."""
    try:
        return np.linalg.inv(M)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(M, hermitian=True)


def solve_passive(R, G, passive, block=512):
    """Unconstrained solution on each row's passive set, and the gradient Y = F G − R.

    For each distinct passive set P the system is embedded in k×k as
    M = [G_PP on P×P, identity elsewhere]; batched inverses serve all sets and
    each row is one small mat-vec with its set's inverse.  Sets and rows are
    taken `block` at a time, so temporaries stay at O(block·k²) memory."""
    uniq, which = _patterns(passive)
    k = G.shape[0]
    order = np.argsort(which, kind="stable")          # rows sorted by their set
    starts = np.searchsorted(which[order], np.arange(len(uniq) + 1))
    rhs = np.where(passive, R, 0.0)
    F = np.empty_like(R)
    diag = np.arange(k)
    for u0 in range(0, len(uniq), block):
        u1 = min(u0 + block, len(uniq))
        sets = uniq[u0:u1]
        M = np.where(sets[:, :, None] & sets[:, None, :], G, 0.0)
        M[:, diag, diag] += ~sets
        Minv = _batched_inverse(M)
        rows = order[starts[u0]:starts[u1]]
        for r0 in range(0, len(rows), block):
            sel = rows[r0:r0 + block]
            F[sel] = np.einsum("ikl,il->ik", Minv[which[sel] - u0], rhs[sel])
    F[~passive] = 0
    Y = F @ G - R
    Y[passive] = 0
    return F, Y


def _inputs(R, G, passive, max_rounds):
    R = np.ascontiguousarray(R, dtype=np.float64)
    G = np.ascontiguousarray(G, dtype=np.float64)
    p, k = R.shape
    passive = np.zeros((p, k), dtype=bool) if passive is None else np.array(passive, dtype=bool)
    # Gradient entries this close to zero are zero: avoids flipping on rounding noise.
    tol_y = 1e-12 * max(float(np.abs(R).max(initial=0.0)), float(np.abs(G).max(initial=0.0)), 1e-300)
    max_rounds = 10 * k + 50 if max_rounds is None else int(max_rounds)
    return R, G, passive, tol_y, max_rounds


def nnls_bpp(R, G, passive=None, max_rounds=None):
    """Exact NNLS for all rows: argmin_{F ≥ 0} ½ tr(F G Fᵀ) − ⟨F, R⟩ (float64).

    The per-row Numba kernel; `nnls_bpp_numpy` is its batched whole-array twin."""
    R, G, passive, tol_y, max_rounds = _inputs(R, G, passive, max_rounds)
    return _bpp_rows(R, G, passive, tol_y, max_rounds, np.empty_like(R))


def nnls_bpp_numpy(R, G, passive=None, max_rounds=None):
    """Batched twin of `nnls_bpp`: rows grouped by passive set, a few LAPACK calls a round."""
    R, G, passive, tol_y, max_rounds = _inputs(R, G, passive, max_rounds)
    p, k = R.shape
    F, Y = solve_passive(R, G, passive)
    best_count = np.full(p, k + 1)
    backup = np.full(p, BACKUP_ROUNDS)
    for _ in range(max_rounds):
        infeasible = (passive & (F < 0)) | (~passive & (Y < -tol_y))
        count = infeasible.sum(axis=1)
        rows = np.flatnonzero(count)
        if rows.size == 0:
            break
        c = count[rows]
        better = c < best_count[rows]
        best_count[rows[better]] = c[better]
        backup[rows[better]] = BACKUP_ROUNDS
        worse = rows[~better]
        stuck = worse[backup[worse] <= 0]
        backup[worse[backup[worse] > 0]] -= 1
        flip = infeasible[rows]
        if stuck.size:
            # Murty's backup rule: flip only the largest infeasible index.
            pos = np.searchsorted(rows, stuck)
            last = k - 1 - np.argmax(flip[pos, ::-1], axis=1)
            flip[pos] = False
            flip[pos, last] = True
        passive[rows] ^= flip
        F[rows], Y[rows] = solve_passive(R[rows], G, passive[rows])
    np.maximum(F, 0, out=F)
    return F


# -- the per-row kernel ------------------------------------------------------------------------
# Each row is its own small problem; when rows have different passive sets (sparse
# data) the batched twin above degenerates to one k×k inverse per row per round.
# The kernel instead pivots each row to completion with a Cholesky factorisation
# of just G_PP (|P|³/6 flops, |P| ≤ k), rows in parallel.  Same pivoting rules as
# `nnls_bpp_numpy`, so the two return the same (unique) solution up to rounding;
# tests/solvers/test_anls.py checks it.  A Cholesky pivot below PIVOT_TOL·G_jj (a dead or
# collinear component) pins that variable at 0, which is how the pseudo-inverse
# treats a null direction: the objective value is the same.
PIVOT_TOL = 1e-12
ROWS_PER_TASK = 64


@numba.njit(parallel=True, cache=True, fastmath=True)
def _bpp_rows(R, G, passive, tol_y, max_rounds, F):
    p, k = R.shape
    tasks = (p + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    for t in numba.prange(tasks):
        idx = np.empty(k, np.int64)
        L = np.empty((k, k))
        z = np.empty(k)
        f = np.empty(k)
        P = np.empty(k, np.bool_)
        for i in range(t * ROWS_PER_TASK, min(p, (t + 1) * ROWS_PER_TASK)):
            for j in range(k):
                P[j] = passive[i, j]
            best_count = k + 1
            backup = BACKUP_ROUNDS
            for rnd in range(max_rounds + 1):
                # Solve G_PP f_P = r_P by Cholesky; f = 0 off P.
                n = 0
                for j in range(k):
                    f[j] = 0.0
                    if P[j]:
                        idx[n] = j
                        n += 1
                for a in range(n):
                    for b in range(a + 1):
                        s = G[idx[a], idx[b]]
                        for c in range(b):
                            s -= L[a, c] * L[b, c]
                        if a == b:
                            L[a, a] = np.sqrt(s) if s > PIVOT_TOL * G[idx[a], idx[a]] else 0.0
                        else:
                            L[a, b] = s / L[b, b] if L[b, b] > 0 else 0.0
                for a in range(n):                      # L z = r_P
                    s = R[i, idx[a]]
                    for c in range(a):
                        s -= L[a, c] * z[c]
                    z[a] = s / L[a, a] if L[a, a] > 0 else 0.0
                for a in range(n - 1, -1, -1):          # Lᵀ f_P = z
                    s = z[a]
                    for c in range(a + 1, n):
                        s -= L[c, a] * f[idx[c]]
                    f[idx[a]] = s / L[a, a] if L[a, a] > 0 else 0.0
                if rnd == max_rounds:
                    break
                # Infeasible: passive and negative, or active with a negative gradient.
                count = 0
                last = -1
                for j in range(k):
                    if P[j]:
                        bad = f[j] < 0
                    else:
                        y = -R[i, j]
                        for a in range(n):
                            y += G[j, idx[a]] * f[idx[a]]
                        bad = y < -tol_y
                    z[j] = 1.0 if bad else 0.0      # z is free here: reuse it as the flip mask
                    if bad:
                        count += 1
                        last = j
                if count == 0:
                    break
                if count < best_count:
                    best_count = count
                    backup = BACKUP_ROUNDS
                elif backup > 0:
                    backup -= 1
                else:                                  # Murty's backup rule
                    P[last] = not P[last]
                    continue
                for j in range(k):
                    if z[j] > 0:
                        P[j] = not P[j]
            for j in range(k):
                F[i, j] = max(f[j], 0.0)
    return F
