"""Input checks, run before any work, with errors that name the problem.

Every public entry point calls `check_matrix` and `check_rank`; a malformed
input raises `ValueError` or `TypeError` saying what is wrong and where,
never an exception from deep inside NumPy.
"""
from __future__ import annotations

import numbers

import numpy as np

from .engines import array_ops, is_dask, is_sparse, is_torch
from .engines.sparse import canonical_csr


def _as_array(X, name, allow_nan=False):
    if is_sparse(X):
        return X
    if isinstance(X, np.ma.MaskedArray):
        return _unmasked(X, name, allow_nan)
    if hasattr(X, "to_numpy") and hasattr(X, "dtypes"):  # pandas DataFrame
        return _frame_values(X, name, allow_nan)
    try:
        A = X if isinstance(X, np.memmap) else np.asarray(X)   # a memmap stays mapped (its engine)
    except (TypeError, ValueError) as exc:  # ragged nested lists and the like
        raise TypeError(f"{name} must be a 2-D numeric matrix; could not convert it: {exc}") from None
    return A


def precheck(X, name: str = "X", hint: str | None = None) -> None:
    """The checks that must run before another library's converter sees X (scikit-learn's
    `check_array`, AnnData slicing): a sparse matrix's structure, a masked array's mask."""
    if is_sparse(X):
        check_sparse_structure(X, name)
    elif isinstance(X, np.ma.MaskedArray):
        _unmasked(X, name, False, hint)


def _unmasked(X, name, allow_nan, hint=None):
    """A masked array's masked entries are missing values: NaN (in a copy) where missing
    entries are allowed, else refused."""
    hidden = np.ma.getmaskarray(X)
    if not hidden.any():
        return np.asarray(X.data)
    first = tuple(int(v) for v in np.argwhere(hidden)[0])
    if not allow_nan:
        hint = hint or ("Pass missing='mask' to treat them as missing (solvers that support it), "
                        f"or fill them first with {name}.filled(value)")
        raise ValueError(f"{name} has {int(hidden.sum())} masked entries (a NumPy masked array); the first is "
                         f"at {first}. {hint}")
    A = X.data.astype(resolve_dtype(X.dtype, name))    # a copy: the caller's array is untouched
    A[hidden] = np.nan
    return A


def _frame_values(df, name, allow_nan):
    """A DataFrame's values; a non-numeric column, or NA in a nullable column, is named."""
    from pandas.api.types import is_numeric_dtype
    dtypes = list(df.dtypes)
    for j, dtype in enumerate(dtypes):
        if not is_numeric_dtype(dtype):
            column = df.iloc[:, j]
            example = next(((label, v) for label, v in column.items()
                            if not isinstance(v, numbers.Number) and v is not None), None)
            seen = f", e.g. {example[1]!r} in row {example[0]!r}" if example else ""
            raise TypeError(f"{name} column {df.columns[j]!r} is not numeric (dtype {dtype}{seen}); "
                            "NMF needs numbers: drop the column or make it the index")
    nullable = [j for j, dtype in enumerate(dtypes) if not isinstance(dtype, np.dtype)]   # Int64, Float64, …
    if not nullable:
        return df.to_numpy()
    for j in nullable:
        na = df.iloc[:, j].isna().to_numpy()
        if na.any() and not allow_nan:
            raise ValueError(f"{name} column {df.columns[j]!r} holds {int(na.sum())} missing values (NA); the "
                             f"first is in row {df.index[int(np.argmax(na))]!r}. Pass missing='mask' to treat "
                             "them as missing (solvers that support it), or fill them first (df.fillna(0))")
    return df.to_numpy(dtype=resolve_dtype(np.result_type(*map(_numpy_dtype, dtypes)), name), na_value=np.nan)


def _numpy_dtype(dtype) -> np.dtype:
    """The NumPy dtype behind a pandas column dtype (nullable Int64/Float32, Sparse[…], …)."""
    for inner in (dtype, getattr(dtype, "numpy_dtype", None), getattr(dtype, "subtype", None)):
        if isinstance(inner, np.dtype):
            return inner
    return np.dtype(np.float64)


