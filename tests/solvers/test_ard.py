"""ARD-NMF (solver "ard"): planted ranks recovered from an upper guess, monotone MAP objective,
the exponents, the objective's formula, pruning, and option checks."""
import warnings

import numpy as np
import pytest

import nmfkit
from nmfkit.engines import make_engine
from nmfkit.solvers.ard import ARD, ard_exponent


def _planted(seed, m=60, n=50, k=3):
    rng = np.random.default_rng(seed)
    W, H = rng.gamma(1.0, 1.0, (m, k)), rng.gamma(1.0, 1.0, (k, n))
    return rng, W @ H


def _live(result):
    return int((result.W.any(axis=0) & result.H.any(axis=1)).sum())


def _non_increasing(result):
    o = np.asarray(result.history["objective"])
    # the MAP objective is a float64 sum over m·n entries plus K logarithms: 1e-12 relative is rounding
    return bool(np.all(np.diff(o) <= 1e-12 * np.abs(o[:-1])))


def _fit(X, k, seed, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no monotonicity warning
        return nmfkit.fit(X, k, solver="ard", seed=seed, **options)


CASES = [  # (seed, loss options, (data, planted mean), prior, options); clipping the Gaussian noise at 0
    # biases the mean by less than 0.01 relative here
    (0, dict(loss="kl"), lambda rng, L: (rng.poisson(5 * L).astype(float), 5 * L), "L1", {}),
    (1, dict(loss="frobenius"), lambda rng, L: (np.maximum(L + 0.5 * rng.standard_normal(L.shape), 0), L), "L1", {}),
    (0, dict(loss="frobenius"), lambda rng, L: (np.maximum(L + 0.5 * rng.standard_normal(L.shape), 0), L), "L2", {}),
    (1, dict(beta=1.5), lambda rng, L: (rng.poisson(5 * L).astype(float), 5 * L), "L1", dict(phi=3.0)),
]


@pytest.mark.parametrize("seed,loss,make,prior,extra", CASES)
def test_ard_prunes_to_the_planted_rank(seed, loss, make, prior, extra):
    rng, L = _planted(seed)
    X, mean = make(rng, L)
    ard = _fit(X, 8, seed, prior=prior, max_iter=3000, tol=1e-7, **loss, **extra)
    plain = nmfkit.fit(X, 8, solver="mu", seed=seed, max_iter=300, tol=1e-7, **loss)
    assert _live(ard) == 3 and _live(plain) == 8          # same upper guess: only ARD selects the rank

    def error(r):                                        # distance to the planted mean of X
        return np.linalg.norm(r.W @ r.H - mean) / np.linalg.norm(mean)

    assert error(ard) < error(plain)                      # the extra components of plain fit noise
    assert _non_increasing(ard)


@pytest.mark.parametrize("prior", ["L1", "L2"])
@pytest.mark.parametrize("loss", [dict(loss="is", phi=0.02), dict(beta=0.5, phi=0.05), dict(beta=3.0)])
def test_ard_objective_is_non_increasing_for_every_beta(prior, loss):
    rng, L = _planted(2, m=30, n=25)
    X = L * rng.gamma(50, 1 / 50, L.shape)           # positive data (IS and β < 1 need it)
    r = _fit(X, 6, 0, prior=prior, max_iter=150, tol=0, **loss)
    assert _non_increasing(r)
    assert r.history["objective"][-1] < r.history["objective"][0]


def test_exponents():
    for beta, gamma in ((0.0, 0.5), (0.5, 1 / 1.5), (1.0, 1.0), (2.0, 1.0), (3.0, 0.5)):
        assert ard_exponent(beta, "L1") == pytest.approx(gamma)
    for beta, xi in ((0.0, 1 / 3), (1.0, 0.5), (2.0, 1.0), (3.0, 0.5)):
        assert ard_exponent(beta, "L2") == pytest.approx(xi)


@pytest.mark.parametrize("prior", ["L1", "L2"])
def test_step_objective_is_the_map_objective(prior):
    rng, L = _planted(3, m=20, n=15)
    X = rng.poisson(5 * L).astype(float)
    solver = ARD(make_engine(X), "kl", 1.0, prior=prior, a=4.0, b=0.7, phi=1.5)
    W, Ht = solver.prepare(rng.random((20, 4)), rng.random((15, 4)))
    W0, Ht0 = W.copy(), Ht.copy()
    W1, Ht1, obj = solver.step(W, Ht)
    assert np.array_equal(W, W0) and np.array_equal(Ht, Ht0)        # inputs untouched
    f = (lambda F: F.sum(0)) if prior == "L1" else (lambda F: 0.5 * (F * F).sum(0))
    c = (20 + 15 + 4.0 + 1) if prior == "L1" else (0.5 * (20 + 15) + 4.0 + 1)
    Y = W1 @ Ht1.T
    kl = np.sum(np.where(X > 0, X * np.log(np.where(X > 0, X, 1) / Y), 0) - X + Y)
    lam = (f(W1) + f(Ht1) + 0.7) / c
    expected = kl / 1.5 + np.sum((f(W1) + f(Ht1) + 0.7) / lam + c * np.log(lam))
    assert obj == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(solver.relevance, lam, rtol=1e-12)


def test_pruned_components_are_exact_zeros_and_stay_zero():
    rng, L = _planted(4)
    X = rng.poisson(5 * L).astype(float)
    solver = ARD(make_engine(X), "kl", 1.0)
    W, Ht = solver.prepare(rng.random((60, 6)), rng.random((50, 6)))
    ranks = []
    for _ in range(1200):
        W, Ht, _ = solver.step(W, Ht)
        ranks.append(solver.effective_rank)
    assert ranks[-1] == 3 and np.all(np.diff(ranks) <= 0)
    assert np.all(W[:, solver.pruned] == 0) and np.all(Ht[:, solver.pruned] == 0)
    assert solver.relevance[solver.pruned] == pytest.approx(solver.b / solver.c)   # at the bound b/c


def test_options_are_checked():
    X = np.random.default_rng(0).random((20, 15)) + 0.1
    for options, message in ((dict(prior="L3"), "prior"), (dict(a=2.0), "a > 2"), (dict(a=-1), "a must be"),
                             (dict(phi=0), "phi must be"), (dict(b=float("nan")), "b must be"),
                             (dict(alpha_W=0.1), "own penalties"), (dict(prior="L2", a=1.0), "a > 1")):
        with pytest.raises(ValueError, match=message):
            nmfkit.fit(X, 3, solver="ard", **options)
    with pytest.raises(ValueError, match="strictly positive"):
        nmfkit.fit(np.eye(5), 2, solver="ard", loss="is")
