"""nmfkit's benchmark suite: time to accuracy against peers, over several instances of each family.

    python benchmarks/run.py [--quick] [--problems P1,P2,P3,P4] [--instances 5] [--starts 20]
                             [--threads 2] [--out DIR]

Every problem family (problems.py) is generated at --instances instances (data seed and starting-
factor seed vary together; the real data sets vary by a 90 % sample subsample).  On each instance and
loss, the nmfkit solvers and every installed peer (scikit-learn always; R NMF lee/brunet and RcppML
through Rscript; nimfa when importable) start from the same (W0, H0) where the peer allows (RcppML
0.3.7 only takes an integer seed).  nmfkit runs once with its per-iteration history; peers run over
an iteration ladder (1, 2, 5, 10, …), each point a fresh fit timed alone.  Every objective is
evaluated by the same code (½‖X − WH‖² or the generalised KL divergence).  Per instance: seconds per
iteration, × floor (one X Hᵀ plus one Xᵀ W, the two products every iteration needs), time to reach
within 1e-2 and 1e-3 (relative) of the lowest objective any method reached, peak traced memory.
Per family: the median and the worst (over instances) of each method's time to 1e-3, of nmfkit's
ratio to the fastest peer of the same instance and to the issue's absolute target, and of × floor.
Then, on instance 0, every nmfkit solver and scikit-learn's solvers run from --starts random starts:
the distribution of final objectives relative to the best of all (which solver lands in the better
minima).  Writes RESULTS.md, results.json (per instance), summary.json (per family and the
distributions), one error-versus-time plot per instance and loss, and one minima plot per family and
loss into --out.
"""
from __future__ import annotations

import argparse
import os
import sys


def _set_threads(n):
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)


if __name__ == "__main__":
    _pre = argparse.ArgumentParser(add_help=False)
    _pre.add_argument("--threads", type=int, default=2)
    _set_threads(_pre.parse_known_args()[0].threads)

import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import scipy.io  # noqa: E402
import scipy.sparse as sp  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import problems  # noqa: E402

import nmfkit  # noqa: E402
from nmfkit.engines import make_engine  # noqa: E402
from nmfkit.registry import SOLVERS  # noqa: E402

LADDER = (1, 2, 5, 10, 20, 50, 100, 200, 400, 800)
# The general-purpose solvers of the plain losses; R's variants (offset, nsnmf, snmf, …) minimise other
# objectives and sgd is for masked data.  --solvers all runs every registered solver but sgd.
CORE_SOLVERS = ("hals", "anls", "ccd", "mu", "pgd")
SKIP_SOLVERS = {"sgd"}
SKLEARN_SOLVERS = {"frobenius": ("cd", "mu"), "kl": ("mu",)}


def objective(engine, loss, W, H):
    Ht = np.ascontiguousarray(H.T)
    return engine.frobenius_exact(W, Ht) if loss == "frobenius" else engine.kl_divergence(W, Ht)


def floor_seconds(X, W, H, engine, reps=5):
    """Median seconds of one X Hᵀ plus one Xᵀ W: (the best of SciPy's/NumPy's and nmfkit's kernels,
    SciPy's/NumPy's alone).  nmfkit's are the engine's own products (for sparse X the row-parallel
    CSR kernel over X and a CSR copy of Xᵀ; for dense X the same BLAS as NumPy's)."""
    Ht = np.ascontiguousarray(H.T)

    def median_of(products):
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            products()
            times.append(time.perf_counter() - t)
        return float(np.median(times))

    library = median_of(lambda: (X @ Ht, X.T @ W))
    own = median_of(lambda: (engine.XHt(Ht), engine.XtW(W)))
    return min(library, own), library


