"""Shared test data: matrices with a known, planted structure."""
import numpy as np


def clustered(m=60, n=30, k=3, noise=0.01, seed=0):
    """Features × samples with k clear sample groups (each sample loads on one component)."""
    rng = np.random.default_rng(seed)
    W = rng.random((m, k)) * (rng.random((m, k)) < 0.5) + 0.01
    groups = np.arange(n) % k
    H = np.zeros((k, n))
    H[groups, np.arange(n)] = 1.0 + rng.random(n)
    return W @ H + noise * rng.random((m, n)), groups
