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


def low_rank(m, n, k, noise=0.01, seed=0):
    """|L + noise·std(L)·N(0, 1)| with L = U V, U and V uniform on [0, 1): rank k up to the noise."""
    rng = np.random.default_rng(seed)
    L = rng.random((m, k)) @ rng.random((k, n))
    return np.abs(L + noise * L.std() * rng.standard_normal(L.shape))


def low_rank_with_noise_level(m=60, n=50, k=3, noise=0.01, seed=0):
    """(X, ‖X − L‖/‖X‖): L = (U + 0.1)(V + 0.1) with relative noise, the error a perfect fit leaves."""
    rng = np.random.default_rng(seed)
    L = (rng.random((m, k)) + 0.1) @ (rng.random((k, n)) + 0.1)
    X = np.maximum(L * (1 + noise * rng.standard_normal(L.shape)), 0)
    return X, np.linalg.norm(X - L) / np.linalg.norm(X)


def basis_error(F_true, F_fit):
    """RMS distance between unit-norm columns of a planted and a fitted factor, matched by the best
    permutation (factors are recovered up to permutation and scale)."""
    from scipy.optimize import linear_sum_assignment
    a = F_true / np.linalg.norm(F_true, axis=0)
    b = F_fit / np.maximum(np.linalg.norm(F_fit, axis=0), 1e-300)
    rows, cols = linear_sum_assignment(-(a.T @ b))
    return float(np.linalg.norm(a[:, rows] - b[:, cols]) / np.sqrt(a.shape[1]))
