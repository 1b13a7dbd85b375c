"""nmfkit.io: every format round-trips values and labels; every bad file gets a one-line message."""
import gzip
import os
import pickle
import re
import subprocess
import sys
from io import BytesIO

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nmfkit.io as nio
from nmfkit.io import DataFileError, LabeledMatrix, read_matrix, write_matrix

ROWS = ["gene A", "g,2", "g3", "g4"]          # a space and a delimiter inside a label: quoting must work
COLS = ["s1", "s2", "s 3"]


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    A = rng.random((4, 3))
    A[1, 2] = 0.0
    A[0, 0] = 0.1          # 0.1 is not exact in binary: the text must keep every digit
    A[3, 1] = 1e-300
    return A


def _dense(M):
    return M.toarray() if sp.issparse(M) else M


@pytest.mark.parametrize("name", ["x.csv", "x.tsv", "x.txt", "x.csv.gz", "x.tsv.gz", "x.npz"])
@pytest.mark.parametrize("labels", ["both", "rows", "columns", "none"])
def test_text_and_npz_round_trip_values_and_labels(tmp_path, X, name, labels):
    rows = ROWS if labels in ("both", "rows") else None
    cols = COLS if labels in ("both", "columns") else None
    path = write_matrix(tmp_path / name, X, rows, cols)
    lm = read_matrix(path)
    assert isinstance(lm, LabeledMatrix) and lm.path == os.fspath(path)
    np.testing.assert_array_equal(_dense(lm.X), X)          # bit-exact
    assert lm.row_names == rows and lm.col_names == cols


def test_sparse_npz_round_trip_keeps_csr_and_labels(tmp_path, X):
    S = sp.csr_matrix(X)
    path = write_matrix(tmp_path / "x.npz", S, ROWS, COLS)
    lm = read_matrix(path)
    assert sp.issparse(lm.X) and lm.X.format == "csr" and lm.X.nnz == S.nnz
    np.testing.assert_array_equal(lm.X.toarray(), X)
    assert (lm.row_names, lm.col_names) == (ROWS, COLS)
    # the file is still a plain SciPy sparse file
    np.testing.assert_array_equal(sp.load_npz(path).toarray(), X)


def test_scipy_save_npz_and_plain_npz_are_read(tmp_path, X):
    sp.save_npz(tmp_path / "s.npz", sp.csc_matrix(X))
    lm = read_matrix(tmp_path / "s.npz")
    assert lm.X.format == "csr" and lm.row_names is None
    np.testing.assert_array_equal(lm.X.toarray(), X)
    np.savez(tmp_path / "one.npz", counts=X.astype(np.float32))
    lm = read_matrix(tmp_path / "one.npz")
    assert lm.X.dtype == np.float32
    np.testing.assert_array_equal(lm.X, X.astype(np.float32))


@pytest.mark.parametrize("name", ["x.mtx", "x.mtx.gz"])
def test_matrix_market_round_trip_is_sparse(tmp_path, X, name):
    path = write_matrix(tmp_path / name, sp.csr_matrix(X))
    lm = read_matrix(path)
    assert sp.issparse(lm.X) and lm.X.format == "csr"
    np.testing.assert_allclose(lm.X.toarray(), X, rtol=1e-15)


def test_npy_round_trip_keeps_dtype(tmp_path, X):
    path = write_matrix(tmp_path / "x.npy", X.astype(np.float32))
    lm = read_matrix(path)
    assert lm.X.dtype == np.float32 and lm.row_names is None
    np.testing.assert_array_equal(lm.X, X.astype(np.float32))


def test_r_write_table_header_has_one_field_fewer(tmp_path):
    (tmp_path / "r.tsv").write_text('"s1"\t"s2"\n"g1"\t1\t2\n"g2"\t3\t4\n')
    lm = read_matrix(tmp_path / "r.tsv")
    assert lm.row_names == ["g1", "g2"] and lm.col_names == ["s1", "s2"]
    np.testing.assert_array_equal(lm.X, [[1, 2], [3, 4]])


