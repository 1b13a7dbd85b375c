"""Seconds per iteration of the negative-binomial fit (solver irls) against the plain KL fits of the
same sparse count matrix, and peak memory of each, in one run:

    python benchmarks/likelihoods.py                       # 20 000 × 5 000 counts, rank 10
    python benchmarks/likelihoods.py --rows 5000 --cols 2000 --rank 10 --iters 5

The counts are drawn from a negative binomial with a planted rank-k mean (gamma-distributed factors,
size θ = 2), so most entries are zeros (the density is printed).  KL costs a pass over the stored
entries only (Σ (W H)_ij over all entries is colsum(W)·colsum(H)); the NB likelihood of a zero,
θ log(1 + μ_ij/θ), is not linear in μ, so the NB fit works on every entry: m·n·k per half-step
instead of nnz·k.  Each fit runs in a child process (its peak resident memory is its own) from the
same nndsvda start; the per-iteration time is measured from the fit's history after `--skip`
iterations (irls's Poisson warm-up is switched off, so every iteration is an NB iteration).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

FITS = (("irls", "nb", {"warmup": 0, "dispersion": "global"}), ("ccd", "kl", {}), ("mu", "kl", {}))

CHILD = """
import json, resource, sys, time
import numpy as np, scipy.sparse as sp
import nmfkit
rows, cols, rank, iters, skip, solver, loss, options = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
mean = (rng.gamma(0.5, 1.0, (rows, rank)) @ rng.gamma(0.5, 1.0, (rank, cols))) * 0.02
counts = rng.negative_binomial(2.0, 2.0 / (2.0 + mean))
X = sp.csr_matrix(counts.astype(np.float64))
del counts, mean
t = time.perf_counter()
res = nmfkit.fit(X, rank, solver=solver, loss=loss, max_iter=iters, tol=0, seed=0, objective_every=1, **options)
seconds = res.history["seconds"]
per_iter = (seconds[-1] - seconds[skip]) / (len(seconds) - 1 - skip)
print(json.dumps({"solver": solver, "loss": loss, "density": X.nnz / (rows * cols), "nnz": int(X.nnz),
                  "sec_per_iter": per_iter, "fit_s": time.perf_counter() - t,
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--cols", type=int, default=5000)
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--iters", type=int, default=6)
    parser.add_argument("--skip", type=int, default=1, help="iterations left out of the timing (set-up)")
    args = parser.parse_args(argv)
    rows = []
    for solver, loss, options in FITS:
        spec = json.dumps([args.rows, args.cols, args.rank, args.iters, args.skip, solver, loss, options])
        done = subprocess.run([sys.executable, "-c", CHILD, spec], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{solver}/{loss} failed:\n{done.stderr[-2000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    kl = min(r["sec_per_iter"] for r in rows if r["loss"] == "kl")
    print(f"\n{args.rows}×{args.cols}, rank {args.rank}, density {rows[0]['density']:.3%} "
          f"({rows[0]['nnz']} stored entries)")
    print("| fit | s/iteration | × fastest KL | peak RSS (GiB) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['solver']} {r['loss']} | {r['sec_per_iter']:.3f} | {r['sec_per_iter'] / kl:.1f} | "
              f"{r['peak_rss_gib']:.2f} |")


if __name__ == "__main__":
    main()
