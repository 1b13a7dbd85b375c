"""Streaming NMF: X read from disk in chunks of rows, in memory O((m + n)·k + chunk).

    result = nmfkit.fit("X.npy", rank=20, stream=True, chunk=10_000)        # exact epochs
    result = nmfkit.fit("X.npy", rank=20, stream="online", chunk=10_000)    # one online pass
    model = nmfkit.stream.StreamingNMF(20).partial_fit(X_part1).partial_fit(X_part2)
    W_new = model.transform(X_new)                                          # projection, no refit

Sources (`open_stream`): a `.npy` file (memory-mapped), a Matrix Market `.mtx(.gz)` file or a 10x
Genomics folder (converted once into a row-ordered CSR cache on disk by a two-pass counting sort),
an `.h5ad` file read backed (h5py; dense or CSR `X`), a Zarr array (zarr), a Parquet file (pyarrow;
one row per record, numeric columns), an array-like with row slicing (h5py dataset, zarr array,
NumPy array or memmap, SciPy sparse matrix), or any object with `shape`, `dtype` and
`read(start, stop)` returning rows start..stop.

Two modes, both through nmfkit's driver loop (stopping rules, history, callback, progress,
Ctrl-C):

exact   every iteration is a full pass over the chunks: the solver (hals, anls or mu) sees the
        same products as in memory, summed chunk by chunk, so the objective and iterates are
        those of the in-memory fit up to the order of floating-point summation, and the solver's
        guarantee (monotone) holds.  Cost per iteration: the solver's passes over X.
online  one pass per iteration, each chunk seen once (Mairal, Bach, Ponce & Sapiro, "Online
        learning for matrix factorization and sparse coding", JMLR 11, 2010): the chunk's rows of
        W are solved exactly given H (NNLS by block principal pivoting), the sufficient statistics
            A ← ρ A + W_bᵀ W_b,    B ← ρ B + X_bᵀ W_b
        are updated with the forgetting factor ρ (`forget`), and Ht = Hᵀ decreases the surrogate
        ½ tr(Ht A Htᵀ) − tr(Htᵀ B) by `sweeps` HALS sweeps on (A, B), warm-started.  The surrogate
        decreases at every chunk, but the objective over all rows is not monotone (the rows of W
        are solved with the H of their time).  KL and β losses use the online multiplicative
        updates of `nmfkit.minibatch` (Lefèvre, Bach & Févotte 2011) instead.  The objective is
        evaluated exactly at the end of each pass (one more read of X).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import time
import weakref

import numpy as np
import scipy.sparse as sp

from . import checkpoint as _checkpoint
from . import init as _init  # noqa: F401  (fills the init registry)
from . import solvers  # noqa: F401  (fills the solver registry)
from .driver import run
from .engines import make_engine
from .engines.memmap import BLOCK_BYTES, MemmapEngine
from .minibatch import OnlineHALS, OnlineMU
from .registry import INITS, auto_solver, resolve_loss, solver_spec
from .result import Factorization
from .solvers.base import Solver
from .validation import (
    check_factors,
    check_matrix,
    check_nonneg_float,
    check_positive_int,
    check_rank,
    check_seed,
    choose,
)

MODES = ("exact", "online")


# -- readers ---------------------------------------------------------------------------------------

def _working_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf":
        raise TypeError(f"streamed data must be numeric; got dtype {dtype}")
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


class ArrayReader:
    """Rows of anything 2-D with row slicing (NumPy array or memmap, h5py dataset, zarr array), or of a
    SciPy sparse matrix (as CSR), cast to float32/float64 a block at a time."""

    def __init__(self, array, name="array"):
        if len(getattr(array, "shape", ())) != 2:
            raise ValueError(f"{name}: a 2-D matrix is needed; got shape {getattr(array, 'shape', None)}")
        self.array = array.tocsr() if sp.issparse(array) else array
        self.shape = tuple(int(s) for s in array.shape)
        self.dtype = _working_dtype(array.dtype)
        self.name = name
        self.sparse = sp.issparse(array)

    def read(self, start, stop):
        block = self.array[start:stop]
        if self.sparse:
            return block.astype(self.dtype, copy=False)
        return np.asarray(block, dtype=self.dtype)


class H5adCSRReader:
    """Rows of a CSR matrix stored as an h5py group (data, indices, indptr), e.g. an `.h5ad`'s X."""

    def __init__(self, group, shape, name):
        self.data, self.indices, self.indptr = group["data"], group["indices"], group["indptr"]
        self.shape = tuple(int(s) for s in shape)
        self.dtype = _working_dtype(self.data.dtype)
        self.name = name
        self.sparse = True

    def read(self, start, stop):
        ptr = np.asarray(self.indptr[start:stop + 1], dtype=np.int64)
        lo, hi = int(ptr[0]), int(ptr[-1])
        data = np.asarray(self.data[lo:hi], dtype=self.dtype)
        return sp.csr_matrix((data, np.asarray(self.indices[lo:hi]), ptr - lo), shape=(stop - start, self.shape[1]))


