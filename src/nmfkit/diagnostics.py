"""Per-iteration convergence diagnostics of the Lee–Seung updates and the auxiliary-function lemma
(Lee & Seung 2001).

Notation: M = X, U = W (m×k), V = H (k×n); one step maps (U_k, V_k) to (U_{k+1}, V_{k+1}),
H half-step first.  g(V) = ½‖M − U_k V‖² is the H-subproblem of the step.  In nmfkit's tall storage
(Ht = Vᵀ) with A = U_kᵀU_k, R = Mᵀ U_k, D = Ht_{k+1} − Ht_k, E = U_k − U_{k+1}, B = Ht_{k+1}ᵀHt_{k+1}:

  theta_V        ‖U_k(V_k − V_{k+1})‖² / ‖V_k − V_{k+1}‖²  = ⟨D, DA⟩ / ‖D‖²
  theta_U        ‖V_{k+1}ᵀ(U_kᵀ − U_{k+1}ᵀ)‖² / ‖U_k − U_{k+1}‖²  = ⟨E, EB⟩ / ‖E‖²
  diff_norm_V    ½‖U_k(V_k − V_{k+1})‖²  = ½⟨D, DA⟩
  decrease_V     g(V_k) − g(V_{k+1})  = ⟨R, D⟩ − ½⟨D, (Ht_k + Ht_{k+1})A⟩   (no ‖M‖² cancellation)
  inner_product  ⟨∇g(V_{k+1}), V_k − V_{k+1}⟩  = ⟨R − Ht_{k+1}A, D⟩   (first-order term)
  inner_product2 the sum-of-squares form of the proof,
                 ½ Σ_i Σ_{z≠j} A_zj (√(v_z/v_j) d_j − √(v_j/v_z) d_z)², v = V_k[:, i], d = V_{k+1}[:, i] − v;
                 expanding the square and using A = Aᵀ gives, vectorised,
                 Σ D² ∘ (Ht_k A) / Ht_k − ⟨D, DA⟩.  On an exact Lee–Seung step (Ht_k A)/Ht_k = R/Ht_{k+1}
                 and it equals inner_product (the proof's identity); nmfkit's floor and penalties make the
                 two differ by the clamped entries only.
  decrease_V = inner_product + diff_norm_V exactly (g is quadratic).  decrease_V ≥ 0 when the
                 recorded V_{k+1} is the H half-step's own result (mu, anls, hals with
                 extrapolate=False); hals' default extrapolation (Ang & Gillis 2019) records the
                 extrapolated point, along which g may rise, while the objective of the recorded
                 iterates still never rises.
  relative_error ‖M − U_{k+1}V_{k+1}‖ / ‖M‖;  sv_{min,max}_{WtW,HHt}: extreme singular values of UᵀU
                 and V Vᵀ (k×k; the n×n VᵀV has the same non-zero ones and, for n > k, min 0);
  kkt_residual   ‖P[∇f]‖_F, the projected gradient (Lin 2007) of the full objective f (penalties
                 included) at the row's iterate: P[∇]_ij = ∇_ij where x_ij > floor, min(0, ∇_ij) on the bound.
State columns (relative_error, sv_*, kkt_residual) describe the iterate after the row's step; step
columns describe the step that produced it.  A loop that records its state before each step has
as its row i nmfkit's state row i with step row i + 1.

0/0: when V_k = V_{k+1} (or U_k = U_{k+1}) θ is undefined; the last defined value is
carried forward (starting from NaN, not 0, which would be a false value).

Cost: the Frobenius solvers leave Xᵀ U_k, U_kᵀU_k, X Ht_{k+1}, Ht_{k+1}ᵀHt_{k+1} in `solver.cache`, so a
tracked step costs O((m+n)k² + k³) more and no pass over X; the KKT residual of iterate k uses Xᵀ U_k
from step k+1 and X Ht_k from step k (two extra products per run: first and last iterate).  Without a
cache (other losses or solvers) the Frobenius quantities cost 2 extra products per step; for losses
other than Frobenius, decrease_V, the inner products and the KKT residual are NaN (they are defined
for the Frobenius g) and relative_error costs one product.
"""
from __future__ import annotations

import time

import numpy as np

from .engines import array_ops
from .validation import choose

