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
from .rank.estimate import hoyer_sparseness
from .rank.estimate import randomize as _randomize
from .rank.features import feature_score, select_features
from .registry import SOLVERS
from .result import Factorization
from .solvers.r_variants import smoothing_matrix
from .validation import check_matrix, check_seed, choose, seeded_rng

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
    consensus: object = None     # nrun > 1: the runs' `ConsensusResult` (consensus matrix, cophenetic, …)

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
    opts = _parse_options(opts)
    if hasattr(rank, "W") and hasattr(rank, "H"):        # R: nmf(x, model): the model is the start
        model, rank = rank, _factors(rank)[0].shape[1]
        if seed is None or (isinstance(seed, str) and seed == "none"):
            seed = model
    elif isinstance(seed, str) and seed == "none":
        raise ValueError("seed='none' uses the start as given: pass an NMF model as rank (nmf(x, model, "
                         "seed='none')) or the model itself as seed")
    if not isinstance(rank, numbers.Integral) or isinstance(rank, bool):
        if isinstance(rank, (str, bytes)) or not np.iterable(rank):
            raise TypeError(f"rank must be an integer, a range/list of ranks (a rank survey) or an NMF model; "
                            f"got {rank!r}")
        return _rank_survey(x, rank, method, seed, nrun, opts)
    if isinstance(seed, str) and seed == "ica":
        seed = _ica_seed(x, int(rank), opts.pop("ica_seed", None))
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
    if nrun > 1 and isinstance(init, str):
        return _consensus_fit(x, rank, method, solver, loss, init, seed, seed_value, nrun, opts)
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
    opts.pop("n_jobs", None)
    result = nmf_fit(x, rank + extra, solver=solver, loss=loss, init=init, seed=seed_value, n_runs=nrun, **opts)
    return _to_nmffit(result, rank, method, solver, opts, seed, nrun, result.runs)


def _to_nmffit(result, rank, method, solver, opts, seed, nrun, runs, consensus=None) -> NMFfit:
    """R's view of an nmfkit result: the offset and nsNMF's smoothing taken out of W, H."""
    W, H, offset, theta = result.W, result.H, None, None
    if solver == "offset":
        W, H, offset = W[:, :rank], H[:rank], W[:, rank]
    elif solver == "nsnmf":
        theta = float(opts.get("theta", 0.5))
        H = np.linalg.solve(smoothing_matrix(rank, theta), np.asarray(H, dtype=np.float64)).astype(H.dtype)
    return NMFfit(W=W, H=H, row_names=result.row_names, col_names=result.col_names, offset=offset, theta=theta,
                  fit=result, method=method, seed=seed, nrun=nrun, runs=runs, consensus=consensus)


#: R's `.options` letters -> what they do here
OPTION_LETTERS = {"v": "verbose", "t": "track", "p": "parallel", "P": "parallel (required)", "k": "keep all runs",
                  "-": "negates the next letter"}


def _parse_options(opts):
    """R's `.options` string ("v" verbose, "t" track the objective, "p"/"P" parallel runs, "k" keep
    every run; "-x" turns x off; a digit after "v" is the verbosity level) -> nmfkit keywords."""
    text = opts.pop(".options", None)
    if text is None:
        return opts
    if not isinstance(text, str):
        raise TypeError(f".options must be a string of letters such as 'vt' or 'p'; got {text!r}")
    i, on = 0, True
    while i < len(text):
        c = text[i]
        if c == "-":
            on = False
        elif c == "v":
            opts["verbose"] = on
            while i + 1 < len(text) and text[i + 1].isdigit():
                i += 1
        elif c == "t":
            opts["track"] = on          # the objective is always recorded; "t" adds nmfkit's diagnostics
        elif c in "pP":
            opts["n_jobs"] = -1 if on else 1
        elif c == "k":
            pass                        # every run's objective and iteration count are always kept
        elif c != " ":
            raise ValueError(f"unknown letter {c!r} in .options={text!r}; known: "
                             + ", ".join(f"{k} ({v})" for k, v in OPTION_LETTERS.items()))
        if c != "-":
            on = True
        i += 1
    return opts


