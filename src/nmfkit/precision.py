"""Mixed precision: iterate in float32, finish in float64 (`nmfkit.fit(..., precision="mixed")`).

Dense matrix products in float32 run about twice as fast as in float64 and move half the
bytes; the iterates of an NMF solver do not need float64 until they are close to a stationary
point, where float32 can no longer resolve the objective's decrease (its relative precision is
6e-8).  A mixed fit therefore runs in two phases from the same start as a float64 fit:

  1. float32: the solver on a float32 copy of X until the relative objective decrease per
     iteration falls below max(tol, FLOAT32_TOL) (or max_iter / time_limit / a callback stops it);
  2. float64: the same solver, started from phase 1's factors (as a given start: nothing
     rescaled), on X itself until the user's `tol`.

Every stopping rule applies to the two phases together (max_iter and time_limit are shared;
phase 2 runs at least one iteration, so a fit capped by max_iter may run one more); the history
is phase 1 then phase 2 (iteration numbers continue; `Factorization.options["float32_iterations"]`
says where the phases meet); W, H, the loss and the history's last objective are float64.
Phase 2 converges to the stationary point a float64 fit from phase 1's iterate reaches, so with a
tight `tol` the final objective matches a float64 fit's to the solver's convergence tolerance, not
to float32's precision.  The trade-off: a float32 copy of X is held during phase 1 (half of X's
size again), and a monotone solver's objective may rise at the phase change by float32's rounding
of the factors (not listed as a monotonicity violation: each phase is audited on its own).
A solver's own state beyond W and H (HALS's extrapolation weights, IRLS's dispersion) starts afresh
in phase 2 from phase 1's factors, as a fit given those factors as its start would.
"""
from __future__ import annotations

import time

import numpy as np

from .driver import RunOutput, run
from .engines import make_engine

PRECISIONS = ("native", "mixed")
FLOAT32_TOL = 1e-5       # phase 1 stops once float32 resolves less than this relative decrease per iteration


def float32_engine(X, mask=None, nan_is_missing=False):
    """The phase-1 engine: a float32 copy of X (sparse stays sparse), X itself untouched."""
    return make_engine(X.astype(np.float32), mask=mask, nan_is_missing=nan_is_missing)


def run_mixed(solver32, solver64, W0, Ht0, *, max_iter, tol, time_limit, **settings) -> tuple[RunOutput, int]:
    """Phase 1 with `solver32` from (W0, Ht0) cast to float32, then phase 2 with `solver64` from its
    result; returns (the joined RunOutput, the number of float32 iterations)."""
    started = time.perf_counter()
    first = run(solver32, W0.astype(np.float32), Ht0.astype(np.float32), max_iter=max_iter,
                tol=max(tol, FLOAT32_TOL), time_limit=time_limit, **settings)
    if first.stop_reason in ("interrupted", "callback", "target"):    # the user or the solver said stop
        return _as_float64(first, solver64), first.n_iter
    left = None if time_limit is None else max(time_limit - (time.perf_counter() - started), 0.0)
    solver64.given_start = True
    W1 = np.ascontiguousarray(first.W, dtype=np.float64)
    Ht1 = np.ascontiguousarray(first.Ht, dtype=np.float64)
    second = run(solver64, W1, Ht1, max_iter=max(1, max_iter - first.n_iter), tol=tol, time_limit=left,
                 **settings)
    return _joined(first, second), first.n_iter


def _as_float64(out: RunOutput, solver64) -> RunOutput:
    """Phase 1's result in float64, its objective re-evaluated on X."""
    W, Ht = out.W.astype(np.float64), out.Ht.astype(np.float64)
    return RunOutput(W, Ht, float(solver64.objective(W, Ht)), out.n_iter, out.converged, out.stop_reason,
                     out.history, out.seconds, out.monotonicity)


def _joined(first: RunOutput, second: RunOutput) -> RunOutput:
    """One run's output from the two phases: phase 2's iterations and seconds continue phase 1's
    (phase 2's iteration 0, phase 1's last iterate, is not repeated)."""
    n1, t1 = first.n_iter, first.history["seconds"][-1]
    history = {}
    for key in first.history.keys() & second.history.keys():
        tail = second.history[key][1:]
        if key == "iteration":
            tail = tail + n1
        elif key == "seconds":
            tail = tail + t1
        history[key] = np.concatenate([first.history[key], tail])
    monotonicity = first.monotonicity + [(it + n1, up) for it, up in second.monotonicity]
    return RunOutput(second.W, second.Ht, second.objective, n1 + second.n_iter, second.converged,
                     second.stop_reason, history, first.seconds + second.seconds, monotonicity)
