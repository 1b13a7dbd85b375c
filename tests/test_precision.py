"""precision="mixed": float32 iterations, then float64 from there, to the float64 fit's minimum."""
import numpy as np
import pytest
import scipy.sparse as sp
from _planted import low_rank

import nmfkit

X = low_rank(80, 60, 4, noise=0.01, seed=3)
SPARSE = sp.csr_matrix(X * (X > 0.5))


@pytest.mark.parametrize("data, solver, loss", [
    (X, "hals", "frobenius"), (SPARSE, "hals", "frobenius"), (X, "anls", "frobenius"), (SPARSE, "anls", "frobenius"),
    (SPARSE, "ccd", "kl")], ids=["hals-dense", "hals-sparse", "anls-dense", "anls-sparse", "ccd-kl-sparse"])
def test_reaches_the_float64_fits_objective(data, solver, loss):
    """Converged from the same start, the two fits reach the same stationary point: the objectives
    agree far below float32's resolution (1e-6 relative), although many iterations ran in float32."""
    native = nmfkit.fit(data, 4, solver=solver, loss=loss, tol=1e-8, max_iter=5000, seed=1)
    mixed = nmfkit.fit(data, 4, solver=solver, loss=loss, tol=1e-8, max_iter=5000, seed=1, precision="mixed")
    assert native.converged and mixed.converged
    assert mixed.loss == pytest.approx(native.loss, rel=1e-6)
    assert mixed.W.dtype == mixed.H.dtype == np.float64
    assert 0 < mixed.options["float32_iterations"] < mixed.n_iter
    assert mixed.options["precision"] == "mixed"


def test_history_joins_the_two_phases():
    res = nmfkit.fit(X, 4, solver="hals", tol=1e-9, max_iter=2000, seed=1, precision="mixed")
    it = res.history["iteration"]
    assert it[0] == 0 and np.all(np.diff(it) > 0) and it[-1] == res.n_iter
    assert np.all(np.diff(res.history["seconds"]) >= 0)
    assert res.history["objective"][-1] == pytest.approx(res.loss, rel=1e-12)
    assert res.runs[0]["float32_iterations"] == res.options["float32_iterations"]


def test_max_iter_is_shared_by_the_phases():
    res = nmfkit.fit(X, 4, solver="mu", tol=0, max_iter=30, seed=1, precision="mixed")
    assert res.options["float32_iterations"] == 30 and res.n_iter == 31     # phase 2 runs one iteration


def test_a_callback_stop_in_phase_one_is_final():
    res = nmfkit.fit(X, 4, solver="hals", tol=0, max_iter=500, seed=1, precision="mixed",
                     callback=lambda state: state.iteration == 7)
    assert res.stop_reason == "callback" and res.n_iter == 7 and res.W.dtype == np.float64
    assert res.loss == pytest.approx(0.5 * np.linalg.norm(X - res.W @ res.H) ** 2, rel=1e-10)


def test_input_untouched():
    data = X.copy()
    nmfkit.fit(data, 4, solver="hals", max_iter=20, seed=1, precision="mixed")
    np.testing.assert_array_equal(data, X)


@pytest.mark.parametrize("kwargs, message", [
    ({"precision": "half"}, "precision"),
    ({"track": True}, "track= cannot be combined with precision='mixed'"),
    ({"stream": True}, "in-memory data"),
])
def test_refusals(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nmfkit.fit(X, 4, **{"precision": "mixed", **kwargs})


def test_refuses_float32_data_and_data_outside_float32_range(tmp_path):
    with pytest.raises(ValueError, match="float32 already"):
        nmfkit.fit(X.astype(np.float32), 4, precision="mixed")
    with pytest.raises(ValueError, match="float32's safe range"):
        nmfkit.fit(X * 1e20, 4, precision="mixed")
    with pytest.raises(ValueError, match="checkpoint"):
        nmfkit.fit(X, 4, precision="mixed", checkpoint=str(tmp_path / "c.npz"))


# -- n_threads (the other resource option of fit) ---------------------------------------------------
def test_n_threads_gives_the_same_result_and_restores_the_setting():
    import numba
    before = numba.get_num_threads()
    data = sp.csr_matrix(low_rank(400, 300, 5, seed=4))
    one = nmfkit.fit(data, 5, solver="ccd", loss="kl", max_iter=30, tol=0, seed=2, n_threads=1)
    assert numba.get_num_threads() == before
    every = nmfkit.fit(data, 5, solver="ccd", loss="kl", max_iter=30, tol=0, seed=2, n_threads=before)
    np.testing.assert_array_equal(one.W, every.W)     # fixed row blocks: no dependence on threads


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, 10**6])
def test_n_threads_refused_by_name(bad):
    with pytest.raises(ValueError, match="n_threads must be None or an integer"):
        nmfkit.fit(X, 4, n_threads=bad)


def test_import_sets_a_sleeping_openmp_wait_policy_unless_the_user_chose_one():
    """Spinning OpenMP threads slow every parallel region when other processes share the cores; nmfkit
    asks for sleeping ones before Numba starts its pool, and a policy the environment sets stands."""
    import os
    import subprocess
    import sys
    code = "import os, nmfkit; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    default = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    chosen = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "active"},
                            capture_output=True, text=True, check=True)
    assert default.stdout.strip() == "PASSIVE" and chosen.stdout.strip() == "active"
