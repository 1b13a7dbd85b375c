"""Online multiplicative updates over mini-batches of rows (Lefèvre, Bach & Févotte, "Online
algorithms for nonnegative matrix factorization with the Itakura-Saito divergence", WASPAA 2011).

X (m×n) ≈ W H is learned from blocks of rows X_b (b rows each), one block per step:

  1. the block's coefficients W_b are updated with H fixed: one β-MU step from the rows'
     previous values, or, with `fresh=True`, solved afresh given H by β-MU from a uniform start
     (`nmfkit.project`'s updates, each row stopping at `tol`, at most `fresh_max_iter` steps);
  2. the dictionary H is updated from statistics accumulated over the blocks seen so far, older
     blocks down-weighted by ρ (tall form, Ht = Hᵀ):
         A ← ρ A + Ht^{1/γ} ∘ N_b,   B ← ρ B + D_b + λ₁ + λ₂ Ht,   Ht ← max(δ, (A / B)^γ)
     N_b, D_b are the numerator and denominator of the β-MU step for H on the block
     (`engine.beta_products`), γ = γ(β) the Févotte–Idier exponent that makes that step
     monotone, δ the MU floor.  Each term is the minimiser of the block's auxiliary function, so
     (A, B) sum the auxiliary functions of past blocks with weights ρ^age.  With ρ = 0 and one
     block holding all rows, a step is exactly one batch β-MU iteration (W, then H).

Penalties keep scikit-learn's meaning per block: W's rows by alpha_W·n, H by alpha_H·b.
Cost per step: three passes over the block (W step, H step, and the block's loss, which the H
step's products give) of b·n·k each.
"""
from __future__ import annotations

import numpy as np

from .engines import array_ops, make_engine
from .penalties import Penalty
from .project import multiplicative_coefficients
from .solvers.base import floor_of
from .solvers.mu import beta_exponent, mu_beta_half


def row_blocks(n_rows: int, batch_size: int):
    """Consecutive row slices of at most batch_size rows covering 0..n_rows."""
    return [slice(i, min(i + batch_size, n_rows)) for i in range(0, n_rows, batch_size)]


class OnlineMU:
    """The dictionary H (tall: Ht, n×k) and its accumulated statistics (A, B)."""

    def __init__(self, H0, beta: float, *, alpha_W=0.0, alpha_H="same", l1_ratio=0.0):
        self.Ht = np.ascontiguousarray(H0.T)
        self.beta = float(beta)
        self.gamma = beta_exponent(self.beta)
        self.floor = floor_of(self.Ht.dtype)
        self.Ht = np.maximum(self.Ht, self.floor)
        # A / B = Ht^{1/γ}: the start acts as a prior of weight one block, forgotten at rate ρ.
        self.A = self.Ht ** (1.0 / self.gamma) if self.gamma != 1.0 else self.Ht.copy()
        self.B = np.ones_like(self.Ht)
        self.penalty_options = {"alpha_W": alpha_W, "alpha_H": alpha_H, "l1_ratio": l1_ratio}

    @property
    def H(self):
        return np.ascontiguousarray(self.Ht.T)

    def step(self, X_block, W_block, rho: float, *, fresh=False, fresh_max_iter=30, tol=1e-4):
        """One mini-batch step on the rows X_block (dense or CSR) whose coefficients are W_block
        (ignored when fresh); returns (new W_block, the block's mean loss before the H update)."""
        engine = make_engine(X_block)
        penalty = Penalty.from_options(engine.shape, **self.penalty_options)
        if fresh:       # multiplicative updates from the uniform start, at most fresh_max_iter of them
            W_block = multiplicative_coefficients(
                engine.transpose(), self.Ht, self.beta,
                Penalty.from_options(engine.shape[::-1], 0.0, self.penalty_options["alpha_W"],
                                     self.penalty_options["l1_ratio"]), tol, fresh_max_iter)
        else:
            W_block = np.maximum(W_block, self.floor)
            prod = engine.beta_products(W_block, self.Ht, self.beta, need=("XH",))
            W_block = mu_beta_half(W_block, prod["num_W"], prod["den_W"], self.gamma, self.floor,
                                   *penalty.terms("W"))
        W_block = np.maximum(W_block, self.floor)
        prod = engine.beta_products(W_block, self.Ht, self.beta, need=("XW",))
        l1, l2 = penalty.terms("H")
        gain = self.Ht ** (1.0 / self.gamma) if self.gamma != 1.0 else self.Ht
        self.A = rho * self.A + gain * prod["num_H"]
        B = rho * self.B + prod["den_H"]
        if l1:
            B += l1
        if l2:
            B += l2 * self.Ht
        self.B = B
        ratio = self.A / np.maximum(self.B, array_ops(B).tiny(B))
        self.Ht = np.maximum(ratio ** self.gamma if self.gamma != 1.0 else ratio, self.floor)
        cost = (prod["loss"] + penalty.value(W_block, self.Ht)) / engine.shape[0]
        return W_block, float(cost)
