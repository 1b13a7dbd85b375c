"""The torch engine: the same products and the same fits as the NumPy engines, tensors in and
tensors out (device and dtype kept), the same clear errors, and sparse X never densified.

Runs on the CPU build of torch; on a machine with CUDA the device tests also run there."""
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch", reason="torch is not installed (pip install nmfkit[gpu])")

import nmfkit  # noqa: E402
from nmfkit.engines import (  # noqa: E402
    DenseEngine,
    SparseEngine,
    make_engine,
    torch_engine,  # noqa: E402
)
from nmfkit.engines.torch_engine import TorchEngine  # noqa: E402
from nmfkit.registry import SOLVERS  # noqa: E402
from nmfkit.solvers import _hals_kernels as _kernels  # noqa: E402
from nmfkit.validation import check_matrix  # noqa: E402

# torch's own notice on first use of CSR tensors, raised by the test's conversions
pytestmark = pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# (solver, fit arguments, layouts): every combination declared for the torch engine.
CASES = [("mu", {"loss": "frobenius"}, ("dense", "csr")),
         ("mu", {"loss": "kl"}, ("dense", "csr")),
         ("mu", {"loss": "is"}, ("dense",)),
         ("mu", {"beta": 1.5}, ("dense", "csr")),
         ("mu", {"loss": "frobenius", "alpha_W": 0.01, "l1_ratio": 0.5}, ("dense",)),
         ("hals", {}, ("dense", "csr")),
         ("hals", {"alpha_W": 0.01, "l1_ratio": 0.5}, ("csr",)),
         ("pgd", {}, ("dense", "csr")),
         ("pgd", {"step": "armijo"}, ("dense",))]
PARITY = [(s, kw, lay) for s, kw, lays in CASES for lay in lays]


def planted(m=70, n=50, k=4, seed=0, positive=False):
    """Low-rank X with about half its entries zero (so the CSR engine has work to skip)."""
    rng = np.random.default_rng(seed)
    X = rng.random((m, k)) @ rng.random((k, n))
    X[rng.random((m, n)) < 0.5] = 0
    if positive:
        X += 0.1
    W0, H0 = rng.random((m, k)) + 0.1, rng.random((k, n)) + 0.1
    return X, W0, H0


def as_tensor(X, layout, dtype=torch.float64, device="cpu"):
    T = torch.as_tensor(X, dtype=dtype, device=device)
    return T.to_sparse_csr() if layout == "csr" else T


def as_numpy_input(X, layout):
    return sp.csr_matrix(X) if layout == "csr" else X


def host(A):
    return A.detach().cpu().numpy()


# -- same fits as NumPy --------------------------------------------------------------------------
@pytest.mark.parametrize("solver,kwargs,layout", PARITY,
                         ids=[f"{s}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'frobenius'}-{lay}"
                              for s, kw, lay in PARITY])
def test_fifty_iterations_match_the_numpy_engine(solver, kwargs, layout):
    X, W0, H0 = planted(positive=kwargs.get("loss") == "is")
    args = dict(solver=solver, init=(W0, H0), max_iter=50, tol=0, **kwargs)
    ref = nmfkit.fit(as_numpy_input(X, layout), 4, **args)
    got = nmfkit.fit(as_tensor(X, layout), 4, **args)
    assert got.options["engine"] == "torch" and ref.options["engine"] != "torch"
    for name in ("W", "H"):
        A, B = getattr(ref, name), host(getattr(got, name))
        np.testing.assert_allclose(B, A, rtol=1e-8, atol=1e-8 * np.abs(A).max(), err_msg=name)
    assert got.n_iter == ref.n_iter == 50
    assert got.loss == pytest.approx(ref.loss, rel=1e-8)
    assert got.relative_error == pytest.approx(ref.relative_error, rel=1e-8)
    np.testing.assert_allclose(got.history["objective"], ref.history["objective"], rtol=1e-8)


def test_the_solvers_declare_the_torch_engine():
    declared = {name for name, spec in SOLVERS.items() if "torch" in spec.engines}
    assert declared == {s for s, _, _ in CASES}


