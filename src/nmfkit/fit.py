"""The front door: validate → engine → resolve names → init → driver → Factorization.

    nmfkit.fit(X, rank, solver="auto", loss="frobenius", init="auto", ...)

`n_runs > 1` runs independent fits from seeds spawned from `seed`
(`numpy.random.SeedSequence(seed).spawn(n_runs)`) and keeps the lowest loss.
"""
from __future__ import annotations

import hashlib
import math
import numbers
import time
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import checkpoint as _checkpoint
from . import init as _init  # noqa: F401  (fills the init registry)
from . import solvers  # noqa: F401  (fills the solver registry)
from ._threads import check_threads, threads
from .diagnostics import Tracker
from .driver import run
from .engines import is_dask, is_torch, make_engine
from .penalties import FACTOR_OPTIONS, Penalty
from .precision import PRECISIONS, float32_engine, run_mixed
from .registry import DETERMINISTIC_INITS, INITS, SOLVERS, auto_solver, resolve_loss, solver_spec
from .result import Factorization
from .validation import (
    check_factors,
    check_fit_memory,
    check_matrix,
    check_nonneg_float,
    check_positive_int,
    check_rank,
    check_seed,
    choose,
    spawn_runs,
)

LOSS_EXPONENT = {"frobenius": 2.0, "kl": 1.0, "is": 0.0}   # D(sX‖sY) = s^p D(X‖Y); β-divergences: p = β
# Solver options measured in X's units: they cannot follow an internal rescaling of X.
UNIT_OPTIONS = ("alpha_W", "alpha_H", "alpha", "l2", "target_error", "step", "learning_rate", "l21_W", "l21_H",
                "ortho_W", "ortho_H", "graph_alpha")
BASE_OPTIONS = {"alpha_W": 0.0, "alpha_H": "same", "l1_ratio": 0.0}   # Solver.__init__'s defaults


def _labels(X):
    """Row and column labels of a pandas DataFrame (None otherwise)."""
    if hasattr(X, "index") and hasattr(X, "columns"):
        return [str(v) for v in X.index], [str(v) for v in X.columns]
    return None, None