def _ica_seed(x, rank, seed):
    """R's seed="ica": FastICA's sources and mixing matrix, floored at machine epsilon
    (W = max(S, eps), H = max(A, eps)); scikit-learn's FastICA, not R's fastICA numbers."""
    try:
        from sklearn.decomposition import FastICA
    except ImportError:
        raise ImportError("seed='ica' needs scikit-learn (pip install scikit-learn)") from None
    V = _target(x)
    ica = FastICA(n_components=rank, whiten="unit-variance", random_state=seed, max_iter=1000)
    S = ica.fit_transform(V)
    eps = np.finfo(np.float64).eps
    return np.maximum(S, eps), np.maximum(ica.mixing_.T, eps)


def _stop_options(method, opts):
    """R's default stop for consensus runs: "connectivity" for the methods that use it in R."""
    if method in ("brunet", "lee", "offset", "nsNMF", "siNMF") and "tol" not in opts:
        return {"stop": "connectivity"}
    return {}


def _consensus_fit(x, rank, method, solver, loss, init, seed, seed_value, nrun, opts):
    """nrun > 1 runs as R's NMFfitX: the best fit plus the consensus matrix over the runs."""
    if solver in ("offset", "sinmf"):
        raise ValueError(f"method {method!r} with nrun > 1 is not offered: its extra components (offset, "
                         "group rows) would enter the consensus; run it once per seed instead")
    from .rank.consensus import consensus
    kw = dict(opts)
    n_jobs = kw.pop("n_jobs", 1)
    kw.pop("verbose", None)
    res = consensus(x, rank, n_runs=nrun, solver=solver, loss=loss, seed=seed_value, n_jobs=n_jobs,
                    progress=False, init=init, **_stop_options(method, kw), **kw)
    runs = [{"run": i, "loss": float(o), "n_iter": int(t)} for i, (o, t) in enumerate(zip(res.objectives, res.n_iter))]
    return _to_nmffit(res.best, rank, method, solver, opts, seed, nrun, runs, consensus=res)


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
    rng = seeded_rng(seed)
    return NMFModel(rng.random((m, int(rank))), rng.random((int(rank), n)))


def rmatrix(x, y=None, seed=None, dist=None) -> np.ndarray:
    """Random matrix (R's `rmatrix`): x×y (x×x if y is None) with `dist(rng, size)`
    entries (uniform on [0, 1) by default); for a model, fitted(x) plus such noise."""
    rng = seeded_rng(seed)
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


# -- rank survey (R's NMF.rank) ------------------------------------------------------
#: R's measure names -> nmfkit's survey columns
RANK_MEASURES = {"sparseness.basis": "sparseness_W", "sparseness.coef": "sparseness_H", "rss": "rss",
                 "evar": "evar", "silhouette.consensus": "silhouette", "cophenetic": "cophenetic",
                 "dispersion": "dispersion", "residuals": "objective_min", "cpu": "seconds"}


@dataclass
class NMFrank:
    """R's `NMF.rank`: a survey of ranks (`nmf(x, ranks, nrun=)`, `nmfEstimateRank`).

    `measures` has R's columns (rank, sparseness.basis, sparseness.coef, rss, evar,
    silhouette.consensus, cophenetic, dispersion, residuals, niter, cpu); `fit[rank]` is
    each rank's best fit (an NMFfit with its consensus); `consensus[rank]` the n×n matrix."""
    survey: object
    fit: dict
    method: str = ""

    @property
    def ranks(self) -> list:
        return list(self.survey.ranks)

    @property
    def consensus(self) -> dict:
        return {k: f.consensus.consensus for k, f in self.fit.items()}

    @property
    def measures(self) -> list:
        out = []
        for row, k in zip(self.survey.rows, self.survey.ranks):
            best = self.fit[k]
            out.append({"rank": int(k), "sparseness.basis": float(row["sparseness_W"]),
                        "sparseness.coef": float(row["sparseness_H"]), "rss": float(row["rss"]),
                        "evar": float(row["evar"]), "silhouette.coef": _mean_silhouette(best, "samples"),
                        "silhouette.basis": _mean_silhouette(best, "features"),
                        "residuals": float(row["objective_min"]), "niter": int(best.niter),
                        "cpu": float(row["seconds"]), "nrun": int(best.nrun),
                        "cophenetic": float(row["cophenetic"]), "dispersion": float(row["dispersion"]),
                        "silhouette.consensus": float(row["silhouette"])})
        return out

    def summary(self):
        """The measures as a pandas DataFrame (a list of dicts without pandas), one row per rank."""
        try:
            import pandas as pd
        except ImportError:
            return self.measures
        return pd.DataFrame.from_records(self.measures)

    def plot(self, random=None, **kwargs):
        """R's plot(estim.r[, estim.r.random]): every measure against rank; a second survey
        (e.g. on `randomize(x)`) is drawn dashed, as R overlays it."""
        from .rank.estimate import RankSurvey
        from .rank.plots import survey_plot
        survey = self.survey
        if random is not None:
            other = getattr(random, "survey", random)
            if list(other.ranks) != list(survey.ranks):
                raise ValueError(f"the two surveys cover different ranks: {survey.ranks} and {other.ranks}")
            survey = RankSurvey(survey.ranks, survey.rows, other.rows, options=survey.options)
        return survey_plot(survey, **kwargs)

    def __repr__(self):
        head = f"<NMF.rank: method {self.method!r}, ranks {self.ranks}, {self.survey.options.get('n_runs')} runs each>"
        rows = [f"  rank {m['rank']}: cophenetic {m['cophenetic']:.4f}, dispersion {m['dispersion']:.4f}, "
                f"evar {m['evar']:.4f}, rss {m['rss']:.6g}" for m in self.measures]
        return "\n".join([head] + rows)


