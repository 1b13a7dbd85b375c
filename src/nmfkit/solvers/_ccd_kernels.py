"""Row kernels of KL coordinate descent (Hsieh & Dhillon, KDD 2011): Numba, with NumPy twins.

For each row x of X (length n) and the tall factors F (m×k, the one updated) and Other (n×k, fixed),
the row's coefficients w = F[i, :] minimise  Σ_j λ_j − x_j log λ_j,  λ = Other w.  Coordinate a at a
time (a = 1..k), with λ kept up to date, a few Newton steps on the 1-D convex function

    f(w_a) = Σ_j λ_j − x_j log λ_j:   g = S_a − Σ_j o_ja x_j/λ_j,   h = Σ_j o_ja² x_j/λ_j²,
    S_a = Σ_j o_ja  (all n columns: the linear term needs no pass over the zeros of X),

then λ += o_a Δw.  Sparse rows touch only their stored entries (CSR), dense rows all n columns.

Safeguards (each step is the minimiser of a function that lies above f, so f never increases):
* f'' = Σ o² x/λ² is decreasing in w_a (λ grows with w_a).  Moving right (g < 0) the quadratic
  with curvature h = f''(w) therefore lies above f, and the Newton point w − g/h decreases f.
  The multiplicative (Lee–Seung) point w·(S_a − g)/S_a minimises another upper bound of f
  (Jensen on log λ); moving right we take the larger of the two, since from far below the optimum
  (λ ≪ x) Newton only doubles λ per step while the multiplicative point jumps to scale.
* Moving left (g > 0) f'' grows and Newton can overshoot, even to a point where f = ∞.  With
  R = max_{j: x_j > 0} o_ja/λ_j, every term obeys λ_j(w + t) ≥ λ_j (1 + R t), so for
  t ∈ (−1/R, 0]  f''(w + t) ≤ h/(1 + R t)².  Integrating twice, φ(t) = f(w) + g t + h(t/R −
  log(1 + R t)/R²) ≥ f(w + t), and φ is minimised at  t* = −g/(h + R g):  a damped Newton step,
  the same as Newton where R g ≪ h (near the optimum: quadratic convergence is kept).  It never
  reaches a point where some λ_j with x_j > 0 vanishes (t* > −1/R), and it is clipped at the
  floor (clipping a convex φ to an interval keeps φ(t) ≤ φ(0) = f(w)).  Any R' ≥ R gives a valid
  bound; since λ_j ≥ o_ja w, R ≤ 1/w, which costs nothing.  The exact R (a max reduction, which
  does not vectorise: 4× the cost of the sums) is computed only when Newton would cross the
  floor, where it lets the step reach the floor exactly instead of only approaching it.
* h = 0 with g > 0 (the row has no data where o_a > 0): f is linear and increasing, so w_a goes
  to the floor.  g = 0 (in particular o_a = 0): w_a stays.  λ is clamped at the dtype-independent
  tiny of float64 where it is divided by.
The arithmetic runs in float64 (rows are copied into float64 buffers, so float32 data and rows of
an F-ordered X are read once per half-step: on Golub 5000×38, k = 3, the H half-step on the
strided Xᵀ view took 0.77 ms against 0.61 ms on a C-ordered copy, not worth a second copy of X);
each new w_a is rounded to F's dtype before λ is
updated, so λ stays the product of the stored factors.  A step that does not move w_a ends the
coordinate's steps early (the next one would compute the same point).

`kl_cd_dense(X, F, Other, steps, floor, want_loss)` and `kl_cd_csr(indptr, indices, data, ...)` return
(F', D_KL(X‖F' Oᵀ) or None).  Rows run in parallel in fixed row blocks (never set by the thread
count); the loss is added per block, then over the blocks in order, so results do not depend on
the number of threads.  The twins `*_numpy` run the same steps on all rows at once (whole-array
maths, sums in another order); tests/solvers/test_ccd.py checks they agree.
Cost per half-step: (2 + 6·steps)·k flops per entry (dense: m·n entries, sparse: nnz), one division
per entry and step, plus a log per entry when the loss is asked for.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import scipy.sparse as sp

from ..engines._blocks import KL_CD_ROW_BLOCKS, VECTORISE, balanced_blocks
from ..engines._kernels import log_ratio

TINY = float(np.finfo(np.float64).tiny)


def dense_blocks(m):
    """Boundaries of min(KL_CD_ROW_BLOCKS, m) equal row blocks (dense rows all cost the same)."""
    return np.linspace(0, m, min(KL_CD_ROW_BLOCKS, max(m, 1)) + 1).round().astype(np.int64)


def csr_blocks(indptr):
    """Boundaries of at most KL_CD_ROW_BLOCKS row blocks holding about the same stored entries plus rows."""
    return balanced_blocks(indptr, min(KL_CD_ROW_BLOCKS, max(len(indptr) - 1, 1)))


# -- the NumPy twins: every row at once, one coordinate after another -------------------------------------
def next_values(w, g, sq, S, h, R, floor):
    """The safeguarded coordinate update of the module docstring, for vectors (w, g, …) of rows."""
    with np.errstate(divide="ignore", invalid="ignore"):
        crosses = (h <= 0) | (w - g / h <= floor)
        R = np.where(crosses, R, 1.0 / w)          # the kernel's cheap bound where it suffices
        lo = np.minimum(w, floor)
        den = h + R * g
        left = np.maximum(lo, np.where(den > 0, w - g / den, lo))
        newton = w - g / np.where(h > 0, h, 1.0)
        mu = np.where((w > 0) & (S > 0), w * sq / (S if S > 0 else 1.0), 0.0)
        right = np.where(h > 0, np.maximum(newton, mu), w)
    return np.where(g > 0, left, np.where(g < 0, right, w))


def _cd_numpy(F, Other, steps, floor, lam_of, sums, update):
    """Shared loop of the twins: `sums(lam, a)` gives (Σ o x/λ, Σ o² x/λ², R) per row, `update(lam, a, d)`."""
    Fn = F.astype(np.float64)
    S = Other.sum(axis=0, dtype=np.float64)
    lam = lam_of(Fn)
    for a in range(F.shape[1]):
        for _ in range(steps):
            sq, h, R = sums(lam, a)
            w = Fn[:, a]
            new = next_values(w, S[a] - sq, sq, S[a], h, R, floor).astype(F.dtype).astype(np.float64)
            d = new - w
            Fn[:, a] = new
            lam = update(lam, a, d)
    return Fn.astype(F.dtype), S


def kl_cd_dense_numpy(X, F, Other, steps, floor, want_loss=False):
    """The twin of `kl_cd_dense`: whole m×n arrays (λ, x/λ) per Newton step."""
    X64 = np.asarray(X, dtype=np.float64)
    Other64 = Other.astype(np.float64)
    pos = X64 > 0

    def sums(lam, a):
        inv = 1.0 / np.maximum(lam, TINY)
        Q = X64 * inv
        o = Other64[:, a]
        return Q @ o, (Q * inv) @ (o * o), np.max(np.where(pos, o * inv, 0.0), axis=1, initial=0.0)

    def update(lam, a, d):
        return lam + np.outer(d, Other64[:, a])

    Fn, _ = _cd_numpy(F, Other, steps, floor, lambda Fn: Fn @ Other64.T, sums, update)
    if not want_loss:
        return Fn, None
    lam = np.maximum(Fn.astype(np.float64) @ Other64.T, TINY)
    logs = np.zeros_like(X64)
    logs[pos] = log_ratio(X64[pos], lam[pos])
    return Fn, float(np.sum(X64 * logs) - X64.sum() + lam.sum())


def kl_cd_csr_numpy(indptr, indices, data, F, Other, steps, floor, want_loss=False):
    """The twin of `kl_cd_csr`: λ at the stored entries as a vector, row sums by CSR products."""
    m = len(indptr) - 1
    shape = (m, Other.shape[0])
    rows = np.repeat(np.arange(m), np.diff(indptr))
    x = np.asarray(data, dtype=np.float64)
    Other64 = Other.astype(np.float64)
    filled = np.diff(indptr) > 0

    def row_sum(values):
        return sp.csr_matrix((values, indices, indptr), shape=shape) @ np.ones(shape[1])

    def sums(lam, a):
        inv = 1.0 / np.maximum(lam, TINY)
        o = Other64[indices, a]
        oq = o * x * inv
        R = np.zeros(m)
        if filled.any():
            R[filled] = np.maximum.reduceat(o * inv, indptr[:-1][filled])
        return row_sum(oq), row_sum(oq * o * inv), R

    def update(lam, a, d):
        return lam + d[rows] * Other64[indices, a]

    def lam_of(Fn):
        return np.einsum("pa,pa->p", Fn[rows], Other64[indices])

    Fn, S = _cd_numpy(F, Other, steps, floor, lam_of, sums, update)
    if not want_loss:
        return Fn, None
    lam = np.maximum(lam_of(Fn.astype(np.float64)), TINY)
    total = float(Fn.sum(axis=0, dtype=np.float64) @ S)
    return Fn, float(np.dot(x, log_ratio(x, lam)) - x.sum() + total)



@numba.njit(cache=True, fastmath=VECTORISE, error_model="numpy")
def _next_value(w, g, sq, S, h, R, floor):
    if g > 0:                        # left: damped Newton, t* = −g/(h + R g), clipped at the floor
        lo = min(w, floor)
        den = h + R * g
        return max(lo, w - g / den) if den > 0 else lo
    if g < 0 and h > 0:              # right: the larger of the Newton and the multiplicative point
        new = w - g / h
        if w > 0 and S > 0:
            new = max(new, w * sq / S)
        return new
    return w

@numba.njit(cache=True, fastmath=VECTORISE, error_model="numpy")
def _largest_ratio(x, o, lam, L):
    """R = max over x_j > 0 of o_j/λ_j (a separate pass: a max reduction does not vectorise)."""
    R = 0.0
    for j in range(L):
        if x[j] > 0:
            R = max(R, o[j] / max(lam[j], TINY))
    return R

@numba.njit(cache=True, fastmath=VECTORISE, error_model="numpy")
def _cd_row(x, ot, L, S, row, steps, floor, lam):
    """Coordinate descent on one row: x[:L] the data, ot[:, :L] = Oᵀ at those columns,
    row = F[i, :] (updated in place, in F's dtype), lam a float64 buffer."""
    k = ot.shape[0]
    for j in range(L):
        lam[j] = 0.0
    for a in range(k):
        f = np.float64(row[a])
        if f != 0.0:
            for j in range(L):
                lam[j] += f * ot[a, j]
    for a in range(k):
        w = np.float64(row[a])
        o = ot[a]
        for _ in range(steps):
            sq = 0.0
            h = 0.0
            for j in range(L):
                inv = 1.0 / max(lam[j], TINY)
                oq = o[j] * x[j] * inv
                sq += oq
                h += oq * o[j] * inv
            g = S[a] - sq
            if g > 0 and w <= floor:
                break
            # Left steps need R = max o_j/λ_j; 1/w bounds it (λ_j ≥ o_j w) and suffices unless
            # Newton would cross the floor, where the exact R lets the step reach it.
            R = 0.0
            if g > 0:
                R = _largest_ratio(x, o, lam, L) if h <= 0 or w - g / h <= floor else 1.0 / w
            row[a] = _next_value(w, g, sq, S[a], h, R, floor)   # rounded to F's dtype
            d = np.float64(row[a]) - w
            if d == 0.0:
                break
            for j in range(L):
                lam[j] += d * o[j]
            w += d

@numba.njit(cache=True, fastmath=VECTORISE, error_model="numpy")
def _row_loss(x, ot, L, row, lam):
    """Σ_j x log(x/λ) − x over x[:L] at the stored row (λ recomputed fresh, not the updated one)."""
    k = ot.shape[0]
    for j in range(L):
        lam[j] = 0.0
    for a in range(k):
        f = np.float64(row[a])
        for j in range(L):
            lam[j] += f * ot[a, j]
    loss = 0.0
    for j in range(L):
        if x[j] > 0:
            q = x[j] / max(lam[j], TINY)
            loss += x[j] * (math.log(q) if q > 0 else math.log(x[j]) - math.log(max(lam[j], TINY))) - x[j]
    return loss

@numba.njit(parallel=True, cache=True, fastmath=VECTORISE, error_model="numpy")
def _cd_dense(X, Ot, S, steps, floor, want_loss, bounds, Fn, loss_parts):
    n = X.shape[1]
    for b in numba.prange(len(bounds) - 1):
        x = np.empty(n)
        lam = np.empty(n)
        loss = 0.0
        for i in range(bounds[b], bounds[b + 1]):
            for j in range(n):               # one read of the row, strided or not
                x[j] = X[i, j]
            _cd_row(x, Ot, n, S, Fn[i], steps, floor, lam)
            if want_loss:
                loss += _row_loss(x, Ot, n, Fn[i], lam)
        loss_parts[b] = loss

@numba.njit(parallel=True, cache=True, fastmath=VECTORISE, error_model="numpy")
def _cd_csr(indptr, indices, data, Other, S, steps, floor, want_loss, bounds, Fn, loss_parts):
    k = Other.shape[1]
    for b in numba.prange(len(bounds) - 1):
        longest = 0
        for i in range(bounds[b], bounds[b + 1]):
            longest = max(longest, indptr[i + 1] - indptr[i])
        x = np.empty(longest)
        lam = np.empty(longest)
        buffer = np.empty(k * longest)
        loss = 0.0
        for i in range(bounds[b], bounds[b + 1]):
            start = indptr[i]
            L = indptr[i + 1] - start
            ot = buffer[:k * L].reshape((k, L))   # Oᵀ at the row's columns, packed: contiguous loops
            for p in range(L):
                x[p] = data[start + p]
                j = indices[start + p]
                for a in range(k):
                    ot[a, p] = Other[j, a]
            _cd_row(x, ot, L, S, Fn[i], steps, floor, lam)
            if want_loss:
                loss += _row_loss(x, ot, L, Fn[i], lam)
        loss_parts[b] = loss

def kl_cd_dense(X, F, Other, steps, floor, want_loss=False):
    """Coordinate descent on every row of a dense X (C- or F-ordered); see the module docstring."""
    Fn = np.array(F, order="C", copy=True)
    Ot = np.ascontiguousarray(Other.T, dtype=np.float64)
    S = Other.sum(axis=0, dtype=np.float64)
    bounds = dense_blocks(X.shape[0])
    loss_parts = np.zeros(len(bounds) - 1)
    _cd_dense(X, Ot, S, int(steps), float(floor), bool(want_loss), bounds, Fn, loss_parts)
    if not want_loss:
        return Fn, None
    return Fn, float(loss_parts.sum() + Fn.sum(axis=0, dtype=np.float64) @ S)

def kl_cd_csr(indptr, indices, data, F, Other, steps, floor, want_loss=False):
    """Coordinate descent on every row of a CSR X (only its stored entries); see the module docstring."""
    Fn = np.array(F, order="C", copy=True)
    Other = np.ascontiguousarray(Other)
    S = Other.sum(axis=0, dtype=np.float64)
    bounds = csr_blocks(indptr)
    loss_parts = np.zeros(len(bounds) - 1)
    _cd_csr(indptr, indices, data, Other, S, int(steps), float(floor), bool(want_loss), bounds, Fn, loss_parts)
    if not want_loss:
        return Fn, None
    return Fn, float(loss_parts.sum() + Fn.sum(axis=0, dtype=np.float64) @ S)
