"""Streaming throughput and memory against the in-memory fit on the same data.

    python benchmarks/streaming.py                       # 8000 × 1500 float64 (96 MB), rank 10
    python benchmarks/streaming.py --rows 40000 --cols 2000 --chunk 2000

Each mode runs in its own process (a fresh heap): `memory` loads X.npy and fits it with the dense
engine; `exact` streams the file in chunks (`nmfkit.fit(path, stream=True)`); `online` makes one
online pass (`stream="online"`).  Every process does a warm-up fit on a small file first
(compilation), then the measured fit.  Reported per mode:

  passes/iter   reads of X per iteration (counted by the streamed runs' reader; the in-memory fit
                makes the same products)
  Mentries/s    entries of X processed per second per pass: m·n·passes / seconds (higher is better)
  heap peak     tracemalloc's peak of Python and NumPy allocations during the measured fit (the
                read-only map of the file is not an allocation)
  max RSS       the process's peak resident set (resource.getrusage; includes file pages mapped)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

CHILD = textwrap.dedent("""
    import json, resource, sys, time, tracemalloc
    import numpy as np
    import nmfkit
    from nmfkit.stream import open_stream

    mode, path, tiny, rank, chunk, iters = sys.argv[1:7]
    rank, chunk, iters = int(rank), int(chunk), int(iters)

    class Counting:
        def __init__(self, reader):
            self.reader, self.rows = reader, 0
            self.shape, self.dtype = reader.shape, reader.dtype
        def read(self, start, stop):
            self.rows += stop - start
            return self.reader.read(start, stop)

    nmfkit.fit(np.load(tiny), rank, solver="hals", seed=0, max_iter=2, tol=0)
    nmfkit.fit(tiny, rank, solver="hals", stream=True, chunk=50, seed=0, max_iter=2, tol=0)
    nmfkit.fit(tiny, rank, stream="online", chunk=50, seed=0)
    tracemalloc.start()
    start = time.perf_counter()
    passes = None
    if mode == "memory":
        X = np.load(path)
        t0 = time.perf_counter()
        fit = nmfkit.fit(X, rank, solver="hals", seed=0, max_iter=iters, tol=0)
        seconds = time.perf_counter() - t0
    else:
        reader = Counting(open_stream(path))
        t0 = time.perf_counter()
        if mode == "exact":
            fit = nmfkit.fit(reader, rank, solver="hals", stream=True, chunk=chunk, seed=0, max_iter=iters, tol=0)
        else:
            fit = nmfkit.fit(reader, rank, stream="online", chunk=chunk, seed=0)
        seconds = time.perf_counter() - t0
        passes = reader.rows / reader.shape[0]
    _, peak = tracemalloc.get_traced_memory()
    print(json.dumps({"mode": mode, "seconds": seconds, "passes": passes, "n_iter": int(fit.n_iter),
                      "relative_error": fit.relative_error, "loss": fit.loss, "heap_peak": peak,
                      "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
""")


def run_mode(mode, path, tiny, rank, chunk, iters):
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..", "src")
           + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", CHILD, mode, path, tiny, str(rank), str(chunk), str(iters)],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=8000)
    p.add_argument("--cols", type=int, default=1500)
    p.add_argument("--rank", type=int, default=10)
    p.add_argument("--chunk", type=int, default=1000, help="rows per chunk of the streamed runs")
    p.add_argument("--iters", type=int, default=20, help="iterations of the exact and in-memory fits")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    X = rng.random((args.rows, args.rank)) @ rng.random((args.rank, args.cols))
    X *= 1 + 0.01 * rng.random(X.shape)
    with tempfile.TemporaryDirectory() as folder:
        path, tiny = os.path.join(folder, "X.npy"), os.path.join(folder, "tiny.npy")
        np.save(path, X)
        np.save(tiny, X[:200, :100])
        del X
        rows = {mode: run_mode(mode, path, tiny, args.rank, args.chunk, args.iters)
                for mode in ("memory", "exact", "online")}
    m, n = args.rows, args.cols
    passes_per_iter = rows["exact"]["passes"] / rows["exact"]["n_iter"]
    rows["memory"]["passes"] = passes_per_iter * rows["memory"]["n_iter"]   # the same solver, same products
    print(f"X: {m} × {n} float64 ({m * n * 8 / 2 ** 20:.0f} MiB), rank {args.rank}, chunk {args.chunk} rows, "
          f"hals {args.iters} iterations; online: one pass")
    print(f"{'mode':8} {'seconds':>8} {'passes':>7} {'Mentries/s':>11} {'heap peak MiB':>14} "
          f"{'max RSS MiB':>12} {'rel. error':>11}")
    for mode, r in rows.items():
        rate = m * n * r["passes"] / r["seconds"] / 1e6
        print(f"{mode:8} {r['seconds']:8.2f} {r['passes']:7.1f} {rate:11.1f} {r['heap_peak'] / 2 ** 20:14.1f} "
              f"{r['max_rss'] / 2 ** 20:12.1f} {r['relative_error']:11.5f}")


if __name__ == "__main__":
    main()
