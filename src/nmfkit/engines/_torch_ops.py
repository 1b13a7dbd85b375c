"""PyTorch twins of the NumPy array operations in `_ops.py` (same names, same meaning).

Everything stays on the tensors' device and in their dtype; only the scalar
results (`tiny`, `vdot`, `sum64`, …) come back to the host as Python floats.
Imported only when a tensor is seen, so torch remains an optional dependency.
"""
from __future__ import annotations

import numpy as np
import torch

# NumPy dtypes the shared solver code asks for, as torch dtypes.
TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64,
                np.dtype(np.int64): torch.int64}


def torch_dtype(dtype):
    """The torch dtype of a NumPy dtype (or a torch dtype, returned as is)."""
    return dtype if isinstance(dtype, torch.dtype) else TORCH_DTYPES[np.dtype(dtype)]


def numpy_dtype(dtype) -> np.dtype:
    """The NumPy dtype of a torch floating dtype (torch.float32 → float32)."""
    return np.dtype(str(dtype).removeprefix("torch."))


class TorchOps:
    """Operations on torch tensors (the torch engine's factors), on their own device."""

    name = "torch"
    compiled_kernels = False      # the Numba kernels read NumPy memory: the plain twins run instead

    @staticmethod
    def clamp_min_(A, floor):
        return A.clamp_min_(floor)

    @staticmethod
    def clamp_min(A, floor):
        return torch.clamp_min(A, floor)

    @staticmethod
    def tiny(A) -> float:
        return float(torch.finfo(A.dtype).tiny)

    @staticmethod
    def copy(A):
        return A.clone()

    @staticmethod
    def contiguous_copy(A):
        return A.clone(memory_format=torch.contiguous_format)

    @staticmethod
    def contiguous(A):
        return A.contiguous()

    @staticmethod
    def to64(A):
        return A.to(torch.float64)

    @staticmethod
    def vdot(A, B) -> float:
        return float(torch.dot(A.reshape(-1), B.reshape(-1)))

    @staticmethod
    def sum64(A) -> float:
        return float(A.sum(dtype=torch.float64))

    @staticmethod
    def zero_columns(A):
        return torch.nonzero(~A.any(dim=0)).flatten()

    @staticmethod
    def eye(k, like):
        return torch.eye(k, dtype=like.dtype, device=like.device)

    @staticmethod
    def zeros(shape, like, dtype=None):
        return torch.zeros(shape, dtype=like.dtype if dtype is None else torch_dtype(dtype), device=like.device)

    @staticmethod
    def arange(p, like):
        return torch.arange(p, device=like.device)

    @staticmethod
    def sub_outer_(S, a, b):
        return S.addr_(a, b, alpha=-1)          # one fused kernel instead of an m×k temporary

    @staticmethod
    def where(cond, a, b):
        return torch.where(cond, a, b)

    @staticmethod
    def top_eigenvalue(G):
        return torch.linalg.eigvalsh(G)[..., -1]

    @staticmethod
    def equal(A, B) -> bool:
        return bool(torch.equal(A, B))

    @staticmethod
    def cast_like(A, like):
        return A.to(like.dtype)

    @staticmethod
    def qr(A):
        return torch.linalg.qr(A).Q

    @staticmethod
    def asarray(A, like):
        return torch.as_tensor(np.ascontiguousarray(A), dtype=like.dtype, device=like.device)

    @staticmethod
    def to_numpy(A):
        A = A.detach()
        if A.layout != torch.strided:
            A = A.to_dense()
        return A.cpu().numpy()


TORCH_OPS = TorchOps()
