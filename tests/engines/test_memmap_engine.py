"""The memory-mapped engine reads X in row blocks and gives the dense engine's products and losses."""
import numpy as np
import pytest

import nmfkit
from nmfkit.engines import DenseEngine, MemmapEngine, make_engine
from nmfkit.engines import memmap as memmap_engine


def _mapped(tmp_path, X):
    np.save(tmp_path / "X.npy", X)
    return np.load(tmp_path / "X.npy", mmap_mode="r")


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_row_blocks_give_the_dense_engines_products(tmp_path, monkeypatch, dtype, rtol):
    rng = np.random.default_rng(0)
    X = (rng.random((37, 11)) + 0.05).astype(dtype)
    W, Ht = rng.random((37, 3)).astype(dtype), rng.random((11, 3)).astype(dtype)
    monkeypatch.setattr(memmap_engine, "BLOCK_BYTES", 5 * 11 * X.itemsize)   # 8 blocks of ≤ 5 rows
    e, d = make_engine(_mapped(tmp_path, X)), DenseEngine(X)
    assert isinstance(e, MemmapEngine) and len(list(e._blocks())) == 8
    assert e.sqnorm == pytest.approx(d.sqnorm, rel=rtol) and e.nnz == d.nnz
    for mine, dense in [(e.XHt(Ht), d.XHt(Ht)), (e.XtW(W), d.XtW(W)), (e.X_col_sums(), d.X_col_sums()),
                        (e.X_row_sums(), d.X_row_sums()), (e.transpose().XHt(W), d.XtW(W))]:
        np.testing.assert_allclose(mine, dense, rtol=rtol)
    mine, dense = e.kl_ratio(W, Ht), d.kl_ratio(W, Ht)
    for key in ("QHt", "QtW", "loss"):
        np.testing.assert_allclose(mine[key], dense[key], rtol=rtol)
    mine, dense = e.beta_products(W, Ht, 1.5), d.beta_products(W, Ht, 1.5)
    for key in ("num_W", "den_W", "num_H", "den_H", "loss"):
        np.testing.assert_allclose(mine[key], dense[key], rtol=rtol)
    for loss, beta in (("frobenius", 2.0), ("kl", 1.0), ("is", 0.0)):
        assert e.loss(W, Ht, loss, beta) == pytest.approx(d.loss(W, Ht, loss, beta), rel=rtol)
    assert e.frobenius_exact(W, Ht) == pytest.approx(d.frobenius_exact(W, Ht), rel=rtol)
    assert e.mean() == pytest.approx(d.mean(), rel=rtol)


def test_fit_on_a_read_only_map_matches_the_in_memory_fit(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    X = rng.random((40, 4)) @ rng.random((4, 30))
    monkeypatch.setattr(memmap_engine, "BLOCK_BYTES", 7 * 30 * 8)
    Xm = _mapped(tmp_path, X)
    for solver in ("hals", "anls", "mu"):
        mapped, memory = (nmfkit.fit(A, 4, solver=solver, seed=0, max_iter=30) for A in (Xm, X))
        assert mapped.options["engine"] == "memmap"
        # the same iterations; only the order of the blocks' partial sums differs (float64)
        assert mapped.loss == pytest.approx(memory.loss, rel=1e-6)
        np.testing.assert_allclose(mapped.W @ mapped.H, memory.W @ memory.H, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(np.load(tmp_path / "X.npy"), X)        # the file is untouched
    with pytest.raises(ValueError, match="does not run on memmap"):
        nmfkit.fit(Xm, 4, solver="ccd")


def test_a_sparse_chunk_reader_gives_the_sparse_engines_products_and_its_transpose():
    """The engine over a reader of CSR chunks (Matrix Market, .h5ad CSR) and its transposed reader."""
    import scipy.sparse as sp

    from nmfkit.engines import SparseEngine
    from nmfkit.stream import ArrayReader
    rng = np.random.default_rng(3)
    A = sp.random(29, 13, density=0.4, random_state=rng, format="csr") + sp.eye(29, 13, format="csr")
    W, Ht = rng.random((29, 3)), rng.random((13, 3))
    e, s = MemmapEngine(ArrayReader(A), chunk_rows=4), SparseEngine(A)
    assert e.sqnorm == pytest.approx(s.sqnorm, rel=1e-12) and e.nnz == s.nnz
    for mine, theirs in [(e.XHt(Ht), s.XHt(Ht)), (e.XtW(W), s.XtW(W)), (e.X_col_sums(), s.X_col_sums()),
                         (e.X_row_sums(), s.X_row_sums())]:
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)
    for loss, beta in (("frobenius", 2.0), ("kl", 1.0), ("beta", 1.5)):
        assert e.loss(W, Ht, loss, beta) == pytest.approx(DenseEngine(A.toarray()).loss(W, Ht, loss, beta),
                                                          rel=1e-10)
    t = e.transpose()                                     # column blocks, one pass over the rows each
    assert t.shape == (13, 29) and t.sqnorm == e.sqnorm
    np.testing.assert_allclose(t.XHt(W), s.XtW(W), rtol=1e-12)
    np.testing.assert_allclose(t.XtW(Ht), s.XHt(Ht), rtol=1e-12)
