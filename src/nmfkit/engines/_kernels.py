"""Hot loops of the sparse engine: Numba kernels with plain NumPy/SciPy twins.

`sampled_dot(indptr, indices, W, Ht)` returns (W Htᵀ)_ij at the stored entries
of a CSR pattern: nnz·k flops and no m×n intermediate.  The Numba version runs
rows in parallel; the NumPy twin works in row blocks so its temporary stays
bounded.

`csr_dense(indptr, indices, data, B)` is the sparse × dense product X B for a
CSR X (m×n) and a tall B (n×k):

    (X B)[i, :] = Σ_{p ∈ row i} data[p] · B[indices[p], :]

2·nnz·k flops, memory-bound (one gathered row of B per stored entry).  SciPy's
SpMM runs on one thread; the Numba kernel runs rows in parallel, each output
row kept in a local accumulator so the inner loop over the k columns is a
contiguous, vectorisable axpy.  Its twin is SciPy's own product
(`csr_dense_scipy`).  The sum over a row runs in the same order in both, so
they agree to rounding (fused multiply-adds aside).
tests/test_core.py and tests/kernels/test_engine_kernels.py check the pairs agree.

`kl_w_step(indptr, indices, data, W, Ht, den, l2, floor, need, Ht_next, bounds)` is one KL
multiplicative W half-step fused with the products the next H half-step needs,
in one pass over the rows of a CSR X (Lee & Seung 2000; Q = X / (W Htᵀ) only at
the stored entries):

    Wᵢ' = max(δ, Wᵢ ∘ (qᵢ Ht) / max(tiny, d + λ₂Wᵢ)),   qᵢ = xᵢ / (Wᵢ Htᵀ)
    QtW = Q'ᵀ W',   D(X‖W' Hₙᵀ) = Σ_nz x log(x/λ') − x  +  colsum(W')·colsum(Hₙ),

with Q' = X / (W' Hₙᵀ) and Hₙ = `Ht_next`; the last term is Σ λ' over all m·n
entries without forming them.  Each stored entry costs 4k multiply-adds (λ,
q Ht, λ', the QtW scatter); no Q matrix, no Qᵀ product, no second read of X.
Rows run in the fixed row blocks `bounds` (balanced by stored entries, never
set by the thread count), each scattering into its own n×k partial QtW (at most
PARTIALS_MAX_BYTES in all, but MIN_BLOCKS blocks whenever their partials take no
more memory than X's own arrays: a genes × cells matrix with a million columns
still runs on several threads); the partials and the column sums of W' are added
in block order, so the result does not depend on the number of threads.
`update=False` makes the same sums at W itself (W' = W): a resumed fit
recomputes bit for bit the products an uninterrupted one cached.  The twin
`kl_w_step_scipy` forms Q and Q' with SciPy; tests/kernels/test_sparse_kl_kernel.py
checks kernel, twin and the engines' generic two-pass step agree.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import scipy.sparse as sp

from ._blocks import ROW_BLOCKS, VECTORISE, balanced_blocks

# Below this many flops (2·nnz·k) a parallel region costs more than it saves.
SPMM_PARALLEL_MIN_FLOPS = 1 << 20
PARTIALS_MAX_BYTES = 64 << 20    # memory for the per-block partial QtW: fewer blocks above it
MIN_BLOCKS = 4                   # blocks kept above that cap while the partials are smaller than X


def sampled_dot_numpy(indptr, indices, W, Ht, block=1 << 16):
    m = len(indptr) - 1
    rows = np.repeat(np.arange(m), np.diff(indptr))
    out = np.empty(len(indices), dtype=np.result_type(W, Ht))
    for s in range(0, len(indices), block):
        e = min(s + block, len(indices))
        out[s:e] = np.einsum("ij,ij->i", W[rows[s:e]], Ht[indices[s:e]])
    return out


def csr_dense_scipy(indptr, indices, data, B):
    """X B with SciPy (the twin of the Numba kernel); X given by its CSR arrays."""
    X = sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, B.shape[0]))
    return np.asarray(X @ B)


def row_blocks(indptr, n, k, itemsize):
    """Boundaries of the fixed row blocks of `kl_w_step`: at most ROW_BLOCKS, fewer when their
    partial QtW (blocks·n·k entries) would pass PARTIALS_MAX_BYTES — but not fewer than
    MIN_BLOCKS while those partials fit in the memory of X's stored entries and indices.
    Each block holds about the same number of stored entries plus rows (a row's cost is
    ≈ 4k per entry + 3k)."""
    m = len(indptr) - 1
    partial = max(1, n * k * itemsize)
    blocks = PARTIALS_MAX_BYTES // partial
    if blocks < MIN_BLOCKS:
        stored = int(indptr[-1]) * (itemsize + 4)      # data + int32 indices
        blocks = max(blocks, min(MIN_BLOCKS, stored // partial))
    return balanced_blocks(indptr, max(1, min(ROW_BLOCKS, m, blocks)))


def block_column_sums_numpy(F, bounds):
    """Σᵢ F_ia added per row block, then over the blocks in order (kl_w_step's W_sum)."""
    parts = np.stack([F[lo:hi].sum(axis=0) for lo, hi in zip(bounds[:-1], bounds[1:])])
    return parts.sum(axis=0)


def kl_w_step_scipy(indptr, indices, data, W, Ht, den, l2, floor, need, Ht_next=None, bounds=None):
    """The twin of the fused `kl_w_step`: Q and Q' as SciPy matrices, then Q Ht and Q'ᵀ W'."""
    dt = data.dtype
    tiny = np.finfo(dt).tiny
    shape = (len(indptr) - 1, Ht.shape[0])
    Hn = Ht if Ht_next is None else Ht_next

    def ratio(F, H):
        lam = np.maximum(sampled_dot_numpy(indptr, indices, F, H), tiny)
        return lam, sp.csr_matrix((data / lam, indices, indptr), shape=shape)

    d = np.maximum(den + l2 * W, tiny)
    Wn = np.maximum(W * np.asarray(ratio(W, Ht)[1] @ Ht) / d, floor).astype(dt, copy=False)
    out = {"W": Wn, "W_sum": Wn.sum(axis=0) if bounds is None else block_column_sums_numpy(Wn, bounds)}
    if "QtW" in need or "loss" in need:
        lam, Q = ratio(Wn, Hn)
        if "QtW" in need:
            out["QtW"] = np.asarray(Q.T @ Wn)
        if "loss" in need:
            x = data.astype(np.float64)
            out["loss"] = float(np.dot(x, log_ratio(x, lam)) - x.sum()
                                + Wn.sum(axis=0, dtype=np.float64) @ Hn.sum(axis=0, dtype=np.float64))
    return out



def log_ratio(x, lam):
    """log(x/λ) for x > 0, finite even where x/λ underflows to 0 (a subnormal x): log x − log λ there."""
    with np.errstate(divide="ignore"):
        r = np.log(x / lam)
    under = np.isneginf(r)
    if under.any():
        r[under] = np.log(x[under]) - np.log(lam[under])
    return r


@numba.njit(parallel=True, cache=True, fastmath=False)
def _sampled_dot_numba(indptr, indices, W, Ht, out):
    m = indptr.shape[0] - 1
    k = W.shape[1]
    for i in numba.prange(m):
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            acc = 0.0
            for a in range(k):
                acc += W[i, a] * Ht[j, a]
            out[p] = acc
    return out

def sampled_dot(indptr, indices, W, Ht):
    W = np.ascontiguousarray(W)
    Ht = np.ascontiguousarray(Ht)
    out = np.empty(len(indices), dtype=np.result_type(W, Ht))
    return _sampled_dot_numba(indptr, indices, W, Ht, out)

def _csr_dense_rows(indptr, indices, data, B, out):
    m = indptr.shape[0] - 1
    k = B.shape[1]
    for i in numba.prange(m):
        acc = np.zeros(k, dtype=out.dtype)
        for p in range(indptr[i], indptr[i + 1]):
            v = data[p]
            j = indices[p]
            for a in range(k):
                acc[a] += v * B[j, a]
        for a in range(k):
            out[i, a] = acc[a]
    return out

_csr_dense_parallel = numba.njit(parallel=True, cache=True)(_csr_dense_rows)

def csr_dense(indptr, indices, data, B):
    """X B for a CSR X (Numba, rows in parallel); B is made C-contiguous."""
    B = np.ascontiguousarray(B)
    dtype = np.result_type(data.dtype, B.dtype)
    out = np.empty((len(indptr) - 1, B.shape[1]), dtype=dtype)
    if 2 * len(data) * B.shape[1] < SPMM_PARALLEL_MIN_FLOPS or B.shape[1] == 0:
        return csr_dense_scipy(indptr, indices, data, B)
    data, B = data.astype(dtype, copy=False), B.astype(dtype, copy=False)
    return _csr_dense_parallel(indptr, indices, data, B, out)

@numba.njit(inline="always", fastmath=VECTORISE, error_model="numpy")
def _row_ratios(F, i, H, indices, data, lo, hi, tiny, q):
    """q[p − lo] = x_p / max(tiny, Fᵢ·H_j) over row i's entries: the dot products first, then
    the divisions in a separate loop, so they pipeline instead of waiting on each other."""
    k = F.shape[1]
    for p in range(lo, hi):
        j = indices[p]
        lam = F[i, 0] * H[j, 0]
        for a in range(1, k):
            lam += F[i, a] * H[j, a]
        q[p - lo] = lam
    for p in range(lo, hi):
        q[p - lo] = data[p] / max(q[p - lo], tiny)

@numba.njit(parallel=True, cache=True, fastmath=VECTORISE, error_model="numpy")
def _kl_w_step_rows(indptr, indices, data, W, Ht, Hn, den, l2, floor, tiny, update, want_xw, want_loss,
                    bounds, Wn, XW_parts, sum_parts, loss_parts):
    k = W.shape[1]
    for b in numba.prange(bounds.shape[0] - 1):
        if want_xw:
            XW_parts[b] = 0.0                  # zeroed (first touched) by the thread that fills it
        width = 0
        for i in range(bounds[b], bounds[b + 1]):
            width = max(width, indptr[i + 1] - indptr[i])
        q = np.empty(width, dtype=Wn.dtype)
        s = np.empty(k, dtype=Wn.dtype)
        loss = 0.0
        for i in range(bounds[b], bounds[b + 1]):
            lo, hi = indptr[i], indptr[i + 1]
            if update:                         # Wᵢ' from qᵢ Ht, qᵢ = xᵢ / (Wᵢ Htᵀ)
                _row_ratios(W, i, Ht, indices, data, lo, hi, tiny, q)
                s[:] = 0.0
                for p in range(lo, hi):
                    j, qp = indices[p], q[p - lo]
                    for a in range(k):
                        s[a] += qp * Ht[j, a]
                for a in range(k):
                    Wn[i, a] = max(W[i, a] * s[a] / max(den[a] + l2 * W[i, a], tiny), floor)
            else:
                for a in range(k):
                    Wn[i, a] = W[i, a]
            for a in range(k):
                sum_parts[b, a] += Wn[i, a]    # the stored (rounded) value
            if not (want_xw or want_loss):
                continue
            _row_ratios(Wn, i, Hn, indices, data, lo, hi, tiny, q)   # q' = xᵢ / (Wᵢ' Hₙᵀ)
            if want_xw:
                for p in range(lo, hi):
                    j, qp = indices[p], q[p - lo]
                    for a in range(k):
                        XW_parts[b, j, a] += qp * Wn[i, a]
            if want_loss:
                for p in range(lo, hi):
                    x = np.float64(data[p])
                    qp = np.float64(q[p - lo])
                    if qp > 0:
                        loss += x * math.log(qp) - x
                    elif x > 0:                  # x/λ underflowed (a subnormal x): log x − log λ
                        lam = 0.0
                        for a in range(k):
                            lam += np.float64(Wn[i, a]) * np.float64(Hn[indices[p], a])
                        loss += x * (math.log(x) - math.log(max(lam, tiny))) - x
        loss_parts[b] = loss

@numba.njit(parallel=True, cache=True)
def _add_parts(parts, out):
    """out[j] = Σ_b parts[b, j], the blocks added in order (parallel over j)."""
    for j in numba.prange(parts.shape[1]):
        out[j] = parts[0, j]
        for b in range(1, parts.shape[0]):
            for a in range(parts.shape[2]):
                out[j, a] += parts[b, j, a]

@numba.njit(parallel=True, cache=True)
def _column_sum_parts(F, bounds, sum_parts):
    for b in numba.prange(bounds.shape[0] - 1):
        for i in range(bounds[b], bounds[b + 1]):
            for a in range(F.shape[1]):
                sum_parts[b, a] += F[i, a]

def block_column_sums(F, bounds):
    """Σᵢ F_ia added in the order `kl_w_step` adds its W_sum (equal to the last bit)."""
    sum_parts = np.zeros((len(bounds) - 1, F.shape[1]), dtype=F.dtype)
    _column_sum_parts(np.ascontiguousarray(F), bounds, sum_parts)
    return sum_parts.sum(axis=0)

def kl_w_step(indptr, indices, data, W, Ht, den, l2, floor, need, Ht_next=None, bounds=None,
              update=True):
    """The fused W half-step on a CSR X (see the module docstring); `bounds` from `row_blocks`.
    `update=False` only makes the products at W (the same sums as after a step)."""
    m, k = W.shape
    n = Ht.shape[0]
    dt = data.dtype
    W = np.ascontiguousarray(W, dtype=dt)
    Ht = np.ascontiguousarray(Ht, dtype=dt)
    Hn = Ht if Ht_next is None else np.ascontiguousarray(Ht_next, dtype=dt)
    if bounds is None:
        bounds = row_blocks(indptr, n, k, dt.itemsize)
    blocks = len(bounds) - 1
    want_xw, want_loss = "QtW" in need, "loss" in need
    Wn = np.empty_like(W)
    XW_parts = np.empty((blocks, n, k) if want_xw else (blocks, 0, 0), dtype=dt)
    sum_parts = np.zeros((blocks, k), dtype=dt)
    loss_parts = np.zeros(blocks)
    _kl_w_step_rows(indptr, indices, data, W, Ht, Hn, np.ascontiguousarray(den, dtype=dt), dt.type(l2),
                    dt.type(floor), dt.type(np.finfo(dt).tiny), update, want_xw, want_loss, bounds,
                    Wn, XW_parts, sum_parts, loss_parts)
    out = {"W": Wn, "W_sum": sum_parts.sum(axis=0)}
    if want_xw:
        out["QtW"] = np.empty((n, k), dtype=dt)
        _add_parts(XW_parts, out["QtW"])
    if want_loss:
        out["loss"] = float(loss_parts.sum()
                            + Wn.sum(axis=0, dtype=np.float64) @ Hn.sum(axis=0, dtype=np.float64))
    return out
