"""Engines own the data X and the only expensive products with it.

Solvers never touch X: they ask an engine for X Hᵀ, Xᵀ W, ‖X‖² and the
β-divergence terms.  `make_engine` picks the engine from the input's type; it is
the only place in nmfkit that asks what kind of array X is.
"""
from __future__ import annotations

import scipy.sparse as sp

from .base import Engine
from .dense import DenseEngine
from .sparse import SparseEngine


def make_engine(X) -> Engine:
    """Wrap validated data X (NumPy array or SciPy sparse matrix) in its engine."""
    if sp.issparse(X):
        return SparseEngine(X)
    return DenseEngine(X)


def is_sparse(X) -> bool:
    """True for SciPy sparse input (used by validation before an engine exists)."""
    return sp.issparse(X)


__all__ = ["Engine", "DenseEngine", "SparseEngine", "make_engine", "is_sparse"]
