"""`nmfkit fit INPUT --rank K --out DIR`: factorize a data file and write the factors.

Reads INPUT with `nmfkit.io.read_matrix` (CSV/TSV/gzip, .npy, .npz, .mtx, .h5ad, .parquet, a 10x
folder), calls `nmfkit.fit` (with `--missing mask`, empty/NA cells are missing entries left out of the
loss), and writes into DIR:
    W.csv         m×k, rows named like the rows of X (under the input's corner header), columns NMF1..NMFk
    H.csv         k×n, rows NMF1..NMFk, columns named like the columns of X
    summary.json  Factorization.summary() plus the input path, shape and the files written
    model.npz     Factorization.save (reload with nmfkit.Factorization.load)
    history.csv   iteration, seconds, objective (and with --track, the convergence diagnostics)
    report.html   with --report: one self-contained HTML report
    consensus.csv, clusters.csv, consensus.png   with --consensus (--runs N random runs): the samples
                  clustered are the columns of a table, the rows (obs) of an .h5ad file (see
                  `nmfkit rank`); --annotations FILE adds their known classes to consensus.png
--checkpoint FILE saves the state every --checkpoint-every iterations; --resume FILE continues it.
All files are written to a hidden folder in DIR and then renamed into place together; DIR's manifest
`.nmfkit-run.json` lists the files of the run, so a rerun replaces them (and removes the previous run's
files it does not write again) while files nmfkit did not write are never replaced without --force, and
the input never.
Everything that can be checked (DIR, the checkpoint's folder, --image-shape) is checked before the fit.
Solver, loss and init choices are read from the registries, so a new solver appears here by itself.
With `--lazy` (implied by a `.zarr` input or by `--scheduler ADDRESS`) a `.npy` file or Zarr store is
read as a row-chunked dask array and factorized by the dask engine without loading it; `--scheduler`
runs the work on a dask.distributed cluster (extra nmfkit[dask]).
A Ctrl-C during the fit keeps the best factorization so far: the files are still written and the
command exits with status 130.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys

import numpy as np

import nmfkit

from .. import checkpoint as _checkpoint
from .. import io
from .._files import atomic_write, save_figure
from ..registry import INITS, LOSSES, SOLVERS
from ..result import _jsonable
from ._output import MANIFEST, OutputFolder, same_file
from .rank import orient_samples, sample_classes

FIT_FILES = ["W.csv", "H.csv", "summary.json", "model.npz", "history.csv"]
CONSENSUS_FILES = ["consensus.csv", "clusters.csv", "consensus.png"]


def _alpha_h(text):
    """--alpha-H takes a number or 'same' (the value of --alpha-W)."""
    return text if text == "same" else float(text)


def add_parser(subparsers):
    p = subparsers.add_parser(
        "fit", help="factorize a data file: X ≈ W H",
        description="Factorize a non-negative data matrix X ≈ W H and write W, H and a summary to --out.")
    p.add_argument("input", metavar="INPUT", help="data file: .csv, .tsv, .txt (optionally .gz), .npy, .npz, "
                                                  ".mtx, .h5ad or .parquet, or a 10x folder (matrix.mtx, "
                                                  "features.tsv, barcodes.tsv); header and row labels are detected")
    p.add_argument("-k", "--rank", type=_rank_argument, required=True,
                   help="number of components k, or auto: chosen on the cross-validation curve (--rank-range)")
    p.add_argument("--rank-range", metavar="LO-HI",
                   help="with --rank auto: the ranks searched (default 1-50, at most the matrix's smaller side)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--force", action="store_true",
                   help="replace files in DIR (and a --checkpoint file) that nmfkit did not write")
    p.add_argument("--solver", default="auto", choices=["auto", *sorted(SOLVERS)],
                   help="algorithm (default: the fastest for the loss; see `nmfkit info`)")
    p.add_argument("--loss", default="frobenius", choices=sorted(LOSSES), help="objective (default frobenius)")
    p.add_argument("--beta", type=float, help="β of a general β-divergence (overrides --loss)")
    p.add_argument("--init", default="auto", choices=["auto", *sorted(INITS)], help="initialisation")
    p.add_argument("--seed", type=int, help="random seed (all randomness derives from it)")
    p.add_argument("--max-iter", type=int, help="iteration cap (default: the solver's)")
    p.add_argument("--tol", type=float, default=1e-4,
                   help="stop when the relative objective decrease falls below this (0: run --max-iter)")
    p.add_argument("--runs", type=int, default=1, help="independent random runs; the best is kept")
    p.add_argument("--time-limit", type=float, metavar="SECONDS", help="wall-clock limit per run")
    p.add_argument("--alpha-W", dest="alpha_W", type=float, help="regularisation strength on W")
    p.add_argument("--alpha-H", dest="alpha_H", type=_alpha_h, help="regularisation on H (number or 'same')")
    p.add_argument("--l1-ratio", type=float, help="L1 share of the regularisation, 0..1")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="a solver option, repeatable (e.g. nonneg_W=false, upper_bound=1,2, dispersion=global, "
                        "graph_H=knn.mtx): VALUE is a number, true/false/none, a comma-separated pair or a data "
                        "file read as a matrix")
    p.add_argument("--precision", default="native", choices=["native", "mixed"],
                   help="mixed: float64 data iterated in float32 first, finished in float64")
    p.add_argument("--threads", type=int, metavar="N", help="threads for the compiled kernels and BLAS")
    p.add_argument("--labels", default="auto", choices=io.LABEL_MODES,
                   help="text input: is the first row a header / the first column row labels (default auto)")
    p.add_argument("--transpose", action="store_true", help="factorize Xᵀ instead of X")
    p.add_argument("--missing", default="error", choices=["error", "mask"],
                   help="empty, NA or nan cells: refuse them (default) or treat them as missing entries, left "
                        "out of the loss (mask)")
    p.add_argument("--annotations", metavar="FILE",
                   help="with --consensus: known classes of the samples for consensus.png (a CSV or TSV with a "
                        "header, sample names in the first column)")
    p.add_argument("--annotation-column", metavar="NAME",
                   help="the column of --annotations holding the classes (default: the second)")
    p.add_argument("--lazy", action="store_true",
                   help="read a .npy file or .zarr store block by block with dask instead of loading it "
                        "(implied by a .zarr input and by --scheduler)")
    p.add_argument("--chunk-rows", type=int, metavar="N", help="rows per dask block with --lazy (default ~64 MiB)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="dask.distributed scheduler to run on, e.g. tcp://10.0.0.5:8786 (implies --lazy)")
    p.add_argument("--stream", nargs="?", const="exact", choices=["exact", "online"],
                   help="read INPUT (.npy, .mtx, .h5ad, .zarr, .parquet, 10x folder) in chunks of rows at every "
                        "pass instead of loading it: exact (default; the in-memory fit's iterates) or online "
                        "(one pass per iteration); see nmfkit.stream")
    p.add_argument("--chunk", type=int, metavar="N", help="rows per chunk of a streamed fit (implies --stream)")
    p.add_argument("--track", action="store_true",
                   help="record the convergence diagnostics per iteration into history.csv")
    p.add_argument("--report", action="store_true", help="also write report.html (self-contained)")
    p.add_argument("--image-shape", metavar="HxW", help="with --report: draw W's columns as HxW images")
    p.add_argument("--consensus", action="store_true",
                   help="with --runs N: consensus of N random runs (cophenetic, dispersion, clusters)")
    p.add_argument("--checkpoint", metavar="FILE", help="save the fit's state to FILE while it runs")
    p.add_argument("--checkpoint-every", type=int, default=50, metavar="N", help="iterations between checkpoints")
    p.add_argument("--resume", metavar="FILE", help="continue a fit from its checkpoint FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line and no summary")
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    image_shape = _check_options(args)
    planned = planned_files(args)
    extra = solver_options(args.option)                  # refused before any data are read
    out = OutputFolder(args.out, command="fit", inputs=[args.input, args.resume, args.annotations,
                                                         *extra.pop("__files__")], force=args.force)
    out.check(planned)                    # before the data are read: nothing is lost to a late refusal
    try:
        if args.checkpoint:
            _check_checkpoint(args, out, planned)
        if args.resume and not os.path.isfile(args.resume):
            raise FileNotFoundError(2, "No such file or directory", args.resume)
        if args.stream or args.chunk is not None:           # --stream / --chunk: X is read in chunks
            data = _stream_input(args)
        elif args.lazy or args.scheduler or args.input.rstrip("/").endswith(".zarr"):
            data = _read_lazy(args)
        else:
            data = io.read_matrix(args.input, labels=args.labels, allow_missing=args.missing == "mask",
                                  progress=not args.quiet)
            if args.consensus:            # the samples clustered are the columns, as `nmfkit rank` orients them
                data, args.sample_heading, clustered = orient_samples(data, args.transpose)
                args.classes = sample_classes(args, data)
                if not args.quiet:
                    print(f"clustering {clustered}", flush=True)
            elif args.transpose:
                data = data.transpose()
        _check_image_shape(image_shape, args, data)
        options = {name: getattr(args, name) for name in ("alpha_W", "alpha_H", "l1_ratio")
                   if getattr(args, name) is not None}
        options.update(_read_option_files(extra))
        if args.precision != "native":
            options["precision"] = args.precision
        if args.threads is not None:
            options["n_threads"] = args.threads
        if args.consensus:
            cons = clusters_numbered_like_components(_consensus(args, data, options))
            result = cons.best
        else:
            result = _fit(args, data, options)
    except BaseException:
        out.abandon()                     # no empty folder left behind by a refused or failed run
        raise
    result.row_names, result.col_names = data.row_names, data.col_names
    out.begin()                           # all files are written, then moved into --out together
    try:
        if args.consensus:
            files = write_consensus_outputs(cons, result, data, args, out)
        else:
            files = write_outputs(result, data, args, out)
        if args.report:
            title = f"nmfkit fit {os.path.basename(data.path)}"
            if args.consensus:
                title += f" (best of {args.runs} runs)"
            result.report(out.path("report.html"), title=title, image_shape=image_shape,
                          feature_names=data.row_names, consensus=cons if args.consensus else None,
                          sample_labels=getattr(args, "classes", None))
            files.append("report.html")
        out.finish(files)
    finally:
        out.discard()                     # a Ctrl-C while writing leaves --out as it was
    if not args.quiet:
        if args.consensus:
            c = cons.summary()
            print(f"consensus  {c['n_runs']} runs of rank {c['rank']}: cophenetic {c['cophenetic']:.5f}, "
                  f"dispersion {c['dispersion']:.5f}, silhouette {c['silhouette']:.5f}")
        else:
            print(describe(result, data, args.transpose))
            if data.row_names is not None:
                print(top_rows(result, data.row_names))
        print(f"wrote {', '.join(files)} to {args.out}")
    if result.stop_reason == "interrupted" and not args.consensus:
        print("nmfkit: interrupted; the files hold the best factorization found so far", file=sys.stderr)
        return 130
    return 0


def solver_options(pairs) -> dict:
    """`--option NAME=VALUE` pairs as solver options (files still as paths); "__files__" lists the data
    files named, which the output folder must never be written over."""
    options, files = {}, []
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ValueError(f"--option takes NAME=VALUE (e.g. nonneg_W=false); got {pair!r}")
        if name in options:
            raise ValueError(f"--option {name} is given twice")
        options[name] = _option_value(text.strip())
        if isinstance(options[name], _OptionFile):
            files.append(options[name])
    options["__files__"] = files
    return options


class _OptionFile(str):
    """An option value naming a data file, read when the options are applied."""


def _option_value(text):
    words = {"true": True, "false": False, "none": None}
    if text.lower() in words:
        return words[text.lower()]
    if "," in text:
        return tuple(_option_value(part.strip()) for part in text.split(","))
    try:
        number = float(text)
    except ValueError:
        return _OptionFile(text) if os.path.isfile(text) else text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def _read_option_files(options) -> dict:
    """Data files named by --option values read as matrices (e.g. a graph's adjacency)."""
    return {name: io.read_matrix(value).X if isinstance(value, _OptionFile) else value
            for name, value in options.items()}


def planned_files(args) -> list:
    """The files this run writes into --out, known before it starts."""
    files = FIT_FILES + (CONSENSUS_FILES if args.consensus else [])
    return files + (["report.html"] if args.report else [])


def _check_options(args):
    """Options that are used only after the fit, checked before it; returns the parsed --image-shape."""
    image_shape = _image_shape(args.image_shape)
    if image_shape is not None and not args.report:
        raise ValueError("--image-shape sets how the report draws W; add --report")
    if args.checkpoint_every < 1:
        raise ValueError(f"--checkpoint-every must be at least 1; got {args.checkpoint_every}")
    if args.consensus:
        if args.runs < 2:
            raise ValueError("--consensus needs --runs N with N ≥ 2 (30–50 is usual)")
        for flag in ("track", "checkpoint", "resume"):
            if getattr(args, flag):
                raise ValueError(f"--{flag} follows a single fit; it cannot be combined with --consensus")
        if args.missing == "mask":
            raise ValueError("--missing mask works for single fits; consensus runs need every entry observed")
    elif args.annotations or args.annotation_column:
        raise ValueError("--annotations colours the consensus map; add --consensus --runs N")
    if args.missing == "mask" and (args.lazy or args.scheduler or args.input.rstrip("/").endswith(".zarr")):
        raise ValueError("--missing mask reads the data into memory; it cannot be combined with --lazy, "
                         "--scheduler or a .zarr input")
    _check_auto_rank(args)
    return image_shape


def _check_auto_rank(args):
    """--rank auto and --rank-range: what they cannot be combined with, refused before the data are read."""
    if args.rank != "auto":
        if args.rank_range is not None:
            raise ValueError("--rank-range sets the ranks that --rank auto searches; add --rank auto")
        return
    if args.rank_range is not None:
        _rank_range(args.rank_range)
    for flag in ("consensus", "resume", "stream", "lazy", "scheduler"):
        if getattr(args, flag):
            raise ValueError(f"--rank auto fits masked copies of the data in memory to choose the rank; it cannot "
                             f"be combined with --{flag}; give the rank with --rank K")
    if args.chunk is not None or args.missing == "mask":
        raise ValueError("--rank auto cannot be combined with --chunk or --missing mask; give the rank with --rank K")


def _check_checkpoint(args, out, planned):
    """--checkpoint FILE: not the input, not an output, in a writable folder, not over a foreign file."""
    path = args.checkpoint
    if same_file(path, args.input):
        raise ValueError(f"--checkpoint {path} is the input file; choose another name")
    if any(same_file(path, out.final(name)) for name in [*planned, MANIFEST]):
        raise ValueError(f"--checkpoint {path} is one of the files written to --out {args.out}; "
                         "choose another name")
    _checkpoint.check_target(path)
    if (os.path.lexists(path) and not args.force and not (args.resume and same_file(path, args.resume))
            and not _is_checkpoint(path)):
        raise ValueError(f"--checkpoint {path} exists and is not an nmfkit checkpoint; "
                         "use --force to replace it, or choose another name")


def _is_checkpoint(path) -> bool:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
        return meta.get("format") == _checkpoint.FORMAT
    except Exception:       # anything unreadable is not a checkpoint
        return False


def _check_image_shape(image_shape, args, data):
    """Each column of W (one value per row of X) is drawn as an h×w image."""
    if image_shape is None:
        return
    h, w = image_shape
    m = data.shape[0]
    if h * w != m:
        rows = "columns of INPUT (--transpose)" if args.transpose else "rows of INPUT"
        raise ValueError(f"--image-shape {h}x{w} has {h * w} pixels, but each column of W has {m} entries "
                         f"(the {rows}); use a shape whose product is {m}")


def _fit(args, data, options):
    for flag in ("checkpoint", "resume"):
        if getattr(args, flag):
            options[flag] = getattr(args, flag)
    if args.checkpoint:
        options["checkpoint_every"] = args.checkpoint_every
    if args.stream or args.chunk is not None:
        options.update(stream=args.stream or "exact", chunk=args.chunk)
    if args.rank == "auto" and args.rank_range is not None:
        options["rank_range"] = _rank_range(args.rank_range)
    client = _connect(args.scheduler) if args.scheduler else None
    try:
        return nmfkit.fit(data.X, args.rank, solver=args.solver, loss=args.loss, beta=args.beta, init=args.init,
                          max_iter=args.max_iter, tol=args.tol, seed=args.seed, n_runs=args.runs,
                          time_limit=args.time_limit, verbose=not args.quiet, track=args.track,
                          missing=args.missing, **options)
    finally:
        if client is not None:
            client.close()


def _rank_argument(text):
    """--rank: a positive integer, or "auto" (the rank chosen by cross-validation, nmfkit.rank.auto)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r} (give an integer or auto)") from None


def _rank_range(text):
    """--rank-range LO-HI as (lo, hi); nmfkit.fit checks 1 ≤ lo ≤ hi ≤ min(m, n)."""
    try:
        lo, hi = (int(v) for v in text.split("-"))
    except ValueError:
        raise ValueError(f"--rank-range must look like 2-20; got {text!r}") from None
    return lo, hi


def _image_shape(text):
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--image-shape must look like 19x19; got {text!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"--image-shape must be two positive sizes like 19x19; got {text!r}")
    return h, w


def _consensus(args, data, options):
    """`--consensus`: many random runs of one rank and their agreement."""
    loss = "kl" if args.loss == "frobenius" and args.solver == "brunet" else args.loss
    return nmfkit.consensus(data.X, args.rank, n_runs=args.runs, solver="mu" if args.solver == "auto" else args.solver,
                            loss=loss, seed=args.seed, progress=not args.quiet,
                            init="random" if args.init == "auto" else args.init, **options)


def clusters_numbered_like_components(cons):
    """`cons` with its consensus clusters renumbered to match the best fit's components: cluster c
    is the one that overlaps most with the samples whose dominant component is NMFc (an optimal
    one-to-one matching), so one partition has the same numbers in every column of clusters.csv."""
    import dataclasses

    from scipy.optimize import linear_sum_assignment
    clusters = np.asarray(cons.sample_clusters)
    dominant = np.argmax(cons.best.H, axis=0)
    size = max(int(clusters.max()), int(dominant.max())) + 1
    overlap = np.zeros((size, size), dtype=np.int64)
    np.add.at(overlap, (clusters, dominant), 1)
    old, new = linear_sum_assignment(-overlap)
    renumber = np.empty(size, dtype=np.int64)
    renumber[old] = new
    return dataclasses.replace(cons, sample_clusters=renumber[clusters])


def write_consensus_outputs(cons, result, data, args, out) -> list:
    """consensus.csv, clusters.csv (clusters numbered 1..k like the components NMF1..NMFk) and
    consensus.png, then the files of a fit."""
    names = data.col_names or [str(j) for j in range(cons.consensus.shape[0])]
    io.write_matrix(out.path("consensus.csv"), cons.consensus, names, names)
    with atomic_write(out.path("clusters.csv"), "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([getattr(args, "sample_heading", "sample"), "consensus_cluster", "best_fit_cluster"])
        writer.writerows(zip(names, (cons.sample_clusters + 1).tolist(),
                             (np.argmax(result.H, axis=0) + 1).tolist()))
    save_figure(cons.plot(labels=getattr(args, "classes", None), sample_names=names), out.path("consensus.png"),
                dpi=120)
    files = write_outputs(result, data, args, out, extra={"consensus": {**cons.summary(), "seed": args.seed}})
    return files + CONSENSUS_FILES


def _stream_input(args):
    """INPUT as a chunk reader for a streamed fit (nmfkit.stream; no labels); --transpose streams the
    columns of a Matrix Market file or 10x folder."""
    from ..stream import open_stream
    for flag in ("consensus", "lazy", "scheduler", "track"):
        if getattr(args, flag):
            raise ValueError(f"--{flag} cannot be combined with --stream/--chunk")
    if args.missing == "mask":
        raise ValueError("--missing mask needs the data in memory; it cannot be combined with --stream/--chunk")
    if args.chunk is not None and args.chunk < 1:
        raise ValueError(f"--chunk must be at least 1; got {args.chunk}")
    return io.LabeledMatrix(open_stream(args.input, transpose=args.transpose), None, None, args.input)


def _read_lazy(args):
    """INPUT as a lazy row-chunked dask array (a .npy file or a .zarr store; no labels)."""
    from ..engines.dask_engine import read_lazy
    path = args.input.rstrip("/")
    if not path.endswith((".npy", ".zarr")):
        raise ValueError(f"--lazy and --scheduler read .npy files and .zarr stores; {args.input} is neither "
                         "(convert it, e.g. with numpy.save)")
    if args.chunk_rows is not None and args.chunk_rows < 1:
        raise ValueError(f"--chunk-rows must be at least 1; got {args.chunk_rows}")
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    X = read_lazy(path, chunk_rows=args.chunk_rows)
    if args.transpose:   # rows of Xᵀ are columns of the file: dask regroups them into row blocks
        X = X.T
    return io.LabeledMatrix(X, None, None, args.input)


def _connect(address):
    """A dask.distributed Client on ADDRESS; while it is open every dask computation runs there."""
    try:
        from distributed import Client
    except ImportError:
        raise ImportError("--scheduler needs the dask extra: pip install nmfkit[dask]") from None
    return Client(address, timeout="30s")


def write_outputs(result, data, args, out, extra=None) -> list[str]:
    """W.csv, H.csv, model.npz, history.csv and (last) summary.json, each written atomically."""
    components = [f"NMF{c + 1}" for c in range(result.rank)]
    io.write_matrix(out.path("W.csv"), result.W, data.row_names, components, data.corner)   # e.g. "gene"
    io.write_matrix(out.path("H.csv"), result.H, components, data.col_names)
    result.save(out.path("model.npz"))
    keys = list(result.history)
    with atomic_write(out.path("history.csv"), "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(keys)
        writer.writerows(zip(*(result.history[k].tolist() for k in keys)))
    summary = result.summary()
    summary["input"] = {"path": os.path.abspath(data.path), "shape": list(data.shape), "transposed": args.transpose,
                        "row_labels": data.row_names is not None, "col_labels": data.col_names is not None}
    summary["files"] = planned_files(args)
    summary.update(extra or {})
    with atomic_write(out.path("summary.json"), "w") as fh:
        json.dump(summary, fh, indent=2, default=_jsonable)
        fh.write("\n")
    return list(FIT_FILES)


def top_rows(result, names, n=5, max_components=10) -> str:
    """The rows (genes, words, …) with the largest loadings in each component, one line each."""
    lines = [f"top rows   (largest loadings in W; first {min(result.rank, max_components)} components)"]
    for q, top in enumerate(nmfkit.top_features(result.W, names, n)[:max_components]):
        lines.append(f"  NMF{q + 1:<4} " + ", ".join(str(label) for label, _ in top))
    return "\n".join(lines)


def _describe_rank_search(search) -> str:
    """One line: the rank --rank auto chose, the rule, and the ranks it fitted to choose it."""
    tried = ", ".join(str(e["rank"]) for e in search["evaluated"])
    lo, hi = search["rank_range"]
    return (f"rank auto  {search['rank']} by the {search['rule']} rule on held-out error; {search['n_evaluated']} of "
            f"{hi - lo + 1} ranks in {lo}-{hi} fitted ({tried}), {search['seconds']:.3g} s")


def describe(result, data, transposed=False) -> str:
    """A short human summary of a fit."""
    o = result.options
    m, n = data.shape
    name = os.path.basename(data.path) + (" (transposed)" if transposed else "")
    return "\n".join([
        f"input      {name}: {m}×{n} {o.get('engine', '')} {o.get('dtype', '')}".rstrip(),
        f"model      rank {result.rank}, solver {o.get('solver')}, loss {o.get('loss')}, init {o.get('init')}"
        + (f", best of {o.get('n_runs')} runs" if o.get("n_runs", 1) > 1 else ""),
        *([_describe_rank_search(o["rank_search"])] if "rank_search" in o else []),
        f"result     relative error {result.relative_error:.6g}, loss {result.loss:.6g}",
        f"stopped    {result.stop_reason} after {result.n_iter} iterations, {result.seconds:.3g} s",
    ])
