"""Separable NMF by the successive projection algorithm (SPA; Frobenius loss, dense and sparse data).

Model: X = W H with W = X[:, J] for a set J of k columns of X (the anchor columns) — every
column of X is a non-negative combination of k of its own columns (Donoho & Stodden 2003;
Arora, Ge, Kannan & Moitra 2012).  SPA (Araújo et al. 2001; analysed by Gillis & Vavasis,
IEEE TPAMI 36(4) 2014) picks the anchors greedily:

    R ← X D⁻¹  (columns scaled to sum 1, `normalize=True`)
    repeat k times:   j ← argmax_j ‖R[:, j]‖₂;   J ← J ∪ {j};   R ← (I − u uᵀ) R,  u = R[:, j] / ‖R[:, j]‖

then H = argmin_{H ≥ 0} ½‖X − X[:, J] H‖² by block principal pivoting (solvers/_anls_kernels.py).

Guarantee (Gillis & Vavasis 2014, Theorem 3): if X D⁻¹ = W [I, H'] Π with the columns of H' summing
to at most 1, W of full column rank and each column perturbed by at most ε ≲ σ_min(W)/(√k κ²(W)),
SPA returns anchor columns within O(ε κ²(W)) of the columns of W; with ε = 0 it returns exactly the
anchor columns.  There is no random start and no iteration: the method is provable and
deterministic, and the fit is not a local minimum of ½‖X − WH‖² over all W, H ≥ 0 (an
iterative solver started from it, `init="spa"`, usually lowers the error further).

Sparse X is never densified: the residual is never formed.  With Q an orthonormal basis of the
chosen columns, ‖R[:, j]‖² = ‖x_j‖² − ‖Qᵀ x_j‖², so each pick costs one product Xᵀ q (q the new
basis vector) and one extracted column.  The downdated norms lose accuracy near zero (≈ √eps
relative), so the chosen column's residual is recomputed exactly before it is accepted: a rank
above the number of linearly independent (usable) columns is refused with a clear error.

The solver takes one driver step (it sets `done`): the start is not used, and the step
returns the SPA factorization whether or not its error is below the start's (so the run
returns the last iterate).  The anchor indices are `solver.anchors`; `spa(X, rank)` returns
the same indices for a matrix (the choice is deterministic).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..engines.base import frobenius_from_products
from ..registry import register_solver
from ._anls_kernels import nnls_bpp
from .base import Solver

USABLE_TOL = 10.0   # × √m × eps(dtype) × the largest column norm: below it a residual column is numerically zero


def column_norms_sq(X, scale) -> np.ndarray:
    """‖x_j / scale_j‖² for every column of a dense or sparse X (float64; no dense copy of sparse X)."""
    if sp.issparse(X):
        X = X.tocsc() if X.format != "csc" else X
        sq = np.add.reduceat(np.square(X.data, dtype=np.float64), X.indptr[:-1]) if X.nnz else np.zeros(X.shape[1])
        sq[np.diff(X.indptr) == 0] = 0.0          # reduceat repeats the next value at empty columns
        return sq / scale ** 2
    sq = np.einsum("ij,ij->j", X, X, dtype=np.float64)
    return sq / scale ** 2


def column(X, j) -> np.ndarray:
    """Column j of a dense or sparse X as a dense float64 vector."""
    if sp.issparse(X):
        return np.asarray(X[:, [j]].toarray(), dtype=np.float64).ravel()
    return np.asarray(X[:, j], dtype=np.float64)


def transposed_product(X, q) -> np.ndarray:
    """Xᵀ q in float64 (q cast to X's dtype for dense X, so X is never copied to float64)."""
    if sp.issparse(X):
        return np.asarray(X.T @ q, dtype=np.float64).ravel()
    return np.asarray(X.T @ q.astype(X.dtype, copy=False), dtype=np.float64)


def column_scale(X, normalize: bool) -> np.ndarray:
    """Per-column divisor: the column sums (zero columns keep 1) or ones."""
    n = X.shape[1]
    if not normalize:
        return np.ones(n)
    sums = np.asarray(X.sum(axis=0, dtype=np.float64)).ravel()
    return np.where(sums > 0, sums, 1.0)


def spa(X, rank: int, normalize: bool = True) -> np.ndarray:
    """Indices of `rank` anchor columns of X chosen by the successive projection algorithm.

    X: non-negative NumPy array or SciPy sparse matrix (not modified, never densified).
    normalize: scale the columns to sum 1 first (Gillis & Vavasis' preprocessing; the model's H
    then has columns summing to at most 1).  Raises ValueError when fewer than `rank` columns
    are linearly independent."""
    m, n = X.shape
    scale = column_scale(X, normalize)
    norms = column_norms_sq(X, scale)
    top = float(np.sqrt(norms.max())) if n else 0.0
    tol = USABLE_TOL * np.sqrt(m) * float(np.finfo(X.dtype).eps) * top
    Q = np.zeros((m, 0))
    anchors: list[int] = []
    for r in range(rank):
        residual_sq = norms.copy()
        residual_sq[anchors] = -np.inf
        j = int(np.argmax(residual_sq))
        x = column(X, j) / scale[j]
        for _ in range(2):                      # Gram–Schmidt twice: orthogonal to working precision
            x -= Q @ (Q.T @ x)
        size = float(np.linalg.norm(x))
        if not size > tol:
            raise ValueError(f"spa: X has only {r} linearly independent columns, fewer than rank {rank}; "
                             f"choose rank ≤ {r}")
        q = x / size
        Q = np.column_stack([Q, q])
        anchors.append(j)
        norms = np.maximum(norms - (transposed_product(X, q) / scale) ** 2, 0.0)
    return np.asarray(anchors, dtype=np.int64)


def anchor_factors(engine, anchors):
    """(W, Ht): W the anchor columns of the engine's X, Ht by exact NNLS, both in X's dtype."""
    X = engine.X
    W = np.column_stack([column(X, j) for j in anchors]).astype(engine.dtype)
    R, G = engine.XtW(W), W.T @ W
    Ht = nnls_bpp(R, G).astype(engine.dtype, copy=False)
    return np.ascontiguousarray(W), np.ascontiguousarray(Ht), R, G


@register_solver("spa", losses=("frobenius",), monotone=False, max_iter=1, default_init="random",
                 summary="separable NMF: W = anchor columns of X by the successive projection algorithm "
                         "(Gillis & Vavasis 2014), H by NNLS; provable, one step", options={"normalize": True},
                 penalties=False)
class SPA(Solver):
    """Successive projection algorithm; see the module docstring."""
    returns_last_iterate = True
    checkpoint_attrs = ("anchors",)

    def __init__(self, engine, loss, beta, *, normalize=True, **options):
        super().__init__(engine, loss, beta, **options)
        if self.penalty.active:
            raise ValueError(f"solver {self.name!r} takes no penalties (alpha_W, alpha_H): W is made of columns "
                             "of X and H is an exact NNLS fit")
        if not isinstance(normalize, (bool, np.bool_)):
            raise TypeError(f"normalize must be True or False; got {normalize!r}")
        self.normalize = bool(normalize)
        self.monotone = False         # one step from an unused start: not a descent from it
        self.anchors = None

    def step(self, W, Ht):
        self.anchors = spa(self.engine.X, W.shape[1], self.normalize)
        W_new, Ht_new, R, G = anchor_factors(self.engine, self.anchors)
        obj = frobenius_from_products(self.engine.sqnorm, Ht_new, R, G)   # ⟨Ht, XᵀW⟩ = ⟨W, X Ht⟩
        self.done = True
        return W_new, Ht_new, obj
