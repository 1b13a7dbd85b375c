"""PyTorch engine: X a dense or sparse-CSR tensor on CPU or CUDA; the factors live beside it.

Products are cuBLAS/MKL GEMMs for dense X and cuSPARSE/MKL SpMM for CSR X, in X's
dtype (float32 or float64) on X's device:

    X Ht = X @ Ht            Xᵀ W = Xᵀ @ W   (dense: a transposed GEMM; CSR: a kept CSR of Xᵀ)
    KL   Q = X / (W Htᵀ):   Q Ht, Qᵀ W and D_KL(X‖W Htᵀ)
         dense: row blocks of W Htᵀ (≤ BLOCK entries each), so memory stays O(BLOCK);
         CSR: W Htᵀ only at the nonzeros (sampled dense-dense product, SDDMM), Q keeps
         X's sparsity, Qᵀ reuses the CSR of Xᵀ through a fixed permutation of the values,
         and Σ_ij (W Htᵀ)_ij = (colsum W)·(colsum Ht) stands in for the zeros.
    β    (X∘Λ^{β−2}) Ht, Λ^{β−1} Ht and the transposed pair, Λ = W Htᵀ, in row blocks
         (a CSR block is densified one block at a time: for β ∉ {1, 2} every zero counts).
    ‖X‖², nnz, ΣX once at construction; every sum of squares or logarithms in float64.

Sparse X is never densified whole.  The factors are tensors of X's dtype on X's
device; the solvers reach them through `TORCH_OPS` (see _ops.py), so MU (all β),
HALS and PGD run unchanged.  Cost per product: m·n·k (dense) or nnz·k (CSR) flops.
"""
from __future__ import annotations

import types
import warnings

import numpy as np
import torch

from . import TORCH_CAPABILITIES
from ._torch_ops import TORCH_OPS, numpy_dtype, torch_dtype
from .base import Engine

BLOCK = 1 << 26          # entries of a dense m×n block (256 MB in float32) in KL/β/exact-loss passes
_SPARSE_LAYOUTS = (torch.sparse_coo, torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc)

# torch prints a "CSR support is in beta" notice on first use of CSR tensors; everything this
# engine does with them is covered by its tests, so the notice says nothing to nmfkit's users.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)


# -- validation helpers (validation.py composes the messages) -----------------------------------
def sparse_structure(X):
    """(format, index arrays) of a sparse tensor for validation's structure check, before any
    torch kernel reads through them (torch does not check them by default): the arrays are
    NumPy copies on the CPU under SciPy's attribute names, the values only a stand-in of their
    shape.  None for a dense tensor."""
    if X.layout == torch.strided:
        return None
    values = X._values() if X.layout == torch.sparse_coo else X.values()
    shape = tuple(values.shape)
    data = np.lib.stride_tricks.as_strided(np.zeros(1, dtype=bool), shape=shape, strides=(0,) * len(shape))

    def cpu(t):
        return t.detach().cpu().numpy()
    if X.layout == torch.sparse_coo:
        rows, cols = cpu(X._indices())
        return "coo", types.SimpleNamespace(row=rows, col=cols, data=data, shape=tuple(X.shape))
    by_rows = X.layout in (torch.sparse_csr, torch.sparse_bsr)
    blocked = X.layout in (torch.sparse_bsr, torch.sparse_bsc)
    fmt = ("b" if blocked else "c") + ("sr" if by_rows else "sc")
    indptr = cpu(X.crow_indices() if by_rows else X.ccol_indices())
    indices = cpu(X.col_indices() if by_rows else X.row_indices())
    return fmt, types.SimpleNamespace(indptr=indptr, indices=indices, data=data, shape=tuple(X.shape),
                                      blocksize=shape[1:3] if blocked else (1, 1))


def tensor_dtype(X) -> np.dtype:
    """X's dtype as NumPy understands it (bfloat16 and other small floats count as float16)."""
    try:
        return numpy_dtype(X.dtype)
    except TypeError:
        return np.dtype(np.float16) if X.dtype.is_floating_point else np.dtype(np.complex64)


def as_float_tensor(X, dtype: np.dtype):
    """X detached, cast to `dtype`, dense (strided) or CSR; other sparse layouts become CSR."""
    X = X.detach()
    if X.layout in _SPARSE_LAYOUTS and X.layout != torch.sparse_csr:
        X = X.to_sparse_coo().coalesce().to_sparse_csr()
    elif X.layout not in _SPARSE_LAYOUTS and X.layout != torch.strided:
        raise TypeError(f"tensors with layout {X.layout} are not supported; use a dense or sparse CSR tensor")
    target = torch_dtype(dtype)
    return X if X.dtype == target else X.to(target)


