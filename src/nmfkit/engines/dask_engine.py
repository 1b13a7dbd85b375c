"""Dask engine: X as a row-chunked `dask.array`, read lazily, the factors in memory.

X (m×n) is split into row blocks X₁ … X_b (every block spans all n columns); W is
split the same way, Wᵢ = W[rows of Xᵢ].  The factors stay NumPy arrays in the
calling process: W (m×k) and Ht (n×k) are k/n and k/m times the size of X, so
they fit in memory long after X does not.  Every product is one pass over X:

    X Ht   = vstack_i (Xᵢ Ht)                      (one task per block → m×k)
    Xᵀ W   = Σᵢ Xᵢᵀ Wᵢ                              (tree-reduced, fan-in 4 → n×k)
    KL     Qᵢ = Xᵢ / (Wᵢ Htᵀ):  Q Ht = vstack Qᵢ Ht,  Qᵀ W = Σ Qᵢᵀ Wᵢ,  D = Σ D(Xᵢ‖Wᵢ Htᵀ)
    β      the same with (Xᵢ∘Λᵢ^{β−2}, Λᵢ^{β−1}),  Λᵢ = Wᵢ Htᵀ
    ‖X‖², nnz, ΣX   one scan, shared with input validation (see `scan`)

A block's Qᵢ or Λᵢ never leaves the task that made it, and nothing is persisted:
each `compute` re-reads the blocks it needs from the lazy source (Zarr, .npy,
HDF5 …), so a worker's memory holds a few blocks plus n×k partial sums, and a
lost worker costs only the recomputation of its blocks.  Ht is shipped once per
call as a single graph key; Wᵢ travels with its block's task.

Cost per product: m·n·k flops and size(X) bytes read; the solvers read X twice
per iteration (one pass per half-step; MU-KL too, as its ratio products are
cached across iterations).  Works with the threaded scheduler and with whatever
`dask.distributed.Client` is active.
Only dense (NumPy) chunks are supported.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from ._dense_kernels import kl_products_numpy
from .base import Engine
from .dense import beta_block

FAN_IN = 4
_SCANS: dict = {}           # X.name → validation's scan, taken once by the engine (see `scan`)


def require_dask():
    """Import dask (and dask.array) or fail with the install hint."""
    try:
        import dask
        import dask.array  # noqa: F401
    except ImportError:
        raise ImportError("dask arrays need the dask extra: pip install nmfkit[dask]") from None
    return dask


# -- input preparation -----------------------------------------------------------------------------
def as_row_chunked(X, dtype):
    """X in the engine's layout: dtype `dtype`, row blocks spanning every column (lazy)."""
    if not isinstance(X._meta, np.ndarray):
        raise TypeError(f"dask arrays with {type(X._meta).__name__} chunks are not supported; "
                        "use NumPy chunks (X.map_blocks(lambda b: b.toarray()))")
    if X.dtype != dtype:
        X = X.astype(dtype)
    if X.numblocks[1] > 1:               # join the column blocks; keep the row blocks unless too big
        import dask
        from dask.utils import parse_bytes
        limit = parse_bytes(dask.config.get("array.chunk-size"))
        too_big = max(X.chunks[0]) * X.shape[1] * X.dtype.itemsize > limit
        X = X.rechunk({0: "auto" if too_big else X.chunks[0], 1: -1})
    return X


def _block_stats(B):
    """[#NaN, #inf, #negative, #nonzero, Σx², Σx] of one block (float64; non-finite entries excluded)."""
    finite = np.isfinite(B)
    n_bad = B.size - int(np.count_nonzero(finite))
    n_nan = int(np.count_nonzero(np.isnan(B))) if n_bad else 0
    clean = B if n_bad == 0 else np.where(finite, B, 0)
    return np.array([n_nan, n_bad - n_nan, np.count_nonzero(B < 0), np.count_nonzero(clean),
                     np.einsum("ij,ij->", clean, clean, dtype=np.float64), clean.sum(dtype=np.float64)])


def scan(X, reuse=False):
    """One lazy pass over X: per-block statistics (b×6, see `_block_stats`) and their totals.

    Validation scans (reuse=False) and leaves the result for the engine built right after it,
    which takes it (reuse=True) instead of a second pass; a result is used at most once, so a
    file changed between two fits is never described by stale statistics."""
    dask = require_dask()
    per_block = _SCANS.pop(X.name, None) if reuse else None
    if per_block is None:
        blocks = X.to_delayed().ravel()
        per_block = np.array(dask.compute(*[dask.delayed(_block_stats)(b) for b in blocks]))
        if not reuse:
            while len(_SCANS) >= 4:
                _SCANS.pop(next(iter(_SCANS)))
            _SCANS[X.name] = per_block
    return per_block, per_block.sum(axis=0)


