"""Fuzzing the readers: damaged, truncated and structurally invalid files give a one-line error naming the
file, or a valid result; never another exception, a crash or a hang.

Every reader (CSV/TSV, .csv.gz, .npy, .npz dense and sparse, .mtx, .h5ad, .parquet), `Factorization.load`
and `checkpoint.load` start from a small valid file written by nmfkit; hypothesis then flips, inserts and
deletes bytes, truncates, or writes structurally invalid contents (wrong shapes, dtypes, NaN, negative
values, missing keys).  A fit on a fuzzed sparse file, the one path that reaches Numba kernels, runs in a
subprocess, so a crash fails the test instead of killing pytest.  Examples are derandomized: every run
of the suite tries the same files.
"""
import json
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nmfkit
from nmfkit import checkpoint
from nmfkit.io import DataFileError, LabeledMatrix, read_matrix, write_matrix

REFUSALS = (DataFileError, ValueError, TypeError)
FUZZ = settings(max_examples=30, deadline=5000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

ROWS, COLS = ["r1", "r2", "r3", "r4", "r5"], ["a", "b", "c", "d"]
DATA_FILES = ["x.csv", "x.tsv", "x.csv.gz", "x.npy", "x.npz", "s.npz", "x.mtx", "x.h5ad", "x.parquet"]


def _matrix():
    X = np.random.default_rng(0).random((5, 4))
    X[1, 2] = X[3, 0] = 0.0
    return X


def _write_original(folder, name):
    """A valid small file of each kind, written by nmfkit (or by anndata for .h5ad)."""
    path = os.path.join(folder, name)
    X = _matrix()
    if name == "x.h5ad":
        anndata = pytest.importorskip("anndata")
        import pandas as pd
        anndata.AnnData(X, obs=pd.DataFrame(index=ROWS), var=pd.DataFrame(index=COLS)).write_h5ad(path)
    elif name == "x.parquet":
        pytest.importorskip("pyarrow")
        write_matrix(path, X, ROWS, COLS)
    elif name == "s.npz":
        write_matrix(path, sp.csr_matrix(X), ROWS, COLS)
    elif name in ("x.npy", "x.mtx"):
        write_matrix(path, X)
    elif name == "model.npz":
        nmfkit.fit(X, 2, max_iter=5).save(path)
    elif name == "fit.ckpt.npz":
        nmfkit.fit(X, 2, solver="mu", max_iter=4, tol=0, checkpoint=path, checkpoint_every=2)
    else:
        write_matrix(path, X, ROWS, COLS)
    with open(path, "rb") as fh:
        return fh.read()


_ORIGINALS = {}


def _original(name):
    """The bytes of a valid file `name`, written once per session."""
    if name not in _ORIGINALS:
        with tempfile.TemporaryDirectory() as folder:
            _ORIGINALS[name] = _write_original(folder, name)
    return _ORIGINALS[name]


# -- what every outcome must satisfy ---------------------------------------------------------------
def _valid_matrix(lm, path):
    assert isinstance(lm, LabeledMatrix) and lm.path == path
    X = lm.X
    assert X.ndim == 2 and 0 not in X.shape
    if sp.issparse(X):
        assert X.format == "csr"
        X.check_format(full_check=True)          # indices in bounds, indptr monotone and consistent
        values = X.data
    else:
        values = np.asarray(X)
    assert values.dtype.kind in "biuf" and np.isfinite(values).all() and (values >= 0).all()
    assert lm.row_names is None or len(lm.row_names) == X.shape[0]
    assert lm.col_names is None or len(lm.col_names) == X.shape[1]


def _valid_factors(W, H_or_Ht, transposed):
    k = H_or_Ht.shape[1] if transposed else H_or_Ht.shape[0]
    assert W.ndim == 2 and W.shape[1] == k
    for F in (W, H_or_Ht):
        assert F.dtype.kind == "f" and np.isfinite(F).all() and (F >= 0).all()


def _load(kind, path):
    if kind == "model":
        f = nmfkit.Factorization.load(path)
        _valid_factors(f.W, f.H, transposed=False)
        assert isinstance(f.loss, float)
    elif kind == "checkpoint":
        c = checkpoint.load(path)
        _valid_factors(c["W"], c["Ht"], transposed=True)
        assert np.isfinite(c["history"]["objective"]).all()
    else:
        _valid_matrix(read_matrix(path), path)


def _outcome(kind, path):
    """Load `path`; a refusal must be one line naming the file.  Any other exception fails the test."""
    try:
        _load(kind, path)
    except REFUSALS as exc:
        msg = str(exc)
        assert "\n" not in msg, f"a multi-line message: {msg!r}"
        assert path in msg, f"the message does not name the file: {msg!r}"
        return "refused"
    return "read"


def _kind(name):
    return {"model.npz": "model", "fit.ckpt.npz": "checkpoint"}.get(name, "data")


# -- byte-level damage -------------------------------------------------------------------------------
_position = st.floats(0, 1, exclude_max=True)
MUTATION = st.one_of(
    st.tuples(st.just("flip"), _position, st.integers(1, 255)),
    st.tuples(st.just("insert"), _position, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), _position, st.integers(1, 64)),
    st.tuples(st.just("truncate"), _position),
)


