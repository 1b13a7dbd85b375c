"""Engines own the data X and the only expensive products with it.

Solvers never touch X: they ask an engine for X Hᵀ, Xᵀ W, ‖X‖² and the
β-divergence terms.  `make_engine` picks the engine from the input's type; it is
the only place in nmfkit that asks what kind of array X is.
"""
from __future__ import annotations

import scipy.sparse as sp

from .base import Engine
from .dense import DenseEngine
from .masked import MaskedEngine, build_mask
from .sparse import SparseEngine


def make_engine(X, mask=None, nan_is_missing=False) -> Engine:
    """Wrap validated data X (NumPy array, SciPy sparse matrix or dask array) in its engine.

    With a mask (True = observed) that hides something, or NaN entries and
    `nan_is_missing`, the data goes to the masked engine; a mask hiding
    nothing keeps the plain engine.  Dask arrays go to the dask engine."""
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


__all__ = ["Engine", "DenseEngine", "SparseEngine", "MaskedEngine", "make_engine", "is_sparse", "is_dask"]