def peak_mb(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


# -- methods: each returns a list of (seconds, objective) points ------------------------------
def run_nmfkit(solver, X, k, loss, W0, H0, max_iter, budget, engine):
    res = nmfkit.fit(X, k, solver=solver, loss=loss, init=(W0, H0), max_iter=max_iter, tol=0,
                     time_limit=budget)
    secs, objs = res.history["seconds"], res.history["objective"]
    if loss == "frobenius" or solver == "lee":  # history holds the method's own objective; re-check the last
        objs = objs.copy()
    pts = list(zip(secs.tolist(), objs.tolist()))
    pts[-1] = (pts[-1][0], objective(engine, loss, res.W, res.H))
    return pts, res.n_iter


def ladder_points(fit_once, engine, loss, max_iter, budget):
    pts, n_done = [(0.0, None)], 0
    for n_iter in LADDER:
        if n_iter > max_iter:
            break
        secs, W, H = fit_once(n_iter)
        pts.append((secs, objective(engine, loss, W, H)))
        n_done = n_iter
        if secs > budget:
            break
    return pts[1:], n_done


def sklearn_fit(X, k, loss, W0, H0, solver):
    from sklearn.decomposition import NMF

    def once(n_iter):
        model = NMF(k, solver=solver, beta_loss="frobenius" if loss == "frobenius" else "kullback-leibler",
                    init="custom", max_iter=n_iter, tol=0)
        t = time.perf_counter()
        W = model.fit_transform(X, W=W0.copy(), H=H0.copy())
        return time.perf_counter() - t, W, model.components_
    return once


def nimfa_fit(X, k, loss, W0, H0):
    if not hasattr(np, "mat"):   # nimfa 1.4 calls np.mat, which NumPy 2 removed; np.asmatrix is the same
        np.mat = np.asmatrix
    import nimfa

    def once(n_iter):
        model = nimfa.Nmf(X, seed=None, W=W0.copy(), H=H0.copy(), rank=k, max_iter=n_iter,
                          update="euclidean" if loss == "frobenius" else "divergence",
                          objective="fro" if loss == "frobenius" else "div", min_residuals=0)
        t = time.perf_counter()
        fit = model()
        secs = time.perf_counter() - t
        return secs, np.asarray(fit.basis()), np.asarray(fit.coef())
    return once


def r_ladder(method, X, k, W0, H0, max_iter, budget, threads, workdir):
    """Run an R peer over the ladder (in one R process); returns [(seconds, W, H)]."""
    m, n = X.shape
    ladder = [v for v in LADDER if v <= max_iter]
    # rough budget cut: R can't stop itself, so cap the ladder by a first timing
    with open(os.path.join(workdir, "dims.txt"), "w") as f:
        f.write(f"{m} {n} {k} {int(sp.issparse(X))}\n")
    if sp.issparse(X):
        scipy.io.mmwrite(os.path.join(workdir, "X.mtx"), X)
    else:
        np.asfortranarray(X).T.ravel().tofile(os.path.join(workdir, "X.bin"))  # column-major
    np.asfortranarray(W0).T.ravel().tofile(os.path.join(workdir, "W0.bin"))
    np.asfortranarray(H0).T.ravel().tofile(os.path.join(workdir, "H0.bin"))
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers.R")
    out = []
    for n_iter in ladder:
        proc = subprocess.run(["Rscript", script, method, workdir, str(n_iter), str(threads)],
                              capture_output=True, text=True, timeout=max(600, 20 * budget))
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "R failed")
        secs = float(proc.stdout.split()[1])
        rd = lambda name, r, c: np.fromfile(os.path.join(workdir, name)).reshape(c, r).T  # noqa: E731
        out.append((n_iter, secs, rd(f"{method}_{n_iter}_W.bin", m, k), rd(f"{method}_{n_iter}_H.bin", k, n)))
        if secs > budget:
            break
    return out


def r_available(package):
    if not shutil.which("Rscript"):
        return False
    return subprocess.run(["Rscript", "-e", f"suppressMessages(library({package}))"],
                          capture_output=True).returncode == 0