def test_pandas_style_numeric_names_with_empty_corner(tmp_path):
    (tmp_path / "p.csv").write_text(",0,1\n0,1.5,2\n1,3,4\n")
    lm = read_matrix(tmp_path / "p.csv")
    assert lm.row_names == ["0", "1"] and lm.col_names == ["0", "1"]
    np.testing.assert_array_equal(lm.X, [[1.5, 2], [3, 4]])


def test_detection_rules_and_override(tmp_path):
    (tmp_path / "a.csv").write_text("1,2\n3,4\n")
    assert read_matrix(tmp_path / "a.csv").col_names is None
    (tmp_path / "b.csv").write_text("g1,1,2\ng2,3,4\n")             # labels, no header
    lm = read_matrix(tmp_path / "b.csv")
    assert lm.row_names == ["g1", "g2"] and lm.col_names is None
    (tmp_path / "c.csv").write_text("value\n1\n2\n")               # one named column
    lm = read_matrix(tmp_path / "c.csv")
    assert lm.col_names == ["value"] and lm.X.shape == (2, 1)
    (tmp_path / "d.csv").write_text("id,10,20\ng1,1,2\n")          # numeric names: ambiguous ...
    assert read_matrix(tmp_path / "d.csv").X.shape == (2, 2)       # ... read as data by default
    lm = read_matrix(tmp_path / "d.csv", labels="both")
    assert lm.col_names == ["10", "20"] and lm.row_names == ["g1"]


def test_delimiter_sniffed_from_content_bom_and_blank_lines(tmp_path):
    (tmp_path / "semi.csv").write_text("\ufeffx;y\n\n1;2\n3;4\n\n")
    lm = read_matrix(tmp_path / "semi.csv")
    assert lm.col_names == ["x", "y"] and lm.X.shape == (2, 2)
    (tmp_path / "data.dat").write_text("a\tb\n1\t2\n")             # unknown extension: content decides
    assert read_matrix(tmp_path / "data.dat").col_names == ["a", "b"]
    (tmp_path / "ws.txt").write_text("1  2 3\n 4 5   6\n")
    np.testing.assert_array_equal(read_matrix(tmp_path / "ws.txt").X, [[1, 2, 3], [4, 5, 6]])


def test_binary_content_sniffed_without_extension(tmp_path, X):
    np.save(tmp_path / "x.npy", X)
    os.rename(tmp_path / "x.npy", tmp_path / "matrix.bin")
    np.testing.assert_array_equal(read_matrix(tmp_path / "matrix.bin").X, X)
    scipy.io.mmwrite(tmp_path / "m.mtx", sp.coo_matrix(X))
    os.rename(tmp_path / "m.mtx", tmp_path / "m.data")
    assert sp.issparse(read_matrix(tmp_path / "m.data").X)


def test_missing_values_allowed_on_request(tmp_path):
    (tmp_path / "m.csv").write_text("a,b\n1,\nNA,2\n")
    lm = read_matrix(tmp_path / "m.csv", allow_missing=True)
    assert np.isnan(lm.X[0, 1]) and np.isnan(lm.X[1, 0]) and lm.X[1, 1] == 2


def test_transpose_swaps_labels(tmp_path, X):
    lm = LabeledMatrix(X, ROWS, COLS, "x").transpose()
    assert lm.shape == (3, 4) and lm.row_names == COLS and lm.col_names == ROWS
    assert sp.issparse(LabeledMatrix(sp.csr_matrix(X), None, None, "x").transpose().X)


# -- bad files: one line naming file, line and problem ---------------------------------------------
def _error(path, **kw):
    with pytest.raises(DataFileError) as info:
        read_matrix(path, **kw)
    msg = str(info.value)
    prefix = os.fspath(path) + ": "
    assert "\n" not in msg and msg.startswith(prefix), msg
    return msg[len(prefix):]          # the problem, without the path (tmp paths hold the test name)


