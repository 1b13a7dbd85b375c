"""Streaming NMF (nmfkit.stream): fits in bounded memory, the in-memory iterates in exact mode,
the readers of every format give X's rows, the online learner and its partial_fit/transform."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

import nmfkit
from nmfkit.stream import StreamingNMF, open_stream, stream_engine


def planted(m, n, k, seed=0, noise=0.01):
    rng = np.random.default_rng(seed)
    L = rng.random((m, k)) @ rng.random((k, n))
    return L * (1 + noise * rng.random((m, n)))


# -- memory bound ------------------------------------------------------------------------------------
# The child process warms up (imports, Numba compilation, BLAS buffers), then caps its data segment
# (RLIMIT_DATA: heap and private writable mappings, not the read-only map of the file) at what it uses
# plus HEADROOM.  X (3000×2000 float64 = 48 MB) is twice HEADROOM, so np.load of the whole file must
# fail; chunks of 200 rows (3.2 MB) and the factors ((m + n)·k) fit.  Sizes are small so the test takes
# seconds; the proportions (file ≫ limit ≫ chunk) are what a 2 GB file under a 1 GB limit would have.
M, N, K, CHUNK, ITERS = 3000, 2000, 6, 200, 15
HEADROOM = 24 * 2 ** 20

CHILD = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    import nmfkit

    def data_bytes():
        for line in open("/proc/self/status"):
            if line.startswith("VmData"):
                return int(line.split()[1]) * 1024

    path, tiny, out, headroom, k, chunk, iters = sys.argv[1:8]
    # compile and allocate everything once, on a tiny file
    nmfkit.fit(tiny, int(k), solver="hals", stream=True, chunk=7, seed=0, max_iter=2, tol=0)
    nmfkit.fit(tiny, int(k), stream="online", chunk=7, seed=0)
    limit = data_bytes() + int(headroom)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    try:
        np.load(path)
        whole = "loaded"
    except MemoryError:
        whole = "MemoryError"
    exact = nmfkit.fit(path, int(k), solver="hals", stream=True, chunk=int(chunk), seed=0,
                       max_iter=int(iters), tol=0)
    online = nmfkit.fit(path, int(k), stream="online", chunk=int(chunk), seed=0)
    json.dump({"whole": whole, "exact": exact.history["objective"].tolist(), "online": online.loss,
               "online_rel": online.relative_error}, open(out, "w"))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA and /proc are Linux's")
def test_exact_stream_fits_a_file_that_cannot_be_loaded_and_matches_the_in_memory_fit(tmp_path):
    X = planted(M, N, K)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "tiny.npy", planted(40, 30, K, seed=1))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "NUMBA_NUM_THREADS": "1"}
    args = [str(tmp_path / "X.npy"), str(tmp_path / "tiny.npy"), str(tmp_path / "out.json"), str(HEADROOM),
            str(K), str(CHUNK), str(ITERS)]
    done = subprocess.run([sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    child = json.loads((tmp_path / "out.json").read_text())
    assert child["whole"] == "MemoryError"            # the limit bites: the whole file does not fit
    memory = nmfkit.fit(X, K, solver="hals", seed=0, max_iter=ITERS, tol=0)
    # the same iterations; only the order of the chunks' partial sums differs (float64)
    np.testing.assert_allclose(child["exact"], memory.history["objective"], rtol=1e-6)
    # one online pass: reported beside the exact fit, and a fit worth having (planted rank, 1 % noise)
    print(f"online after one pass: {child['online']:.6g}; exact after {ITERS} passes: {memory.loss:.6g} "
          f"(ratio {child['online'] / memory.loss:.3g})")
    # measured: 0.056 against the exact fit's 0.014 after 15 passes (one pass, 15 chunks, ρ = 1)
    assert memory.relative_error < child["online_rel"] < 0.1


# -- exact mode in memory terms -------------------------------------------------------------------

@pytest.mark.parametrize("solver,loss", [("hals", "frobenius"), ("anls", "frobenius"), ("mu", "kl")])
def test_exact_stream_is_the_in_memory_fit(tmp_path, solver, loss):
    X = planted(90, 40, 4, seed=2)
    np.save(tmp_path / "X.npy", X)
    streamed = nmfkit.fit(str(tmp_path / "X.npy"), 4, solver=solver, loss=loss, seed=0, max_iter=25, tol=0,
                          chunk=13)
    memory = nmfkit.fit(X, 4, solver=solver, loss=loss, seed=0, max_iter=25, tol=0)
    assert streamed.options["stream"] == "exact" and streamed.options["chunk"] == 13
    np.testing.assert_allclose(streamed.history["objective"], memory.history["objective"], rtol=1e-9)
    np.testing.assert_allclose(streamed.W @ streamed.H, memory.W @ memory.H, rtol=1e-7, atol=1e-10)
    assert streamed.relative_error == pytest.approx(memory.relative_error, rel=1e-7)
    np.testing.assert_array_equal(np.load(tmp_path / "X.npy"), X)        # the file is untouched


def test_exact_stream_checkpoint_and_resume_as_in_memory(tmp_path):
    X = planted(60, 30, 3, seed=3)
    np.save(tmp_path / "X.npy", X)
    path = str(tmp_path / "X.npy")
    resumed = {}
    for name, data, extra in (("stream", path, {"chunk": 11}), ("memory", X, {})):
        nmfkit.fit(data, 3, solver="hals", seed=0, max_iter=10, tol=0, checkpoint=str(tmp_path / f"{name}.npz"),
                   checkpoint_every=5, **extra)
        resumed[name] = nmfkit.fit(data, 3, solver="hals", seed=0, max_iter=20, tol=0,
                                   resume=str(tmp_path / f"{name}.npz"), **extra)
    assert resumed["stream"].n_iter == 20
    np.testing.assert_allclose(resumed["stream"].history["objective"], resumed["memory"].history["objective"],
                               rtol=1e-9)
    np.save(tmp_path / "Y.npy", X * 2)
    with pytest.raises(ValueError):
        nmfkit.fit(str(tmp_path / "Y.npy"), 3, solver="hals", seed=0, max_iter=20, chunk=11,
                   resume=str(tmp_path / "stream.npz"))


# -- readers ----------------------------------------------------------------------------------------

def rows_of(source, chunk=7, **kw):
    """X assembled from the engine's row blocks (dense)."""
    engine, _ = stream_engine(source, chunk, **kw)
    blocks = [b.toarray() if sp.issparse(b) else b for _, _, b in engine._blocks()]
    return np.vstack(blocks), engine


