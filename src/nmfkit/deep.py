"""Deep (multilayer) NMF: X ≈ W₁ W₂ … W_L H with every factor non-negative.

    nmfkit.deep_fit(X, ranks=[k₁, k₂, …, k_L], fine_tune=0, ...)

Layer-wise fitting (Cichocki & Zdunek, Electronics Letters 42(16) 2006, "multilayer NMF"):
X ≈ W₁ H₁ by `nmfkit.fit` at rank k₁, then H₁ ≈ W₂ H₂ at rank k₂, …, H_{L−1} ≈ W_L H_L, and H = H_L.
Each layer is a full fit (its solver, stopping rules and history: `DeepFactorization.layers`);
the ranks must not increase (k_{l+1} ≤ k_l), since layer l + 1 factorizes a k_l-row matrix.
The columns of W₁ are the finest parts; the product W₁ … W_l is the basis at level l.

Optional fine-tuning (Trigeorgis, Bousmalis, Zafeiriou & Schuller, ICML 2014, "A deep semi-NMF
model"; here with every factor non-negative) then minimises the whole model's error
f = ½‖X − W₁ … W_L H‖²_F jointly, sweeping the factors with multiplicative updates: for layer i,
with Ψ = W₁ … W_{i−1} and Φ = W_{i+1} … W_L H fixed,

    W_i ← W_i ∘ (Ψᵀ X Φᵀ) / (ΨᵀΨ W_i Φ Φᵀ),        H ← H ∘ (Bᵀ X) / (BᵀB H),  B = W₁ … W_L.

Guarantee: with Ψ and Φ fixed, f is a quadratic in W_i whose coefficient matrices ΨᵀΨ and
ΦΦᵀ are non-negative, so Lee & Seung's auxiliary function applies and each update does not
increase f; entries are kept at or above ε² (as the `mu` solver does), which keeps that
property.  So f never increases over the fine-tuning sweeps (`history`).  The layer-wise result
is not a minimiser of f; the fine-tuned one is a better point, not a global minimum.
X may be dense or sparse (never densified: X only enters through Xᵀ B and X Φᵀ).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .solvers.base import floor_of
from .validation import check_matrix, check_positive_int, seeded_rng


@dataclass
class DeepFactorization:
    """X ≈ W[0] W[1] … W[L−1] H.  `layers`: the layer-wise `Factorization`s (layer l factorizes the
    previous layer's H); `W`, `H`: the factors after fine-tuning (the layer-wise ones when
    fine_tune=0); `loss` = ½‖X − W₁…W_L H‖²; `relative_error` = ‖X − W₁…W_L H‖/‖X‖; `history`:
    the loss before and after each fine-tuning sweep."""
    W: list
    H: np.ndarray
    loss: float
    relative_error: float
    layers: list = field(repr=False)
    history: np.ndarray = field(repr=False)

    @property
    def ranks(self) -> list:
        return [w.shape[1] for w in self.W]

    def basis(self, level: int | None = None) -> np.ndarray:
        """W₁ … W_level (default: all layers), the basis of X at that level (m × k_level)."""
        level = len(self.W) if level is None else level
        if not 1 <= level <= len(self.W):
            raise ValueError(f"level must be between 1 and {len(self.W)}; got {level}")
        B = self.W[0]
        for w in self.W[1:level]:
            B = B @ w
        return B

    def reconstruct(self) -> np.ndarray:
        return self.basis() @ self.H


def _check_ranks(ranks, shape) -> list:
    if isinstance(ranks, (int, np.integer)) or not hasattr(ranks, "__len__") or len(ranks) == 0:
        raise TypeError(f"ranks must be a non-empty list of integers, one per layer; got {ranks!r}")
    ranks = [check_positive_int(k, "each rank") for k in ranks]
    if ranks[0] > min(shape):
        raise ValueError(f"the first rank {ranks[0]} is too large for a {shape[0]}×{shape[1]} matrix; "
                         f"it must be at most {min(shape)}")
    for a, b in zip(ranks, ranks[1:]):
        if b > a:
            raise ValueError(f"ranks must not increase from layer to layer (layer l + 1 factorizes a k_l-row "
                             f"matrix); got {ranks}")
    return ranks


def _products(X, B, H):
    """(⟨B, X Hᵀ⟩, ⟨BᵀB, H Hᵀ⟩) in float64: the two terms of ‖X − B H‖² besides ‖X‖²."""
    XHt = np.asarray(X @ H.T, dtype=np.float64)
    return float(np.vdot(B.astype(np.float64), XHt)), float(np.vdot(B.T @ B, H @ H.T))


def _loss(X, sqnorm, B, H) -> float:
    cross, quad = _products(X, B, H)
    return max(0.5 * (sqnorm - 2.0 * cross + quad), 0.0)


def _sqnorm(X) -> float:
    data = X.data if sp.issparse(X) else X
    return float(np.vdot(data.astype(np.float64, copy=False).ravel(), data.astype(np.float64, copy=False).ravel()))


def _chain(factors, dim):
    """The product of `factors` (small k×k' matrices), the dim×dim identity when there are none."""
    out = np.eye(dim)
    for f in factors:
        out = out @ f
    return out


def _basis(Ws):
    """W₁ … W_L (m × k_L), multiplied from the small end."""
    return Ws[0] @ _chain(Ws[1:], Ws[0].shape[1])


def _mu(F, numerator, denominator, floor):
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(denominator > 0, numerator / denominator, 1.0)
    return np.maximum(F * ratio, floor)


def _sweep(X, Ws, H, floor):
    """One fine-tuning sweep: each W_i, then H, by its multiplicative update (float64 factors)."""
    for i in range(len(Ws)):
        Phi = _chain(Ws[i + 1:], Ws[i].shape[1]) @ H   # k_i × n
        numerator = np.asarray(X @ Phi.T, dtype=np.float64)
        PsiTPsi = None
        if i > 0:                                      # Ψ = W₁ … W_{i−1} (the identity for the first layer)
            Psi = _chain(Ws[1:i], Ws[0].shape[1])
            Psi = Ws[0] @ Psi
            numerator, PsiTPsi = Psi.T @ numerator, Psi.T @ Psi
        denominator = (Ws[i] if PsiTPsi is None else PsiTPsi @ Ws[i]) @ (Phi @ Phi.T)
        Ws[i] = _mu(Ws[i], numerator, denominator, floor)
    B = _basis(Ws)
    H = _mu(H, np.asarray(X.T @ B, dtype=np.float64).T, (B.T @ B) @ H, floor)
    return Ws, H


def deep_fit(X, ranks, *, fine_tune=0, solver="auto", seed=None, **fit_options) -> DeepFactorization:
    """Deep NMF X ≈ W₁ W₂ … W_L H (see the module docstring).

    ranks: [k₁, …, k_L], non-increasing.  fine_tune: number of joint multiplicative sweeps after the
    layer-wise fits (0: none).  solver, seed and other keyword arguments (max_iter, tol, init, loss, …)
    go to every layer's `nmfkit.fit`; each layer gets its own seed drawn from `seed`.  The result's
    `loss` and `relative_error` are Frobenius, whatever loss the layers were fitted with."""
    from .fit import fit
    X = check_matrix(X, "X")
    ranks = _check_ranks(ranks, X.shape)
    fine_tune = check_positive_int(fine_tune, "fine_tune", minimum=0)
    loss = fit_options.get("loss")
    if fine_tune and (fit_options.get("beta") is not None
                      or (loss is not None and str(loss).lower() not in ("frobenius", "euclidean"))):
        raise ValueError("fine-tuning minimises the Frobenius error ½‖X − W₁…W_L H‖²; fit the layers with the "
                         "Frobenius loss, or use fine_tune=0 to keep other losses' layer-wise fits")
    rng = seeded_rng(seed)
    layers, data = [], X
    for k in ranks:
        result = fit(data, k, solver=solver, seed=int(rng.integers(2 ** 31)), **fit_options)
        layers.append(result)
        data = result.H
    dtype = np.result_type(X.dtype, np.float32)
    Ws = [np.asarray(r.W, dtype=np.float64) for r in layers]
    H = np.asarray(layers[-1].H, dtype=np.float64)
    sqnorm = _sqnorm(X)
    history = [_loss(X, sqnorm, _basis(Ws), H)]
    floor = floor_of(dtype)
    for _ in range(fine_tune):
        Ws, H = _sweep(X, Ws, H, floor)
        history.append(_loss(X, sqnorm, _basis(Ws), H))
    loss = history[-1]
    return DeepFactorization(W=[w.astype(dtype) for w in Ws], H=H.astype(dtype), loss=loss,
                             relative_error=float(np.sqrt(2.0 * loss / sqnorm)) if sqnorm > 0 else 0.0,
                             layers=layers, history=np.asarray(history))