def resolve_dtype(dtype: np.dtype, name: str = "X") -> np.dtype:
    """float32 stays float32, float64 stays float64; ints, bools and float16 become floats."""
    if dtype == np.float32 or dtype == np.float64:
        return np.dtype(dtype)
    if dtype == np.float16:
        return np.dtype(np.float32)
    if np.issubdtype(dtype, np.integer) or dtype == np.bool_ or np.issubdtype(dtype, np.floating):
        return np.dtype(np.float64)
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError(f"{name} is complex ({dtype}); NMF needs real non-negative values")
    raise TypeError(f"{name} has non-numeric dtype {dtype}; NMF needs a numeric matrix")


def _first(mask_positions, shape_hint=None):
    idx = np.argwhere(mask_positions)
    return tuple(int(v) for v in idx[0])


MISSING_HINT = " Mark missing entries with mask= or missing='mask' (solvers that support it)."


def _nonfinite_error(name, n_nan, n_inf, where, hint) -> ValueError:
    what = ", ".join(s for s in (f"{int(n_nan)} NaN" if n_nan else "", f"{int(n_inf)} infinite" if n_inf else "") if s)
    return ValueError(f"{name} contains {what} entries; the first is at ({where[0]}, {where[1]}).{hint}")


def _negative_error(name, count, where, value) -> ValueError:
    return ValueError(f"{name} has {int(count)} negative entries; the first is {name}[{where[0]}, {where[1]}] = "
                      f"{value:g}. NMF needs non-negative data (shift or clip it first).")


def _all_zero_error(name) -> ValueError:
    return ValueError(f"{name} is all zeros; there is nothing to factorize")


def _check_shape(shape: tuple, name: str) -> None:
    """Refuse anything but a non-empty 2-D shape, saying what it is."""
    if len(shape) != 2:
        if len(shape) == 1:
            raise ValueError(f"{name} must be 2-D (m×n); got a 1-D array of length {shape[0]}. "
                             "Reshape it with X.reshape(-1, 1) or X.reshape(1, -1).")
        raise ValueError(f"{name} must be 2-D (m×n); got {len(shape)} dimensions with shape {shape}")
    m, n = shape
    if m == 0 or n == 0:
        raise ValueError(f"{name} is empty (shape {m}×{n}); NMF needs at least one row and one column")


