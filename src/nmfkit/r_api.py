"""R NMF's API (Gaujoux & Seoighe 2010, package NMF 0.25) on top of nmfkit.

    from nmfkit.r_api import nmf, basis, coef, rmatrix
    V = rmatrix(5, 6, seed=1)
    res = nmf(V, 2, method="lee", seed=123, nrun=1)
    basis(res) @ coef(res)

R's names and R's orientation live only in this module.  The orientation is
R's and nmfkit's alike: V (features × samples) ≈ W H, `basis` = W (features ×
rank), `coef` = H (rank × samples).  Indices are 0-based (R: 1-based).

Definitions (checked against R NMF 0.25's sources):
    rss(x, V)        = Σ (V − W H)²
    evar(x, V)       = 1 − rss / Σ V²
    residuals(x)     = final objective of the fit: ½‖V − WH‖² ("lee", "Frobenius")
                       or the generalised KL divergence ("brunet", "KL")
    sparseness(v)    = (√n − ‖v‖₁/‖v‖₂) / (√n − 1)   (Hoyer 2004); a matrix: mean over
                       columns; a model: {"basis": …, "coef": …}
    featureScore     = 1 + Σ_q p_iq log₂ p_iq / log₂ k, p_iq = |W_iq| / Σ_q |W_iq|
                       (Kim & Park 2007; R gives NaN where a row has a zero, here 0·log 0 = 0)
    extractFeatures  = "kim": score ≥ median + 3·MAD and max loading ≥ median |W|;
                       "max": R's greedy "max" rule; an integer l: the l largest per
                       component; a fraction f: features with W_iq / Σ_q W_iq ≥ f
    predict          = argmax_q |H_qj| per sample ("samples"/"columns") or
                       argmax_q |W_iq| per feature ("features"/"rows")
Cost: the accessors are O(m·k + k·n) except `fitted`/`rss`/`evar` (dense m×n).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from .fit import fit as nmf_fit
from .rank.estimate import hoyer_sparseness, randomize as _randomize
from .rank.features import feature_score, select_features
from .registry import SOLVERS
from .result import Factorization
from .solvers.r_variants import smoothing_matrix
from .validation import check_matrix, check_seed, choose

#: R method name (every one of R's `nmfAlgorithm()`) -> (nmfkit solver, loss).
#: "KL" and "Frobenius" are R's brunet and lee updates with R's "stationary" stop
#: instead of its "connectivity" one; with a fixed iteration count they are identical.
METHODS = {"brunet": ("brunet", "kl"), "KL": ("brunet", "kl"), "lee": ("lee", "frobenius"),
           "Frobenius": ("lee", "frobenius"), "offset": ("offset", "frobenius"), "nsNMF": ("nsnmf", "kl"),
           "ls-nmf": ("lsnmf", "frobenius"), "pe-nmf": ("penmf", "frobenius"), "siNMF": ("sinmf", "frobenius"),
           "snmf/r": ("snmf", "frobenius"), "snmf/l": ("snmf", "frobenius")}
#: fixed solver options of an R method
METHOD_OPTIONS = {"snmf/r": {"version": "r"}, "snmf/l": {"version": "l"}}
#: R's parameter names -> the solver's, per method (R's `beta` is not nmfkit's β-divergence)
METHOD_RENAMES = {"pe-nmf": {"beta": "sparsity"}, "snmf/r": {"beta": "sparsity"}, "snmf/l": {"beta": "sparsity"}}
#: parameters R requires for a method
METHOD_REQUIRED = {"pe-nmf": ("alpha", "beta"), "siNMF": ("groups",)}
#: R-style option names accepted by `nmf` -> nmfkit.fit keywords
R_OPTIONS = {"maxIter": "max_iter", ".stop": "max_iter"}


@dataclass
class NMFModel:
    """An NMF model V ≈ W H without fit information (R's `nmfModel`)."""
    W: np.ndarray
    H: np.ndarray
    row_names: list | None = None
    col_names: list | None = None
    offset: np.ndarray | None = None      # method "offset": V ≈ W H + offset 1ᵀ
    theta: float | None = None            # method "nsNMF": V ≈ W S(θ) H

    @property
    def rank(self) -> int:
        return self.W.shape[1]


@dataclass
class NMFfit(NMFModel):
    """A fitted model (R's `NMFfit`): the model plus the nmfkit `Factorization` behind it."""
    fit: Factorization | None = None
    method: str = ""
    seed: object = None
    nrun: int = 1
    runs: list = field(default_factory=list)

    @property
    def niter(self) -> int:
        return self.fit.n_iter

    @property
    def runtime(self) -> float:
        return self.fit.seconds

    def __repr__(self):
        m, n = self.W.shape[0], self.H.shape[1]
        return (f"<NMFfit: method {self.method!r}, rank {self.rank}, {m}×{n}, nrun {self.nrun}, "
                f"residuals {residuals(self):.6g}, {self.niter} iterations>")


def _init_from_seed(seed, rank):
    """nmfkit (init, seed) from R's `seed` argument."""
    if seed is None or (isinstance(seed, str) and seed == "random"):
        return "random", None
    if isinstance(seed, str):
        seed = choose(seed, ("random", "nndsvd", "nndsvda", "nndsvdar"), "seed method")
        return seed, None
    if isinstance(seed, (numbers.Integral, np.random.RandomState, np.random.Generator)) \
            and not isinstance(seed, bool):
        return "random", check_seed(seed)
    if hasattr(seed, "W") and hasattr(seed, "H"):
        return (np.asarray(seed.W), np.asarray(seed.H)), None
    if isinstance(seed, (tuple, list)) and len(seed) == 2:
        return (seed[0], seed[1]), None
    raise TypeError("seed must be 'random', 'nndsvd', an integer, or a model / (W, H) pair")


def nmf(x, rank, method="brunet", seed=None, nrun=1, **opts) -> NMFfit:
    """Fit V ≈ W H as R's `nmf(x, rank, method, seed, nrun, ...)`.

    method : any of R's `nmfAlgorithm()`: "brunet" (default, KL), "KL", "lee"
        (Frobenius), "Frobenius", "offset", "nsNMF", "ls-nmf", "pe-nmf", "siNMF",
        "snmf/r", "snmf/l" (each R-exact from the same start), or any nmfkit solver
        name (then `loss=` may be given, default Frobenius).
    seed : "random" (default), "nndsvd", an integer (random seeding with that
        seed), or an initial model (NMFModel, Factorization, or a (W, H) pair).
    nrun : number of runs; the best fit (lowest objective) is returned.
    opts : nmfkit.fit keywords (tol, max_iter, …); R's `maxIter`, and `.stop` (an
        iteration count: exactly that many iterations, tol=0).  The methods' own
        parameters, with R's names: nsNMF `theta` (0.5); offset `offset` (start
        vector, default the row means); ls-nmf `weight` (matrix or number); pe-nmf
        `alpha` and `beta` (required, as in R); siNMF `groups` (one label per
        column: R's formula `V ~ groups`; required), `beta0`, `scale`; snmf/r and
        snmf/l `eta` (default max V), `beta` (0.01), `eps_conv`, `bi_conv`.
    """
    names = list(dict.fromkeys(list(METHODS) + list(SOLVERS)))
    method = choose(method, names, "method")
    if method in METHODS:
        solver, loss = METHODS[method]
        loss = opts.pop("loss", loss)
        missing = [p for p in METHOD_REQUIRED.get(method, ()) if p not in opts]
        if missing:
            raise ValueError(f"method {method!r} needs {' and '.join(f'{p}=' for p in missing)} (R requires "
                             f"{'it' if len(missing) == 1 else 'them'} too)")
        for r_name, name in METHOD_RENAMES.get(method, {}).items():
            if r_name in opts:
                opts[name] = opts.pop(r_name)
        opts.update(METHOD_OPTIONS.get(method, {}))
    else:
        solver = method
        spec = SOLVERS[method]
        loss = opts.pop("loss", "frobenius" if "frobenius" in spec.losses else spec.losses[0])
    if ".stop" in opts:
        opts.setdefault("tol", 0.0)          # R's integer .stop: exactly that many iterations
    if solver == "snmf":
        opts.setdefault("tol", 0.0)          # Kim & Park's own stopping rule, as R
    for r_name, name in R_OPTIONS.items():
        if r_name in opts:
            opts[name] = opts.pop(r_name)
    init, seed_value = _init_from_seed(seed, rank)
    extra = 0
    if solver == "offset":
        extra = 1
        if not isinstance(init, str):
            W0, H0 = (np.asarray(f, dtype=np.float64) for f in init)
            init = (np.hstack([W0, np.zeros((W0.shape[0], 1))]), np.vstack([H0, np.ones((1, H0.shape[1]))]))
    elif solver == "sinmf" and opts.get("groups") is not None:
        extra = len(np.unique(np.asarray(opts["groups"])))
        if not isinstance(init, str):
            W0, H0 = (np.asarray(f, dtype=np.float64) for f in init)
            if W0.shape[1] != rank + extra:
                raise ValueError(f"siNMF's start W needs {rank} + {extra} columns (one per group level, as R's "
                                 f"formula model); got {W0.shape[1]}")
            if H0.shape[0] == rank:
                H0 = np.vstack([H0, np.zeros((extra, H0.shape[1]))])   # the group rows are set by the solver
            init = (W0, H0)
    result = nmf_fit(x, rank + extra, solver=solver, loss=loss, init=init, seed=seed_value, n_runs=nrun, **opts)
    W, H, offset, theta = result.W, result.H, None, None
    if solver == "offset":
        W, H, offset = W[:, :rank], H[:rank], W[:, rank]
    elif solver == "nsnmf":
        theta = float(opts.get("theta", 0.5))
        H = np.linalg.solve(smoothing_matrix(rank, theta), np.asarray(H, dtype=np.float64)).astype(H.dtype)
    return NMFfit(W=W, H=H, row_names=result.row_names, col_names=result.col_names, offset=offset, theta=theta,
                  fit=result, method=method, seed=seed, nrun=nrun, runs=result.runs)


# -- accessors -------------------------------------------------------------------
def _factors(x):
    if not (hasattr(x, "W") and hasattr(x, "H")):
        raise TypeError(f"expected an NMF model (nmf() result, NMFModel or Factorization); got {type(x).__name__}")
    return np.asarray(x.W), np.asarray(x.H)


def basis(x) -> np.ndarray:
    """W (features × rank)."""
    return _factors(x)[0]


def coef(x) -> np.ndarray:
    """H (rank × samples)."""
    return _factors(x)[1]


coefficients = coef


def fitted(x) -> np.ndarray:
    """The fitted matrix (dense): W H, W S H for nsNMF, W H + offset 1ᵀ for offset."""
    W, H = _factors(x)
    theta, off = getattr(x, "theta", None), getattr(x, "offset", None)
    F = W @ (smoothing_matrix(W.shape[1], theta) @ H) if theta is not None else W @ H
    return F + off[:, None] if off is not None else F


def smoothing(x, theta=None) -> np.ndarray:
    """nsNMF's smoothing matrix S = (1 − θ) I + (θ/k) 1 1ᵀ of a model (θ: the model's, or given)."""
    theta = getattr(x, "theta", None) if theta is None else theta
    return smoothing_matrix(_factors(x)[0].shape[1], 0.0 if theta is None else theta)


def offset(x) -> np.ndarray:
    """The offset vector of an "offset" fit (R's `offset`)."""
    off = getattr(x, "offset", None)
    if off is None:
        raise ValueError("this model has no offset: fit it with method='offset'")
    return off


def _target(target):
    V = check_matrix(target, "target", allow_zero=True)
    return V.toarray() if hasattr(V, "toarray") else V


def rss(x, target) -> float:
    """Residual sum of squares Σ (target − W H)²."""
    V = _target(target)
    F = fitted(x)
    if F.shape != V.shape:
        raise ValueError(f"target has shape {V.shape}; the model's fitted matrix is {F.shape}")
    D = V - F
    return float(np.einsum("ij,ij->", D, D, dtype=np.float64))


def evar(x, target) -> float:
    """Explained variance 1 − rss / Σ target²."""
    V = _target(target)
    return 1.0 - rss(x, V) / float(np.einsum("ij,ij->", V, V, dtype=np.float64))


def residuals(x) -> float:
    """Final objective of a fit (R's `residuals(fit)`): ½‖V − WH‖² or the KL divergence."""
    fit = getattr(x, "fit", x)
    if not isinstance(fit, Factorization):
        raise TypeError("residuals needs a fitted model (an nmf() result or a Factorization)")
    return float(fit.loss)


def sparseness(x):
    """Hoyer sparseness: of a vector, of a matrix (mean over columns), or of a model's basis and coef."""
    if hasattr(x, "W") and hasattr(x, "H"):
        W, H = _factors(x)
        return {"basis": sparseness(W), "coef": sparseness(H)}
    A = np.asarray(x, dtype=np.float64)
    if A.ndim == 1:
        return hoyer_sparseness(A[:, None], axis=0)
    if A.ndim != 2:
        raise ValueError(f"sparseness needs a vector, a matrix or a model; got {A.ndim} dimensions")
    return hoyer_sparseness(A, axis=0)


def featureScore(x, method="kim") -> np.ndarray:   # noqa: N802 (R's name)
    """Kim & Park feature specificity score (or "max" loading) of each basis row."""
    W = basis(x) if hasattr(x, "W") else np.asarray(x)
    return feature_score(W, method)


def extractFeatures(x, method="kim", format="list", nodups=True):   # noqa: N802, A002 (R's names)
    """Features characterising each component (0-based row indices).

    method : "kim" (Kim & Park 2007 selection), "max" (R's greedy rule), an
        integer l (the l top features of each component) or a float in (0, 1]
        (features whose share W_iq / Σ_q W_iq is at least that value).
    format : "list" (one index array per component), "combine" (one array,
        duplicates dropped unless nodups=False) or "subset" (those rows of W).
    """
    format = choose(format, ("list", "combine", "subset"), "format")
    W = basis(x) if hasattr(x, "W") else np.asarray(x, dtype=np.float64)
    if isinstance(method, str):
        method = choose(method, ("kim", "max"), "method")
        lists = select_features(W)[0] if method == "kim" else _extract_max(W)
    elif isinstance(method, numbers.Integral) and not isinstance(method, bool) and method >= 1:
        lists = [np.argsort(-W[:, q], kind="stable")[:int(method)] for q in range(W.shape[1])]
    elif isinstance(method, numbers.Real) and 0 < method <= 1:
        share = W / W.sum(axis=1, keepdims=True)
        lists = [np.flatnonzero(share[:, q] >= method) for q in range(W.shape[1])]
    else:
        raise ValueError(f"method must be 'kim', 'max', an integer ≥ 1 or a fraction in (0, 1]; got {method!r}")
    lists = [np.asarray(ix, dtype=np.int64) for ix in lists]
    if format == "list":
        return lists
    combined = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)
    if nodups or format == "subset":
        combined = combined[np.sort(np.unique(combined, return_index=True)[1])]
    return combined if format == "combine" else W[combined]


