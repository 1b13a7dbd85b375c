"""Hot loop of HALS: coordinate-descent sweeps, Numba kernel + whole-array twin.

A Frobenius half-step minimises, over a tall factor F (p×k) ≥ 0,

    ½ tr(F G Fᵀ) − ⟨F, R⟩        (R = X-product p×k, G = Gram k×k, symmetric)

Each row of F is an independent problem sharing G.  One HALS sweep updates the
k coordinates in order,

    F[:, j] ← max(0, F[:, j] + S[:, j] / G_jj),     S = R − F G,

the exact minimiser in coordinate j (Cichocki & Phan 2009).  S is formed once
per call with one BLAS product and then kept exact by rank-one updates
S[i, :] −= Δ·G[j, :] only where F[i, j] moved — entries pinned at zero cost
O(1), so a sweep costs O(p·k + moves·k) instead of p·k².  `hals_sweeps`
repeats the sweep up to `max_sweeps` times (Gillis & Glineur 2012) and stops a
row early once its sweep moves it by less than δ times its first sweep (the
reference code applies this test to the whole factor; per row, each
independent problem gets the sweeps it needs).

Row i of a column update depends only on row i, so the column-by-column,
whole-array twin (`hals_sweeps_numpy`) and the row-by-row Numba kernel give the
same result up to summation order; tests/kernels/test_hals_kernels.py checks it.  The twin
is also the HALS path for torch tensors (it uses only the array family's ops,
so it runs on the GPU; one sweep is k column updates of O(p·k) each).  The kernel
sweeps LANES = 8 rows side by side, each in a column of small local arrays f and
s (no aliasing with G, so the rank-one update is a vectorised axpy over the
lanes) and multiplies by a precomputed 1/G_jj instead of dividing (the twin does
the same, so the two round alike).  A coordinate update of one row must wait for
the rank-one update of the coordinate before it; rows are independent, so side
by side their updates overlap instead of waiting.  A lane whose row stops (its
sweep cap or the δ test) writes the row back and takes the next one, so every
row gets exactly its own sweeps and its own arithmetic: the result is the same,
bit for bit, as sweeping each row alone (tests/kernels/test_hals_kernels.py).  A
lane that does not move subtracts zero, and the axpy is skipped only when no lane
moved, so entries resting at zero are no longer free row by row.  The row-at-a-time
kernel (same arithmetic, so the same result) therefore runs when more than
LANES_MAX_ZERO_SHARE of the start's entries are zero.  Measured on one loaded core
(3 sweeps, δ = 0.1; lanes over rows): 0.77 (no zeros), 0.6–0.75 (30–60 % zeros) and
1.15–1.6 (80–90 % zeros) at p×k = 1797×16; 0.77–0.88 up to 60 % zeros at 5000×3;
break-even near 70 % zeros at 8000×30.  Rows run in parallel only when a sweep
is large (PARALLEL_MIN_WORK): for smaller factors the sweeps cost less than the
start-up of a parallel region and the wait for BLAS threads still spinning
after the products.

A coordinate with G_jj ≤ 0 (a dead component of the other factor) enters the
objective only through −S_ij·F_ij (S_ij = R_ij = −λ₁ ≤ 0 under an L1 penalty,
0 without): it is set to 0 where S_ij ≤ 0, its minimiser, and left alone
otherwise.  Nothing is divided by zero; the solver revives dead components.
Both work on F in place and return the number of sweeps made per row.
Cost: p·k² for S, then at most p·k² per sweep (far less when entries rest at 0).
"""
from __future__ import annotations

import types

import numba
import numpy as np

from ..engines import array_ops

PARALLEL_MIN_WORK = 1 << 22   # p·k² flops per sweep above which rows run in parallel
ROWS_PER_TASK = 64            # rows per parallel task (amortises the local row buffers)
LANES = 8                     # rows swept side by side in one task
LANES_MAX_ZERO_SHARE = 0.6    # above this share of zeros in the start, one row at a time is faster
LANES_SAMPLE_ROWS = 512       # rows of the start that share is read from


def reciprocal_diagonal(G):
    """1/G_jj where G_jj > 0, else 0 (a dead coordinate): multiplying by it keeps
    the division off each coordinate update's critical path."""
    k = G.shape[0]
    inv = np.zeros(k, dtype=G.dtype)
    for j in range(k):
        if G[j, j] > 0:
            inv[j] = 1 / G[j, j]
    return inv


