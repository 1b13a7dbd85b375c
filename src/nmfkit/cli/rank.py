"""`nmfkit rank INPUT --ranks 2-10 --runs 30 [--cv] --out DIR`: survey candidate ranks.

Runs `nmfkit.estimate_rank` (consensus of --runs random restarts per rank, on the
data and on its column-wise randomisation) and, with --cv, `nmfkit.cross_validate_rank`
(held-out entries).  The samples clustered are the columns of a table (features × samples, as in R's
NMF) and of a 10x folder (cells), but the rows of an .h5ad file (AnnData's obs, the cells);
--transpose clusters the other axis.  The command says which axis it clusters.
--annotations FILE colours the consensus maps by known classes (a CSV: sample name, class).
Writes into DIR:
    survey.csv            one row per rank and data (real / random): cophenetic,
                          dispersion, silhouette, rss, evar, sparseness, objectives, seconds
    survey.png            all measures against rank, real vs randomised
    consensus_kK.csv      the n×n consensus matrix of rank K (named like the columns)
    consensus_kK.png      its heatmap ordered by the average-linkage dendrogram
    clusters.csv          each sample's consensus cluster at every rank (headed by the axis' name)
    cv.csv, cv.png        held-out error per rank and split (with --cv)
    summary.json          options, chosen ranks and the files written
    report.html           all of the above in one self-contained page
Files are written atomically and listed in DIR's manifest `.nmfkit-run.json`; files nmfkit did not
write are not replaced without --force (see `nmfkit fit`).  DIR and the --cv options are checked
before the survey starts.
"""
from __future__ import annotations

import csv
import html
import json
import os

import numpy as np

import nmfkit

from .. import io
from .._files import atomic_write, save_figure
from ..registry import LOSSES, SOLVERS
from ._output import OutputFolder


def parse_rank_list(text) -> list:
    """'2-10', '2,4,6' or '2-5,8' → sorted distinct ranks."""
    ranks = set()
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(v) for v in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                ranks.update(range(lo, hi + 1))
            elif part:
                ranks.add(int(part))
    except ValueError:
        raise ValueError(f"--ranks {text!r}: expected a range like 2-10 or a list like 2,3,5") from None
    if not ranks:
        raise ValueError("--ranks is empty")
    return sorted(ranks)


def add_parser(subparsers):
    p = subparsers.add_parser(
        "rank", help="choose the rank: consensus survey (+ cross-validation) over candidate ranks",
        description="Survey candidate ranks: consensus stability (cophenetic, dispersion, silhouette) and fit "
                    "quality over many random runs, against randomised data; optionally held-out-entry "
                    "cross-validation. Clusters the columns (samples) of a table or 10x folder, the rows (obs, cells) "
                    "of an .h5ad file.")
    p.add_argument("input", metavar="INPUT", help="data file (.csv, .tsv, .txt[.gz], .npy, .npz, .mtx, .h5ad, "
                                                  ".parquet) or 10x folder")
    p.add_argument("-r", "--ranks", default="2-6", help="candidate ranks, e.g. 2-10 or 2,3,5 (default 2-6)")
    p.add_argument("--runs", type=int, default=30, help="random restarts per rank (default 30)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--force", action="store_true", help="replace files in DIR that nmfkit did not write")
    p.add_argument("--solver", default="mu", choices=sorted(SOLVERS), help="algorithm (default mu)")
    p.add_argument("--loss", default="kl", choices=sorted(LOSSES), help="objective (default kl, as Brunet et al.)")
    p.add_argument("--seed", type=int, help="random seed (all randomness derives from it)")
    p.add_argument("--jobs", type=int, default=-1, help="worker processes (-1: all cores; 1: no workers)")
    p.add_argument("--max-iter", type=int, help="iteration cap per run (default: the solver's)")
    p.add_argument("--tol", type=float, default=1e-5, help="relative-decrease stop per run (default 1e-5)")
    p.add_argument("--stop", default="tol", choices=["tol", "connectivity"],
                   help="per-run stop: --tol, or R NMF's connectivity rule (assignments stable for 40 checks)")
    p.add_argument("--no-random", dest="randomized", action="store_false",
                   help="skip the survey on randomised data")
    p.add_argument("--cv", action="store_true", help="also cross-validate the rank on held-out entries")
    p.add_argument("--holdout", type=float, default=0.1, help="fraction of entries held out per split (--cv)")
    p.add_argument("--splits", type=int, default=3, help="random hold-out splits (--cv)")
    p.add_argument("--rule", default="min", choices=["min", "1se"], help="CV choice rule (--cv)")
    p.add_argument("--labels", default="auto", choices=io.LABEL_MODES,
                   help="text input: is the first row a header / the first column row labels (default auto)")
    p.add_argument("--transpose", action="store_true",
                   help="cluster the other axis: the rows of a table, the var (genes) of an .h5ad file")
    p.add_argument("--annotations", metavar="FILE",
                   help="known classes of the samples, drawn as a bar on the consensus maps: a CSV or TSV with a "
                        "header, sample names in the first column")
    p.add_argument("--annotation-column", metavar="NAME",
                   help="the column of --annotations holding the classes (default: the second)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line and no summary")
    p.set_defaults(handler=run)
    return p


