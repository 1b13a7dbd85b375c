"""The only iteration loop in nmfkit.

`run(solver, W, Ht, ...)` calls `solver.step` until a stopping rule fires:
  max_iter     the iteration cap;
  tol          relative objective decrease, averaged over the last few
               iterations, below `tol` (tol=0 disables it: exactly max_iter
               iterations run);
  time_limit   wall-clock seconds;
  callback     callback(state) returning True;
  interrupted  Ctrl-C: the best factorization so far is returned with a
               warning instead of losing the work.
History records (iteration, seconds, objective) from iteration 0 (the start).
"""
from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

WINDOW = 5   # iterations over which the relative decrease is averaged


@dataclass
class State:
    """What a callback sees after each iteration."""
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


class Progress:
    """A one-line progress display on a terminal (stderr); silent elsewhere."""

    def __init__(self, enabled: bool, total: int, label: str = "nmf"):
        self.enabled = enabled and sys.stderr.isatty()
        self.total, self.label, self._last = total, label, 0.0

    def update(self, it, objective, force=False):
        if not self.enabled:
            return
        now = time.perf_counter()
        if force or now - self._last > 0.2:
            self._last = now
            done = int(30 * it / max(self.total, 1))
            sys.stderr.write(f"\r{self.label} [{'#' * done}{'.' * (30 - done)}] {it}/{self.total} "
                             f"objective {objective:.6g}")
            sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def relative_decrease(objectives, window=WINDOW) -> float:
    """Mean relative objective decrease per iteration over the last `window`."""
    t = len(objectives) - 1
    w = min(window, t)
    old, new = objectives[t - w], objectives[t]
    return (old - new) / (w * max(abs(old), np.finfo(float).tiny))


def run(solver, W, Ht, *, max_iter, tol, time_limit=None, callback=None, monotone=True,
        progress=False, label="nmf") -> RunOutput:
    start = time.perf_counter()
    W, Ht = solver.prepare(W, Ht)
    obj = float(solver.objective(W, Ht))
    hist = {"iteration": [0], "seconds": [0.0], "objective": [obj]}
    best = (obj, W, Ht, 0)
    last = best
    stop_reason, converged, it = "max_iter", False, 0
    bar = Progress(progress, max_iter, label)
    try:
        for it in range(1, max_iter + 1):
            W, Ht, obj = solver.step(W, Ht)
            obj = float(obj)
            now = time.perf_counter() - start
            hist["iteration"].append(it)
            hist["seconds"].append(now)
            hist["objective"].append(obj)
            last = (obj, W, Ht, it)
            if not np.isfinite(obj):
                stop_reason = "diverged"
                warnings.warn(f"{label}: objective became {obj} at iteration {it}; "
                              "returning the best iterate so far", RuntimeWarning, stacklevel=3)
                break
            if obj <= best[0] or monotone:
                best = last
            bar.update(it, obj)
            if tol > 0 and (obj == 0.0 or relative_decrease(hist["objective"]) < tol):
                stop_reason, converged = "converged", True
                break
            if time_limit is not None and now >= time_limit:
                stop_reason = "time_limit"
                break
            if callback is not None and callback(State(it, W, Ht, obj, now, hist)):
                stop_reason = "callback"
                break
    except KeyboardInterrupt:
        stop_reason = "interrupted"
        warnings.warn(f"{label}: interrupted at iteration {it}; returning the best factorization so far "
                      f"(iteration {best[3]}, objective {best[0]:.6g})", RuntimeWarning, stacklevel=3)
    finally:
        bar.update(last[3], last[0], force=True)
        bar.close()
    n = min(len(v) for v in hist.values())
    hist = {k: np.asarray(v[:n], dtype=np.int64 if k == "iteration" else np.float64) for k, v in hist.items()}
    obj, W, Ht, _ = best
    return RunOutput(W, Ht, obj, last[3], converged, stop_reason, hist, time.perf_counter() - start)
