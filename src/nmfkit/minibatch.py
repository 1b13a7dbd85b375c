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

`OnlineHALS` is the Frobenius counterpart (Mairal, Bach, Ponce & Sapiro, "Online learning for matrix
factorization and sparse coding", JMLR 11, 2010): the block's coefficients are the exact NNLS solution
given H (block principal pivoting), the statistics A ← ρ A + W_bᵀ W_b (k×k) and B ← ρ B + X_bᵀ W_b
(n×k) summarise the blocks seen, and Ht is updated by HALS sweeps on the surrogate
½ tr(Ht A Htᵀ) − tr(Htᵀ B), each column update its exact minimiser (the surrogate never increases).

Penalties keep scikit-learn's meaning per block: W's rows by alpha_W·n, H by alpha_H·b.
Cost per step: three passes over the block (W step, H step, and the block's loss, which the H
step's products give) of b·n·k each.
"""
from __future__ import annotations

import numpy as np

from .engines import array_ops, make_engine
from .penalties import Penalty
from .project import multiplicative_coefficients
from .solvers._anls_kernels import nnls_bpp
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

    def learn(self, X_block, rho: float):
        """One block seen once (streaming): its coefficients solved afresh, then H updated; returns them."""
        return self.step(X_block, None, rho, fresh=True)[0]

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


class OnlineHALS:
    """Frobenius online NMF (Mairal et al. 2010): the dictionary Ht (n×k) and statistics A (k×k), B (n×k)."""

    def __init__(self, H0, *, sweeps=3):
        self.Ht = np.array(H0.T, order="C")
        k = self.Ht.shape[1]
        self.A = np.zeros((k, k))
        self.B = np.zeros(self.Ht.shape)
        self.sweeps = sweeps

    def codes(self, X_block):
        """W_b = argmin_{W ≥ 0} ½‖X_b − W Htᵀ‖² for a block of rows (dense or CSR), exactly."""
        engine = make_engine(X_block)
        R = np.asarray(engine.XHt(self.Ht), dtype=np.float64)
        return nnls_bpp(R, self.Ht.T.astype(np.float64) @ self.Ht).astype(self.Ht.dtype, copy=False), engine

    def learn(self, X_block, rho: float):
        """Codes of the block, then A, B and Ht updated; returns the codes (b×k)."""
        W_block, engine = self.codes(X_block)
        W64 = W_block.astype(np.float64, copy=False)
        self.A = rho * self.A + W64.T @ W64
        self.B = rho * self.B + np.asarray(engine.XtW(W_block), dtype=np.float64)
        self.Ht = hals_on_statistics(self.Ht, self.A, self.B, self.sweeps)
        return W_block


def hals_on_statistics(Ht, A, B, sweeps):
    """`sweeps` HALS sweeps on ½ tr(Ht A Htᵀ) − tr(Htᵀ B), Ht ≥ 0: column j of Ht becomes
    max(0, Ht_j + (B_j − Ht A_j) / A_jj), its exact minimiser with the others fixed.  A component
    no block has used yet (A_jj = 0) keeps its column."""
    H = Ht.astype(np.float64)
    for _ in range(sweeps):
        for j in range(H.shape[1]):
            if A[j, j] > 0:
                H[:, j] = np.maximum(0.0, H[:, j] + (B[:, j] - H @ A[:, j]) / A[j, j])
    return H.astype(Ht.dtype, copy=False)
