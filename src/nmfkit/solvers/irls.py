"""Maximum-likelihood NMF for count, positive and heavy-tailed data by iteratively reweighted least
squares (IRLS): negative binomial, gamma, inverse Gaussian, Tweedie, generalised Poisson,
zero-inflated Poisson / NB, and the robust Huber and L1 losses.

    min_{W, H ≥ 0, φ, π}  Σ_ij ℓ(x_ij; μ_ij, φ, π),     μ = W H,

ℓ the negative log-likelihood of the model (nmfkit.distributions; Huber's ρ_δ and |x − μ| for the
robust losses), φ its dispersion (per row, per column or global) and π the zero probability of the
zero-inflated models.  The objective reported in the history is this −log-likelihood itself, with
every constant (lgamma(x + 1), log 2π, …), so that candidates can be compared by BIC/AIC.

H half-step (the W half-step is the same on Xᵀ): for every column j, with the weights w and working
responses z of the model at the current μ (Fisher scoring, identity link: w = 1/Var(x_ij),
w (z − μ) = −∂ℓ/∂μ; z = x for the exponential families and the robust losses),

    h_j ← argmin_{h ≥ 0} Σ_i w_ij (z_ij − W_i· h)²,

a weighted NNLS with its own k×k Gram per column, solved by warm-started coordinate descent
(solvers/_irls_kernels.py).  Its solution's direction lowers ℓ to first order (the quadratic model
has ℓ's gradient and a positive definite Hessian), but a full Fisher step can overshoot: IRLS is
not monotone in general (Green, JRSS-B 46, 1984).  nmfkit therefore halves the step of any column
whose −log-likelihood rose (up to 8 times, then keeps the old column), as R's glm.fit does for a
non-finite deviance.  For Huber and L1 the weighted problem is a majorizer of the loss (Huber's
IRLS is an MM algorithm), so the full step already descends (for L1 where |x − μ| is above the
floor ε = 1e-8 · mean(X) of its weights 1/max(|r|, ε); the halving guards the rest).

Start: `warmup` (default 30) iterations of Poisson IRLS from the init, not counted in n_iter and
skipped for a given (W0, H0); the models weighted by 1/μ² or 1/μ³ otherwise settle in far worse
stationary points on data with exact zeros.

Between iterations the dispersion takes safeguarded Newton steps (distributions.update_dispersion)
and, for zip/zinb, EM updates the zero probabilities: the E-step gives each zero its posterior τ of
being a structural zero, the half-steps fit the count model with weights (1 − τ), and π is the
mean of τ per row or column (Lambert, Technometrics 34, 1992).

Guarantee: every accepted update lowers (or keeps) its part of the objective — the −log-likelihood
for fixed π, the EM surrogate for zip/zinb, whose increase EM turns into a decrease of the observed
−log-likelihood — so the history is non-increasing up to rounding.  The limit is a stationary
point, not a global optimum.

The likelihood is evaluated at max(μ, 1e-8 · mean(X)) so that a zero in W H does not make it
infinite.  Cost per iteration: 2 m n k² for the per-column and per-row Grams, the m×n means and
weights (dense m×n work arrays, also for sparse X, whose zeros count in every column), a few
entrywise evaluations of ℓ (lgamma and logarithms) for the step halving and the dispersion, and
50 coordinate-descent sweeps of k² per row at most.  Penalties are not supported.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import distributions as dist
from ..registry import LIKELIHOOD_LOSSES, register_solver
from ..validation import check_positive_int, choose
from ._irls_kernels import weighted_nnls_rows
from .base import Solver

MAX_HALVINGS = 8


def _check_positive_number(value, name, low=None, high=None, open_low=True):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    value = float(value)
    if low is not None and (value <= low if open_low else value < low):
        raise ValueError(f"{name} must be {'>' if open_low else '≥'} {low}; got {value!r}")
    if high is not None and value >= high:
        raise ValueError(f"{name} must be < {high}; got {value!r}")
    return value


@register_solver("irls", losses=LIKELIHOOD_LOSSES, max_iter=200, monotone=True, default_init="nndsvda",
                 summary="iteratively reweighted NNLS for count/positive/robust models (NB, gamma, IG, Tweedie, "
                         "GP, ZIP/ZINB, Huber, L1); step halving keeps it monotone",
                 options={"dispersion": "row", "dispersion_start": None, "power": 1.5, "delta": 1.345, "zi": "row",
                          "warmup": 30, "cd_maxit": 50, "cd_tol": 1e-8},
                 penalties=False)
class IRLS(Solver):
    requires = frozenset({"core", "complete", "numpy_factors", "numpy_data"})
    checkpoint_attrs = ("phi", "pi")

    def __init__(self, engine, loss, beta, *, dispersion="row", dispersion_start=None, power=1.5, delta=1.345,
                 zi="row", warmup=30, cd_maxit=50, cd_tol=1e-8, **options):
        super().__init__(engine, loss, beta, **options)
        if self.penalty.active:
            raise ValueError("solver 'irls' does not support the alpha_W/alpha_H penalties")
        mode = choose(dispersion, dist.DISPERSION_MODES, "dispersion")
        self.mode = dist.DISPERSION_MODES[mode]
        power = _check_positive_number(power, "power", 1.0, 2.0)
        delta = _check_positive_number(delta, "delta", 0.0)
        self.cd_maxit = check_positive_int(cd_maxit, "cd_maxit")
        self.warmup = check_positive_int(warmup, "warmup", minimum=0)
        self.cd_tol = _check_positive_number(cd_tol, "cd_tol", 0.0, open_low=False)
        self.model = dist.make_model(loss, power=power, delta=delta, eps=1e-8 * self._scale())
        self.zi_mode = dist.ZI_MODES[choose(zi, dist.ZI_MODES, "zi")] if loss in dist.ZERO_INFLATED else None
        if dispersion_start is not None:
            dispersion_start = _check_positive_number(dispersion_start, "dispersion_start",
                                                      self.model.lower, open_low=False)
            if dispersion_start > self.model.upper:
                raise ValueError(f"dispersion_start must be at most {self.model.upper:g} for loss {loss!r}")
        self.phi_start = self.model.start if dispersion_start is None else dispersion_start
        self._check_data()
        self.mu_floor = self.model.mu_floor_for(self._scale())
        self.phi = self.pi = None
        self._rows = self._cols = None

    # -- set-up ------------------------------------------------------------------------------------
    def _scale(self):
        m, n = self.engine.shape
        return max(float(self.engine.X_row_sums().sum()) / (m * n), np.finfo(float).tiny)

    def _check_data(self):
        X = self.engine.X
        if self.model.positive_data:
            has_zero = X.nnz < X.shape[0] * X.shape[1] or (X.data == 0).any() if sp.issparse(X) \
                else bool((np.asarray(X) == 0).any())
            if has_zero:
                raise ValueError(f"loss {self.loss!r} needs X > 0 everywhere (its density is 0 or undefined at "
                                 "x = 0); use 'tweedie' (1 < power < 2) or a count model for data with zeros")

    def prepare(self, W, Ht):
        self._init_state()
        W = np.array(W, order="C", copy=True)
        Ht = np.array(Ht, order="C", copy=True)
        if not self.given_start:
            W, Ht = self._poisson_warmup(W, Ht)
        return W, Ht

    def _init_state(self):
        """X's rows and columns, and the dispersion and zero probabilities at their starts (a
        checkpoint's values, set before, are kept)."""
        m, n = self.engine.shape
        X = self.engine.X
        self._rows = X
        self._cols = X.T.tocsr() if sp.issparse(X) else X.T
        if self.phi is None:
            shape = dist.parameter_shape(self.mode, (m, n)) if self.mode != "none" else (1, 1)
            self.phi = np.full(shape, self.phi_start)
        if self.zi_mode is not None and self.pi is None:
            zeros = 1.0 - dist.group_sum(self._nonzero_indicator(), self.zi_mode) / (
                n if self.zi_mode == "row" else m)
            self.pi = 0.5 * zeros

    def _poisson_warmup(self, W, Ht):
        """`warmup` iterations of Poisson IRLS (KL) from the init: a start near the data's low-rank
        structure, from which the heavier-weighted models (variance μ^p, p > 1) converge to a far
        better stationary point than from the init itself (RcppML ramps its generalised-Poisson
        weights in from KL weights for the same reason).  Not counted in n_iter; skipped for a
        given start (W0, H0)."""
        model, self.model = self.model, dist.Poisson()
        one = np.ones((1, 1))
        try:
            for _ in range(self.warmup):
                Ht = self._half(self._cols, Ht, W, one, None)
                W = self._half(self._rows, W, Ht, one, None)
        finally:
            self.model = model
        return W, Ht

    def _nonzero_indicator(self):
        X = self.engine.X
        if sp.issparse(X):
            C = X.tocoo()
            out = np.zeros(X.shape)
            out[C.row, C.col] = C.data != 0
            return out
        return (np.asarray(X) != 0).astype(float)

    # -- one iteration -----------------------------------------------------------------------------
    def _mu(self, F, Other):
        return np.maximum(np.asarray(F, np.float64) @ np.asarray(Other, np.float64).T, self.mu_floor)

    def step(self, W, Ht):
        prior = None
        if self.zi_mode is not None:        # E-step at the current iterate
            tau = dist.zero_posterior(self.model, self._rows, self._mu(W, Ht), self.phi, self.pi)
            prior = 1.0 - tau
        Ht_new = self._half(self._cols, Ht, W, self.phi.T, None if prior is None else prior.T)
        W_new = self._half(self._rows, W, Ht_new, self.phi, prior)
        mu = self._mu(W_new, Ht_new)
        if self.zi_mode is not None:
            self.pi = dist.update_zero_probability(tau, self.zi_mode)
        self.phi = dist.update_dispersion(self.model, self._rows, mu, self.phi, self.mode, prior, newton_steps=1)
        objective = float(dist.observed_nll(self.model, self._rows, mu, self.phi, self.pi).sum())
        return W_new, Ht_new, objective

    def objective(self, W, Ht):
        if self._rows is None:
            self._init_state()
        return float(dist.observed_nll(self.model, self.engine.X, self._mu(W, Ht), self.phi, self.pi).sum())

    def _half(self, D, F, Other, phi, prior):
        """One safeguarded IRLS update of every row of F against the rows of D (X or Xᵀ)."""
        model = self.model
        mu = self._mu(F, Other)
        w, wz = dist.entrywise(model.irls, D, mu, phi)
        if prior is not None:
            w, wz = w * prior, wz * prior
        F0 = np.asarray(F, np.float64)
        target = weighted_nnls_rows(F0, w, wz, Other, self.cd_maxit, self.cd_tol)
        old = dist.group_sum(dist.weighted_nll(model, D, mu, phi, prior), "row").ravel()
        out = F0.copy()
        pending = np.ones(F0.shape[0], dtype=bool)
        t = 1.0
        for _ in range(MAX_HALVINGS + 1):
            rows = np.flatnonzero(pending)
            trial = F0[rows] + t * (target[rows] - F0[rows])
            sub = D[rows]
            new = dist.group_sum(dist.weighted_nll(model, sub, self._mu(trial, Other), _rows_of(phi, rows),
                                                   None if prior is None else prior[rows]), "row").ravel()
            ok = new <= old[rows]
            out[rows[ok]] = trial[ok]
            pending[rows[ok]] = False
            if not pending.any():
                break
            t /= 2
        return out.astype(F.dtype, copy=False)


def _rows_of(param, rows):
    """A per-row parameter's rows (others broadcast unchanged)."""
    return param[rows] if param.shape[0] > 1 else param