def planned_files(ranks, cv) -> list:
    """The files a survey of `ranks` writes into --out, known before it starts."""
    files = ["survey.csv", *[f"consensus_k{k}.csv" for k in ranks], "clusters.csv"] + (["cv.csv"] if cv else [])
    files += ["survey.png", *[f"consensus_k{k}.png" for k in ranks]] + (["cv.png"] if cv else [])
    return files + ["summary.json", "report.html"]


def _check_options(args):
    """Options used only after the survey (cross-validation), checked before it."""
    if args.cv:
        if not 0.0 < args.holdout < 1.0:
            raise ValueError(f"--holdout must be a fraction strictly between 0 and 1; got {args.holdout}")
        if args.splits < 1:
            raise ValueError(f"--splits must be at least 1; got {args.splits}")


def run(args) -> int:
    ranks = parse_rank_list(args.ranks)
    _check_options(args)
    planned = planned_files(ranks, args.cv)
    out = OutputFolder(args.out, command="rank", inputs=[args.input, args.annotations], force=args.force)
    out.check(planned)                    # before the survey: nothing is lost to a late refusal
    try:
        data = io.read_matrix(args.input, labels=args.labels, progress=not args.quiet)
        data, args.sample_heading, args.clustered = orient_samples(data, args.transpose)
        args.classes = sample_classes(args, data)
        if not args.quiet:
            print(f"clustering {args.clustered}", flush=True)
        survey, cv = _survey(args, data, ranks)
    except BaseException:
        out.abandon()
        raise
    out.begin()                           # all files are written, then moved into --out together
    try:
        files = write_outputs(survey, cv, data, args, out)
        out.finish(files)
    finally:
        out.discard()                     # a Ctrl-C while writing leaves --out as it was
    if not args.quiet:
        print(repr(survey))
        print(survey.verdict(cv).text)
        print(f"wrote {len(files)} files to {args.out}")
    return 0


def orient_samples(data, transpose=False):
    """(data with the samples as columns, the samples' heading, "60 samples (rows of cells.h5ad, obs)").

    Tables are features × samples (R's NMF); an .h5ad file is obs × var (cells × genes), so its rows
    are the samples; a 10x folder is genes × cells.  `transpose` picks the other axis."""
    h5ad = data.format == ".h5ad"
    rows = h5ad != bool(transpose)
    name = os.path.basename(os.path.normpath(data.path))
    if rows:
        heading = "obs" if h5ad else "feature" if data.format == "10x" else (data.corner or "row")
        where = f"rows of {name}" + (", obs" if h5ad else "")
        data = data.transpose()
    else:
        heading = "var" if h5ad else "barcode" if data.format == "10x" else "sample"
        where = f"columns of {name}" + (", var" if h5ad else "")
    return data, heading, f"{data.shape[1]} samples ({where})"


def sample_classes(args, data):
    """--annotations: the class of each sample, checked before the survey."""
    if args.annotations is None:
        if args.annotation_column is not None:
            raise ValueError("--annotation-column names a column of --annotations FILE; add --annotations")
        return None
    if data.col_names is None:
        raise ValueError(f"--annotations matches samples by name, but {args.input} has no sample names")
    return io.read_annotations(args.annotations, data.col_names, args.annotation_column)


def _survey(args, data, ranks):
    options = dict(n_runs=args.runs, solver=args.solver, loss=args.loss, seed=args.seed, n_jobs=args.jobs,
                   progress=not args.quiet, stop=args.stop)
    if args.max_iter is not None:
        options["max_iter"] = args.max_iter
    if args.stop == "tol":
        options["tol"] = args.tol
    survey = nmfkit.estimate_rank(data.X, ranks, randomized=args.randomized, **options)
    cv = None
    if args.cv:
        cv = nmfkit.cross_validate_rank(data.X, ranks, holdout=args.holdout, n_splits=args.splits, seed=args.seed,
                                        rule=args.rule, loss=args.loss if args.loss in ("frobenius", "kl")
                                        else "frobenius", max_iter=args.max_iter)
    return survey, cv


