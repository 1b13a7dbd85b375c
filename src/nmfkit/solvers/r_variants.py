"""R NMF 0.25's other iterative methods, iterate for iterate: offset, nsNMF, ls-nmf, pe-nmf, siNMF.

Each reproduces the package's update (`nmfAlgorithm(NAME)@Update` and its C++
kernels) from the same (W0, H0); ε = 1e-9 where R has one.  Written in R's wide
form (V m×n, W m×k, H k×n); one iteration is R's update function once.

offset  (Badea 2008, "NMF with offset"): V ≈ W H + o 1ᵀ, Frobenius.
    H ← max(H ∘ WᵀV, ε) / (WᵀW H + (Wᵀo) 1ᵀ + ε)
    W ← max(W ∘ V Hᵀ, ε) / (W H Hᵀ + o (H 1)ᵀ + ε)
    o ← o ∘ max(V 1, ε) / ((W H + o 1ᵀ) 1 + ε)      (o starts at the row means of V)
    In nmfkit the offset is the last component: `fit(X, k + 1, solver="offset")`
    returns W = [W o] and H = [H; 1ᵀ], so W H is the fitted matrix.
nsnmf  (Pascual-Montano et al. 2006, non-smooth NMF): V ≈ W S H with the smoothing
    matrix S = (1 − θ) I + (θ/k) 1 1ᵀ, generalised KL, Brunet's updates on (W S, H)
    and (W, S H), then W's columns are scaled to sum to 1 (H not compensated).
    nmfkit returns W and S H (so W H is the fitted matrix); `r_api` gives R's H.
lsnmf  (Wang et al. 2006, least-squares NMF): weighted Frobenius ½ Σ ω (V − W H)²:
    H ← max(H ∘ Wᵀ(ω∘V), ε) / (Wᵀ(ω∘W H) + ε), then W likewise with the new H.
penmf  (Zhang et al. 2008, pattern-expression NMF; α = `alpha`, β = `sparsity`):
    ½‖V − W H‖² + (α/2) Σ_{a≠b} w_aᵀ w_b + β Σ H
    H ← H ∘ WᵀV / (WᵀW H + β);  W ← W ∘ V Hᵀ / (W H Hᵀ + α W (1 1ᵀ − I))   (no ε, as in R)
sinmf  (side-information NMF): sample groups g enter as fixed indicator rows of H
    (the last L components, one per group level), with sample weights
    β_j = 1 on the first level, β₀‖V_first‖²/‖V_level‖² elsewhere; objective
    ½ Σ_j β_j ‖v_j − W h_j‖².  W first (all columns, weighted), then the free rows
    of H, then the free columns of W scaled to unit L2 norm (H compensated).

All are refused with penalties (alpha_W/alpha_H): they reproduce R, which has none.
Every method returns its last iterate, as R does.  None is monotone in the
sense the driver checks: ε-clamps, unscaled normalisations and the offset's
heuristic step can each raise the objective a little.
Cost per iteration: two passes over V (offset, pe-nmf, siNMF: products with
V; nsNMF: two KL ratio passes); ls-nmf forms W H densely (m·n·k), so it runs on
dense data only.
Reference: R package NMF 0.25 (Gaujoux & Seoighe 2010) and the papers above.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..engines.base import frobenius_from_products
from ..registry import register_solver
from .r_compat import LEE_EPS, _RCompat, refuse_zero_lines

EPS = LEE_EPS


def _refuse_dead_start(W, Ht, name):
    for F, what in ((W, "column of W0"), (Ht, "row of H0")):
        dead = np.flatnonzero(F.sum(axis=0) == 0)
        if dead.size:
            raise ValueError(f"solver {name!r} needs a start without all-zero components; component "
                             f"{dead[0]} is an all-zero {what} (R would divide by zero)")


def smoothing_matrix(k, theta, dtype=np.float64):
    """nsNMF's S = (1 − θ) I + (θ/k) 1 1ᵀ (k×k)."""
    return (np.eye(k) * (1.0 - theta) + theta / k).astype(dtype, copy=False)


