"""Engines, initialisations, dtypes and persistence of the core."""
import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit
from nmfkit.engines import make_engine
from nmfkit.engines._kernels import sampled_dot, sampled_dot_numpy
from nmfkit.init import randomized_svd
from nmfkit.registry import INITS


def test_sampled_dot_numba_matches_numpy_twin():
    rng = np.random.default_rng(0)
    X = sp.random(300, 200, density=0.05, random_state=1, format="csr")
    W, Ht = rng.random((300, 7)), rng.random((200, 7))
    a = sampled_dot(X.indptr, X.indices, W, Ht)
    b = sampled_dot_numpy(X.indptr, X.indices, W, Ht, block=97)
    np.testing.assert_allclose(a, b, rtol=1e-13)
    dense = (W @ Ht.T)[X.nonzero()]
    np.testing.assert_allclose(np.sort(a), np.sort(dense), rtol=1e-13)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil"])
def test_sparse_formats_accepted_and_never_densified(fmt, monkeypatch):
    X = sp.random(60, 40, density=0.1, random_state=2, format=fmt)
    monkeypatch.setattr(sp.csr_matrix, "toarray", lambda *a, **k: pytest.fail("densified X"))
    res = nmfkit.fit(X, 3, solver="mu", loss="kl", max_iter=20)
    assert res.W.shape == (60, 3) and res.H.shape == (3, 40)


def test_engines_products_agree():
    rng = np.random.default_rng(3)
    X = sp.random(40, 30, density=0.3, random_state=3, format="csr")
    W, Ht = rng.random((40, 4)), rng.random((30, 4))
    d, s = make_engine(X.toarray()), make_engine(X)
    np.testing.assert_allclose(d.XHt(Ht), s.XHt(Ht))
    np.testing.assert_allclose(d.XtW(W), s.XtW(W))
    assert d.sqnorm == pytest.approx(s.sqnorm)
    assert d.kl_divergence(W, Ht) == pytest.approx(s.kl_divergence(W, Ht), rel=1e-12)
    assert d.frobenius(W, Ht) == pytest.approx(d.frobenius_exact(W, Ht), rel=1e-10)
    kd, ks = d.kl_ratio(W, Ht), s.kl_ratio(W, Ht)
    np.testing.assert_allclose(kd["QHt"], ks["QHt"], rtol=1e-12)
    np.testing.assert_allclose(kd["QtW"], ks["QtW"], rtol=1e-12)


@pytest.mark.parametrize("dtype, expected", [(np.float32, np.float32), (np.float64, np.float64),
                                             (np.int32, np.float64), (np.uint8, np.float64),
                                             (np.float16, np.float32), (bool, np.float64)])
def test_dtypes(dtype, expected):
    X = (np.random.default_rng(0).random((20, 15)) * 5).astype(dtype)
    res = nmfkit.fit(X, 2, solver="mu", max_iter=10)
    assert res.W.dtype == expected and res.H.dtype == expected


def test_randomized_svd_matches_exact():
    rng = np.random.default_rng(5)
    X = rng.random((100, 5)) @ rng.random((5, 80)) + 0.01 * rng.random((100, 80))
    U, s, Vt = randomized_svd(make_engine(X), 5, rng)
    s_exact = np.linalg.svd(X, compute_uv=False)[:5]
    np.testing.assert_allclose(s, s_exact, rtol=1e-8)


@pytest.mark.parametrize("name", sorted(INITS))
@pytest.mark.parametrize("sparse", [False, True])
def test_inits_shapes_nonnegative_and_scaled(name, sparse):
    rng = np.random.default_rng(6)
    X = rng.random((50, 4)) @ rng.random((4, 40))
    data = sp.csr_matrix(X) if sparse else X
    W, Ht = INITS[name](make_engine(data), 4, np.random.default_rng(0))
    assert W.shape == (50, 4) and Ht.shape == (40, 4)
    assert W.min() >= 0 and Ht.min() >= 0
    ratio = np.linalg.norm(W @ Ht.T) / np.linalg.norm(X)
    assert 0.3 < ratio < 3
    if name in ("nndsvda", "nndsvdar"):
        assert (W > 0).all() and (Ht > 0).all()


