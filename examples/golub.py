"""Programs of genes: KL-NMF metagenes of the Golub ALL/AML leukaemia data (Brunet et al. 2004).

    python examples/golub.py [--quick] [--runs N]

Fits ranks 2 and 3 from several random starts, assigns each sample to the metagene with the
largest coefficient and counts the samples that disagree with the known classes.
Needs the data extra: pip install nmfkit[data].
"""
import argparse

import numpy as np

import nmfkit
from nmfkit.datasets import load_golub
from nmfkit.demos._common import crosstab, misassigned

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="few runs, few iterations")
parser.add_argument("--runs", type=int, default=None, help="random starts per rank")
args = parser.parse_args()

golub = load_golub()
runs = args.runs or (2 if args.quick else 10)
max_iter = 60 if args.quick else 1000
for rank in (2, 3):
    fit = nmfkit.fit(golub.X, rank, solver="mu", loss="kl", init="random", n_runs=runs,
                     max_iter=max_iter, tol=1e-5, seed=1)
    clusters = np.argmax(fit.H, axis=0)
    truth = np.where(golub.labels == "AML", "AML", "ALL") if rank == 2 else golub.labels
    wrong, mapping = misassigned(clusters, truth)
    print(f"rank {rank}: {runs} runs, best KL {fit.loss:.1f}, misassigned {wrong} of {len(truth)}")
    for row in crosstab(clusters, golub.labels):
        print("   ", row)
