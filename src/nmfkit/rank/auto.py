"""Automatic rank: a search over k on the held-out error curve, then one fit at the chosen rank.

    nmfkit.fit(X, rank="auto", rank_range=(lo, hi), seed=…)

The curve is the cross-validation error of `nmfkit.rank.cross_validation`: in each of
`n_splits` random hold-outs a fraction `holdout` of the entries is hidden, rank k is fitted on
the observed entries only and scored on the hidden ones,

    E(k) = mean over splits of  mean_{hidden (i, j)} ℓ(X_ij, (W H)_ij),

with ℓ the squared error or the KL divergence.  Instead of fitting every k in lo…hi, the
search evaluates few ranks, assuming E is unimodal in k (it falls while components add
signal, and rises once they fit the noise of the observed entries):

1. doubling: k = lo, 2·lo, 4·lo, … (hi last) until E stops falling; the smallest error
   seen then lies between its two evaluated neighbours (a bracket);
2. golden-section search on the integers of that bracket (Kiefer 1953): the next rank goes
   into the larger side at 0.382 of its length from the best, until both integer neighbours
   of the best are evaluated — the exact integer minimiser of a unimodal curve;
3. rule "1se" (the default): the smallest rank whose mean error is within one standard error
   (over the splits) of the minimum (Hastie, Tibshirani & Friedman, ESL §7.10), found by
   bisection below the minimiser; rule "min" keeps the minimiser.

Why "1se": above the true rank the curve is nearly flat (extra components fit little), so
its exact minimum moves with the random hold-out; the one-standard-error rule picks the
simplest model the data cannot tell apart from the best, and it is the rule
`cross_validate_rank` already offers.  RcppML 1.0's `k = "auto"` also doubles and then
narrows the bracket by golden sections, but it brackets only between the last two doubled
ranks (missing a minimum below the second-to-last) and returns the bracket's lower end;
nmfkit keeps the full bracket and states the rule it applies.

Every evaluated rank gets exactly the masks and starting factors that
`cross_validate_rank(X, range(lo, hi + 1), seed=seed, …)` gives it, so the errors the search
reports are that full sweep's errors at those ranks, and on a unimodal curve the chosen
rank is the sweep's.  Cost: a few masked fits per evaluated rank (about log₂(hi/lo) +
1.44·log₂(bracket) ranks) and O(n_splits·m·n) bytes for the masks; masked fits hold X densely.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..checkpoint import check_target as check_checkpoint_target
from ..progress import Progress
from ..validation import check_matrix, check_seed
from .cross_validation import (
    CrossValidation,
    _observed_mean,
    check_cv_settings,
    masked_fit_error,
    pick_rank,
    speckled_mask,
    split_streams,
)

GOLDEN = (3.0 - math.sqrt(5.0)) / 2.0          # 0.382: the golden-section step, 1 − 1/φ
SEARCH_KEYS = ("holdout", "n_splits", "rule", "solver", "tol", "max_iter")
MAX_DEFAULT_RANK = 50                           # default upper end of the search (RcppML's too)


@dataclass
class RankSearch:
    """Result of `search_rank`: the chosen rank and the held-out errors of the evaluated ranks."""
    rank: int
    rule: str
    order: list                      # ranks in the order they were evaluated
    errors: dict                     # rank → held-out error of each split (array of n_splits)
    rank_range: tuple
    loss: str
    seconds: float
    options: dict = field(default_factory=dict)

    @property
    def n_evaluated(self) -> int:
        return len(self.order)

    @property
    def sweep_size(self) -> int:
        """Ranks a full sweep of rank_range would have fitted."""
        return self.rank_range[1] - self.rank_range[0] + 1

    def cross_validation(self) -> CrossValidation:
        """The evaluated ranks as a `CrossValidation` (increasing rank): `.plot()`, `.to_frame()`, `.se`."""
        ranks = sorted(self.errors)
        cv = CrossValidation(ranks=ranks, errors=np.array([self.errors[k] for k in ranks]), rule=self.rule,
                             best_rank=self.rank, loss=self.loss, seconds=self.seconds, options=dict(self.options))
        return cv

    def records(self) -> list:
        """One dict per evaluated rank, in evaluation order: rank, mean and standard error of the held-out error."""
        out = []
        for k in self.order:
            e = self.errors[k]
            se = float(e.std(ddof=1) / math.sqrt(e.size)) if e.size > 1 else float("nan")
            out.append({"rank": int(k), "test_error": float(e.mean()), "test_error_se": se})
        return out

    def __repr__(self):
        body = ", ".join(f"{r['rank']}: {r['test_error']:.4g}" for r in self.records())
        return (f"RankSearch(rule {self.rule!r} picks rank {self.rank}; {self.n_evaluated} of {self.sweep_size} "
                f"ranks evaluated, in order — {body})")


def check_rank_range(rank_range, shape) -> tuple:
    """(lo, hi) with 1 ≤ lo ≤ hi ≤ min(m, n); None → (1, min(m, n, 50))."""
    limit = min(shape)
    if rank_range is None:
        return 1, min(limit, MAX_DEFAULT_RANK)
    try:
        lo, hi = rank_range
    except (TypeError, ValueError):
        raise TypeError(f"rank_range must be a pair (lo, hi) of integers; got {rank_range!r}") from None
    for value in (lo, hi):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"rank_range must be a pair (lo, hi) of integers; got {rank_range!r}")
    lo, hi = int(lo), int(hi)
    if not 1 <= lo <= hi <= limit:
        raise ValueError(f"rank_range must satisfy 1 ≤ lo ≤ hi ≤ min(m, n) = {limit} for a {shape[0]}×{shape[1]} "
                         f"matrix; got ({lo}, {hi})")
    return lo, hi


class _Curve:
    """The held-out error E(k) of the fixed splits, computed on demand and remembered.

    Split s and rank k use the mask and start of `cross_validate_rank(X, range(lo, hi + 1), seed=seed)`:
    split s's stream is SeedSequence(seed).spawn(n_splits)[s], and rank k's start the (k − lo)-th of
    that stream's spawn(hi − lo + 1)."""

    def __init__(self, X, lo, hi, holdout, n_splits, seed, fit_kwargs, loss, progress):
        self.X, self.lo, self.loss, self.fit_kwargs, self.progress = X, lo, loss, fit_kwargs, progress
        self.splits = []
        for split_rng, init_seqs in split_streams(seed, n_splits, hi - lo + 1):
            mask = speckled_mask(X.shape, holdout, split_rng)
            self.splits.append((mask, _observed_mean(X, mask), init_seqs))
        self.errors, self.order = {}, []

    def mean(self, k) -> float:
        if k not in self.errors:
            self.errors[k] = np.array([self._split_error(k, *split) for split in self.splits])
            self.order.append(k)
            best = min(self.errors, key=lambda r: (self.mean(r), r))
            self.progress.update(len(self.order), force=True, k=k, error=float(self.errors[k].mean()), best=best)
        value = float(self.errors[k].mean())
        return value if math.isfinite(value) else math.inf    # a failed fit ranks last, never first

    def se(self, k) -> float:
        e = self.errors[k]
        return float(e.std(ddof=1) / math.sqrt(e.size)) if e.size > 1 else 0.0

    def _split_error(self, k, mask, observed_mean, init_seqs) -> float:
        return masked_fit_error(self.X, k, mask, observed_mean, init_seqs[k - self.lo], self.fit_kwargs)