TEXT_CASES = {
    "ragged": ("a,b,c,d,e\n1,2,3,4,5\n1,2,3,4,5\n" + "1,2,3,4,5\n" * 3 + "1,2,3,4\n",
               "line 7 has 4 fields, expected 5"),
    "not_a_number": ("A,B\n1,2\n3,abc\n", r"line 3, column 'B': 'abc' is not a number"),
    "not_a_number_no_header": ("1,2\n3,x4\n", r"line 2, column 2: 'x4' is not a number"),
    "after_label": ("g,A,B\nr1,1,2\nr2,3,1e\n", r"line 3, column 'B': '1e' is not a number"),
    "negative": ("A,B\n1,2\n3,-4.5\n-1,0\n",
                 r"line 3, column 'B': negative value -4.5 \(2 such entries in all\); NMF needs non-negative"),
    "empty_cell": ("A,B\n1,2\n3,\n", r"line 3, column 'B' is empty: missing values are not supported"),
    "na_cell": ("A,B\nNA,2\n", r"line 2, column 'A' is 'NA': missing values"),
    "nan_value": ("A,B\n1,nan\n", r"line 2, column 'B': missing value nan; missing values are not supported"),
    "infinite": ("A,B\n1,inf\n", r"line 2, column 'B': infinite value inf"),
    "header_only": ("A,B,C\n", r"has only a header line \(line 1\) and no data rows"),
    "blank_lines_only": ("\n\n  \n", r"file is empty \(no data rows\)"),
    "header_mismatch": ("A,B,C\n1,2\n", r"line 1 \(header\) has 3 fields, but the data rows have 2"),
    "label_only": ("g1\ng2\n", "no numeric columns"),
}


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
def test_bad_text_files_give_one_clear_line(tmp_path, case):
    text, pattern = TEXT_CASES[case]
    path = tmp_path / f"{case}.csv"
    path.write_text(text)
    message = _error(path)
    assert re.search(pattern, message), message


def test_bad_line_numbers_count_physical_lines_in_gzip(tmp_path):
    with gzip.open(tmp_path / "x.csv.gz", "wt") as fh:
        fh.write('A,B\n"multi\nline",1\n2,oops\n')
    assert "line 4, column 'B': 'oops' is not a number" in _error(tmp_path / "x.csv.gz")