def stored_values(X):
    """The entries to check: all of a dense X, the stored values of a CSR X."""
    return X.values() if X.layout == torch.sparse_csr else X


def count_flags(X) -> tuple[int, int, int, bool]:
    """(#NaN, #infinite, #negative, any non-zero finite entry) of X's stored entries."""
    v = stored_values(X)
    finite = torch.isfinite(v)
    n_bad = v.numel() - int(finite.sum())
    n_nan = int(torch.isnan(v).sum()) if n_bad else 0
    clean = v if n_bad == 0 else torch.where(finite, v, 0)
    return n_nan, n_bad - n_nan, int((v < 0).sum()), bool(clean.any())


FLAGS = {"nonfinite": lambda v: ~torch.isfinite(v), "negative": lambda v: v < 0}


def first_flagged(X, what) -> tuple[int, int, float]:
    """(i, j, value) of the first entry (row-major) that is `what` ("nonfinite" or "negative")."""
    v, flag = stored_values(X), FLAGS[what]
    if X.layout == torch.sparse_csr:
        p = int(torch.nonzero(flag(v).flatten())[0])
        i = int(torch.searchsorted(X.crow_indices(), p, right=True)) - 1
        return i, int(X.col_indices()[p]), float(v[p])
    i, j = (int(t) for t in torch.nonzero(flag(v))[0])
    return i, j, float(v[i, j])


def to_host(X):
    """A validated tensor (dense or CSR) as a NumPy array or SciPy CSR matrix on the CPU (a copy)."""
    import scipy.sparse as sp
    X = X.detach()
    if X.layout == torch.strided:
        return X.cpu().numpy()
    crow, col, values = (t.cpu().numpy() for t in (X.crow_indices(), X.col_indices(), X.values()))
    return sp.csr_matrix((values, col, crow), shape=tuple(X.shape))


# -- CSR plumbing -----------------------------------------------------------------------------------
def _csr(crow, col, values, shape):
    return torch.sparse_csr_tensor(crow, col, values, size=shape, check_invariants=False)   # built valid


def _entry_rows(crow, dtype=torch.int64):
    """The row index of every stored entry of a CSR matrix with row pointers `crow`."""
    m = crow.numel() - 1
    return torch.repeat_interleave(torch.arange(m, device=crow.device, dtype=dtype), crow.diff())


def prepare_csr(X):
    """X as CSR with no stored zeros, with int32 indices where they fit (faster SpMM, half the memory)."""
    crow, col, vals = X.crow_indices(), X.col_indices(), X.values()
    keep = vals != 0
    if not bool(keep.all()):
        counts = torch.bincount(_entry_rows(crow)[keep], minlength=X.shape[0])
        crow = torch.cat([crow.new_zeros(1), torch.cumsum(counts, 0)])
        col, vals = col[keep], vals[keep]
    small = max(vals.numel(), *X.shape) < 2**31 - 1
    index = torch.int32 if small else torch.int64
    return _csr(crow.to(index), col.to(index), vals, tuple(X.shape))


def transpose_csr(X):
    """(CSR of Xᵀ, perm) with Xᵀ.values() == X.values()[perm]: a stable sort of the column
    indices (X's entries are already in row order, so ties stay sorted by row)."""
    m, n = X.shape
    crow, col, vals = X.crow_indices(), X.col_indices(), X.values()
    perm = torch.argsort(col, stable=True)
    rows = _entry_rows(crow, crow.dtype)
    counts = torch.bincount(col.long(), minlength=n).to(crow.dtype)
    t_crow = torch.cat([crow.new_zeros(1), torch.cumsum(counts, 0, dtype=crow.dtype)])
    return _csr(t_crow, rows[perm], vals[perm], (n, m)), perm.to(crow.dtype)   # int32 where it fits


def xlog_ratio(x, q, lam):
    """x·log q for q = x/λ (0·log 0 = 0), kept finite where q underflowed to 0 (a subnormal x) by
    x·(log x − log λ) there; `lam` (λ, or a function making it) is used only then."""
    t = torch.xlogy(x, q)
    under = (q == 0) & (x > 0)
    if bool(under.any()):
        lam = lam() if callable(lam) else lam
        t = torch.where(under, x * (torch.log(x) - torch.log(lam)), t)
    return t