class ParquetReader:
    """Rows of a Parquet file (one record per row of X, numeric columns), read a row group at a time."""

    def __init__(self, path):
        pq = _optional("pyarrow.parquet", "Parquet files", "parquet")
        self.file = pq.ParquetFile(path)
        schema = self.file.schema_arrow
        bad = [f.name for f in schema if not (str(f.type).startswith(("int", "uint", "float", "double", "bool")))]
        if bad:
            raise ValueError(f"{path}: column {bad[0]!r} is not numeric ({schema.field(bad[0]).type}); "
                             "stream a Parquet file whose columns are all numbers")
        meta = self.file.metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.shape = (int(self.offsets[-1]), len(schema))
        self.dtype = np.dtype(np.float64) if any(str(f.type) != "float" for f in schema) else np.dtype(np.float32)
        self.name = str(path)
        self.sparse = False
        self.preferred_rows = max(sizes) if sizes else 1
        self._cached = (None, None)

    def _group(self, i):
        if self._cached[0] != i:
            table = self.file.read_row_group(i)
            self._cached = (i, np.column_stack([np.asarray(c.to_numpy(zero_copy_only=False), dtype=self.dtype)
                                                for c in table.columns]))
        return self._cached[1]

    def read(self, start, stop):
        first = int(np.searchsorted(self.offsets, start, side="right")) - 1
        parts, row = [], start
        for g in range(first, len(self.offsets) - 1):
            if row >= stop:
                break
            block = self._group(g)
            lo = row - int(self.offsets[g])
            hi = min(stop, int(self.offsets[g + 1])) - int(self.offsets[g])
            parts.append(block[lo:hi])
            row = int(self.offsets[g]) + hi
        return parts[0] if len(parts) == 1 else np.vstack(parts)