def test_missing_empty_directory_and_unknown(tmp_path):
    assert "no such file" in _error(tmp_path / "nope.csv")
    assert "is a directory" in _error(tmp_path)
    (tmp_path / "e.csv").write_bytes(b"")
    assert "file is empty" in _error(tmp_path / "e.csv")
    (tmp_path / "junk.bin").write_bytes(bytes(range(256)) * 4)
    assert "unknown file format" in _error(tmp_path / "junk.bin")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x01" * 50)
    assert "not UTF-8 text" in _error(tmp_path / "bin.csv")
    with gzip.open(tmp_path / "x.npy.gz", "wb") as fh:
        np.save(fh, np.ones((2, 2)))
    assert "gzip-compressed .npy files are not supported" in _error(tmp_path / "x.npy.gz")
    (tmp_path / "bad.csv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert "cannot read the file" in _error(tmp_path / "bad.csv.gz")


class _Trap:
    """Unpickling this object would create a file: proof that nothing is ever unpickled."""
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickled_payloads_are_refused_and_never_run(tmp_path):
    trap = os.fspath(tmp_path / "UNPICKLED")
    np.save(tmp_path / "obj.npy", np.array([[_Trap(trap)]], dtype=object), allow_pickle=True)
    assert "never unpickles" in _error(tmp_path / "obj.npy")
    np.savez(tmp_path / "obj.npz", X=np.array([[_Trap(trap)]], dtype=object))
    assert "never unpickles" in _error(tmp_path / "obj.npz")
    with open(tmp_path / "raw.npy", "wb") as fh:
        pickle.dump(_Trap(trap), fh)
    assert "holds a pickle, and nmfkit never unpickles" in _error(tmp_path / "raw.npy")
    assert not os.path.exists(trap)


def test_bad_binary_contents(tmp_path):
    np.save(tmp_path / "v.npy", np.arange(5.0))
    assert "holds a 1-D array of shape (5,); expected a 2-D matrix" in _error(tmp_path / "v.npy")
    np.save(tmp_path / "s.npy", np.array([["a", "b"]]))
    assert "expected numbers" in _error(tmp_path / "s.npy")
    np.savez(tmp_path / "two.npz", a=np.ones((2, 2)), b=np.ones((2, 2)))
    assert "holds 2 arrays (a, b)" in _error(tmp_path / "two.npz")
    np.savez(tmp_path / "names.npz", X=np.ones((2, 2)), row_names=np.array(["a", "b", "c"]))
    assert "3 row names for 2 rows" in _error(tmp_path / "names.npz")
    (tmp_path / "t.npy").write_text("1,2\n3,4\n")
    assert "not a valid NumPy file" in _error(tmp_path / "t.npy")
    (tmp_path / "bad.mtx").write_text("%%MatrixMarket matrix coordinate real general\n2 2 1\n1 x 3\n")
    assert "not a valid Matrix Market file" in _error(tmp_path / "bad.mtx")


def test_negative_entries_located_in_binary_formats(tmp_path):
    A = np.ones((3, 4))
    A[2, 1] = -2
    np.save(tmp_path / "n.npy", A)
    assert "entry [2, 1]: negative value -2; NMF needs non-negative" in _error(tmp_path / "n.npy")
    scipy.io.mmwrite(tmp_path / "n.mtx", sp.coo_matrix(A))
    assert "entry [3, 2] (1-based, as in the file): negative value -2" in _error(tmp_path / "n.mtx")
    sp.save_npz(tmp_path / "n.npz", sp.csr_matrix(A))
    assert "entry [2, 1]: negative value" in _error(tmp_path / "n.npz")
    assert read_matrix(tmp_path / "n.npy", allow_negative=True).X[2, 1] == -2


def test_h5ad_needs_anndata_or_reads_labels(tmp_path):
    try:
        import anndata
    except ImportError:
        (tmp_path / "x.h5ad").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
        assert "pip install nmfkit[anndata]" in _error(tmp_path / "x.h5ad")
        return
    ad = anndata.AnnData(X=np.ones((3, 2)))
    ad.obs_names, ad.var_names = ["c1", "c2", "c3"], ["g1", "g2"]
    ad.write_h5ad(tmp_path / "x.h5ad")
    lm = read_matrix(tmp_path / "x.h5ad")
    assert lm.row_names == ["c1", "c2", "c3"] and lm.col_names == ["g1", "g2"]


def test_write_errors(tmp_path, X):
    with pytest.raises(ValueError, match="3 row names for a matrix with 4 rows"):
        write_matrix(tmp_path / "x.csv", X, ["a", "b", "c"])
    with pytest.raises(ValueError, match="cannot write this format"):
        write_matrix(tmp_path / "x.xlsx", X)
    with pytest.raises(ValueError, match="unknown labels mode"):
        read_matrix(tmp_path / "x.csv", labels="yes")


def test_parquet_roundtrip_with_labels(tmp_path):
    pytest.importorskip("pyarrow")
    X = np.random.default_rng(0).random((5, 3))
    path = write_matrix(tmp_path / "m.parquet", X, ["a", "b", "c", "d", "e"], ["x", "y", "z"])
    back = read_matrix(path)
    np.testing.assert_array_equal(back.X, X)
    assert back.row_names == ["a", "b", "c", "d", "e"] and back.col_names == ["x", "y", "z"]


def test_parquet_bad_files(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"name": ["a", "b"], "v": [1.0, -2.0]}), tmp_path / "neg.parquet")
    with pytest.raises(DataFileError, match="negative"):
        read_matrix(tmp_path / "neg.parquet")
    pq.write_table(pa.table({"name": ["a", "b"], "other": ["x", "y"], "v": [1.0, 2.0]}), tmp_path / "txt.parquet")
    with pytest.raises(DataFileError, match="column 'other' is string, not a number"):
        read_matrix(tmp_path / "txt.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataFileError, match="not a valid Parquet file"):
        read_matrix(tmp_path / "junk.parquet")


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, monkeypatch):
    (tmp_path / "m.parquet").write_bytes(b"PAR1xxxx")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(DataFileError, match=r"pip install nmfkit\[parquet\]"):
        read_matrix(tmp_path / "m.parquet")


def _gz_csv(tmp_path, name="x.csv.gz"):
    X = np.random.default_rng(1).random((200, 6))
    return write_matrix(tmp_path / name, X)


def test_a_corrupted_gzip_body_is_one_line(tmp_path):
    path = _gz_csv(tmp_path)
    data = bytearray(open(path, "rb").read())
    for p in range(40, len(data) - 20, 7):          # damage the deflate stream, not the header
        data[p] ^= 0x5A
    open(path, "wb").write(bytes(data))
    assert _error(path).startswith("cannot read the file (damaged or truncated")