def _real(value, name, low=0.0, high=None, open_high=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    value = float(value)
    if value < low or (high is not None and (value >= high if open_high else value > high)):
        bound = f"[{low:g}, {high:g}{')' if open_high else ']'}" if high is not None else f"≥ {low:g}"
        raise ValueError(f"{name} must be in {bound}; got {value!r}")
    return value


@register_solver("offset", losses=("frobenius",), monotone=False, max_iter=2000, default_init="random",
                 summary="R NMF 0.25 'offset' (Badea 2008): Lee MU with a per-feature offset, "
                         "held as the last component (R-exact)", penalties=False)
class ROffset(_RCompat):
    """NMF with offset.  `offset` = the starting offset vector (length m); default:
    the row means of X, as R.  The last component is the offset: its row of H is 1."""

    def __init__(self, engine, loss, beta, offset=None, **options):
        super().__init__(engine, loss, beta, **options)
        m = engine.shape[0]
        if offset is not None:
            offset = np.asarray(offset, dtype=np.float64)
            if offset.shape != (m,) or not np.all(np.isfinite(offset)) or offset.min() < 0:
                raise ValueError(f"offset must be a finite non-negative vector of length {m} (one per row of X); "
                                 f"got shape {offset.shape}")
        self.start_offset = offset
        self.row_sums = np.maximum(engine.X_row_sums(), EPS)

    def prepare(self, W, Ht):
        if W.shape[1] < 2:
            raise ValueError("solver 'offset' holds the offset as the last component: use rank ≥ 2 "
                             "(k components + 1 offset)")
        W, Ht = np.array(W, copy=True), np.array(Ht, copy=True)
        W[:, -1] = (self.engine.X_row_sums() / self.engine.shape[1]     # R: rowMeans(V)
                    if self.start_offset is None else self.start_offset)
        Ht[:, -1] = 1.0
        return super().prepare(W, Ht)

    def step(self, W, Ht):
        e, k = self.engine, W.shape[1] - 1
        XtW, G = e.XtW(W), W.T @ W
        H_new = np.maximum(Ht[:, :k] * XtW[:, :k], EPS) / (Ht @ G[:, :k] + EPS)
        Ht = np.concatenate([H_new, Ht[:, k:]], axis=1)
        XHt, G = e.XHt(Ht), Ht.T @ Ht
        W_free = np.maximum(W[:, :k] * XHt[:, :k], EPS) / (W @ G[:, :k] + EPS)
        W = np.concatenate([W_free, W[:, k:]], axis=1)
        fitted_row_sums = W @ G[:, k]           # (W H + o 1ᵀ) 1 with the new W, H and the old o
        W[:, k] = W[:, k] * self.row_sums / (fitted_row_sums + EPS)
        self.iteration += 1
        return W, Ht, frobenius_from_products(e.sqnorm, W, XHt, G)


@register_solver("nsnmf", losses=("kl",), monotone=False, max_iter=2000, default_init="random",
                 summary="R NMF 0.25 'nsNMF' (Pascual-Montano 2006): non-smooth NMF V ≈ W S H, "
                         "KL, smoothing theta (R-exact)", penalties=False)
class RNsNMF(_RCompat):
    """Non-smooth NMF.  `theta` ∈ [0, 1) (default 0.5, as R) sets S; the returned
    H is S H (so W H is the fitted matrix).  Refuses data with all-zero rows or
    columns, on which R's updates divide 0 by 0."""
    requires = _RCompat.requires | {"kl"}

    objective_every = 10

    def __init__(self, engine, loss, beta, theta=0.5, **options):
        super().__init__(engine, loss, beta, **options)
        self.theta = _real(theta, "theta", 0.0, 1.0, open_high=True)
        refuse_zero_lines(engine, "nsnmf", "uses R's KL updates, which have no epsilon and return NaN "
                                            "on all-zero rows or columns")
        self._raw = (None, None)      # (smoothed Ht returned, raw Ht behind it)

    def prepare(self, W, Ht):
        _refuse_dead_start(W, Ht, "nsnmf")
        W, Ht = super().prepare(W, Ht)
        S = smoothing_matrix(W.shape[1], self.theta, Ht.dtype)
        smoothed = Ht @ S
        self._raw = (smoothed, Ht)
        return W, smoothed

    def raw_h(self, smoothed):
        """Ht from the smoothed S H that `step` returns (Ht S = smoothed)."""
        if smoothed is self._raw[0]:
            return self._raw[1]
        S = smoothing_matrix(smoothed.shape[1], self.theta, np.float64)
        return np.linalg.solve(S, np.asarray(smoothed, np.float64).T).T.astype(smoothed.dtype, copy=False)

    def step(self, W, Ht_s):
        e = self.engine
        Ht = self.raw_h(Ht_s)
        S = smoothing_matrix(W.shape[1], self.theta, W.dtype)
        WS = W @ S
        Ht = Ht * e.kl_ratio(WS, Ht, need=("QtW",))["QtW"] / WS.sum(axis=0)
        Ht_s = Ht @ S
        W = W * e.kl_ratio(W, Ht_s, need=("QHt",))["QHt"] / Ht_s.sum(axis=0)
        W /= W.sum(axis=0)
        self.iteration += 1
        self._raw = (Ht_s, Ht)
        return W, Ht_s, e.kl_divergence(W, Ht_s) if self.want_objective else None


@register_solver("lsnmf", losses=("frobenius",), monotone=False, max_iter=2000,
                 default_init="random", summary="R NMF 0.25 'ls-nmf' (Wang 2006): weighted least-squares "
                                                "NMF, weight matrix (R-exact)", penalties=False)
class RLsNMF(_RCompat):
    """Least-squares NMF with entry weights `weight` (an m×n matrix, or one number;
    default 1).  Forms W H densely each half-step."""
    requires = _RCompat.requires | {"dense_data"}

    def __init__(self, engine, loss, beta, weight=1.0, **options):
        super().__init__(engine, loss, beta, **options)
        w = np.asarray(weight, dtype=np.float64)
        if w.ndim == 0:
            w = np.full(engine.shape, float(w))
        if w.shape != engine.shape:
            raise ValueError(f"weight must be one number or a matrix of X's shape {engine.shape}; got shape {w.shape}")
        if not np.all(np.isfinite(w)) or w.min() < 0:
            raise ValueError("weight must be finite and non-negative")
        self.weight = w.astype(engine.dtype, copy=False)
        self.wX = self.weight * engine.X

    def objective(self, W, Ht):
        D = self.engine.X - W @ Ht.T
        return 0.5 * float(np.einsum("ij,ij->", self.weight * D, D, dtype=np.float64))

    def step(self, W, Ht):
        wX, w = self.wX, self.weight
        wWH = (W @ Ht.T) * w
        Ht = np.maximum(Ht * (wX.T @ W), EPS) / (wWH.T @ W + EPS)
        wWH = (W @ Ht.T) * w
        W = np.maximum(W * (wX @ Ht), EPS) / (wWH @ Ht + EPS)
        self.iteration += 1
        return W, Ht, self.objective(W, Ht)


@register_solver("penmf", losses=("frobenius",), monotone=False, max_iter=2000, default_init="random",
                 summary="R NMF 0.25 'pe-nmf' (Zhang 2008): pattern-expression NMF, alpha (basis "
                         "independence) and beta (coefficient L1) (R-exact)", penalties=False)
class RPeNMF(_RCompat):
    """Pattern-expression NMF with `alpha` ≥ 0 and `sparsity` ≥ 0 (R's alpha and beta; R
    requires both, here both default to 0: Lee–Seung's update without ε).  No ε, as in R: data with
    all-zero rows or columns is refused (0/0)."""

    def __init__(self, engine, loss, beta, alpha=0.0, sparsity=0.0, **options):
        super().__init__(engine, loss, beta, **options)
        self.alpha = _real(alpha, "alpha")
        self.beta_h = _real(sparsity, "sparsity")
        refuse_zero_lines(engine, "penmf", "has no epsilon (as R's pe-nmf) and would divide 0 by 0")

    def prepare(self, W, Ht):
        _refuse_dead_start(W, Ht, "penmf")
        return super().prepare(W, Ht)

    def _penalty(self, W, Ht):
        G = W.T @ W
        return 0.5 * self.alpha * float(G.sum() - np.trace(G)) + self.beta_h * float(Ht.sum(dtype=np.float64))

    def objective(self, W, Ht):
        return self.engine.frobenius(W, Ht) + self._penalty(W, Ht)

    def step(self, W, Ht):
        e = self.engine
        Ht = Ht * e.XtW(W) / (Ht @ (W.T @ W) + self.beta_h)
        XHt, G = e.XHt(Ht), Ht.T @ Ht
        W = W * XHt / (W @ G + self.alpha * (W.sum(axis=1, keepdims=True) - W))
        self.iteration += 1
        return W, Ht, frobenius_from_products(e.sqnorm, W, XHt, G) + self._penalty(W, Ht)


def group_indicators(groups, n):
    """(levels, L×n 0/1 indicator matrix) of a length-n label vector, levels sorted."""
    g = np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != n:
        raise ValueError(f"groups must give one label per column of X ({n}); got shape {g.shape}")
    levels, codes = np.unique(g, return_inverse=True)
    return levels, (codes[None, :] == np.arange(len(levels))[:, None]).astype(np.float64)


@register_solver("sinmf", losses=("frobenius",), monotone=False, max_iter=2000, default_init="random",
                 summary="R NMF 0.25 'siNMF': side-information NMF, sample groups as fixed coefficient "
                         "rows with balancing weights (R-exact)", penalties=False)
class RSiNMF(_RCompat):
    """Side-information NMF.  `groups`: one label per column of X; its L levels
    (sorted) become the last L components, whose rows of H are fixed 0/1 indicators,
    so `rank` counts them (rank = k free components + L).  `beta0` (default 1;
    None: no weights) balances the groups; `scale` (default True) scales the free
    basis columns to unit L2 norm.  Without groups: Lee's update with that scaling."""

    def __init__(self, engine, loss, beta, groups=None, beta0=1.0, scale=True, **options):
        super().__init__(engine, loss, beta, **options)
        m, n = engine.shape
        self.scale = bool(scale)
        self.fixed, self.levels = None, None
        self.sample_weight = None
        if groups is None:
            return
        self.levels, self.fixed = group_indicators(groups, n)
        if beta0 is not None:
            beta0 = _real(beta0, "beta0")
            norms = np.array([self._block_sqnorm(engine, self.fixed[q] > 0) for q in range(len(self.levels))])
            if np.any(norms == 0):
                raise ValueError(f"group {self.levels[np.argmax(norms == 0)]!r} has only all-zero columns; "
                                 "its balancing weight would divide by zero")
            self.sample_weight = self.fixed.T @ np.concatenate([[1.0], beta0 * norms[0] / norms[1:]])

    @staticmethod
    def _block_sqnorm(engine, cols):
        X = engine.X[:, np.flatnonzero(cols)]
        return float(X.multiply(X).sum()) if hasattr(X, "multiply") else float(np.einsum("ij,ij->", X, X))

    def prepare(self, W, Ht):
        W, Ht = np.array(W, copy=True), np.array(Ht, copy=True)
        if self.fixed is not None:
            L = self.fixed.shape[0]
            if W.shape[1] <= L:
                raise ValueError(f"solver 'sinmf' holds the {L} group levels as the last {L} components: "
                                 f"rank must exceed {L} (k free components + {L})")
            Ht[:, -L:] = self.fixed.T
        return super().prepare(W, Ht)

    def objective(self, W, Ht):
        if self.sample_weight is None:
            return self.engine.frobenius(W, Ht)
        return self._weighted_frobenius(W, Ht)

    def _weighted_frobenius(self, W, Ht):
        """½ Σ_j β_j ‖x_j − W h_j‖² from products: the columns weighted by √β."""
        e, sw = self.engine, np.sqrt(self.sample_weight)
        X = e.X
        Xw = X.multiply(sw[None, :]).tocsr() if hasattr(X, "multiply") else X * sw[None, :]
        sq = float(Xw.multiply(Xw).sum()) if hasattr(Xw, "multiply") else float(np.einsum("ij,ij->", Xw, Xw))
        Hw = Ht * sw[:, None]
        return frobenius_from_products(sq, W, np.asarray(Xw @ Hw), Hw.T @ Hw)

    def step(self, W, Ht):
        e, k = self.engine, W.shape[1]
        free = k - (0 if self.fixed is None else self.fixed.shape[0])
        Hb = Ht if self.sample_weight is None else Ht * self.sample_weight[:, None]
        W = np.maximum(W * e.XHt(Hb), EPS) / (W @ (Hb.T @ Ht) + EPS)
        XtW, G = e.XtW(W), W.T @ W
        H_free = np.maximum(Ht[:, :free] * XtW[:, :free], EPS) / (Ht @ G[:, :free] + EPS)
        Ht = np.concatenate([H_free, Ht[:, free:]], axis=1)
        if self.scale:
            d = np.sqrt((W[:, :free] ** 2).sum(axis=0))
            W[:, :free] /= d
            Ht[:, :free] *= d
        self.iteration += 1
        return W, Ht, self.objective(W, Ht)
