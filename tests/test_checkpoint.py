"""Checkpoint/resume: atomic writes, a SIGKILLed fit resumes and ends bit-identical."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit
from nmfkit import checkpoint as ckpt

X = X_DENSE = np.random.default_rng(0).random((60, 40))


@pytest.mark.parametrize("solver, loss, sparse", [("mu", "frobenius", False), ("mu", "kl", False),
                                                  ("anls", "frobenius", False), ("pgd", "frobenius", False),
                                                  ("brunet", "kl", False), ("sgd", "frobenius", False),
                                                  ("mu", "kl", True), ("brunet", "kl", True)])
def test_resume_is_bit_identical(tmp_path, solver, loss, sparse):
    # sparse KL: the fused kernel's sums must be the ones a resumed fit recomputes
    X = sp.csr_matrix(X_DENSE * (X_DENSE > 0.3)) if sparse else X_DENSE
    path = tmp_path / "fit.ckpt.npz"
    full = nmfkit.fit(X, 4, solver=solver, loss=loss, seed=3, max_iter=40, tol=0)
    part = nmfkit.fit(X, 4, solver=solver, loss=loss, seed=3, max_iter=40, tol=0, checkpoint=path,
                      checkpoint_every=7, callback=lambda s: s.iteration == 23)
    assert part.stop_reason == "callback" and path.exists()
    assert ckpt.load(path)["iteration"] == 21           # the last multiple of 7 before the stop
    resumed = nmfkit.fit(X, 4, solver=solver, loss=loss, seed=3, max_iter=40, tol=0, resume=path)
    assert resumed.n_iter == 40
    np.testing.assert_array_equal(resumed.W, full.W)
    np.testing.assert_array_equal(resumed.H, full.H)
    # KL objectives are evaluated every 10 iterations, and at checkpoints: compare where both have one
    it_r, it_f = resumed.history["iteration"], full.history["iteration"]
    common = np.intersect1d(it_r, it_f)
    assert common.size >= 5 and common[-1] == 40
    np.testing.assert_array_equal(resumed.history["objective"][np.isin(it_r, common)],
                                  full.history["objective"][np.isin(it_f, common)])


def test_hals_resumes_from_the_saved_iterate(tmp_path):
    """hals restarts its extrapolation on resume: not bit-identical, but it continues from the checkpoint."""
    path = tmp_path / "h.npz"
    nmfkit.fit(X, 4, solver="hals", max_iter=30, tol=0, checkpoint=path, checkpoint_every=10,
               callback=lambda s: s.iteration == 20)
    saved = ckpt.load(path)
    resumed = nmfkit.fit(X, 4, solver="hals", max_iter=30, tol=0, resume=path)
    assert resumed.n_iter == 30 and list(resumed.history["iteration"]) == list(range(31))
    assert resumed.loss <= saved["best"][0] * (1 + 1e-12)


def test_resume_refuses_another_problem(tmp_path):
    path = tmp_path / "c.npz"
    nmfkit.fit(X, 3, solver="mu", max_iter=10, tol=0, checkpoint=path, checkpoint_every=5)
    with pytest.raises(ValueError, match="checkpoint is for rank=3, but this fit has rank=4"):
        nmfkit.fit(X, 4, solver="mu", resume=path)
    with pytest.raises(ValueError, match="solver='mu', but this fit has solver='anls'"):
        nmfkit.fit(X, 3, solver="anls", resume=path)
    (tmp_path / "junk.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.npz: not an nmfkit checkpoint file"):
        nmfkit.fit(X, 3, solver="mu", resume=tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="one run"):
        nmfkit.fit(X, 3, solver="mu", init="random", n_runs=2, checkpoint=path)


def test_interrupt_writes_a_checkpoint(tmp_path):
    path = tmp_path / "c.npz"

    def cb(state):
        if state.iteration == 12:
            raise KeyboardInterrupt

    with pytest.warns(RuntimeWarning, match="interrupted"):
        nmfkit.fit(X, 3, solver="mu", max_iter=100, tol=0, checkpoint=path, checkpoint_every=1000, callback=cb)
    assert ckpt.load(path)["iteration"] == 12


SCRIPT = textwrap.dedent("""
    import sys, time, numpy as np, nmfkit
    X = np.random.default_rng(0).random((60, 40))
    nmfkit.fit(X, 4, solver="mu", seed=3, max_iter=400, tol=0, checkpoint=sys.argv[1], checkpoint_every=10,
               callback=lambda s: time.sleep(0.01))
""")


def test_sigkill_loses_at_most_one_interval(tmp_path):
    path = tmp_path / "killed.npz"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(path)], env=env)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if path.exists() and ckpt.load(path)["iteration"] >= 50:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    saved = ckpt.load(path)                      # never a torn file: written then renamed
    assert 50 <= saved["iteration"] < 400 and saved["iteration"] % 10 == 0
    resumed = nmfkit.fit(X, 4, solver="mu", seed=3, max_iter=400, tol=0, resume=path)
    full = nmfkit.fit(X, 4, solver="mu", seed=3, max_iter=400, tol=0)
    np.testing.assert_array_equal(resumed.W, full.W)
    np.testing.assert_array_equal(resumed.H, full.H)