@pytest.mark.parametrize("name", ["x.csv.gz", "x.data"])      # by extension, and sniffed from the bytes
def test_a_truncated_gzip_is_one_line(tmp_path, name):
    path = _gz_csv(tmp_path, "x.csv.gz")
    data = open(path, "rb").read()
    target = tmp_path / name
    target.write_bytes(data[: len(data) // 2])
    msg = _error(target)                         # _error checks: one line, starting with the file name
    assert "damaged or truncated" in msg or "not a valid gzip" in msg


def test_a_damaged_gzip_header_is_one_line(tmp_path):
    data = bytearray(open(_gz_csv(tmp_path), "rb").read())
    data[3] = 0xFF                                   # reserved flag bits set: not a valid gzip header
    for name in ("x.csv.gz", "x.data"):
        (tmp_path / name).write_bytes(bytes(data))
        assert _error(tmp_path / name)


@pytest.fixture
def small_machine(monkeypatch):
    from nmfkit import validation
    monkeypatch.setattr(validation, "physical_memory", lambda: 4 * 2**30)


@pytest.mark.parametrize("header, message", [
    ("coordinate real general\n1000000000 1000000000 3",
     "declares a 1000000000×1000000000 matrix with 3 entries, which would need about 7.5 GiB, more than this "
     "machine's 4.0 GiB of memory"),
    ("coordinate real general\n1000000000 1000000000 1000000000",
     "declares a 1000000000×1000000000 matrix with 1000000000 entries, more than the file's"),
    ("coordinate real general\n3 3 10", "the header declares 10 entries for a 3×3 matrix"),
    ("array real general\n1000000000 1000000000", "declares a 1000000000×1000000000 matrix with "
     "1000000000000000000 entries, more than the file's"),
])
def test_matrix_market_header_sizes_are_checked_before_allocating(tmp_path, small_machine, header, message):
    path = tmp_path / "huge.mtx"
    path.write_text(f"%%MatrixMarket matrix {header}\n1 1 1.0\n2 2 2.0\n3 3 3.0\n")
    assert message in _error(path)


def test_matrix_market_gz_header_is_checked_against_memory(tmp_path, small_machine):
    path = tmp_path / "huge.mtx.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("%%MatrixMarket matrix coordinate real general\n% a comment\n1000000000 1000000000 3\n1 1 1\n")
    assert "would need about 7.5 GiB" in _error(path)


def test_a_decreasing_indptr_names_the_file(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, data=np.array([1.0, 2.0, 3.0]), indices=np.array([0, 1, 0], dtype=np.int32),
             indptr=np.array([0, 2, 1, 3], dtype=np.int32), format=np.array(b"csr"), shape=np.array([3, 2]))
    assert "indptr" in _error(path)


MTX_CRASHES = {   # each crashed SciPy's Matrix Market parser (a read past its buffer) before the byte scan
    "cut_in_exponent.mtx": b"%%MatrixMarket matrix array real general\n2 2\n1\n2\n8.1E-",
    "cut_in_coordinate.mtx": b"%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1\n2 2 8.1E-",
    "nul_byte.mtx": b"%%MatrixMarket matrix array real general\n2 2\n1\n3.3\x005\n3\n4\n",
    "empty_array.mtx": b"%%MatrixMarket matrix array real general\n0 3\n",      # a division by zero
    "skew_wide.mtx": b"%%MatrixMarket matrix array real skew-symmetric\n1 1000000000\n",
}


def test_matrix_market_files_that_crashed_the_parser_are_refused(tmp_path):
    for name, data in MTX_CRASHES.items():
        (tmp_path / name).write_bytes(data)
    script = ("import sys\nfrom nmfkit.io import DataFileError, read_matrix\nfor p in sys.argv[1:]:\n"
              "    try:\n        print('read', read_matrix(p).shape)\n    except DataFileError as e:\n"
              "        print(e)\n")
    proc = subprocess.run([sys.executable, "-c", script, *sorted(str(p) for p in tmp_path.iterdir())],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]         # before: killed by SIGSEGV or SIGFPE
    lines = proc.stdout.splitlines()
    assert len(lines) == 5, lines                             # in the order of the file names
    assert lines[0] == "read (2, 2)" and "not a valid Matrix Market file" in lines[1]
    assert lines[2].endswith("empty_array.mtx: holds an empty 0×3 matrix")
    assert "line 4: byte b'\\x00' cannot be part of a number" in lines[3]
    assert "skew-symmetric 1×1000000000 matrix; a symmetric matrix must be square" in lines[4]


def test_matrix_market_text_after_a_number_is_refused(tmp_path):
    (tmp_path / "x.mtx").write_text("%%MatrixMarket matrix array real general\n2 2\n1\n3.3x5\n3\n4\n")
    assert "line 4: byte b'x' cannot be part of a number" in _error(tmp_path / "x.mtx")   # was read as 3.3


def test_matrix_market_without_final_newline_is_read(tmp_path):
    (tmp_path / "x.mtx").write_bytes(b"%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n4.5")
    np.testing.assert_array_equal(read_matrix(tmp_path / "x.mtx").X, [[1.0, 3.0], [2.0, 4.5]])


def test_labels_mode_is_matched_like_other_names(tmp_path, X):
    path = write_matrix(tmp_path / "x.csv", X, ROWS, COLS)
    assert read_matrix(path, labels="BOTH").row_names == ROWS
    with pytest.raises(ValueError, match="unknown labels mode 'bth'; choose one of: .*; did you mean 'both'\\?$"):
        read_matrix(path, labels="bth")


# -- the pyarrow parser gives what the Python reader gives -----------------------------------------
NUMBERS = st.one_of(st.floats(0, 1e6, allow_nan=False).map(repr), st.integers(0, 10**20).map(str),
                    st.sampled_from(["1e-3", "2.5E+2", " 7 ", ".5", "5.", "+3", "-0", "0.1", "1e-320"]))
ODD = st.sampled_from(["", "NA", "nan", "NaN", "n/a", "None", "-", "abc", "1_0", "inf", "-2", "0x1", "1 2", '"3"'])
CELLS = st.one_of(NUMBERS, NUMBERS, NUMBERS, ODD)


@st.composite
def text_tables(draw):
    rows, cols = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    delimiter = draw(st.sampled_from([",", "\t", ";"]))
    labels = draw(st.booleans())
    header = draw(st.sampled_from(["none", "names", "corner", "r"]))   # r: one field fewer (write.table)
    lines = []
    if header != "none":
        names = [draw(st.sampled_from(["s1{}", "s 2{}", "x{}", "3{}", "NA{}", '"s\n{}"'])).format(j)
                 for j in range(cols)]
        corner = {"names": [""], "corner": ["gene"], "r": []}[header] if labels else []
        lines.append(delimiter.join(corner + names))
    for i in range(rows):
        cells = [draw(CELLS) for _ in range(cols + draw(st.sampled_from([0, 0, 0, 0, 0, 0, 1, -1])))]
        if labels:
            cells = [draw(st.sampled_from([f"g{i}", f'"g,{i}"', "NA", "", f" g {i}", f'"g\n{i}"']))] + cells
        lines.append(delimiter.join(cells))
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from(["", delimiter * cols, "   "])))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    bom = "\ufeff" if draw(st.integers(0, 9)) == 0 else ""
    return bom + newline.join(lines) + newline * draw(st.integers(0, 2))