def sparse_planted(seed=4):
    rng = np.random.default_rng(seed)
    A = sp.random(23, 17, density=0.3, random_state=rng, format="csr") * 5
    A.data = np.round(A.data) + 1
    return A


def test_npy_and_arrays_stream_their_rows(tmp_path):
    X = planted(23, 17, 3)
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    got, engine = rows_of(str(tmp_path / "X.npy"))
    assert engine.dtype == np.float32
    np.testing.assert_array_equal(got, X.astype(np.float32))
    np.save(tmp_path / "I.npy", np.arange(12, dtype=np.int32).reshape(3, 4))
    got, engine = rows_of(str(tmp_path / "I.npy"), chunk=2)
    assert engine.dtype == np.float64 and got[2, 3] == 11
    A = sparse_planted()
    np.testing.assert_array_equal(rows_of(A)[0], A.toarray())


def test_matrix_market_and_10x_folders_stream_by_rows_or_columns(tmp_path):
    A = sparse_planted()
    scipy.io.mmwrite(tmp_path / "A.mtx", A.tocoo())
    got, engine = rows_of(str(tmp_path / "A.mtx"), chunk=5)
    assert engine.shape == (23, 17)
    np.testing.assert_allclose(got, A.toarray())
    folder = tmp_path / "tenx"
    folder.mkdir()
    scipy.io.mmwrite(folder / "matrix.mtx", A.tocoo())
    got, engine = rows_of(str(folder), chunk=4, transpose=True)         # the columns (cells) as rows
    np.testing.assert_allclose(got, A.toarray().T)
    (tmp_path / "bad.mtx").write_text("%%MatrixMarket matrix coordinate real general\n3 3 2\n1 1 1.0\n")
    with pytest.raises(ValueError, match="declares 2 entries but the file holds 1"):
        stream_engine(str(tmp_path / "bad.mtx"))