def first_flagged(X, per_block, column, flag):
    """(i, j) of the first entry of X with `flag(block)` true, reading only the first block
    whose statistic `column` is non-zero."""
    b = int(np.flatnonzero(per_block[:, column])[0])
    block = X.blocks[b].compute()
    i, j = np.argwhere(flag(block))[0]
    start = sum(X.chunks[0][:b])
    return int(start + i), int(j), float(block[i, j])


# -- lazy readers ---------------------------------------------------------------------------------
class NpyRows:
    """Array-like over a .npy file that reads the requested rows with `pread` (no mapping, so a
    worker's resident memory holds only the blocks it works on).  Pickles as its path."""

    def __init__(self, path):
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"{path}: unsupported .npy version {version}")
            self.shape, self.fortran, self.dtype = read_header(fh)
            self.offset = fh.tell()
        if self.dtype.hasobject:
            raise ValueError(f"{path}: holds Python objects; nmfkit never unpickles data files")
        if len(self.shape) != 2:
            raise ValueError(f"{path}: a lazily read .npy file must hold a 2-D matrix; got shape {self.shape}")
        self.path, self.ndim = os.path.abspath(path), 2
        self.mtime = os.stat(path).st_mtime_ns

    def __dask_tokenize__(self):
        return ("NpyRows", self.path, self.mtime, self.shape, str(self.dtype))

    def __getitem__(self, key):
        rows, cols = key
        start, stop, _ = rows.indices(self.shape[0])
        if self.fortran:                          # rows are strided on disk: map, copy, unmap
            return np.array(np.load(self.path, mmap_mode="r")[start:stop, cols])
        n, size = self.shape[1], self.dtype.itemsize
        out = np.empty((max(stop - start, 0), n), dtype=self.dtype)
        view = memoryview(out).cast("B")
        with open(self.path, "rb", buffering=0) as fh:
            done, at = 0, self.offset + start * n * size
            while done < view.nbytes:
                got = os.preadv(fh.fileno(), [view[done:]], at + done)
                if got <= 0:
                    raise OSError(f"{self.path}: file ends early")
                done += got
        return out[:, cols]