def fit(X, rank, *, solver="auto", loss=None, beta=None, init="auto", max_iter=None,
        tol=1e-4, seed=None, n_runs=1, callback=None, time_limit=None, verbose=False, track=False,
        mask=None, missing="error", checkpoint=None, checkpoint_every=50, resume=None,
        objective_every=None, precision="native", n_threads=None, stream=False, chunk=None,
        **solver_options) -> Factorization:
    """Factorize a non-negative matrix X (m×n) as W H with W (m×k), H (k×n) ≥ 0.

    Parameters
    ----------
    X : array-like or SciPy sparse matrix, non-negative. Integers become float64;
        float32 stays float32. Sparse input is never densified.
    rank : number of components k, 1 ≤ k ≤ min(m, n), or "auto": the rank is chosen on the held-out
        error curve of a cross-validation search within `rank_range` (see `nmfkit.rank.auto`), then
        fitted on all of X; `options["rank_search"]` records the ranks evaluated.
    solver : "auto", or a registered name ("mu", "lee", "brunet", …; see
        `nmfkit.solvers_table()`).
    loss : "frobenius" (½‖X − WH‖²), "kl" (generalised Kullback–Leibler) or "is";
        `beta=` selects a general β-divergence where the solver supports it.  Default:
        "frobenius", or the solver's own loss if it has no Frobenius form ("brunet", "nsnmf").
    init : "auto", "random", "nndsvd", "nndsvda", "nndsvdar", or a pair (W0, H0).
    max_iter : iteration cap (default: the solver's).
    tol : stop when the relative objective decrease per iteration, averaged over
        the last 5 iterations, falls below tol; 0 runs exactly max_iter iterations.
    seed : None, a non-negative int, or a numpy RandomState / Generator (one integer is drawn from
        it, as scikit-learn does; `options["seed"]` records it); all randomness derives from it.
    n_runs : independent runs (random inits); the best is kept, all are summarised.
    callback : callable(state) -> bool, called after each iteration; True stops.
    time_limit : seconds per run.
    verbose : show progress: an updating line in a terminal, an updating display in Jupyter, a
        plain line every 10 s in a log file or pipe (`nmfkit.progress`).
    track : True records the Lee–Seung convergence quantities per iteration in `history`
        (see `nmfkit.diagnostics`); a list of quantity names / callables, or a
        `diagnostics.Tracker`, selects them.
    mask : boolean m×n array, True = observed: the loss counts observed entries
        only (solvers "mu", "pgd", "sgd"; the data is then held densely).
    missing : "error" (NaN in X is refused) or "mask" (NaN entries are missing).  The
        masked entries of a `numpy.ma.MaskedArray` and the NA of a DataFrame's nullable
        columns count as missing too: refused with "error", left out of the loss with "mask".
    checkpoint : path of a checkpoint file written every `checkpoint_every`
        iterations (and on Ctrl-C), atomically; see `nmfkit.checkpoint`.
    resume : path of a checkpoint to continue from (same X, rank, solver, loss and solver
        options: a digest of X's values and the options are compared, and a mismatch is refused);
        the iteration count continues, so `max_iter` is the total.
    objective_every : evaluate a KL/β objective (a logarithm per entry: as costly as
        the rest of an iteration) only every this many iterations; `history` and
        `tol` then use those iterations.  Default: the solver's (10 for KL
        multiplicative updates, 1 where the objective comes free); `track=True`
        evaluates every iteration.
    solver_options : passed to the solver (see its documentation).
    n_threads : threads for the compiled kernels and BLAS during this fit (None: as set, by default
        every core); results do not depend on it.
    precision : "native" (iterate in X's dtype) or "mixed" (float64 X: iterate in float32 until float32
        cannot resolve the progress, then finish in float64 from there; see `nmfkit.precision`).
    stream : False (X in memory), True or "exact" (X read from a file or chunk reader in chunks of rows
        at every pass: the in-memory iterates up to summation order), or "online" (one pass per
        iteration, Mairal et al. 2010); X is then a path (.npy, .mtx, .h5ad, .zarr, .parquet, a 10x
        folder) or an array or reader with row slicing.  See `nmfkit.stream`.
    chunk : rows per chunk of a streamed fit (implies stream=True).

    Data whose largest entry lies above 1/eps² or below eps² of its dtype (float64: 2e31 and
    5e-32; float32: 7e13 and 1.4e-14), where ‖X‖², the products or the objective would overflow
    or underflow, is fitted as X / 2^e, an exact division; W and H are returned times 2^(e/2)
    and the loss, history and callback objective in X's units (a loss beyond the float64 range
    is reported as inf or 0 with a warning).  Options in X's units (alpha_W, alpha_H, l2,
    target_error, a numeric step or learning_rate) are then refused; `track` columns other
    than the objective describe X / 2^e.  A given start (W0, H0) whose product is zero is
    refused: it is a stationary point of every solver.
    """
    # -- automatic rank (nmfkit.rank.auto): a search on the held-out error curve, then the fit at its rank --
    if isinstance(rank, str) and rank.lower() == "auto":
        from .rank.auto import fit_auto_rank
        return fit_auto_rank(X, rank, solver=solver, loss=loss, beta=beta, init=init, max_iter=max_iter, tol=tol,
                             seed=seed, n_runs=n_runs, callback=callback, time_limit=time_limit, verbose=verbose,
                             track=track, mask=mask, missing=missing, checkpoint=checkpoint,
                             checkpoint_every=checkpoint_every, resume=resume, objective_every=objective_every,
                             precision=precision, n_threads=n_threads, stream=stream, chunk=chunk, **solver_options)
    # -- end of the automatic-rank dispatch --
    precision = choose(precision, PRECISIONS, "precision")
    if precision == "mixed" and ((stream is not False and stream is not None) or chunk is not None):
        raise ValueError("precision='mixed' is for in-memory data; a streamed fit iterates in X's dtype")
    # -- streaming (nmfkit.stream): X read in chunks of rows; everything below is the in-memory fit --
    if (stream is not False and stream is not None) or chunk is not None:
        from .stream import fit_stream
        with threads(check_threads(n_threads)):
            return fit_stream(X, rank, stream=True if stream is False or stream is None else stream, chunk=chunk,
                              solver=solver, loss=loss, beta=beta, init=init, max_iter=max_iter, tol=tol,
                              seed=seed, n_runs=n_runs, callback=callback, time_limit=time_limit, verbose=verbose,
                              track=track, mask=mask, missing=missing, checkpoint=checkpoint,
                              checkpoint_every=checkpoint_every, resume=resume, objective_every=objective_every,
                              **solver_options)
    # -- end of the streaming dispatch --
    row_names, col_names = _labels(X)
    plan = _plan(X, rank, solver=solver, loss=loss, beta=beta, init=init, max_iter=max_iter, tol=tol, seed=seed,
                 n_runs=n_runs, callback=callback, time_limit=time_limit, verbose=verbose, track=track, mask=mask,
                 missing=missing, checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
                 objective_every=objective_every, precision=precision, n_threads=n_threads,
                 solver_options=solver_options)
    started = time.perf_counter()
    with threads(plan.n_threads):
        best, best_run, runs, last_solver = _run_many(plan)
    return _assemble(plan, best, best_run, runs, last_solver, time.perf_counter() - started, row_names, col_names)


