"""Several matrices at once: joint NMF with a shared factor, iNMF, online iNMF, quantile normalisation.

Joint NMF (`fit_joint`): data sets X_1 … X_N with the same features share one factor,
    share="H":  X_i (m_i × n) ≈ W_i H     (same columns: samples in rows, one dictionary H)
    share="W":  X_i (m × n_i) ≈ W H_i     (same rows: one basis W)
minimising Σ_i w_i D(X_i ‖ …).  With D homogeneous of degree β (Frobenius β = 2, KL β = 1),
w_i D(X_i ‖ W_i H) = D(s_i X_i ‖ (s_i W_i) H) with s_i = w_i^{1/β}: the fit is one NMF of the
stacked, rescaled matrices, read chunk by chunk (`nmfkit.stream`'s engine), so dense, sparse and
streamed inputs mix, every stacked-capable solver (hals, anls, mu) runs with its guarantee, and
the driver's stopping rules, history and Ctrl-C apply.  Weights need β > 0.

iNMF (`inmf`; Welch et al., "Single-cell multi-omic integration compares and contrasts features of
brain cell identity", Cell 177, 2019), in LIGER's notation with cells in rows (X_i: n_i cells × g
genes, the features shared):
    min  Σ_i ‖X_i − H_i (W + V_i)‖²_F + λ Σ_i ‖H_i V_i‖²_F,    H_i (n_i×k), W, V_i (k×g) ≥ 0.
Block coordinate descent, each block solved exactly by NNLS (block principal pivoting, Kim & Park
2011), in LIGER's order: every H_i (Gram (W+V_i)(W+V_i)ᵀ + λ V_i V_iᵀ), every V_i (Gram
(1+λ) H_iᵀH_i), then W (Gram Σ H_iᵀH_i).  Each block is minimised exactly with the others fixed,
so the objective never increases (monotone, up to rounding).  The objective comes from the
products the updates made (no extra pass).  Cost per iteration: two products with each X_i
(2·nnz·k) plus O((n + N g)·k²) for the Grams and the NNLS solves.

Online iNMF (`OnlineINMF`; Gao, Kriebel, Welch et al., "Iterative single-cell multi-omic
integration using online learning", Nat. Biotechnol. 39, 2021): chunks of cells arrive one at a
time; the chunk's H is solved exactly given (W, V_i), the statistics A_i ← A_i + H_bᵀH_b and
B_i ← B_i + X_bᵀH_b are accumulated, and V_i, then W, are re-solved exactly (NNLS) on the
surrogate Σ_i [tr((W+V_i)ᵀ A_i (W+V_i)) − 2 ⟨B_i, (W+V_i)ᵀ⟩ + λ tr(V_iᵀ A_i V_i)], which equals
the objective over the cells seen with their H held at the values of their chunk (Mairal et
al.'s surrogate); it never increases as V_i and W are updated.  W starts from NNDSVDa of the first chunk
and each V_i at zero.  Its three scenarios: all data sets streamed
(`partial_fit` on interleaved chunks), a new data set arriving later (`partial_fit` with a new
name: W keeps learning, earlier V_i stay), and projection of a new data set on W without
updating it (`project`: H = argmin ‖X − H W‖², V = 0).  `online_inmf` runs scenario 1 over data
sets read chunk by chunk from disk (epochs of shuffled chunks, then one pass for every cell's H).

UINMF (`inmf(..., unshared=...)`; Kriebel & Welch, "UINMF performs mosaic integration of single-cell
multi-omic datasets using nonnegative matrix factorization", Nat. Commun. 13, 2022): data set i may
also have features only it measured, Y_i (n_i × u_i) ≈ H_i U_i, adding ‖Y_i − H_i U_i‖² + λ‖H_i U_i‖²
to the objective; U_i is one more exact NNLS block (Gram (1+λ) H_iᵀH_i) and enters H_i's Gram and
data, so the descent stays monotone.

Quantile normalisation (`quantile_norm`; the downstream step of LIGER): H_i's columns are scaled to
unit norm, each cell is assigned the factor of its largest loading (optionally smoothed by its
nearest neighbours within its data set), and within each such cluster each factor's distribution in
each data set is mapped onto the reference data set's by piecewise-linear interpolation between
`quantiles` + 1 quantiles, so the integrated H rows are comparable across data sets.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from . import checkpoint as _checkpoint
from .driver import Run, run
from .engines import make_engine
from .engines.dense import DenseEngine
from .engines.memmap import MemmapEngine
from .registry import resolve_loss
from .result import Factorization
from .solvers._anls_kernels import nnls_bpp
from .solvers.base import Solver
from .validation import check_matrix, check_nonneg_float, check_positive_int, check_rank, check_seed, choose

# -- inputs ----------------------------------------------------------------------------------------



def shared_features(names, shapes) -> int:
    """The number of features (columns) every data set shares, or a one-line error naming each one's."""
    g = shapes[0][1]
    if any(shape[1] != g for shape in shapes):
        raise ValueError("every data set must have the same features (columns); got "
                         + ", ".join(f"{n}: {shape[1]}" for n, shape in zip(names, shapes)))
    return g

