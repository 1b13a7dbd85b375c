"""The torch engine on a GPU: seconds per iteration against the matrix-product floor.

    python benchmarks/gpu.py [--quick] [--device cuda|cpu] [--iters 100] [--cpu-scale 0.1] [--out FILE]

Problems (generated on the device, float32):
  dense   100 000 × 20 000, rank 64: X = W H + 5 % uniform noise, W, H ~ U(0, 1)
  sparse  200 000 × 30 000, about 5 % nonzero Poisson counts with low-rank rates (single-cell-like)
For each problem, `mu` and `hals` (Frobenius; and `mu` with KL on the counts) run `--iters`
iterations from the same NNDSVDA start with tol=0.  Reported per solver:
  sec/iter     median of the per-iteration times in the fit's history (each iteration ends with
               the objective as a Python float, so the device is synchronised every iteration);
  GEMM floor   one X Ht plus one Xᵀ W on the same device, timed alone (each iteration needs both);
  ratio        sec/iter ÷ floor;
  t(1e-3)      seconds until the objective is within 1e-3 (relative) of the lowest objective any
               solver reached on that problem and loss (None when not reached in --iters);
  NumPy        sec/iter of the NumPy/SciPy engine on the CPU, on a copy with `--cpu-scale` of the
               rows (per-iteration cost is linear in the rows; `numpy_full_estimate` divides by it).
`--quick` runs tiny sizes on whatever device exists (the CPU here) in seconds; the test suite runs it.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp

try:
    import torch
except ImportError:  # pragma: no cover
    sys.exit("benchmarks/gpu.py needs PyTorch: pip install nmfkit[gpu]")

import nmfkit
from nmfkit.engines import make_engine
from nmfkit.validation import check_matrix

FULL = {"dense": dict(m=100_000, n=20_000, k=64), "sparse": dict(m=200_000, n=30_000, k=64, density=0.05)}
QUICK = {"dense": dict(m=2_000, n=400, k=8), "sparse": dict(m=3_000, n=600, k=8, density=0.05)}
RUNS = {"dense": (("mu", "frobenius"), ("hals", "frobenius")),
        "sparse": (("mu", "frobenius"), ("hals", "frobenius"), ("mu", "kl"))}
ROWS_PER_CHUNK = 1 << 12


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- problems (generated on the device in row chunks, so peak memory is X plus one chunk) ----------
def dense_problem(m, n, k, device, seed=0):
    g = torch.Generator(device=device).manual_seed(seed)
    W = torch.rand((m, k), generator=g, device=device)
    H = torch.rand((k, n), generator=g, device=device)
    X = torch.empty((m, n), device=device)
    noise = 0.05 * k / 4                       # 5 % of the mean entry (E[W H] = k/4)
    for s in range(0, m, ROWS_PER_CHUNK):
        e = min(m, s + ROWS_PER_CHUNK)
        torch.addmm(torch.rand((e - s, n), generator=g, device=device), W[s:e], H, beta=noise, out=X[s:e])
    return X


def counts_problem(m, n, k, density, device, seed=0):
    """Poisson counts with rates c·W H, W, H skewed (squared uniforms); c set by bisection on a row
    sample so that the expected fraction of nonzero counts is `density`."""
    g = torch.Generator(device=device).manual_seed(seed)
    W = torch.rand((m, k), generator=g, device=device) ** 4
    H = torch.rand((k, n), generator=g, device=device) ** 4
    sample = W[: min(m, 2000)] @ H
    lo, hi = 0.0, 1.0
    while float((1 - torch.exp(-hi * sample)).mean()) < density:
        hi *= 2
    for _ in range(40):
        c = 0.5 * (lo + hi)
        lo, hi = (c, hi) if float((1 - torch.exp(-c * sample)).mean()) < density else (lo, c)
    crows, cols, vals, offset = [torch.zeros(1, dtype=torch.int64, device=device)], [], [], 0
    for s in range(0, m, ROWS_PER_CHUNK):
        e = min(m, s + ROWS_PER_CHUNK)
        block = torch.poisson(c * (W[s:e] @ H), generator=g)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            csr = block.to_sparse_csr()
        crows.append(csr.crow_indices()[1:] + offset)
        cols.append(csr.col_indices())
        vals.append(csr.values())
        offset += csr.values().numel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(torch.cat(crows), torch.cat(cols), torch.cat(vals), size=(m, n))


def make_problem(kind, size, device):
    if kind == "dense":
        return dense_problem(size["m"], size["n"], size["k"], device)
    return counts_problem(size["m"], size["n"], size["k"], size["density"], device)


def to_numpy_input(X):
    if X.layout == torch.sparse_csr:
        return sp.csr_matrix((X.values().cpu().numpy(), X.col_indices().cpu().numpy(),
                              X.crow_indices().cpu().numpy()), shape=tuple(X.shape))
    return X.cpu().numpy()


# -- measurements -----------------------------------------------------------------------------------
def product_floor(engine, k, device, repeats):
    """Seconds of one X Ht plus one Xᵀ W, the best of `repeats`, on the engine's device."""
    m, n = engine.shape
    W = engine.ops.asarray(np.random.default_rng(0).random((m, k), dtype=np.float32), engine.X)
    Ht = engine.ops.asarray(np.random.default_rng(1).random((n, k), dtype=np.float32), engine.X)
    best = math.inf
    for _ in range(repeats + 1):                 # the first round warms up the libraries
        synchronize(device)
        t0 = time.perf_counter()
        engine.XHt(Ht)
        engine.XtW(W)
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best