@dataclass
class _Plan:
    """Everything a fit resolved before its first iteration."""
    engine: object
    spec: object
    loss: str
    beta: float
    scale_log2: int
    rank: int
    seed: int | None
    n_runs: int
    max_iter: int
    tol: float
    time_limit: float | None
    callback: object
    verbose: bool
    track: object
    checkpoint: dict | None
    resumed: dict | None
    init_name: str
    given: tuple | None
    objective_every: int | None
    solver_options: dict
    first_solver: object
    engine32: object = None       # precision="mixed": the float32 engine of phase 1
    first_solver32: object = None   # and the first run's phase-1 solver, built while checking the options
    n_threads: int | None = None

    def new_solver(self, engine=None):
        return self.spec.cls(engine or self.engine, self.loss, self.beta, **self.solver_options)


def _plan(X, rank, *, solver, loss, beta, init, max_iter, tol, seed, n_runs, callback, time_limit, verbose, track,
          mask, missing, checkpoint, checkpoint_every, resume, objective_every, precision, n_threads,
          solver_options) -> _Plan:
    """Stage 1, resolve: every check and choice a fit makes before its first iteration (data, engine,
    solver, options, checkpoint, starting factors); a bad argument fails here, by name."""
    missing = choose(missing, ("error", "mask"), "missing")
    X = check_matrix(X, "X", allow_nan=missing == "mask" or mask is not None)
    rank = check_rank(rank, X.shape)
    seed = check_seed(seed)
    with np.errstate(over="ignore", under="ignore"):     # ‖X‖² of extreme data: handled by the rescaling
        engine = make_engine(X, mask=mask, nan_is_missing=missing == "mask")
    scale_log2 = data_scale_log2(X, engine)
    if scale_log2:                    # fit X / 2^e: X's magnitude would overflow or underflow the products
        engine = make_engine(times_power_of_two(X, -scale_log2), mask=mask, nan_is_missing=missing == "mask")
    check_fit_memory(engine.shape, rank, engine.dtype, dense="dense_data" in engine.capabilities)
    spec, loss, beta_value = _choose_solver(solver, loss, beta, engine, solver_options)
    if scale_log2:
        _check_unit_options(solver_options, scale_log2, engine.dtype)
        if beta_value is None:        # a likelihood: its value is not a power of X's scale
            raise ValueError(f"X's entries are too {'large' if scale_log2 > 0 else 'small'} for {engine.dtype} "
                             f"arithmetic, and loss={loss!r} is a likelihood that cannot be fitted rescaled; "
                             "divide X by a constant yourself (the model's dispersion then describes X/c)")
    max_iter = spec.max_iter if max_iter is None else check_positive_int(max_iter, "max_iter")
    tol = check_nonneg_float(tol, "tol")
    time_limit = check_nonneg_float(time_limit, "time_limit", allow_none=True)
    n_runs = check_positive_int(n_runs, "n_runs")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable: callback(state) -> bool")
    if objective_every is not None:
        objective_every = check_positive_int(objective_every, "objective_every")
    track = _as_tracker(track)
    n_threads = check_threads(n_threads)
    first_solver = spec.cls(engine, loss, beta_value, **solver_options)  # fails early on bad options
    ckpt, resumed = _checkpointing(checkpoint, resume, checkpoint_every, n_runs, track, X, mask, rank, spec,
                                   loss, beta_value, engine, solver_options)
    init_name, given = _starting_factors(init, spec, n_runs, X.shape, rank, engine, scale_log2)
    engine32 = first_solver32 = None
    if precision == "mixed":
        engine32 = _mixed_precision_engine(X, engine, scale_log2, track, ckpt or resumed, mask, missing)
        first_solver32 = spec.cls(engine32, loss, beta_value, **solver_options)
    return _Plan(engine, spec, loss, beta_value, scale_log2, rank, seed, n_runs, max_iter, tol, time_limit,
                 callback, verbose, track, ckpt, resumed, init_name, given, objective_every, dict(solver_options),
                 first_solver, engine32, first_solver32, n_threads)