def _rank_survey(x, ranks, method, seed, nrun, opts) -> NMFrank:
    from .rank.estimate import estimate_rank
    if method not in METHODS and method not in SOLVERS:
        raise ValueError(f"unknown method {method!r}")
    solver, loss = METHODS.get(method, (method, None))
    if solver in ("offset", "sinmf"):
        raise ValueError(f"a rank survey with method {method!r} is not offered: its extra components "
                         "(offset, group rows) would enter the consensus")
    if loss is None:
        spec = SOLVERS[method]
        loss = opts.pop("loss", "frobenius" if "frobenius" in spec.losses else spec.losses[0])
    else:
        loss = opts.pop("loss", loss)
    for r_name, name in METHOD_RENAMES.get(method, {}).items():
        if r_name in opts:
            opts[name] = opts.pop(r_name)
    opts.update(METHOD_OPTIONS.get(method, {}))
    if ".stop" in opts:
        opts.setdefault("tol", 0.0)
    for r_name, name in R_OPTIONS.items():
        if r_name in opts:
            opts[name] = opts.pop(r_name)
    if seed is not None and not (isinstance(seed, str) and seed == "random"):
        init, seed_value = _init_from_seed(seed, 1)
        if not isinstance(init, str):
            raise ValueError("a rank survey needs random starts: seed must be 'random' or an integer")
    else:
        seed_value = None
    n_jobs = opts.pop("n_jobs", 1)
    opts.pop("verbose", None)
    survey = estimate_rank(x, ranks, n_runs=nrun, solver=solver, loss=loss, seed=seed_value, randomized=False,
                           n_jobs=n_jobs, progress=False, **_stop_options(method, opts), **opts)
    fits = {k: _to_nmffit(c.best, k, method, solver, opts, seed, nrun,
                          [{"run": i, "loss": float(o), "n_iter": int(t)}
                           for i, (o, t) in enumerate(zip(c.objectives, c.n_iter))], consensus=c)
            for k, c in survey.consensus.items()}
    return NMFrank(survey=survey, fit=fits, method=method)


def nmfEstimateRank(x, range, method="brunet", nrun=30, seed=None, **opts) -> NMFrank:   # noqa: N802, A002
    """R's `nmfEstimateRank(x, range, method, nrun)`: `nmf(x, range, method, nrun=nrun)`."""
    return nmf(x, list(range), method=method, seed=seed, nrun=nrun, **opts)