def _doubling(curve, lo, hi):
    """Evaluate lo, 2·lo, 4·lo, … (hi last) until the error stops falling (or hi is reached)."""
    k, previous = lo, math.inf
    while True:
        error = curve.mean(k)
        if error >= previous or k == hi:
            return
        previous, k = error, min(2 * k, hi)


def _golden_refine(curve, lo, hi):
    """Golden-section search on integers around the best evaluated rank until its neighbours are evaluated."""
    while True:
        ranks = sorted(curve.errors)
        best = min(ranks, key=lambda r: (curve.mean(r), r))
        below = max((r for r in ranks if r < best), default=lo - 1)   # lo − 1: nothing below lo
        above = min((r for r in ranks if r > best), default=hi + 1)
        left, right = best - below - 1, above - best - 1               # unevaluated ranks on each side
        if left <= 0 and right <= 0:
            return best
        if right >= left:
            curve.mean(best + max(1, min(right, round(GOLDEN * (above - best)))))
        else:
            curve.mean(best - max(1, min(left, round(GOLDEN * (best - below)))))


def _one_se_boundary(curve, best):
    """Bisect below `best` for the smallest rank within one standard error of the minimum."""
    threshold = curve.mean(best) + curve.se(best)
    inside = min(r for r in curve.errors if r <= best and curve.mean(r) <= threshold)
    outside = max((r for r in curve.errors if r < inside), default=None)
    while outside is not None and inside - outside > 1:
        middle = (inside + outside) // 2
        if curve.mean(middle) <= threshold:
            inside = middle
        else:
            outside = middle