def hals_sweeps_numpy(F, R, G, max_sweeps=1, delta=0.0):
    """HALS sweeps on F in place, column by column over the still-active rows.

    Whole-array code through the array family's ops, so it runs on NumPy arrays
    and on torch tensors (on their device) alike."""
    ops = array_ops(F)
    p, k = F.shape
    S = R - F @ G                     # the negative gradient, kept up to date
    inv = [float(1 / d) if d > 0 else 0.0 for d in ops.to_numpy(G.diagonal())]   # as the kernel rounds it
    first = ops.zeros(p, F, np.float64)
    done = ops.zeros(p, F, np.int64)
    active = ops.arange(p, F)
    for sweep in range(max_sweeps):
        if len(active) == 0:
            break
        Fa, Sa = F[active], S[active]
        moved = ops.zeros(len(active), F, np.float64)
        for j in range(k):
            if inv[j] > 0:
                col = ops.clamp_min(Fa[:, j] + Sa[:, j] * inv[j], 0)
            else:        # the coordinate is linear in F: 0 minimises it where S ≤ 0
                col = ops.where(Sa[:, j] > 0, Fa[:, j], 0)
            d = col - Fa[:, j]
            ops.sub_outer_(Sa, d, G[j])
            moved += ops.to64(d) ** 2
            Fa[:, j] = col
        F[active], S[active] = Fa, Sa
        done[active] += 1
        if sweep == 0:
            first[active] = moved
        else:
            active = active[moved > delta * delta * first[active]]
    return done



_reciprocal_diagonal = numba.njit(cache=True)(reciprocal_diagonal)

def _load_row(F, S, i, f, s, b):
    for a in range(F.shape[1]):
        f[a, b] = F[i, a]
        s[a, b] = S[i, a]


def _hals_sweeps_lanes(F, S, G, max_sweeps, delta, done, rows_per_task):
    p, k = F.shape
    zero = F.dtype.type(0)
    inv = _reciprocal_diagonal(G)
    limit = delta * delta
    tasks = (p + rows_per_task - 1) // rows_per_task
    for t in numba.prange(tasks):
        # LANES rows at a time, lane b in column b of f and s (rows' own copies of F and S: no aliasing
        # with G).  A coordinate update of one row waits for the rank-one update of the coordinate
        # before; across lanes the rows are independent, so their updates overlap.
        f = np.zeros((k, LANES), F.dtype)
        s = np.zeros((k, LANES), F.dtype)
        step = np.zeros(LANES, F.dtype)
        row = np.full(LANES, -1, np.int64)      # the row each lane holds (-1: idle, f = s = 0)
        sweeps = np.zeros(LANES, np.int64)
        moved = np.zeros(LANES)
        first = np.zeros(LANES)
        nxt, end = t * rows_per_task, min(p, (t + 1) * rows_per_task)
        live = 0
        for b in range(LANES):
            if nxt < end and max_sweeps > 0:
                _load_row(F, S, nxt, f, s, b)
                row[b] = nxt
                nxt += 1
                live += 1
        while live > 0:
            moved[:] = 0.0
            for j in range(k):
                any_move = False
                for b in range(LANES):
                    old = f[j, b]
                    if inv[j] > 0:
                        new = max(old + s[j, b] * inv[j], zero)
                    elif s[j, b] > 0:
                        new = old
                    else:
                        new = zero
                    d = new - old
                    step[b] = d
                    f[j, b] = new
                    moved[b] += d * d
                    any_move |= d != 0
                if any_move:
                    # Keep S = R − F G exact: a rank-one change per lane (a lane that did not move
                    # subtracts zero).  G is symmetric, so row j is column j and is contiguous.
                    for a in range(k):
                        g = G[j, a]
                        for b in range(LANES):
                            s[a, b] -= step[b] * g
            for b in range(LANES):              # one sweep done in every lane: stop test, refill
                i = row[b]
                if i < 0:
                    continue
                sweeps[b] += 1
                done[i] = sweeps[b]
                if sweeps[b] == 1:
                    first[b] = moved[b]
                    finished = sweeps[b] >= max_sweeps
                else:
                    finished = sweeps[b] >= max_sweeps or moved[b] <= limit * first[b]
                if not finished:
                    continue
                for a in range(k):
                    F[i, a] = f[a, b]
                sweeps[b] = 0
                if nxt < end:
                    _load_row(F, S, nxt, f, s, b)
                    row[b] = nxt
                    nxt += 1
                else:
                    row[b] = -1
                    live -= 1
                    for a in range(k):
                        f[a, b] = zero
                        s[a, b] = zero
    return done