def test_h5ad_dense_and_csr_stream(tmp_path):
    h5py = pytest.importorskip("h5py")
    A = sparse_planted()
    with h5py.File(tmp_path / "d.h5ad", "w") as f:
        f["X"] = A.toarray()
    with h5py.File(tmp_path / "s.h5ad", "w") as f:
        g = f.create_group("X")
        g.attrs["encoding-type"], g.attrs["shape"] = "csr_matrix", A.shape
        g["data"], g["indices"], g["indptr"] = A.data, A.indices, A.indptr
    for name in ("d.h5ad", "s.h5ad"):
        np.testing.assert_allclose(rows_of(str(tmp_path / name), chunk=6)[0], A.toarray())
    with h5py.File(tmp_path / "c.h5ad", "w") as f:
        g = f.create_group("X")
        g.attrs["encoding-type"], g.attrs["shape"] = "csc_matrix", A.shape
    with pytest.raises(ValueError, match="only dense or CSR"):
        open_stream(str(tmp_path / "c.h5ad"))


def test_zarr_and_parquet_stream(tmp_path):
    X = planted(23, 5, 2)
    zarr = pytest.importorskip("zarr")
    z = zarr.create_array(str(tmp_path / "X.zarr"), shape=X.shape, chunks=(4, 5), dtype="f8")
    z[:] = X
    np.testing.assert_array_equal(rows_of(str(tmp_path / "X.zarr"), chunk=6)[0], X)
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({f"c{j}": X[:, j] for j in range(5)})
    pq.write_table(table, tmp_path / "X.parquet", row_group_size=6)
    got, engine = rows_of(str(tmp_path / "X.parquet"), chunk=None)
    assert engine.rows_per_block == 6
    np.testing.assert_array_equal(got, X)
    np.testing.assert_array_equal(rows_of(str(tmp_path / "X.parquet"), chunk=4)[0], X)  # across row groups
    pq.write_table(pa.table({"a": [1.0, 2.0], "b": ["x", "y"]}), tmp_path / "T.parquet")
    with pytest.raises(ValueError, match="column 'b' is not numeric"):
        open_stream(str(tmp_path / "T.parquet"))


def test_bad_streamed_data_is_refused_in_one_line(tmp_path):
    X = planted(20, 6, 2)
    X[13, 2] = -1.0
    np.save(tmp_path / "neg.npy", X)
    with pytest.raises(ValueError, match="negative entry .* rows from 10"):
        nmfkit.fit(str(tmp_path / "neg.npy"), 2, stream=True, chunk=5)
    X[13, 2] = np.nan
    np.save(tmp_path / "nan.npy", X)
    with pytest.raises(ValueError, match="non-finite"):
        nmfkit.fit(str(tmp_path / "nan.npy"), 2, chunk=5)
    np.save(tmp_path / "zero.npy", np.zeros((4, 3)))
    with pytest.raises(ValueError, match="all zeros"):
        nmfkit.fit(str(tmp_path / "zero.npy"), 2, stream=True)
    (tmp_path / "X.txt").write_text("1 2\n")
    with pytest.raises(ValueError, match="cannot tell how to stream"):
        nmfkit.fit(str(tmp_path / "X.txt"), 1, stream=True)
    with pytest.raises(FileNotFoundError):
        nmfkit.fit(str(tmp_path / "missing.npy"), 1, stream=True)
    np.save(tmp_path / "ok.npy", planted(20, 6, 2))
    with pytest.raises(ValueError, match="stream"):
        nmfkit.fit(str(tmp_path / "ok.npy"), 2, stream="sometimes")
    with pytest.raises(ValueError, match="chunk"):
        nmfkit.fit(str(tmp_path / "ok.npy"), 2, chunk=0)
    with pytest.raises(ValueError, match="apply to stream='exact' only"):
        nmfkit.fit(str(tmp_path / "ok.npy"), 2, stream="online", solver="mu")
    with pytest.raises(ValueError, match="rank"):
        nmfkit.fit(str(tmp_path / "ok.npy"), 9, stream=True)


# -- online -----------------------------------------------------------------------------------------

