"""Projected SGD (seed 001): stays non-negative, reaches the seed's ‖A − WH‖_F < 0.01, handles masks."""
import numpy as np
import pytest
import scipy.sparse as sp
from _planted import low_rank_with_noise_level as planted

import nmfkit


def test_reaches_the_seed_threshold_on_an_exactly_low_rank_matrix():
    """Seed 001: train until ‖A − WH‖_F < 0.01 — here with W, H kept ≥ 0."""
    rng = np.random.default_rng(0)
    A = rng.random((5, 2)) @ rng.random((2, 6))                 # small, exactly rank 2
    f = nmfkit.fit(A, 2, solver="sgd", target_error=0.01, batch_size=8, max_iter=5000, tol=0, seed=0)
    assert f.stop_reason == "target" and f.converged
    assert np.linalg.norm(A - f.W @ f.H) < 0.01
    assert f.W.min() >= 0 and f.H.min() >= 0


@pytest.mark.parametrize("kind", ["dense", "sparse", "masked"])
def test_stays_non_negative_and_fits(kind):
    X, noise = planted()
    kw = {}
    if kind == "sparse":
        X = sp.csr_matrix(X * (X > np.quantile(X, 0.3)))
    if kind == "masked":
        kw["mask"] = np.random.default_rng(1).random(X.shape) > 0.2
    f = nmfkit.fit(X, 3, solver="sgd", max_iter=200, tol=0, seed=0, **kw)
    assert f.options["engine"] == kind
    assert f.W.min() >= 0 and f.H.min() >= 0 and np.isfinite(f.W).all()
    # as good as a deterministic solver's fit of the same data, nearly
    ref = nmfkit.fit(X, 3, solver="pgd", max_iter=300, tol=0, seed=0, **kw)
    assert f.loss <= 1.25 * ref.loss, (f.loss, ref.loss)


def test_recovers_planted_data_with_enough_epochs():
    X, noise = planted()
    f = nmfkit.fit(X, 3, solver="sgd", max_iter=300, tol=0, seed=0)
    assert f.relative_error < 2.0 * noise, (f.relative_error, noise)


def test_reproducible_from_the_seed_and_shuffled_per_run():
    X, _ = planted(30, 20)
    a = nmfkit.fit(X, 2, solver="sgd", max_iter=5, tol=0, seed=3)
    b = nmfkit.fit(X, 2, solver="sgd", max_iter=5, tol=0, seed=3)
    c = nmfkit.fit(X, 2, solver="sgd", max_iter=5, tol=0, seed=4)
    np.testing.assert_array_equal(a.W, b.W)
    assert not np.array_equal(a.W, c.W)
    # same start, different shuffles (n_runs spawns a stream per run): different iterates
    runs = nmfkit.fit(X, 2, solver="sgd", max_iter=5, tol=0, seed=3, n_runs=2)
    assert runs.runs[0]["loss"] != runs.runs[1]["loss"]


def test_l2_shrinks_the_factors_and_is_part_of_the_objective():
    X, _ = planted()
    plain = nmfkit.fit(X, 3, solver="sgd", max_iter=40, tol=0, seed=0)
    reg = nmfkit.fit(X, 3, solver="sgd", l2=5.0, max_iter=40, tol=0, seed=0)
    size = lambda f: np.sum(f.W ** 2) + np.sum(f.H ** 2)      # noqa: E731
    assert size(reg) < size(plain)
    data = 0.5 * np.sum((X - reg.W @ reg.H) ** 2)
    assert reg.loss == pytest.approx(data + 0.5 * 5.0 * size(reg), rel=1e-9)


@pytest.mark.parametrize("kw", [{"learning_rate": 0.002}, {"schedule": "invscaling"}, {"batch_size": 1},
                                {"batch_size": 10_000}])
def test_rates_schedules_and_batches(kw):
    X, _ = planted(30, 20)
    max_iter = 15 if kw.get("batch_size") == 1 else 80
    f = nmfkit.fit(X, 3, solver="sgd", max_iter=max_iter, tol=0, seed=0, **kw)
    obj = f.history["objective"]
    assert np.isfinite(obj).all() and obj[-1] < 0.1 * obj[0]
    assert f.W.min() >= 0


def test_not_promised_monotone():
    assert nmfkit.registry.SOLVERS["sgd"].monotone is False


@pytest.mark.parametrize("bad,match", [({"learning_rate": -1}, "learning_rate"),
                                       ({"learning_rate": "fast"}, "learning_rate"),
                                       ({"schedule": "cosine"}, "unknown schedule"), ({"batch_size": 0}, "batch_size"),
                                       ({"target_error": -0.1}, "target_error"),
                                       ({"momentum": 0.9}, "unknown options")])
def test_bad_options_are_refused(bad, match):
    X, _ = planted(20, 15)
    with pytest.raises((ValueError, TypeError), match=match):
        nmfkit.fit(X, 2, solver="sgd", max_iter=2, **bad)
