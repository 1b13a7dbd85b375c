"""Projected (stochastic) gradient descent over entries, with L2 regularisation.

The classic stochastic-gradient recipe for matrix factorization (Koren, Bell & Volinsky 2009) trains
W, H on the squared error of each entry plus an L2 term,
    e_ij = x_ij − w_i·h_j,     w_i ← w_i + η (e_ij h_j − λ w_i),   h_j ← h_j + η (e_ij w_i − λ h_j),
and stops when ‖X − WH‖_F < 0.01.  Here the objective is
    ½ Σ_{(i,j) ∈ Ω} e_ij² + ½ λ (‖W‖² + ‖H‖²)  (+ the sklearn-style alpha_W/alpha_H penalties),
Ω the counted entries: all m·n for dense and sparse data (zeros of sparse data
are real zeros), the observed ones for masked data.  Each epoch visits Ω once
in a fresh random order, in mini-batches of `batch_size` entries; every entry of
a batch uses the same (W, H) and the row/column gradients are summed.  The
regulariser of row i is spread over its c_i entries (λ w_i / c_i per entry), so
an epoch's expected step is a full gradient step.  Unlike that recipe,
W, H are projected on the non-negative orthant after every batch: max(·, 0).

Learning rate: `learning_rate=<float>` is η; "auto" sets η each epoch to
½ / (d·max_j‖h_j‖², d·max_i‖w_i‖²)-ish bound on the per-batch curvature (d = the
expected repeats of a row or column within a batch), which keeps batch steps
stable at any data scale.  Schedules: "constant", or "invscaling"
η_t = η / (1 + t)^power_t with t the epoch.

One driver iteration = one epoch; the objective is evaluated once per epoch
(one exact pass: m·n·k dense, nnz·k sparse).  `target_error=ε` stops when
‖X − WH‖_F (over Ω) < ε, the recipe's rule, through the driver's `done` flag.
Not monotone.  Cost per epoch: |Ω|·k for the updates plus the objective pass.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..registry import register_solver
from ..validation import check_memory, check_nonneg_float, check_positive_int
from .base import Solver

SCHEDULES = ("constant", "invscaling")


class SGD(Solver):
    """Projected mini-batch SGD; see the module docstring."""
    requires = frozenset({"core", "entries", "numpy_factors"})   # missing entries through observed_flat
    checkpoint_attrs = ("epoch", "done")   # the schedule depends on the epoch; the rng is saved by the driver

    def __init__(self, engine, loss, beta, *, learning_rate="auto", schedule="constant", power_t=0.5,
                 batch_size=256, l2=0.0, target_error=None, **options):
        super().__init__(engine, loss, beta, **options)
        if isinstance(learning_rate, str):
            if learning_rate != "auto":
                raise ValueError(f"learning_rate must be a positive number or 'auto'; got {learning_rate!r}")
            self.eta = None
        elif isinstance(learning_rate, numbers.Real) and not isinstance(learning_rate, bool) \
                and np.isfinite(learning_rate) and learning_rate > 0:
            self.eta = float(learning_rate)
        else:
            raise ValueError(f"learning_rate must be a positive number or 'auto'; got {learning_rate!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; choose one of: {', '.join(SCHEDULES)}")
        self.schedule = schedule
        self.power_t = check_nonneg_float(power_t, "power_t")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.l2 = check_nonneg_float(l2, "l2")
        self.target_error = check_nonneg_float(target_error, "target_error", allow_none=True)
        self.epoch = 0
        m, n = engine.shape
        flat = engine.observed_flat()
        if flat is None:          # the index of all m·n entries, its rows and columns, a shuffled copy
            check_memory(32.0 * m * n, f"sgd's visiting order over all {m}×{n} entries")
        self.flat = np.arange(m * n, dtype=np.int64) if flat is None else flat.astype(np.int64)
        rows, cols = np.divmod(self.flat, n)
        self.row_count = np.maximum(np.bincount(rows, minlength=m), 1).astype(engine.dtype)
        self.col_count = np.maximum(np.bincount(cols, minlength=n), 1).astype(engine.dtype)

    def prepare(self, W, Ht):
        if self.rng is None:
            self.rng = np.random.default_rng()
        self.done, self.epoch = False, 0
        return np.maximum(W, 0), np.maximum(Ht, 0)

    @property
    def penalised(self) -> bool:
        return self.penalty.active or bool(self.l2)

    def objective(self, W, Ht):
        data = self.engine.frobenius_exact(W, Ht)
        return data + self._reg(W, Ht)

    def _reg(self, W, Ht):
        if not self.l2:
            return self.penalty.value(W, Ht)
        return self.penalty.value(W, Ht) + 0.5 * self.l2 * (float(np.vdot(W, W)) + float(np.vdot(Ht, Ht)))

    def _rate(self, W, Ht):
        m, n = self.engine.shape
        b = min(self.batch_size, self.flat.size)
        if self.eta is not None:
            eta = self.eta
        else:
            rep_W, rep_H = 1.0 + b / m, 1.0 + b / n     # expected repeats of a row / column in a batch
            curv = max(rep_W * float(np.max(np.einsum("ij,ij->i", Ht, Ht))),
                       rep_H * float(np.max(np.einsum("ij,ij->i", W, W))))
            eta = 0.5 / max(curv + self.l2, np.finfo(np.float64).tiny)
        if self.schedule == "invscaling":
            eta /= (1.0 + self.epoch) ** self.power_t
        return eta

    def step(self, W, Ht):
        e = self.engine
        n = e.shape[1]
        W, Ht = W.copy(), Ht.copy()                  # never modify the driver's arrays
        l1_W, l2_W = self.penalty.terms("W")
        l1_H, l2_H = self.penalty.terms("H")
        l2_W, l2_H = l2_W + self.l2, l2_H + self.l2
        eta = W.dtype.type(self._rate(W, Ht))
        order = self.flat[self.rng.permutation(self.flat.size)]
        for s in range(0, order.size, self.batch_size):
            rows, cols = np.divmod(order[s:s + self.batch_size], n)
            w, h = W[rows], Ht[cols]
            err = e.values_at(rows, cols) - np.einsum("ij,ij->i", w, h)
            gW = err[:, None] * h - (l2_W * w + l1_W) / self.row_count[rows, None]
            gH = err[:, None] * w - (l2_H * h + l1_H) / self.col_count[cols, None]
            np.add.at(W, rows, eta * gW)
            np.add.at(Ht, cols, eta * gH)
            W[rows] = np.maximum(W[rows], 0)          # projection onto W, H ≥ 0
            Ht[cols] = np.maximum(Ht[cols], 0)
        self.epoch += 1
        data = e.frobenius_exact(W, Ht)
        if self.target_error is not None and np.sqrt(2.0 * data) < self.target_error:
            self.done = True
        return W, Ht, data + self._reg(W, Ht)


register_solver("sgd", losses=("frobenius",), monotone=False,
                max_iter=500, default_init="random",
                summary="projected mini-batch SGD with L2 regularisation (missing data)",
                options={"learning_rate": "auto", "schedule": "constant", "batch_size": 256, "l2": 0.0,
                         "target_error": None})(SGD)
