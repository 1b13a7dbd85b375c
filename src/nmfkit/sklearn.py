"""scikit-learn's NMF interface on nmfkit's solvers: `NMF`, `MiniBatchNMF`, `non_negative_factorization`.

    from nmfkit import NMF                      # needs: pip install nmfkit[sklearn]
    W = NMF(n_components=10, random_state=0).fit_transform(X)   # X: n_samples × n_features

Orientation is scikit-learn's: X (n_samples × n_features) ≈ W H with
W = `fit_transform(X)` (n_samples × k) and H = `components_` (k × n_features).
This is also nmfkit's own orientation (X m×n ≈ W m×k · H k×n); penalties keep
scikit-learn's meaning (`alpha_W` scaled by n_features, `alpha_H` by n_samples).

Solvers: `solver="cd"` (coordinate descent, Frobenius loss only) runs nmfkit's accelerated
HALS — exact coordinate descent on the columns of W and H (Gillis & Glineur 2012, with
Ang & Gillis 2019 extrapolation); `solver="mu"` runs nmfkit's β-divergence multiplicative
updates (Lee & Seung 2000, Févotte & Idier 2011), W's half-step first as in scikit-learn;
`"auto"` (the default) picks the fastest nmfkit solver for the loss; any other name of
`nmfkit.solvers_table()` is accepted too.

`transform(X_new)` solves, for the fitted components H, min_{W ≥ 0} D(X_new ‖ W H) row by
row (`nmfkit.project`: exact block principal pivoting for Frobenius, per-row multiplicative
updates to `tol` for other β).  `fit_transform` returns the W that minimises the loss for the
final components: the same exact projection for Frobenius — so `fit(X).transform(X)` equals
`fit_transform(X)` (scikit-learn's NMF does not promise this: scikit-learn issue #18663) and
W is never worse than the solver's last iterate — and, for other losses, the multiplicative
updates continued from the solver's W until each row changes by less than `tol` (never worse
than it; `transform(X)` starts from a uniform W, so the two agree only approximately).
`MiniBatchNMF` runs the online multiplicative updates of `nmfkit.minibatch` (Lefèvre, Bach &
Févotte 2011).
"""
from __future__ import annotations

import math
import numbers
import sys
import time
import warnings
from dataclasses import replace

import numpy as np
from scipy.sparse import issparse

try:
    from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils.validation import check_array, check_is_fitted, check_non_negative, validate_data
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("nmfkit.NMF needs scikit-learn: pip install nmfkit[sklearn]") from None

from .engines import make_engine
from .fit import fit as nmf_fit
from .fit import max_entry
from .minibatch import OnlineMU, row_blocks
from .penalties import Penalty
from .project import solve_coefficients
from .registry import INITS, SOLVERS, resolve_loss
from .solvers.base import floor_of
from .validation import check_nonneg_float, check_positive_int, check_rank, check_seed, precheck

_BETA_NAMES = {"frobenius": "frobenius", "kullback-leibler": "kl", "kl": "kl", "itakura-saito": "is", "is": "is"}
_INIT_NAMES = ("random", "nndsvd", "nndsvda", "nndsvdar", "custom")
_SOLVER_NAMES = {"cd": "hals", "mu": "mu"}


def _convergence_warning(max_iter):
    warnings.warn(f"Maximum number of iterations {max_iter} reached. Increase it to improve convergence.",
                  ConvergenceWarning, stacklevel=3)


def _check_given(A, shape, whom, X, allow_zero=False):
    """A user's initial W or H: X's dtype, the expected shape, non-negative, not all zero (a start
    with nothing to update; fixed components may be all zero, the optimum of strong penalties)."""
    A = check_array(A, dtype=None, accept_sparse=False)
    if A.dtype != X.dtype:
        raise TypeError(f"{whom} should have the same dtype as X; got {A.dtype} and {X.dtype}")
    for axis, which in ((0, "first"), (1, "second")):
        if A.shape[axis] != shape[axis]:
            raise ValueError(f"Array with wrong {which} dimension passed to {whom}. "
                             f"Expected {shape[axis]}, but got {A.shape[axis]}.")
    check_non_negative(A, whom)
    if not allow_zero and A.size and np.max(A) == 0:
        raise ValueError(f"Array passed to {whom} is full of zeros.")
    return np.array(A, order="C")       # a copy: the caller's array is never written to