def _hals_sweeps_rows(F, S, G, max_sweeps, delta, done):
    # One row at a time: a coordinate that does not move costs O(1) (no rank-one update).
    p, k = F.shape
    zero = F.dtype.type(0)
    inv = _reciprocal_diagonal(G)
    tasks = (p + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    for t in numba.prange(tasks):
        # Row i of F and S live in small local arrays while its sweeps run: no
        # aliasing with G, so the rank-one update below is a vectorised axpy.
        f = np.empty(k, F.dtype)
        s = np.empty(k, F.dtype)
        for i in range(t * ROWS_PER_TASK, min(p, (t + 1) * ROWS_PER_TASK)):
            for a in range(k):
                f[a] = F[i, a]
                s[a] = S[i, a]
            first = 0.0
            for sweep in range(max_sweeps):
                moved = 0.0
                for j in range(k):
                    old = f[j]
                    if inv[j] > 0:
                        new = max(old + s[j] * inv[j], zero)
                    elif s[j] > 0:
                        new = old
                    else:
                        new = zero
                    d = new - old
                    if d != 0:
                        # Keep S = R − F G exact: a rank-one change of row i.
                        # G is symmetric, so row j is column j and is contiguous.
                        for a in range(k):
                            s[a] -= d * G[j, a]
                        f[j] = new
                        moved += d * d
                done[i] = sweep + 1
                if sweep == 0:
                    first = moved
                elif moved <= delta * delta * first:
                    break
            for a in range(k):
                F[i, a] = f[a]
    return done


def _compiled(func, name, parallel):
    # A distinct name per variant: Numba's on-disk cache is keyed by name,
    # and two variants of one function would load each other's code.
    clone = types.FunctionType(func.__code__, func.__globals__, name)
    clone.__qualname__ = name
    return numba.njit(parallel=parallel, cache=True)(clone)

_load_row = numba.njit(cache=True, inline="always")(_load_row)
_hals_sweeps_parallel_lanes = _compiled(_hals_sweeps_lanes, "_hals_sweeps_parallel_lanes", True)
_hals_sweeps_serial_lanes = _compiled(_hals_sweeps_lanes, "_hals_sweeps_serial_lanes", False)
_hals_sweeps_parallel_rows = _compiled(_hals_sweeps_rows, "_hals_sweeps_parallel_rows", True)
_hals_sweeps_serial_rows = _compiled(_hals_sweeps_rows, "_hals_sweeps_serial_rows", False)


def _hals_sweeps_parallel(F, S, G, max_sweeps, delta, done, lanes=True):
    """Rows in parallel tasks of ROWS_PER_TASK rows."""
    if lanes:
        return _hals_sweeps_parallel_lanes(F, S, G, max_sweeps, delta, done, ROWS_PER_TASK)
    return _hals_sweeps_parallel_rows(F, S, G, max_sweeps, delta, done)


def _hals_sweeps_serial(F, S, G, max_sweeps, delta, done, lanes=True):
    """All rows in one task (the lanes refill from every row)."""
    if lanes:
        return _hals_sweeps_serial_lanes(F, S, G, max_sweeps, delta, done, max(F.shape[0], 1))
    return _hals_sweeps_serial_rows(F, S, G, max_sweeps, delta, done)


def use_lanes(F) -> bool:
    """Whether the lanes pay: fewer than LANES_MAX_ZERO_SHARE of the entries at zero in F's first
    LANES_SAMPLE_ROWS rows (a start with many zeros has many coordinates that rest there, which the
    row-at-a-time kernel skips for free).  Either kernel gives the same result; this only picks the faster."""
    head = F[:LANES_SAMPLE_ROWS]
    return np.count_nonzero(head) > (1.0 - LANES_MAX_ZERO_SHARE) * head.size


def hals_sweeps(F, R, G, max_sweeps=1, delta=0.0):
    """HALS sweeps on F in place (rows in parallel); returns sweeps per row.

    F must be C-contiguous and writeable."""
    G = np.ascontiguousarray(G, dtype=F.dtype)
    S = np.ascontiguousarray(R - F @ G, dtype=F.dtype)    # one BLAS call, then O(k) updates
    done = np.zeros(F.shape[0], dtype=np.int64)
    # Threads pay off only on large factors; on small ones their start-up (and
    # contention with BLAS threads still spinning after the products) dominates.
    kernel = _hals_sweeps_parallel if F.size * F.shape[1] >= PARALLEL_MIN_WORK else _hals_sweeps_serial
    return kernel(F, S, G, int(max_sweeps), float(delta), done, use_lanes(F))


# -- constrained sweeps: box [lower, upper] and a per-row diagonal --------------------------------------
#
# The half-step of a constrained or graph-regularised fit minimises, row by row,
#
#     ½ fᵢ (G + dᵢ I) fᵢᵀ − ⟨fᵢ, Rᵢ⟩   over  lower ≤ fᵢ ≤ upper,
#
# (d = 0 without a graph; lower = −∞ for a factor without a sign constraint, upper = +∞ without a
# bound).  The exact coordinate minimiser is the unconstrained one clipped to the box,
#
#     F[i, j] ← min(upper, max(lower, F[i, j] + S[i, j] / (G_jj + dᵢ))),    S = R − F G − d ∘ F,
#
# and a coordinate whose curvature G_jj + dᵢ is 0 is linear: it goes to the end of the box its slope
# points to (lower where S ≤ 0, upper where S > 0), or stays where that end is infinite.  With
# lower = 0, upper = ∞ and d = 0 this is `hals_sweeps` operation for operation.

def box_coordinate(old, s, inv, lower, upper):
    """The exact minimiser of one coordinate (`inv` = 1/curvature, 0 for a linear coordinate)."""
    if inv > 0:
        return min(max(old + s * inv, lower), upper)
    if s > 0:
        return upper if upper < np.inf else old
    return lower if lower > -np.inf else old


def hals_box_sweeps_numpy(F, R, G, max_sweeps=1, delta=0.0, lower=0.0, upper=np.inf, row_diag=None):
    """Box-constrained HALS sweeps on NumPy F in place, column by column; returns sweeps per row."""
    p, k = F.shape
    d = np.zeros(p, F.dtype) if row_diag is None else np.asarray(row_diag, F.dtype)
    S = R - F @ G - d[:, None] * F
    curv = np.diagonal(G)[None, :] + d[:, None]
    inv = np.zeros_like(curv)
    np.divide(1, curv, out=inv, where=curv > 0)
    lo, hi = F.dtype.type(lower), F.dtype.type(upper)
    first = np.zeros(p)
    done = np.zeros(p, np.int64)
    active = np.arange(p)
    for sweep in range(max_sweeps):
        if len(active) == 0:
            break
        Fa, Sa, inva, da = F[active], S[active], inv[active], d[active]
        moved = np.zeros(len(active))
        for j in range(k):
            old, s, ij = Fa[:, j], Sa[:, j], inva[:, j]
            linear = np.where(s > 0, hi if hi < np.inf else old, lo if lo > -np.inf else old)
            col = np.where(ij > 0, np.minimum(np.maximum(old + s * ij, lo), hi), linear).astype(F.dtype)
            step = col - old
            Sa -= np.outer(step, G[j])
            Sa[:, j] -= step * da
            moved += step.astype(np.float64) ** 2
            Fa[:, j] = col
        F[active], S[active] = Fa, Sa
        done[active] += 1
        if sweep == 0:
            first[active] = moved
        else:
            active = active[moved > delta * delta * first[active]]
    return done


_box_coordinate = numba.njit(cache=True, inline="always")(box_coordinate)


def _hals_box_sweeps_rows(F, S, G, max_sweeps, delta, lower, upper, row_diag, done):
    p, k = F.shape
    lo, hi = F.dtype.type(lower), F.dtype.type(upper)
    tasks = (p + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    for t in numba.prange(tasks):
        f = np.empty(k, F.dtype)
        s = np.empty(k, F.dtype)
        inv = np.zeros(k, F.dtype)
        for i in range(t * ROWS_PER_TASK, min(p, (t + 1) * ROWS_PER_TASK)):
            di = row_diag[i]
            for a in range(k):
                f[a] = F[i, a]
                s[a] = S[i, a]
                c = G[a, a] + di
                inv[a] = 1 / c if c > 0 else 0
            first = 0.0
            for sweep in range(max_sweeps):
                moved = 0.0
                for j in range(k):
                    old = f[j]
                    new = _box_coordinate(old, s[j], inv[j], lo, hi)
                    step = new - old
                    if step != 0:
                        for a in range(k):
                            s[a] -= step * G[j, a]
                        s[j] -= step * di
                        f[j] = new
                        moved += step * step
                done[i] = sweep + 1
                if sweep == 0:
                    first = moved
                elif moved <= delta * delta * first:
                    break
            for a in range(k):
                F[i, a] = f[a]
    return done


_hals_box_sweeps_parallel = _compiled(_hals_box_sweeps_rows, "_hals_box_sweeps_parallel", True)
_hals_box_sweeps_serial = _compiled(_hals_box_sweeps_rows, "_hals_box_sweeps_serial", False)


def hals_box_sweeps(F, R, G, max_sweeps=1, delta=0.0, lower=0.0, upper=np.inf, row_diag=None):
    """Box-constrained HALS sweeps on F in place (rows in parallel); returns sweeps per row.

    F must be C-contiguous and writeable; `row_diag` (p values ≥ 0, default 0) adds dᵢ to the
    curvature of row i."""
    G = np.ascontiguousarray(G, dtype=F.dtype)
    d = np.zeros(F.shape[0], F.dtype) if row_diag is None else np.ascontiguousarray(row_diag, dtype=F.dtype)
    S = np.ascontiguousarray(R - F @ G - d[:, None] * F, dtype=F.dtype)
    done = np.zeros(F.shape[0], dtype=np.int64)
    kernel = (_hals_box_sweeps_parallel if F.size * F.shape[1] >= PARALLEL_MIN_WORK
              else _hals_box_sweeps_serial)
    return kernel(F, S, G, int(max_sweeps), float(delta), float(lower), float(upper), d, done)


# -- small per-iteration helpers of the solver: one pass, no temporaries ------------------------------
#
# On small problems (data and factors in cache) a HALS iteration is a few hundred microseconds, and
# whole-array NumPy expressions that make several temporaries (the extrapolation) or always read the
# whole factor (the dead-column test) are a visible share of it.  Each helper below does the same
# arithmetic in one compiled pass; its NumPy twin is the reference the tests compare it with.

def zero_columns_numpy(F):
    """Indices of the all-zero columns of F."""
    return np.flatnonzero(~F.any(axis=0))


@numba.njit(cache=True)
def _live_columns(F):
    p, k = F.shape
    live = np.zeros(k, np.bool_)
    left = k
    for i in range(p):                  # stops at the first row by which every column has a nonzero
        for j in range(k):
            if not live[j] and F[i, j] != 0:
                live[j] = True
                left -= 1
        if left == 0:
            break
    return live


def zero_columns(F):
    """Indices of the all-zero columns of a NumPy F (NaN counts as nonzero, as in `F.any`); reads F
    only until every column has shown a nonzero, usually a few rows."""
    return np.flatnonzero(~_live_columns(F))


def extrapolate_numpy(F, F_prev, beta):
    """max(0, F + β (F − F_prev)), β rounded to F's dtype (a new array)."""
    return np.maximum(F + F.dtype.type(beta) * (F - F_prev), 0)


@numba.njit(cache=True)
def _extrapolate(F, F_prev, beta, out):
    zero = F.dtype.type(0)
    for i in range(F.shape[0]):
        for j in range(F.shape[1]):
            out[i, j] = max(F[i, j] + beta * (F[i, j] - F_prev[i, j]), zero)
    return out


def extrapolate(F, F_prev, beta):
    """`extrapolate_numpy` in one pass over NumPy F and F_prev (same shape and dtype); a new C array."""
    out = np.empty(F.shape, F.dtype)
    return _extrapolate(F, F_prev, F.dtype.type(beta), out)
