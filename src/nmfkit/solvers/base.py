"""The solver contract used by the driver.

A solver is built once per run from (engine, loss, β, options) and then called

    W, Ht, objective = solver.step(W, Ht)

for one full iteration (H half-step, then W half-step); `objective` may be None
when the driver set `want_objective = False` and the loss would cost a pass.  `step` never modifies
its inputs in place, so the driver can keep references to earlier iterates
(best-so-far, Ctrl-C) without copying.  `objective` is the loss at the
returned factors, computed from products the step already made whenever the
maths allows.  `prepare` puts initial factors in the solver's feasible set.

After a Frobenius step a solver may leave in `self.cache` the products it
made, so diagnostics need no extra pass over X:
    "XtW" = Xᵀ W_k and "WtW" = W_kᵀ W_k   (data of the H half-step)
    "XHt" = X Ht_{k+1} and "HtH" = Ht_{k+1}ᵀ Ht_{k+1}   (data of the W half-step)
"""
from __future__ import annotations

import numpy as np

from ..penalties import Penalty


def floor_of(dtype) -> float:
    """Smallest value MU-type solvers keep in W and H: eps², far below any
    meaningful entry, yet normal (no denormal slow-down) and non-zero (no
    zero-locking).  Clamping the majorizer's minimiser at this floor keeps the
    objective non-increasing (the auxiliary function is separable)."""
    return float(np.finfo(dtype).eps) ** 2


class IterateCache:
    """Products a step made at its returned iterate (W, Ht), for the next step that starts there.

    KL/β MU evaluate the objective at the end of a step from the same products the
    next H half-step needs; identity (not equality) of the arrays says they match."""

    def __init__(self):
        self._at, self._value = None, None

    def get(self, W, Ht):
        """The stored products if (W, Ht) are the arrays they were made at, else None."""
        return self._value if self._at is not None and self._at[0] is W and self._at[1] is Ht else None

    def put(self, W, Ht, value):
        self._at, self._value = (W, Ht), value


def kl_h_products(engine, cache: IterateCache, W, Ht):
    """(Qᵀ W, colsum W) for a KL multiplicative H half-step at (W, Ht): those the previous
    step's fused W half-step left in `cache`, else made now (a fresh start or a resume)."""
    return cache.get(W, Ht) or (engine.kl_ratio(W, Ht, need=("QtW",))["QtW"], engine.factor_col_sums(W))


class Solver:
    """Base of every solver; the attributes below are the whole protocol the driver and `fit` use.

    Class attributes (a subclass may override them):
      name                   the registered name (set by `register_solver`)
      requires               engine capabilities the solver needs (see engines/base.py); the
                             registry derives the engines a solver runs on from it.  The default:
                             in-memory NumPy/SciPy data with every entry observed
      objective_every        default interval at which the driver asks for an objective that
                             costs a pass over X (1: every iteration)
      returns_last_iterate   True: the driver returns the last iterate, not the best one (as R does)
      checkpoint_attrs       attributes `get_state`/`set_state` carry across a checkpoint
    Instance attributes (set in `__init__`, read or set by the driver and `fit`):
      engine, loss, beta, penalty   what the solver was built with
      want_objective   set by the driver before each step: whether `step` must return the objective
      given_start      set by `fit`: the start is the user's (W0, H0), which `prepare` must not make worse
      rng              set by `fit`: the run's random stream (None until then); stochastic solvers draw
                       from it and the driver saves its state in checkpoints
      done             set by the solver: its own target was met (e.g. sgd's target_error); the run stops
      monotone         whether this instance promises a non-increasing objective (the registry's
                       promise can be withdrawn per instance, e.g. pgd with a fixed step)
      cache            products of the last Frobenius step, for diagnostics (see the module docstring)
    Methods the driver and `fit` call: `prepare`, `step`, `objective`, `get_state`/`set_state`
    (checkpoints) and `result_options` (what the run found beyond W and H, e.g. separable NMF's
    anchor columns, recorded in `Factorization.options`).
    """
    name = "base"
    requires: frozenset = frozenset({"core", "complete", "numpy_factors", "numpy_data"})
    objective_every = 1
    returns_last_iterate = False
    checkpoint_attrs: tuple = ()

    def __init__(self, engine, loss: str, beta: float, *, alpha_W=0.0, alpha_H="same", l1_ratio=0.0,
                 **options):
        if options:
            raise TypeError(f"solver {self.name!r} got unknown options: {', '.join(sorted(options))}")
        self.engine = engine
        self.loss = loss
        self.beta = beta
        self.penalty = Penalty.from_options(engine.shape, alpha_W, alpha_H, l1_ratio)
        self.want_objective = True
        self.given_start = False
        self.rng = None
        self.done = False
        self.monotone = True
        self.cache = {}

    @property
    def penalised(self) -> bool:
        """Whether the objective has a penalty term (then W H = 0 can be the optimum)."""
        return self.penalty.active

    def prepare(self, W, Ht):
        return W, Ht

    def result_options(self) -> dict:
        """Entries for `Factorization.options` that describe what this run found (default: none)."""
        return {}

    def get_state(self) -> dict:
        """The solver's own state beyond (W, Ht), for checkpoints (numbers or arrays)."""
        return {name: getattr(self, name) for name in self.checkpoint_attrs}

    def set_state(self, state: dict) -> None:
        for name in self.checkpoint_attrs:
            if name in state:
                setattr(self, name, state[name])

    def objective(self, W, Ht) -> float:
        """Loss at (W, Ht): ½‖X − W Htᵀ‖² for Frobenius, D_β otherwise."""
        return self.engine.loss(W, Ht, self.loss, self.beta) + self.penalty.value(W, Ht)

    def step(self, W, Ht):  # pragma: no cover - abstract
        raise NotImplementedError