def _damage(data, mutations):
    data = bytearray(data)
    for op, where, *arg in mutations:
        p = int(where * len(data)) if data else 0
        if op == "flip" and data:
            data[p] ^= arg[0]
        elif op == "insert":
            data[p:p] = arg[0]
        elif op == "delete":
            del data[p:p + arg[0]]
        elif op == "truncate":
            del data[p:]
    return bytes(data)


@pytest.mark.parametrize("name", DATA_FILES + ["model.npz", "fit.ckpt.npz"])
@FUZZ
@given(mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_damaged_bytes_are_read_or_refused_by_name(name, mutations):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        with open(path, "wb") as fh:
            fh.write(_damage(_original(name), mutations))
        _outcome(_kind(name), path)


@pytest.mark.parametrize("name", DATA_FILES + ["model.npz", "fit.ckpt.npz"])
def test_every_truncation_point_of_the_head_is_caught(name, tmp_path):
    """Cut after each of the first 64 bytes and at nine points beyond.  A plain text file cut at a line
    end is a smaller valid matrix; every other cut file is refused, by name."""
    data = _original(name)
    cuts = sorted(set(range(1, min(64, len(data)))) | {len(data) * q // 10 for q in range(1, 10)})
    for cut in cuts:
        path = os.fspath(tmp_path / f"{cut}-{name}")
        with open(path, "wb") as fh:
            fh.write(data[:cut])
        outcome = _outcome(_kind(name), path)
        assert outcome == "refused" or name in ("x.csv", "x.tsv"), f"{name} cut at byte {cut} was read"


# -- structurally invalid contents -----------------------------------------------------------------
VALUES = st.sampled_from([0.0, 1.0, 2.5, -1.0, np.nan, np.inf, -np.inf, 1e-320, 1e308])
DTYPES = st.sampled_from(["float64", "float32", "float16", "int64", "uint8", "bool", "complex128", "U3", "S2"])
SHAPES = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)


@st.composite
def arrays(draw, shape=SHAPES):
    shape = draw(shape)
    size = int(np.prod(shape)) if shape else 1
    values = np.array(draw(st.lists(VALUES, min_size=size, max_size=size)), dtype=np.float64).reshape(shape)
    dtype = draw(DTYPES)
    with np.errstate(all="ignore"):
        if dtype[0] in "US":
            return values.astype(str).astype(dtype)
        return values.astype(dtype)


@FUZZ
@given(A=arrays(), name=st.sampled_from(["x.npy", "x.npz"]), key=st.sampled_from(["X", "matrix", "row_names"]))
def test_numpy_files_with_any_shape_dtype_and_values(A, name, key):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        if name == "x.npy":
            np.save(path, A)
        else:
            np.savez(path, **{key: A})
        _outcome("data", path)


INDEX = st.lists(st.integers(-3, 7), min_size=0, max_size=8)


@st.composite
def sparse_parts(draw):
    """The arrays of a SciPy .npz: a consistent CSR (unsorted or duplicate indices, explicit zeros, empty
    rows) with at most one part broken, or parts drawn independently: indices out of range or negative,
    indptr decreasing or of the wrong length, data of another length, a shape that does not fit."""
    if draw(st.booleans()):
        m, n = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        indptr = np.concatenate([[0], np.cumsum(draw(st.lists(st.integers(0, 3), min_size=m, max_size=m)))])
        nnz = int(indptr[-1])
        values = st.sampled_from([0.0, 0.5, 1.0, 2.5, 1e-3, 1e-320])
        parts = {"data": np.array(draw(st.lists(values, min_size=nnz, max_size=nnz)), dtype=np.float64),
                 "indices": np.array(draw(st.lists(st.integers(0, n - 1), min_size=nnz, max_size=nnz)),
                                     dtype=np.int32),
                 "indptr": indptr.astype(np.int32), "format": np.array(b"csr"), "shape": np.array([m, n])}
        broken = draw(st.sampled_from(["", "indices", "indptr", "shape", "data"]))
        if broken:
            A = parts[broken].copy()
            if A.size:
                A[draw(st.integers(0, A.size - 1))] = draw(st.sampled_from([-1, 0, 1, n, m, 10**6]))
            parts[broken] = A
        return parts
    parts = {
        "data": np.array(draw(st.lists(VALUES, min_size=0, max_size=8)), dtype=np.float64),
        "indices": np.array(draw(INDEX), dtype=draw(st.sampled_from([np.int32, np.int64, np.float64]))),
        "indptr": np.array(draw(INDEX), dtype=np.int32),
        "format": np.array(draw(st.sampled_from([b"csr", b"csc", b"coo", b"bsr", b"xyz"]))),
        "shape": np.array(draw(st.lists(st.integers(-1, 6), min_size=1, max_size=3))),
    }
    if parts["format"] == b"coo":
        parts["row"], parts["col"] = parts.pop("indices"), np.array(draw(INDEX), dtype=np.int32)
        parts.pop("indptr")
    drop = draw(st.sets(st.sampled_from(sorted(parts)), max_size=1))
    return {k: v for k, v in parts.items() if k not in drop}


@FUZZ
@given(parts=sparse_parts())
def test_sparse_npz_with_inconsistent_structure(parts):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "s.npz")
        np.savez(path, **parts)
        _outcome("data", path)


CELLS = st.sampled_from(["1", "0", "2.5", "-1", "NA", "", "nan", "inf", "1e999", "abc", '"q,uoted"', "1e-320",
                         "0x10", "１", "\x00", " 3 "])


@FUZZ
@given(rows=st.lists(st.lists(CELLS, min_size=1, max_size=5), min_size=1, max_size=5),
       delimiter=st.sampled_from([",", "\t", ";", " "]), name=st.sampled_from(["x.csv", "x.tsv", "x.txt", "x.csv.gz"]))
def test_text_files_with_any_cells(rows, delimiter, name):
    text = "\n".join(delimiter.join(r) for r in rows) + "\n"
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        if name.endswith(".gz"):
            import gzip
            with gzip.open(path, "wt", encoding="utf-8") as fh:
                fh.write(text)
        else:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        _outcome("data", path)


@FUZZ
@given(header=st.sampled_from(["coordinate real general", "coordinate integer symmetric", "coordinate pattern general",
                               "array real general", "coordinate complex general", "array real skew-symmetric"]),
       sizes=st.lists(st.sampled_from([-1, 0, 1, 2, 3, 10**9, 10**18]), min_size=1, max_size=4),
       entries=st.lists(st.tuples(st.integers(-1, 4), st.integers(-1, 4), VALUES), max_size=5))
def test_matrix_market_with_any_header_and_entries(header, sizes, entries):
    lines = [f"%%MatrixMarket matrix {header}", " ".join(map(str, sizes))]
    lines += [f"{i} {j} {v!r}" for i, j, v in entries]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "x.mtx")
        with open(path, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        _outcome("data", path)


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2, 10**20), st.floats(allow_nan=True),
                        st.text(max_size=5), st.lists(st.integers(0, 3), max_size=3), st.just({}))


