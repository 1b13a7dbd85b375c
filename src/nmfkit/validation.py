"""Input checks, run before any work, with errors that name the problem.

Every public entry point calls `check_matrix` and `check_rank`; a malformed
input raises `ValueError` or `TypeError` saying what is wrong and where,
never an exception from deep inside NumPy.
"""
from __future__ import annotations

import numbers

import numpy as np

from .engines import array_ops, is_dask, is_sparse, is_torch


def _as_array(X, name):
    if is_sparse(X):
        return X
    if hasattr(X, "to_numpy") and hasattr(X, "dtypes"):  # pandas DataFrame
        try:
            X = X.to_numpy()
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} has non-numeric columns: {exc}") from None
    try:
        A = np.asarray(X)
    except (TypeError, ValueError) as exc:  # ragged nested lists and the like
        raise TypeError(f"{name} must be a 2-D numeric matrix; could not convert it: {exc}") from None
    return A


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
    A = _as_array(X, name)
    _check_shape(tuple(A.shape), name)
    dtype = resolve_dtype(A.dtype, name)
    if is_sparse(A):
        A = A.tocsr().astype(dtype, copy=False)
        values = A.data
    else:
        A = A.astype(dtype, copy=False)
        values = A
    finite = np.isfinite(values)
    if not finite.all():
        n_nan = int(np.isnan(values).sum())
        n_inf = int(values.size - finite.sum() - n_nan)
        where = _locate(A, ~finite)
        if not (allow_nan and n_inf == 0):
            raise _nonfinite_error(name, n_nan, n_inf, where, MISSING_HINT if n_nan else "")
    neg = values < 0
    if neg.any():
        where = _locate(A, neg)
        raise _negative_error(name, neg.sum(), where, _value(A, where))
    if not allow_zero and not np.any(values[finite] if not finite.all() else values):
        raise _all_zero_error(name)
    return A


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
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number ≥ 0; got {value!r}")
    return float(value)


def choose(value, options, what):
    """Return value if it is one of options, else a 'choose one of' error."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"unknown {what} {value!r}; choose one of: {', '.join(sorted(options))}")
    return value