QUANTITIES = ("relative_error", "theta_V", "theta_U", "diff_norm_V", "decrease_V", "inner_product",
              "inner_product2", "sv_min_WtW", "sv_max_WtW", "sv_min_HHt", "sv_max_HHt", "kkt_residual",
              "track_seconds")
FROBENIUS_ONLY = ("decrease_V", "inner_product", "inner_product2", "kkt_residual")
_GROUPS = {"theta": ("theta_V", "theta_U"), "singular_values": QUANTITIES[7:11],
           "inner_products": ("inner_product", "inner_product2")}


def _f64(a):
    """a in float64 host memory (tensors are copied off their device: tracking runs on the host)."""
    return np.asarray(array_ops(a).to_numpy(a), dtype=np.float64)


def _dot(a, b) -> float:
    return float(np.vdot(_f64(a), _f64(b)))


class Step:
    """What a custom quantity sees: the iterates around one step and its products (lazy).

    W0, Ht0: iterate k; W1, Ht1: iterate k+1; XtW = Xᵀ W0, WtW = W0ᵀW0, XHt = X Ht1, HtH = Ht1ᵀHt1 are
    taken from the solver's cache when present, else computed once on first use."""

    def __init__(self, iteration, W0, Ht0, W1, Ht1, cache, engine, objective):
        self.iteration, self.engine, self.objective = iteration, engine, objective
        self.W0, self.Ht0, self.W1, self.Ht1 = W0, Ht0, W1, Ht1
        self._products = dict(cache or {})

    def _get(self, name, make):
        if name not in self._products:
            self._products[name] = make()
        return self._products[name]

    XtW = property(lambda s: s._get("XtW", lambda: s.engine.XtW(s.W0)))
    WtW = property(lambda s: s._get("WtW", lambda: _f64(s.W0.T @ s.W0)))
    XHt = property(lambda s: s._get("XHt", lambda: s.engine.XHt(s.Ht1)))
    HtH = property(lambda s: s._get("HtH", lambda: _f64(s.Ht1.T @ s.Ht1)))


def _ratio(num, den):
    return num / den if den > 0 else None


def _extreme_eigs(G):
    ev = np.linalg.eigvalsh(_f64(G))          # symmetric PSD: eigenvalues = singular values
    return max(float(ev[0]), 0.0), float(ev[-1])


def projected_gradient_norm(F, R, G, penalty, which, floor=0.0) -> float:
    """‖P[∇_F f]‖ for the half-step data (R = X·other, G = otherᵀother) of factor F (tall)."""
    if penalty is not None:
        R, G = penalty.edit(R, G, which)
    F = array_ops(F).to_numpy(F)               # host copy in F's dtype: F > floor compares as before
    grad = _f64(F) @ _f64(G) - _f64(R)
    grad = np.where(F > floor, grad, np.minimum(grad, 0.0))
    return float(np.vdot(grad, grad))


