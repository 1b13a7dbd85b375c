"""Separable NMF by the successive projection algorithm (SPA; Frobenius loss, dense and sparse data).

Model: X = W H with W = X[:, J] for a set J of k columns of X (the anchor columns) — every
column of X is a non-negative combination of k of its own columns (Donoho & Stodden 2003;
Arora, Ge, Kannan & Moitra 2012).  SPA (Araújo et al. 2001; analysed by Gillis & Vavasis,
IEEE TPAMI 36(4) 2014) picks the anchors greedily:

    R ← X D⁻¹  (columns scaled to sum 1, `normalize=True`)
    repeat k times:   j ← argmax_j ‖R[:, j]‖₂;   J ← J ∪ {j};   R ← (I − u uᵀ) R,  u = R[:, j] / ‖R[:, j]‖

then H = argmin_{H ≥ 0} ½‖X − X[:, J] H‖² by block principal pivoting (solvers/_anls_kernels.py).

Guarantee (Gillis & Vavasis 2014): if X D⁻¹ = W [I, H'] Π with the columns of H' summing
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

`solver="snpa"` replaces the orthogonal projection by the projection on the convex hull of the
chosen columns and the origin (the successive non-negative projection algorithm; Gillis, SIAM J.
Imaging Sci. 7(2) 2014): more robust to noise, and it does not need W of full column rank — only
that no anchor lies in the convex hull of the others and the origin.  Its projections are made
by Nesterov's accelerated projected gradient (`inner_iterations` steps per pick, warm-started).

The solver takes one driver step (it sets `done`): the start is not used, and the step
returns the SPA factorization whether or not its error is below the start's (so the run
returns the last iterate).  The anchor indices are `solver.anchors`; `spa(X, rank)` returns
the same indices for a matrix (the choice is deterministic).
"""
from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp

from ..engines.base import frobenius_from_products
from ..registry import register_solver
from ._anls_kernels import nnls_bpp
from .base import Solver

COLUMN_BLOCK = 1024   # columns squared at a time for dense X (bounded temporaries)
USABLE_TOL = 10.0   # × √m × eps(dtype) × the largest column norm: below it a residual column is numerically zero


def column_norms_sq(X, scale) -> np.ndarray:
    """‖x_j / scale_j‖² for every column of a dense or sparse X (float64; no dense copy of sparse X)."""
    if sp.issparse(X):
        X = X.tocsc() if X.format != "csc" else X
        sq = np.add.reduceat(np.square(X.data, dtype=np.float64), X.indptr[:-1]) if X.nnz else np.zeros(X.shape[1])
        sq[np.diff(X.indptr) == 0] = 0.0          # reduceat repeats the next value at empty columns
        return sq / scale ** 2
    sq = np.empty(X.shape[1])
    for start in range(0, X.shape[1], COLUMN_BLOCK):     # float64 copies of a block of columns at a time
        block = np.asarray(X[:, start:start + COLUMN_BLOCK], dtype=np.float64)
        sq[start:start + COLUMN_BLOCK] = np.einsum("ij,ij->j", block, block)
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


def project_capped_simplex(H):
    """Each column of H projected on {h ≥ 0, Σ h ≤ 1} (Euclidean; sort-based for the columns above 1)."""
    P = np.maximum(H, 0.0)
    over = P.sum(axis=0) > 1.0
    if over.any():
        V = H[:, over]
        U = -np.sort(-V, axis=0)
        cumulative = np.cumsum(U, axis=0) - 1.0
        ks = np.arange(1, V.shape[0] + 1)[:, None]
        count = (U - cumulative / ks > 0).sum(axis=0)
        theta = cumulative[count - 1, np.arange(V.shape[1])] / count
        P[:, over] = np.maximum(V - theta, 0.0)
    return P


def simplex_least_squares(C, G, H, iterations):
    """Approximately argmin over columns h ∈ {h ≥ 0, Σ h ≤ 1} of ½ hᵀ G h − cᵀ h, all columns at once, by
    Nesterov's accelerated projected gradient (step 1/λ_max(G)) warm-started at H."""
    L = float(np.linalg.eigvalsh(G)[-1]) if G.size else 0.0
    if not L > 0:
        return np.zeros_like(C)
    Y, t = H.copy(), 1.0
    for _ in range(iterations):
        H_next = project_capped_simplex(Y - (G @ Y - C) / L)
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        Y = H_next + ((t - 1.0) / t_next) * (H_next - H)
        H, t = H_next, t_next
    return H


