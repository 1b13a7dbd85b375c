"""Initial factors: random (scaled to the data), NNDSVD and its two fills.

random    W, H ~ U(0, 2·sqrt(mean(X)/k)), so E[(WH)_ij] = mean(X).
nndsvd    Boutsidis & Gallopoulos (2008): the positive parts of the leading
          singular triplets; zeros stay (MU then keeps them near its floor).
nndsvda   nndsvd with zeros replaced by mean(X)  (good default for every solver).
nndsvdar  nndsvd with zeros replaced by U(0, mean(X)/100)  (random, small).
spa       W = k anchor columns of X chosen by the successive projection algorithm (Gillis &
          Vavasis 2014), H by exact NNLS: deterministic, and exact on separable data.
The SVD is randomized (Halko et al. 2011) and uses only the engine's products,
so it runs on every engine: cost ≈ 2·(q+1) passes over X with k+10 columns.
Factors come back tall: (W m×k, Ht n×k), as NumPy arrays of X's dtype (the
front door moves them to X's device), so a seed gives the same start on every engine.
"""
from __future__ import annotations

import numpy as np

from .registry import register_init


def randomized_svd(engine, k: int, rng, oversample: int = 10, power_iters: int = 4):
    """Top-k singular triplets (U m×k, s, Vt k×n) of the engine's X."""
    m, n = engine.shape
    p = min(k + oversample, min(m, n))
    ops = engine.ops                         # the products and QRs run where X lives (e.g. a GPU)
    Y = engine.XHt(ops.asarray(rng.standard_normal((n, p)).astype(engine.dtype), engine.X))
    Q = ops.qr(Y)
    for _ in range(power_iters):
        Z = ops.qr(engine.XtW(Q))
        Q = ops.qr(engine.XHt(Z))
    Bt = ops.to_numpy(engine.XtW(Q))         # n×p = (Qᵀ X)ᵀ; the small SVD runs in NumPy
    Vb, s, Ut = np.linalg.svd(Bt, full_matrices=False)
    U = ops.to_numpy(Q) @ Ut.T
    return U[:, :k], s[:k], Vb[:, :k].T


@register_init("random")
def random_init(engine, rank, rng):
    m, n = engine.shape
    scale = 2.0 * np.sqrt(engine.mean() / rank)
    W = (scale * rng.random((m, rank))).astype(engine.dtype)
    Ht = (scale * rng.random((n, rank))).astype(engine.dtype)
    return W, Ht


ZERO_CUTOFF = 1e-10   # relative to the column's largest entry


def _nndsvd(engine, rank, rng):
    U, s, Vt = randomized_svd(engine, rank, rng)
    m, n = engine.shape
    W = np.zeros((m, rank))
    Ht = np.zeros((n, rank))
    W[:, 0] = np.sqrt(s[0]) * np.abs(U[:, 0])
    Ht[:, 0] = np.sqrt(s[0]) * np.abs(Vt[0])
    for j in range(1, rank):
        x, y = U[:, j], Vt[j]
        xp, xn = np.maximum(x, 0), np.maximum(-x, 0)
        yp, yn = np.maximum(y, 0), np.maximum(-y, 0)
        nxp, nyp, nxn, nyn = (np.linalg.norm(v) for v in (xp, yp, xn, yn))
        if nxp * nyp >= nxn * nyn:
            u, v, sigma = xp / max(nxp, 1e-300), yp / max(nyp, 1e-300), nxp * nyp
        else:
            u, v, sigma = xn / max(nxn, 1e-300), yn / max(nyn, 1e-300), nxn * nyn
        c = np.sqrt(s[j] * sigma)
        W[:, j], Ht[:, j] = c * u, c * v
    # Rounding leaves ~1e-17 where the exact factor is 0 (an empty row of X, say), and how much
    # depends on the engine's products; clear it so nndsvda/ar fill the same entries everywhere.
    for F in (W, Ht):
        F[F <= ZERO_CUTOFF * F.max(axis=0)] = 0.0
    return W, Ht


@register_init("nndsvd")
def nndsvd_init(engine, rank, rng):
    W, Ht = _nndsvd(engine, rank, rng)
    return W.astype(engine.dtype), Ht.astype(engine.dtype)


@register_init("nndsvda")
def nndsvda_init(engine, rank, rng):
    W, Ht = _nndsvd(engine, rank, rng)
    avg = engine.mean()
    W[W == 0] = avg
    Ht[Ht == 0] = avg
    return W.astype(engine.dtype), Ht.astype(engine.dtype)


@register_init("nndsvdar")
def nndsvdar_init(engine, rank, rng):
    W, Ht = _nndsvd(engine, rank, rng)
    avg = engine.mean()
    W[W == 0] = avg * rng.random(int((W == 0).sum())) / 100
    Ht[Ht == 0] = avg * rng.random(int((Ht == 0).sum())) / 100
    return W.astype(engine.dtype), Ht.astype(engine.dtype)


@register_init("spa")
def spa_init(engine, rank, rng):
    """W = the anchor columns SPA picks from X (columns scaled to sum 1 for the choice), Ht by exact NNLS
    (Gillis & Vavasis 2014; see solvers/separable.py).  Deterministic; needs X in memory as a NumPy or
    SciPy array, and at least `rank` linearly independent columns."""
    from .solvers.separable import anchor_factors, spa
    if "numpy_data" not in engine.capabilities:
        raise ValueError(f"init='spa' needs X as a NumPy array or SciPy sparse matrix, not {engine.kind} data; "
                         "use init='nndsvda'")
    W, Ht, _, _ = anchor_factors(engine, spa(engine.X, rank))
    return W, Ht