def _mixed_precision_engine(X, engine, scale_log2, track, checkpointing, mask, missing):
    """The float32 engine of a precision="mixed" fit, after the checks that it applies."""
    if engine.dtype != np.float64:
        raise ValueError(f"precision='mixed' iterates float64 data in float32 first; X is {engine.dtype} already")
    if "numpy_data" not in engine.capabilities:
        raise ValueError(f"precision='mixed' needs X as a NumPy array or SciPy sparse matrix; got {engine.kind} data")
    if track:
        raise ValueError("track= cannot be combined with precision='mixed' (the two phases track different "
                         "arrays); use precision='native'")
    if checkpointing:
        raise ValueError("checkpoint/resume cannot be combined with precision='mixed'; use precision='native'")
    engine32 = float32_engine(X, mask=mask, nan_is_missing=missing == "mask")
    if scale_log2 or data_scale_log2(X, engine32):
        raise ValueError("precision='mixed': X's entries lie outside float32's safe range [1.4e-14, 7e13]; "
                         "use precision='native'")
    return engine32


def _run_many(plan: _Plan):
    """Stage 2, run: `n_runs` driver runs, each from its own start and random stream (spawned from the
    seed, `spawn_runs`); returns (the best run's output, its summary row, one summary row per run, the
    best run's solver).
    A Ctrl-C ends the loop after the run it interrupted."""
    spec, track = plan.spec, plan.track
    runs, best, solver = [], None, plan.first_solver
    for r, child in enumerate(spawn_runs(plan.seed, plan.n_runs)):
        rng = np.random.default_rng(child)
        W0, Ht0 = _start_of_run(plan, rng)
        if r > 0:
            solver = plan.new_solver()
        solver.rng = rng          # stochastic solvers (sgd) draw from the run's stream
        solver.given_start = plan.given is not None
        label = f"{spec.name} run {r + 1}/{plan.n_runs}" if plan.n_runs > 1 else spec.name
        settings = dict(max_iter=plan.max_iter, tol=plan.tol, time_limit=plan.time_limit,
                        callback=_unscaled_callback(plan.callback, plan.scale_log2, plan.loss, plan.beta),
                        monotone=spec.monotone and solver.monotone, progress=plan.verbose, label=label,
                        objective_every=(solver.objective_every if plan.objective_every is None
                                         else plan.objective_every))
        if plan.engine32 is not None:
            solver32 = plan.first_solver32 if r == 0 else plan.new_solver(plan.engine32)
            solver32.rng, solver32.given_start = rng, solver.given_start
            out, n32 = run_mixed(solver32, solver, W0, Ht0, **settings)
        else:
            out = run(solver, W0, Ht0, tracker=(track if r == 0 else track.fresh()) if track else None,
                      checkpoint=plan.checkpoint, resume=plan.resumed, **settings)
        runs.append({"run": r, "seed": int(child.generate_state(1)[0]),
                     "loss": in_data_units(out.objective, plan.scale_log2, plan.loss, plan.beta),
                     "n_iter": out.n_iter, "stop_reason": out.stop_reason, "seconds": out.seconds})
        if plan.engine32 is not None:
            runs[-1]["float32_iterations"] = n32
        if best is None or out.objective < best.objective:
            best, best_run, best_solver = out, runs[-1], solver
        if out.stop_reason == "interrupted":
            if plan.n_runs > 1:
                warnings.warn(f"interrupted after {len(runs)} of {plan.n_runs} runs; returning the best so far",
                              RuntimeWarning, stacklevel=3)
            break
    return best, best_run, runs, best_solver


