"""The few array operations solvers need beyond +, −, ∘, /, @ and indexing, per array family.

Solvers run unchanged on NumPy arrays and on PyTorch tensors because every call
that differs between the two goes through an ops object:

    clamp_min_(A, v)   A ← max(A, v) in place       clamp_min(A, v)   the same, new array
    tiny(A)            of A's dtype                  copy(A), contiguous_copy(A), contiguous(A)
    to64(A)            A in float64                  vdot(A, B) = Σ A∘B as a Python float
    sum64(A)           Σ A in float64                zero_columns(A)   indices of all-zero columns
    eye(k, like)       zeros(shape, like, dtype)     arange(p, like)   where(c, a, b)
    top_eigenvalue(G)  λ_max of symmetric G          equal(A, B)       cast_like(A, B)
    sub_outer_(S, a, b)  S ← S − a bᵀ in place       qr(A) → Q         reduced QR
    asarray(A, like)   NumPy array → this family, on like's device and dtype
    to_numpy(A)        → NumPy array (host)
and `compiled_kernels`, True when the Numba kernels apply (NumPy only).

An engine says which family its factors belong to (`Engine.ops`); helpers that see
only arrays ask `array_ops(A)`.  That function and `make_engine` are the only
places that look at an array's type, and they do it by module name, so PyTorch
stays an optional import.  Every operation costs O(size of its arguments).
"""
from __future__ import annotations

import numpy as np


class NumpyOps:
    """Operations on NumPy arrays (the plain engines' factors)."""

    name = "numpy"
    compiled_kernels = True

    @staticmethod
    def clamp_min_(A, floor):
        np.maximum(A, floor, out=A)
        return A

    @staticmethod
    def clamp_min(A, floor):
        return np.maximum(A, floor)

    @staticmethod
    def tiny(A) -> float:
        return float(np.finfo(A.dtype).tiny)

    @staticmethod
    def copy(A):
        return A.copy()

    @staticmethod
    def contiguous_copy(A):
        return np.array(A, order="C", copy=True)

    @staticmethod
    def contiguous(A):
        return np.ascontiguousarray(A)

    @staticmethod
    def to64(A):
        return A.astype(np.float64, copy=False)

    @staticmethod
    def vdot(A, B) -> float:
        return float(np.vdot(A, B))

    @staticmethod
    def sum64(A) -> float:
        return float(A.sum(dtype=np.float64))

    @staticmethod
    def zero_columns(A):
        return np.flatnonzero(~A.any(axis=0))

    @staticmethod
    def eye(k, like):
        return np.eye(k, dtype=like.dtype)

    @staticmethod
    def zeros(shape, like, dtype=None):
        return np.zeros(shape, dtype=like.dtype if dtype is None else dtype)

    @staticmethod
    def arange(p, like):
        return np.arange(p)

    @staticmethod
    def sub_outer_(S, a, b):
        S -= np.outer(a, b)
        return S

    @staticmethod
    def where(cond, a, b):
        return np.where(cond, a, b)

    @staticmethod
    def top_eigenvalue(G):
        return np.linalg.eigvalsh(G)[..., -1]

    @staticmethod
    def equal(A, B) -> bool:
        return bool(np.array_equal(A, B))

    @staticmethod
    def cast_like(A, like):
        return A.astype(like.dtype, copy=False)

    @staticmethod
    def qr(A):
        return np.linalg.qr(A)[0]

    @staticmethod
    def asarray(A, like):
        return np.asarray(A, dtype=like.dtype)

    @staticmethod
    def to_numpy(A):
        return np.asarray(A)


NUMPY_OPS = NumpyOps()


def is_torch(A) -> bool:
    """True for a PyTorch tensor (checked by module name, so torch need not be installed)."""
    return type(A).__module__.startswith("torch")


_OPS_BY_TYPE: dict = {}      # type → ops, so the NumPy hot path pays one dict lookup


def array_ops(A):
    """The ops of A's array family: PyTorch tensors get the torch ops, everything else NumPy's."""
    ops = _OPS_BY_TYPE.get(type(A))
    if ops is None:
        if is_torch(A):
            from ._torch_ops import TORCH_OPS  # torch is an optional extra: import it only when used
            ops = TORCH_OPS
        else:
            ops = NUMPY_OPS
        _OPS_BY_TYPE[type(A)] = ops
    return ops
