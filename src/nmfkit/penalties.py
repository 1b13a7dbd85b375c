"""L1 and L2 penalties on W and H, with scikit-learn's meaning.

    objective + a_W·l1·n·‖W‖₁ + ½·a_W·(1−l1)·n·‖W‖²_F
              + a_H·l1·m·‖H‖₁ + ½·a_H·(1−l1)·m·‖H‖²_F
(X is m×n; `alpha_H="same"` copies alpha_W; l1 = l1_ratio).  For the
Frobenius half-step on factor F with data (R, G) the penalty is exact as
    R ← R − λ₁,   G ← G + λ₂ I
so every (R, G) solver gets it for free; MU adds λ₁ + λ₂F to its denominator
instead, which keeps the update multiplicative and monotone.

`FactorRule` holds the per-factor penalties and constraints of the coordinate-descent solvers
(`hals`), each with the meaning of RcppML 1.0's argument of the same role:

    l21     λ Σ_j ‖F[:, j]‖₂             group sparsity: whole components go to zero (Yuan & Lin 2006)
    ortho   λ Σ_{a<b} ⟨F[:, a], F[:, b]⟩  decorrelated (for F ≥ 0: disjoint-support) components
    graph   (γ/2) tr(Fᵀ L F) = (γ/4) Σ_{ab} A_ab ‖F[a] − F[b]‖²,  L = D − A  (Cai et al. 2011, GNMF)
    upper   F ≤ u  (box constraint)
    nonneg  False lifts F ≥ 0 (semi-NMF of Ding, Li & Jordan 2010 when set for W)

How a half-step on F with data (R, G) and start F₀ folds them in (F₀ is where the majorizers touch):

    ortho   G ← G + λ (11ᵀ − I)                               exact (a quadratic in F)
    graph   R ← R − γ L F₀ + 2γ D F₀,   row i's curvature + 2γ Dᵢᵢ   a majorizer: L ⪯ 2D, since
            2D − L = D + A is a sum of (e_a + e_b)(e_a + e_b)ᵀ A_ab ⪰ 0; it equals the penalty at F₀
    l21     G_jj ← G_jj + λ / ‖F₀[:, j]‖                        a majorizer: ‖f‖ ≤ (‖f‖² + ‖f₀‖²)/(2‖f₀‖)
            (RcppML's adaptive ridge); a zero component stays zero, and after the sweeps a component is
            set to zero when that lowers the majorized objective (an exact comparison), so zeros appear
            in finitely many steps
    box     every coordinate update is clipped to [lower, upper], the exact minimiser on the box

Every coordinate update minimises a function that lies above the penalised objective and touches it at
F₀, so each half-step does not increase the penalised objective (majorize–minimize).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .engines import array_ops
from .validation import check_nonneg_float


@dataclass(frozen=True)
class Penalty:
    l1_W: float = 0.0
    l2_W: float = 0.0
    l1_H: float = 0.0
    l2_H: float = 0.0

    @classmethod
    def from_options(cls, shape, alpha_W=0.0, alpha_H="same", l1_ratio=0.0):
        m, n = shape
        alpha_W = check_nonneg_float(alpha_W, "alpha_W")
        alpha_H = alpha_W if isinstance(alpha_H, str) and alpha_H == "same" else check_nonneg_float(alpha_H, "alpha_H")
        l1_ratio = check_nonneg_float(l1_ratio, "l1_ratio")
        if l1_ratio > 1:
            raise ValueError(f"l1_ratio must be in [0, 1]; got {l1_ratio}")
        return cls(alpha_W * l1_ratio * n, alpha_W * (1 - l1_ratio) * n,
                   alpha_H * l1_ratio * m, alpha_H * (1 - l1_ratio) * m)

    @property
    def active(self) -> bool:
        return any((self.l1_W, self.l2_W, self.l1_H, self.l2_H))

    def terms(self, which: str) -> tuple[float, float]:
        """(λ₁, λ₂) for the factor 'W' or 'H'."""
        return (self.l1_W, self.l2_W) if which == "W" else (self.l1_H, self.l2_H)

    def edit(self, R, G, which: str):
        """(R − λ₁, G + λ₂I): the penalised least-squares data of a half-step."""
        l1, l2 = self.terms(which)
        if l1:
            R = R - l1
        if l2:
            G = G + l2 * array_ops(G).eye(G.shape[0], G)
        return R, G

    def value(self, W, Ht) -> float:
        """The penalty's contribution to the objective."""
        if not self.active:
            return 0.0
        total, ops = 0.0, array_ops(W)
        for F, which in ((W, "W"), (Ht, "H")):
            l1, l2 = self.terms(which)
            if l1:
                total += l1 * ops.sum64(F)
            if l2:
                total += 0.5 * l2 * ops.vdot(F, F)
        return total