def _is_streamed(X) -> bool:
    return isinstance(X, (str, os.PathLike)) or (hasattr(X, "read") and hasattr(X, "shape"))


def _engine_of(X, name):
    """(engine, digest) of one data set, in memory (checked) or streamed from a path or reader; `digest()`
    gives a digest of its values for checkpoints (computed only when asked: a pass over in-memory data)."""
    if _is_streamed(X):
        from .stream import stream_engine
        engine, digest = stream_engine(X)
        return engine, lambda: "stream:" + digest
    X = check_matrix(X, name)
    engine = make_engine(X)
    if "numpy_factors" not in engine.capabilities:
        raise TypeError(f"{name}: the several-matrix models run on NumPy or SciPy data (or streamed files); "
                        f"got {type(X).__name__}")
    from .fit import data_digest
    return engine, lambda: data_digest(X)


def _named(Xs, what="Xs"):
    """(names, matrices) of a list or dict of data sets (list positions named "0", "1", …)."""
    if isinstance(Xs, dict):
        names, Xs = list(Xs), list(Xs.values())
    else:
        Xs = list(Xs)
        names = [str(i) for i in range(len(Xs))]
    if len(Xs) < 1:
        raise ValueError(f"{what} must hold at least one matrix")
    return names, Xs


def _engines(Xs, what="Xs"):
    """(names, engines, digests) of the data sets."""
    names, Xs = _named(Xs, what)
    pairs = [_engine_of(X, f"{what}[{name!r}]") for name, X in zip(names, Xs)]
    return names, [e for e, _ in pairs], [d for _, d in pairs]


START_ITER = 20     # HALS iterations of the joint NMF that starts iNMF

# -- iNMF --------------------------------------------------------------------------------------------

class _Stack:
    """What the driver reads of the data of a multi-matrix fit: its total shape, ‖X‖² and dtype."""

    kind = "joint"

    def __init__(self, engines):
        self.engines = engines
        self.shape = (sum(e.shape[0] for e in engines), engines[0].shape[1])
        self.sqnorm = float(sum(e.sqnorm for e in engines))
        self.dtype = np.result_type(*[e.dtype for e in engines])


def _nnls(R, G):
    """argmin_{F ≥ 0} ½ tr(F G Fᵀ) − ⟨F, R⟩ (exact), G made positive definite by a ridge at rounding level
    (a component no cell uses has a zero row and column in G)."""
    G = np.array(G, dtype=np.float64)
    G[np.diag_indices_from(G)] += 1e-13 * max(np.trace(G), 1e-300) / len(G)
    return nnls_bpp(np.asarray(R, dtype=np.float64), G)


class INMFSolver(Solver):
    """iNMF's (and UINMF's) block coordinate descent as a driver step (see the module docstring); not
    registered.  The driver's iterate is packed: its "W" is the H_i stacked (n×k), its "Ht" is
    [Wᵀ; V_1ᵀ; …; V_Nᵀ; U_iᵀ of the data sets with unshared features] (rows × k)."""

    name = "inmf"
    requires = frozenset()

    def __init__(self, stack, lam, unshared=None):
        super().__init__(stack, "frobenius", 2.0)
        self.lam = lam
        self.sizes = [e.shape[0] for e in stack.engines]
        self.rows = np.concatenate([[0], np.cumsum(self.sizes)])
        self.g = stack.shape[1]
        self.unshared = list(unshared) if unshared is not None else [None] * len(self.sizes)

    def unpack(self, Hs, Ht):
        g, N = self.g, len(self.sizes)
        Hs = [Hs[self.rows[i]:self.rows[i + 1]] for i in range(N)]
        Vs = [Ht[g * (i + 1):g * (i + 2)].T for i in range(N)]
        Us, at = [], g * (N + 1)
        for e in self.unshared:
            Us.append(None if e is None else Ht[at:at + e.shape[1]].T)
            at += 0 if e is None else e.shape[1]
        return Hs, Ht[:g].T, Vs, Us

    def pack(self, Hs, W, Vs, Us):
        return np.vstack(Hs), np.vstack([W.T, *[V.T for V in Vs], *[U.T for U in Us if U is not None]])

    def objective(self, Hs, Ht):
        Hs, W, Vs, Us = self.unpack(Hs, Ht)
        XtH = [e.XtW(H) for e, H in zip(self.engine.engines, Hs)]
        YtH = [None if e is None else e.XtW(H) for e, H in zip(self.unshared, Hs)]
        return self._objective(Hs, W, Vs, Us, XtH, YtH)

    def _objective(self, Hs, W, Vs, Us, XtH, YtH):
        total, lam = 0.0, self.lam
        for i, (e, H, V, B) in enumerate(zip(self.engine.engines, Hs, Vs, XtH)):
            M = W + V
            HtH = H.T @ H
            total += e.sqnorm - 2.0 * float(np.sum(B.T * M)) + float(np.sum(HtH * (M @ M.T)))
            total += lam * float(np.sum(HtH * (V @ V.T)))
            if Us[i] is not None:       # ‖Y_i − H_i U_i‖² + λ‖H_i U_i‖²
                U = Us[i]
                total += self.unshared[i].sqnorm - 2.0 * float(np.sum(YtH[i].T * U))
                total += (1.0 + lam) * float(np.sum(HtH * (U @ U.T)))
        return total

    def _h_step(self, i, W, V, U, dtype):
        """H_i: Gram M Mᵀ + λ V Vᵀ (+ (1+λ) U Uᵀ), data X_i Mᵀ (+ Y_i Uᵀ), M = W + V_i."""
        M, lam = W + V, self.lam
        R = np.asarray(self.engine.engines[i].XHt(np.ascontiguousarray(M.T)), dtype=np.float64)
        G = M @ M.T + lam * (V @ V.T)
        if U is not None:
            R = R + self.unshared[i].XHt(np.ascontiguousarray(U.T))
            G = G + (1.0 + lam) * (U @ U.T)
        return _nnls(R, G).astype(dtype)

    def step(self, Hs, Ht):
        Hs, W, Vs, Us = self.unpack(Hs, Ht)
        lam, dtype = self.lam, Hs[0].dtype
        new_H = [self._h_step(i, W, V, U, dtype) for i, (V, U) in enumerate(zip(Vs, Us))]
        XtH = [e.XtW(H) for e, H in zip(self.engine.engines, new_H)]
        YtH = [None if e is None else e.XtW(H) for e, H in zip(self.unshared, new_H)]
        HtH = [H.T.astype(np.float64) @ H for H in new_H]
        new_V = [_nnls(B - W.T @ G, (1.0 + lam) * G).T.astype(dtype)      # V_i: (X_i − H_i W)ᵀ H_i
                 for B, G in zip(XtH, HtH)]
        new_U = [None if B is None else _nnls(B, (1.0 + lam) * G).T.astype(dtype)   # U_i: Y_iᵀ H_i
                 for B, G in zip(YtH, HtH)]
        R = sum(B - V.T @ G for B, V, G in zip(XtH, new_V, HtH))
        W = _nnls(R, sum(HtH)).T.astype(dtype)                             # W: Σ (X_i − H_i V_i)ᵀ H_i
        obj = self._objective(new_H, W, new_V, new_U, XtH, YtH)
        Hs_packed, Ht_packed = self.pack(new_H, W, new_V, new_U)
        return Hs_packed, Ht_packed, obj