def search_rank(X, rank_range=None, *, holdout=0.1, n_splits=3, rule="1se", seed=None, solver="mu",
                loss="frobenius", max_iter=None, tol=1e-5, verbose=False, **fit_kwargs) -> RankSearch:
    """Choose the rank on the held-out error curve, evaluating few ranks (doubling, golden section, 1-SE bisection).

    X : non-negative matrix, dense or sparse.
    rank_range : (lo, hi), the ranks searched (default (1, min(m, n, 50))).
    holdout, n_splits, seed, solver, loss, max_iter, tol, fit_kwargs : as in `cross_validate_rank`
        (the solver must accept masks: "mu", "pgd" or "sgd"); the errors at the evaluated ranks equal
        `cross_validate_rank(X, range(lo, hi + 1), …)`'s for the same arguments.
    rule : "1se" (smallest rank within one standard error of the minimum; needs n_splits ≥ 2 to differ
        from "min") or "min".
    verbose : show the ranks evaluated so far, the last one's error and the best rank.
    """
    X = check_matrix(X, "X")
    lo, hi = check_rank_range(rank_range, X.shape)
    holdout, n_splits, seed, rule = check_cv_settings(holdout, n_splits, seed, rule)
    if loss not in ("frobenius", "kl"):
        raise ValueError(f"the rank search cross-validates with loss 'frobenius' or 'kl'; got {loss!r}")
    if "mask" in fit_kwargs or "init" in fit_kwargs:
        raise TypeError("the rank search makes its own mask= and init=; do not pass them")
    _check_masked_solver(solver, loss)
    started = time.perf_counter()
    fit_kwargs = dict(solver=solver, loss=loss, max_iter=max_iter, tol=tol, **fit_kwargs)
    with Progress(hi - lo + 1, "rank search", "ranks", enabled=verbose) as progress:
        curve = _Curve(X, lo, hi, holdout, n_splits, seed, fit_kwargs, loss, progress)
        _doubling(curve, lo, hi)
        best = _golden_refine(curve, lo, hi)
        if rule == "1se":
            _one_se_boundary(curve, best)
    ranks = sorted(curve.errors)
    means = [curve.mean(k) for k in ranks]
    ses = [curve.se(k) if n_splits > 1 else math.nan for k in ranks]
    chosen = pick_rank(ranks, means, ses, rule)
    options = dict(holdout=holdout, n_splits=n_splits, seed=seed, rank_range=[lo, hi], **fit_kwargs)
    return RankSearch(rank=chosen, rule=rule, order=list(curve.order), errors=dict(curve.errors),
                      rank_range=(lo, hi), loss=loss, seconds=time.perf_counter() - started, options=options)


def _check_masked_solver(solver, loss):
    from ..registry import solver_spec
    solver_spec(solver, loss, "masked")       # a one-line ValueError when it cannot fit masked data


def _search_loss(solver, loss, beta) -> str:
    """The loss the final fit will use, as fit resolves it (loss=None: Frobenius, or the solver's own)."""
    from ..registry import SOLVERS, resolve_loss
    if loss is None:
        own = ({n.lower(): s for n, s in SOLVERS.items()}.get(solver.lower()) if isinstance(solver, str) else None)
        loss = own.losses[0] if own is not None and beta is None and "frobenius" not in own.losses else "frobenius"
    name, _ = resolve_loss(loss, beta)
    if name not in ("frobenius", "kl"):
        raise ValueError(f"rank='auto' cross-validates the rank with loss 'frobenius' or 'kl'; got loss {name!r} "
                         "(choose the rank with nmfkit.estimate_rank, or pass an integer rank)")
    return name


def _search_solver(requested, final_solver, loss) -> str:
    """The search's solver: the one asked for in rank_search, else the final fit's if it takes masks, else "mu"."""
    from ..registry import SOLVERS
    if requested is not None:
        return requested
    spec = SOLVERS.get(final_solver) if isinstance(final_solver, str) else None
    if spec is not None and "masked" in spec.engines and loss in spec.losses:
        return spec.name
    return "mu"