# -- one problem ---------------------------------------------------------------------------
def selected_solvers(args, loss, engine):
    names = CORE_SOLVERS if args.solvers is None else SOLVERS if args.solvers == "all" else args.solvers.split(",")
    return [name for name in names if name == "auto" or name in SOLVERS and name not in SKIP_SOLVERS
            and loss in SOLVERS[name].losses and engine.kind in SOLVERS[name].engines]


def bench_problem(prob, loss, args):
    X, k = prob.X, prob.rank
    engine = make_engine(X)
    start_seed = prob.instance
    W0, H0 = problems.starting_factors(X, k, start_seed)
    max_iter = 50 if args.quick else 800
    budget = 3.0 if args.quick else args.budget
    floor, library_floor = floor_seconds(X, W0, H0, engine)
    rows = {}

    def record(name, pts, n_iter, peak=None, note=""):
        rows[name] = {"points": pts, "n_iter": n_iter, "peak_mb": peak, "note": note}
        print(f"  {name:<22} {n_iter:>5} it  {pts[-1][0]:8.3f} s  objective {pts[-1][1]:.6g}", flush=True)

    for name in selected_solvers(args, loss, engine):
        try:
            # untimed warm-up: Numba's compiled code is loaded and its thread pool started on first use
            nmfkit.fit(X, k, solver=name, loss=loss, init=(W0, H0), max_iter=2, tol=0)
            pts, n_iter = run_nmfkit(name, X, k, loss, W0, H0, max_iter, budget, engine)
        except ValueError as exc:  # e.g. R-exact brunet refuses all-zero rows/columns
            print(f"  nmfkit {name} refused: {exc}")
            continue
        peak = peak_mb(lambda: nmfkit.fit(X, k, solver=name, loss=loss, init=(W0, H0), max_iter=3, tol=0))
        record(f"nmfkit {name}", pts, n_iter, peak)

    for s in SKLEARN_SOLVERS[loss]:
        once = sklearn_fit(X, k, loss, W0, H0, s)
        pts, n_iter = ladder_points(once, engine, loss, max_iter, budget)
        peak = peak_mb(lambda: once(3))
        record(f"scikit-learn {s}", pts, n_iter, peak)

    try:
        import nimfa  # noqa: F401
        if not args.no_nimfa:
            try:
                pts, n_iter = ladder_points(nimfa_fit(X, k, loss, W0, H0), engine, loss, max_iter, budget)
                record("nimfa", pts, n_iter)
            except Exception as exc:  # a broken peer is reported, not fatal
                print(f"  nimfa failed: {exc}")
    except ImportError:
        pass

    r_methods = []
    if not args.no_r and r_available("NMF") and not sp.issparse(X):
        r_methods.append("lee" if loss == "frobenius" else "brunet")
    if not args.no_r and loss == "frobenius" and r_available("RcppML"):
        r_methods.append("rcppml")
    for method in r_methods:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                fits = r_ladder(method, X, k, W0, H0, max_iter, budget, args.threads, tmp)
            except Exception as exc:
                print(f"  R {method} failed: {exc}")
                continue
        pts = [(secs, objective(engine, loss, W, H)) for _, secs, W, H in fits]
        label = {"lee": "R NMF lee", "brunet": "R NMF brunet", "rcppml": "RcppML (own init)"}[method]
        record(label, pts, fits[-1][0])

    best = min(p[1] for r in rows.values() for p in r["points"])
    for r in rows.values():
        pts = r["points"]
        for tag, rel in (("t_1e-2", 1e-2), ("t_1e-3", 1e-3)):
            hit = [s for s, f in pts if f <= best * (1 + rel)]
            r[tag] = hit[0] if hit else None
        # Ladders time each length in a fit of its own: on a loaded machine the longest can finish
        # sooner than the first, and then only the average over the whole longest fit is meaningful.
        if len(pts) >= 2 and r["n_iter"] > 1 and pts[-1][0] > pts[0][0]:
            first_it = 0 if pts[0][0] == 0.0 else None
            r["sec_per_iter"] = (pts[-1][0] - pts[0][0]) / max(r["n_iter"] - (0 if first_it == 0 else 1), 1)
        else:
            r["sec_per_iter"] = pts[-1][0] / max(r["n_iter"], 1)
        r["x_floor"] = r["sec_per_iter"] / floor
        r["x_library_floor"] = r["sec_per_iter"] / library_floor
    return {"problem": prob.name, "description": prob.description, "loss": loss, "instance": prob.instance,
            "start_seed": start_seed, "shape": list(X.shape), "target_s": prob.target(loss), "floor_s": floor,
            "library_floor_s": library_floor,
            "best_objective": best, "norm_sq": engine.sqnorm, "methods": rows}


