"""A sparse matrix with a broken structure (indices out of range or negative, indptr decreasing,
too short or too long) is refused with one line naming the first bad entry, by every entry point,
before SciPy's conversions or a Numba kernel read through it."""
import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nmfkit
from nmfkit.io import DataFileError, read_matrix
from nmfkit.validation import check_sparse_structure

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
DATA = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
INDICES = np.array([0, 3, 1, 4, 2], dtype=np.int32)
INDPTR = np.array([0, 2, 3, 5], dtype=np.int32)         # a valid 3×6 CSR (its transpose a valid CSC)

# (name, indices, indptr, message for CSR, message for CSC (the same arrays, rows and columns swapped))
BROKEN = [
    ("index out of range", [0, 3, 1, 12, 2], INDPTR,
     "column index 12 at entry 3 (row 2) is out of range for 6 columns",
     "row index 12 at entry 3 (column 2) is out of range for 6 rows"),
    ("negative index", [0, -3, 1, 4, 2], INDPTR,
     "column index -3 at entry 1 (row 0) is negative", "row index -3 at entry 1 (column 0) is negative"),
    ("decreasing indptr", INDICES, [0, 4, 3, 5],
     "indptr decreases at row 1 (indptr[1] = 4 > indptr[2] = 3)",
     "indptr decreases at column 1 (indptr[1] = 4 > indptr[2] = 3)"),
    ("indptr too short", INDICES, [0, 2, 5],
     "indptr has 3 entries; a CSR matrix with 3 rows needs 4",
     "indptr has 3 entries; a CSC matrix with 3 columns needs 4"),
    ("indptr past the data", INDICES, [0, 2, 3, 7],
     "indptr ends at 7, but there are only 5 stored indices and 5 values",
     "indptr ends at 7, but there are only 5 stored indices and 5 values"),
    ("indptr not starting at 0", INDICES, [1, 2, 3, 5],
     "indptr starts at 1; it must start at 0", "indptr starts at 1; it must start at 0"),
]
IDS = [case[0] for case in BROKEN]


def _broken(indices, indptr, fmt="csr"):
    """A matrix whose arrays are set after construction, as a corrupt file or careless code leaves them."""
    M = sp.csr_matrix((DATA, INDICES, INDPTR), shape=(3, 6))
    if fmt == "csc":
        M = sp.csc_matrix((DATA, INDICES, INDPTR), shape=(6, 3))
    M.indices = np.asarray(indices, dtype=np.int32)
    M.indptr = np.asarray(indptr, dtype=np.int32)
    return M


def _write_npz(path, indices, indptr, fmt="csr"):
    shape = (3, 6) if fmt == "csr" else (6, 3)
    np.savez(path, format=np.array(fmt.encode()), shape=np.array(shape), data=DATA,
             indices=np.asarray(indices, dtype=np.int32), indptr=np.asarray(indptr, dtype=np.int32))
    return str(path)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("case", BROKEN, ids=IDS)
def test_structure_check_names_the_first_bad_entry(case, fmt):
    _, indices, indptr, csr_message, csc_message = case
    A = _broken(indices, indptr, fmt)
    before = (A.indices.copy(), A.indptr.copy())
    with pytest.raises(ValueError, match="^X: " + re.escape(csr_message if fmt == "csr" else csc_message)) as info:
        check_sparse_structure(A, "X")
    assert "\n" not in str(info.value)
    assert np.array_equal(A.indices, before[0]) and np.array_equal(A.indptr, before[1])


def test_coo_and_bad_index_types_are_refused():
    C = sp.coo_matrix((DATA, (np.array([0, 0, 1, 2, 2]), INDICES)), shape=(3, 6))
    C.col = np.array([0, 3, 1, 4, 9], dtype=np.int32)
    with pytest.raises(ValueError, match="^X: column index 9 at entry 4 is out of range for 6 columns$"):
        check_sparse_structure(C, "X")
    C.col, C.row = INDICES.copy(), np.array([0, 0, -1, 2, 2])
    with pytest.raises(ValueError, match="^X: row index -1 at entry 2 is negative$"):
        check_sparse_structure(C, "X")
    A = _broken(INDICES, INDPTR)
    A.indices = INDICES.astype(np.float64)
    with pytest.raises(ValueError, match="^X: the column indices must be a 1-D integer array; got 1-D float64$"):
        check_sparse_structure(A, "X")