def check_matrix(X, name: str = "X", allow_nan: bool = False, allow_zero: bool = False):
    """Return X as a float NumPy array or CSR matrix, or raise a clear error.

    A dask array stays lazy: it is checked in one pass (see `_check_dask`); a torch
    tensor stays a tensor on its device (see `_check_torch`)."""
    if is_dask(X):
        return _check_dask(X, name, allow_nan, allow_zero)
    if is_torch(X):
        return _check_torch(X, name, allow_nan, allow_zero)
    A = _as_array(X, name, allow_nan)
    _check_shape(tuple(A.shape), name)
    dtype = resolve_dtype(A.dtype, name)
    if is_sparse(A):
        A = canonical_csr(check_sparse_structure(A, name).astype(dtype, copy=False))
        blocks = [(0, A.data)]
    else:
        A = A.astype(dtype, copy=False)
        step = max(1, CHECK_BLOCK_ENTRIES // max(A.shape[1], 1))   # bounded temporaries, also for a memmap
        blocks = ((s, A[s:s + step]) for s in range(0, A.shape[0], step))
    n_nan = n_inf = n_neg = 0
    first_bad = first_neg = None          # (row offset of the block, flags) of the first offending block
    any_value = any_finite = False
    for start, B in blocks:
        finite = np.isfinite(B)
        if not finite.all():
            nan = int(np.isnan(B).sum())
            n_nan, n_inf = n_nan + nan, n_inf + int(B.size - finite.sum() - nan)
            first_bad = first_bad or (start, ~finite)
        neg = B < 0
        if neg.any():
            n_neg += int(neg.sum())
            first_neg = first_neg or (start, neg)
        any_finite = any_finite or bool(finite.any())
        any_value = any_value or bool(np.any(B[finite]))
    if first_bad is not None and not (allow_nan and n_inf == 0):
        where = _locate_in_block(A, *first_bad)
        raise _nonfinite_error(name, n_nan, n_inf, where, MISSING_HINT if n_nan else "")
    if first_neg is not None:
        where = _locate_in_block(A, *first_neg)
        raise _negative_error(name, n_neg, where, _value(A, where))
    if not allow_zero and not any_value:
        if (A.nnz if is_sparse(A) else A.size) and not any_finite:
            stored = " stored" if is_sparse(A) else ""
            raise ValueError(f"{name}: every{stored} entry is missing (NaN); there is nothing to factorize")
        raise _all_zero_error(name)
    return A


CHECK_BLOCK_ENTRIES = 1 << 22   # entries of a dense block checked at once (4 Mi: a few MB of flags)


def _locate_in_block(A, start, flags):
    """(i, j) of the first flagged entry of a block of rows starting at row `start` (or of CSR data)."""
    if is_sparse(A):
        return _locate(A, flags)
    i, j = _first(flags)
    return (start + i, j)


# -- sparse structure ---------------------------------------------------------------------------
_AXES = {"csr": ("row", "column"), "csc": ("column", "row"), "bsr": ("block row", "block column"),
         "bsc": ("block column", "block row")}     # BSC: torch tensors only


def check_sparse_structure(A, name: str = "X", error=ValueError):
    """Check a SciPy sparse matrix's index arrays before anything reads through them.

    CSR/CSC/BSR: integer 1-D index arrays, indptr of length (rows or columns) + 1, starting at 0,
    non-decreasing, ending at most at the number of stored indices and values, and every stored
    index in range; COO: row and column indices in range; LIL, DOK and DIA are converted to CSR
    (SciPy's conversions of these check or clip their indices) and the result is checked.
    O(nnz), nothing is copied for valid input.  Returns A itself for CSR/CSC/COO with signed
    indices, else a new matrix (unsigned indices become int64; other formats become CSR).
    Raises `error` (a ValueError by default) whose one-line message starts with `name` and names
    the first offending entry; the caller's matrix is never modified."""
    fmt = A.format
    if fmt in _AXES:
        _check_compressed(A, fmt, name, error)
        return _signed(A) if fmt != "bsr" else _converted(A, name, error)
    if fmt == "coo":
        _check_coo(A, name, error)
        return _signed(A)
    if fmt == "dia":
        offsets = _index_array(A.offsets, "the diagonal offsets", name, error)
        data = np.asarray(A.data)
        if data.ndim != 2 or data.shape[0] != len(offsets):
            raise error(f"{name}: a DIA matrix with {len(offsets)} diagonal offsets holds values of shape "
                        f"{data.shape}; it needs one row of values per offset")
        if len(np.unique(offsets)) != len(offsets):
            raise error(f"{name}: the DIA matrix's diagonal offsets repeat a value; each must be distinct")
    if fmt == "lil":
        rows, data = np.asarray(A.rows), np.asarray(A.data)
        if rows.shape != (A.shape[0],) or data.shape != (A.shape[0],):
            raise error(f"{name}: a LIL matrix with {A.shape[0]} rows holds {rows.size} index lists and "
                        f"{data.size} value lists")
        for i, (r, d) in enumerate(zip(rows, data)):
            if len(r) != len(d):
                raise error(f"{name}: row {i} of the LIL matrix has {len(r)} column indices but {len(d)} values")
    return _converted(A, name, error)


def _signed(A):
    """A with signed index arrays (SciPy's routines refuse unsigned ones): A itself, or a matrix
    over the same values with int64 copies of its (checked, so in range) indices."""
    if A.format == "coo":
        if A.row.dtype.kind == "i" and A.col.dtype.kind == "i":
            return A
        return type(A)((A.data, (A.row.astype(np.int64), A.col.astype(np.int64))), shape=A.shape)
    if A.indices.dtype.kind == "i" and A.indptr.dtype.kind == "i":
        return A
    return type(A)((A.data, A.indices.astype(np.int64), A.indptr.astype(np.int64)), shape=A.shape)


def _converted(A, name, error):
    """A (LIL, DOK, DIA, BSR) as CSR, itself checked: SciPy's own errors become one line."""
    try:
        B = A.tocsr()
    except (ValueError, TypeError, IndexError, OverflowError) as exc:
        raise error(f"{name}: not a valid {A.format.upper()} sparse matrix ({str(exc).splitlines()[0]})") from None
    _check_compressed(B, "csr", name, error)
    return B


def _index_array(v, what, name, error):
    v = np.asarray(v)
    if v.ndim != 1 or v.dtype.kind not in "iu":
        raise error(f"{name}: {what} must be a 1-D integer array; got {v.ndim}-D {v.dtype}")
    return v


def _check_compressed(A, fmt, name, error):
    major_axis, minor_axis = _AXES[fmt]
    R, C = A.blocksize if fmt in ("bsr", "bsc") else (1, 1)
    rows, cols = A.shape[0] // R, A.shape[1] // C
    major, minor = (cols, rows) if fmt in ("csc", "bsc") else (rows, cols)
    indptr = _index_array(A.indptr, "indptr", name, error)
    indices = _index_array(A.indices, f"the {minor_axis} indices", name, error)
    data = np.asarray(A.data)
    blocked = fmt in ("bsr", "bsc")
    if data.ndim != (3 if blocked else 1):
        raise error(f"{name}: the stored values form a {data.ndim}-D array; a {fmt.upper()} matrix needs "
                    f"{'a 3-D' if blocked else 'a 1-D'} one")
    if len(indptr) != major + 1:
        raise error(f"{name}: indptr has {len(indptr)} entries; a {fmt.upper()} matrix with {major} "
                    f"{major_axis}s needs {major + 1}")
    if indptr[0] != 0:
        raise error(f"{name}: indptr starts at {int(indptr[0])}; it must start at 0")
    steps = np.diff(indptr)
    if steps.size and steps.min() < 0:
        i = int(np.argmax(steps < 0))
        raise error(f"{name}: indptr decreases at {major_axis} {i} (indptr[{i}] = {int(indptr[i])} > "
                    f"indptr[{i + 1}] = {int(indptr[i + 1])}); it must be non-decreasing")
    nnz = int(indptr[-1])
    if nnz > len(indices) or nnz > len(data):
        raise error(f"{name}: indptr ends at {nnz}, but there are only {len(indices)} stored indices and "
                    f"{len(data)} values")
    stored = indices[:nnz]
    if nnz and (stored.min() < 0 or stored.max() >= minor):
        p = int(np.argmax((stored < 0) | (stored >= minor)))
        at = int(np.searchsorted(indptr, p, side="right") - 1)
        v = int(stored[p])
        what = "is negative" if v < 0 else f"is out of range for {minor} {minor_axis}s"
        raise error(f"{name}: {minor_axis} index {v} at entry {p} ({major_axis} {at}) {what}")


def _check_coo(A, name, error):
    row = _index_array(A.row, "the row indices", name, error)
    col = _index_array(A.col, "the column indices", name, error)
    data = np.asarray(A.data)
    if data.ndim != 1 or not len(row) == len(col) == len(data):
        raise error(f"{name}: a COO matrix needs as many row indices, column indices and values; got "
                    f"{len(row)}, {len(col)} and {data.size}")
    for idx, axis, size in ((row, "row", A.shape[0]), (col, "column", A.shape[1])):
        if idx.size and (idx.min() < 0 or idx.max() >= size):
            p = int(np.argmax((idx < 0) | (idx >= size)))
            v = int(idx[p])
            what = "is negative" if v < 0 else f"is out of range for {size} {axis}s"
            raise error(f"{name}: {axis} index {v} at entry {p} {what}")


def _check_dask(X, name, allow_nan, allow_zero):
    """check_matrix for a dask array without loading it: one lazy pass counts NaN, infinite,
    negative and non-zero entries per block; the first offender is then located by reading
    only its block.  Returns X cast and row-chunked for the dask engine."""
    from .engines.dask_engine import as_row_chunked, first_flagged, scan
    if type(X).__name__ != "Array":
        raise TypeError(f"{name} is a dask {type(X).__name__}; pass a dask array "
                        "(e.g. df.to_dask_array(lengths=True))")
    _check_shape(tuple(X.shape), name)
    A = as_row_chunked(X, resolve_dtype(X.dtype, name))
    per_block, (n_nan, n_inf, n_neg, nnz, _, _) = scan(A)
    if n_nan or n_inf:
        per_block = per_block.copy()
        per_block[:, 0] += per_block[:, 1]
        i, j, _ = first_flagged(A, per_block, 0, lambda B: ~np.isfinite(B))
        hint = " Missing entries (mask=, missing='mask') need in-memory data." if allow_nan else ""
        raise _nonfinite_error(name, n_nan, n_inf, (i, j), hint)
    if n_neg:
        i, j, value = first_flagged(A, per_block, 2, lambda B: B < 0)
        raise _negative_error(name, n_neg, (i, j), value)
    if not allow_zero and nnz == 0:
        raise _all_zero_error(name)
    return A


def _check_torch(X, name, allow_nan, allow_zero):
    """check_matrix for a torch tensor, on its device: float32/float64 kept (other dtypes as for
    NumPy), dense or CSR (other sparse layouts become CSR, never dense); the same messages."""
    from .engines import torch_engine as te
    _check_shape(tuple(X.shape), name)
    structure = te.sparse_structure(X)
    if structure is not None:
        fmt, arrays = structure
        (_check_coo(arrays, name, ValueError) if fmt == "coo" else _check_compressed(arrays, fmt, name, ValueError))
    A = te.as_float_tensor(X, resolve_dtype(te.tensor_dtype(X), name))
    n_nan, n_inf, n_neg, any_nonzero = te.count_flags(A)
    if n_inf or (n_nan and not allow_nan):
        i, j, _ = te.first_flagged(A, "nonfinite")
        raise _nonfinite_error(name, n_nan, n_inf, (i, j), MISSING_HINT if n_nan else "")
    if n_neg:
        i, j, value = te.first_flagged(A, "negative")
        raise _negative_error(name, n_neg, (i, j), value)
    if not allow_zero and not any_nonzero:
        raise _all_zero_error(name)
    return A


def _locate(A, flags):
    """(i, j) of the first flagged entry, in row-major order."""
    if is_sparse(A):
        p = int(np.flatnonzero(flags)[0])
        i = int(np.searchsorted(A.indptr, p, side="right") - 1)
        return (i, int(A.indices[p]))
    return _first(flags)


def _value(A, where):
    return float(A[where[0], where[1]])


def check_rank(rank, shape) -> int:
    if isinstance(rank, (bool, np.bool_)) or not isinstance(rank, numbers.Integral):
        raise TypeError(f"rank must be an integer; got {rank!r}")
    rank = int(rank)
    m, n = shape
    if rank < 1:
        raise ValueError(f"rank must be at least 1; got {rank}")
    if rank > min(m, n):
        raise ValueError(f"rank {rank} is too large for a {m}×{n} matrix; it must be at most min(m, n) = {min(m, n)}")
    return rank


def check_factors(init, shape, rank, dtype):
    """Validate user-given (W0, H0): shapes m×k and k×n, finite, non-negative."""
    if not (isinstance(init, (tuple, list)) and len(init) == 2):
        raise TypeError("init must be a method name or a pair (W0, H0) of arrays")
    m, n = shape
    W0 = check_matrix(init[0], "W0", allow_zero=True)
    H0 = check_matrix(init[1], "H0", allow_zero=True)
    if is_sparse(W0) or is_sparse(H0):
        W0 = W0.toarray() if is_sparse(W0) else W0
        H0 = H0.toarray() if is_sparse(H0) else H0
    W0, H0 = array_ops(W0).to_numpy(W0), array_ops(H0).to_numpy(H0)   # tensors: moved to X's device later
    if W0.shape != (m, rank):
        raise ValueError(f"W0 has shape {W0.shape[0]}×{W0.shape[1]}; expected {m}×{rank} (rows of X × rank)")
    if H0.shape != (rank, n):
        raise ValueError(f"H0 has shape {H0.shape[0]}×{H0.shape[1]}; expected {rank}×{n} (rank × columns of X)")
    return np.array(W0, dtype=dtype, order="C"), np.array(H0, dtype=dtype, order="C")


def check_positive_int(value, name, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}; got {value!r}")
    return int(value)


def check_nonneg_float(value, name, allow_none=False):
    if value is None and allow_none:
        return None
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not np.isfinite(value)
            or value < 0):
        raise ValueError(f"{name} must be a finite number ≥ 0; got {value!r}")
    return float(value)