# -- over instances ------------------------------------------------------------------------
def _finite(v):
    """JSON has no infinity: None stands for "never" (a time) or "infinitely slower" (a ratio)."""
    return float(v) if v is not None and np.isfinite(v) else None


def is_peer(name):
    return not name.startswith("nmfkit ")


def summarize(instances):
    """Median and worst over instances of one family and loss, per method.

    Per instance: time to 1e-3 (∞ when not reached); for nmfkit solvers, the ratio of that time to
    the fastest peer's on the same instance (0 when no peer reached it, ∞ when nmfkit did not) and to
    the issue's target; × floor.  Worst = the largest over instances.
    """
    first = instances[0]
    names = []
    for res in instances:
        names += [n for n in res["methods"] if n not in names]
    peer_t = []
    for res in instances:
        times = [r["t_1e-3"] for n, r in res["methods"].items() if is_peer(n) and r["t_1e-3"] is not None]
        peer_t.append(min(times) if times else np.inf)
    target = first["target_s"]
    rows = {}
    for name in names:
        t = np.array([res["methods"][name]["t_1e-3"] if name in res["methods"]
                      and res["methods"][name]["t_1e-3"] is not None else np.inf for res in instances])
        x_floor = np.array([res["methods"][name]["x_floor"] for res in instances if name in res["methods"]])
        row = {"instances": int(sum(name in res["methods"] for res in instances)),
               "reached": int(np.isfinite(t).sum()),
               "median_t": _finite(np.median(t)), "worst_t": _finite(t.max()),
               "median_x_floor": float(np.median(x_floor)), "worst_x_floor": float(x_floor.max())}
        if not is_peer(name):
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(np.isfinite(t), t / np.array(peer_t), np.inf)
            row["ratio_to_peer"] = [_finite(v) for v in ratio]
            row["median_ratio_to_peer"] = _finite(np.median(ratio))
            row["worst_ratio_to_peer"] = _finite(ratio.max())
            if target is not None:
                row["median_ratio_to_target"] = _finite(np.median(t) / target)
                row["worst_ratio_to_target"] = _finite(t.max() / target)
        rows[name] = row
    nmf = [n for n in rows if not is_peer(n)]
    best_nmf = min(nmf, key=lambda n: (rows[n]["median_t"] is None, rows[n]["median_t"] or 0,
                                       rows[n]["worst_t"] is None, rows[n]["worst_t"] or 0)) if nmf else None
    fastest = [min(((r["t_1e-3"], n) for n, r in res["methods"].items() if is_peer(n) and r["t_1e-3"] is not None),
                   default=(None, None))[1] for res in instances]
    return {"problem": first["problem"], "loss": first["loss"], "n_instances": len(instances),
            "target_s": target, "peer_t": [_finite(v) for v in peer_t], "fastest_peer": fastest,
            "median_peer_t": _finite(np.median(peer_t)), "worst_peer_t": _finite(max(peer_t)),
            "best_nmfkit": best_nmf, "methods": rows}


