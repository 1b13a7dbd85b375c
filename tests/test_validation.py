"""Malformed input gets a clear ValueError/TypeError naming the problem, before any work."""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nmfkit

GOOD = np.random.default_rng(0).random((6, 5))


@pytest.mark.parametrize("X, match", [
    (np.array([[1.0, -2.0], [3.0, 4.0]]), r"1 negative entries; the first is X\[0, 1\] = -2"),
    (np.array([[1.0, np.nan], [3.0, 4.0]]), r"1 NaN entries; the first is at \(0, 1\).*missing='mask'"),
    (np.array([[1.0, 2.0], [np.inf, 4.0]]), r"1 infinite entries; the first is at \(1, 0\)"),
    (np.zeros((3, 3)), "all zeros"),
    (np.ones(5), "must be 2-D.*1-D array of length 5"),
    (np.ones((2, 2, 2)), "3 dimensions"),
    (np.ones((0, 4)), r"empty \(shape 0×4\)"),
    (sp.csr_matrix(np.array([[0.0, -1.0], [2.0, 0.0]])), r"negative entries; the first is X\[0, 1\]"),
])
def test_bad_matrices(X, match):
    with pytest.raises(ValueError, match=match):
        nmfkit.fit(X, 1)


@pytest.mark.parametrize("X, match", [
    (np.array([["a", "b"], ["c", "d"]]), "non-numeric dtype"),
    (np.array([[1 + 1j, 2], [3, 4]]), "complex"),
    ([[1.0, 2.0], [3.0]], "2-D numeric matrix"),
])
def test_bad_types(X, match):
    with pytest.raises(TypeError, match=match):
        nmfkit.fit(X, 1)


@pytest.mark.parametrize("rank, exc, match", [
    (0, ValueError, "at least 1"), (7, ValueError, "too large for a 6×5 matrix.*at most min\\(m, n\\) = 5"),
    (2.5, TypeError, "integer"), (True, TypeError, "integer"), ("3", TypeError, "integer"),
])
def test_bad_rank(rank, exc, match):
    with pytest.raises(exc, match=match):
        nmfkit.fit(GOOD, rank)