def _outcome(path, **kwargs):
    try:
        lm = read_matrix(path, **kwargs)
    except DataFileError as exc:
        return str(exc)
    return lm.X, lm.row_names, lm.col_names, lm.corner


@pytest.mark.skipif(nio.TEXT_PARSER != "pyarrow", reason="needs pyarrow")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=text_tables(), gz=st.booleans(), allow_missing=st.booleans(), labels=st.sampled_from(["auto", "both"]))
def test_pyarrow_parser_matches_the_python_reader(tmp_path_factory, text, gz, allow_missing, labels):
    path = str(tmp_path_factory.mktemp("parity") / ("t.csv.gz" if gz else "t.csv"))
    with (gzip.open(path, "wb") if gz else open(path, "wb")) as fh:
        fh.write(text.encode("utf-8"))
    fast = _outcome(path, allow_missing=allow_missing, labels=labels)
    try:
        nio.TEXT_PARSER = "python"
        slow = _outcome(path, allow_missing=allow_missing, labels=labels)
    finally:
        nio.TEXT_PARSER = "pyarrow"
    if isinstance(slow, str) or isinstance(fast, str):
        assert fast == slow
        return
    assert fast[0].dtype == slow[0].dtype == np.float64
    np.testing.assert_array_equal(fast[0], slow[0])      # bit-identical: both round correctly
    assert fast[1:] == slow[1:]