def write_outputs(survey, cv, data, args, out) -> list:
    """Every file written atomically into the OutputFolder `out`; returns their names."""
    from ..rank.plots import consensus_heatmap, cv_plot, survey_plot
    survey.to_csv(out.path("survey.csv"))
    files = ["survey.csv"]
    figures = {"survey.png": survey_plot(survey)}
    n = data.shape[1]
    names = data.col_names or [str(j) for j in range(n)]
    for k, res in survey.consensus.items():
        io.write_matrix(out.path(f"consensus_k{k}.csv"), res.consensus, names, names)
        files.append(f"consensus_k{k}.csv")
        figures[f"consensus_k{k}.png"] = consensus_heatmap(res, labels=getattr(args, "classes", None),
                                                            sample_names=names)
    with atomic_write(out.path("clusters.csv"), "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([getattr(args, "sample_heading", "sample"), *[f"k{k}" for k in survey.consensus]])
        for j, name in enumerate(names):
            writer.writerow([name, *[int(res.sample_clusters[j]) + 1 for res in survey.consensus.values()]])
    files.append("clusters.csv")
    if cv is not None:
        records = cv.records()
        with atomic_write(out.path("cv.csv"), "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(records[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(records)
        files.append("cv.csv")
        figures["cv.png"] = cv_plot(cv)
    for name, fig in figures.items():
        save_figure(fig, out.path(name), dpi=110)
        files.append(name)
    summary = {"input": {"path": os.path.abspath(data.path), "shape": list(data.shape), "transposed": args.transpose,
                         "clustering": getattr(args, "clustered", None)},
               "ranks": survey.ranks, "options": survey.options,
               "cophenetic_choice": survey.best_rank("cophenetic"), "verdict": survey.verdict(cv).as_dict(),
               "cv_choice": None if cv is None else {"rule": cv.rule, "rank": cv.best_rank},
               "files": files + ["summary.json", "report.html"]}
    with atomic_write(out.path("summary.json"), "w") as fh:
        json.dump(summary, fh, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o))
        fh.write("\n")
    _write_report(out.path("report.html"), survey, cv, figures, data)
    files += ["summary.json", "report.html"]
    return files


SURVEY_TABLE = (("rank", "rank"), ("cophenetic", "cophenetic"), ("dispersion", "dispersion"),
                ("silhouette", "silhouette"), ("rss", "RSS"), ("evar", "explained variance"),
                ("sparseness_W", "sparseness W"), ("sparseness_H", "sparseness H"), ("seconds", "seconds"))


def survey_table(survey) -> list:
    """The survey's measures as report rows, real and randomised data side by side per rank, numbers
    to four significant digits (survey.csv has them all in full)."""
    rows = []
    for data, records in (("data", survey.rows), ("randomised", survey.random_rows or [])):
        for r in records:
            row = {"data": data}
            for key, label in SURVEY_TABLE:
                value = r[key]
                row[label] = int(value) if key == "rank" else float(f"{float(value):.4g}")
            rows.append(row)
    return sorted(rows, key=lambda row: (row["rank"], row["data"] != "data"))


def _write_report(path, survey, cv, figures, data):
    from ..report import Html, write_html
    verdict = survey.verdict(cv)
    votes = [{"measure": v.measure, "rank": "abstains" if v.rank is None else v.rank, "weight": v.weight,
              "reason": v.reason} for v in verdict.votes]
    sections = [("Conclusion", [Html(f'<p class="verdict">{html.escape(verdict.text)}</p>'), votes]),
                ("Input", {"file": os.path.basename(data.path), "shape": f"{data.shape[0]} × {data.shape[1]}",
                           "solver": survey.options.get("solver"), "loss": survey.options.get("loss"),
                           "runs per rank": survey.options.get("n_runs"), "seed": survey.options.get("seed")}),
                ("Survey", [figures["survey.png"], survey_table(survey),
                            "Full precision and the objectives of every rank are in survey.csv."])]
    for k in survey.consensus:
        sections.append((f"Consensus, rank {k}", figures[f"consensus_k{k}.png"]))
    if cv is not None:
        sections.append(("Cross-validation", [figures["cv.png"], cv.records(),
                                              f"rule {cv.rule!r} picks rank {cv.best_rank}"]))
    write_html(path, "nmfkit rank survey", sections)
