"""Chunked engine: X read from storage in blocks of rows at every pass (a NumPy memmap, or any
chunk reader of `nmfkit.stream`: `.npy`, Matrix Market / 10x, `.h5ad`, Zarr, Parquet).

Every pass reads X block by block (BLOCK_BYTES of X at a time, or `chunk_rows` rows), so apart
from the factors only one block and its products with them are in memory: memory is
O((m + n)·k + block), and a matrix larger than memory runs through the solvers that need only
the core products and the KL and β terms (hals, anls, mu).  X is never written to.  The products
are the in-memory engines' products summed block by block, so a fit makes the same iterates as
in memory up to the order of floating-point summation.

Blocks may be dense arrays or CSR matrices (sparse files): X Ht and Xᵀ W use them as they are;
the exact Frobenius, KL and β terms densify one block at a time.  Row blocks of a C-ordered
`.npy` file are contiguous on disk; `transpose` reads column blocks (strided for a memmap, one
pass over the rows per column block for a reader), and only solvers that need per-row access
of Xᵀ call it.

Cost: as the dense (or sparse) engine, plus one read of X per pass; the KL and β terms make the
m×n product W Htᵀ one block at a time.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .base import Engine
from .dense import beta_products_in_blocks, kl_products_in_blocks

BLOCK_BYTES = 64 * 2 ** 20     # bytes of X read per block when no chunk size is given


def _dense(block):
    return block.toarray() if sp.issparse(block) else block


def _sqnorm(block) -> float:
    if sp.issparse(block):
        return float(np.dot(block.data, block.data.astype(np.float64)))
    return float(np.einsum("ij,ij->", block, block, dtype=np.float64))


def _nnz(block) -> int:
    return int(np.count_nonzero(block.data)) if sp.issparse(block) else int(np.count_nonzero(block))


class TransposedReader:
    """Xᵀ of a row-chunk reader: a block of Xᵀ's rows (X's columns) costs one pass over X's rows."""

    def __init__(self, reader, chunk_rows):
        self.source, self.source_rows = reader, chunk_rows
        self.shape = reader.shape[::-1]
        self.dtype = reader.dtype

    def read(self, start, stop):
        out = np.empty((stop - start, self.shape[1]), self.dtype)
        m = self.source.shape[0]
        for s in range(0, m, self.source_rows):
            e = min(m, s + self.source_rows)
            out[:, s:e] = _dense(self.source.read(s, e)[:, start:stop]).T
        return out


class MemmapEngine(Engine):
    """X read in row blocks: a NumPy memmap, or a chunk reader (an object with `shape`, `dtype` and
    `read(start, stop)` returning rows start..stop as a dense array or CSR matrix).  `check`, if
    given, is called as check(block, start) on every block of the first pass (validation)."""

    kind = "memmap"
    capabilities = frozenset({"core", "kl", "beta", "complete", "numpy_factors"})

    def __init__(self, X, chunk_rows=None, check=None, stats=None):
        self.X = X
        self.reader = None if isinstance(X, np.ndarray) else X
        self.shape = tuple(X.shape)
        self.dtype = np.dtype(X.dtype)
        self.chunk_rows = chunk_rows
        if stats is not None:
            self.sqnorm, self.nnz = stats
            return
        sqnorm, nnz = 0.0, 0
        for s, _, Xb in self._blocks():        # one pass: ‖X‖² in float64, the nonzeros, the checks
            if check is not None:
                check(Xb, s)
            sqnorm += _sqnorm(Xb)
            nnz += _nnz(Xb)
        self.sqnorm, self.nnz = sqnorm, nnz

    @property
    def rows_per_block(self) -> int:
        if self.chunk_rows is not None:
            return int(self.chunk_rows)
        return max(1, BLOCK_BYTES // max(self.shape[1] * self.dtype.itemsize, 1))

    def _blocks(self):
        """(start, stop, X[start:stop]) for the row blocks (dense, or CSR from a sparse reader)."""
        m = self.shape[0]
        rows = self.rows_per_block
        for s in range(0, m, rows):
            e = min(m, s + rows)
            yield s, e, (np.asarray(self.X[s:e]) if self.reader is None else self.reader.read(s, e))

    def _dense_blocks(self):
        for s, e, Xb in self._blocks():
            yield s, e, _dense(Xb)

    @property
    def entries_per_pass(self) -> int:
        """m·n, or the stored entries of a sparse reader's chunks (as the sparse engine counts them)."""
        return self.nnz if getattr(self.reader, "sparse", False) else self.shape[0] * self.shape[1]

    # -- core ----------------------------------------------------------------------------------
    def XHt(self, Ht):
        out = np.empty((self.shape[0], Ht.shape[1]), dtype=np.result_type(self.dtype, Ht.dtype))
        for s, e, Xb in self._blocks():
            out[s:e] = Xb @ Ht
        return out

    def XtW(self, W):
        out = np.zeros((self.shape[1], W.shape[1]), dtype=np.result_type(self.dtype, W.dtype))
        for s, e, Xb in self._blocks():
            out += Xb.T @ W[s:e]
        return out

    def frobenius_exact(self, W, Ht):
        """½‖X − W Htᵀ‖² entry by entry, block by block."""
        total = 0.0
        for s, e, Xb in self._dense_blocks():
            D = Xb - W[s:e] @ Ht.T
            total += float(np.einsum("ij,ij->", D, D, dtype=np.float64))
        return 0.5 * total

    def X_col_sums(self):
        sums = np.zeros(self.shape[1])
        for _, _, Xb in self._blocks():
            sums += np.asarray(Xb.sum(axis=0, dtype=np.float64)).ravel()
        return sums

    def X_row_sums(self):
        return np.concatenate([np.asarray(Xb.sum(axis=1, dtype=np.float64)).ravel() for _, _, Xb in self._blocks()])

    def mean(self) -> float:
        return float(self.X_col_sums().sum() / (self.shape[0] * self.shape[1]))

    def transpose(self):
        if self.reader is None:
            return MemmapEngine(self.X.T, stats=(self.sqnorm, self.nnz))
        return MemmapEngine(TransposedReader(self.reader, self.rows_per_block),
                            chunk_rows=self.rows_per_block, stats=(self.sqnorm, self.nnz))

    # -- kl ------------------------------------------------------------------------------------
    def kl_ratio(self, W, Ht, need=("QHt", "QtW", "loss")):
        """Q = X/(W Htᵀ) products and the KL divergence, one row block of Q at a time."""
        return kl_products_in_blocks(self._dense_blocks(), self.shape, W, Ht, tuple(need), self.dtype)

    def kl_divergence(self, W, Ht):
        return self.kl_ratio(W, Ht, need=("loss",))["loss"]

    # -- beta ----------------------------------------------------------------------------------
    def beta_products(self, W, Ht, beta, need=("XH", "XW")):
        """β-MU numerators and denominators (see DenseEngine.beta_products), one row block at a time."""
        return beta_products_in_blocks(self._dense_blocks(), self.shape, W, Ht, beta, need, self.dtype)

    def beta_divergence(self, W, Ht, beta):
        return self.beta_products(W, Ht, beta, need=())["loss"]
