"""The engine contract: what solvers may ask of the data, grouped into capabilities.

Factors are stored *tall*: W is m×k and Ht = Hᵀ is n×k, so the H half-step is
the W half-step on the transposed data.  Each engine class lists the capability
groups it implements in `capabilities`; each solver class lists those it needs in
`requires`, and the registry derives the engines a solver runs on from the two
(a solver runs on an engine whose capabilities include all it requires).

Method groups (the methods below, by group):
  core       XHt(Ht) = X Ht (m×k), XtW(W) = Xᵀ W (n×k), sqnorm = ‖X‖²_F (float64), nnz,
             n_observed, entries_per_pass, frobenius(W, Ht) = ½‖X − W Htᵀ‖²_F (trace identity), loss,
             frobenius_exact (entry by entry), X_col_sums(), X_row_sums(), mean(), transpose(), ops
  kl         kl_ratio(W, Ht, need) = the parts of (Q Ht, Qᵀ W, D_KL) named in `need`
             ("QHt", "QtW", "loss"), Q = X / (W Htᵀ), evaluated only where X is nonzero for
             sparse data (engines may return the loss even when not asked); kl_divergence;
             kl_w_step (the KL multiplicative W half-step, a generic two-pass version here that
             engines may fuse); factor_col_sums(F)
  beta       beta_products(W, Ht, beta, need), beta_divergence(W, Ht, beta)
  entries    values_at(rows, cols), observed_flat(): entrywise access to X
  rows       row_storage(): X's rows as row kernels read them, ("dense", (X,)) or
             ("csr", (indptr, indices, data)), for solvers with kernels of their own
  mask       X has missing entries (n_observed < m·n): the products are those of M∘X, and
             row_grams(Ht) / col_grams(W) give the per-row Grams Htᵀ diag(M_i·) Ht
Properties of the data rather than methods:
  complete       every entry of X is observed: XHt and XtW are the products with X itself
  numpy_factors  the factors are NumPy arrays (Numba kernels and SciPy run on them)
  numpy_data     X is a NumPy array or SciPy sparse matrix held as `engine.X`
  dense_data     X is a dense NumPy array
  resident       X is held in memory (host or device), not read from storage at each pass

Cost: XHt and XtW are one pass over X each (m·n·k flops dense, nnz·k sparse).
"""
from __future__ import annotations

from abc import abstractmethod

import numpy as np

from ._ops import NUMPY_OPS, array_ops

# Capability groups and the methods each obliges an engine to implement (the last five are properties
# of the data, with no methods of their own).
CAPABILITIES = {
    "core": ("XHt", "XtW", "frobenius", "frobenius_exact", "X_col_sums", "X_row_sums", "mean", "transpose"),
    "kl": ("kl_ratio", "kl_divergence", "kl_w_step", "factor_col_sums"),
    "beta": ("beta_products", "beta_divergence"),
    "entries": ("values_at", "observed_flat"),
    "rows": ("row_storage",),
    "mask": ("row_grams", "col_grams"),
    "complete": (), "numpy_factors": (), "numpy_data": (), "dense_data": (), "resident": (),
}