def per_iteration(history) -> float:
    """Median seconds per iteration from a fit's history (iteration 1 onwards)."""
    return float(np.median(np.diff(history["seconds"][1:]))) if len(history["seconds"]) > 2 else math.nan


def time_to(history, target):
    hit = np.flatnonzero(np.asarray(history["objective"]) <= target)
    return float(history["seconds"][hit[0]]) if hit.size else None


def run_problem(kind, size, device, iters, cpu_scale, repeats):
    t0 = time.perf_counter()
    X = make_problem(kind, size, device)
    synchronize(device)
    made = time.perf_counter() - t0
    engine = make_engine(check_matrix(X))
    nnz = engine.nnz
    floor = product_floor(engine, size["k"], device, repeats)
    scaled = dict(size, m=max(size["k"], int(size["m"] * cpu_scale)))
    X_cpu = to_numpy_input(make_problem(kind, scaled, torch.device("cpu")))
    numpy_floor = product_floor(make_engine(check_matrix(X_cpu)), size["k"], torch.device("cpu"), repeats)
    fits = {}
    for solver, loss in RUNS[kind]:
        # a few iterations first: cuBLAS/cuSPARSE handles and workspaces are made on first use
        nmfkit.fit(X, size["k"], solver=solver, loss=loss, init="nndsvda", max_iter=2, tol=0)
        fits[solver, loss] = nmfkit.fit(X, size["k"], solver=solver, loss=loss, init="nndsvda", max_iter=iters,
                                        tol=0, objective_every=1)
    rows = []
    for (solver, loss), fit in fits.items():
        best = min(f.history["objective"].min() for (_, fit_loss), f in fits.items() if fit_loss == loss)
        ref = nmfkit.fit(X_cpu, size["k"], solver=solver, loss=loss, init="nndsvda", max_iter=max(3, iters // 10),
                         tol=0, objective_every=1)
        sec = per_iteration(fit.history)
        np_sec = per_iteration(ref.history)
        rows.append({"problem": kind, "solver": solver, "loss": loss, "device": str(device),
                     "shape": list(engine.shape), "rank": size["k"], "nnz": nnz, "dtype": "float32",
                     "sec_per_iter": sec, "gemm_floor": floor, "ratio": sec / floor,
                     "time_to_1e-3": time_to(fit.history, best * (1 + 1e-3)), "best_objective": float(best),
                     "final_objective": float(fit.history["objective"][-1]), "iterations": iters,
                     "numpy_shape": [scaled["m"], engine.shape[1]], "numpy_sec_per_iter": np_sec,
                     "numpy_gemm_floor": numpy_floor, "numpy_full_estimate": np_sec / cpu_scale,
                     "speedup_vs_numpy_estimate": np_sec / cpu_scale / sec, "generate_seconds": made})
    del X, engine, fits
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, seconds on any device")
    ap.add_argument("--device", default=None, help="cuda (default when present) or cpu")
    ap.add_argument("--iters", type=int, default=None, help="iterations per fit (default 100, quick 15)")
    ap.add_argument("--cpu-scale", type=float, default=None,
                    help="fraction of the rows in the NumPy copy (default 0.05, quick 0.5)")
    ap.add_argument("--problems", default="dense,sparse")
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    args = ap.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device is visible")
    if not args.quick and device.type != "cuda":
        sys.exit("the full sizes (8 GB dense, 3e8 nonzeros) are meant for a CUDA GPU; use --quick here")
    sizes = QUICK if args.quick else FULL
    iters = args.iters or (15 if args.quick else 100)
    cpu_scale = args.cpu_scale or (0.5 if args.quick else 0.05)
    rows = []
    for kind in args.problems.split(","):
        rows += run_problem(kind, sizes[kind], device, iters, cpu_scale, repeats=2 if args.quick else 5)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"device: {name}; torch {torch.__version__}; {iters} iterations; NumPy copy at {cpu_scale:g} of the rows")
    print("| problem | solver | loss | sec/iter | GEMM floor | ratio | t(1e-3) s | NumPy sec/iter (scaled) "
          "| NumPy est. full | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t = "—" if r["time_to_1e-3"] is None else f"{r['time_to_1e-3']:.3g}"
        print(f"| {r['problem']} {r['shape'][0]}×{r['shape'][1]} | {r['solver']} | {r['loss']} | "
              f"{r['sec_per_iter']:.3g} | {r['gemm_floor']:.3g} | {r['ratio']:.2f} | {t} | "
              f"{r['numpy_sec_per_iter']:.3g} | {r['numpy_full_estimate']:.3g} | "
              f"{r['speedup_vs_numpy_estimate']:.1f}× |")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"device": name, "torch": torch.__version__, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
