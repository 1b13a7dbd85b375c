"""`nmfkit.NMF`: a scikit-learn estimator around `nmfkit.fit` and `nmfkit.project`.

    from nmfkit import NMF                      # needs: pip install nmfkit[sklearn]
    W = NMF(n_components=10, random_state=0).fit_transform(X)   # X: n_samples × n_features

Orientation is scikit-learn's: X (n_samples × n_features) ≈ W H with
W = `fit_transform(X)` (n_samples × k) and H = `components_` (k × n_features).
This is also nmfkit's own orientation (X m×n ≈ W m×k · H k×n), so no transposes
happen on the fit; penalties keep scikit-learn's meaning (`alpha_W` scaled by
n_features, `alpha_H` by n_samples).

`transform(X_new)` solves, for the fitted components H, the non-negative
problem min_{W ≥ 0} D(X_new ‖ W H) row by row (`nmfkit.project` on the
transposed problem: exact block principal pivoting for Frobenius, per-row
multiplicative updates for other β).  `fit_transform` returns that same
projection of the training data on the final components, so
`fit(X).transform(X)` equals `fit_transform(X)` — scikit-learn's own NMF does
not guarantee this (scikit-learn issue #18663).  For the Frobenius loss the
projected W is the exact minimiser given H, so it is never worse than the
solver's last W.  Cost: one `nmfkit.fit` plus one projection (one product with X
and O(k³) per distinct active set).
"""
from __future__ import annotations

import numbers

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
    from sklearn.utils.validation import check_array, check_is_fitted, check_non_negative, validate_data
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("nmfkit.NMF needs scikit-learn: pip install nmfkit[sklearn]") from None

from .engines import make_engine
from .fit import fit as nmf_fit
from .project import project
from .registry import resolve_loss
from .validation import check_seed

_BETA_NAMES = {"frobenius": "frobenius", "kullback-leibler": "kl", "kl": "kl", "itakura-saito": "is", "is": "is"}