def test_every_valid_format_passes_and_csr_csc_coo_are_not_copied():
    dense = sp.csr_matrix((DATA, INDICES, INDPTR), shape=(3, 6)).toarray()
    for fmt in ("csr", "csc", "coo", "lil", "dok", "bsr", "dia"):
        A = sp.csr_matrix(dense).asformat(fmt)
        B = check_sparse_structure(A, "X")
        assert np.array_equal(B.toarray(), dense), fmt
        if fmt in ("csr", "csc", "coo"):
            assert B is A
    trailing = sp.csr_matrix((3, 6))       # SciPy allows arrays longer than indptr[-1]: still valid
    trailing.data, trailing.indices = np.append(DATA, 9.0), np.append(INDICES, 99).astype(np.int32)
    trailing.indptr = INDPTR.copy()
    assert check_sparse_structure(trailing, "X") is trailing
    pruned = sp.csr_matrix((DATA, INDICES, INDPTR), shape=(3, 6))
    a, b = nmfkit.fit(trailing, 2, max_iter=5, seed=0), nmfkit.fit(pruned, 2, max_iter=5, seed=0)
    np.testing.assert_allclose(a.W, b.W, rtol=1e-12)       # the same float64 operations on the same entries


def test_lil_with_mismatched_row_lists_is_refused():
    L = sp.lil_matrix((3, 6))
    L[0, 1] = 1.0
    L.data[0] = [1.0, 2.0]
    with pytest.raises(ValueError, match="^X: row 0 of the LIL matrix has 1 column indices but 2 values$"):
        check_sparse_structure(L, "X")


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("case", BROKEN[:3], ids=IDS[:3])
def test_read_matrix_refuses_a_broken_npz_naming_the_file(tmp_path, case, fmt):
    _, indices, indptr, csr_message, csc_message = case
    path = _write_npz(tmp_path / "bad.npz", indices, indptr, fmt)
    message = f"{path}: " + (csr_message if fmt == "csr" else csc_message)
    with pytest.raises(DataFileError, match=re.escape(message)) as info:
        read_matrix(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case", BROKEN[3:], ids=IDS[3:])
def test_read_matrix_refuses_what_scipy_refuses_naming_the_file(tmp_path, case):
    path = _write_npz(tmp_path / "bad.npz", case[1], case[2])     # SciPy's constructor refuses these itself
    with pytest.raises(DataFileError, match=f"^{re.escape(path)}: not a valid .npz matrix .*index pointer") as info:
        read_matrix(path)
    assert "\n" not in str(info.value)


# every solver with a Numba kernel on sparse data, with each loss it supports there
SOLVERS = [("mu", "frobenius"), ("mu", "kl"), ("hals", "frobenius"), ("ccd", "kl"), ("anls", "frobenius"),
           ("pgd", "frobenius"), ("sgd", "frobenius"), ("brunet", "kl"), ("lee", "frobenius")]


@pytest.mark.parametrize("solver, loss", SOLVERS)
@pytest.mark.parametrize("case", BROKEN, ids=IDS)
def test_fit_refuses_a_broken_matrix_before_any_kernel(case, solver, loss):
    _, indices, indptr, csr_message, _ = case
    with pytest.raises(ValueError, match="^X: " + re.escape(csr_message)):
        nmfkit.fit(_broken(indices, indptr), 2, solver=solver, loss=loss, max_iter=3)


@pytest.mark.parametrize("solver, loss", SOLVERS)
@pytest.mark.parametrize("case", BROKEN[:3], ids=IDS[:3])
def test_fit_refuses_a_broken_npz_loaded_with_scipy(tmp_path, case, solver, loss):
    """The reported crash: scipy.sparse.load_npz accepts these files; fit must refuse what it returns."""
    _, indices, indptr, csr_message, _ = case
    X = sp.load_npz(_write_npz(tmp_path / "bad.npz", indices, indptr))
    with pytest.raises(ValueError, match="^X: " + re.escape(csr_message)):
        nmfkit.fit(X, 2, solver=solver, loss=loss, max_iter=3)


def _entry_points():
    from nmfkit import r_api
    from nmfkit.anndata import project as anndata_project
    from nmfkit.sklearn import NMF

    good = sp.random(3, 6, density=0.8, random_state=0, format="csr") + sp.eye(3, 6)
    fitted = NMF(2, max_iter=5, random_state=0).fit(good.toarray())
    reference = types.SimpleNamespace(varm={"NMF": np.ones((6, 2))}, var_names=[f"g{j}" for j in range(6)], uns={})

    def query(X):
        return types.SimpleNamespace(X=X, layers={}, obsm={}, varm={}, uns={}, var_names=reference.var_names)
    return {
        "fit": lambda X: nmfkit.fit(X, 2, max_iter=3),
        "fit n_runs": lambda X: nmfkit.fit(X, 2, max_iter=3, n_runs=2, seed=0),
        "project": lambda X: nmfkit.project(np.ones((3, 2)), X, max_iter=3),
        "project basis": lambda X: nmfkit.project(X, np.ones((3, 6)), max_iter=3),
        "init W0": lambda X: nmfkit.fit(np.ones((6, 3)), 3, init=(X.T, np.ones((3, 3))), max_iter=3),
        "NMF.fit": lambda X: NMF(2, max_iter=3).fit(X),
        "NMF.transform": lambda X: fitted.transform(X),
        "NMF.inverse_transform": lambda X: NMF(6, max_iter=3).fit(np.ones((6, 6)) + np.eye(6)).inverse_transform(X),
        "r_api.nmf": lambda X: r_api.nmf(X, 2, "lee", seed=0, maxIter=3),
        "r_api.rss": lambda X: r_api.rss(r_api.nmfModel(W=np.ones((3, 2)), H=np.ones((2, 6))), X),
        "consensus": lambda X: nmfkit.consensus(X, 2, n_runs=2, n_jobs=1, progress=False, max_iter=3),
        "estimate_rank": lambda X: nmfkit.estimate_rank(X, [1, 2], n_runs=2, n_jobs=1, max_iter=3),
        "cross_validate_rank": lambda X: nmfkit.cross_validate_rank(X, [1, 2], n_splits=1, max_iter=3),
        "randomize": lambda X: r_api.randomize(X, seed=0),
        "heldout_error": lambda X: nmfkit.rank.heldout_error(X, np.ones((3, 2)), np.ones((2, 6)), np.eye(3, 6) == 0),
        "anndata.fit": lambda X: nmfkit.anndata.fit(query(X), 2, max_iter=3),
        "anndata.project": lambda X: anndata_project(query(X), reference),
    }


@pytest.mark.parametrize("entry", list(_entry_points()))
@pytest.mark.parametrize("case", BROKEN[:3], ids=IDS[:3])
def test_every_entry_point_refuses_a_broken_matrix(entry, case):
    pytest.importorskip("sklearn")
    _, indices, indptr, csr_message, _ = case
    X = _broken(indices, indptr)
    before = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    call = _entry_points()[entry]
    if entry == "init W0":           # W0 = Xᵀ, a CSC matrix: the message speaks of its rows
        message = case[4]
    else:
        message = csr_message
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        call(X)
    assert "\n" not in str(info.value)
    assert all(np.array_equal(a, b) for a, b in zip(before, (X.data, X.indices, X.indptr)))


@pytest.mark.parametrize("case", BROKEN[:3], ids=IDS[:3])
def test_cli_fit_on_a_broken_npz_exits_2_with_one_line(tmp_path, case):
    _, indices, indptr, csr_message, _ = case
    path = _write_npz(tmp_path / "bad.npz", indices, indptr)
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "nmfkit", "fit", path, "-k", "2", "-o", str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("nmfkit: error:")
    assert path in proc.stderr and csr_message in proc.stderr
    assert not (tmp_path / "out").exists()


def test_unsigned_indices_are_accepted_without_touching_the_caller(tmp_path):
    """SciPy's routines refuse unsigned index arrays; the check hands on int64 copies instead.
    (3×5: every row and column holds an entry, as R's brunet needs.)"""
    signed = sp.csr_matrix((DATA, INDICES, INDPTR), shape=(3, 5))
    A = sp.csr_matrix((3, 5))
    A.data, A.indices, A.indptr = DATA.copy(), INDICES.astype(np.uint32), INDPTR.astype(np.uint64)
    B = check_sparse_structure(A, "X")
    assert B.indices.dtype.kind == "i" and A.indices.dtype == np.uint32 and A.indptr.dtype == np.uint64
    for solver, loss in SOLVERS:
        a = nmfkit.fit(A, 2, solver=solver, loss=loss, max_iter=3, seed=0)
        np.testing.assert_array_equal(a.W, nmfkit.fit(signed, 2, solver=solver, loss=loss, max_iter=3, seed=0).W)
    path = tmp_path / "unsigned.npz"
    np.savez(path, format=np.array(b"csr"), shape=np.array((3, 5)), data=DATA, indices=INDICES.astype(np.uint32),
             indptr=INDPTR.astype(np.uint32))
    np.testing.assert_array_equal(read_matrix(path).X.toarray(), signed.toarray())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_check_agrees_with_scipys_full_check(data):
    """On random index arrays the check accepts exactly the structures SciPy's own full check
    accepts (and also refuses a decreasing indptr that SciPy lets through when nothing is stored);
    what it accepts, a kernel can read."""
    m, n = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    nnz = data.draw(st.integers(0, 8))
    indices = np.array(data.draw(st.lists(st.integers(-3, n + 2), min_size=nnz, max_size=nnz)), dtype=np.int32)
    indptr = np.array(data.draw(st.lists(st.integers(-1, nnz + 2), min_size=m + 1, max_size=m + 1)), dtype=np.int32)
    A = sp.csr_matrix((m, n))
    A.data, A.indices, A.indptr = np.ones(nnz), indices, indptr
    try:
        check_sparse_structure(A, "X")
        ours = None
    except ValueError as exc:
        ours = str(exc)
        assert ours.startswith("X: ") and "\n" not in ours
    B = sp.csr_matrix((m, n))
    B.data, B.indices, B.indptr = np.ones(nnz), indices.copy(), indptr.copy()
    try:
        B.check_format(full_check=True)
        scipy_ok = True
    except ValueError:
        scipy_ok = False
    if ours is None:
        assert scipy_ok
        if indptr[-1] > 0:                  # something stored: the Numba kernels read it
            assert np.isfinite(nmfkit.fit(A, 1, solver="hals", max_iter=2).loss)
    else:
        assert not scipy_ok or np.any(np.diff(indptr) < 0)


def test_read_matrix_refuses_a_broken_h5ad_naming_the_file(tmp_path):
    anndata = pytest.importorskip("anndata")
    h5py = pytest.importorskip("h5py")
    path = str(tmp_path / "bad.h5ad")
    anndata.AnnData(sp.csr_matrix((DATA, INDICES, INDPTR), shape=(3, 6))).write_h5ad(path)
    with h5py.File(path, "r+") as f:
        f["X/indices"][3] = 40
    with pytest.raises(DataFileError, match=re.escape(f"{path}: column index 40 at entry 3 (row 2) is out of range "
                                                      "for 6 columns")):
        read_matrix(path)


TENSOR_CASES = [(case, layout) for case in BROKEN[:3] for layout in ("csr", "csc", "coo")
                if not (layout == "coo" and case[0] == "decreasing indptr")]      # COO has no indptr


@pytest.mark.parametrize("case, layout", TENSOR_CASES, ids=[f"{c[0]}-{lay}" for c, lay in TENSOR_CASES])
def test_fit_refuses_a_broken_sparse_tensor(case, layout):
    """torch does not check a sparse tensor's indices unless asked; nmfkit checks them before any kernel."""
    torch = pytest.importorskip("torch")
    _, indices, indptr, csr_message, csc_message = case
    values = torch.tensor(DATA)
    col, ptr = torch.tensor(np.asarray(indices, dtype=np.int64)), torch.tensor(np.asarray(indptr, dtype=np.int64))
    if layout == "csr":
        X, message = torch.sparse_csr_tensor(ptr, col, values, size=(3, 6)), csr_message
    elif layout == "csc":
        X, message = torch.sparse_csc_tensor(ptr, col, values, size=(6, 3)), csc_message
    else:
        rows = torch.tensor([0, 0, 1, 2, 2])
        X = torch.sparse_coo_tensor(torch.stack([rows, col]), values, size=(3, 6))
        message = csr_message.split(" (row")[0]
    with pytest.raises(ValueError, match="^X: " + re.escape(message)):
        nmfkit.fit(X, 2, max_iter=3)


def _dia(change):
    A = sp.dia_matrix(np.eye(4) + 1.0)           # 7 diagonals
    change(A)
    return A


@pytest.mark.parametrize("A, message", [
    (_dia(lambda A: setattr(A, "data", A.data[:1])),          # SciPy's conversion corrupts the heap on this
     r"a DIA matrix with 7 diagonal offsets holds values of shape \(1, 4\); it needs one row of values per offset"),
    (_dia(lambda A: setattr(A, "offsets", np.zeros(7, dtype=np.int32))),
     "the DIA matrix's diagonal offsets repeat a value; each must be distinct"),
    (_dia(lambda A: setattr(A, "offsets", np.zeros(7))), "the diagonal offsets must be a 1-D integer array"),
], ids=["too few rows of values", "repeated offsets", "float offsets"])
def test_broken_dia_is_refused_before_conversion(A, message):
    with pytest.raises(ValueError, match="^X: " + message):
        nmfkit.fit(A, 1, max_iter=3)


def test_broken_dok_and_bsr_are_refused():
    D = sp.dok_matrix((3, 4))
    D[0, 1] = 1.0
    dict.__setitem__(D._dict if hasattr(D, "_dict") else D, (5, 1), 3.0)
    with pytest.raises(ValueError, match="^X: not a valid DOK sparse matrix .*index 5"):
        nmfkit.fit(D, 1)
    B = sp.bsr_matrix(np.ones((4, 4)), blocksize=(2, 2))
    B.indices = B.indices.copy()
    B.indices[1] = 7
    with pytest.raises(ValueError, match=r"^X: block column index 7 at entry 1 \(block row 0\) is out of range for "
                                         "2 block columns$"):
        nmfkit.fit(B, 1)
