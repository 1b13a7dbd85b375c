"""Solver irls: its Numba kernel against the NumPy twin, each model's H half-step against a direct
maximum-likelihood solve, recovery of planted factors against plain Frobenius/KL NMF, and the
refusals of bad input."""
import numpy as np
import pytest
import scipy.sparse as sp
from scipy import optimize, special, stats

import nmfkit
from nmfkit.engines import make_engine
from nmfkit.solvers._irls_kernels import weighted_nnls_rows, weighted_nnls_rows_numpy
from nmfkit.solvers.irls import IRLS

# -- the kernel and its twin ------------------------------------------------------------------------


@pytest.mark.parametrize("p,q,k", [(7, 30, 3), (40, 12, 5), (3, 4, 1)])
def test_kernel_matches_its_numpy_twin(p, q, k):
    rng = np.random.default_rng(p)
    F, Other = rng.random((p, k)), rng.random((q, k))
    A = rng.gamma(1.0, 1.0, (p, q))
    B = A * rng.random((p, q)) * 3
    A[0, :] = 0.0                         # a row with no weight: stays where it is
    ours = weighted_nnls_rows(F, A, B, Other, 25, 0.0)
    twin = weighted_nnls_rows_numpy(F, A, B, Other, 25, 0.0)
    np.testing.assert_allclose(ours, twin, rtol=1e-10, atol=1e-12)   # float64, summation order only
    np.testing.assert_array_equal(ours[0], F[0])
    assert (ours >= 0).all()


def test_kernel_solves_the_weighted_nnls_problem():
    """Converged sweeps satisfy the KKT conditions of min_{f ≥ 0} Σ_q a_q (z_q − Other_q·f)²."""
    rng = np.random.default_rng(3)
    Other = rng.random((50, 4))
    a = rng.gamma(2.0, 1.0, 50)
    z = Other @ np.array([1.0, 0.0, 2.0, 0.5]) + 0.3 * rng.standard_normal(50)
    f = weighted_nnls_rows(np.ones((1, 4)), a[None], (a * z)[None], Other, 5000, 0.0)[0]
    grad = Other.T @ (a * (Other @ f - z))
    scale = np.abs(Other.T @ (a * z)).max()
    assert np.all(f >= 0)
    assert np.all(np.abs(grad[f > 0]) <= 1e-9 * scale) and np.all(grad[f == 0] >= -1e-9 * scale)


# -- one H half-step converges to the maximum-likelihood coefficients ---------------------------------

def exact_nll(loss, x, mu, phi):
    """The negative log-likelihood written from scipy.stats / the textbook formulas (not nmfkit's)."""
    if loss == "nb":
        return -stats.nbinom.logpmf(x, phi, phi / (phi + mu)).sum()
    if loss == "gamma":
        return -stats.gamma.logpdf(x, a=phi, scale=mu / phi).sum()
    if loss == "inverse_gaussian":
        return -stats.invgauss.logpdf(x, mu / phi, scale=phi).sum()
    if loss == "tweedie":     # Dunn & Smyth's saddlepoint density, p = 1.5 (x > 0 here)
        p = 1.5
        dev = 2 * (x ** (2 - p) / ((1 - p) * (2 - p)) - x * mu ** (1 - p) / (1 - p) + mu ** (2 - p) / (2 - p))
        return (0.5 * np.log(2 * np.pi * phi * x ** p) + dev / (2 * phi)).sum()
    if loss == "gp":          # Consul: θ(θ + λx)^(x−1) e^(−θ−λx) / x!, θ = μ(1 − λ)
        theta = mu * (1 - phi)
        return -(np.log(theta) + (x - 1) * np.log(theta + phi * x) - theta - phi * x - special.gammaln(x + 1)).sum()
    if loss == "huber":
        return special.huber(1.345, x - mu).sum()
    raise AssertionError(loss)


