"""Observation models of the `irls` solver: log-likelihoods, IRLS weights, dispersion estimates,
and the choice of a distribution by BIC/AIC.

Every model has mean μ = (W H)_ij (identity link, as in RcppML) and is fitted by maximum
likelihood.  For each entry a model gives its negative log-likelihood ℓ(x; μ, φ) (φ its dispersion
parameter, one per row, per column or global) and, for the IRLS step, a weight w and a working
response z with w (z − μ) = −∂ℓ/∂μ, so that the weighted least-squares problem of one step has the
likelihood's gradient at the current μ (Fisher scoring: w = 1/Var(x) where that is the Fisher
information).  For the exponential-dispersion families z = x and w = 1/(φ V(μ)):

| loss | distribution | Var(x) | dispersion (mode "row" by default) |
|---|---|---|---|
| nb | negative binomial, size θ | μ + μ²/θ | θ by maximum likelihood, 0.01 ≤ θ ≤ 10⁶ |
| gamma | gamma, shape α | μ²/α | α by maximum likelihood |
| inverse_gaussian | inverse Gaussian, shape λ | μ³/λ | λ by maximum likelihood |
| tweedie | Tweedie, power 1 < p < 2 | φ μ^p | φ by maximum (saddlepoint) likelihood |
| gp | generalised Poisson (Consul), 0 ≤ λ ≤ 0.95 | μ/(1 − λ)² | λ by maximum likelihood |
| zip, zinb | zero-inflated Poisson / NB, zero probability π | | π by EM, per row or column |
| huber | Huber's ρ_δ(x − μ) (not a likelihood) | | — |
| l1 | |x − μ| (Laplace, not normalised) | | — |

The Tweedie density has no closed form; its log-likelihood here is the saddlepoint approximation
of Dunn & Smyth (Stat. Comput. 2005), −½ log(2πφ x^p) − d(x, μ)/(2φ) with d the unit deviance, and
exactly −μ^{2−p}/(φ(2−p)) at x = 0.  The count models evaluate lgamma at non-integer x without
complaint: on non-integer data their "likelihood" is the same formula, not a probability.
Gamma and inverse Gaussian need x > 0 everywhere.

Dispersion parameters are updated by safeguarded Newton steps on log φ (finite-difference
derivatives of the per-group negative log-likelihood; a step is halved until it lowers that
group's value, else the group keeps its value), so the update never raises the objective.

Sparse X is never densified: an entrywise quantity is evaluated on the dense μ (an m×n work
array) at x = 0 and then overwritten at the stored entries.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.special import gammaln, xlogy

from .validation import check_matrix, choose

DISPERSION_MODES = {"row": "row", "per_row": "row", "col": "col", "per_col": "col", "global": "global",
                    "none": "none"}
ZI_MODES = {"row": "row", "col": "col"}
LOG_2PI = math.log(2.0 * math.pi)


# -- entrywise evaluation on dense or sparse data -------------------------------------------------

def entrywise(fn, D, mu, *params, at_zero=None):
    """fn(x, μ, *params) at every entry, as a dense float64 p×q array.  `params` broadcast against
    μ (shapes (p, 1), (1, q) or (1, 1)).  Sparse D: `at_zero(μ, *params)` (default fn at x = 0)
    everywhere, then fn at the stored entries (explicit zeros included, which is the same value)."""
    if not sp.issparse(D):
        x = np.asarray(D, dtype=np.float64)
        out = fn(x, mu, *params)
        if at_zero is not None:          # the zeros by the same formula as for sparse data
            idx = np.nonzero(x == 0)
            if idx[0].size:
                out[idx] = at_zero(mu[idx], *(np.broadcast_to(p, mu.shape)[idx] for p in params))
        return out
    with np.errstate(divide="ignore", invalid="ignore"):    # x = 0 may be outside a model's support:
        zero = fn(0.0, mu, *params) if at_zero is None else at_zero(mu, *params)   # then only stored ones count
    single = not isinstance(zero, tuple)
    outs = [np.array(np.broadcast_to(z, mu.shape)) for z in ((zero,) if single else zero)]
    C = D.tocoo()
    if C.nnz:
        r, c = C.row, C.col
        at = fn(C.data.astype(np.float64), mu[r, c], *(np.broadcast_to(p, mu.shape)[r, c] for p in params))
        for out, value in zip(outs, (at,) if single else at):
            out[r, c] = value
    return outs[0] if single else tuple(outs)


# -- the models ---------------------------------------------------------------------------------

class Model:
    """One distribution: `nll(x, μ, φ)`, `irls(x, μ, φ) -> (w, w·z)`, its dispersion's bounds and start.

    φ is the dispersion parameter in the model's own units (θ, α, λ, φ); models without one use
    a dummy 1.0 and `has_dispersion = False`."""
    name = "model"
    has_dispersion = True
    lower, upper, start = 1e-6, 1e6, 1.0
    positive_data = False

    def to_t(self, phi):
        return np.log(phi)

    def from_t(self, t):
        return np.exp(t)

    def t_bounds(self):
        return self.to_t(self.lower), self.to_t(self.upper)

    def nll_zero(self, mu, phi):
        """ℓ(0; μ, φ): the value at every zero of sparse data (a cheaper formula where one exists)."""
        return self.nll(0.0, mu, phi)

    def mu_floor_for(self, scale):
        """Smallest mean the likelihood is evaluated at: far below the data's scale."""
        return 1e-8 * scale


