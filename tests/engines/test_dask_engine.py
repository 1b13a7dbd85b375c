"""The dask engine: same products and same fits as in memory, lazy validation, lazy readers,
a LocalCluster fit, and a fit that survives the death of a worker."""
import os

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="dask is not installed (pip install nmfkit[dask])")

import nmfkit  # noqa: E402
from nmfkit.engines import DenseEngine, make_engine  # noqa: E402
from nmfkit.engines.dask_engine import DaskEngine, NpyRows, read_lazy  # noqa: E402
from nmfkit.registry import SOLVERS  # noqa: E402
from nmfkit.validation import check_matrix  # noqa: E402

SOLVERS_ON_DASK = (("mu", "frobenius"), ("mu", "kl"), ("hals", "frobenius"), ("anls", "frobenius"))


def test_solvers_declare_the_dask_engine():
    for name, _ in SOLVERS_ON_DASK:
        assert "dask" in SOLVERS[name].engines, name


def planted(m=230, n=170, k=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((m, k)) @ rng.random((k, n)) + 0.05 * rng.random((m, n))
    W0, H0 = rng.random((m, k)) + 0.1, rng.random((k, n)) + 0.1
    return X, W0, H0


def as_dask(X, rows=(60, 60, 60, 50), cols=60):
    """Uneven row blocks and several column blocks (the engine joins the columns)."""
    return da.from_array(X, chunks=(rows, cols))


def assert_same_fit(a, b, rtol=1e-8):
    for name in ("W", "H"):
        A, B = getattr(a, name), getattr(b, name)
        np.testing.assert_allclose(B, A, rtol=rtol, atol=rtol * np.abs(A).max(), err_msg=name)
    assert abs(b.loss - a.loss) <= rtol * max(abs(a.loss), 1e-3)
    assert b.n_iter == a.n_iter


# -- engine products ---------------------------------------------------------------------------------
def test_products_match_the_dense_engine():
    X, W, H = planted()
    Ht = np.ascontiguousarray(H.T)
    d, e = make_engine(check_matrix(as_dask(X))), DenseEngine(X)
    assert isinstance(d, DaskEngine) and d.kind == "dask" and d.X.numblocks == (4, 1)
    assert d.shape == e.shape and d.dtype == e.dtype and d.nnz == e.nnz
    assert d.sqnorm == pytest.approx(e.sqnorm, rel=1e-13) and d.mean() == pytest.approx(e.mean(), rel=1e-13)
    close = dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d.XHt(Ht), e.XHt(Ht), **close)
    np.testing.assert_allclose(d.XtW(W), e.XtW(W), **close)
    kd, ke = d.kl_ratio(W, Ht), e.kl_ratio(W, Ht)
    for key in ("QHt", "QtW"):
        np.testing.assert_allclose(kd[key], ke[key], **close)
    assert kd["loss"] == pytest.approx(ke["loss"], rel=1e-12)
    assert set(d.kl_ratio(W, Ht, need=("QtW",))) == {"QtW", "loss"}
    assert d.kl_divergence(W, Ht) == pytest.approx(e.kl_divergence(W, Ht), rel=1e-12)
    bd, be = d.beta_products(W, Ht, 0.5), e.beta_products(W, Ht, 0.5)
    for key in ("num_W", "den_W", "num_H", "den_H"):
        np.testing.assert_allclose(bd[key], be[key], **close)
    assert bd["loss"] == pytest.approx(be["loss"], rel=1e-12)
    assert d.frobenius(W, Ht) == pytest.approx(e.frobenius(W, Ht), rel=1e-10)
    assert d.frobenius_exact(W, Ht) == pytest.approx(e.frobenius_exact(W, Ht), rel=1e-12)
    np.testing.assert_allclose(d.X_col_sums(), e.X_col_sums(), rtol=1e-13)
    np.testing.assert_allclose(d.X_row_sums(), e.X_row_sums(), rtol=1e-13)
    with pytest.raises(NotImplementedError, match="transpose"):
        d.transpose()


def test_float32_stays_float32():
    X, W, H = planted()
    d = make_engine(check_matrix(as_dask(X.astype(np.float32))))
    assert d.dtype == np.float32
    assert d.XtW(W.astype(np.float32)).dtype == np.float32
    assert d.XHt(np.ascontiguousarray(H.T, dtype=np.float32)).dtype == np.float32