class NMF(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Non-negative matrix factorization X ≈ W H as a scikit-learn transformer.

    Parameters
    ----------
    n_components : int, "auto" or None. None/"auto" take min(n_samples, n_features)
        (nmfkit refuses a rank above that; scikit-learn's NMF would take n_features).
    solver : "auto" or any nmfkit solver name ("mu", "hals", "anls", …; see
        `nmfkit.solvers_table()`).
    beta_loss : "frobenius", "kullback-leibler", "itakura-saito" or a float β.
    init : None (the solver's default), "random", "nndsvd", "nndsvda", "nndsvdar";
        "custom" uses the W and H given to `fit_transform`.
    max_iter : iteration cap (None: the solver's default).
    tol : relative-decrease stopping tolerance of `nmfkit.fit` (0 = run max_iter).
    random_state : int, RandomState or None.
    alpha_W, alpha_H, l1_ratio : L1/L2 penalties, scikit-learn's meaning
        (alpha_H="same" copies alpha_W).
    n_runs : independent random restarts; the best fit is kept.
    verbose : show nmfkit's progress line.

    Attributes
    ----------
    components_ (H, k × n_features), n_components_, reconstruction_err_
    (‖X − WH‖_F, or √(2·D_β)), n_iter_, n_features_in_, feature_names_in_,
    factorization_ (the `nmfkit.Factorization` of the fit).
    """

    def __init__(self, n_components=None, *, solver="auto", beta_loss="frobenius", init=None, max_iter=None,
                 tol=1e-4, random_state=None, alpha_W=0.0, alpha_H="same", l1_ratio=0.0, n_runs=1,
                 verbose=0):
        self.n_components = n_components
        self.solver = solver
        self.beta_loss = beta_loss
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.n_runs = n_runs
        self.verbose = verbose

    # -- scikit-learn protocol ------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _validate(self, X, reset):
        X = validate_data(self, X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32], reset=reset)
        check_non_negative(X, f"{type(self).__name__} (input X)")
        return X

    def _loss(self):
        """(loss, β) in nmfkit's terms from scikit-learn's `beta_loss`."""
        b = self.beta_loss
        if isinstance(b, numbers.Real) and not isinstance(b, bool):
            return resolve_loss("frobenius", float(b))
        if isinstance(b, str) and b.lower() in _BETA_NAMES:
            return resolve_loss(_BETA_NAMES[b.lower()])
        raise ValueError(f"beta_loss must be 'frobenius', 'kullback-leibler', 'itakura-saito' or a float; got {b!r}")

    def _rank(self, shape):
        k = self.n_components
        if k is None or (isinstance(k, str) and k == "auto"):
            return min(shape)
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"n_components must be a positive integer, 'auto' or None; got {k!r}")
        return int(k)

    def _seed(self):
        return check_seed(self.random_state, "random_state")

    def _penalty_options(self):
        """Penalty keywords for nmfkit.fit, only when set (not every solver takes them)."""
        opts = {}
        if self.alpha_W != 0:
            opts["alpha_W"] = self.alpha_W
        if not (isinstance(self.alpha_H, str) and self.alpha_H == "same"):
            opts["alpha_H"] = self.alpha_H
        if self.l1_ratio != 0:
            opts["l1_ratio"] = self.l1_ratio
        return opts

    def fit(self, X, y=None, **params):
        """Learn the components H from X (n_samples × n_features); returns self."""
        self.fit_transform(X, **params)
        return self

    def fit_transform(self, X, y=None, W=None, H=None):
        """Learn the components from X and return W (n_samples × k), the projection of X on them."""
        X = self._validate(X, reset=True)
        loss, beta = self._loss()
        rank = self._rank(X.shape)
        init = "auto" if self.init is None else self.init
        if init == "custom" or W is not None or H is not None:
            if W is None or H is None:
                raise ValueError("init='custom' needs both W and H passed to fit_transform")
            init = (W, H)
        result = nmf_fit(X, rank, solver=self.solver, loss=loss, beta=beta if loss == "beta" else None,
                         init=init, max_iter=self.max_iter, tol=self.tol, seed=self._seed(), n_runs=self.n_runs,
                         verbose=bool(self.verbose), **self._penalty_options())
        self.factorization_ = result
        self.components_ = np.ascontiguousarray(result.H)
        self.n_components_ = rank
        self.n_iter_ = int(result.n_iter)
        W_out = self._project(X)
        self.reconstruction_err_ = self._error(X, W_out)
        return W_out

    def transform(self, X):
        """W ≥ 0 (n_samples × k) minimising the loss for X with the components fixed."""
        check_is_fitted(self, "components_")
        return self._project(self._validate(X, reset=False))

    def inverse_transform(self, X):
        """Data-space reconstruction W H (n_samples × n_features) from W = X."""
        check_is_fitted(self, "components_")
        W = check_array(X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32])
        if W.shape[1] != self.components_.shape[0]:
            raise ValueError(f"inverse_transform needs an n_samples × {self.components_.shape[0]} matrix "
                             f"(one column per component); got {W.shape[0]}×{W.shape[1]}")
        return np.asarray(W @ self.components_.astype(W.dtype, copy=False))

    @property
    def _n_features_out(self):
        """Number of output features, for get_feature_names_out ("nmf0", "nmf1", …)."""
        return self.components_.shape[0]

    # -- helpers ---------------------------------------------------------------
    def _project(self, X):
        loss, beta = self._loss()
        max_iter = 1000 if self.max_iter is None else max(int(self.max_iter), 1)
        # X ≈ W H  ⇔  Xᵀ ≈ Hᵀ Wᵀ: project Xᵀ (features × samples) on the basis Hᵀ.  The
        # unknowns are W's rows, penalised by alpha_W × n_features exactly as in the fit.
        Wt = project(self.components_.T, X.T, loss=loss, beta=beta if loss == "beta" else None,
                     tol=float(self.tol), max_iter=max_iter, alpha_H=self.alpha_W,
                     l1_ratio=self.l1_ratio)
        return np.ascontiguousarray(Wt.T, dtype=X.dtype)

    def _error(self, X, W):
        """scikit-learn's reconstruction_err_: √(2·D_β(X ‖ W H)) (= ‖X − WH‖_F for Frobenius)."""
        loss, beta = self._loss()
        engine = make_engine(X)
        Ht = np.ascontiguousarray(self.components_.T, dtype=X.dtype)
        if loss == "frobenius":
            value = engine.frobenius_exact(W, Ht)
        elif loss == "kl":
            value = engine.kl_divergence(W, Ht)
        else:
            value = engine.beta_divergence(W, Ht, beta)
        return float(np.sqrt(2.0 * max(value, 0.0)))