class Poisson(Model):
    name, has_dispersion = "poisson", False

    def nll(self, x, mu, phi):
        return mu - xlogy(x, mu) + gammaln(np.asarray(x, dtype=np.float64) + 1.0)

    def nll_zero(self, mu, phi):
        return mu

    def irls(self, x, mu, phi):
        w = 1.0 / mu
        return w, x * w


class NegativeBinomial(Model):
    name, lower, upper, start = "nb", 0.01, 1e6, 10.0

    def nll(self, x, mu, theta):
        x = np.asarray(x, dtype=np.float64)
        return -(gammaln(x + theta) - gammaln(theta) - gammaln(x + 1.0)
                 + theta * np.log(theta / (theta + mu)) + xlogy(x, mu / (theta + mu)))

    def nll_zero(self, mu, theta):
        return theta * np.log1p(mu / theta)

    def irls(self, x, mu, theta):
        w = theta / (mu * (theta + mu))
        return w, x * w


class Gamma(Model):
    name, lower, upper, start, positive_data = "gamma", 1e-4, 1e6, 1.0, True

    def nll(self, x, mu, alpha):
        return -(alpha * np.log(alpha / mu) + (alpha - 1.0) * np.log(x) - alpha * x / mu - gammaln(alpha))

    def irls(self, x, mu, alpha):
        w = alpha / mu ** 2
        return w, x * w


class InverseGaussian(Model):
    name, lower, upper, start, positive_data = "inverse_gaussian", 1e-6, 1e8, 1.0, True

    def nll(self, x, mu, lam):
        return -(0.5 * np.log(lam) - 0.5 * (LOG_2PI + 3.0 * np.log(x)) - lam * (x - mu) ** 2 / (2.0 * mu ** 2 * x))

    def irls(self, x, mu, lam):
        w = lam / mu ** 3
        return w, x * w


class Tweedie(Model):
    name, lower, upper, start = "tweedie", 1e-6, 1e6, 1.0

    def __init__(self, power=1.5):
        self.p = power

    def nll(self, x, mu, phi):
        p = self.p
        x = np.asarray(x, dtype=np.float64)
        at_zero = mu ** (2 - p) / (phi * (2 - p))
        pos = x > 0
        xs = np.where(pos, x, 1.0)
        dev = 2.0 * (xs ** (2 - p) / ((1 - p) * (2 - p)) - xs * mu ** (1 - p) / (1 - p) + mu ** (2 - p) / (2 - p))
        inside = 0.5 * (LOG_2PI + np.log(phi) + p * np.log(xs)) + dev / (2.0 * phi)
        return np.where(pos, inside, at_zero)

    def nll_zero(self, mu, phi):
        return mu ** (2 - self.p) / (phi * (2 - self.p))

    def irls(self, x, mu, phi):
        w = 1.0 / (phi * mu ** self.p)
        return w, x * w


class GeneralizedPoisson(Model):
    """Consul's generalised Poisson by its mean: θ = μ(1 − λ), P(x) = θ(θ + λx)^{x−1} e^{−θ−λx}/x!."""
    name, lower, upper, start = "gp", 0.0, 0.95, 0.1

    def to_t(self, lam):        # λ ∈ [0, 0.95] ↔ t ∈ ℝ (λ = 0 maps to a large negative t)
        lam = np.clip(lam, 1e-9, self.upper * (1 - 1e-9))
        return np.log(lam / (self.upper - lam))

    def from_t(self, t):
        return self.upper / (1.0 + np.exp(-t))

    def t_bounds(self):
        return -30.0, 30.0

    def nll(self, x, mu, lam):
        x = np.asarray(x, dtype=np.float64)
        theta = mu * (1.0 - lam)
        s = theta + lam * x
        return -(np.log(theta) + xlogy(x - 1.0, s) - s - gammaln(x + 1.0))

    def nll_zero(self, mu, lam):
        return mu * (1.0 - lam)

    def irls(self, x, mu, lam):
        x = np.asarray(x, dtype=np.float64)
        s = mu * (1.0 - lam) + lam * x
        score = 1.0 / mu + (1.0 - lam) * (x - 1.0) / s - (1.0 - lam)      # ∂ log P / ∂μ
        w = (1.0 - lam) ** 2 / mu                                          # 1 / Var(x)
        return w, w * mu + score


