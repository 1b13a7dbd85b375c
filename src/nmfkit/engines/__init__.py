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
    """Wrap validated data X (NumPy array or SciPy sparse matrix) in its engine.

    With a mask (True = observed) that hides something, or NaN entries and
    `nan_is_missing`, the data goes to the masked engine; a mask hiding
    nothing keeps the plain engine."""
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


__all__ = ["Engine", "DenseEngine", "SparseEngine", "MaskedEngine", "make_engine", "is_sparse"]