# -- per-factor penalties and constraints of the coordinate-descent solvers --------------------------

FACTOR_OPTIONS = ("l21_W", "l21_H", "ortho_W", "ortho_H", "graph_W", "graph_H", "graph_alpha",
                  "upper_bound", "nonneg_W", "nonneg_H")


@dataclass(frozen=True)
class FactorRule:
    """Penalties and constraints of one factor (the module docstring gives the objective terms)."""
    nonneg: bool = True
    upper: float = np.inf
    l21: float = 0.0
    ortho: float = 0.0
    graph_alpha: float = 0.0
    laplacian: object = field(default=None, repr=False)   # CSR L = D − A (p×p), diagonal of A dropped
    degree: object = field(default=None, repr=False)      # D's diagonal (p values)

    @property
    def lower(self) -> float:
        return 0.0 if self.nonneg else -np.inf

    @property
    def active(self) -> bool:
        """Whether anything differs from plain non-negativity."""
        return not self.nonneg or self.upper < np.inf or self.penalised

    @property
    def penalised(self) -> bool:
        return bool(self.l21 or self.ortho or (self.graph_alpha and self.laplacian is not None))

    @property
    def graph(self) -> bool:
        return bool(self.graph_alpha) and self.laplacian is not None

    def project(self, F):
        """F clipped to [lower, upper] (a new array)."""
        return np.clip(F, self.lower, self.upper).astype(F.dtype, copy=False)

    def value(self, F) -> float:
        """This factor's penalty at F (float64 sums)."""
        total = 0.0
        F64 = np.asarray(F, dtype=np.float64)
        if self.l21:
            total += self.l21 * float(np.sqrt((F64 * F64).sum(axis=0)).sum())
        if self.ortho:
            col = F64.sum(axis=1)
            total += 0.5 * self.ortho * (float(col @ col) - float(np.vdot(F64, F64)))
        if self.graph:
            total += 0.5 * self.graph_alpha * float(np.vdot(F64, self.laplacian @ F64))
        return total

    def edit(self, R, G, F0):
        """(R', G', row_diag, frozen) of the majorized half-step from F₀ (module docstring); `frozen` are the
        components L21 has set to zero, which stay zero (their rows and columns of G' are cleared)."""
        dtype = F0.dtype
        row_diag, frozen = None, np.zeros(G.shape[0], bool)
        if self.ortho:
            G = G + dtype.type(self.ortho) * (np.ones_like(G) - np.eye(G.shape[0], dtype=G.dtype))
        if self.graph:
            gamma = self.graph_alpha
            LF = np.asarray(self.laplacian @ np.asarray(F0, np.float64))
            R = (R - (gamma * LF - (2 * gamma) * self.degree[:, None] * F0)).astype(dtype, copy=False)
            row_diag = (2 * gamma * self.degree).astype(dtype)
        if self.l21:
            norms = np.sqrt((np.asarray(F0, np.float64) ** 2).sum(axis=0))
            frozen = norms == 0
            G = np.array(G, dtype=dtype, copy=True)
            live = ~frozen
            G[live, live] += (self.l21 / norms[live]).astype(dtype)
            if frozen.any():
                R = np.array(R, dtype=dtype, copy=True)
                G[frozen, :] = 0
                G[:, frozen] = 0
                G[frozen, frozen] = 1
                R[:, frozen] = 0
        return R, G, row_diag, frozen

    def drop_components(self, F, R, G, row_diag):
        """Set to zero, one at a time, the components whose removal lowers the majorized half-step objective
        ½ tr(F G Fᵀ) + ½ Σᵢ dᵢ‖Fᵢ‖² − ⟨F, R⟩ + λ Σ_j ‖F[:, j]‖ (G, R without the L21 term); F in place.
        Returns the number dropped."""
        if not self.l21:
            return 0
        F64 = F.astype(np.float64)
        d = np.zeros(len(F)) if row_diag is None else np.asarray(row_diag, np.float64)
        grad = F64 @ np.asarray(G, np.float64) + d[:, None] * F64 - np.asarray(R, np.float64)
        dropped = 0
        for j in range(F.shape[1]):
            f = F64[:, j]
            norm = float(np.sqrt(f @ f))
            if norm == 0:
                continue
            # objective(F without component j) − objective(F)
            change = -float(f @ grad[:, j]) + 0.5 * (float(G[j, j]) * norm * norm + float(d @ (f * f))) \
                - self.l21 * norm
            if change < 0:
                grad -= np.outer(f, np.asarray(G[j], np.float64))
                grad[:, j] -= d * f
                F[:, j] = 0
                F64[:, j] = 0
                dropped += 1
        return dropped