def _extract_max(W):
    """R's "max" rule: component q takes its features in decreasing loading order
    until the first one that loads at least as much on another component."""
    out = []
    for q in range(W.shape[1]):
        order = np.argsort(-W[:, q], kind="stable")
        others = np.delete(W[order], q, axis=1)
        beaten = (others >= W[order, q][:, None]).any(axis=1) if others.size else np.zeros(len(order), bool)
        # never beaten: R returns every feature in its original order
        out.append(order[:int(np.argmax(beaten))] if beaten.any() else np.arange(W.shape[0]))
    return out


def predict(x, what="columns", prob=False):
    """Dominant component of each sample ("columns"/"samples") or feature ("rows"/"features").

    Returns the 0-based component indices, and with prob=True also the share
    of the dominant component |a_q| / Σ|a| for each."""
    what = choose(what, ("columns", "rows", "samples", "features"), "what")
    W, H = _factors(x)
    A = np.abs(W if what in ("rows", "features") else H.T)
    label = A.argmax(axis=1)
    if not prob:
        return label
    total = A.sum(axis=1)
    share = np.divide(A[np.arange(A.shape[0]), label], total, out=np.full(A.shape[0], np.nan), where=total > 0)
    return label, share


def nmfModel(rank=None, target=None, W=None, H=None, seed=None) -> NMFModel:   # noqa: N802 (R's name)
    """A model from given factors (W, H), or a random one of a given rank for a target shape."""
    if W is not None and H is not None:
        W, H = np.asarray(W, dtype=np.float64), np.asarray(H, dtype=np.float64)
        if W.ndim != 2 or H.ndim != 2 or W.shape[1] != H.shape[0]:
            raise ValueError(f"W ({np.shape(W)}) and H ({np.shape(H)}) do not share a rank")
        return NMFModel(W, H)
    if rank is None or target is None:
        raise ValueError("nmfModel needs (W, H), or a rank and a target shape (m, n) or matrix")
    m, n = (np.shape(target) if np.ndim(target) == 2 else tuple(int(v) for v in target))
    rng = np.random.default_rng(seed)
    return NMFModel(rng.random((m, int(rank))), rng.random((int(rank), n)))


def rmatrix(x, y=None, seed=None, dist=None) -> np.ndarray:
    """Random matrix (R's `rmatrix`): x×y (x×x if y is None) with `dist(rng, size)`
    entries (uniform on [0, 1) by default); for a model, fitted(x) plus such noise."""
    rng = np.random.default_rng(seed)
    draw = dist if dist is not None else (lambda g, size: g.random(size))
    if hasattr(x, "W") and hasattr(x, "H"):
        F = fitted(x)
        return F + draw(rng, F.shape)
    if isinstance(x, (tuple, list)) and y is None:
        x, y = x
    m = int(x)
    n = m if y is None else int(y)
    return np.asarray(draw(rng, (m, n)), dtype=np.float64)


def randomize(x, seed=None):
    """x with the entries of each column randomly permuted (R's `randomize`)."""
    return _randomize(x, seed=seed)


__all__ = ["nmf", "NMFModel", "NMFfit", "METHODS", "smoothing", "offset", "basis", "coef", "coefficients", "fitted", "residuals",
           "rss", "evar", "sparseness", "featureScore", "extractFeatures", "predict", "nmfModel", "rmatrix",
           "randomize"]