def snpa(X, rank: int, normalize: bool = True, inner_iterations: int = 200) -> np.ndarray:
    """Indices of `rank` anchor columns of X chosen by the successive non-negative projection algorithm.

    As `spa`, but the residual is X minus its projection on the convex hull of the chosen columns
    and the origin (H ≥ 0, columns summing to at most 1: Gillis, SIAM J. Imaging Sci. 7(2) 2014),
    computed by `inner_iterations` accelerated projected-gradient steps per pick.  Unlike SPA it does
    not need the anchors to be linearly independent, only that none lies in the convex hull of the
    others and the origin.  The projection is approximate (its accuracy depends on the conditioning of
    the chosen columns), so a rank above the number of true anchors picks further columns at the
    projection's accuracy; a ValueError is raised when every remaining column is reproduced to rounding
    (fewer than `rank` distinct directions)."""
    m, n = X.shape
    scale = column_scale(X, normalize)
    norms = column_norms_sq(X, scale)
    top = float(np.sqrt(norms.max())) if n else 0.0
    tol = USABLE_TOL * np.sqrt(m) * float(np.finfo(X.dtype).eps) * top
    anchors: list[int] = []
    basis = np.zeros((m, 0))
    C = np.zeros((0, n))              # (X D⁻¹)ᵀ basis, transposed: r × n
    H = np.zeros((0, n))
    residual = norms.copy()
    for r in range(rank):
        candidates = residual.copy()
        candidates[anchors] = -np.inf
        j = int(np.argmax(candidates))
        x = column(X, j) / scale[j]
        h = H[:, j]
        if r and not float(np.linalg.norm(x - basis @ h)) > tol or not float(np.linalg.norm(x)) > tol:
            raise ValueError(f"snpa: only {r} columns of X lie outside the convex hull of the others (and of 0), "
                             f"fewer than rank {rank}; choose rank ≤ {r}")
        anchors.append(j)
        basis = np.column_stack([basis, x])
        C = np.vstack([C, transposed_product(X, x) / scale])
        G = basis.T @ basis
        H = simplex_least_squares(C, G, np.vstack([H, np.zeros((1, n))]), inner_iterations)
        residual = norms - 2.0 * np.einsum("in,in->n", H, C) + np.einsum("in,in->n", H, G @ H)
    return np.asarray(anchors, dtype=np.int64)


def anchor_factors(engine, anchors):
    """(W, Ht, XᵀW, WᵀW): W the anchor columns of the engine's X, Ht by exact NNLS, both in X's dtype.
    (A ridge of 1e-12·max diag(WᵀW) keeps the NNLS well posed when the anchors are linearly dependent,
    which `snpa` allows.)"""
    X = engine.X
    W = np.column_stack([column(X, j) for j in anchors]).astype(engine.dtype)
    R, G = engine.XtW(W), W.T @ W
    ridge = 1e-12 * float(np.max(np.diag(G))) * np.eye(G.shape[0])
    Ht = nnls_bpp(R, G.astype(np.float64) + ridge).astype(engine.dtype, copy=False)
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

    def pick(self, rank):
        return spa(self.engine.X, rank, self.normalize)

    def result_options(self) -> dict:
        """What the result's options should record beyond the settings: the anchor column indices."""
        return {} if self.anchors is None else {"anchors": [int(j) for j in self.anchors]}

    def step(self, W, Ht):
        self.anchors = self.pick(W.shape[1])
        W_new, Ht_new, R, G = anchor_factors(self.engine, self.anchors)
        obj = frobenius_from_products(self.engine.sqnorm, Ht_new, R, G)   # ⟨Ht, XᵀW⟩ = ⟨W, X Ht⟩
        self.done = True
        return W_new, Ht_new, obj


@register_solver("snpa", losses=("frobenius",), monotone=False, max_iter=1, default_init="random",
                 summary="separable NMF: anchor columns by the successive non-negative projection algorithm "
                         "(Gillis 2014; robust, anchors may be linearly dependent), H by NNLS; one step",
                 options={"normalize": True, "inner_iterations": 200}, penalties=False)
class SNPA(SPA):
    """Successive non-negative projection algorithm (`snpa`); otherwise as `spa`."""

    def __init__(self, engine, loss, beta, *, normalize=True, inner_iterations=200, **options):
        super().__init__(engine, loss, beta, normalize=normalize, **options)
        if (isinstance(inner_iterations, (bool, np.bool_)) or not isinstance(inner_iterations, numbers.Integral)
                or inner_iterations < 1):
            raise ValueError(f"inner_iterations must be an integer ≥ 1; got {inner_iterations!r}")
        self.inner_iterations = int(inner_iterations)

    def pick(self, rank):
        return snpa(self.engine.X, rank, self.normalize, self.inner_iterations)