# -- same answer as in memory ----------------------------------------------------------------------
@pytest.mark.parametrize("solver,loss", SOLVERS_ON_DASK)
def test_fifty_iterations_agree_with_in_memory(solver, loss):
    X, W0, H0 = planted()
    a = nmfkit.fit(X, 4, solver=solver, loss=loss, init=(W0, H0), max_iter=50, tol=0)
    b = nmfkit.fit(as_dask(X), 4, solver=solver, loss=loss, init=(W0, H0), max_iter=50, tol=0)
    assert b.options["engine"] == "dask" and a.options["engine"] == "dense"
    assert_same_fit(a, b)
    assert b.relative_error == pytest.approx(a.relative_error, rel=1e-8)


def test_each_half_step_reads_x_once():
    """Block reads of a whole fit: validation scan (shared with the engine), the initial
    objective, 2 per iteration, the final relative error — nothing else."""
    X, _, _ = planted()
    reads = []

    def counted(block, block_info=None):
        reads.append(block_info[0]["chunk-location"][0])
        return block

    Xd = da.from_array(X, chunks=(60, -1)).map_blocks(counted, dtype=X.dtype)
    for solver, loss in SOLVERS_ON_DASK:
        reads.clear()
        nmfkit.fit(Xd, 4, solver=solver, loss=loss, init="random", seed=0, max_iter=3, tol=0)
        # HALS rescales its start with one X Ht; MU-KL's first iteration has no cached Qᵀ W yet
        extra = 1 if solver == "hals" or loss == "kl" else 0
        assert len(reads) == 4 * (1 + 1 + 2 * 3 + 1 + extra), (solver, loss)
        assert sorted(set(reads)) == [0, 1, 2, 3]


def test_randomized_svd_init_runs_through_the_engine():
    X, _, _ = planted()
    a = nmfkit.fit(X, 4, solver="hals", init="nndsvda", seed=3, max_iter=20, tol=0)
    b = nmfkit.fit(as_dask(X), 4, solver="hals", init="nndsvda", seed=3, max_iter=20, tol=0)
    assert_same_fit(a, b, rtol=1e-7)


def test_unsupported_solver_is_refused_by_name():
    X, _, _ = planted()
    with pytest.raises(ValueError, match="does not run on dask data"):
        nmfkit.fit(as_dask(X), 3, solver="sgd")


# -- validation without loading X --------------------------------------------------------------------
def test_validation_stays_lazy_and_names_the_first_offender():
    X, _, _ = planted()
    assert type(check_matrix(as_dask(X.astype(np.int64) + 1))).__module__.startswith("dask")
    bad = X.copy()
    bad[130, 7], bad[200, 3] = -2.0, -1.0
    with pytest.raises(ValueError, match=r"2 negative entries; the first is X\[130, 7\] = -2"):
        nmfkit.fit(as_dask(bad), 3)
    bad = X.copy()
    bad[190, 11], bad[191, 0] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"1 NaN, 1 infinite entries; the first is at \(190, 11\)"):
        nmfkit.fit(as_dask(bad), 3)
    with pytest.raises(ValueError, match="all zeros"):
        nmfkit.fit(da.zeros((20, 10), chunks=5), 2)
    with pytest.raises(ValueError, match="2-D"):
        nmfkit.fit(da.ones(10, chunks=5), 2)
    with pytest.raises(ValueError, match="mask= is not supported for dask"):
        nmfkit.fit(as_dask(X), 2, mask=np.ones(X.shape, bool))


def test_sparse_chunks_are_refused_clearly():
    sp = pytest.importorskip("scipy.sparse")
    X, _, _ = planted()
    S = as_dask(X).map_blocks(sp.csr_matrix, meta=sp.csr_matrix((0, 0)))
    with pytest.raises(TypeError, match="csr_matrix chunks are not supported"):
        nmfkit.fit(S, 3)


# -- lazy readers --------------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["C", "F"])
def test_npy_reader(tmp_path, order):
    X, _, _ = planted()
    path = tmp_path / "x.npy"
    np.save(path, np.asarray(X, order=order))
    L = read_lazy(path, chunk_rows=64)
    assert L.chunks[0] == (64, 64, 64, 38)
    np.testing.assert_array_equal(L.compute(), X)
    np.testing.assert_array_equal(NpyRows(path)[slice(5, 9), slice(2, 4)], X[5:9, 2:4])
    assert read_lazy(path, chunk_rows=64).name == L.name          # deterministic graph names


