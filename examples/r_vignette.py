"""R's NMF vignette, line by line: the Golub workflow of R package NMF translated to nmfkit.r_api.

    python examples/r_vignette.py [--quick] [--out DIR]

Each step prints the R line it translates.  Figures (rank survey, consensus maps, basis and
coefficient maps) are written to DIR (default: the current directory) as PNG files.
Needs the data and plot extras: pip install nmfkit[data,plot].
"""
import argparse
import os

import numpy as np

from nmfkit.datasets import load_golub
from nmfkit.plots import save
from nmfkit.r_api import (
    basis,
    basismap,
    coef,
    coefmap,
    consensusmap,
    extractFeatures,
    featureScore,
    nmf,
    predict,
    purity,
    randomize,
    residuals,
)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="3 runs per rank and at most 100 iterations per run")
parser.add_argument("--out", default=".", help="folder for the figures")
args = parser.parse_args()
nrun = 3 if args.quick else 10
limits = {"maxIter": 100} if args.quick else {}
os.makedirs(args.out, exist_ok=True)


def say(r_line):
    print(f"\n> {r_line}")


say("data(esGolub); esGolub <- esGolub[1:200, ]")
golub = load_golub()
V, cell = golub.X[:200], golub.labels

say("res <- nmf(esGolub, 3)")
res = nmf(V, 3, seed=123456, **limits)
print(res)

say("fit(res); V.hat <- fitted(res); dim(basis(res)); dim(coef(res))")
print(basis(res).shape, coef(res).shape)

say("summary(res, class = esGolub$Cell)")
print(f"residuals {residuals(res):.6g}, purity {purity(res, cell):.3f}")

say("s <- featureScore(res); s <- extractFeatures(res)")
scores = featureScore(res)
features = extractFeatures(res)
for q, rows in enumerate(features):
    print(f"  component {q + 1}: {len(rows)} features, e.g. {[golub.row_names[i] for i in rows[:3]]}")
print(f"  feature scores from {scores.min():.3f} to {scores.max():.3f}")

say("predict(res)")
clusters = predict(res)
for q in range(3):
    members = cell[clusters == q]
    print(f"  cluster {q + 1}: " + ", ".join(f"{c} {np.sum(members == c)}" for c in golub.classes))

say("res <- nmf(esGolub, 3, nrun = 10); consensusmap(res, annCol = esGolub)")
multi = nmf(V, 3, nrun=nrun, seed=123456, **limits)
save(consensusmap(multi, annCol=cell), os.path.join(args.out, "consensus_rank3.png"))
print(f"  {len(multi.runs)} runs, cophenetic {multi.consensus.cophenetic:.4f}")

say("basismap(res, subsetRow = TRUE); coefmap(res)")
save(basismap(multi, subsetRow=True), os.path.join(args.out, "basismap.png"))
save(coefmap(multi, annCol=cell), os.path.join(args.out, "coefmap.png"))

say("estim.r <- nmf(esGolub, 2:5, nrun = 10, seed = 123456)")
estim_r = nmf(V, range(2, 6), nrun=nrun, seed=123456, **limits)
print(estim_r)

say("plot(estim.r)")
save(estim_r.plot(), os.path.join(args.out, "rank_survey.png"))

say("consensusmap(estim.r, annCol = esGolub, labCol = NA, labRow = NA)")
for rank, fig in consensusmap(estim_r, annCol=cell).items():
    save(fig, os.path.join(args.out, f"consensus_survey_rank{rank}.png"))

say("V.random <- randomize(esGolub); estim.r.random <- nmf(V.random, 2:5, nrun = 10, seed = 123456)")
estim_r_random = nmf(randomize(V, seed=1), range(2, 6), nrun=nrun, seed=123456, **limits)

say("plot(estim.r, estim.r.random)")
save(estim_r.plot(estim_r_random), os.path.join(args.out, "rank_survey_vs_random.png"))
best = max(estim_r.measures, key=lambda m: m["cophenetic"])
print(f"  highest cophenetic: rank {best['rank']} ({best['cophenetic']:.4f})")