class MtxReader:
    """Rows of a Matrix Market coordinate file (or a 10x folder's matrix.mtx), converted once into a CSR
    cache on disk by a two-pass counting sort (memory O(m) plus a batch of lines).  `transpose`
    streams the file's columns as rows (for a 10x folder: cells instead of genes)."""

    LINES = 1 << 20           # entries parsed per batch

    def __init__(self, path, transpose=False, cache_dir=None):
        self.name = str(path)
        gz = self.name.endswith(".gz")
        header, (m, n, nnz) = self._header(path, gz)
        if "coordinate" not in header or "general" not in header:
            raise ValueError(f"{path}: only 'coordinate general' Matrix Market files stream "
                             f"(this one is {' '.join(header.split()[2:])}); read it with nmfkit.io.read_matrix")
        pattern = "pattern" in header
        self.shape = (n, m) if transpose else (m, n)
        self.dtype = np.dtype(np.float64)
        self.sparse = True
        self._dir = tempfile.mkdtemp(prefix="nmfkit-mtx-", dir=cache_dir)
        weakref.finalize(self, shutil.rmtree, self._dir, True)
        rows_of = (lambda b: b[:, 1]) if transpose else (lambda b: b[:, 0])
        cols_of = (lambda b: b[:, 0]) if transpose else (lambda b: b[:, 1])
        counts = np.zeros(self.shape[0], np.int64)
        for batch in self._batches(path, gz, pattern):
            r = rows_of(batch).astype(np.int64) - 1
            if r.size and (r.min() < 0 or r.max() >= self.shape[0]):
                raise ValueError(f"{path}: an entry's index lies outside the declared size {m}×{n}")
            counts += np.bincount(r, minlength=self.shape[0])
        if counts.sum() != nnz:
            raise ValueError(f"{path}: the header declares {nnz} entries but the file holds {int(counts.sum())}")
        self.indptr = np.concatenate([[0], np.cumsum(counts)])
        self.indices = np.lib.format.open_memmap(os.path.join(self._dir, "indices.npy"), "w+", np.int64, (nnz,))
        self.data = np.lib.format.open_memmap(os.path.join(self._dir, "data.npy"), "w+", np.float64, (nnz,))
        fill = self.indptr[:-1].copy()
        for batch in self._batches(path, gz, pattern):
            r = rows_of(batch).astype(np.int64) - 1
            order = np.argsort(r, kind="stable")
            r = r[order]
            first = np.searchsorted(r, r, side="left")           # rank of each entry within its row
            pos = fill[r] + np.arange(r.size) - first
            self.indices[pos] = cols_of(batch)[order].astype(np.int64) - 1
            self.data[pos] = batch[order, 2]
            np.add.at(fill, r, 1)
        self.indices.flush()
        self.data.flush()
        self.indices = np.load(os.path.join(self._dir, "indices.npy"), mmap_mode="r")   # read-only from now on
        self.data = np.load(os.path.join(self._dir, "data.npy"), mmap_mode="r")

    @staticmethod
    def _header(path, gz):
        with (gzip.open(path, "rt") if gz else open(path, encoding="utf-8")) as fh:
            header = fh.readline().lower()
            if not header.startswith("%%matrixmarket"):
                raise ValueError(f"{path}: not a Matrix Market file (no %%MatrixMarket banner)")
            line = fh.readline()
            while line.startswith("%"):
                line = fh.readline()
            parts = line.split()
            if len(parts) != 3:
                raise ValueError(f"{path}: the size line should hold rows, columns and entries; got {line.strip()!r}")
            return header, tuple(int(p) for p in parts)

    def _batches(self, path, gz, pattern):
        with (gzip.open(path, "rt") if gz else open(path, encoding="utf-8")) as fh:
            line = fh.readline()
            while line.startswith("%"):
                line = fh.readline()        # the size line ends the header
            while True:
                batch = np.loadtxt(fh, max_rows=self.LINES, ndmin=2, comments="%")
                if batch.size == 0:
                    return
                if pattern:
                    batch = np.column_stack([batch[:, :2], np.ones(len(batch))])
                yield batch
                if len(batch) < self.LINES:
                    return

    def read(self, start, stop):
        lo, hi = int(self.indptr[start]), int(self.indptr[stop])
        return sp.csr_matrix((np.asarray(self.data[lo:hi]), np.asarray(self.indices[lo:hi]),
                              self.indptr[start:stop + 1] - lo), shape=(stop - start, self.shape[1]))


def _optional(module, what, extra):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"streaming {what} needs the optional package {module.split('.')[0]!r} "
                          f"(pip install 'nmfkit[{extra}]' or pip install {module.split('.')[0]})") from None


def _h5ad_reader(path):
    h5py = _optional("h5py", ".h5ad files", "anndata")
    f = h5py.File(path, "r")
    if "X" not in f:
        f.close()
        raise ValueError(f"{path}: no X matrix in this .h5ad file")
    X = f["X"]
    if isinstance(X, h5py.Dataset):
        reader = ArrayReader(X, str(path))
    else:
        encoding = X.attrs.get("encoding-type", "")
        encoding = encoding.decode() if isinstance(encoding, bytes) else str(encoding)
        if encoding != "csr_matrix":
            f.close()
            raise ValueError(f"{path}: X is stored as {encoding or 'an unknown group'}; only dense or CSR (row-"
                             "compressed) X can be read in chunks of rows: rewrite it as CSR")
        reader = H5adCSRReader(X, X.attrs["shape"], str(path))
    reader.file = f
    weakref.finalize(reader, f.close)
    return reader


def _tenx_matrix(folder):
    for name in ("matrix.mtx.gz", "matrix.mtx"):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def open_stream(source, *, transpose=False):
    """A chunk reader for `source` (see the module docstring).  `transpose` streams the columns of a
    Matrix Market file or 10x folder as rows (10x: cells × genes instead of genes × cells)."""
    if hasattr(source, "read") and hasattr(source, "shape") and hasattr(source, "dtype") \
            and not isinstance(source, (np.ndarray, str, os.PathLike)) and not sp.issparse(source):
        return source                                   # already a reader
    if isinstance(source, (str, os.PathLike)):
        return _open_path(os.fspath(source), transpose)
    if sp.issparse(source) or hasattr(source, "__getitem__") and hasattr(source, "dtype"):
        return ArrayReader(source, type(source).__name__)
    raise TypeError(f"cannot stream a {type(source).__name__}: give a file path (.npy, .mtx, .h5ad, .zarr, "
                    ".parquet, a 10x folder), an array with row slicing, or a reader with read(start, stop)")