def read_lazy(path, chunk_rows=None):
    """A row-chunked dask array over a .npy file or a Zarr store, read only when computed.

    chunk_rows: rows per block (default: about 64 MiB per block, or the Zarr chunking)."""
    require_dask()
    import dask.array as da
    path = os.fspath(path)
    if path.rstrip("/").endswith(".zarr"):
        X = da.from_zarr(path)
        if chunk_rows:
            X = X.rechunk({0: chunk_rows, 1: -1})
        return X
    src = NpyRows(path)
    if chunk_rows is None:
        chunk_rows = max(1, (64 << 20) // max(1, src.shape[1] * src.dtype.itemsize))
    from dask.base import tokenize
    return da.from_array(src, chunks=(int(chunk_rows), src.shape[1]), asarray=True, fancy=False,
                         lock=False, name="npy-" + tokenize(src))


# -- per-block kernels (plain NumPy; run on the workers) ---------------------------------------
def _xht(Xi, Ht):
    return Xi @ Ht


def _xtw(Xi, Wi):
    return Xi.T @ Wi


def _add(*parts):
    return functools.reduce(np.add, parts)


def _kl_block(Xi, Wi, Ht, need):
    part = kl_products_numpy(Xi, Wi, Ht, (*need, "loss"))
    return part.get("QHt"), part.get("QtW"), part["loss"]


def _frobenius_block(Xi, Wi, Ht):
    D = Xi - Wi @ Ht.T
    return 0.5 * float(np.einsum("ij,ij->", D, D, dtype=np.float64))


class DaskEngine(Engine):
    """Engine over a row-chunked dask array (see the module docstring)."""

    kind = "dask"
    capabilities = frozenset({"core", "kl", "beta", "complete", "numpy_factors"})

    def __init__(self, X):
        self._dask = require_dask()
        X = as_row_chunked(X, X.dtype)
        self.X = X
        self.shape = tuple(int(s) for s in X.shape)
        self.dtype = X.dtype
        self._bounds = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(int)
        self._blocks = list(X.to_delayed().ravel())
        _, totals = scan(X, reuse=True)
        self.sqnorm, self.nnz, self._total = float(totals[4]), int(totals[3]), float(totals[5])
        self._col_sums = self._row_sums = None

    # -- helpers -----------------------------------------------------------
    def _split(self, F):
        b = self._bounds
        return [F[b[i]:b[i + 1]] for i in range(len(b) - 1)]

    def _shared(self, F):
        """One graph key holding F, read by every block's task."""
        return self._dask.delayed(F, traverse=False)

    def _tree(self, parts):
        """Pairwise-ish sum of delayed arrays/scalars, FAN_IN at a time (no single huge reduce)."""
        delayed = self._dask.delayed
        while len(parts) > 1:
            parts = [delayed(_add)(*parts[i:i + FAN_IN]) if len(parts[i:i + FAN_IN]) > 1 else parts[i]
                     for i in range(0, len(parts), FAN_IN)]
        return parts[0]

    # -- products ------------------------------------------------------------
    def XHt(self, Ht):
        H = self._shared(Ht)
        parts = [self._dask.delayed(_xht)(b, H) for b in self._blocks]
        return np.vstack(self._dask.compute(*parts))

    def XtW(self, W):
        delayed = self._dask.delayed
        parts = [delayed(_xtw)(b, Wi) for b, Wi in zip(self._blocks, self._split(W))]
        return self._dask.compute(self._tree(parts))[0]

    def kl_ratio(self, W, Ht, need=("QHt", "QtW")):
        """Q Ht, Qᵀ W and D_KL at (W, Ht), Q = X/(W Htᵀ) formed block by block: one pass."""
        H, need = self._shared(Ht), tuple(need)
        kl = self._dask.delayed(_kl_block, nout=3)
        XH, XW, loss = zip(*(kl(b, Wi, H, need) for b, Wi in zip(self._blocks, self._split(W))))
        want = (list(XH) if "QHt" in need else None, self._tree(list(XW)) if "QtW" in need else None,
                self._tree(list(loss)))
        XH, XW, loss = self._dask.compute(*want)
        out = {"loss": float(loss)}
        if "QHt" in need:
            out["QHt"] = np.vstack(XH)
        if "QtW" in need:
            out["QtW"] = XW
        return out

    def kl_divergence(self, W, Ht):
        return self.kl_ratio(W, Ht, need=())["loss"]

    def beta_products(self, W, Ht, beta, need=("XH", "XW")):
        """β-MU numerators/denominators (see DenseEngine.beta_products), one pass."""
        H, need = self._shared(Ht), tuple(need)
        bp = self._dask.delayed(beta_block, nout=3)
        WP, HP, loss = zip(*(bp(b, Wi, H, beta, need) for b, Wi in zip(self._blocks, self._split(W))))
        want = (list(WP) if "XH" in need else None, self._tree(list(HP)) if "XW" in need else None,
                self._tree(list(loss)))
        WP, HP, loss = self._dask.compute(*want)
        out = {"loss": float(loss)}
        if "XH" in need:
            out["num_W"] = np.vstack([p[0] for p in WP])
            out["den_W"] = np.vstack([p[1] for p in WP])
        if "XW" in need:
            out["num_H"], out["den_H"] = HP[0], HP[1]
        return out

    def beta_divergence(self, W, Ht, beta):
        return self.beta_products(W, Ht, beta, need=())["loss"]

    def frobenius_exact(self, W, Ht):
        """½‖X − W Htᵀ‖² entry by entry, block by block (one pass)."""
        H = self._shared(Ht)
        parts = [self._dask.delayed(_frobenius_block)(b, Wi, H) for b, Wi in zip(self._blocks, self._split(W))]
        return float(self._dask.compute(self._tree(parts))[0])

    # -- summaries -------------------------------------------------------------
    def X_col_sums(self):
        if self._col_sums is None:
            parts = [self._dask.delayed(np.sum)(b, axis=0, dtype=np.float64) for b in self._blocks]
            self._col_sums = self._dask.compute(self._tree(parts))[0]
        return self._col_sums

    def X_row_sums(self):
        if self._row_sums is None:
            parts = [self._dask.delayed(np.sum)(b, axis=1, dtype=np.float64) for b in self._blocks]
            self._row_sums = np.concatenate(self._dask.compute(*parts))
        return self._row_sums

    def mean(self) -> float:
        return self._total / (self.shape[0] * self.shape[1])

    def transpose(self):
        raise NotImplementedError("the dask engine keeps X row-chunked and has no transpose; "
                                  "pass X.T (rechunked by rows) to fit instead")
