"""Average-linkage (UPGMA) clustering with R's `hclust` merge order.

Consensus matrices are full of ties (entries are multiples of 1/r), and with
ties different agglomeration algorithms merge different pairs, which changes
the cophenetic correlation and the cut clusters.  To give R NMF's numbers
exactly, this follows the nearest-neighbour-list algorithm of R's `hclust`
(F. Murtagh's hclust.f as shipped with R): keep each cluster's nearest
neighbour among the higher-numbered clusters; merge the first pair (lowest
index) of least dissimilarity; the merged cluster takes the lower index i₂;
Lance–Williams update for average linkage

    d(i₂ ∪ j₂, k) = (|i₂| d(i₂, k) + |j₂| d(j₂, k)) / (|i₂| + |j₂|)

in that floating-point order, so ties break exactly as in R.

Cost: O(n²) memory, n − 1 merges of O(n) vector work each, plus O(n) per
sample whose nearest neighbour was merged: O(n²)–O(n³) time, immaterial for
the sample counts consensus clustering handles (n ≤ a few thousand).
Returns a SciPy linkage matrix, so `scipy.cluster.hierarchy` (cophenet,
cut_tree, dendrogram) works on it.
"""
from __future__ import annotations

import numpy as np


def average_linkage(D) -> np.ndarray:
    """UPGMA tree of a symmetric n×n dissimilarity matrix, R `hclust(method="average")` order.

    Returns Z ((n−1)×4: cluster a, cluster b, height, size) in SciPy's format."""
    D = np.array(D, dtype=np.float64)           # a private copy: it is updated in place
    n = D.shape[0]
    if n < 2:
        return np.zeros((0, 4))
    inf = np.inf
    active = np.ones(n, dtype=bool)
    size = np.ones(n)
    cluster_id = np.arange(n)                   # SciPy id of the cluster represented by each index
    upper = np.triu(D, 1) + np.tril(np.full((n, n), inf))   # D[i, j] for j > i, else ∞
    nn = np.argmin(upper, axis=1)               # first minimum = Fortran's strict "<" scan
    disnn = upper[np.arange(n), nn]
    disnn[n - 1] = inf
    Z = np.zeros((n - 1, 4))
    for step in range(n - 1):
        candidates = np.where(active, disnn, inf)
        candidates[n - 1] = inf
        im = int(np.argmin(candidates))
        height = candidates[im]
        i2, j2 = sorted((im, int(nn[im])))
        Z[step] = (cluster_id[i2], cluster_id[j2], height, size[i2] + size[j2])
        cluster_id[i2] = n + step
        active[j2] = False
        others = np.flatnonzero(active)
        others = others[others != i2]
        merged = (size[i2] * D[i2, others] + size[j2] * D[j2, others]) / (size[i2] + size[j2])
        D[i2, others] = merged
        D[others, i2] = merged
        above = others > i2
        if above.any():
            pos = int(np.argmin(merged[above]))
            disnn[i2], nn[i2] = merged[above][pos], others[above][pos]
        else:
            disnn[i2] = inf
        below, vals = others[~above], merged[~above]
        closer = vals < disnn[below]             # lower-index clusters may now be nearest to i₂
        disnn[below[closer]] = vals[closer]
        nn[below[closer]] = i2
        size[i2] += size[j2]
        stale = np.flatnonzero(active & ((nn == i2) | (nn == j2)))
        for i in stale[stale < n - 1]:
            later = np.flatnonzero(active[i + 1:]) + i + 1
            if later.size:
                pos = int(np.argmin(D[i, later]))
                disnn[i], nn[i] = D[i, later[pos]], later[pos]
            else:
                disnn[i] = inf
    return Z
