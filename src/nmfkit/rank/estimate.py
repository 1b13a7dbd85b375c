"""Rank survey: consensus stability and fit quality for each candidate rank.

For each rank k, `consensus(X, k, n_runs, …)` (R NMF's `nmfEstimateRank`: the
same seed, hence the same random streams, for every rank) and, from its best
fit (W, H):

    rss         ‖X − W H‖²_F
    evar        1 − rss / ‖X‖²_F                       (explained variance)
    sparseness  Hoyer (2004) (√p − ‖x‖₁/‖x‖₂)/(√p − 1), averaged over the
                columns of W (p = m) and over the columns of H (p = k), as R NMF
    cophenetic, dispersion, silhouette   of the consensus matrix (consensus.py)
    objective_mean, objective_min        over the runs; seconds of wall time.

`randomized=True` repeats the survey on `randomize(X)`, X with the entries of
each column permuted (R NMF's `randomize`), which keeps the column
distributions but destroys the structure across rows: a rank is supported when
its measures beat the randomised ones (Frigyesi & Höglund 2008), e.g. the RSS
decrease per added component is larger on the real data.

Cost: 2 × len(ranks) × n_runs fits; memory O((m + n) k + n²) per rank.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..validation import check_matrix, check_seed, seeded_rng
from .consensus import ConsensusResult, RunPool, check_consensus_runs, consensus

MEASURES = ("cophenetic", "dispersion", "silhouette", "rss", "evar", "sparseness_W", "sparseness_H",
            "objective_mean", "objective_min", "seconds")


def hoyer_sparseness(A, axis=0) -> float:
    """Mean Hoyer sparseness of the vectors along `axis` (columns by default): 0 dense … 1 one-hot."""
    A = np.abs(np.asarray(A, dtype=np.float64))
    p = A.shape[axis]
    if p < 2:
        return float("nan")
    l1 = A.sum(axis=axis)
    l2 = np.sqrt((A * A).sum(axis=axis))
    ratio = np.divide(l1, l2, out=np.full_like(l1, np.sqrt(p)), where=l2 > 0)
    return float(np.mean((np.sqrt(p) - ratio) / (np.sqrt(p) - 1.0)))


def randomize(X, seed=None):
    """X with the entries of each column randomly permuted (R NMF's `randomize`).

    Sparse input stays sparse: each column's stored values move to random rows."""
    rng = seeded_rng(seed)
    X = check_matrix(X, "X")
    if not sp.issparse(X):
        return rng.permuted(X, axis=0)
    Xc = X.tocsc()
    m = Xc.shape[0]
    rows = np.empty_like(Xc.indices)
    for j in range(Xc.shape[1]):
        lo, hi = Xc.indptr[j], Xc.indptr[j + 1]
        rows[lo:hi] = rng.choice(m, hi - lo, replace=False)
    out = sp.csc_matrix((Xc.data.copy(), rows, Xc.indptr.copy()), shape=Xc.shape)
    out.sort_indices()
    return out.tocsr()


def survey_row(X_sqnorm, result: ConsensusResult) -> dict:
    """One table row (the measures of MEASURES) for a rank's consensus result."""
    best = result.best
    rss = float(best.relative_error ** 2 * X_sqnorm)
    return {"rank": result.rank, "cophenetic": result.cophenetic, "dispersion": result.dispersion,
            "silhouette": result.silhouette, "rss": rss, "evar": 1.0 - rss / X_sqnorm,
            "sparseness_W": hoyer_sparseness(best.W, axis=0), "sparseness_H": hoyer_sparseness(best.H, axis=0),
            "objective_mean": float(result.objectives.mean()), "objective_min": float(result.objectives.min()),
            "seconds": result.seconds}


@dataclass
class RankSurvey:
    """Result of `estimate_rank`: per-rank measures on the data and on randomised data."""
    ranks: list
    rows: list                                   # dicts, one per rank (real data)
    random_rows: list | None                     # the same on randomize(X), or None
    consensus: dict = field(default_factory=dict)          # rank -> ConsensusResult
    random_consensus: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def column(self, name, random=False) -> np.ndarray:
        rows = self.random_rows if random else self.rows
        if rows is None:
            raise ValueError("no randomised survey: run estimate_rank(..., randomized=True)")
        return np.array([r[name] for r in rows], dtype=np.float64)

    def records(self) -> list:
        """All rows as dicts with a 'data' field ('real' or 'random')."""
        out = [{"data": "real", **r} for r in self.rows]
        if self.random_rows is not None:
            out += [{"data": "random", **r} for r in self.random_rows]
        return out

    def to_frame(self):
        """A pandas DataFrame (or a NumPy structured array without pandas), one row per rank and data."""
        records = self.records()
        try:
            import pandas as pd
        except ImportError:
            names = list(records[0])
            cols = [np.array([r[k] for r in records]) for k in names]
            return np.rec.fromarrays(cols, names=names)
        return pd.DataFrame.from_records(records)

    def to_csv(self, path) -> str:
        """Write the table as CSV (no pandas needed), atomically."""
        from .._files import atomic_write
        records = self.records()
        names = list(records[0])
        with atomic_write(path, "w", encoding="utf-8") as fh:
            fh.write(",".join(names) + "\n")
            for r in records:
                fh.write(",".join(repr(float(r[k])) if isinstance(r[k], (float, np.floating)) else str(r[k])
                                  for k in names) + "\n")
        return str(path)

    def best_rank(self, measure="cophenetic") -> int:
        """Brunet et al.'s rule for cophenetic/dispersion: the last rank before the largest drop.

        One measure alone can mislead (cophenetic is often 1.0 over several ranks); `verdict()`
        weighs every measure against the randomised baseline."""
        values = self.column(measure)
        if len(values) < 2:
            return int(self.ranks[0])
        drops = values[:-1] - values[1:]
        return int(self.ranks[int(np.nanargmax(drops))])

    def verdict(self, cv=None):
        """One conclusion from every measure computed (and a `CrossValidation`, if given): the rank,
        how sure, one paragraph saying why and where the measures disagree (`nmfkit.rank.verdict`)."""
        from .verdict import rank_verdict
        return rank_verdict(self, cv)

    def plot(self, **kwargs):
        from .plots import survey_plot
        return survey_plot(self, **kwargs)

    def __repr__(self):
        lines = [f"RankSurvey(ranks {self.ranks}, {self.options.get('n_runs')} runs per rank)"]
        lines.append("  rank  cophenetic  dispersion  silhouette        evar")
        for r in self.rows:
            lines.append(f"  {r['rank']:4d}  {r['cophenetic']:10.5f}  {r['dispersion']:10.5f}  "
                         f"{r['silhouette']:10.5f}  {r['evar']:10.5f}")
        return "\n".join(lines)


def parse_ranks(ranks, shape) -> list:
    """A list of distinct ranks in increasing order, each in 1…min(m, n)."""
    if isinstance(ranks, (int, np.integer)) and not isinstance(ranks, bool):
        ranks = [ranks]
    try:
        ranks = sorted({int(r) for r in ranks})
    except (TypeError, ValueError):
        raise TypeError(f"ranks must be integers (e.g. range(2, 8)); got {ranks!r}") from None
    limit = min(shape)
    bad = [r for r in ranks if r < 1 or r > limit]
    if not ranks or bad:
        raise ValueError(f"ranks must be non-empty integers in 1…{limit} for a {shape[0]}×{shape[1]} matrix; "
                         f"got {bad or ranks}")
    return ranks


def estimate_rank(X, ranks, n_runs=30, solver="mu", loss="kl", seed=None, randomized=True, n_jobs=-1,
                  progress=True, keep_consensus=True, **fit_kwargs) -> RankSurvey:
    """Survey candidate ranks: consensus stability and fit quality per rank.

    X : non-negative matrix (dense or sparse), features × samples; clusters are
        over the columns (samples).
    ranks : iterable of ranks, e.g. range(2, 6).
    n_runs : random restarts per rank (30–50 suffice to rank; 100+ for a final consensus).
    randomized : also survey `randomize(X)` (seeded from `seed`), the chance baseline.
    keep_consensus : keep each rank's ConsensusResult (n×n matrix and best fit).
    Other arguments go to `consensus` and `nmfkit.fit`.
    Returns a `RankSurvey` (`.verdict()`, `.to_frame()`, `.plot()`).
    """
    if isinstance(X, dict) or (isinstance(X, (list, tuple)) and len(X) and hasattr(X[0], "shape")):
        raise TypeError("estimate_rank surveys one matrix; for several data sets (iNMF) use "
                        "nmfkit.consensus(Xs, rank) and nmfkit.cross_validate_rank(Xs, ranks)")
    X = check_matrix(X, "X")
    ranks = parse_ranks(ranks, X.shape)
    n_runs = check_consensus_runs(n_runs)
    sqnorm = float(X.multiply(X).sum() if sp.issparse(X) else np.einsum("ij,ij->", X, X, dtype=np.float64))
    seed = check_seed(seed)
    seed_seq = np.random.SeedSequence(seed)
    fit_seed = int(seed_seq.generate_state(1, dtype=np.uint64)[0])
    shuffle_seed = seed_seq.spawn(1)[0]
    options = dict(n_runs=n_runs, solver=solver, loss=loss, seed=seed, randomized=randomized, **fit_kwargs)
    started = time.perf_counter()

    def survey(data, norm, what=""):
        rows, kept = [], {}
        with RunPool.shared(data, n_jobs, n_runs) as pool:
            for k in ranks:                      # the same seed for every rank, as R NMF
                res = consensus(data, k, n_runs=n_runs, solver=solver, loss=loss, seed=fit_seed,
                                n_jobs=n_jobs, progress=progress, pool=pool,
                                progress_label=f"consensus k={k}{what}", **fit_kwargs)
                rows.append(survey_row(norm, res))
                if keep_consensus:
                    kept[k] = res
        return rows, kept

    rows, kept = survey(X, sqnorm)
    random_rows, random_kept = None, {}
    if randomized:
        Xr = randomize(X, shuffle_seed)
        random_rows, random_kept = survey(Xr, sqnorm, " (randomised data)")    # permutation keeps ‖X‖²
    options["seconds"] = time.perf_counter() - started
    return RankSurvey(ranks=ranks, rows=rows, random_rows=random_rows, consensus=kept,
                      random_consensus=random_kept, options=options)
