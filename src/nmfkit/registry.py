"""Registries of solvers and initialisations, and their capability table.

Plain dicts filled by decorators.  `solver_spec` turns a name into its spec or
a "choose one of" error, and refuses a solver/loss/engine combination it does
not support before any work is done.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from .engines import engines_for
from .validation import choose

LOSSES = {"frobenius": 2.0, "kl": 1.0, "is": 0.0}
# Losses that are not β-divergences (β is None): observation models fitted by the `irls` solver
# (nmfkit.distributions); `nmfkit.project`, cross-validation and the scikit-learn skin refuse them.
LIKELIHOOD_LOSSES = ("nb", "gamma", "inverse_gaussian", "tweedie", "gp", "zip", "zinb", "huber", "l1")
LOSSES.update(dict.fromkeys(LIKELIHOOD_LOSSES))
LOSS_ALIASES = {"euclidean": "frobenius", "kullback-leibler": "kl", "itakura-saito": "is",
                "negative_binomial": "nb", "ig": "inverse_gaussian", "generalized_poisson": "gp",
                "generalised_poisson": "gp", "mae": "l1"}


@dataclass(frozen=True)
class SolverSpec:
    name: str
    cls: type
    losses: tuple[str, ...]
    engines: tuple[str, ...] = ()    # derived from the solver class's `requires` when not given
    monotone: bool = True          # promises a non-increasing objective
    max_iter: int = 1000           # default iteration cap
    default_init: str = "nndsvda"
    summary: str = ""
    options: dict = field(default_factory=dict)
    penalties: bool = True         # accepts alpha_W / alpha_H

    def __post_init__(self):
        if not self.engines:
            object.__setattr__(self, "engines", engines_for(self.cls.requires))


SOLVERS: dict[str, SolverSpec] = {}
INITS: dict[str, object] = {}
DETERMINISTIC_INITS = ("nndsvd", "nndsvda", "spa")    # the same start every run: n_runs > 1 needs another


def register_solver(name, *, losses, monotone=True, max_iter=1000,
                    default_init="nndsvda", summary="", options=None, penalties=True):
    """Class decorator adding a solver to SOLVERS: the losses it supports, whether it promises a
    non-increasing objective, its default iteration cap and init, a one-line summary and its
    documented options.  The engine kinds it runs on follow from the class's `requires` and each
    engine's `capabilities`.  A new solver is one module in nmfkit/solvers using it."""
    def deco(cls):
        SOLVERS[name] = SolverSpec(name, cls, tuple(losses), (), monotone, max_iter,
                                   default_init, summary, dict(options or {}), penalties)
        cls.name = name
        return cls
    return deco


def register_init(name):
    """Function decorator adding an initialisation `f(engine, rank, rng) -> (W, Ht)` to INITS."""
    def deco(func):
        INITS[name] = func
        return func
    return deco


def resolve_loss(loss, beta=None) -> tuple[str, float]:
    """Return (loss name, β).  `beta=` overrides and names the loss 'beta'.  A loss that is not a
    β-divergence (LIKELIHOOD_LOSSES) has β = None and cannot be combined with `beta=`."""
    if beta is not None and isinstance(loss, str) and LOSS_ALIASES.get(loss.lower(), loss.lower()) in \
            LIKELIHOOD_LOSSES:
        raise ValueError(f"beta= selects a β-divergence; loss={loss!r} is a likelihood, not a β-divergence: "
                         "pass one or the other")
    if beta is not None:
        beta = check_beta(beta)
        return ("beta", beta) if beta not in (0.0, 1.0, 2.0) else (
            {2.0: "frobenius", 1.0: "kl", 0.0: "is"}[beta], beta)
    if isinstance(loss, str):
        loss = LOSS_ALIASES.get(loss.lower(), loss.lower())
    if loss == "beta":
        raise ValueError("loss='beta' needs its exponent: pass beta=<float> "
                         "(0 = Itakura-Saito, 1 = KL, 2 = Frobenius)")
    if isinstance(loss, str) and loss not in LOSSES:
        raise ValueError(_unknown_loss(loss))
    loss = choose(loss, LOSSES, "loss")
    return loss, LOSSES[loss]


def _unknown_loss(loss: str) -> str:
    """'choose one of' for losses: the β-divergences, then the likelihoods of solver irls."""
    import difflib
    divergences = sorted(name for name in LOSSES if name not in LIKELIHOOD_LOSSES)
    close = difflib.get_close_matches(loss, list(LOSSES) + list(LOSS_ALIASES), n=1, cutoff=0.6)
    hint = f"; did you mean {LOSS_ALIASES.get(close[0], close[0])!r}?" if close else ""
    return (f"unknown loss {loss!r}; choose one of: {', '.join(divergences)} (β-divergences; beta=<float> for "
            f"others), or {', '.join(sorted(LIKELIHOOD_LOSSES))} (likelihoods, solver irls){hint}")


def check_beta(beta) -> float:
    """β of a β-divergence as a float: a finite real number (not a bool or a string)."""
    if isinstance(beta, (bool, np.bool_)) or not isinstance(beta, numbers.Real):
        raise ValueError(f"beta must be a finite number (0 = Itakura-Saito, 1 = KL, 2 = Frobenius); got {beta!r}")
    if not math.isfinite(float(beta)):
        raise ValueError(f"beta must be a finite number (0 = Itakura-Saito, 1 = KL, 2 = Frobenius); got {beta!r}")
    return float(beta)


def solver_spec(solver: str, loss: str, engine_kind: str) -> SolverSpec:
    solver = choose(solver, SOLVERS, "solver")
    spec = SOLVERS[solver]
    if loss not in spec.losses:
        able = sorted(n for n, s in SOLVERS.items() if loss in s.losses)
        raise ValueError(f"solver {solver!r} does not support loss {loss!r} "
                         f"(it supports {', '.join(spec.losses)}); for {loss!r} choose one of: {', '.join(able)}")
    if engine_kind not in spec.engines:
        able = sorted(n for n, s in SOLVERS.items() if engine_kind in s.engines and loss in s.losses)
        what = "data with missing entries (mask)" if engine_kind == "masked" else f"{engine_kind} data"
        raise ValueError(f"solver {solver!r} does not run on {what}; it supports {', '.join(spec.engines)}"
                         + (f"; for {what} with loss {loss!r} choose one of: {', '.join(able)}" if able else ""))
    return spec


def auto_solver(loss: str, engine_kind: str, penalized: bool = False) -> str:
    """The fastest registered solver for a loss, data kind and whether penalties are asked for."""
    preference = {"frobenius": ("hals", "anls", "pgd", "mu"), "kl": ("ccd", "mu"), "is": ("mu",), "beta": ("mu",),
                  **dict.fromkeys(LIKELIHOOD_LOSSES, ("irls",))}
    for name in preference.get(loss, ("mu",)):
        spec = SOLVERS.get(name)
        if spec and loss in spec.losses and engine_kind in spec.engines and (spec.penalties or not penalized):
            return name
    if penalized and any(loss in s.losses and engine_kind in s.engines for s in SOLVERS.values()):
        raise ValueError(f"no solver supports loss {loss!r} with the alpha_W/alpha_H penalties on {engine_kind} data")
    raise ValueError(f"no solver supports loss {loss!r} on {engine_kind} data")