def fit_auto_rank(X, rank, *, rank_range=None, rank_search=None, **fit_kwargs):
    """`nmfkit.fit(X, rank="auto", …)`: `search_rank`, then `fit` at the chosen rank on all of X.

    rank_range : (lo, hi) searched (default (1, min(m, n, 50))).
    rank_search : dict of search settings — holdout (0.1), n_splits (3), rule ("1se"), solver (the fit's
        solver if it accepts masks, else "mu"), tol (1e-5), max_iter (the solver's).
    fit_kwargs : fit's arguments; seed seeds the search and the final fit; verbose shows both.
    The result's options["rank_search"] records the rule, the chosen rank, the ranks evaluated
    in order with their mean held-out error and standard error, and the search settings.
    """
    from ..fit import _plan, fit
    if rank.lower() != "auto":
        raise ValueError(f"rank must be an integer or 'auto'; got {rank!r}")
    settings = _search_settings(rank_search)
    _refuse_with_auto(fit_kwargs)
    data, X = X, check_matrix(X, "X")
    if not (isinstance(X, np.ndarray) or sp.issparse(X)):
        raise TypeError(f"rank='auto' needs X as a NumPy array or SciPy sparse matrix (the search fits masked "
                        f"copies in memory); got {type(X).__name__}; pass an integer rank")
    lo, hi = check_rank_range(rank_range, X.shape)
    loss = _search_loss(fit_kwargs.get("solver", "auto"), fit_kwargs.get("loss"), fit_kwargs.get("beta"))
    settings["solver"] = _search_solver(settings.get("solver"), fit_kwargs.get("solver", "auto"), loss)
    seed = check_seed(fit_kwargs.pop("seed", None))
    _validate_final_fit(_plan, X, lo, fit_kwargs, seed)
    final_options = {k: v for k, v in fit_kwargs.items() if k not in _FIT_ARGUMENTS}
    same_solver = settings["solver"] == fit_kwargs.get("solver")
    search_options = final_options if same_solver else {k: v for k, v in final_options.items()
                                                        if k in ("alpha_W", "alpha_H", "l1_ratio")}
    found = search_rank(X, (lo, hi), seed=seed, loss=loss, verbose=bool(fit_kwargs.get("verbose")),
                        **settings, **search_options)
    result = fit(data, found.rank, seed=seed, **fit_kwargs)      # the data as given: a DataFrame keeps its labels
    result.options["rank_search"] = {
        "rank": found.rank, "rule": found.rule, "rank_range": [lo, hi], "n_evaluated": found.n_evaluated,
        "evaluated": found.records(), "holdout": found.options["holdout"], "n_splits": found.options["n_splits"],
        "solver": found.options["solver"], "loss": loss, "tol": found.options["tol"],
        "max_iter": found.options["max_iter"], "seed": seed, "seconds": found.seconds}
    return result


_FIT_ARGUMENTS = ("solver", "loss", "beta", "init", "max_iter", "tol", "n_runs", "callback", "time_limit", "verbose",
                  "track", "mask", "missing", "checkpoint", "checkpoint_every", "resume", "objective_every",
                  "precision", "n_threads", "stream", "chunk")


def _search_settings(rank_search) -> dict:
    if rank_search is None:
        return {}
    if not isinstance(rank_search, dict):
        raise TypeError(f"rank_search must be a dict of search settings; got {type(rank_search).__name__}")
    unknown = sorted(set(rank_search) - set(SEARCH_KEYS))
    if unknown:
        raise ValueError(f"rank_search: unknown setting(s) {', '.join(map(repr, unknown))}; "
                         f"the settings are {', '.join(SEARCH_KEYS)}")
    return dict(rank_search)


def _refuse_with_auto(fit_kwargs):
    """rank='auto' cannot be combined with what needs the rank in advance or hides entries already."""
    if not isinstance(fit_kwargs.get("init", "auto"), str):
        raise ValueError("rank='auto' cannot start from given (W0, H0): their shapes fix the rank")
    if fit_kwargs.get("mask") is not None or fit_kwargs.get("missing", "error") != "error":
        raise ValueError("rank='auto' cross-validates on held-out entries and cannot be combined with mask= or "
                         "missing='mask'; use nmfkit.cross_validate_rank on the complete data, or an integer rank")
    if fit_kwargs.get("resume") is not None:
        raise ValueError("rank='auto' cannot resume a checkpoint: pass the checkpoint's rank instead")
    if fit_kwargs.get("stream") not in (False, None) or fit_kwargs.get("chunk") is not None:
        raise ValueError("rank='auto' needs the data in memory (the search fits masked copies); "
                         "pass an integer rank to a streamed fit")


def _validate_final_fit(plan, X, rank, fit_kwargs, seed):
    """Every check of the final fit (solver, options, init, …) before the search spends any time."""
    args = {k: v for k, v in fit_kwargs.items() if k in _FIT_ARGUMENTS and k not in ("stream", "chunk")}
    options = {k: v for k, v in fit_kwargs.items() if k not in _FIT_ARGUMENTS}
    defaults = dict(solver="auto", loss=None, beta=None, init="auto", max_iter=None, tol=1e-4, n_runs=1,
                    callback=None, time_limit=None, verbose=False, track=False, mask=None, missing="error",
                    checkpoint=None, checkpoint_every=50, resume=None, objective_every=None, precision="native",
                    n_threads=None)
    args = {**defaults, **args, "checkpoint": None}     # the target is checked here; the final fit writes it
    plan(X, rank, seed=seed, solver_options=options, **args)
    if fit_kwargs.get("checkpoint") is not None:
        check_checkpoint_target(fit_kwargs["checkpoint"])
