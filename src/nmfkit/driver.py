"""The iteration loop of every fit (a projection onto a fixed W, nmfkit.project, needs none of its
machinery and runs its own short multiplicative loop).

`run(solver, W, Ht, ...)` calls `solver.step` until a stopping rule fires:
  max_iter     the iteration cap;
  tol          relative objective decrease, averaged over the last few
               iterations, below `tol` (tol=0 disables it: exactly max_iter
               iterations run);
  time_limit   wall-clock seconds;
  callback     callback(state) returning True;
  target       the solver sets `done` (its own target, e.g. sgd's target_error);
  interrupted  Ctrl-C: the best factorization so far is returned with a
               warning instead of losing the work.
History records (iteration, seconds, objective) from iteration 0 (the start); a `tracker`
(diagnostics.Tracker) adds its columns, and its own time is left out of `seconds`.  For a monotone
solver every objective increase beyond rounding is listed in `monotonicity` and warned about.

Where the objective costs a pass of its own (KL and β losses: a logarithm per entry), the
driver asks for it only every `objective_every` iterations (`solver.want_objective`), as
scikit-learn does for its MU solver; history then holds those iterations, the first and
the last, and `tol` compares objectives that many iterations apart.  A solver whose
objective falls out of its products anyway reports it every iteration.
"""
from __future__ import annotations

import bisect
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import checkpoint as _checkpoint
from .diagnostics import objective_increases
from .progress import Progress

WINDOW = 5   # iterations over which the relative decrease is averaged


@dataclass
class State:
    """What a callback sees after each iteration (`objective`: the latest one evaluated,
    which for KL/β losses may be up to `objective_every` − 1 iterations old)."""
    iteration: int
    W: np.ndarray
    Ht: np.ndarray
    objective: float
    seconds: float
    history: dict = field(repr=False)

    @property
    def H(self):
        return self.Ht.T


@dataclass
class RunOutput:
    W: np.ndarray
    Ht: np.ndarray
    objective: float
    n_iter: int
    converged: bool
    stop_reason: str
    history: dict
    seconds: float
    monotonicity: list = field(default_factory=list)


def relative_decrease(objectives, iterations=None, window=WINDOW) -> float:
    """Mean relative objective decrease per iteration over the last `window` iterations
    (or since the previous recorded objective, if that is further back)."""
    t = len(objectives) - 1
    if iterations is None:
        w = min(window, t)
        span = w
    else:
        w = 1
        while w < t and iterations[t] - iterations[t - w] < window:
            w += 1
        span = iterations[t] - iterations[t - w]
    old, new = objectives[t - w], objectives[t]
    return (old - new) / (span * max(abs(old), np.finfo(float).tiny))


def _start(solver, W, Ht, resume):
    """(W, Ht, objective, history, best, first iteration, seconds already spent) of a fresh start from
    (W, Ht), prepared by the solver, or of a resume from a loaded checkpoint."""
    if resume is None:
        W, Ht = solver.prepare(W, Ht)
        obj = float(solver.objective(W, Ht))
        hist = {"iteration": [0], "seconds": [0.0], "objective": [obj]}
        return W, Ht, obj, hist, (obj, W, Ht, 0), 1, 0.0
    solver.prepare(resume["W"], resume["Ht"])    # set-up only: the saved iterates are prepared already
    solver.set_state(resume["solver_state"])
    if resume["rng_state"] is not None and solver.rng is not None:
        solver.rng.bit_generator.state = resume["rng_state"]
    hist = resume["history"]
    return (resume["W"], resume["Ht"], hist["objective"][-1], hist, resume["best"], resume["iteration"] + 1,
            resume["seconds"])


def _audit_monotonicity(solver, hist, label):
    """The iterations where a monotone solver's objective rose beyond rounding, warned about once."""
    increases = objective_increases(hist["objective"], scale=0.5 * solver.engine.sqnorm, dtype=solver.engine.dtype)
    if increases:
        it_max, up_max = max(increases, key=lambda p: p[1])
        warnings.warn(f"{label}: the objective increased at {len(increases)} iteration(s) although this "
                      f"solver is monotone; largest +{up_max:.3g} at iteration {it_max} "
                      "(listed in Factorization.monotonicity)", RuntimeWarning, stacklevel=4)
    return increases


