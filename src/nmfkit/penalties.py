"""L1 and L2 penalties on W and H, with scikit-learn's meaning.

    objective + a_W·l1·n·‖W‖₁ + ½·a_W·(1−l1)·n·‖W‖²_F
              + a_H·l1·m·‖H‖₁ + ½·a_H·(1−l1)·m·‖H‖²_F
(X is m×n; `alpha_H="same"` copies alpha_W; l1 = l1_ratio).  For the
Frobenius half-step on factor F with data (R, G) the penalty is exact as
    R ← R − λ₁,   G ← G + λ₂ I
so every (R, G) solver gets it for free; MU adds λ₁ + λ₂F to its denominator
instead, which keeps the update multiplicative and monotone.
"""
from __future__ import annotations

from dataclasses import dataclass

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
