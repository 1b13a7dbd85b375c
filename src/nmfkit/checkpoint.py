"""Checkpoints of a running fit, so a killed process loses at most one interval.

    nmfkit.fit(X, k, checkpoint="fit.ckpt.npz", checkpoint_every=50)
    nmfkit.fit(X, k, resume="fit.ckpt.npz")          # continues where it stopped

A checkpoint holds the current and best iterates, the history, the iteration
count, the solver's own state (`Solver.get_state`) and its random stream, plus
a fingerprint of the problem (shape, rank, solver, loss, dtype) that `resume`
checks.  It is written to a temporary file in the same folder and renamed over
the old one (atomic on POSIX), so a kill during the write leaves the previous
checkpoint intact.  Format: one .npz of arrays plus a JSON string; no pickle.
For solvers whose state is fully saved (mu, pgd, anls, lee, brunet, sgd), a
resumed fit ends bit-identical to an uninterrupted one; hals restarts its
extrapolation from the saved iterate.
Cost: one write of (m + n)·k numbers (twice that with a separate best iterate).
"""
from __future__ import annotations

import json
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
    """Read a checkpoint written by `save`; a clear ValueError if it is not one."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            if meta.get("format") != FORMAT:
                raise ValueError("not an nmfkit checkpoint")
            W, Ht = z["W"], z["Ht"]
            best_W = z["best_W"] if "best_W" in z.files else W
            best_Ht = z["best_Ht"] if "best_Ht" in z.files else Ht
            history = {k: z[f"history.{k}"].tolist() for k in meta["history_keys"]}
            state = dict(meta["solver_state"])
            state.update({k[len("state."):]: z[k] for k in z.files if k.startswith("state.")})
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot resume from it ({exc})") from None
    return {"fingerprint": meta["fingerprint"], "iteration": meta["iteration"], "seconds": meta["seconds"],
            "W": W, "Ht": Ht, "best": (meta["best_objective"], best_W, best_Ht, meta["best_iteration"]),
            "history": history, "solver_state": state, "rng_state": meta["rng_state"]}


def check_fingerprint(saved: dict, current: dict, path) -> None:
    """Refuse to resume a checkpoint made for another problem."""
    for key in FINGERPRINT_KEYS:
        a, b = saved.get(key), current.get(key)
        if (list(a) if isinstance(a, (list, tuple)) else a) != (list(b) if isinstance(b, (list, tuple)) else b):
            raise ValueError(f"{os.fspath(path)}: the checkpoint is for {key}={a!r}, but this fit has {key}={b!r}")