def _open_path(path, transpose):
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or folder")
    lower = path.lower().rstrip("/\\")
    if transpose and not (lower.endswith((".mtx", ".mtx.gz")) or os.path.isdir(path) and _tenx_matrix(path)):
        raise ValueError("transpose=True applies to Matrix Market files and 10x folders only")
    if lower.endswith(".npy"):
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
        return ArrayReader(array, path)
    if lower.endswith((".mtx", ".mtx.gz")):
        return MtxReader(path, transpose)
    if os.path.isdir(path) and _tenx_matrix(path):
        return MtxReader(_tenx_matrix(path), transpose)
    if lower.endswith(".h5ad"):
        return _h5ad_reader(path)
    if lower.endswith(".parquet") or lower.endswith(".pq"):
        return ParquetReader(path)
    if lower.endswith(".zarr"):
        zarr = _optional("zarr", "Zarr arrays", "zarr")
        node = zarr.open(path, mode="r")
        array = node if hasattr(node, "dtype") else node["X"] if "X" in node else None
        if array is None or not hasattr(array, "dtype"):
            raise ValueError(f"{path}: a Zarr array (or a group with an array 'X') is needed")
        return ArrayReader(array, path)
    raise ValueError(f"{path}: cannot tell how to stream this file; use .npy, .mtx(.gz), .h5ad, .zarr, "
                     ".parquet or a 10x folder (matrix.mtx with features and barcodes)")


# -- validation and the engine ---------------------------------------------------------------------

class _BlockChecker:
    """Checks each block of the first pass (finite, non-negative) and digests X's values."""

    def __init__(self, name):
        self.name = name
        self.digest = hashlib.blake2b(digest_size=16)

    def __call__(self, block, start):
        values = block.data if sp.issparse(block) else block
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(f"{self.name}: X has a non-finite entry ({values[bad][0]!r}) in the rows from {start}; "
                             "NMF needs finite data")
        if values.size and values.min() < 0:
            raise ValueError(f"{self.name}: X has a negative entry ({values.min()!r}) in the rows from {start}; "
                             "NMF needs non-negative data")
        if sp.issparse(block):
            block = sp.csr_matrix(block, copy=True)      # canonical form of a copy: a reader's arrays stay as read
            block.sum_duplicates()
            for part in (block.indptr.astype(np.int64), block.indices.astype(np.int64), block.data):
                self.digest.update(np.ascontiguousarray(part).tobytes())
        else:
            self.digest.update(np.ascontiguousarray(block).tobytes())