NO_MISSING = ("nmfkit.NMF has no missing entries: fill them first (X.filled(value)), "
              "or use nmfkit.fit(..., missing='mask')")

def _clear_floor(F):
    """Entries at the multiplicative updates' floor δ = eps² (kept there so that they can still
    move) are zeros of the solution: report them as 0 (in place; F is the estimator's own array)."""
    F[F <= floor_of(F.dtype)] = 0
    return F


def _check_scale(X):
    """Refuse data whose largest entry is beyond eps⁻² (or below eps², not zero) of its dtype: the
    estimator's products and losses would overflow or underflow.  `nmfkit.fit` rescales such data
    internally; the estimator keeps scikit-learn's units in every attribute, so it asks instead."""
    eps = float(np.finfo(X.dtype).eps)
    top = max_entry(X)
    if top and not eps * eps <= top <= 1.0 / (eps * eps):
        raise ValueError(f"X's largest entry is {top:.3g}, beyond the range in which {X.dtype} products and "
                         f"losses stay finite ({eps * eps:.1g} to {1 / (eps * eps):.1g}); rescale X first "
                         "(NMF is scale-equivariant), or use nmfkit.fit, which rescales internally")


def _has_zero(X):
    if issparse(X):
        return X.nnz < X.shape[0] * X.shape[1] or bool((X.data == 0).any())
    return bool((X == 0).any())


class _Printer:
    """scikit-learn-style progress lines on stderr (wherever it goes: terminal, file, pipe)."""

    def __init__(self, verbose, label):
        self.verbose, self.label, self.start = int(verbose), label, time.perf_counter()

    def __call__(self, state):
        fresh = state.history["iteration"][-1] == state.iteration     # objective evaluated this iteration
        if fresh and (self.verbose > 1 or state.iteration % 10 == 0):
            print(f"{self.label}: epoch {state.iteration:02d} reached after "
                  f"{time.perf_counter() - self.start:.3f} seconds, error: "
                  f"{math.sqrt(max(2.0 * state.objective, 0.0)):f}", file=sys.stderr, flush=True)
        return False