def run(solver, W, Ht, *, max_iter, tol, time_limit=None, callback=None, monotone=True,
        progress=False, label="nmf", tracker=None, checkpoint=None, resume=None,
        objective_every=1) -> RunOutput:
    """Iterate `solver` from (W, Ht).  `checkpoint` = dict(path, every, fingerprint) writes the
    state every `every` iterations (and on Ctrl-C); `resume` = a loaded checkpoint to continue;
    `objective_every` = how often to ask a solver for an objective that costs a pass over X."""
    start = time.perf_counter()
    every = 1 if tracker is not None else objective_every
    W, Ht, obj, hist, best, first, offset = _start(solver, W, Ht, resume)
    tracked = -offset                 # tracker seconds are left out of the history's (and earlier runs' added)
    if tracker is not None:
        tracker.start(solver, W, Ht, obj)
        tracked = time.perf_counter() - start - offset
    last = (obj, W, Ht, first - 1)
    stop_reason, converged, it = "max_iter", False, first - 1

    def save_checkpoint():
        rows = min(len(v) for v in hist.values())   # Ctrl-C may cut an append short
        n = bisect.bisect_right(hist["iteration"][:rows], last[3])   # complete rows up to `last`
        rng = solver.rng
        _checkpoint.save(checkpoint["path"], fingerprint=checkpoint["fingerprint"], iteration=last[3],
                         seconds=hist["seconds"][n - 1], W=last[1], Ht=last[2], best=best,
                         history={k: v[:n] for k, v in hist.items()}, solver_state=solver.get_state(),
                         rng_state=rng.bit_generator.state if rng is not None else None)

    bar = Progress(max_iter, label, "iterations", enabled=progress)
    try:
        for it in range(first, max_iter + 1):
            W_prev, Ht_prev = W, Ht
            solver.want_objective = (it % every == 0 or it == max_iter
                                     or (checkpoint is not None and it % checkpoint["every"] == 0)
                                     or (time_limit is not None
                                         and time.perf_counter() - start - tracked >= time_limit))
            W, Ht, obj = solver.step(W, Ht)
            stop_now = False
            if obj is None:                         # not evaluated this iteration
                if callback is None or not callback(State(it, W, Ht, last[0], time.perf_counter() - start
                                                          - tracked, hist)):
                    continue
                obj, stop_now = solver.objective(W, Ht), True   # record the iterate the callback stopped at
            obj = float(obj)
            if tracker is not None:
                t0 = time.perf_counter()
                tracker.record(W_prev, Ht_prev, W, Ht, solver.cache, solver.engine, obj)
                tracked += time.perf_counter() - t0
            now = time.perf_counter() - start - tracked
            hist["iteration"].append(it)
            hist["seconds"].append(now)
            hist["objective"].append(obj)
            last = (obj, W, Ht, it)
            if not np.isfinite(obj):
                stop_reason = "diverged"
                warnings.warn(f"{label}: objective became {obj} at iteration {it}; "
                              "returning the best iterate so far", RuntimeWarning, stacklevel=3)
                break
            if obj <= best[0] or monotone or solver.returns_last_iterate:
                best = last
            bar.update(it, objective=obj)
            if solver.done:      # the solver's own target was met (e.g. sgd's target_error)
                stop_reason, converged = "target", True
                break
            if tol > 0 and (obj == 0.0 or abs(relative_decrease(hist["objective"], hist["iteration"])) < tol):
                stop_reason, converged = "converged", True
                break
            if time_limit is not None and now >= time_limit:
                stop_reason = "time_limit"
                break
            if checkpoint is not None and it % checkpoint["every"] == 0:
                save_checkpoint()
            if stop_now or (callback is not None and callback(State(it, W, Ht, obj, now, hist))):
                stop_reason = "callback"
                break
    except (KeyboardInterrupt, SystemError) as exc:
        # Ctrl-C inside a Numba parallel region surfaces as SystemError with the interrupt as its context
        if not isinstance(exc, KeyboardInterrupt) and not isinstance(exc.__cause__ or exc.__context__,
                                                                       KeyboardInterrupt):
            raise
        stop_reason = "interrupted"
        if checkpoint is not None:
            save_checkpoint()
        warnings.warn(f"{label}: interrupted at iteration {it}; returning the best factorization so far "
                      f"(iteration {best[3]}, objective {best[0]:.6g})", RuntimeWarning, stacklevel=3)
    finally:
        bar.update(last[3], objective=last[0])
        bar.close()
    if tracker is not None:
        tracker.finish(last[1], last[2])
        hist.update(tracker.columns())
    n = min(len(v) for v in hist.values())
    hist = {k: np.asarray(v[:n], dtype=np.int64 if k == "iteration" else np.float64) for k, v in hist.items()}
    increases = _audit_monotonicity(solver, hist, label) if monotone else []
    obj, W, Ht, _ = best
    return RunOutput(W, Ht, obj, last[3], converged, stop_reason, hist, time.perf_counter() - start,
                     increases)
