"""Checkpoints of a running fit, so a killed process loses at most one interval.

    nmfkit.fit(X, k, checkpoint="fit.ckpt.npz", checkpoint_every=50)
    nmfkit.fit(X, k, resume="fit.ckpt.npz")          # continues where it stopped

A checkpoint holds the current and best iterates, the history, the iteration
count, the solver's own state (`Solver.get_state`) and its random stream, plus
a fingerprint of the problem (shape, rank, solver, loss, dtype, a digest of X's
values and the solver options) that `resume` checks.  It is written to a temporary file in the
same folder and renamed over the old one (atomic on POSIX), so a kill during the write leaves the previous
checkpoint intact.  Format: one .npz of arrays plus a JSON string; no pickle.
A fit of several data sets (iNMF) adds "datasets" to the fingerprint: each data set's name, shape
and digests (`check_datasets` names the first one that differs).
For solvers whose state is fully saved (mu, pgd, anls, lee, brunet, sgd), a
resumed fit ends bit-identical to an uninterrupted one; hals restarts its
extrapolation from the saved iterate.
Cost: one write of (m + n)·k numbers (twice that with a separate best iterate).
"""
from __future__ import annotations

import json
import numbers
import os

import numpy as np

from ._files import atomic_write, check_writable_folder
from .engines import array_ops

FORMAT = "nmfkit.checkpoint/1"
FINGERPRINT_KEYS = ("shape", "rank", "solver", "loss", "beta", "dtype")


def save(path, *, fingerprint, iteration, seconds, W, Ht, best, history, solver_state, rng_state):
    """Write a checkpoint atomically (temporary file, then rename)."""
    path = os.fspath(path)
    best_obj, best_W, best_Ht, best_it = best
    host = array_ops(W).to_numpy              # tensors are written from host memory
    arrays = {"W": host(W), "Ht": host(Ht)}
    if best_W is not W or best_Ht is not Ht:
        arrays.update(best_W=host(best_W), best_Ht=host(best_Ht))
    arrays.update({f"history.{k}": np.asarray(v) for k, v in history.items()})
    state_meta = {}
    for key, value in solver_state.items():
        if isinstance(value, np.ndarray):
            arrays[f"state.{key}"] = value
        else:
            state_meta[key] = value
    meta = {"format": FORMAT, "fingerprint": fingerprint, "iteration": iteration, "seconds": seconds,
            "best_objective": best_obj, "best_iteration": best_it, "history_keys": list(history),
            "solver_state": state_meta, "rng_state": rng_state}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)


