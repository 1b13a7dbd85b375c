"""Choosing the rank by cross-validation on held-out entries (speckled / Wold hold-out).

For each split s a random fraction `holdout` of the m·n entries (zeros
included, so it works the same on sparse data) is hidden: mask M_ij = False.
Each rank k is fitted on the observed entries only,

    min_{W,H ≥ 0} Σ_{M_ij} ℓ(X_ij, (WH)_ij),

via `nmfkit.fit(X, k, mask=M)`, and scored on the hidden entries:

    test error = mean_{¬M_ij} ℓ(X_ij, (WH)_ij)
    ℓ = squared error (loss="frobenius") or x log(x/y) − x + y (loss="kl").

Too small a rank underfits; too large a rank fits the noise of the observed
entries and predicts the hidden ones worse, so the test error has a minimum
near the true rank (Wold 1978; Owen & Perry 2009; RcppML's `test_fraction`).
Choice rules over the mean test error across splits:
    "min"  the rank with the smallest mean error;
    "1se"  the smallest rank whose mean error is within one standard error
           (std over splits / √n_splits) of that minimum — the simplest model
           the data cannot tell apart from the best (Hastie et al., ESL §7.10).

Hidden entries never reach the fit: the mask hides them from the solver, and
the starting factors are random draws scaled by the mean of the observed
entries only.  Rows or columns that would be entirely hidden keep one entry.
Cost: len(ranks) × n_splits masked fits; O(m·n) bytes for each mask.

Several data sets (a list or dict of cells × genes matrices sharing their genes): each split
hides a fraction `holdout` of the entries of every X_i, each rank is an iNMF (Welch et al. 2019)
fitted on the observed entries only (`nmfkit.joint.inmf_observed`: EM imputation, monotone in the
masked objective Σ_i ‖M_i ∘ (X_i − H_i(W + V_i))‖² + λ Σ_i ‖H_i V_i‖²), and the held-out error is
the squared error of the prediction H_i(W + V_i) summed over the hidden entries of all data sets,
divided by their number:

    test error = Σ_i Σ_{¬M_i} (X_i − H_i(W + V_i))²_jg / Σ_i |¬M_i|

(with one data set, the single-matrix error above); each data set's own mean is kept in
`options["errors_by_dataset"]`.  The λ term is a penalty, not a prediction, and is left out.
Only the Frobenius loss is defined for iNMF.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..engines.dense import beta_divergence_dense
from ..validation import check_matrix, check_nonneg_float, check_positive_int, check_seed, choose
from .estimate import parse_ranks

RULES = ("min", "1se")
HELDOUT_BETA = {"frobenius": 2.0, "kl": 1.0}   # the β of each loss the held-out error is defined for


def speckled_mask(shape, holdout, rng) -> np.ndarray:
    """Boolean m×n mask, True = observed, with round(holdout·m·n) entries hidden uniformly.

    Every row and every column keeps at least one observed entry."""
    m, n = shape
    hidden = int(round(holdout * m * n))
    mask = np.ones(m * n, dtype=bool)
    mask[rng.choice(m * n, size=hidden, replace=False)] = False
    mask = mask.reshape(m, n)
    for i in np.flatnonzero(~mask.any(axis=1)):
        mask[i, rng.integers(n)] = True
    for j in np.flatnonzero(~mask.any(axis=0)):
        mask[rng.integers(m), j] = True
    return mask


def _entries(X, rows, cols) -> np.ndarray:
    if sp.issparse(X):
        return np.asarray(X.tocsr()[rows, cols]).ravel().astype(np.float64)
    return np.asarray(X[rows, cols], dtype=np.float64)


def heldout_error(X, W, H, mask, loss="frobenius") -> float:
    """Mean loss on the hidden entries (mask False) of X, predicting (W H)_ij = W_i· H_·j.

    Costs O(h k) for h hidden entries: W H is never formed."""
    X = check_matrix(X, "X", allow_zero=True)
    rows, cols = np.nonzero(~np.asarray(mask, dtype=bool))
    if rows.size == 0:
        raise ValueError("the mask hides no entries; nothing to test on")
    if loss not in HELDOUT_BETA:
        raise ValueError(f"held-out error is defined for loss 'frobenius' or 'kl'; got {loss!r}")
    x = _entries(X, rows, cols)
    y = np.einsum("ik,ik->i", W[rows].astype(np.float64), H[:, cols].T.astype(np.float64))
    if loss == "kl":
        y = np.maximum(y, np.finfo(np.float64).tiny)
    # the β-divergence of the hidden entries, per entry; for Frobenius the squared error, not its half
    scale = 2.0 if loss == "frobenius" else 1.0
    return scale * beta_divergence_dense(x, y, HELDOUT_BETA[loss]) / x.size


def pick_rank(ranks, mean, se, rule="min") -> int:
    """Apply a choice rule ("min" or "1se") to mean test errors and their standard errors."""
    rule = choose(rule, RULES, "rule")
    ranks, mean, se = np.asarray(ranks), np.asarray(mean, dtype=float), np.asarray(se, dtype=float)
    best = int(np.nanargmin(mean))
    if rule == "min":
        return int(ranks[best])
    threshold = mean[best] + (se[best] if np.isfinite(se[best]) else 0.0)
    return int(ranks[np.flatnonzero(mean <= threshold)[0]])


@dataclass
class CrossValidation:
    """Result of `cross_validate_rank`: test error per rank and split, and the chosen rank."""
    ranks: list
    errors: np.ndarray              # len(ranks) × n_splits held-out errors
    rule: str
    best_rank: int
    loss: str
    seconds: float
    options: dict = field(default_factory=dict)

    @property
    def mean(self) -> np.ndarray:
        return self.errors.mean(axis=1)

    @property
    def std(self) -> np.ndarray:
        if self.errors.shape[1] < 2:
            return np.full(len(self.ranks), np.nan)
        return self.errors.std(axis=1, ddof=1)

    @property
    def se(self) -> np.ndarray:
        return self.std / np.sqrt(self.errors.shape[1])

    def rank_by(self, rule) -> int:
        return pick_rank(self.ranks, self.mean, self.se, rule)

    def records(self) -> list:
        return [{"rank": int(k), "test_error_mean": float(mu), "test_error_std": float(sd),
                 "test_error_se": float(se), **{f"split_{s}": float(e) for s, e in enumerate(row)}}
                for k, mu, sd, se, row in zip(self.ranks, self.mean, self.std, self.se, self.errors)]

    def to_frame(self):
        """A pandas DataFrame (or a NumPy structured array without pandas), one row per rank."""
        records = self.records()
        try:
            import pandas as pd
        except ImportError:
            names = list(records[0])
            return np.rec.fromarrays([np.array([r[k] for r in records]) for k in names], names=names)
        return pd.DataFrame.from_records(records)

    def plot(self, **kwargs):
        from .plots import cv_plot
        return cv_plot(self, **kwargs)

    def __repr__(self):
        body = ", ".join(f"{k}: {m:.4g}" for k, m in zip(self.ranks, self.mean))
        return f"CrossValidation(rule {self.rule!r} picks rank {self.best_rank}; mean test error {body})"


def _random_start(observed_mean, shape, k, rng, dtype):
    """U(0, 2√(μ/k)) factors with μ the mean of the observed entries only (E[(WH)_ij] = μ)."""
    m, n = shape
    scale = 2.0 * np.sqrt(max(observed_mean, np.finfo(np.float64).tiny) / k)
    return (scale * rng.random((m, k))).astype(dtype), (scale * rng.random((k, n))).astype(dtype)


def _observed_mean(X, mask) -> float:
    if sp.issparse(X):
        coo = X.tocoo()
        return float(coo.data[mask[coo.row, coo.col]].sum() / mask.sum())
    return float(X[mask].mean(dtype=np.float64))


def check_cv_settings(holdout, n_splits, seed, rule) -> tuple:
    """(holdout, n_splits, seed, rule) of a cross-validation, each checked (one-line errors)."""
    holdout = check_nonneg_float(holdout, "holdout")
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout must be a fraction strictly between 0 and 1; got {holdout}")
    n_splits = check_positive_int(n_splits, "n_splits")
    seed = check_seed(seed)
    rule = choose(rule, RULES, "rule")
    return holdout, n_splits, seed, rule


def split_streams(seed, n_splits, n_ranks):
    """Per split: (its generator, which draws the split's mask, and one start stream per rank), all
    spawned from `seed`, so a rank's start does not depend on which other ranks are fitted."""
    for child in np.random.SeedSequence(seed).spawn(n_splits):
        yield np.random.default_rng(child), child.spawn(n_ranks)


def masked_fit_error(X, k, mask, observed_mean, start_seq, fit_kwargs) -> float:
    """Held-out error of the rank-k fit of X's observed entries (`mask` True), from the random start
    drawn from `start_seq`; fit_kwargs (with `loss`) go to `nmfkit.fit`."""
    from ..fit import fit
    W0, H0 = _random_start(observed_mean, X.shape, k, np.random.default_rng(start_seq), X.dtype)
    f = fit(X, k, init=(W0, H0), mask=mask, **fit_kwargs)
    return heldout_error(X, f.W, f.H, mask, fit_kwargs["loss"])


def cross_validate_rank(X, ranks, holdout=0.1, n_splits=3, seed=None, rule="min", solver=None,
                        loss="frobenius", max_iter=None, tol=1e-5, **fit_kwargs) -> CrossValidation:
    """Test error on held-out entries for each rank; choose the rank by `rule`.

    X : non-negative matrix, dense or sparse.
    ranks : candidate ranks (e.g. range(1, 11)).
    holdout : fraction of entries hidden in each split (0 < holdout < 1).
    n_splits : independent random hold-outs; the spread across them gives the
        standard error used by rule="1se".
    rule : "min" (smallest mean error) or "1se" (smallest rank within one
        standard error of the minimum).
    solver, loss, max_iter, tol, fit_kwargs : passed to `nmfkit.fit(..., mask=M)`;
        the solver (default "mu") must support masks.

    Several data sets: `X` a list or dict of matrices, cells × genes, sharing their genes; each
    rank is an iNMF fitted on the observed entries of every X_i, and the test error is the squared
    error summed over the hidden entries of all data sets, per hidden entry (see the module
    docstring).  fit_kwargs: `lam` (5), `time_limit`; max_iter defaults to 100 (EM imputation
    converges more slowly than iNMF on complete data).
    """
    from .consensus import _several
    if _several(X):
        return _integrative_cv(X, ranks, holdout, n_splits, seed, rule, solver, loss, max_iter, tol, fit_kwargs)
    solver = "mu" if solver is None else solver
    X = check_matrix(X, "X")
    ranks = parse_ranks(ranks, X.shape)
    holdout, n_splits, seed, rule = check_cv_settings(holdout, n_splits, seed, rule)
    if loss not in ("frobenius", "kl"):
        raise ValueError(f"cross-validation supports loss 'frobenius' or 'kl'; got {loss!r}")
    if "mask" in fit_kwargs or "init" in fit_kwargs:
        raise TypeError("cross_validate_rank makes its own mask= and init=; do not pass them")
    started = time.perf_counter()
    errors = np.zeros((len(ranks), n_splits))
    settings = dict(solver=solver, loss=loss, max_iter=max_iter, tol=tol, **fit_kwargs)
    for s, (split_rng, init_seqs) in enumerate(split_streams(seed, n_splits, len(ranks))):
        mask = speckled_mask(X.shape, holdout, split_rng)
        mu = _observed_mean(X, mask)
        for r, k in enumerate(ranks):
            try:
                errors[r, s] = masked_fit_error(X, k, mask, mu, init_seqs[r], settings)
            except TypeError as exc:
                if "mask" in str(exc):
                    raise NotImplementedError(f"cross-validation needs masked fitting, and solver {solver!r} "
                                              f"does not accept mask= here ({exc})") from None
                raise
    cv = CrossValidation(ranks=ranks, errors=errors, rule=rule, best_rank=0, loss=loss,
                         seconds=time.perf_counter() - started,
                         options=dict(holdout=holdout, n_splits=n_splits, seed=seed, solver=solver, loss=loss,
                                      max_iter=max_iter, tol=tol, **fit_kwargs))
    cv.best_rank = cv.rank_by(rule)
    return cv


# -- several data sets: iNMF on the observed entries -------------------------------------------------
INTEGRATIVE_MAX_ITER = 100


def _integrative_cv(Xs, ranks, holdout, n_splits, seed, rule, solver, loss, max_iter, tol,
                    fit_kwargs) -> CrossValidation:
    """`cross_validate_rank` of several data sets (see the module docstring)."""
    from ..joint import _is_streamed, _named, inmf_observed, shared_features
    from .consensus import check_integrative_options
    check_integrative_options("cross-validation", solver, loss, "random", fit_kwargs, ("lam", "time_limit"))
    names, Xs = _named(Xs, "X")
    if any(_is_streamed(X) for X in Xs):
        raise ValueError("cross-validation of several data sets holds them in memory (it fills their hidden "
                         "entries); pass arrays or sparse matrices, not paths or readers")
    Xs = [check_matrix(X, f"X[{name!r}]") for name, X in zip(names, Xs)]
    g = shared_features(names, [X.shape for X in Xs])
    ranks = parse_ranks(ranks, (max(X.shape[0] for X in Xs), g))
    holdout, n_splits, seed, rule = check_cv_settings(holdout, n_splits, seed, rule)
    max_iter = INTEGRATIVE_MAX_ITER if max_iter is None else check_positive_int(max_iter, "max_iter")
    tol = check_nonneg_float(tol, "tol")
    lam = check_nonneg_float(fit_kwargs.get("lam", 5.0), "lam")
    time_limit = check_nonneg_float(fit_kwargs.get("time_limit"), "time_limit", allow_none=True)
    started = time.perf_counter()
    errors = np.zeros((len(ranks), n_splits))
    by_dataset = {name: np.zeros((len(ranks), n_splits)) for name in names}
    for s, (split_rng, init_seqs) in enumerate(split_streams(seed, n_splits, len(ranks))):
        masks = [speckled_mask(X.shape, holdout, split_rng) for X in Xs]
        mu = sum(_observed_mean(X, M) * M.sum() for X, M in zip(Xs, masks)) / sum(M.sum() for M in masks)
        for r, k in enumerate(ranks):
            rng = np.random.default_rng(init_seqs[r])
            init = _integrative_start(mu, [X.shape[0] for X in Xs], g, k, rng)
            f = inmf_observed(Xs, masks, k, lam=lam, init=init, max_iter=max_iter, tol=tol, time_limit=time_limit)
            hidden_total, squared_total = 0, 0.0
            for name, X, M, H, V in zip(names, Xs, masks, f.H, f.V):
                mean = heldout_error(X, H, f.W + V, M, "frobenius")
                hidden = int((~M).sum())
                by_dataset[name][r, s] = mean
                hidden_total, squared_total = hidden_total + hidden, squared_total + mean * hidden
            errors[r, s] = squared_total / hidden_total
    cv = CrossValidation(ranks=ranks, errors=errors, rule=rule, best_rank=0, loss="frobenius",
                         seconds=time.perf_counter() - started,
                         options=dict(holdout=holdout, n_splits=n_splits, seed=seed, model="inmf", lam=lam,
                                      max_iter=max_iter, tol=tol, time_limit=time_limit,
                                      datasets={name: X.shape[0] for name, X in zip(names, Xs)},
                                      errors_by_dataset=by_dataset))
    cv.best_rank = cv.rank_by(rule)
    return cv


def _integrative_start(observed_mean, sizes, g, k, rng) -> dict:
    """iNMF start from the observed entries only: W, H_i ~ U(0, 2√(μ/k)) (so E[(H_i W)_jg] = μ), V_i = 0."""
    scale = 2.0 * np.sqrt(max(observed_mean, np.finfo(np.float64).tiny) / k)
    W = scale * rng.random((k, g))
    return {"W": W, "V": [np.zeros((k, g)) for _ in sizes], "H": [scale * rng.random((n, k)) for n in sizes]}