def test_zarr_reader(tmp_path):
    zarr = pytest.importorskip("zarr")
    X, _, _ = planted()
    z = zarr.open_array(str(tmp_path / "x.zarr"), mode="w", shape=X.shape, chunks=(50, X.shape[1]),
                        dtype=X.dtype)
    z[:] = X
    L = read_lazy(tmp_path / "x.zarr")
    assert L.chunks[0][0] == 50
    a = nmfkit.fit(X, 4, solver="mu", init="random", seed=1, max_iter=30, tol=0)
    b = nmfkit.fit(L, 4, solver="mu", init="random", seed=1, max_iter=30, tol=0)
    assert_same_fit(a, b)


# -- distributed ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="distributed is not installed")
    src = os.path.dirname(os.path.dirname(nmfkit.__file__))      # workers must import nmfkit too
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env={"PYTHONPATH": path}) as c:
        yield c


def _npy_source(tmp_path, X, chunk_rows=40):
    path = tmp_path / "x.npy"
    np.save(path, X)
    return read_lazy(path, chunk_rows=chunk_rows)


def test_local_cluster_fit(cluster, tmp_path):
    from distributed import Client
    X, W0, H0 = planted()
    L = _npy_source(tmp_path, X)
    a = nmfkit.fit(X, 4, solver="mu", loss="kl", init=(W0, H0), max_iter=20, tol=0)
    with Client(cluster) as client:
        b = nmfkit.fit(L, 4, solver="mu", loss="kl", init=(W0, H0), max_iter=20, tol=0)
        assert len(client.scheduler_info()["workers"]) == 2
    assert_same_fit(a, b)


def test_cli_scheduler_and_lazy_input(cluster, tmp_path, capsys):
    import json

    from nmfkit.cli import main
    X, _, _ = planted()
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "out"
    common = ["-k", "4", "--solver", "mu", "--seed", "0", "--max-iter", "15", "--tol", "0", "-q"]
    assert main(["fit", str(tmp_path / "x.npy"), "-o", str(out), "--scheduler", cluster.scheduler_address,
                 "--chunk-rows", "50", *common]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["options"]["engine"] == "dask" and summary["input"]["shape"] == [230, 170]
    expected = nmfkit.fit(X, 4, solver="mu", init="nndsvda", seed=0, max_iter=15, tol=0)
    assert summary["relative_error"] == pytest.approx(expected.relative_error, rel=1e-8)
    assert main(["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "t"), "--lazy", "--transpose", *common]) == 0
    assert json.loads((tmp_path / "t" / "summary.json").read_text())["input"]["shape"] == [170, 230]
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    assert main(["fit", str(tmp_path / "x.csv"), "-o", str(out), "--lazy", *common]) == 2
    assert ".npy files and .zarr stores" in capsys.readouterr().err


def test_fit_survives_a_killed_worker(cluster, tmp_path):
    """At iteration 10 a marker file is created; the next task that reads a block of X finds it,
    removes it and kills its own worker process mid-computation.  The scheduler recomputes the
    lost blocks from the file and the fit ends exactly where an uninterrupted one does."""
    from distributed import Client
    X, W0, H0 = planted()
    marker = tmp_path / "kill-me"

    def die_if_marked(block):
        try:
            os.unlink(marker)
        except FileNotFoundError:
            return block
        os._exit(1)                                     # the worker process dies, tasks in flight are lost

    L = _npy_source(tmp_path, X).map_blocks(die_if_marked, dtype=X.dtype)

    def at_ten(state):
        if state.iteration == 10:
            marker.touch()
        return False

    reference = nmfkit.fit(X, 4, solver="hals", init=(W0, H0), max_iter=25, tol=0)
    with Client(cluster) as client:
        before = set(client.run(os.getpid).values())
        result = nmfkit.fit(L, 4, solver="hals", init=(W0, H0), max_iter=25, tol=0, callback=at_ten)
        client.wait_for_workers(2, timeout=60)
        after = set(client.run(os.getpid).values())
    assert not marker.exists(), "no block was read after iteration 10"
    assert len(before - after) == 1, "exactly one worker process should have died and been replaced"
    assert result.n_iter == 25 and result.stop_reason == reference.stop_reason
    assert_same_fit(reference, result)