@pytest.mark.parametrize("solver", ["anls", "sgd", "lee", "brunet"])
def test_other_solvers_are_refused_with_the_choices(solver):
    X, _, _ = planted(positive=True)
    spec = SOLVERS[solver]
    with pytest.raises(ValueError, match="does not run on torch data.*choose one of: "):
        nmfkit.fit(torch.as_tensor(X), 4, solver=solver, loss=spec.losses[0], max_iter=2)


@pytest.mark.parametrize("init", ["random", "nndsvd", "nndsvda", "nndsvdar"])
@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_initialisations_give_the_numpy_start(init, layout):
    X, _, _ = planted()
    ref = nmfkit.fit(as_numpy_input(X, layout), 4, solver="mu", init=init, max_iter=3, tol=0, seed=7)
    got = nmfkit.fit(as_tensor(X, layout), 4, solver="mu", init=init, max_iter=3, tol=0, seed=7)
    assert got.history["objective"][0] == pytest.approx(ref.history["objective"][0], rel=1e-9)
    np.testing.assert_allclose(host(got.W), ref.W, rtol=1e-7, atol=1e-9)


# -- tensor in, tensor out ---------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("solver,loss,layout", [("hals", "frobenius", "dense"), ("mu", "kl", "csr"),
                                                ("pgd", "frobenius", "csr"), ("mu", "is", "dense")])
def test_tensor_in_tensor_out(device, dtype, solver, loss, layout):
    X, _, _ = planted(positive=True)
    T = as_tensor(X, layout, dtype, device)
    before = T.to_dense().clone() if layout == "csr" else T.clone()
    fit = nmfkit.fit(T, 4, solver=solver, loss=loss, max_iter=40, seed=0)
    for F, shape in ((fit.W, (70, 4)), (fit.H, (4, 50))):
        assert isinstance(F, torch.Tensor) and F.layout == torch.strided
        assert F.dtype == dtype and F.device.type == device and tuple(F.shape) == shape
        assert bool(torch.isfinite(F).all()) and bool((F >= 0).all())
    assert fit.H.is_contiguous()
    assert type(fit.loss) is float and type(fit.relative_error) is float and np.isfinite(fit.loss)
    assert fit.history["objective"].dtype == np.float64
    assert fit.history["objective"][-1] < fit.history["objective"][0]
    assert fit.options["dtype"] == str(dtype).removeprefix("torch.") and fit.options["engine"] == "torch"
    assert torch.equal(T.to_dense() if layout == "csr" else T, before)      # X untouched
    ref = nmfkit.fit(as_numpy_input(X, layout).astype(host(before).dtype), 4, solver=solver, loss=loss,
                     max_iter=40, seed=0)
    assert abs(fit.relative_error - ref.relative_error) < 0.01


def test_integer_and_half_tensors_become_floats():
    X, _, _ = planted()
    counts = torch.as_tensor(np.rint(10 * X), dtype=torch.int32)
    assert nmfkit.fit(counts, 3, max_iter=5).W.dtype == torch.float64
    assert nmfkit.fit(torch.as_tensor(X, dtype=torch.bfloat16), 3, max_iter=5).W.dtype == torch.float32
    coo = torch.as_tensor(X).to_sparse_coo()                 # other sparse layouts become CSR
    assert make_engine(check_matrix(coo)).X.layout == torch.sparse_csr


def test_given_tensor_factors_and_save(tmp_path):
    X, W0, H0 = planted()
    T = as_tensor(X, "dense", torch.float32)
    fit = nmfkit.fit(T, 4, init=(torch.as_tensor(W0), torch.as_tensor(H0)), max_iter=5, tol=0)
    assert fit.W.dtype == torch.float32                      # the factors take X's dtype
    loaded = nmfkit.Factorization.load(fit.save(tmp_path / "fit"))
    assert isinstance(loaded.W, np.ndarray) and loaded.W.dtype == np.float32
    np.testing.assert_array_equal(loaded.H, host(fit.H))
    assert fit.W_frame.shape == (70, 4) if _has_pandas() else True