@pytest.mark.skipif(nio.TEXT_PARSER != "pyarrow", reason="needs pyarrow")
@pytest.mark.parametrize("name", ["t.csv", "t.tsv.gz"])
def test_clean_files_are_parsed_by_pyarrow_alone(tmp_path, X, monkeypatch, name):
    path = write_matrix(tmp_path / name, X, ROWS, COLS)
    monkeypatch.setattr(nio, "_parse_records", lambda *a, **k: pytest.fail("fell back to the Python reader"))
    lm = read_matrix(path)
    np.testing.assert_array_equal(lm.X, X)
    assert (lm.row_names, lm.col_names) == (ROWS, COLS)


@pytest.mark.parametrize("parser", ["pyarrow", "python"])
def test_problems_found_after_parsing_name_line_and_column(tmp_path, monkeypatch, parser):
    if parser == "pyarrow" and nio.TEXT_PARSER != "pyarrow":
        pytest.skip("needs pyarrow")
    monkeypatch.setattr(nio, "TEXT_PARSER", parser)
    path = tmp_path / "t.csv"
    path.write_text("gene,a,b\n\ng1,1,2\ng2,3,-4\n")
    with pytest.raises(DataFileError, match=r"t\.csv: line 4, column 'b': negative value -4"):
        read_matrix(path)
    path.write_text("gene,a,b\ng1,1,2\ng2,3,x4\n")
    with pytest.raises(DataFileError, match=r"line 3, column 'b': 'x4' is not a number"):
        read_matrix(path)


def test_a_header_alone_with_labels_both_is_one_clear_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("0.0\n")
    with pytest.raises(DataFileError, match="has a header line but no data rows"):
        read_matrix(path, labels="both")


@pytest.mark.parametrize("parser", ["pyarrow", "python"])
def test_large_files_show_a_progress_line(tmp_path, X, monkeypatch, capsys, parser):
    if parser == "pyarrow" and nio.TEXT_PARSER != "pyarrow":
        pytest.skip("needs pyarrow")
    monkeypatch.setattr(nio, "TEXT_PARSER", parser)
    path = write_matrix(tmp_path / "big.csv", X, ROWS, COLS)
    read_matrix(path)
    assert capsys.readouterr().err == ""           # small files and progress=False: silent
    monkeypatch.setattr(nio, "LARGE_FILE", 1)
    read_matrix(path)
    assert capsys.readouterr().err == ""
    np.testing.assert_array_equal(read_matrix(path, progress=True).X, X)
    err = capsys.readouterr().err
    assert "reading big.csv" in err and "MB" in err