class _BaseNMF(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """What NMF and MiniBatchNMF share: validation, initialisation, projection, error."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _validate(self, X, reset):
        precheck(X, "X", NO_MISSING)   # before scikit-learn converts or reads it
        X = validate_data(self, X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32], reset=reset)
        check_non_negative(X, f"{type(self).__name__} (input X)")
        _check_scale(X)
        return X

    def _loss(self):
        """(loss, β) in nmfkit's terms from scikit-learn's `beta_loss`."""
        b = self.beta_loss
        if isinstance(b, numbers.Real) and not isinstance(b, (bool, np.bool_)):
            if not np.isfinite(b):
                raise ValueError(f"beta_loss must be finite; got {b!r}")
            return resolve_loss("frobenius", float(b))
        if isinstance(b, str) and b.lower() in _BETA_NAMES:
            return resolve_loss(_BETA_NAMES[b.lower()])
        raise ValueError(f"beta_loss must be 'frobenius', 'kullback-leibler', 'itakura-saito' or a float; got {b!r}")

    def _check_data_for_loss(self, X, beta):
        if beta <= 0 and _has_zero(X):
            raise ValueError(f"When beta_loss <= 0 and X contains zeros, the solver may diverge: beta_loss={beta:g} "
                             "is infinite at a zero entry; add a small offset to X or use beta_loss > 0")

    def _penalties(self):
        """(alpha_W, alpha_H, l1_ratio) checked, with alpha_H='same' resolved."""
        alpha_W = check_nonneg_float(self.alpha_W, "alpha_W")
        same = isinstance(self.alpha_H, str) and self.alpha_H == "same"
        alpha_H = alpha_W if same else check_nonneg_float(self.alpha_H, "alpha_H")
        l1_ratio = check_nonneg_float(self.l1_ratio, "l1_ratio")
        if l1_ratio > 1:
            raise ValueError(f"l1_ratio must be in [0, 1]; got {l1_ratio}")
        return alpha_W, alpha_H, l1_ratio

    def _rank(self, shape, W=None, H=None):
        k = self.n_components
        if k is None or (isinstance(k, str) and k == "auto"):
            if H is not None:
                return check_rank(np.shape(H)[0], shape)
            if W is not None:
                return check_rank(np.shape(W)[1], shape)
            return min(shape)
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"n_components must be a positive integer, 'auto' or None; got {k!r}")
        return int(k)

    def _init_name(self):
        init = self.init
        if init is not None and init not in _INIT_NAMES:
            raise ValueError(f"init must be None or one of {', '.join(map(repr, _INIT_NAMES))}; got {init!r}")
        return "nndsvda" if init is None else init

    def _initial_factors(self, X, W, H, update_H=True, draw=True):
        """(rank, W0, H0) for a fit; W0 is None when H is fixed, both are None when `draw` is False
        and init is not "custom" (the fit then draws each run's start itself)."""
        m, n = X.shape
        init = self._init_name()
        if not update_H:
            if H is None:
                raise ValueError("update_H=False needs the fixed components H (n_components × n_features)")
            if W is not None:
                warnings.warn("When update_H=False, the provided initial W is not used.", RuntimeWarning,
                              stacklevel=3)
            rank = self._rank(X.shape, H=H)
            return rank, None, _check_given(H, (rank, n), f"{type(self).__name__} (input H)", X, allow_zero=True)
        if init != "custom" and (W is not None or H is not None):
            warnings.warn("When init!='custom', provided W or H are ignored. Set init='custom' to use them "
                          "as initialization.", RuntimeWarning, stacklevel=3)
            W = H = None
        rank = self._rank(X.shape, W, H)
        if self.init is not None and init.startswith("nndsvd") and rank > min(m, n):
            raise ValueError(f"init = '{init}' can only be used when n_components <= min(n_samples, n_features) "
                             f"= {min(m, n)}; got n_components={rank}")
        rank = check_rank(rank, X.shape)
        if init == "custom":
            if W is None or H is None:
                raise ValueError("init='custom' needs both W and H passed to fit / fit_transform")
            whom = type(self).__name__
            return (rank, _check_given(W, (m, rank), f"{whom} (input W)", X),
                    _check_given(H, (rank, n), f"{whom} (input H)", X))
        if not draw:
            return rank, None, None
        seed = check_seed(self.random_state, "random_state")
        engine = make_engine(X.tocsr() if issparse(X) else X)
        W0, Ht0 = INITS[init](engine, rank, np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]))
        return rank, np.ascontiguousarray(W0), np.ascontiguousarray(Ht0.T)

    def _solve_W(self, X, H, start=None, max_iter=None):
        """W ≥ 0 minimising the loss (plus W's penalty) for X with H fixed: exact for Frobenius,
        multiplicative updates from `start` (default: the uniform start) otherwise."""
        loss, beta = self._loss()
        alpha_W, _, l1_ratio = self._penalties()
        if max_iter is None:
            max_iter = self.max_iter
        max_iter = max(int(max_iter), 1)
        # X ≈ W H  ⇔  Xᵀ ≈ Hᵀ Wᵀ: W's rows are the coefficients of Xᵀ on the basis Hᵀ, penalised by
        # alpha_W × n_features exactly as in the fit.
        engine = make_engine(X.T.tocsr() if issparse(X) else np.ascontiguousarray(X.T))
        m, n = X.shape
        penalty = Penalty.from_options((n, m), 0.0, alpha_W, l1_ratio)
        Ht = np.ascontiguousarray(H.T, dtype=X.dtype)
        W = solve_coefficients(engine, Ht, loss, beta, penalty, float(self.tol), max_iter, start)
        return _clear_floor(np.ascontiguousarray(W, dtype=X.dtype))

    def _error(self, X, W, H):
        """scikit-learn's reconstruction_err_: √(2·D_β(X ‖ W H)) (= ‖X − WH‖_F for Frobenius)."""
        loss, beta = self._loss()
        engine = make_engine(X.tocsr() if issparse(X) else X)
        value = engine.loss(W, np.ascontiguousarray(H.T, dtype=X.dtype), loss, beta, exact=True)
        return float(np.sqrt(2.0 * max(value, 0.0)))

    def _set_fitted(self, H, n_iter):
        self.components_ = np.ascontiguousarray(H)
        self.n_components_ = self._n_components = H.shape[0]
        self.n_iter_ = int(n_iter)

    def fit(self, X, y=None, W=None, H=None):
        """Learn the components H from X (n_samples × n_features); returns self.
        W, H: the initial factors when init='custom'."""
        self.fit_transform(X, W=W, H=H)
        return self

    def transform(self, X):
        """W ≥ 0 (n_samples × k) minimising the loss for X with the components fixed."""
        check_is_fitted(self, "components_")
        X = self._validate(X, reset=False)
        self._check_data_for_loss(X, self._loss()[1])
        return self._solve_W(X, self.components_.astype(X.dtype, copy=False),
                             max_iter=getattr(self, "_transform_max_iter", None))

    def inverse_transform(self, X):
        """Data-space reconstruction W H (n_samples × n_features) from W = X."""
        check_is_fitted(self, "components_")
        precheck(X, "X", NO_MISSING)   # before scikit-learn converts or reads it
        W = check_array(X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32])
        if W.shape[1] != self.components_.shape[0]:
            raise ValueError(f"inverse_transform needs an n_samples × {self.components_.shape[0]} matrix "
                             f"(one column per component); got {W.shape[0]}×{W.shape[1]}")
        return np.asarray(W @ self.components_.astype(W.dtype, copy=False))

    @property
    def _n_features_out(self):
        """Number of output features, for get_feature_names_out ("nmf0", "nmf1", …)."""
        return self.components_.shape[0]


