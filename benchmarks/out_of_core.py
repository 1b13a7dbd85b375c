"""Out-of-core NMF with the dask engine: a dense matrix on disk larger than the workers' memory.

    python benchmarks/out_of_core.py [--quick] [--rows 200000] [--cols 10000] [--rank 16]
                                     [--iters 8] [--worker-memory 1GiB] [--format zarr|npy] [--dir DIR]

Writes a float32 matrix X = W H + noise (rank `--rank`) to DIR as a Zarr store (uncompressed
row blocks; when zarr is installed) or a .npy file, starts a LocalCluster of 2 single-threaded
worker processes each limited to `--worker-memory`, and runs `--iters` iterations of
multiplicative updates (Frobenius) on the lazily read X.  Reported:
  * seconds per iteration (and for the validation scan and the final error pass),
  * peak resident memory (VmHWM) of the client process (it also hosts the scheduler and the
    nannies) and of each worker process,
  * bytes the workers read per iteration (/proc/PID/io `rchar`: bytes returned by read/pread,
    whether from disk or from the page cache) against the theoretical 2 × size(X) — one
    pass over X per half-step — and `read_bytes`, the part that reached the block device.
The data file is deleted at the end (`--keep` keeps it).  Results go to
benchmarks/results/out_of_core[-quick].json.  `--quick`: a 2000×500 matrix in a few seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")


def write_matrix(path, fmt, m, n, rank, block_rows, seed=0):
    """Write X = W H + 0.1·U(0,1) slab by slab (never more than one slab in memory)."""
    rng = np.random.default_rng(seed)
    H = rng.random((rank, n), dtype=np.float32)
    if fmt == "zarr":
        import zarr
        out = zarr.create_array(store=path, shape=(m, n), chunks=(block_rows, n), dtype="float32",
                                compressors=None, overwrite=True)
    else:
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(m, n))
    for start in range(0, m, block_rows):
        stop = min(m, start + block_rows)
        slab = rng.random((stop - start, rank), dtype=np.float32) @ H
        slab += 0.1 * rng.random(slab.shape, dtype=np.float32)
        out[start:stop] = slab
    if fmt == "npy":
        out.flush()
        del out


def _io_and_peak():
    """This process's (rchar, read_bytes, VmHWM bytes)."""
    io = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
    return int(io["rchar"]), int(io["read_bytes"]), int(hwm.split()[1]) * 1024