class Tracker:
    """Records the convergence quantities per iteration; the driver calls it.

        Tracker()                                  all quantities
        Tracker(["theta_V", "kkt_residual"])       a selection ("theta", "singular_values",
                                                   "inner_products" name groups)
        Tracker(["theta_V", my_quantity])          my_quantity(step: Step) -> float, column
                                                   my_quantity.__name__; or pass ("name", fn) pairs

    Protocol: start(solver, W, Ht, objective); record(W_k, Ht_k, W_{k+1}, Ht_{k+1}, cache, engine,
    objective); finish(W, Ht); columns() -> dict of arrays, one row per iteration from 0.
    """

    def __init__(self, quantities=None):
        self.spec = quantities
        names, self.custom = [], []
        for q in (QUANTITIES if quantities is None else quantities):
            if callable(q):
                self.custom.append((q.__name__, q))
            elif isinstance(q, tuple) and len(q) == 2 and callable(q[1]):
                self.custom.append((str(q[0]), q[1]))
            elif isinstance(q, str) and q in _GROUPS:
                names.extend(_GROUPS[q])
            else:
                names.append(choose(q, QUANTITIES + tuple(_GROUPS), "tracked quantity"))
        self.names = [q for q in QUANTITIES if q in names]
        self.rows = None

    def fresh(self) -> "Tracker":
        """An unused tracker with the same selection (one per run)."""
        return Tracker(self.spec)

    # -- driver protocol -----------------------------------------------------------------------
    def start(self, solver, W, Ht, objective):
        self.solver, self.engine = solver, solver.engine
        self.frobenius = getattr(solver, "loss", "frobenius") == "frobenius"
        self.penalty = getattr(solver, "penalty", None)
        self.floor = float(getattr(solver, "floor", 0.0))
        self.rows = {name: [] for name in self.names + [n for n, _ in self.custom]}
        self._carry = {"theta_V": np.nan, "theta_U": np.nan}
        self._last_cache, self._iteration = None, 0
        self._pending_kkt = None      # (W_k, Ht_k, X Ht_k, Ht_kᵀHt_k) awaiting Xᵀ W_k from the next step
        need_kkt = "kkt_residual" in self.names and self.frobenius
        row = {name: np.nan for name in self.rows}
        t0 = time.perf_counter()
        if need_kkt or "relative_error" in self.names:
            XHt, HtH = self.engine.XHt(Ht), _f64(Ht.T @ Ht)     # one extra product per run
            if need_kkt:
                self._pending_kkt = (W, Ht, XHt, HtH)
            if "relative_error" in self.names:
                row["relative_error"] = self._relative_error(W, XHt, HtH)
        row.update(self._singular_values(W, _f64(Ht.T @ Ht)))
        row["track_seconds"] = time.perf_counter() - t0
        self._append(row)

    def record(self, W0, Ht0, W1, Ht1, cache, engine, objective):
        t0 = time.perf_counter()
        fresh_cache = cache if (cache and cache is not self._last_cache) else None
        self._last_cache = cache
        if not self.frobenius:
            fresh_cache = None        # KL/β products are not the Frobenius ones
        self._iteration += 1
        step = Step(self._iteration, W0, Ht0, W1, Ht1, fresh_cache, engine, objective)
        row = {name: np.nan for name in self.rows}
        names = set(self.names)
        D = _f64(Ht1) - _f64(Ht0)
        E = _f64(W0) - _f64(W1)
        A = _f64(step.WtW)
        DA = D @ A
        ud = float(np.vdot(D, DA))                               # ‖U_k(V_k − V_{k+1})‖²
        row["diff_norm_V"] = 0.5 * ud
        for key, value in (("theta_V", _ratio(ud, float(np.vdot(D, D)))),
                           ("theta_U", _ratio(float(np.vdot(E, E @ _f64(step.HtH))), float(np.vdot(E, E))))):
            if value is not None:
                self._carry[key] = value
            row[key] = self._carry[key]
        if self.frobenius and names & {"decrease_V", "inner_product", "inner_product2", "kkt_residual"}:
            R = _f64(step.XtW)
            H0A = _f64(Ht0) @ A
            H1A = H0A + DA
            row["inner_product"] = float(np.vdot(R - H1A, D))
            row["decrease_V"] = row["inner_product"] + 0.5 * ud
            if "inner_product2" in names:
                H0 = _f64(Ht0)
                curvature = np.divide(H0A, H0, out=np.zeros_like(H0A), where=H0 > 0)
                row["inner_product2"] = float(np.vdot(D * D, curvature)) - ud
            if self._pending_kkt is not None:                     # iterate k: now Xᵀ W_k is known
                self._fill_kkt(R, A)
        if "relative_error" in names:
            row["relative_error"] = self._relative_error(W1, step.XHt, step.HtH)
        row.update(self._singular_values(W1, step.HtH))
        if "kkt_residual" in names and self.frobenius:
            self._pending_kkt = (W1, Ht1, step.XHt, step.HtH)
        for name, fn in self.custom:
            row[name] = float(fn(step))
        row["track_seconds"] = time.perf_counter() - t0
        self._append(row)

    def finish(self, W, Ht):
        """Complete the last row's KKT residual (one product Xᵀ W), timed into its track_seconds."""
        t0 = time.perf_counter()
        if self._pending_kkt is not None and self._pending_kkt[0] is W:
            self._fill_kkt(_f64(self.engine.XtW(W)), _f64(W.T @ W))
        self._pending_kkt = None
        if self.rows and self.rows.get("track_seconds"):
            self.rows["track_seconds"][-1] += time.perf_counter() - t0

    def columns(self) -> dict:
        return {name: np.asarray(v, dtype=np.float64) for name, v in (self.rows or {}).items()}

    # -- helpers ----------------------------------------------------------------------------------
    def _append(self, row):
        for name in self.rows:
            self.rows[name].append(row.get(name, np.nan))

    def _fill_kkt(self, XtW_k, WtW_k):
        """KKT residual of the pending iterate k, written into its row (the last one recorded)."""
        W, Ht, XHt, HtH = self._pending_kkt
        self._pending_kkt = None
        sq = projected_gradient_norm(Ht, XtW_k, WtW_k, self.penalty, "H", self.floor)
        sq += projected_gradient_norm(W, XHt, HtH, self.penalty, "W", self.floor)
        if "kkt_residual" in self.rows:
            self.rows["kkt_residual"][-1] = float(np.sqrt(sq))

    def _relative_error(self, W, XHt, HtH):
        """‖X − W Htᵀ‖/‖X‖ by the trace identity (X Ht is the W half-step's product)."""
        e = self.engine
        W64 = _f64(W)
        sq = e.sqnorm - 2.0 * float(np.vdot(W64, _f64(XHt))) + float(np.vdot(W64.T @ W64, _f64(HtH)))
        return float(np.sqrt(max(sq, 0.0) / e.sqnorm)) if e.sqnorm > 0 else 0.0

    def _singular_values(self, W, HtH):
        out = {}
        if "sv_min_WtW" in self.rows or "sv_max_WtW" in self.rows:
            out["sv_min_WtW"], out["sv_max_WtW"] = _extreme_eigs(_f64(W).T @ _f64(W))
        if "sv_min_HHt" in self.rows or "sv_max_HHt" in self.rows:
            out["sv_min_HHt"], out["sv_max_HHt"] = _extreme_eigs(HtH)
        return out