class NMF(_BaseNMF):
    """Non-negative matrix factorization X ≈ W H as a scikit-learn transformer.

    Parameters
    ----------
    n_components : int, "auto" or None. "auto"/None: the rank of a custom init's W/H, else
        min(n_samples, n_features) (nmfkit refuses a rank above that; scikit-learn takes n_features).
    init : None ("nndsvda"), "random", "nndsvd", "nndsvda", "nndsvdar", or "custom" (the W and H
        given to `fit`/`fit_transform`).
    solver : "auto" (nmfkit's fastest for the loss), "cd" (coordinate descent, Frobenius only:
        nmfkit's accelerated HALS), "mu" (multiplicative updates, any β), or any name of
        `nmfkit.solvers_table()`.
    beta_loss : "frobenius", "kullback-leibler", "itakura-saito" or a float β.
    tol : nmfkit's stopping rule: the relative objective decrease per iteration, averaged over 5
        iterations, below tol (0 = run max_iter iterations).
    max_iter : iteration cap; reaching it with tol > 0 warns (ConvergenceWarning).
    random_state : int, RandomState, Generator or None.
    alpha_W, alpha_H, l1_ratio : L1/L2 penalties, scikit-learn's meaning and scaling
        (alpha_H="same" copies alpha_W).
    verbose : 1 prints a line every 10 iterations on stderr, 2 every iteration.
    shuffle : solver "cd": sweep the components in a random order, drawn once from random_state.
    n_runs : independent random restarts; the best fit is kept (nmfkit's addition).

    Attributes
    ----------
    components_ (H, k × n_features), n_components_, reconstruction_err_
    (‖X − WH‖_F, or √(2·D_β)), n_iter_, n_features_in_, feature_names_in_,
    factorization_ (the `nmfkit.Factorization` of the fit).
    """

    def __init__(self, n_components="auto", *, init=None, solver="auto", beta_loss="frobenius", tol=1e-4,
                 max_iter=200, random_state=None, alpha_W=0.0, alpha_H="same", l1_ratio=0.0, verbose=0,
                 shuffle=False, n_runs=1):
        self.n_components = n_components
        self.init = init
        self.solver = solver
        self.beta_loss = beta_loss
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.verbose = verbose
        self.shuffle = shuffle
        self.n_runs = n_runs

    def _solver_name(self, loss, beta):
        solver = self.solver
        if not isinstance(solver, str) or (solver not in _SOLVER_NAMES and solver != "auto"
                                           and solver not in SOLVERS):
            raise ValueError(f"solver must be 'auto', 'cd', 'mu' or a solver of nmfkit.solvers_table(); "
                             f"got {solver!r}")
        if solver == "cd" and loss != "frobenius":
            raise ValueError(f"Invalid beta_loss parameter: solver 'cd' does not handle beta_loss = {beta!r}; "
                             "use solver='mu' (or 'auto')")
        return _SOLVER_NAMES.get(solver, solver)

    def fit_transform(self, X, y=None, W=None, H=None):
        """Learn the components from X and return W (n_samples × k) minimising the loss for them.
        W, H: the initial factors when init='custom'."""
        X = self._validate(X, reset=True)
        W, H, n_iter = self._fit_transform(X, W, H, update_H=True)
        self.reconstruction_err_ = self._error(X, W, H)
        self._set_fitted(H, n_iter)
        return W

    def _fit_transform(self, X, W=None, H=None, update_H=True):
        """(W, H, n_iter) for validated X; H stays fixed when update_H is False."""
        loss, beta = self._loss()
        solver = self._solver_name(loss, beta)
        max_iter = check_positive_int(self.max_iter, "max_iter")
        tol = check_nonneg_float(self.tol, "tol")
        n_runs = check_positive_int(self.n_runs, "n_runs")
        alpha_W, alpha_H, l1_ratio = self._penalties()
        if not isinstance(self.shuffle, (bool, np.bool_)):
            raise ValueError(f"shuffle must be True or False; got {self.shuffle!r}")
        self._check_data_for_loss(X, beta)
        rank, W0, H0 = self._initial_factors(X, W, H, update_H, draw=n_runs == 1)
        if not update_H:
            return self._solve_W(X, H0), H0, 0
        penalties = {k: v for k, v in (("alpha_W", alpha_W), ("alpha_H", alpha_H), ("l1_ratio", l1_ratio)) if v}
        order = None
        if W0 is None:                    # n_runs > 1: the fit draws each run's start
            init, seed = self._init_name(), check_seed(self.random_state, "random_state")
        else:
            init, seed = (W0, H0), None
            if self.shuffle and solver == "hals":
                order = np.random.default_rng(check_seed(self.random_state, "random_state")).permutation(rank)
                init = (W0[:, order], H0[order])
        if self.solver == "cd":          # one sweep per half-step: scikit-learn's coordinate descent
            penalties["inner_alpha"] = 0.0
        options = dict(max_iter=max_iter, tol=tol, seed=seed, n_runs=n_runs, loss=loss,
                       beta=beta if loss == "beta" else None,
                       callback=_Printer(self.verbose, "NMF") if self.verbose else None)
        if solver == "mu" and n_runs == 1:
            # scikit-learn's MU updates W first: nmfkit's MU on Xᵀ ≈ Hᵀ Wᵀ does exactly that.
            swapped = {"alpha_W": alpha_H, "alpha_H": alpha_W, "l1_ratio": l1_ratio} if (alpha_W or alpha_H) else {}
            result = nmf_fit(X.T, rank, solver=solver, init=(init[1].T, init[0].T), **options, **swapped)
            result = replace(result, W=np.ascontiguousarray(result.H.T), H=np.ascontiguousarray(result.W.T),
                             row_names=result.col_names, col_names=result.row_names,
                             options={**result.options,
                                      **({"alpha_W": alpha_W, "alpha_H": alpha_H} if swapped else {})})
            W_fit, H_fit = result.W, result.H
        else:
            if any(penalties.get(k) for k in ("alpha_W", "alpha_H", "l1_ratio")):
                penalties["alpha_H"] = alpha_H
            result = nmf_fit(X, rank, solver=solver, init=init, **options, **penalties)
            W_fit, H_fit = np.asarray(result.W), np.asarray(result.H)
        if order is not None:             # back to the caller's component order
            undo = np.argsort(order)
            W_fit, H_fit = W_fit[:, undo], H_fit[undo]
            result = replace(result, W=W_fit, H=H_fit)
        self.factorization_ = result
        if result.stop_reason == "max_iter" and tol > 0:
            _convergence_warning(max_iter)
        if self.verbose and result.converged:
            print(f"NMF: converged at iteration {result.n_iter}", file=sys.stderr, flush=True)
        H_fit = _clear_floor(np.array(H_fit, dtype=X.dtype))
        W_out = self._solve_W(X, H_fit, start=np.ascontiguousarray(W_fit, dtype=X.dtype))
        return W_out, H_fit, int(result.n_iter)