def _start_of_run(plan: _Plan, rng):
    """(W0, Ht0) of one run as the engine's arrays: the given start, the init drawn from the run's
    stream, or (None, None) when the driver takes the iterates from a checkpoint."""
    if plan.resumed is not None:
        return None, None
    if plan.given is not None:
        W0, Ht0 = plan.given[0], np.ascontiguousarray(plan.given[1].T)
    else:
        W0, Ht0 = INITS[plan.init_name](plan.engine, plan.rank, rng)
    ops, X = plan.engine.ops, plan.engine.X       # NumPy factors → the engine's arrays (torch: on X's device)
    return ops.asarray(W0, X), ops.asarray(Ht0, X)


def _assemble(plan: _Plan, best, best_run, runs, solver, seconds, row_names, col_names) -> Factorization:
    """Stage 3, assemble: the best run as a Factorization in X's units, with its options and warnings."""
    engine, scale_log2, loss, beta_value = plan.engine, plan.scale_log2, plan.loss, plan.beta
    W, H = best.W, engine.ops.contiguous(best.Ht.T)
    rel = relative_error(engine, best.W, best.Ht)      # scale-invariant
    loss_value, history = best.objective, best.history
    if scale_log2:
        W, H = times_power_of_two(W, scale_log2 // 2), times_power_of_two(H, scale_log2 // 2)
        loss_value = in_data_units(best.objective, scale_log2, loss, beta_value)
        history = {**history, "objective": np.array([in_data_units(v, scale_log2, loss, beta_value)
                                                     for v in history["objective"]])}
        if (math.isinf(loss_value) or loss_value == 0) and math.isfinite(best.objective) and best.objective > 0:
            warnings.warn(f"the loss in X's units is {'above' if loss_value else 'below'} the float64 range: X was "
                          f"fitted as X/2^{scale_log2}, where the loss is {best.objective:.6g}; Factorization.loss "
                          f"is reported as {loss_value}", RuntimeWarning, stacklevel=3)
    dead = set(engine.ops.to_numpy(engine.ops.zero_columns(best.W)).tolist()) | set(
        engine.ops.to_numpy(engine.ops.zero_columns(best.Ht)).tolist())
    if len(dead) == plan.rank and not solver.penalised:     # penalised: W H = 0 can be the optimum
        warnings.warn(f"{plan.spec.name}: the result is the zero factorization (W H = 0), a stationary point where "
                      "the solver stopped; try another init, step or solver", RuntimeWarning, stacklevel=3)
    options = {"solver": plan.spec.name, "loss": loss, "beta": beta_value, "init": plan.init_name,
               "max_iter": plan.max_iter, "tol": plan.tol, "seed": plan.seed, "n_runs": plan.n_runs,
               "time_limit": plan.time_limit, "dtype": str(engine.dtype), "engine": engine.kind,
               **{name: _option_record(value) for name, value in plan.solver_options.items()}}
    options.update(solver.result_options())
    if scale_log2:
        options["scale_log2"] = scale_log2
    if plan.engine32 is not None:
        options["precision"], options["float32_iterations"] = "mixed", best_run["float32_iterations"]
    if "mask" in engine.capabilities:
        options["n_missing"] = engine.shape[0] * engine.shape[1] - engine.n_observed
    interrupted = any(r["stop_reason"] == "interrupted" for r in runs)
    return Factorization(W=W, H=H, loss=loss_value, relative_error=rel, n_iter=best.n_iter,
                         converged=best.converged, stop_reason="interrupted" if interrupted else best.stop_reason,
                         history=history, options=options, runs=runs, seconds=seconds,
                         row_names=row_names, col_names=col_names, monotonicity=best.monotonicity)


def _option_record(value):
    """A solver option as the result records it: a matrix option (a graph's adjacency) by its shape and
    size rather than its entries, so options stay small and JSON-ready; everything else as given."""
    if sp.issparse(value):
        return f"{value.shape[0]}×{value.shape[1]} sparse matrix, {value.nnz} stored entries"
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 16 else f"{'×'.join(map(str, value.shape))} array"
    return value


def _choose_solver(solver, loss, beta, engine, solver_options):
    """(spec, loss, β) of the solver a fit runs: `solver="auto"` picks the fastest for the loss, data kind
    and penalties; `loss=None` is Frobenius, or the solver's own loss if it has no Frobenius form."""
    if loss is None:
        own = ({name.lower(): spec for name, spec in SOLVERS.items()}.get(solver.lower())
               if isinstance(solver, str) else None)
        loss = own.losses[0] if own is not None and beta is None and "frobenius" not in own.losses else "frobenius"
    loss, beta_value = resolve_loss(loss, beta)
    if solver == "auto" and any(name in solver_options for name in FACTOR_OPTIONS):
        solver = "hals"          # the per-factor penalties and constraints are hals options
    if solver == "auto":
        asked = {k: v for k, v in solver_options.items() if k in ("alpha_W", "alpha_H", "l1_ratio")}
        solver = auto_solver(loss, engine.kind, Penalty.from_options(engine.shape, **asked).active)
    return solver_spec(solver, loss, engine.kind), loss, beta_value


def _as_tracker(track):
    """`track=` as a diagnostics.Tracker, or None/False for no tracking."""
    if track is True:
        return Tracker()
    if isinstance(track, (list, tuple)):
        return Tracker(track)
    if track is not False and track is not None and not isinstance(track, Tracker):
        raise TypeError("track must be True/False, a list of quantity names, or a diagnostics.Tracker")
    return track


def _checkpointing(checkpoint, resume, checkpoint_every, n_runs, track, X, mask, rank, spec, loss, beta_value,
                   engine, solver_options):
    """(checkpoint settings for the driver or None, the loaded checkpoint to resume or None), every
    check made before the first iteration: one run, no tracking, a writable target, a matching fingerprint."""
    if checkpoint is None and resume is None:
        return None, None
    fingerprint = {"shape": list(X.shape), "rank": rank, "solver": spec.name, "loss": loss, "beta": beta_value,
                   "dtype": str(engine.dtype), "data": data_digest(X, mask),
                   "options": effective_options(spec, solver_options)}
    if n_runs > 1:
        raise ValueError("checkpoint/resume follow one run; use n_runs=1")
    if track:
        raise ValueError("track= cannot be combined with checkpoint/resume")
    checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    if checkpoint is not None:
        _checkpoint.check_target(checkpoint)     # a missing or read-only folder fails now, not at the first save
    resumed = None
    if resume is not None:
        resumed = _checkpoint.load(resume)
        _checkpoint.check_fingerprint(resumed["fingerprint"], fingerprint, resume)
        resumed = _to_engine_arrays(resumed, engine)
    ckpt = None if checkpoint is None else {"path": checkpoint, "every": checkpoint_every,
                                            "fingerprint": fingerprint}
    return ckpt, resumed


def _starting_factors(init, spec, n_runs, shape, rank, engine, scale_log2):
    """(init name, given (W0, H0) in the fitted units or None) for `init=`: a registered name ("auto": the
    solver's default) or the user's (W0, H0)."""
    if isinstance(init, str):
        init = spec.default_init if init == "auto" else init
        init = choose(init, INITS, "init")
        if n_runs > 1 and init in DETERMINISTIC_INITS:
            raise ValueError(f"n_runs={n_runs} needs a random init, but {init!r} is deterministic; "
                             "use init='random' or 'nndsvdar'")
        return init, None
    given = check_factors(init, shape, rank, engine.dtype)
    check_nonzero_start(*given)
    if scale_log2:
        half = -scale_log2 // 2
        given = times_power_of_two(given[0], half), times_power_of_two(given[1], half)
    if n_runs > 1:
        raise ValueError(f"n_runs={n_runs} needs a random init; (W0, H0) gives every run the same start")
    return "given", given


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


# -- data far outside the working dtype's comfortable range -------------------------------------------

def data_scale_log2(X, engine) -> int:
    """e ≠ 0 (even) when X must be fitted as X / 2^e: its largest entry is above 1/eps² or below eps² of
    the working dtype, where ‖X‖², the products or the objective overflow or underflow; 0 otherwise.

    NMF is scale-equivariant (X/s = (W/√s)(H/√s)), and dividing by a power of two is exact, so
    the fit of X / 2^e maps back to X's units exactly.  Data inside the range is left alone."""
    eps = float(np.finfo(engine.dtype).eps)
    lo, hi = eps * eps, 1.0 / (eps * eps)
    norm = math.sqrt(engine.sqnorm) if math.isfinite(engine.sqnorm) else math.inf
    m, n = engine.shape
    if norm <= hi and norm >= lo * math.sqrt(m * n):   # lo ≤ ‖X‖/√(mn) ≤ max ≤ ‖X‖ ≤ hi: no need to look
        return 0
    top = max_entry(X)
    if lo <= top <= hi or top == 0:
        return 0
    e = math.frexp(top)[1]
    return e - (e % 2)            # even, so √(2^e) is a power of two too


def max_entry(X) -> float:
    """The largest entry of validated X (NaN entries, i.e. missing ones, ignored)."""
    if is_torch(X):
        import torch
        values = X if X.layout == torch.strided else X.values()
        return float(values.max()) if values.numel() else 0.0
    if is_dask(X):
        import dask.array as da
        return float(da.nanmax(X).compute())
    values = X.data if sp.issparse(X) else X
    return float(np.nanmax(values)) if values.size else 0.0


def times_power_of_two(A, e: int):
    """A · 2^e as a new array of A's family and dtype (exact while the result stays normal);
    steps of at most 2^60 keep every multiplier representable in float32."""
    while e:
        step = max(-60, min(60, e))
        A = A * (2.0 ** step)
        e -= step
    return A


def in_data_units(value, scale_log2: int, loss: str, beta: float) -> float:
    """A loss of X / 2^e in X's units: times 2^(e·p), p the loss's degree of homogeneity
    (inf when that is beyond the float64 range)."""
    if not scale_log2:
        return value
    power = scale_log2 * LOSS_EXPONENT.get(loss, beta)
    whole = math.floor(power)
    try:
        return math.ldexp(float(value) * 2.0 ** (power - whole), whole)
    except OverflowError:
        return math.inf


def _unscaled_callback(callback, scale_log2, loss, beta):
    """The user's callback, shown the iterate and objective in X's units."""
    if callback is None or not scale_log2:
        return callback
    half = scale_log2 // 2

    def shown(state):
        return callback(type(state)(state.iteration, times_power_of_two(state.W, half),
                                    times_power_of_two(state.Ht, half),
                                    in_data_units(state.objective, scale_log2, loss, beta),
                                    state.seconds, state.history))
    return shown


def _check_unit_options(solver_options, scale_log2, dtype):
    """Refuse options in X's units when X is fitted rescaled (they would mean something else there)."""
    def nonzero(v):
        return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and v != 0
    for name in UNIT_OPTIONS:
        value = solver_options.get(name)
        if nonzero(value) or (isinstance(value, (tuple, list)) and any(nonzero(v) for v in value)):
            raise ValueError(f"X's entries are too {'large' if scale_log2 > 0 else 'small'} for {dtype} "
                             f"arithmetic, so nmfkit fits X / 2^{scale_log2}; {name}={value!r} is in X's units "
                             f"and cannot follow: divide X by a constant yourself and scale {name} to match")


# -- a start that cannot move -------------------------------------------------------------------------

def check_nonzero_start(W0, H0):
    """Refuse a given start whose product W0 H0 is zero: a stationary point of every solver."""
    for name, F in (("W0", W0), ("H0", H0)):
        if not np.any(F):
            raise ValueError(f"{name} is all zeros: W = H = 0 is a stationary point where every solver stays; "
                             "give a start with non-zero entries (or use init='nndsvda'/'random')")
    if not np.any(np.any(W0, axis=0) & np.any(H0, axis=1)):
        raise ValueError("the product W0 H0 is zero (each component has a zero column of W0 or a zero row "
                         "of H0): a stationary point where every solver stays; give a start with W0 H0 ≠ 0")


# -- what a checkpoint is tied to ---------------------------------------------------------------------

def data_digest(X, mask=None) -> str:
    """A BLAKE2b digest of X's values (and of `mask`), so a checkpoint resumes only on the same data.

    Dense NumPy data: its values in row-major order; SciPy sparse: the canonical CSR (sorted
    indices, duplicates summed, explicit zeros dropped; a copy), indices as int64; a torch tensor:
    its values copied to host memory; a dask array: dask's token of its task graph (the same
    source and operations give the same token; the values are not read)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(tuple(X.shape)).encode())
    if is_dask(X):
        from dask.base import tokenize
        h.update(b"dask:" + tokenize(X).encode())
    elif is_torch(X):
        import torch
        dense = X.to_dense() if X.layout != torch.strided else X
        h.update(np.ascontiguousarray(dense.detach().cpu().numpy()).tobytes())
    elif sp.issparse(X):
        C = sp.csr_matrix(X, copy=True)
        C.sum_duplicates()
        C.eliminate_zeros()
        h.update(b"csr")
        for part in (C.indptr.astype(np.int64), C.indices.astype(np.int64), C.data):
            h.update(np.ascontiguousarray(part).tobytes())
    else:
        A = np.asarray(X)
        rows = max(1, (1 << 24) // max(1, A.itemsize * (A.shape[1] if A.ndim > 1 else 1)))
        for i in range(0, A.shape[0], rows):          # blocks of ~16 MB: no full copy of X
            h.update(np.ascontiguousarray(A[i:i + rows]).tobytes())
    if mask is not None:
        h.update(b"mask")
        h.update(np.packbits(np.asarray(mask, dtype=bool)).tobytes())
    return h.hexdigest()


def effective_options(spec, solver_options) -> dict:
    """The solver options a fit runs with (defaults filled in), as JSON-ready values."""
    merged = {**BASE_OPTIONS, **spec.options, **solver_options}
    out = {}
    for key, value in sorted(merged.items()):
        if isinstance(value, (bool, np.bool_)):
            value = bool(value)
        elif isinstance(value, numbers.Integral):
            value = int(value)
        elif isinstance(value, numbers.Real):
            value = float(value)
        elif value is not None and not isinstance(value, str):
            value = repr(value)
        out[key] = value
    return out
