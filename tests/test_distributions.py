"""nmfkit.distributions: log-likelihoods against scipy.stats, IRLS weights against the likelihood's
gradient, dispersion and zero-probability estimates against direct maximisation, information
criteria, and the choice of a distribution on planted data."""
import numpy as np
import pytest
import scipy.sparse as sp
from scipy import optimize, stats

from nmfkit import distributions as dist

RNG = np.random.default_rng(0)
MU = RNG.gamma(2.0, 2.0, 200)
COUNTS = RNG.negative_binomial(3.0, 3.0 / (3.0 + MU)).astype(float)
POSITIVE = RNG.gamma(3.0, MU / 3.0)


@pytest.mark.parametrize("name,x,phi,reference", [
    ("poisson", COUNTS, 1.0, lambda x, mu, phi: stats.poisson.logpmf(x, mu)),
    ("nb", COUNTS, 3.0, lambda x, mu, phi: stats.nbinom.logpmf(x, phi, phi / (phi + mu))),
    ("gamma", POSITIVE, 2.5, lambda x, mu, phi: stats.gamma.logpdf(x, a=phi, scale=mu / phi)),
    ("inverse_gaussian", POSITIVE, 4.0, lambda x, mu, phi: stats.invgauss.logpdf(x, mu / phi, scale=phi)),
])
def test_log_likelihoods_match_scipy(name, x, phi, reference):
    ours = dist.make_model(name).nll(x, MU, phi)
    np.testing.assert_allclose(-ours, reference(x, MU, phi), rtol=1e-10, atol=1e-10)


def test_generalized_poisson_is_a_distribution_with_its_mean_and_variance():
    model = dist.make_model("gp")
    x = np.arange(400.0)
    for mu, lam in ((3.0, 0.2), (10.0, 0.5), (0.7, 0.0)):
        p = np.exp(-model.nll(x, mu, lam))
        assert p.sum() == pytest.approx(1.0, abs=1e-10)
        assert (x * p).sum() == pytest.approx(mu, rel=1e-9)
        assert ((x - mu) ** 2 * p).sum() == pytest.approx(mu / (1 - lam) ** 2, rel=1e-8)


def test_tweedie_is_exact_at_zero_and_a_density_over_the_positive_part():
    """P(0) = exp(−μ^{2−p}/(φ(2−p))) exactly (compound Poisson–gamma); the saddlepoint density over
    x > 0 then integrates to about 1 − P(0) (an approximation: a few per cent at φ = 0.3)."""
    model = dist.make_model("tweedie", power=1.5)
    mu, phi = 2.0, 0.3
    p0 = np.exp(-model.nll(0.0, mu, phi))
    assert p0 == pytest.approx(np.exp(-mu ** 0.5 / (phi * 0.5)), rel=1e-12)
    x = np.linspace(1e-4, 30, 300001)
    mass = np.trapezoid(np.exp(-model.nll(x, mu, phi)), x)
    assert mass + p0 == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("name,x,phi", [
    ("poisson", COUNTS, 1.0), ("nb", COUNTS, 3.0), ("gp", COUNTS, 0.3), ("zip", COUNTS, 1.0),
    ("gamma", POSITIVE, 2.5), ("inverse_gaussian", POSITIVE, 4.0), ("tweedie", COUNTS, 0.7),
    ("huber", POSITIVE, 1.0), ("l1", POSITIVE, 1.0),
])
def test_irls_weights_carry_the_likelihood_gradient(name, x, phi):
    """w (z − μ) = −∂ℓ/∂μ at every entry, so the fixed point of IRLS is a stationary point of ℓ."""
    model = dist.make_model(name)
    w, wz = model.irls(x, MU, phi)
    h = 1e-6 * MU
    numeric = (model.nll(x, MU + h, phi) - model.nll(x, MU - h, phi)) / (2 * h)
    np.testing.assert_allclose(wz - w * MU, -numeric, rtol=1e-5, atol=1e-6)
    assert (w > 0).all()


@pytest.mark.parametrize("name", ["poisson", "nb", "gp", "tweedie", "huber", "l1"])
def test_the_value_at_zero_is_the_likelihood_at_zero(name):
    model = dist.make_model(name)
    for phi in (0.3, 0.9):
        np.testing.assert_allclose(model.nll_zero(MU, phi), model.nll(0.0, MU, phi), rtol=1e-12, atol=1e-300)


def test_entrywise_on_sparse_data_matches_dense():
    X = np.where(RNG.random((20, 15)) < 0.6, 0.0, RNG.poisson(4.0, (20, 15))).astype(float)
    mu = RNG.gamma(2.0, 1.0, (20, 15))
    phi = RNG.gamma(2.0, 1.0, (20, 1))
    model = dist.make_model("nb")
    np.testing.assert_allclose(dist.entrywise(model.nll, sp.csr_matrix(X), mu, phi),
                               dist.entrywise(model.nll, X, mu, phi), rtol=1e-13)
    for a, b in zip(dist.entrywise(model.irls, sp.csr_matrix(X), mu, phi), dist.entrywise(model.irls, X, mu, phi)):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    pi = np.full((20, 1), 0.2)
    np.testing.assert_allclose(dist.observed_nll(model, sp.csr_matrix(X), mu, phi, pi),
                               dist.observed_nll(model, X, mu, phi, pi), rtol=1e-13)


