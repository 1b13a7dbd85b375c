"""The rank tools on several data sets (iNMF): consensus of a joint clustering of the cells of all data
sets, and cross-validation by held-out entries of each X_i, on data planted from the iNMF model."""
import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit.joint import inmf, inmf_observed
from nmfkit.rank import consensus, cross_validate_rank, estimate_rank
from nmfkit.rank.consensus import canonical_labels, run_seeds
from nmfkit.rank.cross_validation import speckled_mask

K, G = 3, 30


def planted(seed=0, sizes=(40, 30), noise=0.02):
    """X_i = H_i (W + V_i) (1 + noise·ε): every cell loads mainly on one component (its cluster)."""
    rng = np.random.default_rng(seed)
    W = 0.1 * rng.random((K, G))
    W[np.arange(K).repeat(G // K), np.arange(G)] += 1.0          # component c owns genes c·10 … c·10 + 9
    Xs, labels = [], []
    for n in sizes:
        cluster = rng.integers(0, K, n)
        H = 0.05 * rng.random((n, K))
        H[np.arange(n), cluster] += 1.0 + rng.random(n)
        V = 0.2 * rng.random((K, G)) * (rng.random((K, G)) < 0.2)
        Xs.append(np.maximum(H @ (W + V) * (1 + noise * rng.standard_normal((n, G))), 0))
        labels.append(cluster)
    return Xs, labels


def test_consensus_clusters_the_cells_of_all_data_sets_from_repeated_inmf_runs():
    Xs, labels = planted()
    data = {"first": Xs[0], "second": sp.csr_matrix(Xs[1])}
    result = consensus(data, K, n_runs=3, seed=5, n_jobs=1, progress=False, lam=1.0, max_iter=15)
    # the definition: each run's labels are the argmax of each H_i row, data sets concatenated in order
    t, s = 1, run_seeds(5, 3)[1]
    run = inmf(data, K, seed=s, lam=1.0, max_iter=15)
    np.testing.assert_array_equal(result.assignments[t], np.concatenate([H.argmax(axis=1) for H in run.H]))
    assert result.objectives[t] == run.loss
    assert result.consensus.shape == (70, 70) and result.options["datasets"] == {"first": 40, "second": 30}
    truth = canonical_labels(np.concatenate(labels))
    np.testing.assert_array_equal(result.sample_clusters, truth)       # the planted joint clustering
    assert result.cophenetic == pytest.approx(1.0) and result.dispersion == pytest.approx(1.0)
    assert result.best.loss == result.objectives.min() and result.feature_clusters.shape == (G,)
    np.testing.assert_array_equal(np.bincount(result.feature_clusters), [10, 10, 10])   # genes by owner


def test_integrative_consensus_stops_on_connectivity_and_refuses_what_is_undefined():
    Xs, _ = planted(seed=1, sizes=(30, 25))
    result = consensus(Xs, K, n_runs=2, seed=0, n_jobs=1, progress=False, stop="connectivity", max_iter=25)
    assert result.n_iter.max() <= 25 and result.options["stop"] == "connectivity"
    refusals = [(dict(solver="hals"), ValueError, "solver='hals' does not apply"),
                (dict(loss="kl"), ValueError, "loss='kl' is not defined"),
                (dict(init="nndsvd"), ValueError, "init='nndsvd' does not apply"),
                (dict(callback=print), TypeError, "got callback"),
                (dict(lam=-1.0), ValueError, "lam")]
    for options, error, message in refusals:
        with pytest.raises(error, match=message):
            consensus(Xs, K, n_runs=2, progress=False, n_jobs=1, **options)
    with pytest.raises(ValueError, match="same features"):
        consensus([Xs[0], Xs[1][:, :20]], K, n_runs=2, progress=False, n_jobs=1)


def test_inmf_on_observed_entries_descends_and_ignores_the_hidden_values():
    Xs, _ = planted(seed=2, sizes=(30, 25))
    rng = np.random.default_rng(0)
    masks = [speckled_mask(X.shape, 0.2, rng) for X in Xs]
    init = {"W": rng.random((K, G)), "V": [np.zeros((K, G))] * 2, "H": [rng.random((30, K)), rng.random((25, K))]}
    fit = inmf_observed(Xs, masks, K, lam=0.5, init=init, max_iter=40, tol=0)
    objective = fit.history["objective"]
    assert np.all(np.diff(objective) <= 1e-12 * objective[0]) and not fit.monotonicity   # majorize-minimize
    direct = sum(np.sum(np.where(M, X - H @ (fit.W + V), 0) ** 2) + 0.5 * np.sum((H @ V) ** 2)
                 for X, M, H, V in zip(Xs, masks, fit.H, fit.V))
    assert fit.loss == pytest.approx(direct, rel=1e-10)
    scrambled = [np.where(M, X, 1e6) for X, M in zip(Xs, masks)]      # other values at the hidden entries
    again = inmf_observed(scrambled, masks, K, lam=0.5, init=init, max_iter=40, tol=0)
    np.testing.assert_array_equal(again.W, fit.W)


def test_cross_validation_of_several_data_sets_finds_the_planted_rank():
    Xs, _ = planted(seed=3, sizes=(40, 30), noise=0.05)
    # a small λ: a large one biases the prediction H_i(W + V_i), and a larger rank then predicts better
    # (measured with λ = 0.5: rank 4 0.0031 < rank 3 0.0036)
    cv = cross_validate_rank({"a": Xs[0], "b": Xs[1]}, [2, 3, 4], n_splits=2, seed=0, lam=0.05, max_iter=40)
    errors = cv.options["errors_by_dataset"]
    # the error is the hidden squared error summed over data sets, per hidden entry
    hidden = np.array([round(0.1 * X.size) for X in Xs], dtype=float)
    np.testing.assert_allclose(cv.errors, (errors["a"] * hidden[0] + errors["b"] * hidden[1]) / hidden.sum(),
                               rtol=1e-12)
    noise = np.mean(np.concatenate([(0.05 * X).ravel() ** 2 for X in Xs]))   # E[(X − truth)²] ≈ this
    assert cv.mean[0] > 20 * noise                          # rank 2 underfits the three planted components
    assert cv.mean[1] < 1.5 * noise                         # rank 3 predicts to the noise (measured 0.96×)
    assert cv.mean[2] > cv.mean[1]                          # rank 4 fits the noise (measured +21 %)
    assert cv.best_rank == cv.rank_by("1se") == 3


def test_integrative_cross_validation_refuses_what_is_undefined(tmp_path):
    Xs, _ = planted(seed=4, sizes=(20, 20))
    np.save(tmp_path / "x.npy", Xs[0])
    refusals = [(dict(loss="kl"), ValueError, "loss='kl' is not defined"),
                (dict(solver="mu"), ValueError, "solver='mu' does not apply"),
                (dict(unshared=[None, None]), TypeError, "got unshared"),
                (dict(holdout=1.0), ValueError, "holdout")]
    for options, error, message in refusals:
        with pytest.raises(error, match=message):
            cross_validate_rank(Xs, [2, 3], **options)
    with pytest.raises(ValueError, match="holds them in memory"):
        cross_validate_rank([str(tmp_path / "x.npy"), Xs[1]], [2, 3])


def test_estimate_rank_refuses_several_data_sets_by_name():
    Xs = [np.random.default_rng(0).random((10, 8)), np.random.default_rng(1).random((10, 6))]
    with pytest.raises(TypeError, match="estimate_rank surveys one matrix"):
        estimate_rank(Xs, [2, 3])