@dataclass
class INMFResult:
    """The result of `inmf`: W (k×g, shared), V[i] (k×g) and H[i] (n_i×k) per data set (named `names`),
    U[i] (k×u_i) the metagenes of data set i's unshared features (None where it has none), the
    objective Σ‖X_i − H_i(W+V_i)‖² + λΣ‖H_iV_i‖² (+ Σ‖Y_i − H_iU_i‖² + λ‖H_iU_i‖²) (`loss`) and the
    driver's history."""
    W: np.ndarray
    V: list
    H: list
    loss: float
    n_iter: int
    converged: bool
    stop_reason: str
    history: dict
    names: list
    options: dict = field(default_factory=dict)
    monotonicity: list = field(default_factory=list)
    U: list = field(default_factory=list)

    def quantile_norm(self, **options):
        """`quantile_norm(self.H, …)`: (H_norm list, cluster list)."""
        return quantile_norm(self.H, **options)


def inmf(Xs, rank, *, lam=5.0, max_iter=30, tol=1e-6, seed=None, init=None, callback=None, time_limit=None,
         verbose=False, unshared=None, checkpoint=None, checkpoint_every=50, resume=None) -> INMFResult:
    """Integrative NMF (iNMF) of data sets sharing their features (columns): see the module docstring.

    Parameters (LIGER's name in brackets)
    ----------
    Xs : list or dict of matrices, cells × genes (NumPy, SciPy sparse, or a path / chunk reader to
        stream), all with the same columns.
    rank : k [k].
    lam : λ ≥ 0, the weight of the data-set-specific terms [lambda, default 5].
    max_iter : iteration cap [max.iters / maxIter, 30].
    tol : stop when the mean relative objective decrease over the last iterations falls below tol
        [thresh, 1e-6; LIGER compares two consecutive objectives].
    seed : seeds the start [rand.seed / seed]: a joint NMF of the stacked data sets (shared W,
        `START_ITER` HALS iterations from a random start), with every V_i at zero.
    init : optional dict with "W", "V" (list) and "H" (list) to start from instead [H.init, W.init, V.init].
    callback, time_limit, verbose : as in `nmfkit.fit` (callback(state) returning True stops; the
        state's W is the H_i stacked); Ctrl-C returns the best iterate so far with a warning.
    unshared : UINMF (Kriebel & Welch, Nat. Commun. 13, 2022) [use.unshared / runUINMF]: one matrix
        Y_i (n_i cells × u_i features only data set i measured) or None per data set (a dict keyed like
        Xs may leave data sets out); Y_i ≈ H_i U_i joins the objective with the same λ, and U_i
        starts at zero.
    checkpoint, checkpoint_every, resume : as in `nmfkit.fit`: the state is written atomically every
        `checkpoint_every` iterations and on Ctrl-C; `resume` continues a checkpoint (bit-identical to
        an uninterrupted run) after checking that it was made for the same data sets (their names,
        shapes and a digest of each one's values and unshared features), rank and λ.
    """
    names, engines, digests = _engines(Xs)
    g = shared_features(names, [e.shape for e in engines])
    rank = check_rank(rank, (max(e.shape[0] for e in engines), g))
    lam = check_nonneg_float(lam, "lam")
    max_iter = check_positive_int(max_iter, "max_iter")
    tol = check_nonneg_float(tol, "tol")
    time_limit = check_nonneg_float(time_limit, "time_limit", allow_none=True)
    seed = check_seed(seed)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable: callback(state) -> bool")
    stack = _Stack(engines)
    extra, extra_digests = _unshared_engines(unshared, names, engines)
    solver = INMFSolver(stack, lam, extra)
    label = "uinmf" if any(e is not None for e in extra) else "inmf"
    ckpt, resumed = _inmf_checkpointing(checkpoint, checkpoint_every, resume, stack.dtype, lambda: _fingerprint(
        label, names, engines, digests, extra, extra_digests, rank, lam, stack))
    settings = dict(max_iter=max_iter, tol=tol, time_limit=time_limit, callback=callback, monotone=True,
                    progress=verbose, label=label, checkpoint=ckpt)
    if resumed is not None:
        out = run(solver, None, None, resume=resumed, **settings)
    else:
        rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        H0, W0, V0, stopped_at = _inmf_start(engines, rank, rng, init, stack.dtype)
        U0 = [None if e is None else np.zeros((rank, e.shape[1]), stack.dtype) for e in extra]
        Hs, Ht = solver.pack(H0, W0, V0, U0)
        if stopped_at is None:
            out = run(solver, Hs, Ht, **settings)
        else:
            out = _interrupted_start(solver, Hs, Ht, settings, stopped_at)
    Hs, W, Vs, Us = solver.unpack(out.W, out.Ht)
    return INMFResult(W=np.ascontiguousarray(W), V=[np.ascontiguousarray(V) for V in Vs],
                      U=[None if U is None else np.ascontiguousarray(U) for U in Us],
                      H=[np.ascontiguousarray(H) for H in Hs], loss=out.objective, n_iter=out.n_iter,
                      converged=out.converged, stop_reason=out.stop_reason, history=out.history, names=names,
                      options={"rank": rank, "lam": lam, "max_iter": max_iter, "tol": tol, "seed": seed},
                      monotonicity=out.monotonicity)


