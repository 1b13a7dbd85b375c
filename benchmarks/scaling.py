"""How the cost of an iteration grows: seconds per iteration against the number of stored entries,
against the rank and against the thread count, each beside the product floor (one X Hᵀ plus one
Xᵀ W with nmfkit's kernels), and a single-cell-sized fit with its peak memory against X's size.

    python benchmarks/scaling.py                    # all four parts, figure and table into --out
    python benchmarks/scaling.py --parts nnz,rank   # some of them
    python benchmarks/scaling.py --quick            # small sizes: a smoke run of the pipeline

Data: sparse CSR matrices with stored entries at uniform random positions (values uniform on
(0, 5]): 0.5 % dense for the nnz part (1e5 … 1e8 stored entries; `--max-nnz` stops earlier), 20 000 ×
8 000 with 800 000 entries for the rank and thread parts; the single-cell-sized problem is
30 000 × 100 000 at 2 % density (60 million stored entries).  Each point is the median of `--repeats`
fits of `--iters` iterations after a warm-up fit (compilation); the solvers are hals (Frobenius)
and ccd (KL).  Threads are set with `n_threads=`; the floor is timed under the same setting.
Run it on a quiet machine: the numbers are only as steady as the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp

import nmfkit
from nmfkit._threads import threads
from nmfkit.engines import make_engine

SOLVERS = (("hals", "frobenius"), ("ccd", "kl"))


def sparse_matrix(m, n, nnz, seed=0):
    """An m×n CSR matrix with about `nnz` stored entries at uniform positions, values in (0, 5]."""
    rng = np.random.default_rng(seed)
    density = min(1.0, nnz / (m * n))
    X = sp.random(m, n, density=density, format="csr", random_state=rng, dtype=np.float64)
    X.data = 5.0 * (1.0 - rng.random(X.nnz))
    return X


def floor_seconds(X, k, n_threads, repeats=5):
    engine = make_engine(X)
    rng = np.random.default_rng(1)
    W, Ht = rng.random((X.shape[0], k)), rng.random((X.shape[1], k))
    times = []
    with threads(n_threads):
        engine.XHt(Ht), engine.XtW(W)                       # warm-up (compilation)
        for _ in range(repeats):
            t = time.perf_counter()
            engine.XHt(Ht)
            engine.XtW(W)
            times.append(time.perf_counter() - t)
    return float(np.median(times))


def iteration_seconds(X, k, solver, loss, iters, repeats, n_threads):
    nmfkit.fit(X, k, solver=solver, loss=loss, max_iter=2, tol=0, seed=0, n_threads=n_threads)    # warm-up
    times = []
    for _ in range(repeats):
        res = nmfkit.fit(X, k, solver=solver, loss=loss, max_iter=iters, tol=0, seed=0, n_threads=n_threads,
                         objective_every=iters)
        times.append(res.history["seconds"][-1] / iters)
    return float(np.median(times))


def point(X, k, n_threads, args):
    row = {"m": X.shape[0], "n": X.shape[1], "nnz": int(X.nnz), "rank": k, "threads": n_threads,
           "floor_s": floor_seconds(X, k, n_threads)}
    for solver, loss in SOLVERS:
        row[solver] = iteration_seconds(X, k, solver, loss, args.iters, args.repeats, n_threads)
    print("  " + "  ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                           for key, value in row.items()), flush=True)
    return row


def part_nnz(args):
    sizes = (1e5, 1e6) if args.quick else (1e5, 1e6, 1e7, 1e8)
    rows = []
    for nnz in (s for s in sizes if s <= args.max_nnz):
        m = int(np.sqrt(nnz / 0.005) * 1.5) if nnz < 1e8 else 60000
        n = max(int(nnz / (0.005 * m)), 10)
        rows.append(point(sparse_matrix(m, n, int(nnz)), 10, args.threads[-1], args))
    return rows


def part_rank(args):
    X = sparse_matrix(20000, 8000, 800_000 if not args.quick else 100_000)
    ranks = (2, 5, 10, 20) if args.quick else (2, 5, 10, 20, 50, 100, 200)
    return [point(X, k, args.threads[-1], args) for k in ranks]


def part_threads(args):
    X = sparse_matrix(20000, 8000, 800_000 if not args.quick else 100_000)
    return [point(X, 20, t, args) for t in args.threads]


def part_single_cell(args):
    """The single-cell-sized fit in a child process, so its peak resident memory is its own."""
    m, n, density = (3000, 10000, 0.02) if args.quick else (30000, 100000, 0.02)
    code = f"""
import json, resource, sys, time
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
from scaling import sparse_matrix, floor_seconds
import nmfkit
X = sparse_matrix({m}, {n}, int({m} * {n} * {density}))
x_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
floor = floor_seconds(X, 20, {args.threads[-1]})
t = time.perf_counter()
res = nmfkit.fit(X, 20, solver="hals", max_iter={args.iters}, tol=0, seed=0, n_threads={args.threads[-1]})
fit_s = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"m": {m}, "n": {n}, "nnz": int(X.nnz), "x_bytes": x_bytes, "floor_s": floor,
                  "sec_per_iter": res.history["seconds"][-1] / res.n_iter, "fit_s": fit_s,
                  "peak_rss_bytes": peak, "relative_error": res.relative_error}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    print("  " + "  ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                           for key, value in row.items()), flush=True)
    return [row]


PARTS = {"nnz": part_nnz, "rank": part_rank, "threads": part_threads, "single_cell": part_single_cell}


def figure(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401  (matplotlib.ticker below)
    panels = [(name, key) for name, key in (("nnz", "nnz"), ("rank", "rank"), ("threads", "threads"))
              if results.get(name)]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (name, key) in zip(axes[0], panels):
        rows = results[name]
        x = [r[key] for r in rows]
        for label, column in (("floor (X Hᵀ + Xᵀ W)", "floor_s"), ("hals", "hals"), ("ccd (KL)", "ccd")):
            ax.plot(x, [r[column] for r in rows], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        if key == "threads":
            ax.set_xticks(x, [str(v) for v in x])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel({"nnz": "stored entries", "rank": "rank k", "threads": "threads"}[key])
        ax.set_ylabel("seconds per iteration")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="nnz,rank,threads,single_cell")
    parser.add_argument("--threads", default="1,2", help="thread counts (the last is used by the other parts)")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-nnz", type=float, default=1e8, help="largest size of the nnz part")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    args.threads = [int(t) for t in args.threads.split(",")]
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   "scaling-quick" if args.quick else "scaling")
    os.makedirs(out, exist_ok=True)
    results = {}
    for name in args.parts.split(","):
        print(f"{name}:", flush=True)
        results[name] = PARTS[name](args)
    with open(os.path.join(out, "scaling.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    figure(results, os.path.join(out, "scaling.png"))
    print(f"written: {out}/scaling.json, scaling.png; peak RSS of this process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
