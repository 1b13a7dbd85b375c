"""Engines own the data X and the only expensive products with it.

Solvers never touch X: they ask an engine for X Hᵀ, Xᵀ W, ‖X‖² and the
β-divergence terms.  `make_engine` picks the engine from the input's type; it
and `array_ops` (which picks NumPy or torch operations for a factor, see _ops.py)
are the only places in nmfkit that ask what kind of array something is.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._ops import array_ops, is_torch
from .base import CAPABILITIES, Engine, supports
from .dask_engine import DaskEngine
from .dense import DenseEngine
from .masked import MaskedEngine, build_mask
from .memmap import MemmapEngine
from .sparse import SparseEngine

# The torch engine's capabilities, spelled here so that the registry needs no torch to list them.
TORCH_CAPABILITIES = frozenset({"core", "kl", "beta", "complete", "resident"})

# Engine kinds, in the order tables list them, and what each offers (engines/base.py):
# a new engine is its module, one line here and its case in `make_engine`.
ENGINE_CAPABILITIES = {
    "dense": DenseEngine.capabilities,
    "sparse": SparseEngine.capabilities,
    "masked": MaskedEngine.capabilities,
    "dask": DaskEngine.capabilities,
    "torch": TORCH_CAPABILITIES,
    "memmap": MemmapEngine.capabilities,
}


def engines_for(requires) -> tuple[str, ...]:
    """The engine kinds whose capabilities include everything in `requires`."""
    unknown = set(requires) - set(CAPABILITIES)
    if unknown:
        raise ValueError(f"unknown engine capabilities: {', '.join(sorted(unknown))}")
    return tuple(kind for kind, caps in ENGINE_CAPABILITIES.items() if supports(caps, requires))


def make_engine(X, mask=None, nan_is_missing=False) -> Engine:
    """Wrap validated data X (NumPy array, SciPy sparse matrix, dask array or torch tensor) in its engine.

    With a mask (True = observed) that hides something, or NaN entries and
    `nan_is_missing`, the data goes to the masked engine; a mask hiding
    nothing keeps the plain engine.  Dask arrays go to the dask engine, torch
    tensors (dense or CSR, any device) to the torch engine, NumPy memmaps to the
    memmap engine (read in row blocks)."""
    if is_torch(X):
        if mask is not None or nan_is_missing:
            raise ValueError("mask= and missing='mask' are not supported for torch tensors; "
                             "missing entries need NumPy data")
        from .torch_engine import TorchEngine  # torch is an optional extra: import it only when used
        return TorchEngine(X)
    if is_dask(X):
        if mask is not None:
            raise ValueError("mask= is not supported for dask arrays; missing entries need in-memory data")
        return DaskEngine(X)   # dask itself is imported only when a dask engine is made
    if mask is not None or nan_is_missing:
        filled, M = build_mask(X, mask, nan_is_missing, sp.issparse(X))
        if M is not None:
            return MaskedEngine(filled, M)
    if sp.issparse(X):
        return SparseEngine(X)
    if isinstance(X, np.memmap):
        return MemmapEngine(X)
    return DenseEngine(X)


def is_sparse(X) -> bool:
    """True for SciPy sparse input (used by validation before an engine exists)."""
    return sp.issparse(X)


def is_dask(X) -> bool:
    """True for a dask collection (checked by module name, so dask need not be installed)."""
    return type(X).__module__.startswith("dask.")


__all__ = ["Engine", "DenseEngine", "SparseEngine", "MaskedEngine", "DaskEngine", "MemmapEngine", "make_engine",
           "is_sparse", "is_dask", "is_torch", "array_ops", "ENGINE_CAPABILITIES", "engines_for"]