def _fingerprint(label, names, engines, digests, extra, extra_digests, rank, lam, stack) -> dict:
    """What an iNMF checkpoint is tied to: each data set's name, shape and a digest of its values (and of
    its unshared features), the rank, λ, the dtype; `nmfkit.checkpoint.check_datasets` compares them."""
    datasets = [{"name": str(name), "shape": list(e.shape), "data": digest(),
                 "unshared_shape": None if y is None else list(y.shape),
                 "unshared_data": None if y is None else y_digest()}
                for name, e, digest, y, y_digest in zip(names, engines, digests, extra, extra_digests)]
    combined = hashlib.blake2b(repr(datasets).encode(), digest_size=16).hexdigest()
    return {"shape": list(stack.shape), "rank": rank, "solver": label, "loss": "frobenius", "beta": 2.0,
            "dtype": str(stack.dtype), "datasets": datasets, "data": combined, "options": {"lam": lam}}


def _inmf_checkpointing(checkpoint, every, resume, dtype, fingerprint):
    """(checkpoint settings for the driver or None, the loaded checkpoint or None), checked before the first
    iteration: a writable target, and a checkpoint made for these data sets and options."""
    if checkpoint is None and resume is None:
        return None, None
    every = check_positive_int(every, "checkpoint_every")
    if checkpoint is not None:
        _checkpoint.check_target(checkpoint)
    fingerprint = fingerprint()
    resumed = None
    if resume is not None:
        resumed = _checkpoint.load(resume)
        _checkpoint.check_fingerprint(resumed["fingerprint"], fingerprint, resume)
        cast = {}
        def as_dtype(A):          # aliases stay aliases (the best iterate may be the last one)
            return cast.setdefault(id(A), np.asarray(A, dtype=dtype))
        obj, best_W, best_Ht, it = resumed["best"]
        resumed = {**resumed, "W": as_dtype(resumed["W"]), "Ht": as_dtype(resumed["Ht"]),
                   "best": (obj, as_dtype(best_W), as_dtype(best_Ht), it)}
    ckpt = None if checkpoint is None else {"path": checkpoint, "every": every, "fingerprint": fingerprint}
    return ckpt, resumed


def _interrupted_start(solver, Hs, Ht, settings, stopped_at):
    """Ctrl-C stopped the joint NMF that makes the start: its factors are the result (iteration 0),
    checkpointed if asked, with a warning."""
    runner = Run(solver, **settings)
    runner.start(Hs, Ht)
    if runner.checkpoint is not None:
        runner.save_checkpoint()
    runner.stop_reason = "interrupted"
    warnings.warn(f"{runner.label}: interrupted during the start (a joint NMF, after {stopped_at} of its "
                  f"{START_ITER} iterations); returning the start", RuntimeWarning, stacklevel=3)
    return runner.finish()


