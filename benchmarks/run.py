"""nmfkit's benchmark suite: time to accuracy against peers and against the matrix-product floor.

    python benchmarks/run.py [--quick] [--problems P1,P2,P3,P4] [--threads 2] [--out DIR]

For each problem and loss, every nmfkit solver and every installed peer
(scikit-learn always; R NMF lee/brunet and RcppML through Rscript; nimfa when
importable) starts from the same (W0, H0) where the peer allows (RcppML 0.3.7
only takes an integer seed).  nmfkit runs once with its per-iteration history;
peers run over an iteration ladder (1, 2, 5, 10, …), each point a fresh fit
timed alone.  Every objective is evaluated by the same code (½‖X − WH‖² or the
generalised KL divergence).  Reported: seconds per iteration, × floor (one
X Hᵀ plus one Xᵀ W, the two products every iteration needs), time to reach
within 1e-2 and 1e-3 (relative) of the lowest objective any method reached,
and peak traced memory of a short run.  Writes RESULTS.md, results.json and
one error-versus-time plot per problem and loss into --out.
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

import numpy as np  # noqa: E402
import scipy.io  # noqa: E402
import scipy.sparse as sp  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import problems  # noqa: E402

import nmfkit  # noqa: E402
from nmfkit.engines import make_engine  # noqa: E402
from nmfkit.registry import SOLVERS  # noqa: E402

LADDER = (1, 2, 5, 10, 20, 50, 100, 200, 400, 800)
SKIP_SOLVERS = {"sgd"}  # entry-wise SGD is for masked/ratings data, not these problems


def objective(engine, loss, W, H):
    Ht = np.ascontiguousarray(H.T)
    return engine.frobenius_exact(W, Ht) if loss == "frobenius" else engine.kl_divergence(W, Ht)


def floor_seconds(X, W, H, reps=5):
    Ht = np.ascontiguousarray(H.T)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        X @ Ht
        X.T @ W
        times.append(time.perf_counter() - t)
    return float(np.median(times))


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
def bench_problem(prob, loss, args):
    X, k = prob.X, prob.rank
    engine = make_engine(X)
    rng = np.random.default_rng(0)
    scale = np.sqrt(engine.mean() / k)
    W0 = scale * rng.random((X.shape[0], k)) * 2
    H0 = scale * rng.random((k, X.shape[1])) * 2
    max_iter = 50 if args.quick else 800
    budget = 3.0 if args.quick else args.budget
    floor = floor_seconds(X, W0, H0)
    rows = {}

    def record(name, pts, n_iter, peak=None, note=""):
        rows[name] = {"points": pts, "n_iter": n_iter, "peak_mb": peak, "note": note}
        print(f"  {name:<22} {n_iter:>5} it  {pts[-1][0]:8.3f} s  objective {pts[-1][1]:.6g}", flush=True)

    for name, spec in SOLVERS.items():
        if loss not in spec.losses or name in SKIP_SOLVERS or engine.kind not in spec.engines:
            continue
        if args.solvers and name not in args.solvers.split(","):
            continue
        try:
            # untimed warm-up: Numba's compiled code is loaded and its thread pool started on first use
            nmfkit.fit(X, k, solver=name, loss=loss, init=(W0, H0), max_iter=2, tol=0)
            pts, n_iter = run_nmfkit(name, X, k, loss, W0, H0, max_iter, budget, engine)
        except ValueError as exc:  # e.g. R-exact brunet refuses all-zero rows/columns
            print(f"  nmfkit {name} refused: {exc}")
            continue
        peak = peak_mb(lambda: nmfkit.fit(X, k, solver=name, loss=loss, init=(W0, H0), max_iter=3, tol=0))
        record(f"nmfkit {name}", pts, n_iter, peak)

    sk_solvers = ("cd", "mu") if loss == "frobenius" else ("mu",)
    for s in sk_solvers:
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
    return {"problem": prob.name, "description": prob.description, "loss": loss, "floor_s": floor,
            "best_objective": best, "norm_sq": engine.sqnorm, "methods": rows}


def fmt(v, unit=""):
    if v is None:
        return "—"
    if unit == "s":
        return f"{v * 1000:.1f} ms" if v < 1 else f"{v:.2f} s"
    return f"{v:.2f}"


def write_markdown(results, path, args):
    lines = ["# nmfkit benchmark results", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
             f"{args.threads} threads; Python {platform.python_version()}, NumPy {np.__version__}. "
             f"Mode: {'quick' if args.quick else 'full'}. Command: `python benchmarks/run.py "
             f"{' '.join(sys.argv[1:])}`.", ""]
    for res in results:
        lines += [f"## {res['problem']} — {res['description']} — {res['loss']}", "",
                  f"Floor (one X Hᵀ + one Xᵀ W): {fmt(res['floor_s'], 's')}. Lowest objective reached: "
                  f"{res['best_objective']:.8g}.", "",
                  "| method | iterations | s/iteration | × floor | time to 1e-2 | time to 1e-3 | final rel. gap "
                  "| peak MB |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, r in sorted(res["methods"].items(), key=lambda kv: (kv[1]["t_1e-3"] is None, kv[1]["t_1e-3"] or 0)):
            gap = r["points"][-1][1] / res["best_objective"] - 1
            lines.append(f"| {name} | {r['n_iter']} | {fmt(r['sec_per_iter'], 's')} | {fmt(r['x_floor'])} | "
                         f"{fmt(r['t_1e-2'], 's')} | {fmt(r['t_1e-3'], 's')} | {gap:.2e} | "
                         f"{fmt(r['peak_mb']) if r['peak_mb'] is not None else '—'} |")
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small problems and short ladders (seconds)")
    ap.add_argument("--problems", default="P1,P2,P3,P4")
    ap.add_argument("--losses", default="frobenius,kl")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per method and problem (full mode)")
    ap.add_argument("--no-r", action="store_true", help="skip the R peers")
    ap.add_argument("--no-nimfa", action="store_true")
    ap.add_argument("--solvers", default=None, help="comma-separated nmfkit solvers (default: all registered)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   "quick" if args.quick else "full")
    os.makedirs(out, exist_ok=True)
    results = []
    for name in args.problems.split(","):
        prob = problems.make(name.strip(), quick=args.quick)
        for loss in prob.losses:
            if loss not in args.losses.split(","):
                continue
            print(f"{prob.name} {loss}: {prob.description}", flush=True)
            res = bench_problem(prob, loss, args)
            results.append(res)
            plot(res, os.path.join(out, f"{prob.name}_{loss}.png"))
    write_markdown(results, os.path.join(out, "RESULTS.md"), args)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"wrote {out}/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