@pytest.mark.parametrize("kwargs, match", [
    ({"solver": "magic"}, "unknown solver 'magic'; choose one of: .*mu"),
    ({"loss": "hinge"}, "unknown loss 'hinge'; choose one of: frobenius, is, kl"),
    ({"init": "svd"}, "unknown init 'svd'; choose one of: .*nndsvda"),
    ({"max_iter": 0}, "max_iter must be an integer ≥ 1"),
    ({"tol": -1}, "tol must be a finite number ≥ 0"),
    ({"n_runs": 3, "init": "nndsvd"}, "needs a random init"),
    ({"alpha_W": -1}, "alpha_W must be"),
    ({"l1_ratio": 2.0}, r"l1_ratio must be in \[0, 1\]"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nmfkit.fit(GOOD, 2, **kwargs)


def test_unknown_solver_option_is_named():
    with pytest.raises(TypeError, match="unknown options: bogus"):
        nmfkit.fit(GOOD, 2, solver="mu", bogus=1)


def test_bad_given_factors():
    W0, H0 = np.ones((6, 2)), np.ones((2, 5))
    with pytest.raises(ValueError, match="W0 has shape 5×2; expected 6×2"):
        nmfkit.fit(GOOD, 2, init=(np.ones((5, 2)), H0))
    with pytest.raises(ValueError, match="H0 has shape 2×4; expected 2×5"):
        nmfkit.fit(GOOD, 2, init=(W0, np.ones((2, 4))))
    with pytest.raises(ValueError, match=r"W0 has 1 negative entries; the first is W0\[1, 0\]"):
        bad = W0.copy()
        bad[1, 0] = -1
        nmfkit.fit(GOOD, 2, init=(bad, H0))
    with pytest.raises(TypeError, match="pair"):
        nmfkit.fit(GOOD, 2, init=(W0,))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(X=hnp.arrays(dtype=st.sampled_from([np.float64, np.float32]),
                    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
                    elements=st.one_of(st.floats(-10, 10, width=32), st.just(np.nan), st.just(np.inf)) ),
       rank=st.integers(-1, 8))
def test_malformed_inputs_fail_clearly_or_fit_cleanly(X, rank):
    """Any input either fits with finite non-negative factors or raises a clear error."""
    try:
        res = nmfkit.fit(X, rank, solver="mu", max_iter=20)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        assert msg and not msg.startswith("operands could not") and "Traceback" not in msg
        return
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H))
    assert res.W.min() >= 0 and res.H.min() >= 0


# -- masked arrays, DataFrame columns, all-missing data ---------------------------------------------
def _masked():
    hidden = np.zeros(GOOD.shape, dtype=bool)
    hidden[1, 2] = hidden[4, 0] = True
    return np.ma.masked_array(GOOD, mask=hidden)


def test_masked_array_is_refused_without_missing_mask():
    with pytest.raises(ValueError, match=r"^X has 2 masked entries \(a NumPy masked array\); the first is at "
                                         r"\(1, 2\)\. Pass missing='mask'.*X\.filled\(value\)$"):
        nmfkit.fit(_masked(), 2)


def test_masked_entries_are_missing_values_with_missing_mask():
    """Masked entries are left out of the loss exactly as NaN entries are (the same float64 fit)."""
    X = _masked()
    with_nan = GOOD.copy()
    with_nan[X.mask] = np.nan
    a = nmfkit.fit(X, 2, solver="mu", missing="mask", seed=0, max_iter=50)
    b = nmfkit.fit(with_nan, 2, solver="mu", missing="mask", seed=0, max_iter=50)
    assert a.options["n_missing"] == 2
    np.testing.assert_array_equal(a.W, b.W)
    c = nmfkit.fit(np.ma.masked_array(GOOD, mask=False), 2, solver="mu", seed=0, max_iter=50)   # nothing masked
    np.testing.assert_array_equal(c.W, nmfkit.fit(GOOD, 2, solver="mu", seed=0, max_iter=50).W)


def test_masked_array_refused_by_entry_points_without_missing_entries():
    with pytest.raises(ValueError, match="X_new has 2 masked entries"):
        nmfkit.project(np.ones((6, 2)), _masked())
    pytest.importorskip("sklearn")
    with pytest.raises(ValueError, match=r"X has 2 masked entries.*nmfkit\.NMF has no missing entries"):
        nmfkit.NMF(2).fit(_masked())


def test_dataframe_text_column_is_named():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(GOOD[:, :3], columns=["a", "b", "c"], index=[f"s{i}" for i in range(6)])
    df.insert(1, "label", ["x", "y", "z", "x", "y", "z"])
    with pytest.raises(TypeError, match=r"^X column 'label' is not numeric \(dtype object, e\.g\. 'x' in row 's0'\); "
                                        "NMF needs numbers: drop the column or make it the index$"):
        nmfkit.fit(df, 2)


def test_dataframe_nullable_column_with_na_is_named_and_allowed_with_missing_mask():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(GOOD, columns=list("abcde"), index=[f"s{i}" for i in range(6)])
    df["c"] = pd.array([1, 2, None, 4, None, 6], dtype="Int64")
    with pytest.raises(ValueError, match=r"^X column 'c' holds 2 missing values \(NA\); the first is in row 's2'\. "
                                         "Pass missing='mask'"):
        nmfkit.fit(df, 2)
    result = nmfkit.fit(df, 2, solver="mu", missing="mask", seed=0, max_iter=20)
    assert result.options["n_missing"] == 2 and result.row_names[2] == "s2" and result.col_names[2] == "c"
    full = df.assign(c=pd.array([1, 2, 3, 4, 5, 6], dtype="Int64"))      # NA-free nullable ints: plain numbers
    assert nmfkit.fit(full, 2, max_iter=5).W.dtype == np.float64


@pytest.mark.parametrize("X", [np.full((4, 3), np.nan), np.ma.masked_all((4, 3))], ids=["all NaN", "all masked"])
def test_all_missing_says_every_entry_is_missing(X):
    with pytest.raises(ValueError, match="^X: every entry is missing \\(NaN\\); there is nothing to factorize$"):
        nmfkit.fit(X, 1, missing="mask")


def test_dataframe_extension_columns_become_numbers():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"sparse": pd.arrays.SparseArray([0.0, 1.0, 0.0, 2.0]),
                       "flag": pd.array([True, False, True, True], dtype="boolean"),
                       "count": pd.array([1, 2, 3, 4], dtype="Int64")})
    from nmfkit.validation import check_matrix
    np.testing.assert_array_equal(check_matrix(df), [[0, 1, 1], [1, 0, 2], [0, 1, 3], [2, 1, 4]])
    with pytest.raises(TypeError, match=r"^X column 'when' is not numeric \(dtype datetime64"):
        check_matrix(df.assign(when=pd.date_range("2020-01-01", periods=4)))


def test_dense_values_are_checked_in_blocks_with_exact_positions_and_counts(monkeypatch, tmp_path):
    """Dense data is scanned a block of rows at a time (a memmap stays a memmap, never copied whole):
    counts are totals over all blocks and the first offender is located in row-major order."""
    from nmfkit import validation
    from nmfkit.validation import check_matrix
    monkeypatch.setattr(validation, "CHECK_BLOCK_ENTRIES", 12)        # 2 rows of 6 per block
    X = np.ones((9, 6))
    X[5, 4], X[7, 1] = -2.0, -3.0
    with pytest.raises(ValueError, match=r"2 negative entries; the first is X\[5, 4\] = -2"):
        check_matrix(X)
    X[5, 4], X[7, 1] = 1.0, 1.0
    X[8, 0], X[3, 2], X[6, 5] = np.nan, np.inf, np.nan
    with pytest.raises(ValueError, match=r"2 NaN, 1 infinite entries; the first is at \(3, 2\)"):
        check_matrix(X)
    np.save(tmp_path / "x.npy", np.ones((9, 6)))
    M = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert check_matrix(M) is M
    np.save(tmp_path / "z.npy", np.zeros((9, 6)))
    with pytest.raises(ValueError, match="all zeros"):
        check_matrix(np.load(tmp_path / "z.npy", mmap_mode="r"))
    with pytest.raises(ValueError, match="every entry is missing"):
        check_matrix(np.full((9, 6), np.nan), allow_nan=True)


def test_dense_check_holds_only_a_block_of_flags_at_once(monkeypatch):
    import tracemalloc

    from nmfkit import validation
    from nmfkit.validation import check_matrix
    monkeypatch.setattr(validation, "CHECK_BLOCK_ENTRIES", 1 << 16)
    X = np.ones((2048, 1024))                       # 2 Mi entries: one whole-matrix flag array is 2 MiB
    tracemalloc.start()
    try:
        check_matrix(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < (1 << 20), peak                   # a few 64 Ki-entry blocks of flags, not m·n of them