class Engine:
    """Base class; subclasses set `X`, `shape`, `dtype`, `sqnorm`, `nnz` and `capabilities`, and implement
    the methods of every group they declare.  Methods marked abstract have no generic version; the
    marker is not enforced at construction (an engine implements only the groups it declares) but
    checked by the contract test."""

    kind = "base"
    capabilities: frozenset = frozenset()
    X = None
    ops = NUMPY_OPS          # array operations on this engine's factors (see _ops.py)
    shape: tuple[int, int]
    dtype: np.dtype
    sqnorm: float
    nnz: int

    # -- core ----------------------------------------------------------------------------------
    @abstractmethod
    def XHt(self, Ht: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @abstractmethod
    def XtW(self, W: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def n_observed(self) -> int:
        """Entries of X the loss counts (all m·n unless entries are missing)."""
        return self.shape[0] * self.shape[1]

    @property
    def entries_per_pass(self) -> int:
        """Entries of X one product reads: m·n for dense data, nnz for sparse (the cost unit that
        sizes HALS's and PGD's inner iterations)."""
        return self.shape[0] * self.shape[1]

    def frobenius(self, W: np.ndarray, Ht: np.ndarray) -> float:
        """½‖X − W Htᵀ‖² by the trace identity (no m×n product).

        ½(‖X‖² − 2⟨W, X Ht⟩ + ⟨WᵀW, HtᵀHt⟩); accumulated in float64.
        """
        R = self.XHt(Ht)
        return frobenius_from_products(self.sqnorm, W, R, Ht.T @ Ht)

    def loss(self, W, Ht, loss: str, beta: float, exact: bool = False) -> float:
        """The data term of `loss` at (W, Ht): ½‖X − W Htᵀ‖² ("frobenius"; by the trace identity unless
        `exact`), D_KL ("kl") or D_β (any other loss name, with its β)."""
        if loss == "frobenius":
            return self.frobenius_exact(W, Ht) if exact else self.frobenius(W, Ht)
        if loss == "kl":
            return self.kl_divergence(W, Ht)
        return self.beta_divergence(W, Ht, beta)

    @abstractmethod
    def frobenius_exact(self, W, Ht) -> float:  # pragma: no cover - abstract
        """½‖X − W Htᵀ‖² computed entry by entry (accurate near an exact fit)."""
        raise NotImplementedError

    @abstractmethod
    def X_col_sums(self) -> np.ndarray:  # pragma: no cover - abstract
        """Σᵢ X_ij per column of X, in float64."""
        raise NotImplementedError

    @abstractmethod
    def X_row_sums(self) -> np.ndarray:  # pragma: no cover - abstract
        """Σⱼ X_ij per row of X, in float64."""
        raise NotImplementedError

    @abstractmethod
    def mean(self) -> float:  # pragma: no cover - abstract
        """Mean of the (observed) entries of X."""
        raise NotImplementedError

    @abstractmethod
    def transpose(self) -> "Engine":  # pragma: no cover - abstract
        """The engine of Xᵀ."""
        raise NotImplementedError

    @property
    def tiny(self) -> float:
        """Smallest positive normal number of the data's dtype (the guard of divisions)."""
        return float(np.finfo(self.dtype).tiny)

    # -- kl ------------------------------------------------------------------------------------
    @abstractmethod
    def kl_ratio(self, W, Ht, need=("QHt", "QtW", "loss")):  # pragma: no cover - abstract
        raise NotImplementedError

    @abstractmethod
    def kl_divergence(self, W, Ht) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def kl_w_step(self, W, Ht, den, l2, floor, need=("QtW",), Ht_next=None) -> dict:
        """KL MU W half-step and the next H half-step's products, by two `kl_ratio` calls.

        W' = max(floor, W ∘ (Q Ht) / max(tiny, den + l2 W)), Q = X / (W Htᵀ);
        returns {"W": W', "W_sum": colsum(W')} plus the parts of ("QtW", "loss") in
        `need` at (W', Ht_next) (Ht_next defaults to Ht).
        Written with operators and indexing only, so any array type works."""
        tiny = self.tiny
        QHt = self.kl_ratio(W, Ht, need=("QHt",))["QHt"]
        d = den + l2 * W if l2 else den + 0 * W[:1]   # a fresh array either way
        d[d < tiny] = tiny
        Wn = W * QHt
        Wn /= d
        Wn[Wn < floor] = floor
        out = dict(self.kl_ratio(Wn, Ht if Ht_next is None else Ht_next, need=tuple(need))) if need else {}
        out["W"], out["W_sum"] = Wn, self.factor_col_sums(Wn)
        return out

    def factor_col_sums(self, F):
        """Σᵢ F_ia of a factor, added as this engine's `kl_w_step` adds its W_sum."""
        return F.sum(0)

    # -- beta ----------------------------------------------------------------------------------
    @abstractmethod
    def beta_products(self, W, Ht, beta, need=("XH", "XW")) -> dict:  # pragma: no cover - abstract
        """β-MU numerators and denominators: need "XH" gives the W half-step's (num_W, den_W, products
        with Ht), "XW" the H half-step's (num_H, den_H, products with W); engines add the loss."""
        raise NotImplementedError

    @abstractmethod
    def beta_divergence(self, W, Ht, beta) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- entries -------------------------------------------------------------------------------
    @abstractmethod
    def values_at(self, rows, cols):  # pragma: no cover - abstract
        """X at the given (row, column) index pairs."""
        raise NotImplementedError

    @abstractmethod
    def observed_flat(self):  # pragma: no cover - abstract
        """Flat indices of the entries the loss counts, or None for all m·n."""
        raise NotImplementedError

    # -- rows ----------------------------------------------------------------------------------
    @abstractmethod
    def row_storage(self):  # pragma: no cover - abstract
        """X's rows for a solver's own row kernels: ("dense", (X,)) or ("csr", (indptr, indices, data))."""
        raise NotImplementedError

    # -- mask ----------------------------------------------------------------------------------
    @abstractmethod
    def row_grams(self, Ht):  # pragma: no cover - abstract
        """Per-row Grams Htᵀ diag(M_i·) Ht (m×k×k)."""
        raise NotImplementedError

    @abstractmethod
    def col_grams(self, W):  # pragma: no cover - abstract
        """Per-column Grams Wᵀ diag(M_·j) W (n×k×k)."""
        raise NotImplementedError


def supports(capabilities, requires) -> bool:
    """Whether an engine with `capabilities` offers everything a solver `requires`."""
    return set(requires) <= set(capabilities)


def frobenius_from_products(sqnorm: float, W: np.ndarray, R: np.ndarray, G: np.ndarray) -> float:
    """½‖X − W Htᵀ‖² from R = X Ht and G = HtᵀHt, without touching X.

    The three terms are summed in float64; the result is clipped at 0 because
    cancellation can make it a hair negative at an exact fit.
    """
    ops = array_ops(W)
    W64 = ops.to64(W)
    cross = ops.vdot(W64, ops.to64(R))
    quad = ops.vdot(W64.T @ W64, ops.to64(G))
    return max(0.5 * (sqnorm - 2.0 * cross + quad), 0.0)
