"""The sparse engine's fused KL W half-step: kernel = generic step = SciPy twin, and fits agree with dense."""
import numba
import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit
from nmfkit.engines import _kernels
from nmfkit.engines.base import Engine
from nmfkit.engines.sparse import SparseEngine


def sparse_data(m, n, dtype=np.float64, seed=0, density=0.25):
    """Poisson-like counts at about `density` of the entries; the last row and column are empty."""
    rng = np.random.default_rng(seed)
    X = (rng.random((m, n)) < density) * rng.integers(1, 6, (m, n))
    X[-1], X[:, -1] = 0, 0
    X[m // 2: m // 2 + 3] = 0                          # a run of empty rows inside a row block
    return sp.csr_matrix(X.astype(dtype))


def planted_counts(m, n, k, seed):
    """Counts from a planted rank-k Poisson model, without empty rows or columns (brunet refuses them)."""
    rng = np.random.default_rng(seed)
    X = rng.poisson(rng.gamma(1.0, 1.0, (m, k)) @ rng.gamma(1.0, 0.3, (k, n))).astype(np.float64)
    X[np.arange(m), rng.integers(0, n, m)] += 1.0
    X[rng.integers(0, m, n), np.arange(n)] += 1.0
    assert 0.2 < np.mean(X == 0) < 0.9
    return sp.csr_matrix(X)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k", [1, 3, 12])
@pytest.mark.parametrize("l2, floor", [(0.0, 0.0), (0.3, 1e-3)])
def test_fused_step_matches_the_generic_step_and_the_scipy_twin(dtype, k, l2, floor):
    rng = np.random.default_rng(k)
    X = sparse_data(90, 37, dtype, seed=k)
    W, Ht = rng.random((90, k)).astype(dtype), rng.random((37, k)).astype(dtype)
    Ht_next = np.maximum(Ht, dtype(0.2))
    den = (Ht.sum(axis=0) + 0.1).astype(dtype)
    e = SparseEngine(X)
    assert e._fused(W)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    for need in [("QtW", "loss"), ("QtW",), ("loss",), ()]:
        fused = e.kl_w_step(W, Ht, den, l2, floor, need, Ht_next=Ht_next)
        generic = Engine.kl_w_step(e, W, Ht, den, l2, floor, need, Ht_next=Ht_next)
        twin = _kernels.kl_w_step_scipy(*e._csr, W, Ht, den, l2, floor, need, Ht_next)   # no kernel at all
        assert set(fused) == set(need) | {"W", "W_sum"} and fused["W"].dtype == dtype
        for key in fused:
            np.testing.assert_allclose(fused[key], generic[key], rtol=rtol, atol=0, err_msg=key)
            np.testing.assert_allclose(fused[key], twin[key], rtol=rtol, atol=0, err_msg=key)
        if "QtW" in need:
            assert fused["QtW"].dtype == dtype and fused["QtW"].shape == (37, k)
            assert np.all(fused["QtW"][-1] == 0)           # an empty column gets nothing
        assert np.all(fused["W"] >= floor) and np.all(np.isfinite(fused["W"]))
        np.testing.assert_array_equal(fused["W"][-1], np.full(k, floor, dtype))   # an empty row: q Ht = 0
    # the loss is the engine's KL divergence at (W', Ht_next)
    step = e.kl_w_step(W, Ht, den, l2, floor, ("loss",), Ht_next=Ht_next)
    reference = SparseEngine(X)._kl(SparseEngine(X)._wh_at_nonzeros(step["W"], Ht_next), step["W"], Ht_next)
    assert step["loss"] == pytest.approx(reference, rel=rtol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_products_at_w_are_the_sums_a_step_makes(dtype):
    """kl_ratio (no Q Ht) and factor_col_sums reproduce a step's cached products bit for bit (resumes)."""
    rng = np.random.default_rng(1)
    X = sparse_data(300, 70, dtype, seed=1, density=0.1)
    W, Ht = rng.random((300, 5)).astype(dtype), rng.random((70, 5)).astype(dtype)
    e = SparseEngine(X)
    nxt = e.kl_w_step(W, Ht, Ht.sum(axis=0), 0.0, 0.0, ("QtW", "loss"))
    again = e.kl_ratio(nxt["W"], Ht, need=("QtW", "loss"))
    assert set(again) == {"QtW", "loss"}
    np.testing.assert_array_equal(again["QtW"], nxt["QtW"])
    assert again["loss"] == nxt["loss"] == e.kl_divergence(nxt["W"], Ht)
    np.testing.assert_array_equal(e.factor_col_sums(nxt["W"]), nxt["W_sum"])
    np.testing.assert_allclose(e.kl_ratio(W, Ht, need=("QHt", "QtW"))["QtW"], e.kl_ratio(W, Ht, need=("QtW",))["QtW"],
                               rtol=1e-12 if dtype == np.float64 else 2e-5)
    assert len(e._row_blocks(W)) - 1 == _kernels.ROW_BLOCKS


def test_result_does_not_depend_on_threads_or_block_count(monkeypatch):
    rng = np.random.default_rng(2)
    X = sparse_data(400, 60, seed=2, density=0.1)
    W, Ht = rng.random((400, 6)), rng.random((60, 6))
    e = SparseEngine(X)
    args = (W, Ht, Ht.sum(axis=0) + 0.5, 0.1, 1e-9, ("QtW", "loss"))
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = e.kl_w_step(*args)
    finally:
        numba.set_num_threads(threads)
    many = e.kl_w_step(*args)
    for key in one:
        np.testing.assert_array_equal(one[key], many[key])
    # partial XW over the memory cap: fewer blocks (here 3), the same step up to rounding
    monkeypatch.setattr(_kernels, "PARTIALS_MAX_BYTES", 3 * 60 * 6 * 8 + 1)
    monkeypatch.setattr(_kernels, "MIN_BLOCKS", 2)
    capped = SparseEngine(X)
    assert len(capped._row_blocks(W)) - 1 == 3
    fewer = capped.kl_w_step(*args)
    for key in one:
        np.testing.assert_allclose(fewer[key], one[key], rtol=1e-13, err_msg=key)
    np.testing.assert_array_equal(capped.factor_col_sums(fewer["W"]), fewer["W_sum"])


def test_row_blocks_keep_several_threads_while_the_partials_are_smaller_than_x(monkeypatch):
    monkeypatch.setattr(_kernels, "PARTIALS_MAX_BYTES", 1)          # every partial is over the cap
    n, k = 50, 4
    partial = n * k * 8
    many = np.arange(0, 1001, 10)                        # 100 rows, 1000 entries: 12 kB of X
    assert 1000 * 12 >= 4 * partial
    assert len(_kernels.row_blocks(many, n, k, 8)) - 1 == _kernels.MIN_BLOCKS
    few = np.arange(0, 101, 1)                           # 100 entries: 1.2 kB, less than one partial
    assert len(_kernels.row_blocks(few, n, k, 8)) - 1 == 1
    two = np.arange(0, 301, 3)                           # 300 entries: 3.6 kB, two partials' worth
    assert len(_kernels.row_blocks(two, n, k, 8)) - 1 == 2


def test_row_blocks_balance_the_stored_entries():
    indptr = np.concatenate([[0], np.cumsum([1000, 0, 0, 1, 1, 1, 998, 0])])
    bounds = _kernels.row_blocks(indptr, n=10, k=2, itemsize=8)
    assert bounds[0] == 0 and bounds[-1] == 8 and np.all(np.diff(bounds) >= 0)
    assert len(bounds) - 1 == 8                          # min(ROW_BLOCKS, m)
    block_of_row = np.searchsorted(bounds, np.arange(8), side="right") - 1
    assert block_of_row[0] != block_of_row[6]           # the two heavy rows go to different blocks
    assert np.sum(block_of_row == block_of_row[0]) == 1  # and the first has a block of its own


@pytest.mark.parametrize("solver", ["mu", "brunet"])
def test_sparse_fit_equals_the_dense_fit_and_never_densifies(solver, monkeypatch):
    X = planted_counts(120, 80, 4, seed=4)
    if solver == "mu":                                   # mu is safe on empty lines
        X = X.tolil()
        X[7], X[:, 11] = 0, 0
        X = sp.csr_matrix(X)
        X.eliminate_zeros()
    # a seeded random start: nndsvda may fill an empty column of H differently on the two engines
    options = dict(solver=solver, loss="kl", init="random", max_iter=50, tol=0, seed=5)
    dense = nmfkit.fit(X.toarray(), 4, **options)
    for cls in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix):
        monkeypatch.setattr(cls, "toarray", lambda *a, **k: pytest.fail("densified X"))
        monkeypatch.setattr(cls, "todense", lambda *a, **k: pytest.fail("densified X"))
    sparse = nmfkit.fit(X, 4, **options)
    assert sparse.n_iter == dense.n_iter == 50
    np.testing.assert_allclose(sparse.W, dense.W, rtol=1e-10, atol=0)
    np.testing.assert_allclose(sparse.H, dense.H, rtol=1e-10, atol=0)
    assert sparse.loss == pytest.approx(dense.loss, rel=1e-10)
    np.testing.assert_allclose(sparse.history["objective"], dense.history["objective"], rtol=1e-10)