def _pair(value, name):
    """(for W, for H) from one value or a pair."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be one value or a pair (for W, for H); got {len(value)} values")
        return tuple(value)
    return value, value


def _check_bool(value, name) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def _check_upper(value, name) -> float:
    if value is None:
        return np.inf
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or np.isnan(value) or value <= 0:
        raise ValueError(f"{name} must be a number > 0 or None (no bound); got {value!r}")
    return float(value)


def laplacian(adjacency, size: int, name: str):
    """(L = D − A as CSR float64, D's diagonal) of a validated adjacency matrix: square, `size`×`size`,
    symmetric, finite and non-negative, dense or SciPy sparse (not modified; its diagonal is ignored,
    self-loops do not change tr(Fᵀ L F))."""
    if sp.issparse(adjacency):
        A = sp.csr_matrix(adjacency, dtype=np.float64, copy=True)
    else:
        try:
            A = np.array(adjacency, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a square adjacency matrix (NumPy array or SciPy sparse); "
                            f"got {type(adjacency).__name__}") from None
        if A.ndim != 2:
            raise ValueError(f"{name} must be a square 2-D adjacency matrix; got {A.ndim} dimension(s)")
        A = sp.csr_matrix(A)
    if A.shape != (size, size):
        raise ValueError(f"{name} must be {size}×{size} (one row and column per "
                         f"{'row' if name.endswith('W') else 'column'} of X); got {A.shape[0]}×{A.shape[1]}")
    values = A.data
    if not np.isfinite(values).all():
        raise ValueError(f"{name} holds NaN or infinite weights")
    if (values < 0).any():
        hint = ""
        row_sums = np.asarray(A.sum(axis=1)).ravel()
        if (A.diagonal() > 0).any() and np.allclose(row_sums, 0, atol=1e-9 * abs(values).max()):
            hint = " (it looks like a graph Laplacian L = D − A: pass the adjacency A instead)"
        raise ValueError(f"{name} holds {int((values < 0).sum())} negative weights; edge weights must be ≥ 0{hint}")
    A.setdiag(0)
    A.eliminate_zeros()
    top = float(abs(A).max()) if A.nnz else 0.0
    asym = abs(A - A.T)
    if asym.nnz and float(asym.max()) > 1e-12 * top:
        raise ValueError(f"{name} must be symmetric (an undirected graph); symmetrize it, e.g. (A + A.T) / 2")
    A = (0.5 * (A + A.T)).tocsr()
    degree = np.asarray(A.sum(axis=1)).ravel()
    return (sp.diags(degree) - A).tocsr(), degree


def factor_rules(shape, *, l21_W=0.0, l21_H=0.0, ortho_W=0.0, ortho_H=0.0, graph_W=None, graph_H=None,
                 graph_alpha=0.0, upper_bound=None, nonneg_W=True, nonneg_H=True) -> dict:
    """{'W': FactorRule, 'H': FactorRule} from the solver options, validated (one-line errors)."""
    m, n = shape
    up_W, up_H = _pair(upper_bound, "upper_bound")
    ga_W, ga_H = _pair(graph_alpha, "graph_alpha")
    rules = {}
    for which, size, l21, ortho, graph, ga, up, nonneg in (
            ("W", m, l21_W, ortho_W, graph_W, ga_W, up_W, nonneg_W),
            ("H", n, l21_H, ortho_H, graph_H, ga_H, up_H, nonneg_H)):
        l21 = check_nonneg_float(l21, f"l21_{which}")
        ortho = check_nonneg_float(ortho, f"ortho_{which}")
        ga = check_nonneg_float(ga, "graph_alpha")
        nonneg = _check_bool(nonneg, f"nonneg_{which}")
        upper = _check_upper(up, "upper_bound")
        L = degree = None
        if graph is not None:
            if not ga:
                raise ValueError(f"graph_{which} is given but graph_alpha is 0: give its weight, e.g. graph_alpha=1")
            L, degree = laplacian(graph, size, f"graph_{which}")
        if ortho and not nonneg:
            raise ValueError(f"ortho_{which} needs nonneg_{which}=True: on a signed factor the penalty "
                             "Σ⟨f_a, f_b⟩ is unbounded below")
        rules[which] = FactorRule(nonneg, upper, l21, ortho, ga if L is not None else 0.0, L, degree)
    if graph_W is None and graph_H is None and any((ga_W, ga_H)) and not isinstance(graph_alpha, str):
        raise ValueError("graph_alpha is given without a graph: pass graph_W= and/or graph_H= (adjacency matrices)")
    return rules