def sample(loss, mu, rng):
    if loss in ("nb", "gp"):
        return rng.negative_binomial(4.0, 4.0 / (4.0 + mu)).astype(float)
    if loss == "huber":
        return np.maximum(mu + rng.standard_normal(mu.shape) * 2.0, 0.0)
    return rng.gamma(3.0, mu / 3.0)


PHI = {"nb": 4.0, "gamma": 3.0, "inverse_gaussian": 2.0, "tweedie": 0.5, "gp": 0.3, "huber": 1.0}


def converged_half_step(X, W, loss, phi, sweeps=400):
    """Iterate the H half-step of solver irls with W and the dispersion fixed."""
    s = IRLS(make_engine(X), loss, None, dispersion="none", dispersion_start=phi, cd_maxit=200, cd_tol=0.0)
    s.given_start = True
    Wp, Ht = s.prepare(W, np.full((X.shape[1], W.shape[1]), X.mean()))
    for _ in range(sweeps):
        Ht = s._half(s._cols, Ht, Wp, s.phi.T, None)
    return Ht


@pytest.mark.parametrize("loss", list(PHI))
def test_h_half_step_reaches_the_maximum_likelihood_coefficients(loss):
    rng = np.random.default_rng(7)
    W = rng.gamma(2.0, 1.0, (40, 2))
    h_true = np.array([[2.0, 0.5, 1.0], [0.0, 1.5, 3.0]])
    X = sample(loss, W @ h_true, rng)
    Ht = converged_half_step(X, W, loss, PHI[loss])
    for j in range(X.shape[1]):
        def nll(h):
            return exact_nll(loss, X[:, j], np.maximum(W @ h, 1e-12), PHI[loss])
        best = optimize.minimize(nll, h_true[:, j] + 0.1, method="L-BFGS-B", bounds=[(0, None)] * 2,
                                 options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 5000})
        # Both solve the same smooth problem: the objective agrees to ~1e-9 relative (L-BFGS-B's ftol
        # on a sum of 40 terms), the coefficients to the square root of that (a flat minimum).
        assert nll(Ht[j]) <= best.fun + 1e-8 * abs(best.fun), (loss, j, nll(Ht[j]), best.fun)
        np.testing.assert_allclose(Ht[j], best.x, rtol=1e-4, atol=1e-4 * np.abs(best.x).max())


def test_l1_half_step_reaches_the_least_absolute_deviations_fit():
    """L1 regression with h ≥ 0 is a linear program: its exact optimum against IRLS's."""
    rng = np.random.default_rng(8)
    W = rng.gamma(2.0, 1.0, (30, 2))
    X = W @ np.array([[1.0, 2.0], [0.5, 0.0]]) + rng.laplace(0, 0.3, (30, 2))
    X = np.maximum(X, 0)
    Ht = converged_half_step(X, W, "l1", 1.0, sweeps=600)
    m, k = W.shape
    for j in range(2):               # variables (h, t): min Σt, −t ≤ x − W h ≤ t, h, t ≥ 0
        c = np.r_[np.zeros(k), np.ones(m)]
        A = np.block([[-W, -np.eye(m)], [W, -np.eye(m)]])
        lp = optimize.linprog(c, A_ub=A, b_ub=np.r_[-X[:, j], X[:, j]], bounds=[(0, None)] * (k + m))
        ours = np.abs(X[:, j] - W @ Ht[j]).sum()
        # IRLS weights 1/max(|r|, ε) approach the L1 optimum to within ~ε·m and slowly near the kink:
        # 1e-4 of the optimum is far below the data's noise (0.3 per entry).
        assert ours <= lp.fun * (1 + 1e-4), (ours, lp.fun)


# -- planted generative models: irls recovers them better than plain NMF from the same start ----------

def planted_factors(rng, m, n, k, shape=1.0):
    return rng.gamma(shape, 1.0, (m, k)), rng.gamma(shape, 1.0, (k, n))


def recovery(f, truth):
    return np.linalg.norm(f.W @ f.H - truth) / np.linalg.norm(truth)