@st.composite
def archive_changes(draw, array_keys, meta_keys):
    """Replace, drop or retype some arrays and metadata fields of a model or checkpoint."""
    arrays_new = draw(st.dictionaries(st.sampled_from(array_keys), arrays(st.sampled_from([(5, 2), (2, 4), (4, 2),
                                                                                            (5, 3), (5,), (0, 2)])),
                                      max_size=2))
    meta_new = draw(st.dictionaries(st.sampled_from(meta_keys), JSON_VALUES, max_size=2))
    drop = draw(st.sets(st.sampled_from(array_keys + meta_keys), max_size=2))
    return arrays_new, meta_new, drop


def _rewrite(original, folder, name, changes):
    arrays_new, meta_new, drop = changes
    path = os.path.join(folder, name)
    with open(path, "wb") as fh:
        fh.write(original)
    with np.load(path, allow_pickle=False) as z:
        content = {k: z[k] for k in z.files}
    meta = json.loads(content["meta"].tobytes())
    meta.update(meta_new)
    content.update(arrays_new)
    for key in drop:
        meta.pop(key, None)
        content.pop(key, None)
    content["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **content)
    return path


MODEL_ARRAYS = ["W", "H", "history.objective", "history.iteration"]
MODEL_META = ["loss", "relative_error", "n_iter", "converged", "stop_reason", "history_keys", "options", "runs",
              "seconds", "row_names", "col_names", "monotonicity", "format"]
CKPT_ARRAYS = ["W", "Ht", "best_W", "best_Ht", "history.objective", "history.iteration", "history.seconds"]
CKPT_META = ["fingerprint", "iteration", "seconds", "best_objective", "best_iteration", "history_keys",
             "solver_state", "rng_state", "format"]


@FUZZ
@given(changes=archive_changes(MODEL_ARRAYS, MODEL_META))
def test_models_with_invalid_contents(changes):
    with tempfile.TemporaryDirectory() as folder:
        _outcome("model", _rewrite(_original("model.npz"), folder, "model.npz", changes))


@FUZZ
@given(changes=archive_changes(CKPT_ARRAYS, CKPT_META))
def test_checkpoints_with_invalid_contents(changes):
    with tempfile.TemporaryDirectory() as folder:
        _outcome("checkpoint", _rewrite(_original("fit.ckpt.npz"), folder, "fit.ckpt.npz", changes))


# -- fits on fuzzed files, in a subprocess ---------------------------------------------------------------
FIT_SCRIPT = textwrap.dedent("""
    import sys, warnings
    import nmfkit
    from nmfkit.io import read_matrix
    warnings.simplefilter("ignore")
    for path in sys.argv[1:]:
        print("start", path, flush=True)
        try:
            lm = read_matrix(path)
            for solver in ("hals", "mu", "anls", "pgd", "sgd"):
                nmfkit.fit(lm.X, 1, solver=solver, max_iter=3)
            print("fitted", path, flush=True)
        except (ValueError, TypeError) as exc:
            assert "\\n" not in str(exc), str(exc)
        print("done", path, flush=True)
""")


@settings(max_examples=3, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(cases=st.lists(sparse_parts(), min_size=25, max_size=25))
def test_fits_on_fuzzed_sparse_files_never_crash(cases):
    """Structurally broken sparse files read and fitted (Numba kernels) in a child process: a segfault
    or an uncaught error there fails this test and names the file that caused it."""
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, parts in enumerate(cases):
            paths.append(os.path.join(folder, f"case{i}.npz"))
            np.savez(paths[-1], **parts)
        proc = subprocess.run([sys.executable, "-c", FIT_SCRIPT, *paths], capture_output=True, text=True,
                              timeout=240)
        started = [line.split(" ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("start")]
        assert proc.returncode == 0, (f"exit {proc.returncode} on {started[-1] if started else '?'}: "
                                      f"{proc.stderr[-2000:]}")
        assert proc.stdout.count("done") == len(paths)
