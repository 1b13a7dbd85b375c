"""Which features (genes, words) drive each component: scores, selection, top lists.

Kim & Park (2007) feature score of row i of W (m×k), with p_iq = |W_iq| / Σ_q |W_iq|:

    score_i = 1 + (1 / log₂ k) Σ_q p_iq log₂ p_iq           (0 log 0 = 0)

1 when the feature loads on a single component, 0 when it loads evenly.
Kim & Park's selection keeps features with score ≥ median(score) + 3·MAD(score)
(MAD scaled by 1.4826, as R's `mad`) whose largest loading is at least the
median of |W|, assigns each to its largest component, and orders them by score.
These follow R NMF's `featureScore` and `extractFeatures` (method "kim");
`method="max"` scores a feature by its largest loading.

`top_features` lists the n largest loadings of each component with their labels.
Cost: O(m k) time and memory.
"""
from __future__ import annotations

import numpy as np

from ..validation import check_positive_int, choose


def _basis(W_or_fit):
    """W (m×k float64) and its row labels from an array or a Factorization."""
    names = getattr(W_or_fit, "row_names", None)
    W = getattr(W_or_fit, "W", W_or_fit)
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f"expected a 2-D basis matrix W (features × components); got shape {W.shape}")
    return W, names


def feature_score(W, method="kim") -> np.ndarray:
    """Score of each feature (row of W, or of a Factorization's W): "kim" specificity or "max" loading."""
    method = choose(method, ("kim", "max"), "method")
    W, _ = _basis(W)
    A = np.abs(W)
    if method == "max":
        return A.max(axis=1)
    k = A.shape[1]
    if k < 2:
        return np.ones(A.shape[0])
    total = A.sum(axis=1, keepdims=True)
    P = np.divide(A, total, out=np.zeros_like(A), where=total > 0)
    plogp = np.zeros_like(P)
    np.multiply(P, np.log2(P, where=P > 0, out=np.zeros_like(P)), out=plogp)
    return 1.0 + plogp.sum(axis=1) / np.log2(k)


def _mad(x) -> float:
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def select_features(W, names=None):
    """Kim & Park's feature selection: for each component, the indices of its selected features.

    Returns (selected, threshold): `selected[q]` lists the features assigned to
    component q, highest score first (as labels when `names` or the fit's row
    names are known); `threshold` is median + 3·MAD of the scores."""
    W, fit_names = _basis(W)
    names = fit_names if names is None else list(names)
    if names is not None and len(names) != W.shape[0]:
        raise ValueError(f"got {len(names)} names for {W.shape[0]} features")
    score = feature_score(W, "kim")
    threshold = float(np.median(score) + 3.0 * _mad(score))
    A = np.abs(W)
    top = A.argmax(axis=1)
    keep = (score >= threshold) & (A.max(axis=1) >= np.median(A))
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(-score[idx], kind="stable")]
    selected = []
    for q in range(W.shape[1]):
        rows = idx[top[idx] == q]
        selected.append([names[i] for i in rows] if names is not None else rows.tolist())
    return selected, threshold


def top_features(W_or_fit, names=None, n=10):
    """The n features with the largest loadings in each component.

    Returns one list per component of (label, loading) pairs, largest first;
    labels are `names[i]`, the Factorization's row names, or row indices."""
    W, fit_names = _basis(W_or_fit)
    names = fit_names if names is None else list(names)
    if names is not None and len(names) != W.shape[0]:
        raise ValueError(f"got {len(names)} names for {W.shape[0]} features")
    n = min(check_positive_int(n, "n"), W.shape[0])
    out = []
    for q in range(W.shape[1]):
        col = W[:, q]
        best = np.argpartition(-col, n - 1)[:n]
        best = best[np.lexsort((best, -col[best]))]        # by loading, ties by index
        out.append([(names[i] if names is not None else int(i), float(col[i])) for i in best])
    return out