def _chunk_rows(chunk, reader):
    if chunk is not None:
        return check_positive_int(chunk, "chunk")
    preferred = getattr(reader, "preferred_rows", None)
    if preferred:
        return int(preferred)
    return max(1, BLOCK_BYTES // max(reader.shape[1] * reader.dtype.itemsize, 1))


def stream_engine(source, chunk=None, *, transpose=False):
    """(engine, digest): the chunked engine over `source`'s reader, after one validating pass."""
    reader = open_stream(source, transpose=transpose)
    m, n = reader.shape
    if m < 1 or n < 1:
        raise ValueError(f"{getattr(reader, 'name', 'X')}: X is empty ({m}×{n})")
    checker = _BlockChecker(getattr(reader, "name", "X"))
    engine = MemmapEngine(reader, chunk_rows=_chunk_rows(chunk, reader), check=checker)
    if engine.sqnorm == 0:
        raise ValueError(f"{checker.name}: X is all zeros; there is nothing to factorize")
    return engine, checker.digest.hexdigest()


# -- the fits --------------------------------------------------------------------------------------

def fit_stream(source, rank, *, stream="exact", chunk=None, transpose=False, solver="auto", loss=None,
               beta=None, init="auto", max_iter=None, tol=1e-4, seed=None, n_runs=1, callback=None,
               time_limit=None, verbose=False, objective_every=None, checkpoint=None, checkpoint_every=50,
               resume=None, forget=1.0, sweeps=3, track=False, mask=None, missing="error",
               **solver_options) -> Factorization:
    """`nmfkit.fit(source, rank, stream=…, chunk=…)`: see the module docstring.  `stream` is True or
    "exact" (full passes), or "online" (one pass per iteration; `max_iter` passes, default 1;
    `forget` = ρ, `sweeps` = HALS sweeps on the statistics per chunk).  `chunk` = rows per chunk
    (default: the reader's row groups, or 64 MiB of rows)."""
    mode = "exact" if stream is True or stream is None else choose(stream, MODES, "stream")
    if track:
        raise ValueError("track= is not available for streamed fits (its quantities need extra passes)")
    if mask is not None or missing != "error":
        raise ValueError("mask= and missing='mask' need in-memory data; streamed data must be complete")
    engine, digest = stream_engine(source, chunk, transpose=transpose)
    rank_checked = check_rank(rank, engine.shape)
    seed = check_seed(seed)
    tol = check_nonneg_float(tol, "tol")
    time_limit = check_nonneg_float(time_limit, "time_limit", allow_none=True)
    n_runs = check_positive_int(n_runs, "n_runs")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable: callback(state) -> bool")
    if mode == "online":
        return _fit_online(engine, rank_checked, loss, beta, max_iter, seed, callback, time_limit, verbose,
                           check_nonneg_float(forget, "forget"), check_positive_int(sweeps, "sweeps"),
                           solver, init, checkpoint, resume, n_runs, solver_options)
    return _fit_exact(engine, digest, rank_checked, solver, loss, beta, init, max_iter, tol, seed, n_runs,
                      callback, time_limit, verbose, objective_every, checkpoint, checkpoint_every, resume,
                      solver_options)


def _fit_exact(engine, digest, rank, solver, loss, beta, init, max_iter, tol, seed, n_runs, callback,
               time_limit, verbose, objective_every, checkpoint, checkpoint_every, resume, solver_options):
    loss, beta_value = resolve_loss("frobenius" if loss is None else loss, beta)
    if solver == "auto":
        solver = auto_solver(loss, engine.kind, False)
    spec = solver_spec(solver, loss, engine.kind)
    max_iter = spec.max_iter if max_iter is None else check_positive_int(max_iter, "max_iter")
    every = None if objective_every is None else check_positive_int(objective_every, "objective_every")
    solver_obj = spec.cls(engine, loss, beta_value, **solver_options)     # bad options fail now
    given, init_name = None, init
    if isinstance(init, str):
        init_name = choose(spec.default_init if init == "auto" else init, INITS, "init")
        if n_runs > 1 and init_name in ("nndsvd", "nndsvda"):
            raise ValueError(f"n_runs={n_runs} needs a random init, but {init_name!r} is deterministic; "
                             "use init='random' or 'nndsvdar'")
    else:
        given, init_name = check_factors(init, engine.shape, rank, engine.dtype), "given"
    ckpt, resumed = _checkpointing(checkpoint, checkpoint_every, resume, n_runs, engine, digest, rank, spec,
                                   loss, beta_value, solver_options)
    started, runs, best = time.perf_counter(), [], None
    for r, child in enumerate(np.random.SeedSequence(seed).spawn(n_runs)):
        rng = np.random.default_rng(child)
        if resumed is not None:
            W0 = Ht0 = None
        elif given is not None:
            W0, Ht0 = given[0], np.ascontiguousarray(given[1].T)
        else:
            W0, Ht0 = INITS[init_name](engine, rank, rng)
        if r > 0:
            solver_obj = spec.cls(engine, loss, beta_value, **solver_options)
        solver_obj.rng, solver_obj.given_start = rng, given is not None
        out = run(solver_obj, W0, Ht0, max_iter=max_iter, tol=tol, time_limit=time_limit, callback=callback,
                  monotone=spec.monotone and solver_obj.monotone, progress=verbose,
                  label=f"{spec.name} (streamed)", checkpoint=ckpt, resume=resumed,
                  objective_every=solver_obj.objective_every if every is None else every)
        runs.append({"run": r, "seed": int(child.generate_state(1)[0]), "loss": out.objective,
                     "n_iter": out.n_iter, "stop_reason": out.stop_reason, "seconds": out.seconds})
        if best is None or out.objective < best.objective:
            best = out
        if out.stop_reason == "interrupted":
            break
    options = {"solver": spec.name, "loss": loss, "beta": beta_value, "init": init_name, "max_iter": max_iter,
               "tol": tol, "seed": seed, "n_runs": n_runs, "stream": "exact"}
    return _result(engine, best, options, runs, started, **solver_options)


def _checkpointing(checkpoint, every, resume, n_runs, engine, digest, rank, spec, loss, beta, solver_options):
    if checkpoint is None and resume is None:
        return None, None
    if n_runs > 1:
        raise ValueError("checkpoint/resume follow one run; use n_runs=1")
    from .fit import effective_options
    fingerprint = {"shape": list(engine.shape), "rank": rank, "solver": spec.name, "loss": loss, "beta": beta,
                   "dtype": str(engine.dtype), "data": "stream:" + digest,
                   "options": effective_options(spec, solver_options)}
    if checkpoint is not None:
        _checkpoint.check_target(checkpoint)
    resumed = None
    if resume is not None:
        resumed = _checkpoint.load(resume)
        _checkpoint.check_fingerprint(resumed["fingerprint"], fingerprint, resume)
    ckpt = None if checkpoint is None else {"path": checkpoint, "fingerprint": fingerprint,
                                            "every": check_positive_int(every, "checkpoint_every")}
    return ckpt, resumed


def _result(engine, best, options, runs, started, **solver_options):
    rel = float(np.sqrt(max(2.0 * engine.frobenius_exact(best.W, best.Ht), 0.0) / engine.sqnorm))
    options = {**options, "chunk": engine.rows_per_block, "dtype": str(engine.dtype), "engine": engine.kind,
               "source": getattr(engine.reader, "name", type(engine.reader).__name__), **solver_options}
    return Factorization(W=best.W, H=np.ascontiguousarray(best.Ht.T), loss=best.objective, relative_error=rel,
                         n_iter=best.n_iter, converged=best.converged, stop_reason=best.stop_reason,
                         history=best.history, options=options, runs=runs,
                         seconds=time.perf_counter() - started, monotonicity=best.monotonicity)


class OnlinePass(Solver):
    """One online pass over the chunks per step (see the module docstring); not a registered solver.

    The rows of W of a chunk are replaced by its codes; H is the learner's dictionary after the pass.
    Not monotone: each chunk's codes are solved with the H of their time."""

    name = "online"
    requires = frozenset({"core", "numpy_factors"})
    returns_last_iterate = True

    def __init__(self, engine, loss, beta, learner, forget):
        super().__init__(engine, loss, beta)
        self.learner, self.forget = learner, forget
        self.monotone = False

    def objective(self, W, Ht):
        if not W.any():       # the start W = 0: ½‖X‖² for Frobenius (no pass needed); D(X‖0) = ∞ otherwise
            return 0.5 * self.engine.sqnorm if self.loss == "frobenius" else float("inf")
        return super().objective(W, Ht)

    def step(self, W, Ht):
        W = W.copy()
        for s, e, Xb in self.engine._blocks():
            W[s:e] = self.learner.learn(Xb, self.forget)
        Ht = self.learner.Ht.copy()
        return W, Ht, (self.objective(W, Ht) if self.want_objective else None)


def _fit_online(engine, rank, loss, beta, max_iter, seed, callback, time_limit, verbose, forget, sweeps,
                solver, init, checkpoint, resume, n_runs, solver_options):
    if solver != "auto" or init != "auto" or checkpoint is not None or resume is not None or n_runs != 1 \
            or solver_options:
        raise ValueError("stream='online' runs its own online updates from a start learned on the first chunk: "
                         "solver=, init=, n_runs=, checkpoints and solver options apply to stream='exact' only")
    if not 0 < forget <= 1:
        raise ValueError(f"forget must lie in (0, 1] (1: every chunk counts equally); got {forget!r}")
    loss, beta_value = resolve_loss("frobenius" if loss is None else loss, beta)
    passes = 1 if max_iter is None else check_positive_int(max_iter, "max_iter")
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    learner = make_learner(next(engine._blocks())[2], rank, loss, beta_value, rng, sweeps)
    solver_obj = OnlinePass(engine, loss, beta_value, learner, forget)
    solver_obj.rng = rng
    W0 = np.zeros((engine.shape[0], rank), engine.dtype)
    started = time.perf_counter()
    out = run(solver_obj, W0, learner.Ht.copy(), max_iter=passes, tol=0.0, time_limit=time_limit,
              callback=callback, monotone=False, progress=verbose, label="online (streamed)")
    options = {"solver": "online", "loss": loss, "beta": beta_value, "init": "nndsvda (first chunk)",
               "max_iter": passes, "tol": 0.0, "seed": seed, "n_runs": 1, "stream": "online",
               "forget": forget, "sweeps": sweeps}
    runs = [{"run": 0, "seed": None, "loss": out.objective, "n_iter": out.n_iter, "stop_reason": out.stop_reason,
             "seconds": out.seconds}]
    return _result(engine, out, options, runs, started)


def make_learner(first_block, rank, loss, beta, rng, sweeps=3):
    """The online learner for a loss, its dictionary started by NNDSVDa on the first chunk."""
    engine = make_engine(first_block)
    if rank > min(engine.shape):
        raise ValueError(f"rank={rank} exceeds the first chunk's size {engine.shape[0]}×{engine.shape[1]}; "
                         "use a larger chunk")
    _, Ht0 = INITS["nndsvda"](engine, rank, rng)
    Ht0 = Ht0.astype(engine.dtype, copy=False)
    if loss == "frobenius":
        return OnlineHALS(Ht0.T, sweeps=sweeps)
    return OnlineMU(Ht0.T, beta)


class StreamingNMF:
    """An NMF model learned from data arriving in chunks of rows (samples × features), in fixed memory.

    `partial_fit(X_chunk)` updates the dictionary H (k × features) from one chunk (its rows' codes
    are solved given H, then H from the accumulated statistics, older chunks weighted by `forget`);
    `transform(X_new)` projects new rows on H without changing it (`nmfkit.project`: exact NNLS for
    Frobenius, multiplicative updates otherwise).  Frobenius uses Mairal et al. (2010); KL and β
    losses the online multiplicative updates of Lefèvre, Bach & Févotte (2011)."""

    def __init__(self, rank, *, loss="frobenius", beta=None, forget=1.0, sweeps=3, seed=None):
        self.rank = check_positive_int(rank, "rank")
        self.loss, self.beta = resolve_loss(loss, beta)
        self.forget = check_nonneg_float(forget, "forget")
        if not 0 < self.forget <= 1:
            raise ValueError(f"forget must lie in (0, 1] (1: every chunk counts equally); got {forget!r}")
        self.sweeps = check_positive_int(sweeps, "sweeps")
        self.rng = np.random.default_rng(np.random.SeedSequence(check_seed(seed)).spawn(1)[0])   # as fit's run 1
        self.learner, self.n_samples_seen = None, 0

    @property
    def H(self) -> np.ndarray:
        if self.learner is None:
            raise ValueError("the model has seen no data yet: call partial_fit first")
        return np.ascontiguousarray(self.learner.Ht.T)

    def partial_fit(self, X_chunk):
        """Learn from one chunk of rows (NumPy array or SciPy sparse matrix); returns self."""
        X_chunk = check_matrix(X_chunk, "X_chunk", allow_zero=self.learner is not None)
        if self.learner is None:
            self.learner = make_learner(X_chunk, self.rank, self.loss, self.beta, self.rng, self.sweeps)
        elif X_chunk.shape[1] != self.learner.Ht.shape[0]:
            raise ValueError(f"X_chunk has {X_chunk.shape[1]} columns but the model was fitted on "
                             f"{self.learner.Ht.shape[0]}; every chunk holds the same features (columns)")
        self.learner.learn(X_chunk, self.forget)
        self.n_samples_seen += X_chunk.shape[0]
        return self

    def transform(self, X_new) -> np.ndarray:
        """Codes W_new (rows × k) of new rows on the learned H, H unchanged."""
        from .project import project
        H = self.H
        X_new = check_matrix(X_new, "X_new", allow_zero=True)
        if X_new.shape[1] != H.shape[1]:
            raise ValueError(f"X_new has {X_new.shape[1]} columns but the model has {H.shape[1]} features")
        how = {"beta": self.beta} if self.loss not in ("frobenius", "kl", "is") else {"loss": self.loss}
        return np.ascontiguousarray(project(H.T, X_new.T, **how).T)