def _has_pandas():
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def test_checkpoint_resume_matches_numpy(tmp_path):
    X, _, _ = planted()
    losses = []
    for data, name in ((X, "np"), (torch.as_tensor(X), "torch")):
        path = tmp_path / f"{name}.npz"
        nmfkit.fit(data, 4, solver="mu", max_iter=20, tol=0, seed=1, checkpoint=path, checkpoint_every=10)
        resumed = nmfkit.fit(data, 4, solver="mu", max_iter=40, tol=0, seed=1, resume=path)
        losses.append(resumed.loss)
    assert isinstance(resumed.W, torch.Tensor)
    assert losses[1] == pytest.approx(losses[0], rel=1e-9)


def test_tracking_works_on_tensors():
    X, _, _ = planted()
    fit = nmfkit.fit(torch.as_tensor(X), 4, solver="hals", max_iter=5, seed=0, track=True)
    ref = nmfkit.fit(X, 4, solver="hals", max_iter=5, seed=0, track=True)
    np.testing.assert_allclose(fit.history["kkt_residual"], ref.history["kkt_residual"], rtol=1e-7)


# -- errors ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_errors_name_the_problem(layout):
    X, _, _ = planted()
    bad = X.copy()
    bad[3, 7], bad[5, 1] = -2.5, -1.0
    with pytest.raises(ValueError, match=r"2 negative entries; the first is X\[3, 7\] = -2.5"):
        nmfkit.fit(as_tensor(bad, layout), 4)
    bad = X.copy()
    bad[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN entries; the first is at \(4, 2\)"):
        nmfkit.fit(as_tensor(bad, layout), 4)
    with pytest.raises(ValueError, match="rank 51 is too large for a 70×50 matrix"):
        nmfkit.fit(as_tensor(X, layout), 51)
    with pytest.raises(ValueError, match="all zeros"):
        nmfkit.fit(as_tensor(np.zeros((5, 4)), layout), 2)


def test_shape_and_dtype_errors():
    with pytest.raises(ValueError, match="must be 2-D.*1-D array of length 3"):
        nmfkit.fit(torch.ones(3), 1)
    with pytest.raises(ValueError, match="3 dimensions"):
        nmfkit.fit(torch.ones(2, 3, 4), 1)
    with pytest.raises(ValueError, match="empty"):
        nmfkit.fit(torch.ones(0, 3), 1)
    with pytest.raises(TypeError, match="complex"):
        nmfkit.fit(torch.ones(3, 3, dtype=torch.complex64), 1)
    with pytest.raises(ValueError, match="not supported for torch tensors"):
        nmfkit.fit(torch.ones(4, 3), 1, missing="mask")
    with pytest.raises(ValueError, match="W0 has shape"):
        nmfkit.fit(torch.ones(4, 3), 2, init=(torch.ones(3, 2), torch.ones(2, 3)))


# -- the engine itself ---------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_products_match_the_numpy_engines(layout, monkeypatch):
    monkeypatch.setattr(torch_engine, "BLOCK", 600)         # several row blocks in the KL/β passes
    X, W, H = planted()
    Ht = np.ascontiguousarray(H.T)
    ref = SparseEngine(sp.csr_matrix(X)) if layout == "csr" else DenseEngine(X)
    eng = make_engine(check_matrix(as_tensor(X, layout)))
    assert isinstance(eng, TorchEngine) and eng.kind == "torch" and eng.is_sparse == (layout == "csr")
    assert eng.shape == ref.shape and eng.dtype == ref.dtype and eng.nnz == ref.nnz
    assert eng.sqnorm == pytest.approx(ref.sqnorm, rel=1e-13) and eng.mean() == pytest.approx(ref.mean(), rel=1e-13)
    tW, tHt = torch.as_tensor(W), torch.as_tensor(Ht)
    close = dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(eng.XHt(tHt)), ref.XHt(Ht), **close)
    np.testing.assert_allclose(host(eng.XtW(tW)), ref.XtW(W), **close)
    everything = ("QHt", "QtW", "loss")
    kt, kr = eng.kl_ratio(tW, tHt, need=everything), ref.kl_ratio(W, Ht, need=everything)
    for key in ("QHt", "QtW"):
        np.testing.assert_allclose(host(kt[key]), kr[key], **close)
    assert kt["loss"] == pytest.approx(kr["loss"], rel=1e-11)
    assert set(eng.kl_ratio(tW, tHt, need=("QtW",))) == {"QtW"}
    bt, br = eng.beta_products(tW, tHt, 0.5), ref.beta_products(W, Ht, 0.5)
    for key in ("num_W", "den_W", "num_H", "den_H"):
        np.testing.assert_allclose(host(bt[key]), br[key], **close)
    assert bt["loss"] == pytest.approx(br["loss"], rel=1e-11)
    assert eng.frobenius(tW, tHt) == pytest.approx(ref.frobenius(W, Ht), rel=1e-11)
    assert eng.frobenius_exact(tW, tHt) == pytest.approx(ref.frobenius_exact(W, Ht), rel=1e-11)
    np.testing.assert_allclose(eng.X_col_sums(), ref.X_col_sums(), rtol=1e-13)
    np.testing.assert_allclose(eng.X_row_sums(), ref.X_row_sums(), rtol=1e-13)
    back = eng.transpose()
    np.testing.assert_allclose(host(back.XHt(tW)), ref.XtW(W), **close)
    np.testing.assert_allclose(host(back.kl_ratio(tHt, tW, need=("QtW",))["QtW"]), kr["QHt"], **close)