class Huber(Model):
    name, has_dispersion = "huber", False

    def __init__(self, delta=1.345):
        self.delta = delta

    def nll(self, x, mu, phi):
        a = np.abs(x - mu)
        d = self.delta
        return np.where(a <= d, 0.5 * a * a, d * (a - 0.5 * d))

    def irls(self, x, mu, phi):
        a = np.abs(x - mu)
        w = np.where(a <= self.delta, 1.0, self.delta / np.maximum(a, self.delta))
        return w, w * x


class L1(Model):
    name, has_dispersion = "l1", False

    def __init__(self, eps=1e-8):
        self.eps = eps

    def nll(self, x, mu, phi):
        return np.abs(x - mu)

    def irls(self, x, mu, phi):
        w = 1.0 / np.maximum(np.abs(x - mu), self.eps)
        return w, w * x


BASE_MODELS = {"nb": NegativeBinomial, "gamma": Gamma, "inverse_gaussian": InverseGaussian, "tweedie": Tweedie,
               "gp": GeneralizedPoisson, "huber": Huber, "l1": L1, "zip": Poisson, "zinb": NegativeBinomial,
               "poisson": Poisson}
ZERO_INFLATED = ("zip", "zinb")


def make_model(loss, *, power=1.5, delta=1.345, eps=1e-8):
    """The Model of an irls loss name (options checked by the caller)."""
    if loss == "tweedie":
        return Tweedie(power)
    if loss == "huber":
        return Huber(delta)
    if loss == "l1":
        return L1(eps)
    return BASE_MODELS[loss]()


# -- per-group sums and the dispersion update -----------------------------------------------------

def group_sum(E, mode):
    """Sums of an m×n array per row ((m, 1)), per column ((1, n)) or in total ((1, 1))."""
    if mode == "row":
        return E.sum(axis=1, keepdims=True)
    if mode == "col":
        return E.sum(axis=0, keepdims=True)
    return np.array([[E.sum()]])


def weighted_nll(model, D, mu, phi, prior=None):
    """ℓ at every entry, times the EM prior weights (1 − τ) where given."""
    E = entrywise(model.nll, D, mu, phi, at_zero=model.nll_zero)
    return E if prior is None else prior * E


def update_dispersion(model, D, mu, phi, mode, prior=None, newton_steps=2, h=1e-3, halvings=8):
    """Safeguarded Newton steps on t = log φ (or the model's own transform) per group: returns φ'
    with Σ_group ℓ(φ') ≤ Σ_group ℓ(φ) for every group."""
    if mode == "none" or not model.has_dispersion:
        return phi
    lo, hi = model.t_bounds()

    def value(p):
        return group_sum(weighted_nll(model, D, mu, p, prior), mode)

    for _ in range(newton_steps):
        t = model.to_t(phi)
        f0 = value(phi)
        fp, fm = value(model.from_t(np.minimum(t + h, hi))), value(model.from_t(np.maximum(t - h, lo)))
        g = (fp - fm) / (2 * h)
        curv = (fp - 2 * f0 + fm) / (h * h)
        step = np.clip(np.where(curv > 0, -g / np.where(curv > 0, curv, 1.0), -np.sign(g)), -3.0, 3.0)
        pending = np.abs(step) > 1e-12
        for _ in range(halvings):
            if not pending.any():
                break
            trial = np.where(pending, model.from_t(np.clip(t + step, lo, hi)), phi)
            better = (value(trial) < f0) & pending      # a group keeps its φ unless the trial lowers ℓ
            phi = np.where(better, trial, phi)
            pending &= ~better
            step = step / 2
    return phi


# -- zero inflation (EM) ----------------------------------------------------------------------------

