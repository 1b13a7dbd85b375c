"""Divisive clustering of samples (columns of X) by recursive rank-2 NMF.

`bipartition(X)` splits a set of samples in two: a rank-2 NMF X[:, S] ≈ W H (through `nmfkit.fit`,
any Frobenius solver), with each row of H scaled to sum 1 (so the split does not depend on how
scale is shared between W and H), and v = H[0] − H[1]; samples with v > 0 form the first group,
the others the second.  The sign of v is the rank-2 analogue of spectral bipartitioning (Kuang &
Park, KDD 2013, "fast rank-2 NMF for hierarchical document clustering"; RcppML's `bipartition`).

How distinct the two groups are is measured by cosine distances to the two group centres
(the mean sample of each group): for sample j with distance a_j to its own centre and b_j to
the other,

    dist = mean_j (b_j − a_j) / max(a_j, b_j)      (0: no separation, 1: every sample on its centre)

a cheap stand-in for modularity that needs no sample-pair distances (the idea of RcppML's
`dist`; the formula here is nmfkit's own).

`dclust(X, min_samples, min_dist)` splits recursively, breadth first: a cluster is split when
both halves keep at least `min_samples` samples and the split's `dist` is at least `min_dist`;
otherwise it is a leaf.  Each rank-2 fit is a full `nmfkit.fit` (stopping rules, validation), so
every split is a local optimum of its rank-2 NMF, not a global one; the clustering is
deterministic for a given seed.  Sparse X is never densified (only the columns of the cluster
being split are selected, and centres are computed with sparse sums).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .validation import check_matrix, check_nonneg_float, check_positive_int, seeded_rng


@dataclass
class Bipartition:
    """One split of `samples` (indices into X's columns): `samples1` (v > 0) and `samples2`; `v` the
    difference of the two sum-1 rows of H; `center1`/`center2` the groups' mean samples; `dist` the
    separation (module docstring); `fit` the rank-2 Factorization."""
    samples1: np.ndarray
    samples2: np.ndarray
    v: np.ndarray
    dist: float
    center1: np.ndarray
    center2: np.ndarray
    fit: object = field(repr=False, default=None)

    @property
    def size1(self) -> int:
        return len(self.samples1)

    @property
    def size2(self) -> int:
        return len(self.samples2)


@dataclass
class Cluster:
    """A leaf of the divisive clustering: `id` is its path of splits ("" the whole set, then "0" for
    a first half and "1" for a second half at each level), `samples` its column indices, `center` its
    mean sample, `dist` the separation of the split that made it (NaN for the root)."""
    id: str
    samples: np.ndarray
    center: np.ndarray
    dist: float


@dataclass
class DivisiveClustering:
    """The leaves of `dclust` (ordered by id) and `labels`, each sample's leaf index."""
    clusters: list
    labels: np.ndarray

    @property
    def n_clusters(self) -> int:
        return len(self.clusters)


def _columns(X, samples):
    return X[:, samples]


def _center(X, samples) -> np.ndarray:
    """Mean of the chosen columns (dense float64 vector)."""
    sub = _columns(X, samples)
    return np.asarray(sub.mean(axis=1, dtype=np.float64)).ravel()


def _cosine_distances(X, samples, center) -> np.ndarray:
    """1 − cos(x_j, center) for the chosen columns."""
    sub = _columns(X, samples)
    dots = np.asarray(sub.T @ center, dtype=np.float64).ravel()
    if sp.issparse(sub):
        norms = np.sqrt(np.asarray(sub.multiply(sub).sum(axis=0), dtype=np.float64).ravel())
    else:
        norms = np.linalg.norm(sub.astype(np.float64, copy=False), axis=0)
    denom = norms * np.linalg.norm(center)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.where(denom > 0, dots / denom, 0.0)
    return 1.0 - np.clip(cos, -1.0, 1.0)


def separation(X, samples1, samples2, center1=None, center2=None) -> float:
    """mean over samples of (b − a) / max(a, b): a, b the cosine distances to the own and other centre."""
    c1 = _center(X, samples1) if center1 is None else center1
    c2 = _center(X, samples2) if center2 is None else center2
    a = np.concatenate([_cosine_distances(X, samples1, c1), _cosine_distances(X, samples2, c2)])
    b = np.concatenate([_cosine_distances(X, samples1, c2), _cosine_distances(X, samples2, c1)])
    top = np.maximum(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(top > 0, (b - a) / top, 0.0)
    return float(rel.mean())


def _check_samples(samples, n) -> np.ndarray:
    if samples is None:
        return np.arange(n)
    idx = np.asarray(samples)
    if idx.ndim != 1 or idx.size < 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"samples must be a 1-D array of at least 2 column indices; got {samples!r}")
    if idx.min() < 0 or idx.max() >= n or len(np.unique(idx)) != idx.size:
        raise ValueError(f"samples must be distinct column indices in [0, {n}); got {idx.min()}..{idx.max()}"
                         f" with {idx.size - len(np.unique(idx))} repeated")
    return idx


def _split(X, samples, seed, fit_options) -> Bipartition:
    """Rank-2 NMF of X[:, samples] and the sign split of its scaled H rows."""
    from .fit import fit
    result = fit(_columns(X, samples), 2, seed=seed, **fit_options)
    H = np.asarray(result.H, dtype=np.float64)
    sums = H.sum(axis=1, keepdims=True)
    H = H / np.where(sums > 0, sums, 1.0)
    v = H[0] - H[1]
    first = v > 0
    s1, s2 = samples[first], samples[~first]
    if len(s1) == 0 or len(s2) == 0:
        c = _center(X, samples)
        return Bipartition(s1, s2, v, 0.0, c, c, result)
    c1, c2 = _center(X, s1), _center(X, s2)
    return Bipartition(s1, s2, v, separation(X, s1, s2, c1, c2), c1, c2, result)


def bipartition(X, samples=None, *, seed=None, tol=1e-5, max_iter=100, solver="auto", **fit_options) -> Bipartition:
    """Split the samples (columns) of non-negative X in two by the sign of the difference of the rows of a
    rank-2 NMF's H (each scaled to sum 1).

    samples: column indices to split (default: all); the result's indices refer to X's columns.
    seed, tol, max_iter, solver and other keyword arguments go to `nmfkit.fit` for the rank-2 fit.
    Returns a `Bipartition` (groups, v, centres, separation `dist`, the rank-2 fit)."""
    X = check_matrix(X, "X")
    samples = _check_samples(samples, X.shape[1])
    if X.shape[0] < 2:
        raise ValueError(f"bipartition needs a rank-2 NMF, so X needs at least 2 rows; got {X.shape[0]}")
    return _split(X, samples, seed, {"tol": tol, "max_iter": max_iter, "solver": solver, **fit_options})


def dclust(X, min_samples, min_dist=0.0, *, seed=None, tol=1e-5, max_iter=100, solver="auto",
           max_clusters=None, **fit_options) -> DivisiveClustering:
    """Divisive clustering of X's columns by recursive `bipartition` (see the module docstring).

    min_samples: a split is kept only if both halves have at least this many samples.
    min_dist: ... and only if its separation `dist` is at least this (0: no such check).
    max_clusters: stop splitting once there are this many leaves (default: no limit).
    seed: all rank-2 fits draw their seeds from it; tol, max_iter, solver and other keyword
    arguments go to `nmfkit.fit`.  Returns a `DivisiveClustering` (leaves and per-sample labels)."""
    X = check_matrix(X, "X")
    min_samples = check_positive_int(min_samples, "min_samples")
    min_dist = check_nonneg_float(min_dist, "min_dist")
    if max_clusters is not None:
        max_clusters = check_positive_int(max_clusters, "max_clusters")
    options = {"tol": tol, "max_iter": max_iter, "solver": solver, **fit_options}
    rng = seeded_rng(seed)
    n = X.shape[1]
    queue = [Cluster("", np.arange(n), _center(X, np.arange(n)), float("nan"))]
    leaves = []
    while queue:
        node = queue.pop(0)
        split = None
        room = max_clusters is None or len(leaves) + len(queue) + 2 <= max_clusters
        if room and len(node.samples) >= 2 * min_samples and X.shape[0] >= 2 and _has_signal(X, node.samples):
            split = _split(X, node.samples, int(rng.integers(2 ** 31)), options)
            if min(split.size1, split.size2) < min_samples or split.dist < min_dist:
                split = None
        if split is None:
            leaves.append(node)
            continue
        queue.append(Cluster(node.id + "0", split.samples1, split.center1, split.dist))
        queue.append(Cluster(node.id + "1", split.samples2, split.center2, split.dist))
    leaves.sort(key=lambda c: c.id)
    labels = np.empty(n, dtype=np.int64)
    for i, leaf in enumerate(leaves):
        labels[leaf.samples] = i
    return DivisiveClustering(leaves, labels)


def _has_signal(X, samples) -> bool:
    """Whether the cluster's columns have at least two non-zero rows and columns (a rank-2 fit makes sense)."""
    sub = _columns(X, samples)
    nz_rows = np.count_nonzero(np.asarray(abs(sub).sum(axis=1)).ravel())
    nz_cols = np.count_nonzero(np.asarray(abs(sub).sum(axis=0)).ravel())
    return nz_rows >= 2 and nz_cols >= 2