def beta_divergence(X, L, beta) -> float:
    """D_β(X‖L) of two dense blocks, in float64 (β = 2: ½ Frobenius, 1: KL, 0: Itakura–Saito)."""
    X, L = X.to(torch.float64), L.to(torch.float64)
    if beta == 2:
        return 0.5 * float(((X - L) ** 2).sum())
    if beta == 1:
        return float((xlog_ratio(X, X / L, L) - X + L).sum())
    if beta == 0:
        R = X / L
        return float((R - torch.log(R) - 1.0).sum())
    return float((X ** beta + (beta - 1.0) * L ** beta - beta * X * L ** (beta - 1.0)).sum()
                 / (beta * (beta - 1.0)))


class TorchEngine(Engine):
    """Engine over a validated torch tensor (see the module docstring)."""

    kind = "torch"
    capabilities = TORCH_CAPABILITIES
    ops = TORCH_OPS

    def __init__(self, X, _transposed=None):
        self.is_sparse = X.layout == torch.sparse_csr
        self.shape = tuple(int(s) for s in X.shape)
        self.dtype = numpy_dtype(X.dtype)
        self.device = X.device
        if self.is_sparse:
            X = prepare_csr(X) if _transposed is None else X
            self.Xt, self._perm = transpose_csr(X) if _transposed is None else _transposed
            values = X.values().double()
            self.nnz = int(values.numel())
            self.sqnorm, self._total = float(torch.dot(values, values)), float(values.sum())
        else:
            # float64 sums block by block: X.sum(dtype=float64) would first make a float64 copy of X
            self.nnz = int(torch.count_nonzero(X))
            self.sqnorm = self._total = 0.0
            for _, _, B in self._dense_blocks(X):
                B = B.double()
                self.sqnorm += float(torch.dot(B.flatten(), B.flatten()))
                self._total += float(B.sum())
        self.X = X

    # -- products ------------------------------------------------------------------------------------
    @property
    def entries_per_pass(self) -> int:
        return self.nnz if self.is_sparse else self.shape[0] * self.shape[1]

    def XHt(self, Ht):
        return self.X @ Ht

    def XtW(self, W):
        return self.Xt @ W if self.is_sparse else self.X.T @ W

    def transpose(self):
        if self.is_sparse:
            inverse = torch.empty_like(self._perm)
            inverse[self._perm] = torch.arange(self._perm.numel(), device=self._perm.device, dtype=self._perm.dtype)
            return TorchEngine(self.Xt, _transposed=(self.X, inverse))
        return TorchEngine(self.X.T)

    # -- row blocks ----------------------------------------------------------------------------------
    def _dense_blocks(self, X=None):
        """(start, stop, dense rows of X) for row blocks of about BLOCK entries."""
        X = self.X if X is None else X
        m, n = X.shape
        rows = max(1, min(m, BLOCK // max(n, 1)))
        for s in range(0, m, rows):
            e = min(m, s + rows)
            yield s, e, (self._csr_rows(s, e) if X.layout == torch.sparse_csr else X[s:e])

    def _csr_rows(self, s, e):
        crow, col, vals = self.X.crow_indices(), self.X.col_indices(), self.X.values()
        a, b = int(crow[s]), int(crow[e])
        return _csr(crow[s:e + 1] - a, col[a:b], vals[a:b], (e - s, self.shape[1])).to_dense()

    # -- KL --------------------------------------------------------------------------------------------
    def _colsum_dot(self, W, Ht) -> float:
        """Σ_ij (W Htᵀ)_ij = (colsum W)·(colsum Ht), in float64."""
        return float(W.sum(0, dtype=torch.float64) @ Ht.sum(0, dtype=torch.float64))

    def kl_ratio(self, W, Ht, need=("QHt", "QtW", "loss")):
        """Q Ht, Qᵀ W (Q = X/(W Htᵀ)) and D_KL(X‖W Htᵀ), each only if named in `need`."""
        if self.is_sparse:
            return self._kl_sparse(W, Ht, need)
        tiny = self.tiny
        out = {}
        if "QHt" in need:
            out["QHt"] = torch.empty((self.shape[0], W.shape[1]), dtype=W.dtype, device=W.device)
        if "QtW" in need:
            out["QtW"] = torch.zeros((self.shape[1], W.shape[1]), dtype=W.dtype, device=W.device)
        loss = 0.0
        for s, e, Xb in self._dense_blocks():
            Q = (W[s:e] @ Ht.T).clamp_min_(tiny)
            torch.div(Xb, Q, out=Q)
            if "QHt" in need:
                out["QHt"][s:e] = Q @ Ht
            if "QtW" in need:
                out["QtW"].addmm_(Q.T, W[s:e])
            if "loss" in need:
                loss += float(xlog_ratio(Xb, Q, lambda: W[s:e] @ Ht.T).sum(dtype=torch.float64))
        if "loss" in need:
            out["loss"] = loss - self._total + self._colsum_dot(W, Ht)
        return out

    def _kl_sparse(self, W, Ht, need):
        wh = torch.sparse.sampled_addmm(self.X, W, Ht.T, beta=0.0).values().clamp_min_(self.tiny)
        x = self.X.values()
        q = x / wh
        out = {}
        if "QHt" in need:
            out["QHt"] = _csr(self.X.crow_indices(), self.X.col_indices(), q, self.shape) @ Ht
        if "QtW" in need:
            out["QtW"] = _csr(self.Xt.crow_indices(), self.Xt.col_indices(), q[self._perm], self.shape[::-1]) @ W
        if "loss" in need:
            out["loss"] = float(xlog_ratio(x, q, wh).sum(dtype=torch.float64)) - self._total + self._colsum_dot(W, Ht)
        return out

    def kl_divergence(self, W, Ht):
        return self.kl_ratio(W, Ht, need=("loss",))["loss"]

    # -- β-divergence -----------------------------------------------------------------------------------
    def beta_products(self, W, Ht, beta, need=("XH", "XW")):
        """Numerators/denominators of β-MU and D_β at (W, Ht), in row blocks (see the module docstring)."""
        m, n = self.shape
        k = W.shape[1]
        eps = float(np.finfo(self.dtype).eps)
        new = dict(dtype=W.dtype, device=W.device)
        out = {}
        if "XH" in need:
            out["num_W"], out["den_W"] = torch.empty((m, k), **new), torch.empty((m, k), **new)
        if "XW" in need:
            out["num_H"], out["den_H"] = torch.zeros((n, k), **new), torch.zeros((n, k), **new)
        loss = 0.0
        for s, e, Xb in self._dense_blocks():
            L = (W[s:e] @ Ht.T).clamp_min_(eps)
            A, B = Xb * L ** (beta - 2.0), L ** (beta - 1.0)
            if "XH" in need:
                out["num_W"][s:e], out["den_W"][s:e] = A @ Ht, B @ Ht
            if "XW" in need:
                out["num_H"].addmm_(A.T, W[s:e])
                out["den_H"].addmm_(B.T, W[s:e])
            loss += beta_divergence(Xb, L, beta)
        out["loss"] = loss
        return out

    def beta_divergence(self, W, Ht, beta):
        return self.beta_products(W, Ht, beta, need=())["loss"]

    # -- exact loss and summaries ---------------------------------------------------------------------
    def frobenius_exact(self, W, Ht):
        """½‖X − W Htᵀ‖²: entry by entry in row blocks for dense X, the trace identity for CSR."""
        if self.is_sparse:
            return self.frobenius(W, Ht)
        return 0.5 * sum(float(((Xb - W[s:e] @ Ht.T).double() ** 2).sum()) for s, e, Xb in self._dense_blocks())

    def X_col_sums(self):
        if self.is_sparse:
            return self._segment_sums(self.Xt)
        return sum(TORCH_OPS.to_numpy(B.double().sum(0)) for _, _, B in self._dense_blocks())

    def X_row_sums(self):
        if self.is_sparse:
            return self._segment_sums(self.X)
        return np.concatenate([TORCH_OPS.to_numpy(B.double().sum(1)) for _, _, B in self._dense_blocks()])

    @staticmethod
    def _segment_sums(X):
        """Row sums of a CSR tensor, in float64, as a NumPy array."""
        crow = X.crow_indices().long()
        sums = torch.zeros(X.shape[0], dtype=torch.float64, device=crow.device)
        return TORCH_OPS.to_numpy(sums.index_add_(0, _entry_rows(crow), X.values().double()))

    def mean(self) -> float:
        return self._total / (self.shape[0] * self.shape[1])