def fits_from_one_start(X, k, losses, **irls_options):
    start = nmfkit.fit(X, k, loss="kl", max_iter=30, tol=0, seed=0)
    out = {}
    for loss in losses:
        opts = irls_options if loss not in ("kl", "frobenius") else {}
        out[loss] = nmfkit.fit(X, k, loss=loss, init=(start.W, start.H), max_iter=200, tol=1e-6, **opts)
    return out


def test_negative_binomial_counts_are_recovered_better_than_by_kl_or_frobenius():
    rng = np.random.default_rng(1)
    W, H = planted_factors(rng, 80, 60, 3, shape=0.7)
    M = 4 * W @ H
    X = rng.negative_binomial(1.5, 1.5 / (1.5 + M)).astype(float)
    fits = fits_from_one_start(X, 3, ("nb", "kl", "frobenius"))
    err = {name: recovery(f, M) for name, f in fits.items()}
    # measured: nb 0.22, kl 0.34, frobenius 0.75
    assert err["nb"] < 0.8 * min(err["kl"], err["frobenius"]), err


def test_zero_inflated_counts_are_recovered_better_than_by_nb_kl_or_frobenius():
    rng = np.random.default_rng(2)
    W, H = planted_factors(rng, 60, 40, 3)
    M = 5 * W @ H
    X = np.where(rng.random(M.shape) < 0.3, 0.0, rng.negative_binomial(20.0, 20.0 / (20.0 + M))).astype(float)
    fits = fits_from_one_start(X, 3, ("zinb", "nb", "kl", "frobenius"), dispersion="global")
    err = {name: recovery(f, M) for name, f in fits.items()}
    # measured: zinb 0.19, nb 0.39, kl 0.38, frobenius 0.44 (the others fit (1 − π) M, not M)
    assert err["zinb"] < 0.75 * min(err["nb"], err["kl"], err["frobenius"]), err


def test_outliers_are_resisted_by_huber_and_l1():
    rng = np.random.default_rng(1)
    W, H = planted_factors(rng, 80, 60, 3, shape=0.7)
    L = W @ H
    X = L + 0.05 * rng.standard_normal(L.shape)
    hit = rng.random(L.shape) < 0.05
    X[hit] += rng.uniform(5, 10, hit.sum())
    X = np.maximum(X, 0)
    fits = fits_from_one_start(X, 3, ("huber", "l1", "frobenius", "kl"))
    err = {name: recovery(f, L) for name, f in fits.items()}
    # measured: huber 0.067, l1 0.010, frobenius 0.25, kl 0.29
    assert max(err["huber"], err["l1"]) < 0.5 * min(err["frobenius"], err["kl"]), err


# -- behaviour through nmfkit.fit ------------------------------------------------------------------------

def counts(seed=0, m=30, n=20):
    rng = np.random.default_rng(seed)
    W, H = planted_factors(rng, m, n, 2)
    return rng.poisson(3 * W @ H).astype(float)


def test_auto_solver_is_irls_for_the_likelihood_losses_and_history_never_rises():
    X = counts()
    for loss in ("nb", "zip", "gp"):
        f = nmfkit.fit(X, 2, loss=loss, seed=0, max_iter=40)
        assert f.options["solver"] == "irls"
        obj = np.asarray(f.history["objective"])
        assert np.all(np.diff(obj) <= 1e-9 * np.abs(obj[:-1])), loss     # step halving: never up
        assert f.monotonicity == []


def test_sparse_and_dense_data_give_the_same_fit():
    X = counts(1)
    X[X < 2] = 0
    rng = np.random.default_rng(0)
    start = (rng.random((30, 2)) + 0.1, rng.random((2, 20)) + 0.1)    # the same start (inits differ by rounding)
    a = nmfkit.fit(X, 2, loss="zinb", init=start, max_iter=15, tol=0)
    b = nmfkit.fit(sp.csr_matrix(X), 2, loss="zinb", init=start, max_iter=15, tol=0)
    np.testing.assert_allclose(a.W @ a.H, b.W @ b.H, rtol=1e-8, atol=1e-10)
    assert a.loss == pytest.approx(b.loss, rel=1e-10)


