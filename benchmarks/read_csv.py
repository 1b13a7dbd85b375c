"""Time `nmfkit.io.read_matrix` on a generated CSV with each text parser (pyarrow, Python).

    python benchmarks/read_csv.py [--rows 3000] [--cols 2000] [--decimals N] [--repeat 3]

Writes a rows × cols CSV of random non-negative numbers (a header and row labels, as expression tables
have) to a temporary folder, reads it with each installed parser and prints the best time of --repeat
reads (values in full precision, or rounded to --decimals places), and the same for pandas.read_csv
and pyarrow.csv.read_csv on their own for comparison.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from nmfkit import io


def best_of(repeat, fn):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--cols", type=int, default=2000)
    parser.add_argument("--decimals", type=int, help="round the values to this many decimals (default: all digits)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.gamma(1.0, 10.0, size=(args.rows, args.cols))
    if args.decimals is not None:
        X = np.round(X, args.decimals)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "table.csv")
        io.write_matrix(path, X, [f"g{i}" for i in range(args.rows)], [f"s{j}" for j in range(args.cols)])
        print(f"{args.rows}×{args.cols} CSV, {os.path.getsize(path) / 2**20:.1f} MiB")
        default = io.TEXT_PARSER
        try:
            for name in ("pyarrow", "python"):
                try:
                    if name != "python":
                        __import__(name)
                except ImportError:
                    continue
                io.TEXT_PARSER = name
                assert np.array_equal(io.read_matrix(path).X, X)
                print(f"read_matrix ({name:7s}) {best_of(args.repeat, lambda: io.read_matrix(path)):.2f} s")
        finally:
            io.TEXT_PARSER = default
        try:
            import pandas as pd
            print(f"pandas.read_csv        {best_of(args.repeat, lambda: pd.read_csv(path, index_col=0)):.2f} s")
        except ImportError:
            pass
        try:
            import pyarrow.csv as pcsv
            print(f"pyarrow.csv.read_csv   {best_of(args.repeat, lambda: pcsv.read_csv(path)):.2f} s")
        except ImportError:
            pass


if __name__ == "__main__":
    main()