def _size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--cols", type=int, default=10_000)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--iters", type=int, default=8)
    p.add_argument("--worker-memory", default="1GiB", help="memory limit of each of the 2 workers")
    p.add_argument("--block-mib", type=float, default=32.0, help="size of one row block")
    p.add_argument("--format", choices=("zarr", "npy"), default=None, help="default: zarr when installed")
    p.add_argument("--dir", default=None, help="where to write the matrix (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the data file")
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.cols, args.iters, args.worker_memory, args.block_mib = 2000, 500, 5, "512MiB", 0.5

    sys.path.insert(0, SRC)
    import dask
    from dask.utils import format_bytes, parse_bytes
    from distributed import Client, LocalCluster

    import nmfkit
    from nmfkit.engines.dask_engine import read_lazy

    try:
        import zarr  # noqa: F401
        fmt = args.format or "zarr"
    except ImportError:
        fmt = args.format or "npy"
    m, n, k = args.rows, args.cols, args.rank
    block_rows = max(1, int(args.block_mib * 2**20) // (4 * n))
    folder = args.dir or tempfile.mkdtemp(prefix="nmfkit-ooc-")
    path = os.path.join(folder, f"X.{fmt}")
    size_x = 4 * m * n
    print(f"X: {m}×{n} float32 = {format_bytes(size_x)} on disk as {fmt} in blocks of {block_rows} rows; "
          f"2 workers × {args.worker_memory}", flush=True)

    t = time.perf_counter()
    write_matrix(path, fmt, m, n, k, block_rows)
    t_write = time.perf_counter() - t
    print(f"wrote {format_bytes(_size(path))} in {t_write:.1f} s", flush=True)

    env = {"PYTHONPATH": os.pathsep.join(x for x in (SRC, os.environ.get("PYTHONPATH")) if x),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    result = {}
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=args.worker_memory,
                          dashboard_address=None, env=env) as cluster, Client(cluster) as client:
            def workers_io():
                got = client.run(_io_and_peak)
                return (sum(v[0] for v in got.values()), sum(v[1] for v in got.values()))

            X = read_lazy(path, chunk_rows=block_rows)
            marks = []

            def record(state):
                marks.append((state.iteration, time.perf_counter(), *workers_io()))
                return False

            start_io = workers_io()
            t0 = time.perf_counter()
            fit = nmfkit.fit(X, k, solver="mu", init="random", seed=0, max_iter=args.iters, tol=0, callback=record)
            t_total = time.perf_counter() - t0
            end_io = workers_io()
            # LocalCluster runs the scheduler and the nannies in this process
            peaks = {"client (+ scheduler, nannies)": _io_and_peak()[2]}
            for addr, v in client.run(_io_and_peak).items():
                peaks[f"worker {addr}"] = v[2]

        # iteration i's interval runs from mark i-1 to mark i (mark 0 is the first callback)
        its = [(b[1] - a[1], b[2] - a[2], b[3] - a[3]) for a, b in zip(marks, marks[1:])]
        sec = [x[0] for x in its]
        rchar = [x[1] for x in its]
        disk = [x[2] for x in its]
        first_cb = marks[0][1] - t0
        result = {
            "shape": [m, n], "dtype": "float32", "rank": k, "format": fmt, "size_x_bytes": size_x,
            "block_rows": block_rows, "n_blocks": len(X.chunks[0]), "workers": 2,
            "worker_memory_limit_bytes": parse_bytes(args.worker_memory), "iterations": fit.n_iter,
            "seconds_write": t_write, "seconds_total_fit": t_total,
            "seconds_per_iteration_median": float(np.median(sec)), "seconds_per_iteration": sec,
            "seconds_before_first_iteration_end": first_cb,
            "bytes_read_per_iteration_median": float(np.median(rchar)),
            "bytes_read_per_iteration_over_size_x": float(np.median(rchar)) / size_x,
            "theoretical_bytes_per_iteration": 2 * size_x,
            "device_read_bytes_per_iteration_median": float(np.median(disk)),
            "bytes_read_whole_fit": end_io[0] - start_io[0],
            "peak_rss_bytes": peaks, "relative_error": fit.relative_error,
            "objective_first_last": [float(fit.history["objective"][0]), float(fit.history["objective"][-1])],
            "dask_version": dask.__version__, "cpu_count": os.cpu_count(),
        }
    finally:
        if not args.keep:
            shutil.rmtree(path) if os.path.isdir(path) else os.path.exists(path) and os.remove(path)
            if args.dir is None:
                shutil.rmtree(folder, ignore_errors=True)

    print(f"per iteration: {result['seconds_per_iteration_median']:.2f} s (median of {len(sec)}), "
          f"read {format_bytes(result['bytes_read_per_iteration_median'])} = "
          f"{result['bytes_read_per_iteration_over_size_x']:.3f} × size(X) (theory 2), "
          f"of which {format_bytes(result['device_read_bytes_per_iteration_median'])} from the device")
    print(f"validation scan + init + iteration 1: {first_cb:.1f} s; whole fit {t_total:.1f} s "
          f"(incl. final error pass); relative error {fit.relative_error:.4f}")
    for who, b in peaks.items():
        print(f"  peak RSS {who:40s} {format_bytes(b)}")
    out = os.path.join(HERE, "results", "out_of_core-quick.json" if args.quick else "out_of_core.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as fh:
        json.dump(result, fh, indent=2)
        fh.write("\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