def test_nndsvd_is_close_for_exact_low_rank():
    rng = np.random.default_rng(7)
    X = np.outer(rng.random(30), rng.random(20))
    W, Ht = INITS["nndsvd"](make_engine(X), 1, rng)
    np.testing.assert_allclose(W @ Ht.T, X, rtol=1e-8)


@pytest.mark.parametrize("name", ["nndsvd", "nndsvda", "nndsvdar"])
def test_svd_inits_agree_dense_and_sparse_with_empty_rows_and_columns(name):
    rng = np.random.default_rng(0)
    X = rng.random((60, 40))
    X[X < 0.5] = 0
    X[:, 5] = 0
    X[7, :] = 0
    dense = INITS[name](make_engine(X), 4, np.random.default_rng(1))
    sparse = INITS[name](make_engine(sp.csr_matrix(X)), 4, np.random.default_rng(1))
    for a, b in zip(dense, sparse):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    if name == "nndsvda":        # the empty row and column are filled with mean(X), not left at ~1e-17
        W, Ht = dense
        assert np.allclose(W[7], X.mean()) and np.allclose(Ht[5], X.mean())


def test_save_load_roundtrip(tmp_path):
    X = np.random.default_rng(8).random((12, 9))
    res = nmfkit.fit(X, 3, solver="mu", seed=0, max_iter=30)
    path = res.save(tmp_path / "model")
    assert path.endswith(".npz")
    back = nmfkit.Factorization.load(path)
    np.testing.assert_array_equal(back.W, res.W)
    np.testing.assert_array_equal(back.H, res.H)
    np.testing.assert_array_equal(back.history["objective"], res.history["objective"])
    assert back.options == res.options and back.stop_reason == res.stop_reason
    with np.load(path, allow_pickle=False) as z:  # portable: no pickled objects
        assert set(z.files) >= {"W", "H", "meta"}


def test_load_rejects_foreign_files(tmp_path):
    p = tmp_path / "other.npz"
    np.savez(p, a=np.ones(3))
    with pytest.raises(ValueError, match="other.npz: not an nmfkit model file"):
        nmfkit.Factorization.load(p)
    with pytest.raises(ValueError, match="missing.npz: no such file"):
        nmfkit.Factorization.load(tmp_path / "missing.npz")


def test_dataframe_labels_kept():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(np.random.default_rng(9).random((5, 4)), index=list("abcde"), columns=list("wxyz"))
    res = nmfkit.fit(df, 2, solver="mu", max_iter=5)
    assert res.row_names == list("abcde") and res.col_names == list("wxyz")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("k", [1, 3, 7])
def test_fused_kl_kernel_matches_numpy_twin(dtype, order, k):
    from nmfkit.engines._dense_kernels import kl_products, kl_products_numpy
    rng = np.random.default_rng(k)
    X = rng.random((70, 45)) * (rng.random((70, 45)) < 0.6)
    X = np.asarray(X, dtype=dtype, order=order)
    W, Ht = rng.random((70, k)).astype(dtype), rng.random((45, k)).astype(dtype)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    for need in [("QHt", "QtW", "loss"), ("QtW",), ("QHt",), ("loss",)]:
        a, b = kl_products(X, W, Ht, need), kl_products_numpy(X, W, Ht, need)
        assert set(a) == set(b) == set(need)
        for key in need:
            np.testing.assert_allclose(a[key], b[key], rtol=rtol, atol=0)
        if "QHt" in a:
            assert a["QHt"].dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k", [1, 3, 8])
