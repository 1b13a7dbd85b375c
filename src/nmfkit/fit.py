"""The front door: validate → engine → resolve names → init → driver → Factorization.

    nmfkit.fit(X, rank, solver="auto", loss="frobenius", init="auto", ...)

`n_runs > 1` runs independent fits from seeds spawned from `seed`
(`numpy.random.SeedSequence(seed).spawn(n_runs)`) and keeps the lowest loss.
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from . import solvers  # noqa: F401  (fills the solver registry)
from . import checkpoint as _checkpoint
from . import init as _init  # noqa: F401  (fills the init registry)
from .diagnostics import Tracker
from .driver import run
from .engines import make_engine
from .penalties import Penalty
from .registry import INITS, auto_solver, resolve_loss, solver_spec
from .result import Factorization
from .validation import (check_factors, check_fit_memory, check_matrix, check_nonneg_float, check_positive_int,
                         check_rank, check_seed, choose)

DETERMINISTIC_INITS = ("nndsvd", "nndsvda")


def _labels(X):
    """Row and column labels of a pandas DataFrame (None otherwise)."""
    if hasattr(X, "index") and hasattr(X, "columns"):
        return [str(v) for v in X.index], [str(v) for v in X.columns]
    return None, None


def fit(X, rank, *, solver="auto", loss="frobenius", beta=None, init="auto", max_iter=None,
        tol=1e-4, seed=None, n_runs=1, callback=None, time_limit=None, verbose=False, track=False,
        mask=None, missing="error", checkpoint=None, checkpoint_every=50, resume=None,
        objective_every=None, **solver_options) -> Factorization:
    """Factorize a non-negative matrix X (m×n) as W H with W (m×k), H (k×n) ≥ 0.

    Parameters
    ----------
    X : array-like or SciPy sparse matrix, non-negative. Integers become float64;
        float32 stays float32. Sparse input is never densified.
    rank : number of components k, 1 ≤ k ≤ min(m, n).
    solver : "auto", or a registered name ("mu", "lee", "brunet", …; see
        `nmfkit.solvers_table()`).
    loss : "frobenius" (½‖X − WH‖²), "kl" (generalised Kullback–Leibler) or "is";
        `beta=` selects a general β-divergence where the solver supports it.
    init : "auto", "random", "nndsvd", "nndsvda", "nndsvdar", or a pair (W0, H0).
    max_iter : iteration cap (default: the solver's).
    tol : stop when the relative objective decrease per iteration, averaged over
        the last 5 iterations, falls below tol; 0 runs exactly max_iter iterations.
    seed : int or None; all randomness derives from it.
    n_runs : independent runs (random inits); the best is kept, all are summarised.
    callback : callable(state) -> bool, called after each iteration; True stops.
    time_limit : seconds per run.
    verbose : show a progress line on a terminal.
    track : True records seed 000's convergence quantities per iteration in `history`
        (see `nmfkit.diagnostics`); a list of quantity names / callables, or a
        `diagnostics.Tracker`, selects them.
    mask : boolean m×n array, True = observed: the loss counts observed entries
        only (solvers "mu", "pgd", "sgd"; the data is then held densely).
    missing : "error" (NaN in X is refused) or "mask" (NaN entries are missing).
    checkpoint : path of a checkpoint file written every `checkpoint_every`
        iterations (and on Ctrl-C), atomically; see `nmfkit.checkpoint`.
    resume : path of a checkpoint to continue from (same X, rank, solver, loss);
        the iteration count continues, so `max_iter` is the total.
    objective_every : evaluate a KL/β objective (a logarithm per entry: as costly as
        the rest of an iteration) only every this many iterations; `history` and
        `tol` then use those iterations.  Default: the solver's (10 for KL
        multiplicative updates, 1 where the objective comes free); `track=True`
        evaluates every iteration.
    solver_options : passed to the solver (see its documentation).
    """
    row_names, col_names = _labels(X)
    missing = choose(missing, ("error", "mask"), "missing")
    X = check_matrix(X, "X", allow_nan=missing == "mask" or mask is not None)
    rank = check_rank(rank, X.shape)
    seed = check_seed(seed)
    engine = make_engine(X, mask=mask, nan_is_missing=missing == "mask")
    check_fit_memory(engine.shape, rank, engine.dtype, dense=engine.kind in ("dense", "masked"))
    loss, beta_value = resolve_loss(loss, beta)
    if solver == "auto":
        asked = {k: v for k, v in solver_options.items() if k in ("alpha_W", "alpha_H", "l1_ratio")}
        solver = auto_solver(loss, engine.kind, Penalty.from_options(engine.shape, **asked).active)
    spec = solver_spec(solver, loss, engine.kind)
    solver = spec.name
    max_iter = spec.max_iter if max_iter is None else check_positive_int(max_iter, "max_iter")
    tol = check_nonneg_float(tol, "tol")
    time_limit = check_nonneg_float(time_limit, "time_limit", allow_none=True)
    n_runs = check_positive_int(n_runs, "n_runs")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable: callback(state) -> bool")
    if track is True:
        track = Tracker()
    elif isinstance(track, (list, tuple)):
        track = Tracker(track)
    elif track is not False and track is not None and not isinstance(track, Tracker):
        raise TypeError("track must be True/False, a list of quantity names, or a diagnostics.Tracker")

    fingerprint = {"shape": list(X.shape), "rank": rank, "solver": solver, "loss": loss, "beta": beta_value,
                   "dtype": str(engine.dtype)}
    resumed = None
    if checkpoint is not None or resume is not None:
        if n_runs > 1:
            raise ValueError("checkpoint/resume follow one run; use n_runs=1")
        if track:
            raise ValueError("track= cannot be combined with checkpoint/resume")
        checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    if checkpoint is not None:
        _checkpoint.check_target(checkpoint)     # a missing or read-only folder fails now, not at the first save
    if resume is not None:
        resumed = _checkpoint.load(resume)
        _checkpoint.check_fingerprint(resumed["fingerprint"], fingerprint, resume)
        resumed = _to_engine_arrays(resumed, engine)
    ckpt = None if checkpoint is None else {"path": checkpoint, "every": checkpoint_every,
                                            "fingerprint": fingerprint}

    if isinstance(init, str):
        init = spec.default_init if init == "auto" else init
        init = choose(init, INITS, "init")
        given = None
        if n_runs > 1 and init in DETERMINISTIC_INITS:
            raise ValueError(f"n_runs={n_runs} needs a random init, but {init!r} is deterministic; "
                             "use init='random' or 'nndsvdar'")
        init_name = init
    else:
        given = check_factors(init, X.shape, rank, engine.dtype)
        init_name = "given"
        if n_runs > 1:
            raise ValueError(f"n_runs={n_runs} needs a random init; (W0, H0) gives every run the same start")

    solver_obj = spec.cls(engine, loss, beta_value, **solver_options)  # fails early on bad options
    seeds = np.random.SeedSequence(seed).spawn(n_runs)
    runs, best, interrupted = [], None, False
    started = time.perf_counter()
    for r, child in enumerate(seeds):
        rng = np.random.default_rng(child)
        if resumed is not None:
            W0 = Ht0 = None               # the driver takes the iterates from the checkpoint
        elif given is not None:
            W0, Ht0 = given[0], np.ascontiguousarray(given[1].T)
        else:
            W0, Ht0 = INITS[init_name](engine, rank, rng)
        if W0 is not None:            # NumPy factors → the engine's arrays (a torch tensor on X's device)
            W0, Ht0 = engine.ops.asarray(W0, engine.X), engine.ops.asarray(Ht0, engine.X)
        if r > 0:
            solver_obj = spec.cls(engine, loss, beta_value, **solver_options)
        solver_obj.rng = rng          # stochastic solvers (sgd) draw from the run's stream
        label = f"{solver} run {r + 1}/{n_runs}" if n_runs > 1 else solver
        out = run(solver_obj, W0, Ht0, max_iter=max_iter, tol=tol, time_limit=time_limit,
                  callback=callback, monotone=spec.monotone and getattr(solver_obj, "monotone", True), progress=verbose, label=label,
                  tracker=(track if r == 0 else track.fresh()) if track else None,
                  checkpoint=ckpt, resume=resumed,
                  objective_every=(solver_obj.objective_every if objective_every is None
                                   else check_positive_int(objective_every, "objective_every")))
        runs.append({"run": r, "seed": int(child.generate_state(1)[0]), "loss": out.objective,
                     "n_iter": out.n_iter, "stop_reason": out.stop_reason, "seconds": out.seconds})
        if best is None or out.objective < best.objective:
            best = out
        if out.stop_reason == "interrupted":
            interrupted = True
            break

    W, H = best.W, engine.ops.contiguous(best.Ht.T)
    rel = relative_error(engine, best.W, best.Ht)
    options = {"solver": solver, "loss": loss, "beta": beta_value, "init": init_name, "max_iter": max_iter,
               "tol": tol, "seed": seed, "n_runs": n_runs, "time_limit": time_limit,
               "dtype": str(engine.dtype), "engine": engine.kind, **solver_options}
    if engine.kind == "masked":
        options["n_missing"] = engine.shape[0] * engine.shape[1] - engine.n_observed
    if interrupted and n_runs > 1:
        warnings.warn(f"interrupted after {len(runs)} of {n_runs} runs; returning the best so far",
                      RuntimeWarning, stacklevel=2)
    return Factorization(W=W, H=H, loss=best.objective, relative_error=rel, n_iter=best.n_iter,
                         converged=best.converged, stop_reason="interrupted" if interrupted else best.stop_reason,
                         history=best.history, options=options, runs=runs,
                         seconds=time.perf_counter() - started, row_names=row_names, col_names=col_names,
                         monotonicity=best.monotonicity)


def _to_engine_arrays(resumed, engine):
    """A loaded checkpoint's factors (NumPy) as the engine's arrays, aliases kept as aliases."""
    moved = {}
    def move(A):
        if id(A) not in moved:
            moved[id(A)] = engine.ops.asarray(A, engine.X)
        return moved[id(A)]
    obj, best_W, best_Ht, it = resumed["best"]
    return {**resumed, "W": move(resumed["W"]), "Ht": move(resumed["Ht"]),
            "best": (obj, move(best_W), move(best_Ht), it)}


def relative_error(engine, W, Ht) -> float:
    """‖X − W H‖_F / ‖X‖_F, exact for dense data."""
    sq = 2.0 * engine.frobenius_exact(W, Ht)
    return float(np.sqrt(max(sq, 0.0) / engine.sqnorm))