def _unshared_engines(unshared, names, engines):
    """(engines, digests): one engine or None per data set for UINMF's unshared features, rows checked
    against X_i's."""
    if unshared is None:
        return [None] * len(engines), [None] * len(engines)
    if isinstance(unshared, dict):
        unknown = set(unshared) - set(names)
        if unknown:
            raise ValueError(f"unshared names data sets that Xs does not have: {', '.join(sorted(map(str, unknown)))}")
        unshared = [unshared.get(name) for name in names]
    unshared = list(unshared)
    if len(unshared) != len(engines):
        raise ValueError(f"unshared must hold one matrix or None per data set ({len(engines)}); got {len(unshared)}")
    out, digests = [], []
    for name, Y, e in zip(names, unshared, engines):
        if Y is None:
            out.append(None)
            digests.append(None)
            continue
        y, digest = _engine_of(Y, f"unshared[{name!r}]")
        if y.shape[0] != e.shape[0]:
            raise ValueError(f"unshared[{name!r}] has {y.shape[0]} rows but its data set has {e.shape[0]} cells")
        out.append(y)
        digests.append(digest)
    return out, digests


def _inmf_start(engines, rank, rng, init, dtype):
    """(H_i, W, V_i, None), or with the iteration at which Ctrl-C stopped the start's joint NMF last."""
    g = engines[0].shape[1]
    if init is not None:
        if not isinstance(init, dict) or any(key not in init for key in ("W", "V", "H")):
            raise TypeError('init must be a dict with "W", "V" (one per data set) and "H" (one per data set)')
        H0 = [np.asarray(H, dtype=dtype) for H in init["H"]]
        W0 = np.asarray(init["W"], dtype=dtype)
        V0 = [np.asarray(V, dtype=dtype) for V in init["V"]]
        if W0.shape != (rank, g) or any(V.shape != (rank, g) for V in V0) or len(V0) != len(engines) or \
                any(H.shape != (e.shape[0], rank) for H, e in zip(H0, engines)) or len(H0) != len(engines):
            raise ValueError(f"init must hold W and each V_i of shape ({rank}, {g}) "
                             f"and each H_i of shape (n_i, {rank})")
        if any(not np.isfinite(A).all() or (A < 0).any() for A in (W0, *V0, *H0)):
            raise ValueError("init must hold finite, non-negative factors")
        return H0, W0, V0, None
    # a joint NMF of the stacked data sets (shared dictionary), a few HALS iterations from a random start;
    # V_i start at zero (exact NNLS blocks move them, unlike multiplicative updates)
    stacked = _StackedReader(engines, [1.0] * len(engines))
    from .stream import fit_stream
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = fit_stream(stacked, rank, solver="hals", init="random", max_iter=START_ITER, tol=0.0,
                           seed=int(rng.integers(2 ** 31)))
    interrupted = start.stop_reason == "interrupted"
    for w in caught:          # the start's own interrupt warning is replaced by inmf's
        if not (interrupted and "interrupted" in str(w.message)):
            warnings.warn(w.message, w.category, stacklevel=3)
    W0 = start.H.astype(dtype)
    H0 = [start.W[stacked.rows[i]:stacked.rows[i + 1]].astype(dtype) for i in range(len(engines))]
    return H0, W0, [np.zeros((rank, g), dtype) for _ in engines], start.n_iter if interrupted else None


class _ObservedINMFSolver(INMFSolver):
    """iNMF on the observed entries only (mask True), for cross-validation: minimises
        Σ_i ‖M_i ∘ (X_i − H_i(W + V_i))‖² + λ Σ_i ‖H_i V_i‖²
    by EM imputation (a majorize-minimize scheme): each iteration fills the hidden entries with the
    current prediction H_i(W + V_i) and takes one iNMF iteration (exact NNLS blocks) on the filled
    data.  The filled objective majorizes the masked one and touches it at the current factors, so
    the masked objective never increases; it is what the history records (the filled one minus the
    hidden entries' change of prediction).  Memory: every X_i dense."""

    def __init__(self, Xs, masks, lam):
        self.Xs = [np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64) for X in Xs]
        self.masks = [np.asarray(M, dtype=bool) for M in masks]
        self.hidden = [np.nonzero(~M) for M in self.masks]
        super().__init__(_Stack([DenseEngine(X) for X in self.Xs]), lam)

    def _predict_hidden(self, H, M, i):
        rows, cols = self.hidden[i]
        return np.einsum("ik,ik->i", H[rows], M[:, cols].T)

    def objective(self, Hs, Ht):
        Hs, W, Vs, _ = self.unpack(Hs, Ht)
        total = 0.0
        for X, mask, H, V in zip(self.Xs, self.masks, Hs, Vs):
            R = np.where(mask, X - H @ (W + V), 0.0)
            total += float(np.sum(R * R)) + self.lam * float(np.sum((H @ V) ** 2))
        return total

    def step(self, Hs, Ht):
        H_old, W, Vs, _ = self.unpack(Hs, Ht)
        fills = []
        for i, (X, H, V) in enumerate(zip(self.Xs, H_old, Vs)):
            rows, cols = self.hidden[i]
            filled = X.copy()
            filled[rows, cols] = fill = self._predict_hidden(H, W + V, i)
            fills.append(fill)
            self.engine.engines[i] = DenseEngine(filled)
        Hs, Ht, surrogate = super().step(Hs, Ht)
        H_new, W, Vs, _ = self.unpack(Hs, Ht)
        moved = sum(float(np.sum((fill - self._predict_hidden(H, W + V, i)) ** 2))
                    for i, (fill, H, V) in enumerate(zip(fills, H_new, Vs)))
        return Hs, Ht, surrogate - moved