@pytest.mark.parametrize("l2, floor", [(0.0, 0.0), (0.3, 1e-3)])
def test_fused_kl_w_step_matches_the_generic_two_pass_step(dtype, k, l2, floor):
    """The dense engine's one-pass W half-step equals Engine.kl_w_step (two kl_ratio calls)."""
    from nmfkit.engines.base import Engine
    from nmfkit.engines.dense import DenseEngine
    rng = np.random.default_rng(k)
    X = (rng.random((90, 37)) * (rng.random((90, 37)) < 0.6)).astype(dtype)
    W, Ht = rng.random((90, k)).astype(dtype), rng.random((37, k)).astype(dtype)
    X[0] = 0.0                                        # an all-zero row: its W row goes to the floor
    Ht_next = np.maximum(Ht, 0.2)
    den = (Ht.sum(axis=0) + 0.1).astype(dtype)
    e = DenseEngine(X)
    assert e._fused_step(W)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    for need in [("QtW", "loss"), ("QtW",), ()]:
        fused = e.kl_w_step(W, Ht, den, l2, floor, need, Ht_next=Ht_next)
        generic = Engine.kl_w_step(e, W, Ht, den, l2, floor, need, Ht_next=Ht_next)
        assert set(need) | {"W", "W_sum"} <= set(fused) and fused["W"].dtype == dtype
        for key in set(need) | {"W", "W_sum"}:
            np.testing.assert_allclose(fused[key], generic[key], rtol=rtol, atol=0, err_msg=key)
        assert np.all(fused["W"] >= floor) and np.all(np.isfinite(fused["W"]))
    # products only (update=False) are the same sums a step makes at the new W
    nxt = e.kl_w_step(W, Ht, den, l2, floor, ("QtW",))
    again = e.kl_ratio(nxt["W"], Ht, need=("QtW",))
    np.testing.assert_array_equal(again["QtW"], nxt["QtW"])
    np.testing.assert_array_equal(e.factor_col_sums(nxt["W"]), nxt["W_sum"])


def test_kl_objective_every_keeps_history_and_stops():
    X = np.random.default_rng(1).random((40, 30))
    f = nmfkit.fit(X, 3, solver="mu", loss="kl", max_iter=95, tol=0, seed=0)
    assert list(f.history["iteration"]) == [0, *range(10, 91, 10), 95]
    every = nmfkit.fit(X, 3, solver="mu", loss="kl", max_iter=95, tol=0, seed=0, objective_every=1)
    assert every.history["iteration"].size == 96
    np.testing.assert_array_equal(f.W, every.W)       # evaluating the objective changes nothing else
    assert f.loss == every.loss
    np.testing.assert_array_equal(f.history["objective"], every.history["objective"][f.history["iteration"]])
    conv = nmfkit.fit(X, 3, solver="mu", loss="kl", max_iter=5000, tol=1e-4, seed=0)
    assert conv.converged and conv.n_iter % 10 == 0 and conv.n_iter < 5000


@pytest.mark.parametrize("kind", ["dense", "sparse", "masked"])
def test_engine_loss_dispatches_to_the_loss_methods(kind):
    rng = np.random.default_rng(3)
    X = rng.random((9, 7)) * (rng.random((9, 7)) < 0.6) + 0.05
    mask = rng.random(X.shape) < 0.8 if kind == "masked" else None
    e = make_engine(sp.csr_matrix(X) if kind == "sparse" else X, mask=mask)
    W, Ht = rng.random((9, 2)) + 0.1, rng.random((7, 2)) + 0.1
    assert e.loss(W, Ht, "frobenius", 2.0) == e.frobenius(W, Ht)
    assert e.loss(W, Ht, "frobenius", 2.0, exact=True) == e.frobenius_exact(W, Ht)
    assert e.loss(W, Ht, "kl", 1.0) == e.kl_divergence(W, Ht)
    assert e.loss(W, Ht, "is", 0.0) == e.beta_divergence(W, Ht, 0.0)
    assert e.loss(W, Ht, "beta", 1.5) == e.beta_divergence(W, Ht, 1.5)
