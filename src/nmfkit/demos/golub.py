"""Programs of genes: Brunet et al. (PNAS 101:4164, 2004) metagenes on the Golub ALL/AML data.

X (5 000 genes × 38 samples) ≈ W H with the generalised KL divergence and multiplicative updates,
many random starts per rank k. Each sample joins the metagene with the largest coefficient
(argmax of its column of H); the consensus matrix C_ij = fraction of runs putting samples i and j
together, and its cophenetic correlation, say how stable the clustering is (near 1: stable).
Clusters are compared with the known classes: ALL/AML at k = 2 and ALL-B / ALL-T / AML at k = 3
(misassigned = samples outside their cluster's class under the best matching of clusters to
classes). `nmfkit.rank.consensus` does the runs (in parallel over the cores).

Cost: ranks × runs fits of O(m n k) per iteration (m n = 190 000).
"""
from __future__ import annotations

import os

import numpy as np

from ._common import Clock, crosstab, misassigned, prepare_out, save_figure, write_csv

FULL = dict(ranks=(2, 3, 4, 5), n_runs=20, max_iter=1000, tol=1e-5)
QUICK = dict(ranks=(2, 3), n_runs=3, max_iter=60, tol=1e-4)
TRUTH = {2: "ALL/AML", 3: "ALL-B/ALL-T/AML"}


def _labels_for(rank, classes):
    """The reference labelling for a rank: ALL vs AML at k = 2, the three classes otherwise."""
    classes = np.asarray(classes)
    return np.where(classes == "AML", "AML", "ALL") if rank == 2 else classes


def run(out_dir="out/demo", quick=False, n_jobs=-1) -> dict:
    """Programs of genes: Brunet et al. (2004) metagenes and consensus clustering on Golub ALL/AML."""
    from .. import report
    from ..datasets import load_golub
    from ..rank import consensus, hoyer_sparseness
    from ..rank.plots import consensus_heatmap

    cfg = QUICK if quick else FULL
    out_dir = prepare_out(out_dir)
    clock, files = Clock(), []
    data = load_golub()
    X = data.X
    counts = ", ".join(f"{(data.labels == c).sum()} {c}" for c in data.classes)
    print(f"golub: {X.shape[0]} genes × {X.shape[1]} samples ({counts}); KL, solver mu, "
          f"{cfg['n_runs']} runs per rank", flush=True)
    rows, sections, heatmaps = [], [], []
    print(f"{'rank':>4s} {'cophenetic':>10s} {'dispersion':>10s} {'misassigned: best fit':>21s} "
          f"{'consensus':>9s}  against")
    for k in cfg["ranks"]:
        res = consensus(X, k, n_runs=cfg["n_runs"], solver="mu", loss="kl", seed=2004, n_jobs=n_jobs,
                        progress=False, max_iter=cfg["max_iter"], tol=cfg["tol"])
        argmax_clusters = np.argmax(res.best.H, axis=0)
        truth = _labels_for(k, data.labels)
        wrong_best, mapping = misassigned(argmax_clusters, truth)
        wrong_consensus, _ = misassigned(res.sample_clusters, truth)
        row = {"rank": k, "cophenetic": round(res.cophenetic, 4), "dispersion": round(res.dispersion, 4),
               "versus": TRUTH.get(k, "ALL-B/ALL-T/AML"), "misassigned (best fit)": wrong_best,
               "misassigned (consensus)": wrong_consensus,
               "sparseness W": round(hoyer_sparseness(res.best.W), 3),
               "KL (best)": round(float(res.objectives.min()), 1), "seconds": round(res.seconds, 1)}
        rows.append(row)
        print(f"{k:4d} {res.cophenetic:10.4f} {res.dispersion:10.4f} {wrong_best:21d} {wrong_consensus:9d}  "
              f"{row['versus']}", flush=True)
        fig = consensus_heatmap(res, labels=data.labels, sample_names=data.col_names)
        save_figure(fig, out_dir, f"consensus_k{k}.png", files)
        heatmaps.append(fig)
        sections.append((f"Rank {k}: clusters (argmax of H, best of {res.n_runs} runs) against the classes",
                         [crosstab(argmax_clusters, data.labels),
                          f"cluster → class: {', '.join(f'{c + 1} → {y}' for c, y in mapping.items())}; "
                          f"misassigned: {wrong_best} against {row['versus']}.", fig]))

    write_csv(os.path.join(out_dir, "golub_ranks.csv"), list(rows[0]), [list(r.values()) for r in rows], files)
    html = report.write_html(os.path.join(out_dir, "golub.html"), "nmfkit demo: metagenes of leukaemia", [
        ("Data", {"data set": data.name, "matrix": f"{X.shape[0]} genes × {X.shape[1]} samples",
                  "classes": ", ".join(f"{c}: {(data.labels == c).sum()}" for c in data.classes),
                  "source": data.source, "licence": data.licence, "citation": data.citation}),
        ("Rank survey", [rows, "Brunet et al. (2004) find k = 2 (ALL/AML) and k = 3 (ALL-B, ALL-T, AML) "
                               "stable, with a cophenetic correlation close to 1."]),
        *sections])
    files.append(html)
    seconds = clock()
    print(f"golub demo: {seconds:.1f} s; report {html}", flush=True)
    return {"name": "golub", "out_dir": out_dir, "files": files, "report": html, "seconds": seconds,
            "figures": dict(zip((f"consensus_k{k}.png" for k in cfg["ranks"]), heatmaps)),
            "ranks": rows, "misassigned": {r["rank"]: r["misassigned (best fit)"] for r in rows}}