def non_negative_factorization(X, W=None, H=None, n_components="auto", *, init=None, update_H=True,
                               solver="auto", beta_loss="frobenius", tol=1e-4, max_iter=200, alpha_W=0.0,
                               alpha_H="same", l1_ratio=0.0, random_state=None, verbose=0, shuffle=False):
    """scikit-learn's `non_negative_factorization` on nmfkit's solvers: returns (W, H, n_iter).

    X (n_samples × n_features) ≈ W H.  Parameters as `nmfkit.NMF`; with update_H=False, H is
    fixed (W is then solved directly, as `NMF.transform` does, and n_iter is 0).  W is the
    same as `NMF(...).fit_transform(X)` returns: the minimiser of the loss for the final H.
    """
    est = NMF(n_components, init=init, solver=solver, beta_loss=beta_loss, tol=tol, max_iter=max_iter,
              random_state=random_state, alpha_W=alpha_W, alpha_H=alpha_H, l1_ratio=l1_ratio,
              verbose=verbose, shuffle=shuffle)
    precheck(X, "X", NO_MISSING)   # before scikit-learn converts or reads it
    X = check_array(X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32])
    check_non_negative(X, "NMF (input X)")
    return est._fit_transform(X, W, H, update_H=update_H)


class MiniBatchNMF(_BaseNMF):
    """Mini-batch NMF: online multiplicative updates over blocks of rows (Lefèvre, Bach & Févotte 2011).

    Parameters
    ----------
    n_components, init, beta_loss, alpha_W, alpha_H, l1_ratio, random_state : as `nmfkit.NMF`.
    batch_size : rows per mini-batch.
    tol : stop when an update changes H by less than tol relative to ‖H‖_F (0 disables it).
    max_no_improvement : stop after this many consecutive mini-batches without a new lowest
        smoothed batch cost (None disables it).
    max_iter : passes over the data (epochs).
    forget_factor : weight ρ of past mini-batches' statistics, per pass over the data
        (0: forget at once; 1: remember all, for a finite data set).
    fresh_restarts : solve each mini-batch's W afresh given H (exact for Frobenius) instead of one
        update from the rows' previous W.
    fresh_restarts_max_iter : iteration cap of those fresh solves (losses other than Frobenius).
    transform_max_iter : iteration cap of `transform` (default: max_iter).
    verbose : print one line per mini-batch on stderr.

    Attributes: components_, n_components_, reconstruction_err_, n_iter_ (passes), n_steps_
    (mini-batches processed), n_features_in_, feature_names_in_.
    """

    def __init__(self, n_components="auto", *, init=None, batch_size=1024, beta_loss="frobenius", tol=1e-4,
                 max_no_improvement=10, max_iter=200, alpha_W=0.0, alpha_H="same", l1_ratio=0.0,
                 forget_factor=0.7, fresh_restarts=False, fresh_restarts_max_iter=30, transform_max_iter=None,
                 random_state=None, verbose=0):
        self.n_components = n_components
        self.init = init
        self.batch_size = batch_size
        self.beta_loss = beta_loss
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.max_iter = max_iter
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.forget_factor = forget_factor
        self.fresh_restarts = fresh_restarts
        self.fresh_restarts_max_iter = fresh_restarts_max_iter
        self.transform_max_iter = transform_max_iter
        self.random_state = random_state
        self.verbose = verbose

    def _check_options(self, n_samples):
        batch_size = check_positive_int(self.batch_size, "batch_size")
        forget = check_nonneg_float(self.forget_factor, "forget_factor")
        if forget > 1:
            raise ValueError(f"forget_factor must be in [0, 1]; got {forget}")
        if self.max_no_improvement is not None:
            check_positive_int(self.max_no_improvement, "max_no_improvement")
        check_positive_int(self.fresh_restarts_max_iter, "fresh_restarts_max_iter")
        if self.transform_max_iter is not None:
            check_positive_int(self.transform_max_iter, "transform_max_iter")
        self._transform_max_iter = self.max_iter if self.transform_max_iter is None else self.transform_max_iter
        batch_size = min(batch_size, n_samples)
        return batch_size, forget ** (batch_size / n_samples)

    def _online(self, H0):
        alpha_W, alpha_H, l1_ratio = self._penalties()
        return OnlineMU(H0, self._loss()[1], alpha_W=alpha_W, alpha_H=alpha_H, l1_ratio=l1_ratio)

    def fit_transform(self, X, y=None, W=None, H=None):
        """Learn the components from X by mini-batches and return W (n_samples × k) minimising the
        loss for them.  W, H: the initial factors when init='custom'."""
        X = self._validate(X, reset=True)
        loss, beta = self._loss()
        max_iter = check_positive_int(self.max_iter, "max_iter")
        tol = check_nonneg_float(self.tol, "tol")
        batch_size, rho = self._check_options(X.shape[0])
        self._check_data_for_loss(X, beta)
        rank, W, H = self._initial_factors(X, W, H)
        X = X.tocsr() if issparse(X) else X
        online = self._online(H)
        blocks = row_blocks(X.shape[0], batch_size)
        W = np.array(W, dtype=X.dtype)
        best_cost, smoothed, stalled, steps, stop = np.inf, None, 0, 0, "max_iter"
        weight = min(1.0, batch_size / X.shape[0])
        for epoch in range(max_iter):
            for rows in blocks:
                H_before = online.Ht
                W[rows], cost = online.step(X[rows], W[rows], rho, fresh=bool(self.fresh_restarts),
                                            fresh_max_iter=self.fresh_restarts_max_iter, tol=tol)
                steps += 1
                smoothed = cost if smoothed is None else (1 - weight) * smoothed + weight * cost
                if self.verbose:
                    print(f"MiniBatchNMF: step {steps}/{max_iter * len(blocks)}: mean batch cost {cost:.6g}, "
                          f"smoothed {smoothed:.6g}", file=sys.stderr, flush=True)
                change = np.linalg.norm(online.Ht - H_before) / max(np.linalg.norm(online.Ht), np.finfo(float).tiny)
                informative = X[rows].nnz > 0 if issparse(X) else bool(X[rows].any())
                if tol > 0 and change <= tol and informative:      # an all-zero block cannot move H
                    stop = "converged"
                    break
                if smoothed < best_cost:
                    best_cost, stalled = smoothed, 0
                else:
                    stalled += 1
                if self.max_no_improvement is not None and stalled >= self.max_no_improvement:
                    stop = "no_improvement"
                    break
            if stop != "max_iter":
                break
        if self.verbose and stop != "max_iter":
            print(f"MiniBatchNMF: stopped at step {steps} ({stop.replace('_', ' ')})", file=sys.stderr, flush=True)
        if stop == "max_iter" and tol > 0:
            _convergence_warning(max_iter)
        H = _clear_floor(online.H)
        self._online_state = online
        self.n_steps_ = steps
        W_out = self._solve_W(X, H, start=None if self.fresh_restarts else W, max_iter=self._transform_max_iter)
        self.reconstruction_err_ = self._error(X, W_out, H)
        self._set_fitted(H, math.ceil(steps / len(blocks)))
        return W_out

    def partial_fit(self, X, y=None, W=None, H=None):
        """Update the components with one mini-batch X (all its rows); returns self.  The first
        call initialises them (W, H: the initial factors when init='custom'); each call solves the
        batch's W afresh given the components, then updates the components."""
        first = not hasattr(self, "components_")
        X = self._validate(X, reset=first)
        beta = self._loss()[1]
        self._check_data_for_loss(X, beta)
        if first:
            check_nonneg_float(self.tol, "tol")
            batch_size, _ = self._check_options(X.shape[0])
            _, _, H = self._initial_factors(X, W, H)
            self._online_state = self._online(H)
            self.n_steps_ = 0
        online = self._online_state
        rho = check_nonneg_float(self.forget_factor, "forget_factor") ** (
            min(check_positive_int(self.batch_size, "batch_size"), X.shape[0]) / X.shape[0])
        online.step(X.tocsr() if issparse(X) else X, None, rho, fresh=True,
                    fresh_max_iter=self._transform_max_iter, tol=float(self.tol))
        self.n_steps_ += 1
        self._set_fitted(_clear_floor(online.H), self.n_steps_)      # n_iter_: one step per call
        return self