# -- local minima over many starts ---------------------------------------------------------
def objective_distribution(prob, loss, args):
    """Final objectives of every solver from --starts random starts on one instance's data."""
    X, k = prob.X, prob.rank
    engine = make_engine(X)
    max_iter = 50 if args.quick else args.start_iters
    finals, iters = {}, {}
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning
    for start in range(args.starts):
        W0, H0 = problems.starting_factors(X, k, 1000 + start)  # seeds disjoint from the instances'
        for name in selected_solvers(args, loss, engine):
            try:
                res = nmfkit.fit(X, k, solver=name, loss=loss, init=(W0, H0), max_iter=max_iter, tol=0,
                                 time_limit=args.start_budget)
            except ValueError:  # refused (see the timing tables); nothing to compare
                continue
            finals.setdefault(f"nmfkit {name}", []).append(objective(engine, loss, res.W, res.H))
            iters.setdefault(f"nmfkit {name}", []).append(res.n_iter)
        for s in SKLEARN_SOLVERS[loss]:
            model = NMF(k, solver=s, beta_loss="frobenius" if loss == "frobenius" else "kullback-leibler",
                        init="custom", max_iter=max_iter, tol=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                W = model.fit_transform(X, W=W0.copy(), H=H0.copy())
            finals.setdefault(f"scikit-learn {s}", []).append(objective(engine, loss, W, model.components_))
            iters.setdefault(f"scikit-learn {s}", []).append(int(model.n_iter_))
    best = min(min(v) for v in finals.values())
    rows = {}
    for name, values in finals.items():
        rel = np.array(values) / best - 1
        rows[name] = {"objectives": [float(v) for v in values], "iterations": iters[name], "min": float(rel.min()),
                      "median": float(np.median(rel)), "max": float(rel.max()),
                      "share_within_1e-3": float(np.mean(rel <= 1e-3))}
    return {"problem": prob.name, "loss": loss, "instance": prob.instance, "starts": args.starts,
            "max_iter": max_iter, "time_limit_s": args.start_budget, "best_objective": best, "methods": rows}


def fmt(v, unit=""):
    if v is None:
        return "—"
    if unit == "s":
        return f"{v * 1000:.1f} ms" if v < 1 else f"{v:.2f} s"
    return f"{v:.2f}"


def fmt_ratio(v):
    """A ratio of times: None is ∞ (nmfkit did not reach 1e-3), 0 means no peer did."""
    if v is None:
        return "∞"
    return "no peer" if v == 0 else f"{v:.2f}"


def fmt_target(row, key):
    return fmt_ratio(row[key]) if key in row else "—"


def instance_table(res):
    lines = [f"### {res['problem']} instance {res['instance']} — {res['description']} — {res['loss']}", "",
             f"Floor (one X Hᵀ + one Xᵀ W, the best of SciPy's/NumPy's and nmfkit's kernels): "
             f"{fmt(res['floor_s'], 's')}; SciPy's/NumPy's alone: {fmt(res['library_floor_s'], 's')}. "
             "Lowest objective reached: "
             f"{res['best_objective']:.8g}. Starting factors: seed {res['start_seed']}.", "",
             "| method | iterations | s/iteration | × floor | × SciPy floor | time to 1e-2 | time to 1e-3 "
             "| final rel. gap | peak MB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in sorted(res["methods"].items(), key=lambda kv: (kv[1]["t_1e-3"] is None, kv[1]["t_1e-3"] or 0)):
        gap = r["points"][-1][1] / res["best_objective"] - 1
        lines.append(f"| {name} | {r['n_iter']} | {fmt(r['sec_per_iter'], 's')} | {fmt(r['x_floor'])} | "
                     f"{fmt(r['x_library_floor'])} | {fmt(r['t_1e-2'], 's')} | {fmt(r['t_1e-3'], 's')} | {gap:.2e} | "
                     f"{fmt(r['peak_mb']) if r['peak_mb'] is not None else '—'} |")
    return lines + [""]


def family_table(summ):
    target = fmt(summ["target_s"], "s") if summ["target_s"] is not None else "none (quick sizes)"
    lines = [f"### {summ['problem']} — {summ['loss']} ({summ['n_instances']} instances; target {target})", "",
             "| method | reached 1e-3 | median time | worst time | median ratio to fastest peer | worst ratio "
             "| median ratio to target | worst ratio to target | median × floor | worst × floor |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in sorted(summ["methods"].items(), key=lambda kv: (kv[1]["median_t"] is None,
                                                                   kv[1]["median_t"] or 0)):
        peer = is_peer(name)
        lines.append(f"| {name} | {r['reached']}/{r['instances']} | {fmt(r['median_t'], 's')} | "
                     f"{fmt(r['worst_t'], 's')} | {'—' if peer else fmt_ratio(r['median_ratio_to_peer'])} | "
                     f"{'—' if peer else fmt_ratio(r['worst_ratio_to_peer'])} | "
                     f"{fmt_target(r, 'median_ratio_to_target')} | {fmt_target(r, 'worst_ratio_to_target')} | "
                     f"{fmt(r['median_x_floor'])} | {fmt(r['worst_x_floor'])} |")
    return lines + [""]


def distribution_table(dist):
    lines = [f"### {dist['problem']} — {dist['loss']}: {dist['starts']} starts, at most {dist['max_iter']} "
             f"iterations each (instance {dist['instance']}; best objective {dist['best_objective']:.8g})", "",
             "| method | starts | median iterations | min | median | max | share within 1e-3 |",
             "|---|---|---|---|---|---|---|"]
    for name, r in sorted(dist["methods"].items(), key=lambda kv: kv[1]["median"]):
        lines.append(f"| {name} | {len(r['objectives'])} | {int(np.median(r['iterations']))} | {r['min']:.2e} | "
                     f"{r['median']:.2e} | {r['max']:.2e} | {r['share_within_1e-3']:.0%} |")
    return lines + [""]


def write_markdown(results, summaries, dists, path, args):
    lines = ["# nmfkit benchmark results", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
             f"{args.threads} threads; Python {platform.python_version()}, NumPy {np.__version__}. "
             f"Mode: {'quick' if args.quick else 'full'}. Command: `python benchmarks/run.py "
             f"{' '.join(sys.argv[1:])}`.", "",
             "## Summary over instances", "",
             "Time to reach within 1e-3 of the lowest objective any method reached on the instance; ratios are "
             "nmfkit's time over the fastest peer's on the same instance (< 1: nmfkit faster; ∞: nmfkit did not "
             "reach it; no peer: only nmfkit did) and over the target. Median and worst over instances.", "",
             "| problem | loss | instances | nmfkit solver | median time | worst time | fastest peer (most often) "
             "| fastest peer's time, median | median ratio | worst ratio | target | median / target | worst / target "
             "| median × floor |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for summ in summaries:
        name = summ["best_nmfkit"]
        if name is None:
            continue
        r = summ["methods"][name]
        peers = [p for p in summ["fastest_peer"] if p is not None]
        peer = max(set(peers), key=peers.count) if peers else "none reached 1e-3"
        lines.append(f"| {summ['problem']} | {summ['loss']} | {summ['n_instances']} | {name.split()[-1]} | "
                     f"{fmt(r['median_t'], 's')} | {fmt(r['worst_t'], 's')} | {peer} | "
                     f"{fmt(summ['median_peer_t'], 's')} | "
                     f"{fmt_ratio(r['median_ratio_to_peer'])} | {fmt_ratio(r['worst_ratio_to_peer'])} | "
                     f"{fmt(summ['target_s'], 's')} | {fmt_target(r, 'median_ratio_to_target')} | "
                     f"{fmt_target(r, 'worst_ratio_to_target')} | {fmt(r['median_x_floor'])} |")
    lines += ["", "## Per family", ""]
    for summ in summaries:
        lines += family_table(summ)
    if dists:
        lines += ["## Final objectives over many starts", "",
                  "Objective / best over all methods and starts − 1: where each solver's fits end.", ""]
        for dist in dists:
            lines += distribution_table(dist)
    lines += ["## Per instance", ""]
    for res in results:
        lines += instance_table(res)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)


def plot(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    best = res["best_objective"]
    for name, r in res["methods"].items():
        s = np.array([p[0] for p in r["points"]])
        f = np.array([p[1] for p in r["points"]])
        gap = np.maximum(f / best - 1, 1e-12)
        keep = s > 0
        ax.loglog(s[keep], gap[keep], marker="." if "nmfkit" not in name else None, label=name)
    ax.axhline(1e-3, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("seconds (fit only)")
    ax.set_ylabel("objective / best − 1")
    ax.set_title(f"{res['problem']} {res['loss']}: {res['description']}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_minima(dist, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = sorted(dist["methods"], key=lambda n: dist["methods"][n]["median"])
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.4))
    for i, name in enumerate(names):
        rel = np.maximum(np.array(dist["methods"][name]["objectives"]) / dist["best_objective"] - 1, 1e-12)
        ax.scatter(rel, np.full(len(rel), i) + np.linspace(-0.2, 0.2, len(rel)), s=10)
    ax.set_xscale("log")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.axvline(1e-3, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("final objective / best − 1 (floored at 1e-12)")
    ax.set_title(f"{dist['problem']} {dist['loss']}: {dist['starts']} starts, ≤ {dist['max_iter']} iterations",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(obj, path):
    """Atomically: a reader never sees half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, allow_nan=False)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="small problems, short ladders, 2 instances and 3 starts unless given (seconds)")
    ap.add_argument("--problems", default="P1,P2,P3,P4")
    ap.add_argument("--losses", default="frobenius,kl")
    ap.add_argument("--instances", type=int, default=None, help="instances per family (default 5; quick 2)")
    ap.add_argument("--starts", type=int, default=None,
                    help="random starts per solver for the final-objective distribution (default 20; quick 3; "
                         "0 skips it)")
    ap.add_argument("--start-iters", type=int, default=400, help="iterations per start (full mode)")
    ap.add_argument("--start-budget", type=float, default=10.0, help="seconds per nmfkit fit and start")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per method and problem (full mode)")
    ap.add_argument("--no-r", action="store_true", help="skip the R peers")
    ap.add_argument("--no-nimfa", action="store_true")
    ap.add_argument("--solvers", default=None,
                    help=f"comma-separated nmfkit solvers, or 'all' (default: {','.join(CORE_SOLVERS)})")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.instances is None:
        args.instances = 2 if args.quick else 5
    if args.starts is None:
        args.starts = 3 if args.quick else 20
    if args.instances < 1 or args.starts < 0:
        ap.error("--instances must be ≥ 1 and --starts ≥ 0")
    losses = args.losses.split(",")
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   "quick" if args.quick else "full")
    os.makedirs(out, exist_ok=True)
    results, summaries, dists = [], [], []
    for name in args.problems.split(","):
        per_loss = {}
        for instance in range(args.instances):
            prob = problems.make(name.strip(), quick=args.quick, instance=instance)
            for loss in prob.losses:
                if loss not in losses:
                    continue
                print(f"{prob.name} instance {instance} {loss}: {prob.description}", flush=True)
                res = bench_problem(prob, loss, args)
                results.append(res)
                per_loss.setdefault(loss, []).append(res)
                suffix = "" if instance == 0 else f"_i{instance}"
                plot(res, os.path.join(out, f"{prob.name}_{loss}{suffix}.png"))
            if instance == 0 and args.starts:
                for loss in prob.losses:
                    if loss in losses:
                        print(f"{prob.name} {loss}: final objectives from {args.starts} starts", flush=True)
                        dist = objective_distribution(prob, loss, args)
                        dists.append(dist)
                        plot_minima(dist, os.path.join(out, f"{prob.name}_{loss}_minima.png"))
        summaries += [summarize(instances) for instances in per_loss.values()]
    write_markdown(results, summaries, dists, os.path.join(out, "RESULTS.md"), args)
    write_json(results, os.path.join(out, "results.json"))
    write_json({"families": summaries, "distributions": dists}, os.path.join(out, "summary.json"))
    print(f"wrote {out}/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