def choose(value, options, what):
    """Return the option named by value, else a 'choose one of' error (with a did-you-mean).

    Case is ignored where that leaves one match ("HALS" → "hals"); callers use the returned name."""
    names = list(dict.fromkeys(str(o) for o in options))
    if isinstance(value, str):
        if value in options:
            return value
        folded = [o for o in names if o.lower() == value.lower()]
        if len(folded) == 1:
            return folded[0]
    hint = ""
    if isinstance(value, str):
        import difflib
        lower = {o.lower(): o for o in names}
        close = difflib.get_close_matches(value.lower(), list(lower), n=1, cutoff=0.6)
        hint = f"; did you mean {lower[close[0]]!r}?" if close else ""
    raise ValueError(f"unknown {what} {value!r}; choose one of: {', '.join(sorted(names))}{hint}")


def check_seed(seed, name="seed"):
    """None or a non-negative integer for `numpy.random.SeedSequence`, or a clear error.

    A `numpy.random.RandomState` or `Generator` is accepted as scikit-learn accepts it: one integer
    is drawn from it (advancing it), so the same generator state gives the same fit."""
    if seed is None:
        return None
    if isinstance(seed, np.random.RandomState):
        return int(seed.randint(np.iinfo(np.int32).max))
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(np.iinfo(np.int64).max))
    if isinstance(seed, np.random.SeedSequence):
        return int(seed.generate_state(1, dtype=np.uint64)[0])
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{name} must be None, a non-negative integer, a numpy.random.RandomState or a "
                         f"numpy.random.Generator; got {seed!r}")
    return int(seed)