def test_sparse_x_is_never_densified(monkeypatch):
    X, W0, H0 = planted()
    T = as_tensor(X, "csr")
    densified = []
    real = torch.Tensor.to_dense
    monkeypatch.setattr(torch.Tensor, "to_dense",
                        lambda self, *a, **k: densified.append(self.shape) or real(self, *a, **k))
    for solver, loss in (("mu", "frobenius"), ("mu", "kl"), ("hals", "frobenius"), ("pgd", "frobenius")):
        fit = nmfkit.fit(T, 4, solver=solver, loss=loss, init=(W0, H0), max_iter=5, tol=0)
        assert fit.relative_error < 1
    assert densified == []
    assert make_engine(check_matrix(T)).X.layout == torch.sparse_csr


def test_stored_zeros_are_dropped():
    X, _, _ = planted()
    T = as_tensor(X, "csr")
    values = T.values() * (torch.rand(T.values().shape) < 0.8)
    with_zeros = torch.sparse_csr_tensor(T.crow_indices(), T.col_indices(), values, size=T.shape,
                                         check_invariants=True)
    eng = make_engine(check_matrix(with_zeros))
    assert eng.nnz == int(torch.count_nonzero(with_zeros.values()))
    np.testing.assert_allclose(host(eng.XHt(torch.ones(50, 2, dtype=torch.float64))),
                               with_zeros.to_dense().numpy() @ np.ones((50, 2)), rtol=1e-12)


@pytest.mark.parametrize("sweeps,delta", [(1, 0.0), (8, 0.1)])
def test_hals_twin_runs_on_tensors(sweeps, delta):
    rng = np.random.default_rng(0)
    A = rng.random((12, 4))
    G = A.T @ A
    R = rng.random((300, 4)) @ G - 0.3
    F = rng.random((300, 4))
    F_numba, F_torch = F.copy(), torch.as_tensor(F)
    done = _kernels.hals_sweeps(F_numba, R, G, sweeps, delta)
    done_torch = _kernels.hals_sweeps_numpy(F_torch, torch.as_tensor(R), torch.as_tensor(G), sweeps, delta)
    np.testing.assert_allclose(host(F_torch), F_numba, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(host(done_torch), done)


# -- the benchmark's quick mode ----------------------------------------------------------------------------
def test_gpu_benchmark_quick_mode(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "gpu.py"), "--quick", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "sec/iter" in proc.stdout
    import json
    rows = json.loads(out.read_text())["rows"]
    assert {(r["problem"], r["solver"]) for r in rows} >= {("dense", "mu"), ("dense", "hals"),
                                                           ("sparse", "mu"), ("sparse", "hals")}
    for r in rows:
        assert r["sec_per_iter"] > 0 and r["gemm_floor"] > 0 and r["ratio"] > 0
        assert r["numpy_sec_per_iter"] > 0