def test_loss_is_the_negative_log_likelihood():
    X = counts(2)
    fixed = nmfkit.fit(X, 2, loss="nb", dispersion="none", dispersion_start=5.0, seed=0, max_iter=30)
    mu = np.maximum(fixed.W @ fixed.H, 1e-8 * X.mean())      # the documented floor of the mean
    direct = -stats.nbinom.logpmf(X, 5.0, 5.0 / (5.0 + mu)).sum()
    assert fixed.loss == pytest.approx(direct, rel=1e-10)
    f = nmfkit.fit(X, 2, loss="nb", dispersion="global", seed=0, max_iter=30)
    theta = nmfkit.distributions.estimate_dispersion(X, f.W, f.H, "nb", dispersion="global")["dispersion"]
    profile = -stats.nbinom.logpmf(X, theta, theta / (theta + f.W @ f.H)).sum()
    # the fit's θ takes one Newton step per iteration; at the MLE θ the value can only be lower
    assert profile <= f.loss * (1 + 1e-12) and f.loss <= profile * (1 + 1e-3)


@pytest.mark.parametrize("kwargs,message", [
    (dict(loss="gamma"), "needs X > 0"),
    (dict(loss="nb", alpha_W=0.1), "no solver supports loss 'nb' with the alpha_W/alpha_H penalties"),
    (dict(loss="nb", solver="irls", alpha_W=0.1), "does not support the alpha_W/alpha_H penalties"),
    (dict(loss="tweedie", power=2.5), "power must be < 2"),
    (dict(loss="huber", delta=0), "delta must be > 0"),
    (dict(loss="nb", dispersion="per_gene"), "dispersion"),
    (dict(loss="zip", zi="both"), "zi"),
    (dict(loss="nb", beta=1.5), "not a β-divergence"),
    (dict(loss="nb", dispersion_start=1e9), "dispersion_start must be at most"),
    (dict(loss="nb", warmup=-1), "warmup must be an integer"),
    (dict(loss="nb", solver="hals"), "does not support loss 'nb'"),
])
def test_bad_options_are_refused_before_the_first_iteration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nmfkit.fit(counts(), 2, max_iter=2, **kwargs)


def test_other_front_doors_refuse_the_likelihood_losses_by_name():
    X = counts()
    with pytest.raises(ValueError, match="not loss 'nb'"):
        nmfkit.project(np.ones((30, 2)), X, loss="nb")
    with pytest.raises(ValueError, match="cross-validation supports loss"):
        nmfkit.cross_validate_rank(X, [1, 2], loss="nb")


def test_checkpoint_resume_carries_the_dispersion(tmp_path):
    X = counts(3)
    full = nmfkit.fit(X, 2, loss="zinb", seed=0, max_iter=12, tol=0)
    nmfkit.fit(X, 2, loss="zinb", seed=0, max_iter=6, tol=0, checkpoint=tmp_path / "c.npz", checkpoint_every=6)
    resumed = nmfkit.fit(X, 2, loss="zinb", seed=0, max_iter=12, tol=0, resume=tmp_path / "c.npz")
    assert resumed.loss == pytest.approx(full.loss, rel=1e-10)


def test_likelihood_losses_refuse_data_that_would_be_fitted_rescaled():
    """Data beyond 1/eps² is fitted as X/2^e by the β-divergences; a likelihood is not homogeneous in
    X's scale, so it is refused by name before any work instead of failing after the fit."""
    X = np.random.default_rng(0).poisson(3.0, (30, 20)).astype(float) * 1e40
    with pytest.raises(ValueError, match="likelihood that cannot be fitted rescaled"):
        nmfkit.fit(X, 3, loss="nb")
