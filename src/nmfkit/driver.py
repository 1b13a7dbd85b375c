"""The iteration loop of every fit and of every projection onto a fixed basis (nmfkit.project).

`run(solver, W, Ht, ...)` builds a `Run` and calls `solver.step` until a stopping rule fires:
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


class Run:
    """One run of a solver, in the stages every fit goes through:

      start      a fresh start (the solver's `prepare`, objective at iteration 0) or a resume
                 from a loaded checkpoint (iterates, best, history, solver and random state);
      step       `solver.step`, asking for the objective only when it is needed;
      record     history row, best-so-far, tracker columns, progress;
      stop test  the first stopping rule that fires (diverged, target, converged, time_limit,
                 callback; max_iter when the loop ends);
      checkpoint the last recorded iterate and everything needed to continue from it;
      audit      for a monotone solver, every objective increase beyond rounding.

    `run(...)` builds one and calls `go`; the attributes hold the run's state between stages."""

    def __init__(self, solver, *, max_iter, tol, time_limit=None, callback=None, monotone=True,
                 progress=False, label="nmf", tracker=None, checkpoint=None, objective_every=1):
        self.solver, self.max_iter, self.tol, self.time_limit = solver, max_iter, tol, time_limit
        self.callback, self.monotone, self.progress, self.label = callback, monotone, progress, label
        self.tracker, self.checkpoint = tracker, checkpoint
        self.every = 1 if tracker is not None else objective_every
        self.clock0 = time.perf_counter()
        self.tracked = 0.0      # seconds spent in the tracker (and, negated, earlier runs' seconds on a resume)
        self.hist = self.best = self.last = None
        self.stop_reason, self.converged = "max_iter", False

    def seconds(self) -> float:
        """Seconds of this run so far, the tracker's own time left out."""
        return time.perf_counter() - self.clock0 - self.tracked

    def start(self, W, Ht, resume=None) -> int:
        """Set the run's first iterate (fresh or resumed); returns the first iteration to run."""
        solver = self.solver
        if resume is None:
            W, Ht = solver.prepare(W, Ht)
            obj = float(solver.objective(W, Ht))
            self.hist = {"iteration": [0], "seconds": [0.0], "objective": [obj]}
            self.best, first, offset = (obj, W, Ht, 0), 1, 0.0
        else:
            solver.prepare(resume["W"], resume["Ht"])    # set-up only: the saved iterates are prepared already
            solver.set_state(resume["solver_state"])
            if resume["rng_state"] is not None and solver.rng is not None:
                solver.rng.bit_generator.state = resume["rng_state"]
            W, Ht, self.hist, self.best = resume["W"], resume["Ht"], resume["history"], resume["best"]
            obj, first, offset = self.hist["objective"][-1], resume["iteration"] + 1, resume["seconds"]
        self.tracked = -offset
        if self.tracker is not None:
            self.tracker.start(solver, W, Ht, obj)
            self.tracked = time.perf_counter() - self.clock0 - offset
        self.last = (obj, W, Ht, first - 1)
        return first

    def wants_objective(self, it) -> bool:
        """Whether iteration `it` must evaluate the objective (a KL/β objective costs a pass over X)."""
        return (it % self.every == 0 or it == self.max_iter
                or (self.checkpoint is not None and it % self.checkpoint["every"] == 0)
                or (self.time_limit is not None and self.seconds() >= self.time_limit))

    def record(self, it, W_prev, Ht_prev, W, Ht, obj) -> float:
        """Add iteration `it` to the history and the best-so-far; returns its time stamp."""
        if self.tracker is not None:
            t0 = time.perf_counter()
            self.tracker.record(W_prev, Ht_prev, W, Ht, self.solver.cache, self.solver.engine, obj)
            self.tracked += time.perf_counter() - t0
        now = self.seconds()
        self.hist["iteration"].append(it)
        self.hist["seconds"].append(now)
        self.hist["objective"].append(obj)
        self.last = (obj, W, Ht, it)
        if np.isfinite(obj) and (obj <= self.best[0] or self.monotone or self.solver.returns_last_iterate):
            self.best = self.last
        return now

    def stop_test(self, it, obj, now) -> str | None:
        """The stopping rule that fires after iteration `it` (callbacks aside), or None."""
        if not np.isfinite(obj):
            return "diverged"
        if self.solver.done:            # the solver's own target was met (e.g. sgd's target_error)
            return "target"
        if self.tol > 0 and (obj == 0.0 or abs(relative_decrease(self.hist["objective"],
                                                                   self.hist["iteration"])) < self.tol):
            return "converged"
        if self.time_limit is not None and now >= self.time_limit:
            return "time_limit"
        return None

    def save_checkpoint(self):
        """Write the last recorded iterate, its history and the solver's and random state."""
        hist, last = self.hist, self.last
        rows = min(len(v) for v in hist.values())   # Ctrl-C may cut an append short
        n = bisect.bisect_right(hist["iteration"][:rows], last[3])   # complete rows up to `last`
        rng = self.solver.rng
        _checkpoint.save(self.checkpoint["path"], fingerprint=self.checkpoint["fingerprint"], iteration=last[3],
                         seconds=hist["seconds"][n - 1], W=last[1], Ht=last[2], best=self.best,
                         history={k: v[:n] for k, v in hist.items()}, solver_state=self.solver.get_state(),
                         rng_state=rng.bit_generator.state if rng is not None else None)

    def audit(self, hist):
        """The iterations where a monotone solver's objective rose beyond rounding, warned about once."""
        if not self.monotone:
            return []
        engine = self.solver.engine
        increases = objective_increases(hist["objective"], scale=0.5 * engine.sqnorm, dtype=engine.dtype)
        if increases:
            it_max, up_max = max(increases, key=lambda p: p[1])
            warnings.warn(f"{self.label}: the objective increased at {len(increases)} iteration(s) although this "
                          f"solver is monotone; largest +{up_max:.3g} at iteration {it_max} "
                          "(listed in Factorization.monotonicity)", RuntimeWarning, stacklevel=6)
        return increases

    def go(self, W, Ht, resume=None) -> RunOutput:
        """Run from (W, Ht), or from `resume`, until a stopping rule fires; the best iterate is returned."""
        solver, callback = self.solver, self.callback
        it = first = self.start(W, Ht, resume)
        it -= 1
        W, Ht = self.last[1], self.last[2]
        bar = Progress(self.max_iter, self.label, "iterations", enabled=self.progress)
        try:
            for it in range(first, self.max_iter + 1):
                W_prev, Ht_prev = W, Ht
                solver.want_objective = self.wants_objective(it)
                W, Ht, obj = solver.step(W, Ht)
                stop_now = False
                if obj is None:                         # not evaluated this iteration
                    if callback is None or not callback(State(it, W, Ht, self.last[0], self.seconds(), self.hist)):
                        continue
                    obj, stop_now = solver.objective(W, Ht), True   # record the iterate the callback stopped at
                obj = float(obj)
                now = self.record(it, W_prev, Ht_prev, W, Ht, obj)
                reason = self.stop_test(it, obj, now)
                if reason == "diverged":
                    warnings.warn(f"{self.label}: objective became {obj} at iteration {it}; "
                                  "returning the best iterate so far", RuntimeWarning, stacklevel=4)
                if reason is not None:
                    self.stop_reason, self.converged = reason, reason in ("target", "converged")
                    break
                bar.update(it, objective=obj)
                if self.checkpoint is not None and it % self.checkpoint["every"] == 0:
                    self.save_checkpoint()
                if stop_now or (callback is not None and callback(State(it, W, Ht, obj, now, self.hist))):
                    self.stop_reason = "callback"
                    break
        except (KeyboardInterrupt, SystemError) as exc:
            # Ctrl-C inside a Numba parallel region surfaces as SystemError with the interrupt as its context
            if not isinstance(exc, KeyboardInterrupt) and not isinstance(exc.__cause__ or exc.__context__,
                                                                           KeyboardInterrupt):
                raise
            self.stop_reason = "interrupted"
            if self.checkpoint is not None:
                self.save_checkpoint()
            warnings.warn(f"{self.label}: interrupted at iteration {it}; returning the best factorization so far "
                          f"(iteration {self.best[3]}, objective {self.best[0]:.6g})", RuntimeWarning, stacklevel=4)
        finally:
            bar.update(self.last[3], objective=self.last[0])
            bar.close()
        return self.finish()

    def finish(self) -> RunOutput:
        """The run's result: the best iterate, the history as arrays, the audit."""
        if self.tracker is not None:
            self.tracker.finish(self.last[1], self.last[2])
            self.hist.update(self.tracker.columns())
        n = min(len(v) for v in self.hist.values())
        hist = {k: np.asarray(v[:n], dtype=np.int64 if k == "iteration" else np.float64)
                for k, v in self.hist.items()}
        increases = self.audit(hist)
        obj, W, Ht, _ = self.best
        return RunOutput(W, Ht, obj, self.last[3], self.converged, self.stop_reason, hist,
                         time.perf_counter() - self.clock0, increases)


def run(solver, W, Ht, *, resume=None, **settings) -> RunOutput:
    """Iterate `solver` from (W, Ht) until a stopping rule fires (settings: see `Run`).
    `checkpoint` = dict(path, every, fingerprint) writes the state every `every` iterations (and
    on Ctrl-C); `resume` = a loaded checkpoint to continue; `objective_every` = how often to ask a
    solver for an objective that costs a pass over X."""
    return Run(solver, **settings).go(W, Ht, resume)
