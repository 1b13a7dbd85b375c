"""Sparse NMF by alternating non-negative least squares (Kim & Park, Bioinformatics 23(12) 2007).

SNMF/R (`version="r"`, sparse H) minimises, with η = `eta`, β = `sparsity`,

    ½ (‖V − W H‖²_F + η² ‖W‖²_F + β Σ_j (Σ_q H_qj)²)

by exact alternating NNLS on stacked systems (R NMF 0.25's `snmf/r`):

    H ← argmin_{H ≥ 0} ‖[W; √β 1ᵀ] H − [V; 0]‖²      (normal equations WᵀW + β 1 1ᵀ)
    W ← argmin_{W ≥ 0} ‖[Hᵀ; η I] Wᵀ − [Vᵀ; 0]‖²     (normal equations H Hᵀ + η² I)

SNMF/L (`version="l"`, sparse W) is the same on Vᵀ: W first with β, then H with η.
Defaults as R: η = max(V), β = 0.01; the start's W columns (SNMF/L: H rows)
are scaled to unit L2 norm and only that factor of the start is used.
Kim & Park's stopping rule is applied every 5 iterations (and at the first):
stop once, `bi_conv[1]` checks in a row, at most `bi_conv[0]` rows of W change
their largest component and no column of H does, and the mean non-zero KKT
residual min(F, ∇F) has fallen below `eps_conv` times its first value.
When a row of H (SNMF/L: column of W) comes out all zero, the updated factor is
restarted from U(0, 1) as R does (from the run's random stream, so not R's
numbers); after 10 restarts the run stops with a warning (β too large).

Each NNLS solution is unique (the stacked matrices have full column rank), so
any exact NNLS solver gives R's `fcnnls` iterate up to rounding; nmfkit uses
its block-principal-pivoting kernel (`_anls_kernels.nnls_bpp`).  Exact half-steps: the
objective above never increases.  R reports η·‖W‖² instead of η²‖W‖² in its
objective; its iterates are the same.  Ties in the largest component are
broken by the first index (R: at random), which only affects the stop.
Cost per iteration: two passes over V and two k×k NNLS per row/column; a stop
check adds one pass.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..engines.base import frobenius_from_products
from ..registry import register_solver
from ._anls_kernels import nnls_bpp
from .base import IterateCache
from .r_compat import _RCompat

MAX_RESTARTS = 10
CHECK_EVERY = 5


@register_solver("snmf", losses=("frobenius",), monotone=True, max_iter=20000, default_init="random",
                 summary="sparse NMF by alternating NNLS (Kim & Park 2007; R NMF's snmf/r, snmf/l): "
                         "sparse H (version='r') or W ('l')", penalties=False)
class SNMF(_RCompat):
    """Kim & Park's sparse NMF.  Options: version ("r": sparse H, "l": sparse W),
    eta (default max X), sparsity (β, default 0.01), eps_conv (1e-4), bi_conv ((0, 10))."""

    def __init__(self, engine, loss, beta, version="r", eta=None, sparsity=0.01, eps_conv=1e-4,
                 bi_conv=(0, 10), **options):
        super().__init__(engine, loss, beta, **options)
        if not isinstance(version, str) or version.lower() not in ("r", "l"):
            raise ValueError(f"version must be 'r' (sparse H) or 'l' (sparse W); got {version!r}")
        self.version = version.lower()
        if eta is None or (isinstance(eta, (int, float)) and not isinstance(eta, bool) and eta < 0):
            eta = float(engine.X.max())          # R: eta < 0 (its default -1) means max(V)
        if isinstance(eta, bool) or not isinstance(eta, (int, float, np.floating)) or not np.isfinite(eta):
            raise ValueError(f"eta must be a finite number ≥ 0 (or None for max X); got {eta!r}")
        if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float, np.floating)) \
                or not np.isfinite(sparsity) or sparsity <= 0:
            raise ValueError(f"sparsity (R's beta) must be a positive number; got {sparsity!r}")
        if isinstance(eps_conv, bool) or not isinstance(eps_conv, (int, float)) or not eps_conv > 0:
            raise ValueError(f"eps_conv must be positive; got {eps_conv!r}")
        try:
            wminchange, iconv = (float(v) for v in bi_conv)
        except (TypeError, ValueError):
            raise ValueError(f"bi_conv must be two numbers (wminchange, iconv); got {bi_conv!r}") from None
        if wminchange < 0 or iconv < 0:
            raise ValueError(f"bi_conv's two numbers must be ≥ 0; got {bi_conv!r}")
        self.eta2, self.beta_s = float(eta) ** 2, float(sparsity)
        self.eps_conv, self.wminchange, self.iconv = float(eps_conv), wminchange, iconv
        self._next = IterateCache()

    # Kim & Park's stop test carries across a checkpoint: its counter, first residual and last argmaxes
    checkpoint_attrs = ("iteration", "restarts", "inc", "erravg1", "idx_w", "idx_h")

    def _reset_check(self):
        self.inc, self.erravg1, self.idx_w, self.idx_h = 0, None, None, None

    def _unit(self, F):
        F = np.array(F, dtype=F.dtype, copy=True)
        F /= np.sqrt((F.astype(np.float64) ** 2).sum(axis=0)).astype(F.dtype)
        return F

    def prepare(self, W, Ht):
        W, Ht = super().prepare(W, Ht)
        self.done, self.restarts = False, 0
        self._reset_check()
        if self.version == "r":
            return self._unit(W), np.array(Ht, copy=True)
        return np.array(W, copy=True), self._unit(Ht)

    def _nnls(self, R, G, F_old):
        return nnls_bpp(R, G, passive=F_old > 0).astype(F_old.dtype, copy=False)

    def objective(self, W, Ht):
        data = self.engine.frobenius(W, Ht)
        return data + self._penalty(W, Ht)

    def _penalty(self, W, Ht):
        dense, sparse = (W, Ht) if self.version == "r" else (Ht, W)
        s = sparse.sum(axis=1, dtype=np.float64)
        return 0.5 * (self.eta2 * float(np.einsum("ij,ij->", dense, dense, dtype=np.float64))
                      + self.beta_s * float(s @ s))

    def step(self, W, Ht):
        e = self.engine
        k = W.shape[1]
        ridge = self.eta2 * np.eye(k)
        ones = self.beta_s * np.ones((k, k))
        self.iteration += 1
        # snmf/r makes H sparse, snmf/l makes W sparse: the same sweep with the roles swapped.
        # S is the sparse factor (updated first, with the L1 block), D the dense one (ridge).
        if self.version == "r":
            D, S, toward_S, toward_D, restart = W, Ht, e.XtW, e.XHt, "W"
        else:
            D, S, toward_S, toward_D, restart = Ht, W, e.XHt, e.XtW, "Ht"
        P = self._next.get(W, Ht)
        P = toward_S(D) if P is None else P
        S = self._nnls(P, D.T @ D + ones, S)
        if np.any(S.sum(axis=0) == 0):
            return self._restart(*((D, S) if self.version == "r" else (S, D)), restart)
        Q, SS = toward_D(S), S.T @ S
        D = self._nnls(Q, SS + ridge, D)
        W, Ht = (D, S) if self.version == "r" else (S, D)
        obj = frobenius_from_products(e.sqnorm, D, Q, SS) + self._penalty(W, Ht)
        if self.iteration % CHECK_EVERY == 0 or self.erravg1 is None:
            P = toward_S(D)
            self._next.put(W, Ht, P)
            self._check(D, S, P, Q, self.version)
        return W, Ht, obj

    def _restart(self, W, Ht, which):
        """A component of the sparse factor died: draw the other factor afresh (R: runif)."""
        self.restarts += 1
        if self.restarts >= MAX_RESTARTS:
            warnings.warn(f"snmf: {MAX_RESTARTS - 1} restarts after all-zero components; the sparsity "
                          f"weight ({self.beta_s:g}) is too large for this data: stopping", RuntimeWarning,
                          stacklevel=4)
            self.done = True
        self._reset_check()
        rng = self.rng or np.random.default_rng()
        if which == "W":
            W = self._unit(rng.random(W.shape).astype(W.dtype))
        else:
            Ht = self._unit(rng.random(Ht.shape).astype(Ht.dtype))
        return W, Ht, self.objective(W, Ht)

    def _check(self, Wd, Hs, XtWd, XHs, version):
        """Kim & Park's stop test on the problem's own orientation: Wd (dense factor,
        rows = the rows of A), Hs (sparse factor, tall), XtWd = Aᵀ Wd, XHs = A Hs."""
        idx = (np.argmax(Wd, axis=1), np.argmax(Hs, axis=1))
        old_w = np.full(len(idx[0]), -1) if self.idx_w is None else self.idx_w
        old_h = np.full(len(idx[1]), -1) if self.idx_h is None else self.idx_h
        changed_w, changed_h = int(np.sum(idx[0] != old_w)), int(np.sum(idx[1] != old_h))
        self.inc = self.inc + 1 if changed_w <= self.wminchange and changed_h == 0 else 0
        k = Wd.shape[1]
        grad_h = Hs @ (Wd.T @ Wd) - XtWd + Hs @ (self.beta_s * np.ones((k, k)))
        grad_w = Wd @ (Hs.T @ Hs) - XHs + self.eta2 * Wd
        res = np.concatenate([np.minimum(Hs, grad_h).ravel(), np.minimum(Wd, grad_w).ravel()])
        nonzero = np.count_nonzero(res)
        erravg = float(np.abs(res).sum() / nonzero) if nonzero else 0.0
        if self.erravg1 is None:
            self.erravg1 = erravg
        if self.inc >= self.iconv and erravg <= self.eps_conv * self.erravg1:
            self.done = True
        self.idx_w, self.idx_h = idx
