"""The driver: stopping rules, callback, history, best-so-far and Ctrl-C safety."""
import warnings

import numpy as np
import pytest

import nmfkit

X = np.random.default_rng(0).random((30, 20))


def test_tol_zero_runs_exactly_max_iter():
    res = nmfkit.fit(X, 3, solver="mu", tol=0, max_iter=37)
    assert res.n_iter == 37 and res.stop_reason == "max_iter" and not res.converged
    assert len(res.history["objective"]) == 38  # iteration 0 is the start
    assert list(res.history["iteration"][:3]) == [0, 1, 2]


def test_converges_with_tolerance():
    res = nmfkit.fit(X, 3, solver="mu", tol=1e-3, max_iter=5000)
    assert res.converged and res.stop_reason == "converged" and res.n_iter < 5000


def test_callback_stops_and_sees_state():
    seen = []

    def cb(state):
        seen.append((state.iteration, state.objective, state.H.shape))
        return state.iteration == 5

    res = nmfkit.fit(X, 3, solver="mu", tol=0, max_iter=100, callback=cb)
    assert res.stop_reason == "callback" and res.n_iter == 5
    assert seen[-1][0] == 5 and seen[0][2] == (3, 20)


def test_time_limit():
    res = nmfkit.fit(X, 3, solver="mu", tol=0, max_iter=10**7, time_limit=0.2)
    assert res.stop_reason == "time_limit" and res.history["seconds"][-1] < 5


def test_interrupt_returns_best_so_far():
    def cb(state):
        if state.iteration == 12:
            raise KeyboardInterrupt

    with pytest.warns(RuntimeWarning, match="interrupted at iteration 12"):
        res = nmfkit.fit(X, 3, solver="mu", tol=0, max_iter=1000, callback=cb)
    assert res.stop_reason == "interrupted" and res.n_iter == 12
    assert np.isfinite(res.loss) and res.loss == pytest.approx(res.history["objective"][-1])


def test_n_runs_keeps_best_and_is_reproducible():
    a = nmfkit.fit(X, 3, solver="mu", init="random", n_runs=4, seed=7, max_iter=50)
    b = nmfkit.fit(X, 3, solver="mu", init="random", n_runs=4, seed=7, max_iter=50)
    assert len(a.runs) == 4 and a.loss == min(r["loss"] for r in a.runs)
    np.testing.assert_array_equal(a.W, b.W)
    assert len({r["seed"] for r in a.runs}) == 4


def test_seed_reproducibility_and_difference():
    a = nmfkit.fit(X, 3, solver="mu", init="random", seed=1, max_iter=20)
    b = nmfkit.fit(X, 3, solver="mu", init="random", seed=1, max_iter=20)
    c = nmfkit.fit(X, 3, solver="mu", init="random", seed=2, max_iter=20)
    np.testing.assert_array_equal(a.H, b.H)
    assert not np.array_equal(a.H, c.H)


def test_relative_error_matches_definition():
    res = nmfkit.fit(X, 4, solver="mu", seed=0)
    expected = np.linalg.norm(X - res.W @ res.H) / np.linalg.norm(X)
    assert res.relative_error == pytest.approx(expected, rel=1e-10)
    assert res.loss == pytest.approx(0.5 * np.linalg.norm(X - res.W @ res.H) ** 2, rel=1e-8)


def test_no_warning_on_normal_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nmfkit.fit(X, 2, solver="mu", max_iter=10)