def check_target(path) -> None:
    """Refuse, before the first iteration, a checkpoint path that cannot be written: its folder must
    exist and accept a new file, and the path must not be a folder."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"checkpoint {path} is a folder; give a file name such as fit.ckpt.npz")
    check_writable_folder(os.path.dirname(path), f"checkpoint {path}")


def load(path) -> dict:
    """Read a checkpoint written by `save`.  Another kind of file, a damaged or truncated one, factors
    that disagree in rank or hold NaN, infinite or negative values, a missing or malformed field: a
    one-line `DataFileError` (a ValueError) naming the file, before anything resumes."""
    from .io import DataFileError, check_factor, check_fields, read_archive, signed_factors
    path = os.fspath(path)
    meta, z = read_archive(path, "checkpoint", FORMAT)
    fingerprint = meta.get("fingerprint")
    signed = signed_factors(fingerprint.get("options") if isinstance(fingerprint, dict) else None)
    sign_W, sign_H = "W" in signed, "H" in signed
    W = check_factor(path, "W", z.get("W"), "checkpoint", sign_W)
    Ht = check_factor(path, "Ht", z.get("Ht"), "checkpoint", sign_H)
    best_W = check_factor(path, "best_W", z["best_W"], "checkpoint", sign_W) if "best_W" in z else W
    best_Ht = check_factor(path, "best_Ht", z["best_Ht"], "checkpoint", sign_H) if "best_Ht" in z else Ht
    if W.shape[1] != Ht.shape[1] or best_W.shape != W.shape or best_Ht.shape != Ht.shape:
        raise DataFileError(f"{path}: the checkpoint's factors disagree in shape (W {W.shape}, Ht {Ht.shape}, "
                            f"best {best_W.shape}, {best_Ht.shape})")
    fields = {"fingerprint": dict, "iteration": numbers.Integral, "seconds": numbers.Real,
              "best_objective": numbers.Real, "best_iteration": numbers.Integral, "history_keys": list,
              "solver_state": dict, "rng_state": (dict, type(None))}
    check_fields(path, meta, fields, "checkpoint")
    if not np.isfinite(meta["best_objective"]) or not 0 <= meta["best_iteration"] <= meta["iteration"]:
        raise DataFileError(f"{path}: the checkpoint's best iterate is malformed (objective "
                            f"{meta['best_objective']!r} at iteration {meta['best_iteration']!r})")
    history = {}
    for k in meta["history_keys"]:
        column = z.get(f"history.{k}") if isinstance(k, str) else None
        if column is None or column.ndim != 1 or column.dtype.kind not in "iuf":
            raise DataFileError(f"{path}: the checkpoint's history column {k!r} is missing or malformed")
        history[k] = column.tolist()
    if any(k not in history for k in ("iteration", "seconds", "objective")) or not history["objective"] \
            or not np.isfinite(history["objective"]).all():
        raise DataFileError(f"{path}: the checkpoint's history has no finite objective per iteration")
    state = dict(meta["solver_state"])
    for key, value in z.items():
        if key.startswith("state."):
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise DataFileError(f"{path}: the checkpoint's solver state {key[6:]!r} holds NaN or infinite values")
            state[key[len("state."):]] = value
    return {"fingerprint": meta["fingerprint"], "iteration": meta["iteration"], "seconds": meta["seconds"],
            "W": W, "Ht": Ht, "best": (meta["best_objective"], best_W, best_Ht, meta["best_iteration"]),
            "history": history, "solver_state": state, "rng_state": meta["rng_state"]}


def check_fingerprint(saved: dict, current: dict, path) -> None:
    """Refuse to resume a checkpoint made for another problem: another shape, rank, solver, loss or
    dtype, other data (`data`: a digest of X's values), or other solver options (`options`)."""
    path = os.fspath(path)
    check_datasets(saved, current, path)
    for key in FINGERPRINT_KEYS:
        a, b = saved.get(key), current.get(key)
        if (list(a) if isinstance(a, (list, tuple)) else a) != (list(b) if isinstance(b, (list, tuple)) else b):
            raise ValueError(f"{path}: the checkpoint is for {key}={a!r}, but this fit has {key}={b!r}")
    for key in ("data", "options"):
        if key in current and key not in saved:
            what = "data" if key == "data" else "solver options"
            raise ValueError(f"{path}: the checkpoint does not record the {what} "
                             "it was made for (an older nmfkit wrote it), so resuming could mix two problems")
    if "data" in current and saved["data"] != current["data"]:
        raise ValueError(f"{path}: the checkpoint was made for other data of the same shape "
                         "(the digests of X's values differ); resume with the matrix it was made for")
    if "options" in current:
        old, new = saved["options"] if isinstance(saved["options"], dict) else {}, current["options"]
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                raise ValueError(f"{path}: the checkpoint is for {name}={old.get(name)!r}, "
                                 f"but this fit has {name}={new.get(name)!r}")


DATASET_FIELDS = (("shape", "shape"), ("data", "values"), ("unshared_shape", "unshared features' shape"),
                  ("unshared_data", "unshared features' values"))


def check_datasets(saved: dict, current: dict, path) -> None:
    """For fits of several data sets (iNMF): refuse a checkpoint made for other data sets, naming the
    first difference: the data set names and their order, then, per data set, its shape, a digest of
    its values and those of its unshared features.  Fingerprints of one matrix carry no "datasets"."""
    old, new = saved.get("datasets"), current.get("datasets")
    if old is None and new is None:
        return
    if old is None:
        raise ValueError(f"{path}: the checkpoint is for a fit of one matrix (solver {saved.get('solver')!r}), "
                         f"not for this fit of {len(new)} data sets")
    if new is None:
        raise ValueError(f"{path}: the checkpoint is for a fit of several data sets (solver "
                         f"{saved.get('solver')!r}), not for this fit of one matrix")
    if not isinstance(old, list) or not all(isinstance(d, dict) for d in old):
        raise ValueError(f"{path}: the checkpoint's list of data sets is malformed")
    old_names, new_names = [d.get("name") for d in old], [d["name"] for d in new]
    if old_names != new_names:
        raise ValueError(f"{path}: the checkpoint is for the data sets {old_names}, but this fit has {new_names}")
    for before, now in zip(old, new):
        for key, what in DATASET_FIELDS:
            if before.get(key) != now.get(key):
                raise ValueError(f"{path}: data set {now['name']!r} is not the one the checkpoint was made for "
                                 f"(other {what}); resume with the data it was made for")
