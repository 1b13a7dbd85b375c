"""Engines own the data X and the only expensive products with it.

Solvers never touch X: they ask an engine for X Hᵀ, Xᵀ W, ‖X‖² and the
β-divergence terms.  `make_engine` picks the engine from the input's type; it
and `array_ops` (which picks NumPy or torch operations for a factor, see _ops.py)
are the only places in nmfkit that ask what kind of array something is.
"""
from __future__ import annotations

import scipy.sparse as sp

from ._ops import array_ops, is_torch
from .base import Engine
from .dense import DenseEngine
from .masked import MaskedEngine, build_mask
from .sparse import SparseEngine


def make_engine(X, mask=None, nan_is_missing=False) -> Engine:
    """Wrap validated data X (NumPy array, SciPy sparse matrix, dask array or torch tensor) in its engine.

    With a mask (True = observed) that hides something, or NaN entries and
    `nan_is_missing`, the data goes to the masked engine; a mask hiding
    nothing keeps the plain engine.  Dask arrays go to the dask engine, torch
    tensors (dense or CSR, any device) to the torch engine."""
    if is_torch(X):
        if mask is not None or nan_is_missing:
            raise ValueError("mask= and missing='mask' are not supported for torch tensors; "
                             "missing entries need NumPy data")
        from .torch_engine import TorchEngine   # torch is an optional extra: import it only when used
        return TorchEngine(X)
    if is_dask(X):
        if mask is not None:
            raise ValueError("mask= is not supported for dask arrays; missing entries need in-memory data")
        from .dask_engine import DaskEngine   # dask is an optional extra: import it only when used
        return DaskEngine(X)
    if mask is not None or nan_is_missing:
        filled, M = build_mask(X, mask, nan_is_missing, sp.issparse(X))
        if M is not None:
            return MaskedEngine(filled, M)
    if sp.issparse(X):
        return SparseEngine(X)
    return DenseEngine(X)


def is_sparse(X) -> bool:
    """True for SciPy sparse input (used by validation before an engine exists)."""
    return sp.issparse(X)


def is_dask(X) -> bool:
    """True for a dask collection (checked by module name, so dask need not be installed)."""
    return type(X).__module__.startswith("dask.")


def entries_per_pass(engine) -> int:
    """Entries of X one product reads: nnz for sparse data, m·n for dense (the cost unit that
    sizes HALS's and PGD's inner iterations)."""
    m, n = engine.shape
    return engine.nnz if engine.kind == "sparse" or getattr(engine, "is_sparse", False) else m * n


__all__ = ["Engine", "DenseEngine", "SparseEngine", "MaskedEngine", "make_engine", "is_sparse", "is_dask",
           "is_torch", "array_ops", "entries_per_pass"]
