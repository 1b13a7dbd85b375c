"""Divisive clustering by recursive rank-2 NMF (nmfkit.bipartition, nmfkit.dclust): planted sample
groups recovered exactly, the stopping rules, dense = sparse, clear refusals."""
from collections import Counter

import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit
from nmfkit.cluster import separation


def grouped(m=80, k=4, per=25, seed=0):
    """Samples of k groups: each a group profile times a random size, plus 5 % background; shuffled."""
    rng = np.random.default_rng(seed)
    P = rng.random((m, k)) * (rng.random((m, k)) < 0.3)
    P[np.arange(m), np.arange(m) % k] += 1.0
    labels = np.repeat(np.arange(k), per)
    X = P[:, labels] * rng.uniform(0.5, 1.5, labels.size) + 0.05 * rng.random((m, labels.size))
    order = rng.permutation(labels.size)
    return X[:, order], labels[order]


def same_partition(a, b) -> bool:
    """Whether two labelings define the same groups (up to renaming)."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_dclust_recovers_planted_groups(sparse, seed):
    X, labels = grouped(seed=seed)
    data = sp.csr_matrix(X) if sparse else X
    before = data.copy()
    result = nmfkit.dclust(data, min_samples=5, min_dist=0.5, seed=0)
    assert result.n_clusters == 4
    assert same_partition(result.labels, labels)
    for i, c in enumerate(result.clusters):
        assert (result.labels[c.samples] == i).all()
        np.testing.assert_allclose(c.center, X[:, c.samples].mean(axis=1))
        assert c.dist >= 0.5                      # every accepted split passed min_dist
    assert ((data != before).nnz if sparse else (data != before).sum()) == 0


def test_dense_and_sparse_give_the_same_tree():
    X, _ = grouped(seed=2)
    a = nmfkit.dclust(X, min_samples=5, min_dist=0.5, seed=3)
    b = nmfkit.dclust(sp.csr_matrix(X), min_samples=5, min_dist=0.5, seed=3)
    assert [c.id for c in a.clusters] == [c.id for c in b.clusters]
    np.testing.assert_array_equal(a.labels, b.labels)


def test_stopping_rules():
    X, labels = grouped(seed=0)
    # without min_dist, groups are split further until min_samples stops it
    fine = nmfkit.dclust(X, min_samples=5, seed=0)
    assert fine.n_clusters > 4
    assert min(len(c.samples) for c in fine.clusters) >= 5
    for c in fine.clusters:                         # no leaf mixes two planted groups
        assert len(Counter(labels[c.samples].tolist())) == 1
    # a cluster smaller than 2 × min_samples is never split
    assert nmfkit.dclust(X, min_samples=51).n_clusters == 1
    assert nmfkit.dclust(X, min_samples=5, max_clusters=2, seed=0).n_clusters == 2
    # an impossible separation keeps the root
    assert nmfkit.dclust(X, min_samples=1, min_dist=1.0, seed=0).n_clusters == 1


def test_bipartition_of_a_subset():
    X, labels = grouped(seed=1)
    subset = np.flatnonzero(labels < 2)
    split = nmfkit.bipartition(X, samples=subset, seed=0)
    assert split.size1 + split.size2 == subset.size
    assert {len(set(labels[split.samples1])), len(set(labels[split.samples2]))} == {1}
    assert set(labels[split.samples1]) != set(labels[split.samples2])
    assert split.dist > 0.9                         # two planted groups: nearly every sample on its centre
    assert split.v.shape == (subset.size,) and ((split.v > 0) == np.isin(subset, split.samples1)).all()
    assert split.fit.rank == 2 and split.fit.options["solver"] == "hals"
    assert separation(X, split.samples1, split.samples2) == pytest.approx(split.dist)


def test_bad_arguments_are_refused():
    X, _ = grouped()
    with pytest.raises(ValueError, match="min_samples must be an integer ≥ 1"):
        nmfkit.dclust(X, min_samples=0)
    with pytest.raises(ValueError, match="min_dist must be a finite number ≥ 0"):
        nmfkit.dclust(X, min_samples=2, min_dist=-1)
    with pytest.raises(ValueError, match="samples must be distinct column indices"):
        nmfkit.bipartition(X, samples=[0, 0, 1])
    with pytest.raises(ValueError, match="samples must be a 1-D array of at least 2"):
        nmfkit.bipartition(X, samples=[3])
    with pytest.raises(ValueError, match="negative"):
        nmfkit.dclust(X - 1.0, min_samples=2)