def planted(seed=1, m=40, n=30):
    rng = np.random.default_rng(seed)
    W, H = rng.gamma(1.0, 1.0, (m, 2)), rng.gamma(1.0, 1.0, (2, n))
    return rng, W, H, 4 * W @ H


@pytest.mark.parametrize("name,draw,bounds", [
    ("nb", lambda rng, M: rng.negative_binomial(2.0, 2.0 / (2.0 + M)).astype(float), (0.01, 1e3)),
    ("gamma", lambda rng, M: rng.gamma(3.0, M / 3.0), (1e-3, 1e3)),
    ("inverse_gaussian", lambda rng, M: rng.wald(M, 5.0), (1e-3, 1e3)),
    ("gp", lambda rng, M: rng.negative_binomial(4.0, 4.0 / (4.0 + M)).astype(float), (0.0, 0.95)),
])
def test_global_dispersion_is_the_maximum_likelihood_estimate(name, draw, bounds):
    rng, W, H, M = planted()
    X = draw(rng, M)
    model = dist.make_model(name)
    got = dist.estimate_dispersion(X, 4 * W, H, name, dispersion="global")["dispersion"].item()
    best = optimize.minimize_scalar(lambda p: model.nll(X, M, p).sum(), bounds=bounds, method="bounded",
                                    options={"xatol": 1e-10})
    # Newton steps on log φ converge quadratically: 1e-5 relative is far below the estimate's
    # sampling error (a few per cent with 1200 entries) and above the bounded search's tolerance.
    assert got == pytest.approx(best.x, rel=1e-5, abs=1e-7)


def test_zero_probability_is_the_maximum_likelihood_estimate():
    rng, W, H, M = planted(2)
    X = np.where(rng.random(M.shape) < 0.25, 0.0, rng.poisson(M)).astype(float)
    got = dist.estimate_dispersion(X, 4 * W, H, "zip", zi="row")["zero_probability"].ravel()
    model = dist.make_model("zip")
    for i in (0, 7, 19):
        row = X[i:i + 1]

        def nll(pi, i=i, row=row):
            return dist.observed_nll(model, row, M[i:i + 1], 1.0, np.array([[pi]])).sum()
        best = optimize.minimize_scalar(nll, bounds=(0.0, 0.999), method="bounded", options={"xatol": 1e-10})
        assert got[i] == pytest.approx(best.x, abs=1e-4)      # EM's fixed point, 50 rounds: linear rate


def test_information_criteria():
    out = dist.information_criteria(100.0, 10, 1000)
    assert out["aic"] == 220.0 and out["bic"] == pytest.approx(200.0 + 10 * np.log(1000))


@pytest.mark.parametrize("truth,candidates", [
    ("nb", ("gaussian", "poisson", "nb", "zip")),
    ("poisson", ("gaussian", "poisson", "nb")),
    ("gamma", ("gaussian", "gamma", "inverse_gaussian")),
    ("inverse_gaussian", ("gaussian", "gamma", "inverse_gaussian")),
])
def test_choose_distribution_picks_the_generating_one(truth, candidates):
    rng = np.random.default_rng(0)
    W, H = rng.gamma(1.0, 1.0, (40, 2)), rng.gamma(1.0, 1.0, (2, 30))
    M = 5 * W @ H
    X = {"nb": lambda: rng.negative_binomial(2.0, 2.0 / (2.0 + M)).astype(float),
         "poisson": lambda: rng.poisson(M).astype(float),
         "gamma": lambda: rng.gamma(2.0, M / 2.0),
         "inverse_gaussian": lambda: rng.wald(M, 10.0)}[truth]()
    choice = dist.choose_distribution(X, 2, candidates=candidates, dispersion="global", max_iter=100)
    assert choice.best == truth, str(choice)
    rows = {row["distribution"]: row for row in choice.table}
    assert set(rows) == set(candidates) and set(choice.fits) == set(candidates)
    ranked = sorted(rows.values(), key=lambda r: r["bic"])
    assert ranked[1]["bic"] - ranked[0]["bic"] > 5        # measured ≥ 7 (poisson vs nb): not a coin flip


def test_choose_distribution_refuses_unknown_names():
    with pytest.raises(ValueError, match="candidate distribution"):
        dist.choose_distribution(COUNTS.reshape(20, 10), 2, candidates=("poison",))
    with pytest.raises(ValueError, match="criterion"):
        dist.choose_distribution(COUNTS.reshape(20, 10), 2, criterion="dic")
