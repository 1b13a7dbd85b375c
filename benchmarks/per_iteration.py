"""Milliseconds per iteration of the main solvers on fixed synthetic problems (best of 3 fits of 60
iterations after a warm-up), for before/after checks of a change to the solvers or engines:

    python benchmarks/per_iteration.py                          # this checkout
    PYTHONPATH=/path/to/other/checkout/src python benchmarks/per_iteration.py

Run both on a quiet machine, alternating, and compare; differences of a few per cent are noise.
"""
import time

import numpy as np
import scipy.sparse as sp

import nmfkit

ITERATIONS, REPEATS, RANK = 60, 3, 10


def problems():
    rng = np.random.default_rng(0)
    dense = rng.random((2000, 20)) @ rng.random((20, 800)) + 0.01 * rng.random((2000, 800))
    sparse = sp.random(5000, 2000, density=0.01, random_state=1, format="csr")
    sparse.data = rng.random(sparse.nnz) * 5
    small = rng.random((300, 40))
    return [("hals dense 2000×800", dense, dict(solver="hals")),
            ("mu KL dense 2000×800", dense, dict(solver="mu", loss="kl")),
            ("anls dense 2000×800", dense, dict(solver="anls")),
            ("hals sparse 5000×2000 1%", sparse, dict(solver="hals")),
            ("ccd KL sparse 5000×2000 1%", sparse, dict(solver="ccd", loss="kl")),
            ("hals small 300×40", small, dict(solver="hals"))]


def seconds_per_iteration(X, options):
    nmfkit.fit(X, RANK, max_iter=3, tol=0, seed=0, **options)          # warm-up: compilation, caches
    best = np.inf
    for _ in range(REPEATS):
        start = time.perf_counter()
        nmfkit.fit(X, RANK, max_iter=ITERATIONS, tol=0, seed=0, **options)
        best = min(best, time.perf_counter() - start)
    return best / ITERATIONS


if __name__ == "__main__":
    print(f"nmfkit from {nmfkit.__file__}")
    for name, X, options in problems():
        print(f"{name:28s} {1000 * seconds_per_iteration(X, options):8.3f} ms/iteration")
