"""`Factorization`: the one result type of nmfkit.

W is m×k and H is k×n (NumPy arrays for NumPy/SciPy input, tensors on X's
device and in X's dtype for torch input).  `save` writes one portable `.npz`
(arrays plus a JSON metadata string; no pickle) that `Factorization.load` reads
back, as NumPy arrays.
"""
from __future__ import annotations

import json
import numbers
import os
from dataclasses import dataclass, field

import numpy as np

from ._files import atomic_write
from .engines import array_ops

_FORMAT = "nmfkit.factorization/1"


@dataclass
class Factorization:
    """The result of a fit: X ≈ W H.

    W (m×k) and H (k×n) are the factors; `loss` is the final objective (½‖X − WH‖²
    for Frobenius, the divergence otherwise, penalties included); `relative_error`
    is ‖X − WH‖_F/‖X‖_F; `history` maps column names (iteration, seconds,
    objective and, with track=True, the diagnostics) to per-iteration arrays from
    iteration 0; `stop_reason` is max_iter, converged, time_limit, callback,
    target, diverged or interrupted; `options` holds the resolved settings and
    `runs` one summary per run; `monotonicity` lists (iteration, increase) pairs
    where a solver that promises a non-increasing objective did increase it.
    """
    W: np.ndarray
    H: np.ndarray
    loss: float
    relative_error: float
    n_iter: int
    converged: bool
    stop_reason: str
    history: dict
    options: dict = field(default_factory=dict)
    runs: list = field(default_factory=list)
    seconds: float = 0.0
    row_names: list | None = None
    col_names: list | None = None
    monotonicity: list = field(default_factory=list)   # [(iteration, increase)] of a monotone solver

    @property
    def rank(self) -> int:
        return self.W.shape[1]

    def reconstruct(self) -> np.ndarray:
        """The fitted matrix W H (dense m×n: mind the memory for large data)."""
        return self.W @ self.H

    @property
    def component_names(self) -> list:
        """NMF1 … NMFk, the column names of W_frame and row names of H_frame."""
        return [f"NMF{q + 1}" for q in range(self.rank)]

    @property
    def W_frame(self):
        """W as a pandas DataFrame: X's row labels × NMF1..NMFk (pip install nmfkit[pandas])."""
        pd = _pandas()
        return pd.DataFrame(_host(self.W), index=self.row_names, columns=self.component_names)

    @property
    def H_frame(self):
        """H as a pandas DataFrame: NMF1..NMFk × X's column labels (pip install nmfkit[pandas])."""
        pd = _pandas()
        return pd.DataFrame(_host(self.H), index=self.component_names, columns=self.col_names)

    def to_frame(self):
        """History as a pandas DataFrame (or a NumPy structured array without pandas)."""
        try:
            import pandas as pd
        except ImportError:
            names = list(self.history)
            return np.rec.fromarrays([self.history[k] for k in names], names=names)
        return pd.DataFrame(self.history)

    def report(self, path, *, title=None, image_shape=None, feature_names=None, **options) -> str:
        """Write a self-contained HTML report (summary, parameters, convergence, factor views)."""
        from .report import factorization_report
        return factorization_report(self, path, title=title, image_shape=image_shape,
                                    feature_names=feature_names, **options)

    def summary(self) -> dict:
        """JSON-ready summary of the fit (no factor values)."""
        return {
            "shape": [int(self.W.shape[0]), int(self.H.shape[1])],
            "rank": self.rank,
            "loss": self.loss,
            "relative_error": self.relative_error,
            "n_iter": self.n_iter,
            "converged": self.converged,
            "stop_reason": self.stop_reason,
            "seconds": self.seconds,
            "options": self.options,
            "runs": self.runs,
            "monotonicity": [list(p) for p in self.monotonicity],
        }

    def __repr__(self):
        m, n = self.W.shape[0], self.H.shape[1]
        return (f"Factorization({m}×{n}, rank {self.rank}, {self.options.get('solver', '?')}/"
                f"{self.options.get('loss', '?')}: loss {self.loss:.6g}, relative error "
                f"{self.relative_error:.4g}, {self.n_iter} iterations, {self.stop_reason})")

    # -- persistence ---------------------------------------------------------
    def save(self, path) -> str:
        """Write W, H, history and metadata to `path` (.npz appended if missing)."""
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        meta = self.summary()
        meta.update(format=_FORMAT, row_names=self.row_names, col_names=self.col_names,
                    history_keys=list(self.history))
        arrays = {"W": _host(self.W), "H": _host(self.H)}
        arrays.update({f"history.{k}": v for k, v in self.history.items()})
        arrays["meta"] = np.frombuffer(json.dumps(meta, default=_jsonable).encode(), dtype=np.uint8)
        with atomic_write(path, "wb") as fh:      # a Ctrl-C leaves the old file whole
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path) -> "Factorization":
        """Read a file written by `save` (no pickle).  Anything else — another kind of file, a damaged
        or truncated one, factors whose shapes disagree or that hold NaN or negative values, a missing
        field — is a one-line `DataFileError` (a ValueError) naming the file."""
        from .io import DataFileError, check_factor, check_fields, read_archive, signed_factors
        path = os.fspath(path)
        meta, arrays = read_archive(path, "model", _FORMAT)
        signed = signed_factors(meta.get("options"))
        W = check_factor(path, "W", arrays.get("W"), signed="W" in signed)
        H = check_factor(path, "H", arrays.get("H"), signed="H" in signed)
        if W.shape[1] != H.shape[0]:
            raise DataFileError(f"{path}: W is {W.shape[0]}×{W.shape[1]} but H is {H.shape[0]}×{H.shape[1]}; "
                                "their ranks disagree")
        fields = {"loss": numbers.Real, "relative_error": numbers.Real, "n_iter": numbers.Integral,
                  "converged": bool, "stop_reason": str, "history_keys": list, "options": dict, "runs": list,
                  "seconds": numbers.Real}
        check_fields(path, meta, fields, "model")
        history = {}
        for k in meta["history_keys"]:
            column = arrays.get(f"history.{k}") if isinstance(k, str) else None
            if column is None or column.ndim != 1:
                raise DataFileError(f"{path}: the model's history column {k!r} is missing or not 1-D")
            history[k] = column
        m, n = W.shape[0], H.shape[1]
        names = {}
        for key, size in (("row_names", m), ("col_names", n)):
            value = meta.get(key)
            if value is not None and (not isinstance(value, list) or len(value) != size):
                raise DataFileError(f"{path}: the model's {key} do not match its {size} "
                                    f"{'rows' if key == 'row_names' else 'columns'}")
            names[key] = value
        pairs = meta.get("monotonicity", [])
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise DataFileError(f"{path}: the model's 'monotonicity' field is malformed")
        return cls(W=W, H=H, loss=float(meta["loss"]), relative_error=float(meta["relative_error"]),
                   n_iter=int(meta["n_iter"]), converged=meta["converged"], stop_reason=meta["stop_reason"],
                   history=history, options=meta["options"], runs=meta["runs"],
                   seconds=float(meta["seconds"]), monotonicity=[tuple(p) for p in pairs], **names)


def _host(A) -> np.ndarray:
    """A factor as a NumPy array in host memory (a torch tensor is copied off its device)."""
    return array_ops(A).to_numpy(A)


def _jsonable(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _pandas():
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("labelled factors need pandas: pip install nmfkit[pandas]") from None
    return pd