def inmf_observed(Xs, masks, rank, *, lam=5.0, init=None, max_iter=100, tol=1e-5, time_limit=None):
    """iNMF fitted on the observed entries of each X_i only (mask True; see `_ObservedINMFSolver`),
    from `init` (a dict with "W", "V" and "H" as in `inmf`): the fit of `nmfkit.rank.cross_validate_rank`
    for several data sets, whose hidden entries never reach the fit.  Returns an `INMFResult`."""
    names, Xs = _named(Xs)
    Xs = [check_matrix(X, f"Xs[{name!r}]") for name, X in zip(names, Xs)]
    masks = list(masks.values()) if isinstance(masks, dict) else list(masks)
    if len(masks) != len(Xs) or any(np.shape(M) != X.shape for M, X in zip(masks, Xs)):
        raise ValueError("masks must hold one boolean array per data set, each of its data set's shape")
    g = shared_features(names, [X.shape for X in Xs])
    rank = check_rank(rank, (max(X.shape[0] for X in Xs), g))
    if init is None:
        raise TypeError('inmf_observed needs init= (a dict with "W", "V" and "H") drawn without the hidden entries')
    time_limit = check_nonneg_float(time_limit, "time_limit", allow_none=True)
    solver = _ObservedINMFSolver(Xs, masks, check_nonneg_float(lam, "lam"))
    engines = solver.engine.engines
    H0, W0, V0, _ = _inmf_start(engines, rank, None, init, np.dtype(np.float64))
    Hs, Ht = solver.pack(H0, W0, V0, [None] * len(engines))
    out = run(solver, Hs, Ht, max_iter=check_positive_int(max_iter, "max_iter"), tol=check_nonneg_float(tol, "tol"),
              time_limit=time_limit, monotone=True, label="inmf (observed entries)")
    Hs, W, Vs, _ = solver.unpack(out.W, out.Ht)
    return INMFResult(W=W, V=Vs, H=Hs, loss=out.objective, n_iter=out.n_iter, converged=out.converged,
                      stop_reason=out.stop_reason, history=out.history, names=names,
                      options={"rank": rank, "lam": lam, "max_iter": max_iter, "tol": tol},
                      monotonicity=out.monotonicity, U=[None] * len(Hs))


def inmf_objective(Xs, W, Vs, Hs, lam, unshared=None, Us=None) -> float:
    """Σ_i ‖X_i − H_i(W + V_i)‖²_F + λ Σ_i ‖H_i V_i‖²_F (+ Σ_i ‖Y_i − H_i U_i‖² + λ‖H_i U_i‖² for
    UINMF's unshared features) evaluated directly (dense residuals, one data set at a time): the check
    of `inmf`'s reported objective."""
    Xs = list(Xs.values()) if isinstance(Xs, dict) else list(Xs)
    total = 0.0
    for X, V, H in zip(Xs, Vs, Hs):
        X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
        total += float(np.sum((X - H @ (W + V)) ** 2)) + lam * float(np.sum((H @ V) ** 2))
    for Y, U, H in zip(unshared or [], Us or [], Hs):
        if Y is not None:
            Y = Y.toarray() if sp.issparse(Y) else np.asarray(Y, dtype=np.float64)
            total += float(np.sum((Y - H @ U) ** 2)) + lam * float(np.sum((H @ U) ** 2))
    return total


# -- online iNMF ------------------------------------------------------------------------------------

