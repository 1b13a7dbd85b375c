"""Milliseconds per iteration of the main solvers on fixed synthetic problems (best of 3 fits of 60
iterations after a warm-up), for before/after checks of a change to the solvers or engines:

    python benchmarks/per_iteration.py                          # this checkout
    python benchmarks/per_iteration.py golub digits             # only the rows whose name has a word
    PYTHONPATH=/path/to/other/checkout/src python benchmarks/per_iteration.py

The small real problems (Golub 5000×38 at k = 3, digits 1797×64 at k = 16: benchmark families P2 and
P4) are where per-iteration overhead shows; they are skipped when their data set is not installed.
Each row also prints the product floor (median of one X Hᵀ plus one Xᵀ W) and the ratio to it.

Run both on a quiet machine, alternating, and compare; differences of a few per cent are noise.
"""
import sys
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
    rows = [("hals dense 2000×800", dense, dict(solver="hals")),
            ("mu KL dense 2000×800", dense, dict(solver="mu", loss="kl")),
            ("anls dense 2000×800", dense, dict(solver="anls")),
            ("hals sparse 5000×2000 1%", sparse, dict(solver="hals")),
            ("ccd KL sparse 5000×2000 1%", sparse, dict(solver="ccd", loss="kl")),
            ("hals small 300×40", small, dict(solver="hals"))]
    return [(name, X, dict(options, rank=RANK)) for name, X, options in rows] + real_problems()


def real_problems():
    """Golub 5000×38 (k = 3) and digits 1797×64 (k = 16) from nmfkit.datasets, where installed."""
    from nmfkit import datasets
    rows = []
    for name, load, transpose, rank in (("hals golub 5000×38 k=3", datasets.load_golub, False, 3),
                                        ("hals digits 1797×64 k=16", datasets.load_digits, True, 16)):
        try:
            X = load().X
        except ImportError:
            print(f"{name}: skipped (data set not installed)")
            continue
        rows.append((name, np.ascontiguousarray(X.T if transpose else X), dict(solver="hals", rank=rank)))
    return rows


def floor_seconds(X, rank, reps=21):
    """Median seconds of one X Hᵀ plus one Xᵀ W (the two products every iteration needs)."""
    rng = np.random.default_rng(0)
    W, Ht = rng.random((X.shape[0], rank)), rng.random((X.shape[1], rank))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        X @ Ht, X.T @ W
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def seconds_per_iteration(X, options):
    options = dict(options)
    rank = options.pop("rank")
    nmfkit.fit(X, rank, max_iter=3, tol=0, seed=0, **options)          # warm-up: compilation, caches
    best = np.inf
    for _ in range(REPEATS):
        start = time.perf_counter()
        nmfkit.fit(X, rank, max_iter=ITERATIONS, tol=0, seed=0, **options)
        best = min(best, time.perf_counter() - start)
    return best / ITERATIONS


if __name__ == "__main__":
    words = sys.argv[1:]
    print(f"nmfkit from {nmfkit.__file__}")
    for name, X, options in problems():
        if words and not any(word in name for word in words):
            continue
        per_iteration, floor = seconds_per_iteration(X, options), floor_seconds(X, options["rank"])
        print(f"{name:28s} {1000 * per_iteration:8.3f} ms/iteration   floor {1000 * floor:7.3f} ms   "
              f"× floor {per_iteration / floor:5.2f}")