# -- monotonicity ---------------------------------------------------------------------------------------
def objective_increases(objectives, *, rtol=1e-12, scale=0.0, dtype=np.float64):
    """[(iteration, increase)] for every step where the objective went up by more than rounding.

    Slack: rtol·|f_{k-1}| + 32·eps(dtype)·scale, where `scale` is the size of the terms the objective is
    summed from (½‖X‖² for the trace identity): below that an "increase" is evaluation noise."""
    f = np.asarray(objectives, dtype=np.float64)
    if f.size < 2:
        return []
    slack = rtol * np.abs(f[:-1]) + 32.0 * float(np.finfo(dtype).eps) * max(float(scale), 0.0)
    up = np.diff(f)
    bad = np.flatnonzero(up > slack)
    return [(int(i + 1), float(up[i])) for i in bad]


# -- the auxiliary-function lemma --------------------------------------------------------------------------
def auxiliary_gap(W, h, hk, v):
    """G(h|hᵏ) − F(h) for F(h) = ½‖v − W h‖² and Lee & Seung's (2001) auxiliary function

        G(h|hᵏ) = F(hᵏ) + (h − hᵏ)ᵀ∇F(hᵏ) + ½ (h − hᵏ)ᵀ K(hᵏ) (h − hᵏ),   K = Diag((WᵀW hᵏ) / hᵏ).

    The lemma (Lee & Seung 2000) says the gap is ≥ 0 for every h and 0 at h = hᵏ, because
    K − WᵀW is positive semi-definite; minimising G gives the multiplicative update.  Evaluated from the
    definitions (not the simplified quadratic form) so that tests check the lemma, not an identity.
    h, hk: (k,) vectors, or (k, n) matrices with v (m, n) (one gap per column); hᵏ must be > 0."""
    W = _f64(W)
    h, hk, v = _f64(h), _f64(hk), _f64(v)
    if W.ndim != 2 or h.shape != hk.shape or h.shape[0] != W.shape[1] or v.shape[0] != W.shape[0]:
        raise ValueError(f"shapes do not fit: W {W.shape}, h {h.shape}, hk {hk.shape}, v {v.shape}")
    if not np.all(hk > 0):
        raise ValueError("hk must be strictly positive (K = Diag((WᵀW hk)/hk) divides by it)")

    def F(x):
        r = v - W @ x
        return 0.5 * np.sum(r * r, axis=0)

    grad = W.T @ (W @ hk - v)
    K = (W.T @ (W @ hk)) / hk
    d = h - hk
    G = F(hk) + np.sum(d * grad, axis=0) + 0.5 * np.sum(K * d * d, axis=0)
    return G - F(h)