class OnlineINMF:
    """Online iNMF (Gao et al. 2021), chunks of cells × genes at a time; see the module docstring.

    lam [lambda], rank [k]; `partial_fit(X_chunk, dataset)` returns the chunk's H (rows × k)."""

    def __init__(self, rank, *, lam=5.0, seed=None):
        self.rank = check_positive_int(rank, "rank")
        self.lam = check_nonneg_float(lam, "lam")
        self.rng = np.random.default_rng(np.random.SeedSequence(check_seed(seed)).spawn(1)[0])
        self.W, self.V, self.A, self.B, self.n_seen = None, {}, {}, {}, {}

    def _start(self, X, dataset):
        g = X.shape[1]
        if self.W is None:              # W from NNDSVDa of the first chunk, V_i start at zero
            if self.rank > min(X.shape):
                raise ValueError(f"rank={self.rank} exceeds the first chunk's size {X.shape[0]}×{g}; "
                                 "use larger chunks")
            from .init import nndsvda_init
            self.W = np.ascontiguousarray(nndsvda_init(make_engine(X), self.rank, self.rng)[1].T, dtype=np.float64)
        elif g != self.W.shape[1]:
            raise ValueError(f"X_chunk has {g} columns but the model has {self.W.shape[1]} features")
        if dataset not in self.V:
            self.V[dataset] = np.zeros((self.rank, g))
            self.A[dataset] = np.zeros((self.rank, self.rank))
            self.B[dataset] = np.zeros((g, self.rank))
            self.n_seen[dataset] = 0

    def partial_fit(self, X_chunk, dataset):
        """Learn from a chunk of cells of data set `dataset` (a new name starts a new data set)."""
        X_chunk = check_matrix(X_chunk, "X_chunk", allow_zero=True)
        self._start(X_chunk, dataset)
        engine = make_engine(X_chunk)
        W, V, lam = self.W, self.V[dataset], self.lam
        U = W + V
        H = _nnls(engine.XHt(np.ascontiguousarray(U.T).astype(engine.dtype)), U @ U.T + lam * (V @ V.T))
        self.A[dataset] += H.T @ H
        self.B[dataset] += np.asarray(engine.XtW(H.astype(engine.dtype)), dtype=np.float64)
        self.n_seen[dataset] += X_chunk.shape[0]
        self._update_factors(dataset)
        return H

    def _update_factors(self, dataset):
        A, B = self.A[dataset], self.B[dataset]
        self.V[dataset] = _nnls(B - self.W.T @ A, (1.0 + self.lam) * A).T
        R = sum(self.B[d] - self.V[d].T @ self.A[d] for d in self.V)
        self.W = _nnls(R, sum(self.A.values())).T

    def transform(self, X, dataset):
        """H of cells of a data set the model has (W and its V_i fixed)."""
        X = check_matrix(X, "X", allow_zero=True)
        U, V = self.W + self.V[dataset], self.V[dataset]
        return _nnls(make_engine(X).XHt(np.ascontiguousarray(U.T)), U @ U.T + self.lam * (V @ V.T))

    def project(self, X_new):
        """Scenario 3: H of a new data set on the shared W alone (V = 0), nothing updated."""
        X_new = check_matrix(X_new, "X_new", allow_zero=True)
        if self.W is None:
            raise ValueError("the model has seen no data yet: call partial_fit first")
        return _nnls(make_engine(X_new).XHt(np.ascontiguousarray(self.W.T)), self.W @ self.W.T)


def online_inmf(Xs, rank, *, lam=5.0, chunk=5000, epochs=5, seed=None) -> tuple[OnlineINMF, list]:
    """Online iNMF of data sets read chunk by chunk (scenario 1 of Gao et al. 2021): each epoch
    visits every chunk of every data set once, in an order shuffled by `seed`; afterwards one more
    pass computes every cell's H with the final W and V_i.  `Xs` as in `inmf` (paths and readers are
    streamed, so memory holds the factors, the statistics and one chunk).  Returns (the model, the
    list of H_i).  LIGER: k = rank, lambda = lam, miniBatch_size / minibatchSize = chunk,
    max.epochs / maxEpochs = epochs."""
    names, engines, _ = _engines(Xs)
    chunk = check_positive_int(chunk, "chunk")
    epochs = check_positive_int(epochs, "epochs")
    model = OnlineINMF(rank, lam=lam, seed=seed)
    batches = [(i, s) for i, e in enumerate(engines) for s in range(0, e.shape[0], chunk)]
    for _ in range(epochs):
        for b in model.rng.permutation(len(batches)):
            i, s = batches[b]
            model.partial_fit(_rows(engines[i], s, min(s + chunk, engines[i].shape[0])), dataset=names[i])
    Hs = [np.vstack([model.transform(_rows(e, s, min(s + chunk, e.shape[0])), name)
                     for s in range(0, e.shape[0], chunk)]) for name, e in zip(names, engines)]
    return model, Hs


# -- quantile normalisation -------------------------------------------------------------------------

def quantile_norm(Hs, *, reference=None, quantiles=50, min_cells=20, knn_k=20):
    """LIGER's quantile normalisation of the H_i (cells × k): see the module docstring.

    reference [ref_dataset]: index of the reference data set (default: the one with most cells);
    quantiles [quantiles, 50]; min_cells [min_cells, 20]: a cluster with fewer cells in a data set is
    left as it is there; knn_k [knn_k, 20]: neighbours whose majority cluster a cell takes (0: none).
    Returns (list of normalised H_i, list of cluster labels per data set)."""
    Hs = [np.asarray(H, dtype=np.float64) for H in Hs]
    quantiles = check_positive_int(quantiles, "quantiles")
    ref = int(np.argmax([len(H) for H in Hs])) if reference is None else int(reference)
    if not 0 <= ref < len(Hs):
        raise ValueError(f"reference must index one of the {len(Hs)} data sets; got {reference!r}")
    scaled = [H / np.maximum(np.linalg.norm(H, axis=0), np.finfo(float).tiny) for H in Hs]
    clusters = [_smooth(S, np.argmax(S, axis=1), knn_k) for S in scaled]
    out = [S.copy() for S in scaled]
    levels = np.linspace(0.0, 1.0, quantiles + 1)
    for c in np.unique(np.concatenate(clusters)):
        in_ref = clusters[ref] == c
        if in_ref.sum() < min_cells:
            continue
        for i, S in enumerate(scaled):
            cells = clusters[i] == c
            if i == ref or cells.sum() < min_cells:
                continue
            for j in range(S.shape[1]):
                out[i][cells, j] = _warp(S[cells, j], scaled[ref][in_ref, j], levels)
    return out, clusters