def zero_posterior(model, D, mu, phi, pi):
    """τ: posterior probability that an entry is a structural zero (0 where x > 0)."""
    p0 = np.exp(-model.nll_zero(mu, phi))
    tau = pi / (pi + (1.0 - pi) * p0)
    if sp.issparse(D):
        C = D.tocoo()
        keep = C.data != 0
        tau[C.row[keep], C.col[keep]] = 0.0
    else:
        tau = np.where(np.asarray(D) > 0, 0.0, tau)
    return tau


def update_zero_probability(tau, mode):
    """π per group: the mean posterior of a structural zero (the EM M-step), at most 0.999."""
    counts = tau.shape[1] if mode == "row" else tau.shape[0]
    return np.minimum(group_sum(tau, mode) / counts, 0.999)


def observed_nll(model, D, mu, phi, pi=None):
    """−log-likelihood of every entry; zero-inflated: −log(π + (1−π) P(0)) at zeros, −log(1−π) + ℓ else."""
    E = entrywise(model.nll, D, mu, phi, at_zero=model.nll_zero)
    if pi is None:
        return E
    at_zero = -np.log(pi + (1.0 - pi) * np.exp(-model.nll_zero(mu, phi)))
    nonzero = -np.log1p(-pi) + E
    if sp.issparse(D):
        out = np.broadcast_to(at_zero, mu.shape).copy()
        C = D.tocoo()
        keep = C.data != 0
        out[C.row[keep], C.col[keep]] = nonzero[C.row[keep], C.col[keep]]
        return out
    return np.where(np.asarray(D) > 0, nonzero, at_zero)


# -- a fitted model's likelihood and the choice of a distribution -----------------------------------

def parameter_shape(mode, shape):
    """Shape of a per-row / per-column / global parameter array against an m×n matrix."""
    m, n = shape
    return {"row": (m, 1), "col": (1, n)}.get(mode, (1, 1))


def count_parameters(mode, shape):
    return 0 if mode == "none" else int(np.prod(parameter_shape(mode, shape)))


def estimate_dispersion(X, W, H, loss, *, dispersion="row", zi="row", power=1.5, max_rounds=50):
    """Maximum-likelihood dispersion (and zero probability) of X given fixed factors W, H:
    returns {"dispersion": φ, "zero_probability": π or None, "nll": −log-likelihood}.
    φ has shape (m, 1), (1, n) or (1, 1) for dispersion "row", "col", "global"."""
    mode = choose(dispersion, DISPERSION_MODES, "dispersion")
    mode = DISPERSION_MODES[mode]
    model = make_model(loss, power=power)
    mu = np.maximum(np.asarray(W, dtype=np.float64) @ np.asarray(H, dtype=np.float64),
                    model.mu_floor_for(_data_scale(X)))
    phi = np.full(parameter_shape(mode if mode != "none" else "global", mu.shape), model.start)
    pi = tau = None
    if loss in ZERO_INFLATED:
        zmode = ZI_MODES[choose(zi, ZI_MODES, "zi")]
        pi = np.full(parameter_shape(zmode, mu.shape), 0.1)
    for _ in range(max_rounds):
        if pi is not None:
            tau = zero_posterior(model, X, mu, phi, pi)
            pi = update_zero_probability(tau, zmode)
        phi = update_dispersion(model, X, mu, phi, mode, None if tau is None else 1.0 - tau)
    return {"dispersion": phi, "zero_probability": pi, "nll": float(observed_nll(model, X, mu, phi, pi).sum())}


def _data_scale(X):
    total = X.sum() if sp.issparse(X) else np.asarray(X, dtype=np.float64).sum()
    return max(float(total) / (X.shape[0] * X.shape[1]), np.finfo(float).tiny)


def gaussian_nll(X, W, H):
    """−log-likelihood of X under x_ij ~ N((WH)_ij, σ²) with σ² at its maximum-likelihood value."""
    Xd = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    rss = float(((Xd - np.asarray(W, float) @ np.asarray(H, float)) ** 2).sum())
    N = Xd.size
    return 0.5 * N * (LOG_2PI + math.log(max(rss / N, np.finfo(float).tiny)) + 1.0)


def information_criteria(nll, n_params, n_obs):
    """AIC = 2·NLL + 2·df and BIC = 2·NLL + df·log N."""
    return {"aic": 2.0 * nll + 2.0 * n_params, "bic": 2.0 * nll + n_params * math.log(n_obs)}