def test_online_pass_is_partial_fit_on_the_same_chunks_and_transform_is_a_projection(tmp_path):
    X = planted(120, 30, 3, seed=5)
    np.save(tmp_path / "X.npy", X)
    online = nmfkit.fit(str(tmp_path / "X.npy"), 3, stream="online", chunk=20, seed=1)
    model = StreamingNMF(3, seed=1)
    for s in range(0, 120, 20):
        model.partial_fit(X[s:s + 20])
    np.testing.assert_allclose(model.H, online.H, rtol=1e-10, atol=1e-12)
    assert model.n_samples_seen == 120 and online.relative_error < 0.15     # one pass (measured 0.075)
    np.testing.assert_allclose(online.history["objective"][-1], online.loss)
    codes = model.transform(X[:7])
    np.testing.assert_allclose(codes, nmfkit.project(model.H.T, X[:7].T).T)
    assert np.linalg.norm(X[:7] - codes @ model.H) / np.linalg.norm(X[:7]) < 0.1     # measured 0.057
    with pytest.raises(ValueError, match="features"):
        model.transform(X[:3, :10])
    with pytest.raises(ValueError, match="partial_fit first"):
        StreamingNMF(2).transform(X)


def test_online_passes_improve_and_kl_runs(tmp_path):
    X = planted(150, 25, 3, seed=6)
    np.save(tmp_path / "X.npy", X)
    more = nmfkit.fit(str(tmp_path / "X.npy"), 3, stream="online", chunk=30, seed=0, max_iter=4)
    assert more.n_iter == 4 and more.history["objective"][-1] < more.history["objective"][1]
    kl = nmfkit.fit(str(tmp_path / "X.npy"), 3, stream="online", chunk=30, seed=0, loss="kl", max_iter=3)
    assert np.isfinite(kl.loss) and kl.H.min() >= 0 and kl.options["loss"] == "kl"


# -- command line -----------------------------------------------------------------------------------

def test_cli_fit_stream_writes_the_streamed_fit(tmp_path, capsys):
    from nmfkit.cli import main
    X = planted(50, 20, 3, seed=7)
    np.save(tmp_path / "X.npy", X)
    out = tmp_path / "out"
    assert main(["fit", str(tmp_path / "X.npy"), "-k", "3", "-o", str(out), "--chunk", "9", "--seed", "0",
                 "--solver", "hals", "--max-iter", "20", "--tol", "0", "-q"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    direct = nmfkit.fit(str(tmp_path / "X.npy"), 3, solver="hals", chunk=9, seed=0, max_iter=20, tol=0)
    assert summary["options"]["stream"] == "exact" and summary["options"]["chunk"] == 9
    assert summary["loss"] == pytest.approx(direct.loss, rel=1e-12)
    W = np.loadtxt(out / "W.csv", delimiter=",", skiprows=1)                      # no row labels streamed
    assert W.shape == (50, 3)
    assert main(["fit", str(tmp_path / "X.npy"), "-k", "3", "-o", str(tmp_path / "o2"), "--stream", "online",
                 "-q"]) == 0
    assert main(["fit", str(tmp_path / "X.npy"), "-k", "3", "-o", str(tmp_path / "o3"), "--stream",
                 "--track"]) != 0
    assert "cannot be combined with --stream" in capsys.readouterr().err


def test_streamed_matrix_market_fit_is_the_in_memory_sparse_fit(tmp_path):
    """Entries in file order (not sorted by row or column) land where they belong, the cache is not
    rewritten by the validating pass, and HALS sizes its inner loops on the stored entries as the
    sparse engine does: the streamed fits repeat the in-memory sparse fits."""
    A = sp.random(80, 30, density=0.3, random_state=1, format="coo")
    A.data = np.round(A.data * 5) + 1
    scipy.io.mmwrite(tmp_path / "A.mtx", A)
    path = str(tmp_path / "A.mtx")
    for options in ({"solver": "mu", "loss": "kl"}, {"solver": "hals"}):
        streamed = nmfkit.fit(path, 3, chunk=16, seed=0, max_iter=30, tol=0, **options)
        memory = nmfkit.fit(A.tocsr(), 3, seed=0, max_iter=30, tol=0, **options)
        np.testing.assert_allclose(streamed.history["objective"], memory.history["objective"], rtol=1e-9)