def spawn_runs(seed, n_runs: int) -> list:
    """One independent `numpy.random.SeedSequence` per run, spawned from `seed` (a checked seed or
    None): run t's stream is the same whatever the number of runs after it or where it runs (a fit's
    `n_runs`, consensus workers)."""
    return np.random.SeedSequence(seed).spawn(n_runs)


def seeded_rng(seed, name="seed") -> np.random.Generator:
    """A Generator for `seed`: a Generator or SeedSequence is used as it is; anything else goes
    through `check_seed` (so a bad seed is refused by name, not deep inside NumPy)."""
    if isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        return np.random.default_rng(seed)
    return np.random.default_rng(check_seed(seed, name))


def physical_memory() -> int | None:
    """Bytes of physical memory, or None where the system does not say."""
    import os
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(needed: float, what: str) -> None:
    """Refuse, before allocating, work whose arrays would not fit in physical memory."""
    total = physical_memory()
    if total is not None and needed > total:
        raise ValueError(f"{what} would need about {needed / 2**30:,.1f} GiB, more than this machine's "
                         f"{total / 2**30:,.1f} GiB of memory")


def check_fit_memory(shape, rank, dtype, dense=True) -> None:
    """Refuse a rank whose working arrays cannot fit in memory, before any allocation.

    A solver holds a few copies of the factors (current, previous or best, gradients): 4·(m + n)·k
    numbers is a lower bound; a dense engine adds one m×n product."""
    m, n = shape
    itemsize = np.dtype(dtype).itemsize
    needed = 4.0 * (m + n) * rank * itemsize + (float(m) * n * itemsize if dense else 0.0)
    check_memory(needed, f"rank {rank} on a {m}×{n} matrix")