@dataclass
class DistributionChoice:
    """Result of `choose_distribution`: one table row per candidate (nll, df, aic, bic), the
    candidate with the lowest criterion, and every candidate's Factorization."""
    table: list
    best: str
    criterion: str
    fits: dict = field(default_factory=dict)

    def __str__(self):
        lines = [f"{'distribution':<18}{'nll':>14}{'df':>8}{'aic':>14}{'bic':>14}"]
        for row in self.table:
            mark = "  *" if row["distribution"] == self.best else ""
            lines.append(f"{row['distribution']:<18}{row['nll']:>14.6g}{row['df']:>8d}{row['aic']:>14.6g}"
                         f"{row['bic']:>14.6g}{mark}")
        return "\n".join(lines)


COUNT_CANDIDATES = ("gaussian", "poisson", "nb", "gp", "zip", "zinb")
POSITIVE_CANDIDATES = ("gaussian", "gamma", "inverse_gaussian", "tweedie")
CANDIDATES = ("gaussian", "poisson", "nb", "gp", "zip", "zinb", "gamma", "inverse_gaussian", "tweedie")


def choose_distribution(X, rank, *, candidates=None, criterion="bic", dispersion="row", zi="row", seed=0,
                        max_iter=200, tol=1e-5, **fit_options) -> DistributionChoice:
    """Fit each candidate distribution at `rank` and compare −log-likelihoods by BIC or AIC.

    candidates : names among "gaussian" (Frobenius fit, σ² by maximum likelihood), "poisson" (KL
        fit), and the irls losses "nb", "gp", "zip", "zinb", "gamma", "inverse_gaussian",
        "tweedie".  Default: the count models for integer data, the positive continuous ones
        (with "gaussian") for data with non-integer entries and no zeros.
    criterion : "bic" (2·NLL + df·log N, the default) or "aic" (2·NLL + 2·df), N = m·n entries.
    df counts the factors' entries (m + n)·k, plus the dispersion parameters (one per row, column
    or one, by `dispersion`), the zero probabilities of zip/zinb (by `zi`), and σ² for "gaussian".
    Every candidate starts from the same seed.  A continuous density and a probability mass are
    different things: comparing "gaussian" with the count models on integer data follows common
    practice (RcppML's auto_nmf_distribution does it) but is a heuristic.
    """
    from .fit import fit  # fit imports the solvers, which import this module
    X = check_matrix(X, "X")
    criterion = choose(criterion, ("bic", "aic"), "criterion")
    mode = DISPERSION_MODES[choose(dispersion, DISPERSION_MODES, "dispersion")]
    if candidates is None:
        candidates = _default_candidates(X)
    candidates = [choose(c, CANDIDATES, "candidate distribution") for c in candidates]
    if not candidates:
        raise ValueError("candidates must name at least one distribution")
    shape = X.shape
    table, fits = [], {}
    for name in candidates:
        df = (shape[0] + shape[1]) * int(rank)
        if name == "gaussian":
            f = fit(X, rank, loss="frobenius", seed=seed, max_iter=max_iter, tol=tol, **fit_options)
            nll, df = gaussian_nll(X, f.W, f.H), df + 1
        elif name == "poisson":
            f = fit(X, rank, loss="kl", seed=seed, max_iter=max_iter, tol=tol, **fit_options)
            mu = np.maximum(np.asarray(f.W, float) @ np.asarray(f.H, float), 1e-300)
            nll = float(entrywise(Poisson().nll, X, mu, 1.0).sum())
        else:
            extra = {"zi": zi} if name in ZERO_INFLATED else {}
            f = fit(X, rank, loss=name, solver="irls", seed=seed, max_iter=max_iter, tol=tol,
                    dispersion=mode, **extra, **fit_options)
            nll = float(f.loss)
            if make_model(name).has_dispersion:
                df += count_parameters(mode, shape)
            if name in ZERO_INFLATED:
                df += count_parameters(ZI_MODES[choose(zi, ZI_MODES, "zi")], shape)
        fits[name] = f
        table.append({"distribution": name, "nll": nll, "df": df, **information_criteria(nll, df, shape[0] * shape[1])})
    best = min(table, key=lambda row: row[criterion])["distribution"]
    return DistributionChoice(table=table, best=best, criterion=criterion, fits=fits)


def _default_candidates(X):
    values = X.data if sp.issparse(X) else np.asarray(X)
    integer = bool(np.all(values == np.round(values)))
    if integer:
        return COUNT_CANDIDATES
    positive = (X.nnz == shape_size(X)) if sp.issparse(X) else bool(np.all(values > 0))
    return POSITIVE_CANDIDATES if positive else ("gaussian", "poisson", "nb", "tweedie")


def shape_size(X):
    return X.shape[0] * X.shape[1]