def _warp(values, target, levels):
    """values mapped by the piecewise-linear function taking their quantiles to the target's (ties: mean)."""
    q_from, q_to = np.quantile(values, levels), np.quantile(target, levels)
    if q_from.sum() == 0 or q_to.sum() == 0 or len(np.unique(q_from)) < 2:
        return np.zeros_like(values)
    xs, inverse = np.unique(q_from, return_inverse=True)
    ys = np.bincount(inverse, weights=q_to) / np.bincount(inverse)
    return np.interp(values, xs, ys)


def _smooth(S, labels, knn_k):
    if not knn_k or len(S) <= knn_k:
        return labels
    from scipy.spatial import cKDTree
    _, nearest = cKDTree(S).query(S, k=knn_k)
    votes = labels[nearest]
    return np.array([np.bincount(row).argmax() for row in votes])


# -- joint NMF with a shared factor ------------------------------------------------------------------

class _StackedReader:
    """The rows of several data sets one after another, each scaled by s_i (a chunk may span two)."""

    def __init__(self, engines, scales):
        self.engines, self.scales = engines, scales
        self.rows = np.concatenate([[0], np.cumsum([e.shape[0] for e in engines])])
        self.shape = (int(self.rows[-1]), engines[0].shape[1])
        self.dtype = np.result_type(*[e.dtype for e in engines])
        self.name = "joint"

    def read(self, start, stop):
        parts = []
        for i, e in enumerate(self.engines):
            lo, hi = max(start, self.rows[i]), min(stop, self.rows[i + 1])
            if lo < hi:
                parts.append(_rows(e, lo - self.rows[i], hi - self.rows[i]) * self.scales[i])
        if all(sp.issparse(p) for p in parts):
            return sp.vstack(parts, format="csr").astype(self.dtype, copy=False)
        return np.vstack([p.toarray() if sp.issparse(p) else np.asarray(p) for p in parts]).astype(self.dtype,
                                                                                                    copy=False)


def _rows(engine, lo, hi):
    if isinstance(engine, MemmapEngine):
        return engine.reader.read(lo, hi) if engine.reader is not None else np.asarray(engine.X[lo:hi])
    return engine.X[lo:hi]


@dataclass
class JointResult:
    """The result of `fit_joint`: `shared` (H for share="H", W for share="W") and one factor per data
    set (`own`, named `names`), the weighted loss and the stacked fit (`fit`)."""
    shared: np.ndarray
    own: list
    names: list
    share: str
    loss: float
    fit: Factorization


def fit_joint(Xs, rank, *, share="H", weights=None, chunk=None, loss=None, beta=None, **fit_options) -> JointResult:
    """Joint NMF of data sets sharing a factor (see the module docstring).  `Xs`: list or dict of
    matrices (dense, sparse, or paths/readers streamed); `weights`: one w_i > 0 per data set;
    other options as `nmfkit.fit` (solver, max_iter, tol, seed, …)."""
    share = choose(share, ("H", "W"), "share")
    names, engines, _ = _engines(Xs)
    if share == "W":
        engines = [e.transpose() for e in engines]
    n = engines[0].shape[1]
    if any(e.shape[1] != n for e in engines):
        what = "columns" if share == "H" else "rows"
        raise ValueError(f"with share={share!r} every data set must have the same {what}; got "
                         + ", ".join(f"{nm}: {e.shape[1]}" for nm, e in zip(names, engines)))
    loss_name, beta_value = resolve_loss("frobenius" if loss is None else loss, beta)
    scales = _scales(weights, len(engines), beta_value)
    from .stream import fit_stream
    stacked = _StackedReader(engines, scales)
    result = fit_stream(stacked, rank, chunk=chunk, loss=loss_name, beta=beta if loss_name == "beta" else None,
                        **fit_options)
    W = result.W
    own = [W[stacked.rows[i]:stacked.rows[i + 1]] / scales[i] for i in range(len(engines))]
    if share == "W":
        return JointResult(shared=np.ascontiguousarray(result.H.T), own=[np.ascontiguousarray(F.T) for F in own],
                           names=names, share=share, loss=result.loss, fit=result)
    return JointResult(shared=result.H, own=own, names=names, share=share, loss=result.loss, fit=result)


def _scales(weights, count, beta):
    if weights is None:
        return [1.0] * count
    weights = [check_nonneg_float(w, "weights") for w in weights]
    if len(weights) != count or min(weights) <= 0:
        raise ValueError(f"weights must hold one positive number per data set ({count}); got {weights!r}")
    if beta <= 0 and any(w != 1.0 for w in weights):
        raise ValueError("per-matrix weights need a loss homogeneous of positive degree (β > 0); "
                         "the Itakura-Saito divergence is scale-invariant")
    return [w ** (1.0 / beta) for w in weights]


__all__ = ["inmf", "INMFResult", "inmf_objective", "inmf_observed", "OnlineINMF", "online_inmf", "quantile_norm",
           "fit_joint", "JointResult"]