# -- clustering quality and consensus measures -----------------------------------------
def silhouette(x, what="samples"):
    """R's silhouette of a model: the silhouette widths of the samples ("samples"/"columns")
    or features ("features"/"rows") clustered by `predict`, with dissimilarity 1 − Pearson
    correlation of their loadings; "consensus": of the consensus clusters under 1 − consensus.
    None when there are fewer than two clusters (R: NA)."""
    from .rank.consensus import consensus_clusters, silhouette_widths
    what = choose(what, ("samples", "columns", "features", "rows", "consensus"), "what")
    if what == "consensus":
        c = getattr(x, "consensus", None)
        if c is None or not hasattr(c, "consensus"):
            raise ValueError("silhouette(what='consensus') needs an nmf() result with nrun > 1")
        labels, D = consensus_clusters(c.consensus, c.rank), 1.0 - c.consensus
    else:
        W, H = _factors(x)
        A = np.asarray(W if what in ("features", "rows") else H.T, dtype=np.float64)
        labels = A.argmax(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            D = 1.0 - np.corrcoef(A)
    if np.unique(labels).size < 2:
        return None
    return silhouette_widths(D, labels)


def _mean_silhouette(x, what) -> float:
    widths = silhouette(x, what)
    return float("nan") if widths is None else float(np.mean(widths))


def summary(x, target=None, classes=None) -> dict:
    """R's summary of a model or fit: rank, sparseness, purity and entropy (with `classes`),
    rss and evar (with `target`), silhouette.coef and silhouette.basis; for a fit also its
    residuals, niter, cpu and nrun; with nrun > 1 cophenetic, dispersion, silhouette.consensus.
    A rank survey: its measures table (`NMFrank.summary`)."""
    if isinstance(x, NMFrank):
        return x.summary()
    W, _ = _factors(x)
    sp_ = sparseness(x)
    out = {"rank": int(W.shape[1]), "sparseness.basis": sp_["basis"], "sparseness.coef": sp_["coef"]}
    if classes is not None:
        out.update({"purity": purity(x, classes), "entropy": entropy(x, classes)})
    if target is not None:
        out.update({"rss": rss(x, target), "evar": evar(x, target)})
    out.update({"silhouette.coef": _mean_silhouette(x, "samples"),
                "silhouette.basis": _mean_silhouette(x, "features")})
    if getattr(x, "fit", None) is not None:
        out.update({"residuals": residuals(x), "niter": x.niter, "cpu": x.runtime, "nrun": x.nrun})
    c = getattr(x, "consensus", None)
    if c is not None and hasattr(c, "consensus"):
        out.update({"cophenetic": c.cophenetic, "dispersion": c.dispersion, "silhouette.consensus": c.silhouette})
    return out


def _clusters(x):
    if hasattr(x, "W") and hasattr(x, "H"):
        return predict(x)
    return np.asarray(x)


def _table(x, classes):
    cl, truth = _clusters(x), np.asarray(classes)
    if cl.shape[0] != truth.shape[0]:
        raise ValueError(f"got {truth.shape[0]} classes for {cl.shape[0]} samples")
    _, ci = np.unique(cl, return_inverse=True)
    _, ti = np.unique(truth, return_inverse=True)
    T = np.zeros((ci.max() + 1, ti.max() + 1))
    np.add.at(T, (ci, ti), 1)
    return T


def purity(x, classes) -> float:
    """Purity of the clusters of `x` (a fit: its `predict`; or cluster labels) against known classes:
    (1/n) Σ_q max_j n_qj (1 is perfect)."""
    T = _table(x, classes)
    return float(T.max(axis=1).sum() / T.sum())


def entropy(x, classes) -> float:
    """Entropy of the clusters against known classes (R's definition):
    −1/(n log₂ c) Σ_q Σ_j n_qj log₂(n_qj / n_q), c classes (0 is perfect)."""
    T = _table(x, classes)
    if T.shape[1] < 2:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(T > 0, T * np.log2(T / T.sum(axis=1, keepdims=True)), 0.0)
    return float(-terms.sum() / (T.sum() * np.log2(T.shape[1])))


def _consensus_of(x):
    if isinstance(x, NMFrank):
        return None
    c = getattr(x, "consensus", None)
    if c is not None and hasattr(c, "consensus"):
        return c.consensus
    A = np.asarray(x, dtype=np.float64) if not hasattr(x, "W") else None
    if A is None or A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError("needs a consensus: an nmf() result with nrun > 1, a rank survey, or a square "
                         "consensus matrix")
    return A


def cophcor(x):
    """Cophenetic correlation of a consensus (Brunet et al. 2004); a survey: {rank: value}."""
    from .rank.consensus import cophenetic_correlation
    if isinstance(x, NMFrank):
        return {m["rank"]: m["cophenetic"] for m in x.measures}
    return cophenetic_correlation(_consensus_of(x))


def dispersion(x):
    """Dispersion of a consensus, Σ 4 (c − ½)² / n² (Kim & Park 2007); a survey: {rank: value}."""
    from .rank.consensus import dispersion as _dispersion
    if isinstance(x, NMFrank):
        return {m["rank"]: m["dispersion"] for m in x.measures}
    return _dispersion(_consensus_of(x))


def consensus(x) -> np.ndarray:
    """The n×n consensus matrix of an nmf() result with nrun > 1 (R's `consensus`)."""
    return _consensus_of(x)


# -- heatmaps ----------------------------------------------------------------------------
def consensusmap(x, annCol=None, labCol=None):   # noqa: N803 (R's names)
    """R's consensusmap: the consensus matrix ordered by its average-linkage dendrogram, with
    the consensus clusters (and `annCol`, known classes) as annotation bars and a 0–1 colour
    scale.  A rank survey gives one figure per rank ({rank: figure})."""
    from .rank.plots import consensus_heatmap
    if isinstance(x, NMFrank):
        return {k: consensus_heatmap(f.consensus, labels=annCol, sample_names=labCol) for k, f in x.fit.items()}
    c = getattr(x, "consensus", None)
    if c is None or not hasattr(c, "consensus"):
        raise ValueError("consensusmap needs an nmf() result with nrun > 1 or a rank survey")
    return consensus_heatmap(c, labels=annCol, sample_names=labCol)


#: above this many rows/columns a heatmap is ordered by dominant component instead of a dendrogram
MAX_TREE_LEAVES = 2000


def _annotated_heatmap(A, along, annotations, title, leaf_names=None, other_names=None):
    """R's aheatmap as basismap/coefmap draw it: A (already scaled) with a complete-linkage
    Euclidean dendrogram over the rows (along=0) or columns (along=1), one annotation bar per
    (name, labels) pair beside that axis, and a yellow–red colour scale from 0 to the maximum.
    Past MAX_TREE_LEAVES leaves the order is by dominant component (no tree is drawn)."""
    from scipy.cluster.hierarchy import dendrogram, linkage

    from .rank.plots import _codes, _pyplot
    matplotlib, Figure = _pyplot()
    A = np.asarray(A, dtype=np.float64)
    X = A if along == 0 else A.T                   # leaves are the rows of X
    n = X.shape[0]
    tree = n <= MAX_TREE_LEAVES and n > 1
    fig = Figure(figsize=(7.5, 7) if along == 0 else (9, 5))
    bars = len(annotations)
    if along == 0:
        grid = fig.add_gridspec(1, 3 + bars, width_ratios=[1.5] + [0.25] * bars + [6, 0.25], wspace=0.03)
        ax_tree = fig.add_subplot(grid[0, 0]) if tree else None
    else:
        grid = fig.add_gridspec(3 + bars, 1, height_ratios=[1.5] + [0.3] * bars + [4, 0.25], hspace=0.05)
        ax_tree = fig.add_subplot(grid[0, 0]) if tree else None
    if tree:
        info = dendrogram(linkage(X, method="complete", metric="euclidean"), ax=ax_tree, no_labels=True,
                          orientation="left" if along == 0 else "top", color_threshold=0,
                          above_threshold_color="0.3")
        order = np.asarray(info["leaves"])
        if along == 0:
            order = order[::-1]                    # a left dendrogram lists its leaves bottom-up
        ax_tree.set_axis_off()
    else:
        order = np.lexsort((-X.max(axis=1), X.argmax(axis=1)))
    cmap = matplotlib.colormaps["tab10"]
    for b, (name, values) in enumerate(annotations):
        names, codes = _codes(values)
        ax = fig.add_subplot(grid[0, 1 + b] if along == 0 else grid[1 + b, 0])
        strip = codes[order][:, None] if along == 0 else codes[order][None, :]
        ax.imshow(strip, aspect="auto", cmap=cmap, vmin=0, vmax=9, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        (ax.set_xlabel if along == 0 else ax.set_ylabel)(name, fontsize="small", rotation=90 if along == 0 else 0,
                                                          ha="center" if along == 0 else "right", va="center")
        handles = [matplotlib.patches.Patch(color=cmap(i % 10), label=str(v)) for i, v in enumerate(names)]
        fig.legend(handles=handles, title=name, loc="upper right", bbox_to_anchor=(1.0, 1.0 - 0.2 * b),
                   fontsize="x-small", title_fontsize="x-small", frameon=False)
    ax = fig.add_subplot(grid[0, 1 + bars] if along == 0 else grid[1 + bars, 0])
    shown = A[order] if along == 0 else A[:, order]
    image = ax.imshow(shown, aspect="auto", cmap="YlOrRd", vmin=0, vmax=max(float(A.max()), 1e-300),
                      interpolation="nearest")
    leaf_axis = (ax.set_yticks, ax.set_yticklabels) if along == 0 else (ax.set_xticks, ax.set_xticklabels)
    if leaf_names is not None and n <= 80:
        leaf_axis[0](range(n))
        leaf_axis[1]([str(leaf_names[i]) for i in order], fontsize=6, rotation=0 if along == 0 else 90)
    else:
        leaf_axis[0]([])
    other_axis = (ax.set_xticks, ax.set_xticklabels) if along == 0 else (ax.set_yticks, ax.set_yticklabels)
    other_axis[0](range(len(other_names)))
    other_axis[1](other_names, fontsize="small")
    fig.colorbar(image, cax=fig.add_subplot(grid[0, 2 + bars] if along == 0 else grid[2 + bars, 0]),
                 orientation="vertical" if along == 0 else "horizontal")
    fig.suptitle(title, fontsize="medium")
    return fig


def basismap(x, subsetRow=None):   # noqa: N803
    """R's basismap: W with each row scaled to sum 1 (R's scale "r1"), a feature dendrogram, the
    dominant component of each feature as an annotation bar and a 0–max colour scale.
    subsetRow=True keeps Kim & Park's selected features, an integer array those rows."""
    W = basis(x)
    rows = np.arange(W.shape[0])
    if subsetRow is True:
        rows = extractFeatures(x, format="combine")
    elif subsetRow is not None and subsetRow is not False:
        rows = np.asarray(subsetRow, dtype=np.int64)
    W = np.asarray(W[rows], dtype=np.float64)
    sums = W.sum(axis=1, keepdims=True)
    W = np.divide(W, sums, out=np.zeros_like(W), where=sums > 0)
    names = getattr(x, "row_names", None)
    names = None if names is None else [names[i] for i in rows]
    return _annotated_heatmap(W, 0, [("basis", W.argmax(axis=1) + 1)], "basis components (rows scaled to sum 1)",
                              leaf_names=names, other_names=[str(q + 1) for q in range(W.shape[1])])


def coefmap(x, annCol=None):   # noqa: N803
    """R's coefmap: H with each column scaled to sum 1 (R's scale "c1"), a sample dendrogram, the
    dominant component of each sample (and `annCol`, known classes) as annotation bars and a
    0–max colour scale."""
    H = np.asarray(coef(x), dtype=np.float64)
    sums = H.sum(axis=0, keepdims=True)
    H = np.divide(H, sums, out=np.zeros_like(H), where=sums > 0)
    annotations = [("basis", H.argmax(axis=0) + 1)]
    if annCol is not None:
        ann = np.asarray(annCol)
        if ann.shape[0] != H.shape[1]:
            raise ValueError(f"annCol has {ann.shape[0]} entries for {H.shape[1]} samples")
        annotations.append(("class", ann))
    return _annotated_heatmap(H, 1, annotations, "mixture coefficients (columns scaled to sum 1)",
                              leaf_names=getattr(x, "col_names", None),
                              other_names=[str(q + 1) for q in range(H.shape[0])])


# -- models and comparisons ----------------------------------------------------------------
def rnmf(x, target, seed=None, dist=None) -> NMFModel:
    """R's rnmf(rank, target): a random model with W, H ~ U(0, max(target)) (or `dist(rng, size)`)."""
    V = _target(target) if np.ndim(target) == 2 else None
    m, n = V.shape if V is not None else tuple(int(v) for v in target)
    k = _factors(x)[0].shape[1] if hasattr(x, "W") else int(x)
    rng = seeded_rng(seed)
    top = float(V.max()) if V is not None else 1.0
    draw = dist if dist is not None else (lambda g, size: g.uniform(0.0, top, size))
    return NMFModel(np.asarray(draw(rng, (m, k)), dtype=np.float64), np.asarray(draw(rng, (k, n)), dtype=np.float64))


def syntheticNMF(n, r, p, offset=None, noise=True, factors=False, seed=None):   # noqa: N802
    """R's syntheticNMF: n features, r groups (or a list of group sizes) and p samples; each group
    of samples is driven by its own block of features with |N(1, 1)| loadings, plus
    N(0, noise) noise (clipped at 0) and an optional offset.  factors=True also returns
    (W, H, offset, sample groups, feature groups)."""
    rng = seeded_rng(seed)
    if np.ndim(r) == 0:
        r = int(r)
        g = rng.multinomial(int(p), np.full(r, 1.0 / r))
    else:
        g = np.asarray(r, dtype=np.int64)
        r, p = len(g), int(g.sum())
    b = rng.multinomial(int(n), np.full(r, 1.0 / r)) if np.ndim(n) == 0 else np.asarray(n, dtype=np.int64)
    n = int(b.sum())
    sample_group = np.repeat(np.arange(r), g)
    feature_group = np.repeat(np.arange(r), b)
    H = (sample_group[None, :] == np.arange(r)[:, None]).astype(np.float64)
    W = np.zeros((n, r))
    W[np.arange(n), feature_group] = np.abs(rng.normal(1.0, 1.0, n))
    V = W @ H
    if offset is not None:
        offset = rng.normal(0.0, float(offset), n) if np.ndim(offset) == 0 else np.asarray(offset, dtype=np.float64)
        if offset.shape != (n,):
            raise ValueError(f"offset must be one number (a standard deviation) or {n} values; got {offset.shape}")
        V = V + offset[:, None]
    if noise is not False and noise is not None:
        sd = 1.0 if noise is True else float(noise)
        V = np.maximum(V + rng.normal(0.0, sd, V.shape), 0.0)
    if factors:
        return V, W, H, offset, sample_group, feature_group
    return V


def nmf_equal(x, y, identical=True, tolerance=1.5e-8) -> bool:
    """R's nmf.equal: the same factors (identical=True: exactly; else within a relative tolerance)."""
    Wx, Hx = _factors(x)
    Wy, Hy = _factors(y)
    if Wx.shape != Wy.shape or Hx.shape != Hy.shape:
        return False
    if identical:
        return bool(np.array_equal(Wx, Wy) and np.array_equal(Hx, Hy))
    return bool(np.allclose(Wx, Wy, rtol=tolerance, atol=0) and np.allclose(Hx, Hy, rtol=tolerance, atol=0))


def scoef(x, scale=1.0) -> np.ndarray:
    """R's scoef: the coefficients with each column scaled to sum to `scale`."""
    H = coef(x) if hasattr(x, "W") else np.asarray(x, dtype=np.float64)
    sums = H.sum(axis=0, keepdims=True)
    return np.divide(H * scale, sums, out=np.zeros_like(H, dtype=np.float64), where=sums > 0)


def _cor(A, B):
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"the two sets of profiles have different lengths: {A.shape[0]} and {B.shape[0]}")
    A = A - A.mean(axis=0)
    B = B - B.mean(axis=0)
    den = np.sqrt((A ** 2).sum(axis=0))[:, None] * np.sqrt((B ** 2).sum(axis=0))[None, :]
    return np.divide(A.T @ B, den, out=np.full(den.shape, np.nan), where=den > 0)


def basiscor(x, y=None) -> np.ndarray:
    """R's basiscor: Pearson correlations between the basis vectors of x and of y (a model or a
    matrix with the same rows; default x itself), k_x × k_y."""
    Wx = basis(x) if hasattr(x, "W") else np.asarray(x)
    Wy = Wx if y is None else (basis(y) if hasattr(y, "W") else np.asarray(y))
    return _cor(Wx, Wy)


def profcor(x, y=None) -> np.ndarray:
    """R's profcor: Pearson correlations between the coefficient profiles (rows of H) of x and y."""
    Hx = coef(x) if hasattr(x, "W") else np.asarray(x)
    Hy = Hx if y is None else (coef(y) if hasattr(y, "W") else np.asarray(y))
    return _cor(Hx.T, Hy.T)


__all__ = ["nmf", "NMFModel", "NMFfit", "NMFrank", "METHODS", "smoothing", "offset", "nmfEstimateRank", "purity",
           "entropy", "cophcor", "dispersion", "consensus", "silhouette", "summary", "consensusmap", "basismap",
           "coefmap", "rnmf", "syntheticNMF", "nmf_equal", "scoef", "basiscor", "profcor", "basis", "coef",
           "coefficients", "fitted", "residuals", "rss", "evar", "sparseness", "featureScore", "extractFeatures",
           "predict", "nmfModel", "rmatrix", "randomize"]

#: R spells it with a dot
globals()["nmf.equal"] = nmf_equal