def test_the_corner_header_is_kept(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("gene,a,b\ng1,1,2\n")
    assert read_matrix(path).corner == "gene"
    path.write_text(",a,b\ng1,1,2\n")
    assert read_matrix(path).corner is None


def test_the_corner_header_is_written_back(tmp_path, X):
    path = write_matrix(tmp_path / "W.csv", X, ROWS, COLS, corner="gene")
    assert open(path).readline().startswith("gene,")
    assert read_matrix(path).corner == "gene"


def _tenx_folder(folder, M, gz=True, features="features.tsv"):
    folder.mkdir()
    opener = (lambda name: gzip.open(folder / (name + ".gz"), "wt")) if gz else (lambda name: open(folder / name, "w"))
    buffer = BytesIO()
    scipy.io.mmwrite(buffer, sp.coo_matrix(M))   # genes × cells, as 10x writes it
    with opener("matrix.mtx") as fh:
        fh.write(buffer.getvalue().decode())
    with opener(features) as fh:
        fh.write("".join(f"ENSG{i}\tGENE{i}\tGene Expression\n" for i in range(M.shape[0])))
    with opener("barcodes.tsv") as fh:
        fh.write("".join(f"AAAC-{j}\n" for j in range(M.shape[1])))
    return folder


@pytest.mark.parametrize("gz, features", [(True, "features.tsv"), (False, "genes.tsv")])
def test_a_10x_folder_is_read_as_genes_by_cells(tmp_path, gz, features):
    M = sp.random(6, 4, density=0.5, random_state=0, format="csr") * 10
    M.data = np.round(M.data)
    folder = _tenx_folder(tmp_path / "filtered", M, gz, features)
    for source in (folder, folder / ("matrix.mtx.gz" if gz else "matrix.mtx")):
        lm = read_matrix(source)
        assert sp.issparse(lm.X) and lm.shape == (6, 4) and lm.format == "10x"
        np.testing.assert_array_equal(lm.X.toarray(), M.toarray())
        assert lm.row_names == [f"GENE{i}" for i in range(6)]
        assert lm.col_names == [f"AAAC-{j}" for j in range(4)]


def test_10x_folder_problems_are_one_line(tmp_path):
    M = sp.eye(3, format="csr")
    folder = _tenx_folder(tmp_path / "f", M)
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as fh:
        fh.write("A\nB\n")
    with pytest.raises(DataFileError, match=r"barcodes\.tsv\.gz: has 2 column names, but .*matrix\.mtx\.gz has 3"):
        read_matrix(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError, match="is a directory, not a data file .*10x folder holds matrix.mtx"):
        read_matrix(tmp_path / "empty")


@pytest.mark.parametrize("name", ["Y.mtx", "Y.mtx.gz"])
def test_matrix_market_keeps_labels_in_sibling_files(tmp_path, X, name):
    path = write_matrix(tmp_path / name, sp.csr_matrix(X), ROWS, COLS)
    assert sorted(os.listdir(tmp_path)) == sorted([name, "Y.rows.tsv", "Y.cols.tsv"])
    lm = read_matrix(path)
    assert (lm.row_names, lm.col_names) == (ROWS, COLS)
    np.testing.assert_array_equal(lm.X.toarray(), X)
    with pytest.raises(ValueError, match=r"Y\.rows\.tsv would name this matrix's rows; pass the names"):
        write_matrix(path, X)                       # stale names would label another matrix
    (tmp_path / "Y.cols.tsv").write_text("a\nb\n")
    with pytest.raises(DataFileError, match=r"Y\.cols\.tsv: has 2 column names, but .* has 3 columns"):
        read_matrix(path)


def test_read_annotations_matches_samples_by_name(tmp_path):
    from nmfkit.io import read_annotations
    path = tmp_path / "classes.tsv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("cell\ttype\tbatch\nc2\tT\tb1\nc1\tB\tb2\nc9\tNK\tb1\n")
    assert read_annotations(path, ["c1", "c2"]) == ["B", "T"]
    assert read_annotations(path, ["c1", "c2"], column="batch") == ["b2", "b1"]
    with pytest.raises(DataFileError, match=r"1 of 3 samples have no class \(first: 'c3'\)"):
        read_annotations(path, ["c1", "c2", "c3"])
    twice = tmp_path / "twice.csv"
    twice.write_text("sample,type\nc1,A\nc1,B\n")
    with pytest.raises(DataFileError, match=r"twice\.csv: line 3: sample 'c1' is listed twice"):
        read_annotations(twice, ["c1"])
    one = tmp_path / "one.csv"
    one.write_text("c1\nc2\n")
    with pytest.raises(DataFileError, match="expected a header line and one line per sample"):
        read_annotations(one, ["c1"])


def test_a_pyarrow_that_does_not_load_leaves_the_python_reader(tmp_path, X, monkeypatch):
    monkeypatch.setattr(nio, "TEXT_PARSER", "pyarrow")
    monkeypatch.setitem(sys.modules, "pyarrow.csv", None)      # `import pyarrow.csv` raises ImportError
    path = write_matrix(tmp_path / "t.csv", X, ROWS, COLS)
    lm = read_matrix(path)
    np.testing.assert_array_equal(lm.X, X)
    assert lm.row_names == ROWS
