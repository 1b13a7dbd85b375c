"""Reading and writing data matrices: CSV/TSV (optionally gzip), .npy, .npz, Matrix Market, .h5ad,
Parquet (with pyarrow: numeric columns are the matrix's columns, a text column its row labels).

    lm = read_matrix("counts.csv")          # LabeledMatrix(X, row_names, col_names, path)
    write_matrix("W.csv", W, genes, ["NMF1", "NMF2"])

Formats come from the extension (`.csv`, `.tsv`/`.tab`, `.txt`, each optionally `.gz`; `.npy`; `.npz`;
`.mtx`/`.mtx.gz`; `.h5ad`) or, for any other name, from the file's first bytes; a folder holding a 10x
`matrix.mtx(.gz)` with `features.tsv(.gz)` (or `genes.tsv`) and `barcodes.tsv(.gz)` is read as genes ×
cells.  The delimiter of a text file is taken from the extension unless the first line clearly uses
another one; a header row and a row-label column are detected from the first two records
(`labels=` overrides).  Rules for `labels="auto"`:
  * the first row is a header when any of its cells after the first is not a number, when its first
    cell is empty (the pandas index convention), or when its first cell is text above a number;
  * the first column holds row labels when its first data cell is not a number, when the header has
    one field fewer than the data rows (R's `write.table`), or when the header's corner cell is empty.
A header whose column names are all numbers cannot be told from data: pass `labels="both"`.

The rest of a delimited file is parsed by pyarrow's C++ CSV reader when pyarrow is installed, else by
the `csv` module and NumPy; a file that pyarrow refuses (a cell that is not a number, a record with
another number of fields, a missing value where none is allowed) is read again by the Python reader,
which names the line and column of the first problem.  Both give the same float64 matrix and labels.
Whitespace-separated files are always read by the Python reader.

Binary files are loaded with `allow_pickle=False`: nothing is ever unpickled.  Every problem is a
one-line `DataFileError` (a ValueError) naming the file, the line and what is wrong.  Cost: one pass
over the file (two for a file pyarrow hands back); the peak memory is about twice the float matrix.
"""
from __future__ import annotations

import contextlib
import csv
import gzip
import importlib.util
import io as _io
import itertools
import json
import os
import zlib
from dataclasses import dataclass

import numpy as np
import scipy.io
import scipy.sparse as sp

from ._files import atomic_path, atomic_write

TEXT_DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": None}  # None: sniff, else whitespace
FORMATS = (*TEXT_DELIMITERS, ".npy", ".npz", ".mtx", ".h5ad", ".parquet")
LABEL_MODES = ("auto", "none", "rows", "columns", "both")
MISSING_TOKENS = {"", "na", "nan", "n/a", "null", "none", "-"}
_MAGIC = ((b"\x93NUMPY", ".npy"), (b"PK\x03\x04", ".npz"), (b"%%MatrixMarket", ".mtx"),
          (b"\x89HDF\r\n\x1a\n", ".h5ad"), (b"PAR1", ".parquet"))


class DataFileError(ValueError):
    """A data file that cannot be read as a non-negative matrix; the message names file, line, problem."""


@dataclass
class LabeledMatrix:
    """A matrix read from a file: `X` (NumPy array or SciPy CSR) with optional row and column names.

    `corner` is a text file's header cell above the row labels (e.g. "gene"), `format` how it was stored
    ("text", ".npy", ".npz", ".mtx", ".h5ad", ".parquet", "10x"): an .h5ad file's rows are its
    observations (cells), a 10x folder's columns are its cells (barcodes)."""
    X: object
    row_names: list | None = None
    col_names: list | None = None
    path: str | None = None
    corner: str | None = None
    format: str | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.X.shape)

    def transpose(self) -> "LabeledMatrix":
        X = self.X.T.tocsr() if sp.issparse(self.X) else np.ascontiguousarray(self.X.T)
        return LabeledMatrix(X, self.col_names, self.row_names, self.path, None, self.format)


# -- format detection ---------------------------------------------------------------------------
def _split_ext(path: str) -> tuple[str, bool]:
    name = os.path.basename(path).lower()
    gz = name.endswith(".gz")
    return os.path.splitext(name[:-3] if gz else name)[1], gz


def _detect_format(path: str) -> tuple[str, bool]:
    ext, gz = _split_ext(path)
    if ext in FORMATS:
        return ext, gz
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith(b"\x1f\x8b"):
        gz = True
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(512)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFileError(f"{path}: not a valid gzip file ({exc})") from None
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt, gz
    if head and b"\x00" not in head:
        try:
            head.decode("utf-8")
            return ".txt", gz
        except UnicodeDecodeError as exc:
            if exc.end == len(head):   # only a character cut at the 512-byte boundary
                return ".txt", gz
    raise DataFileError(f"{path}: unknown file format; use one of {', '.join(FORMATS)} "
                        "(text files optionally gzip-compressed)")


def read_matrix(path, *, labels: str = "auto", allow_negative: bool = False,
                allow_missing: bool = False, progress: bool = False) -> LabeledMatrix:
    """Read a matrix file (or a 10x Genomics folder) into a `LabeledMatrix`, or raise a one-line
    `DataFileError`.  A `NAME.mtx` file's names are read from `NAME.rows.tsv` / `NAME.cols.tsv` beside
    it when they exist (see `write_matrix`).

    labels : "auto" (detect), "none", "rows" (first column), "columns" (first row) or "both";
        text files only.
    allow_negative : accept negative entries (NMF itself needs non-negative data).
    allow_missing : read empty cells, NA and nan as NaN instead of refusing them.
    progress : show a progress line on stderr while a large (≥ 64 MiB) text file is read.
    """
    path = os.fspath(path)
    from .validation import choose
    labels = choose(labels, LABEL_MODES, "labels mode")
    if not os.path.exists(path):
        raise DataFileError(f"{path}: no such file")
    if os.path.isdir(path):
        tenx = _tenx_files(path)
        if tenx is None:
            raise DataFileError(f"{path}: is a directory, not a data file (a 10x folder holds matrix.mtx, "
                                "features.tsv or genes.tsv, and barcodes.tsv, each optionally .gz)")
        lm = _read_tenx(*tenx)
        _check_values(lm.X, _entry_locator(tenx[0], 1), allow_negative, allow_missing)
        return lm
    if os.path.getsize(path) == 0:
        raise DataFileError(f"{path}: file is empty")
    try:
        fmt, gz = _detect_format(path)
        if gz and fmt not in (*TEXT_DELIMITERS, ".mtx"):
            raise DataFileError(f"{path}: gzip-compressed {fmt} files are not supported; decompress it first")
        if fmt in TEXT_DELIMITERS:
            lm, locate = _read_text(path, fmt, gz, labels, allow_missing, progress)
        elif fmt in (".npy", ".npz"):
            lm, locate = _read_numpy(path), _entry_locator(path, 0)
        elif fmt == ".mtx":
            lm, locate = _read_mtx_labeled(path, gz), _entry_locator(path, 1)
        elif fmt == ".parquet":
            lm, locate = _read_parquet(path), _entry_locator(path, 0)
        else:
            lm, locate = _read_h5ad(path), _entry_locator(path, 0)
    except PermissionError:
        raise DataFileError(f"{path}: permission denied") from None
    _check_values(lm.X, locate, allow_negative, allow_missing)
    lm.format = lm.format or fmt
    return lm


# -- text ----------------------------------------------------------------------------------------
def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _open_text(path, gz):
    if gz:
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, "r", encoding="utf-8-sig", newline="")


def _sniff_delimiter(path, gz, preferred):
    """The preferred (extension's) delimiter if the first line uses it, else the commonest of , TAB ;
    in that line, else whitespace (None)."""
    with _open_text(path, gz) as fh:
        line = next((ln for ln in fh if ln.strip()), "")
    if preferred is not None and preferred in line:
        return preferred
    counts = {d: line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=counts.get)
    if counts[best] > 0:
        return best
    return preferred if preferred is not None and len(line.split()) <= 1 else None


def _records(fh, delimiter):
    """(line number, cells) of each non-blank record."""
    if delimiter is None:
        rows = ((i, line.split()) for i, line in enumerate(fh, 1))
    else:
        reader = csv.reader(fh, delimiter=delimiter)
        rows = ((reader.line_num, cells) for cells in reader)
    for lineno, cells in rows:
        cells = [c.strip() for c in cells]
        if any(cells):
            yield lineno, cells


def _read_text(path, fmt, gz, labels, allow_missing, progress=False):
    try:
        delimiter = _sniff_delimiter(path, gz, TEXT_DELIMITERS[fmt])
        with _open_text(path, gz) as fh:
            records = _records(fh, delimiter)
            layout = _layout(path, next(records, None), next(records, None), labels)
        if delimiter is not None and TEXT_PARSER != "python":
            fast = _read_text_fast(path, gz, delimiter, layout, allow_missing, progress)
            if fast is not None:
                return fast
        with _open_text(path, gz) as fh, _text_progress(path, fh, progress) as advance:
            return _parse_records(path, _records(fh, delimiter), labels, allow_missing, advance)
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
                            "is it a binary file with a text extension?") from None
    except csv.Error as exc:
        raise DataFileError(f"{path}: malformed CSV ({exc})") from None
    except (OSError, EOFError, zlib.error) as exc:   # a truncated or corrupt gzip stream
        raise DataFileError(f"{path}: cannot read the file (damaged or truncated: {exc})") from None


def _detect_labels(first, second, labels):
    """(has header, has row labels) from the first two records and the labels= mode."""
    cells0 = first[1]
    if labels == "auto":
        below = second[1][0] if second else None
        header = second is not None and (
            any(c and not _is_number(c) for c in cells0[1:])
            or (cells0[0] == "" and bool(below))
            or (not _is_number(cells0[0]) and below is not None and _is_number(below)))
    else:
        header = labels in ("columns", "both")
    data0 = second[1] if header and second else cells0
    if labels == "auto":
        first_cell = data0[0]   # a missing-value token there is a missing number, not a label
        row_labels = (first_cell.lower() not in MISSING_TOKENS and not _is_number(first_cell)) or (header and (
            len(cells0) == len(data0) - 1 or (cells0[0] == "" and len(cells0) == len(data0))))
    else:
        row_labels = labels in ("rows", "both")
    return header, row_labels


@dataclass
class _Layout:
    """What the first two records say about a text file."""
    header_line: int | None      # line number of the header record's end, None without a header
    row_labels: bool
    col_names: list | None
    corner: str | None           # the header's first cell above the row labels ("gene"), if not empty
    expected: int                # fields per data record
    pending: list                # the data records already read

    @property
    def offset(self):
        return 1 if self.row_labels else 0

    def column(self, j):
        return f"column {self.col_names[j]!r}" if self.col_names else f"column {j + self.offset + 1}"


def _layout(path, first, second, labels) -> _Layout:
    if first is None:
        raise DataFileError(f"{path}: file is empty (no data rows)")
    if second is None and labels == "auto" and not any(_is_number(c) for c in first[1]):
        raise DataFileError(f"{path}: has only a header line (line {first[0]}) and no data rows")
    header, row_labels = _detect_labels(first, second, labels)
    offset = 1 if row_labels else 0
    col_names = corner = None
    if header:
        if second is None:
            raise DataFileError(f"{path}: has a header line but no data rows")
        expected = len(second[1])
        names = first[1]
        if row_labels and len(names) == expected:
            corner = names[0] or None
            names = names[1:]
        if len(names) != expected - offset:
            raise DataFileError(f"{path}: line {first[0]} (header) has {len(first[1])} fields, but the data "
                                f"rows have {expected}")
        col_names = names
        pending = [second]
    else:
        expected = len(first[1])
        pending = [first] + ([second] if second else [])
    if expected - offset < 1:
        raise DataFileError(f"{path}: line {pending[0][0]} has no numeric columns, only a row label")
    return _Layout(first[0] if header else None, row_labels, col_names, corner, expected, pending)


def _parse_records(path, records, labels, allow_missing, advance=None):
    layout = _layout(path, next(records, None), next(records, None), labels)
    expected, offset, column = layout.expected, layout.offset, layout.column
    row_names, rows, lines = [], [], []
    for source in (layout.pending, records):
        for lineno, cells in source:
            if len(cells) != expected:
                raise DataFileError(f"{path}: line {lineno} has {len(cells)} fields, expected {expected}")
            values = cells[offset:]
            try:
                row = np.array(values, dtype=np.float64)
            except ValueError:   # slow path, only for a row that has a problem
                row = np.array([_parse_cell(path, lineno, column(j), c, allow_missing)
                                for j, c in enumerate(values)])
            rows.append(row)
            lines.append(lineno)
            if layout.row_labels:
                row_names.append(cells[0])
            if advance is not None and len(rows) % 4096 == 0:
                advance()
    X = np.vstack(rows)
    line_of = np.asarray(lines)

    def locate(i, j):
        return f"{path}: line {line_of[i]}, {column(j)}"
    return _labeled(X, row_names if layout.row_labels else None, layout, path), locate


def _labeled(X, row_names, layout, path):
    return LabeledMatrix(X, row_names, layout.col_names, path, corner=layout.corner, format="text")


# -- text, fast path -------------------------------------------------------------------------------
#: "pyarrow" (when installed) or "python": the parser for delimited text.  Whatever pyarrow refuses or reads
#: as missing is read again by the Python reader, which names the line and column.  (pandas is not used:
#: its exact float mode is no faster than the Python reader, and its fast modes misround many decimals.)
TEXT_PARSER = "pyarrow" if importlib.util.find_spec("pyarrow") else "python"
LARGE_FILE = 64 << 20     # bytes: reading a larger text file shows a progress line (progress=True)


def _null_tokens():
    """Every spelling of the missing-value tokens that the Python reader accepts (it ignores case)."""
    spellings = set()
    for token in MISSING_TOKENS:
        for combo in itertools.product(*[(c.lower(), c.upper()) for c in token]):
            spellings.add("".join(combo))
    return sorted(spellings)


def _open_binary(path, gz):
    """(raw file, stream): `raw.tell()` is how far the file has been read, also through gzip."""
    raw = open(path, "rb")
    return raw, (gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw)


def _read_text_fast(path, gz, delimiter, layout, allow_missing, progress):
    """The matrix parsed by pyarrow, or None where the Python reader must look (a cell that is
    not a number, a missing value, a record with another number of fields, a blank-looking record)."""
    raw, stream = _open_binary(path, gz)
    try:
        with raw, stream, _text_progress(path, raw, progress) as advance:
            if stream.read(3) != b"\xef\xbb\xbf":
                stream.seek(0)
            if layout.header_line is not None:
                skipped = b"".join(stream.readline() for _ in range(layout.header_line))
                if skipped.count(b"\r") != skipped.count(b"\r\n"):   # lines end in a bare CR: not counted so
                    return None
            parsed = _parse_pyarrow(stream, delimiter, layout, advance)
    except (ValueError, TypeError, IndexError, KeyError, UnicodeDecodeError, ImportError):
        return None                                      # (ImportError: a pyarrow that does not load)
    except Exception as exc:  # noqa: BLE001 - pyarrow's own error types (ArrowInvalid, …)
        if type(exc).__module__.split(".")[0] == "pyarrow":
            return None
        raise
    if parsed is None:
        return None
    X, row_names = parsed
    if X.shape[1] != layout.expected - layout.offset or X.shape[0] == 0:
        return None
    missing = np.isnan(X)
    if missing.any():
        if not allow_missing:
            return None
        blank = missing.all(axis=1)
        if layout.row_labels:
            blank &= np.array([name == "" for name in row_names])
        if blank.any():                                      # ",,," is a blank record, not missing values
            return None
    locate = _line_locator(path, gz, delimiter, layout)
    return _labeled(X, row_names, layout, path), locate


def _parse_pyarrow(stream, delimiter, layout, advance):
    import pyarrow as pa
    import pyarrow.csv as pcsv
    names = [f"c{j}" for j in range(layout.expected)]
    types = {name: pa.float64() for name in names}
    if layout.row_labels:
        types[names[0]] = pa.string()
    reader = pcsv.open_csv(
        stream, read_options=pcsv.ReadOptions(column_names=names, block_size=1 << 22),
        parse_options=pcsv.ParseOptions(delimiter=delimiter),
        convert_options=pcsv.ConvertOptions(column_types=types, null_values=_null_tokens(),
                                            strings_can_be_null=False, quoted_strings_can_be_null=True))
    batches = []
    for batch in reader:
        batches.append(batch)
        advance()
    table = pa.Table.from_batches(batches, schema=reader.schema)
    values = table.columns[layout.offset:]
    X = np.empty((table.num_rows, len(values)), dtype=np.float64)
    for j, column in enumerate(values):
        X[:, j] = column.to_numpy(zero_copy_only=False)
    row_names = [str(v).strip() for v in table.column(0).to_pylist()] if layout.row_labels else None
    return X, row_names


def _line_locator(path, gz, delimiter, layout):
    """locate(i, j) for a matrix parsed without line numbers: finds the i-th data record's line when an
    error needs it (one more pass over the file)."""
    def locate(i, j):
        with _open_text(path, gz) as fh:
            records = _records(fh, delimiter)
            if layout.header_line is not None:
                next(records, None)
            lineno = next(itertools.islice(records, i, None), (None,))[0]
        return f"{path}: line {lineno}, {layout.column(j)}"
    return locate


@contextlib.contextmanager
def _text_progress(path, fh, enabled):
    """advance(): shows how much of a large file has been read (a no-op for small files or when off)."""
    size = os.path.getsize(path)
    if not enabled or size < LARGE_FILE:
        yield lambda: None
        return
    from .progress import Progress
    raw = getattr(fh, "buffer", fh)
    bar = Progress(max(1, size >> 20), label=f"reading {os.path.basename(path)}", unit="MB")
    bar.update(0)

    def advance():
        with contextlib.suppress(OSError, ValueError):
            bar.update(min(raw.tell(), size) >> 20)
    try:
        yield advance
        bar.update(size >> 20)
    finally:
        bar.close()


def _parse_cell(path, lineno, column, cell, allow_missing):
    if cell.lower() in MISSING_TOKENS:
        if allow_missing:
            return np.nan
        what = "is empty" if cell == "" else f"is {cell!r}"
        raise DataFileError(f"{path}: line {lineno}, {column} {what}: missing values are not supported here")
    try:
        return float(cell)
    except ValueError:
        raise DataFileError(f"{path}: line {lineno}, {column}: {cell!r} is not a number") from None


# -- sample annotations ----------------------------------------------------------------------------
def read_annotations(path, names, column=None) -> list:
    """The class of each sample in `names`, from a CSV/TSV file (optionally .gz) with a header: the first
    column holds sample names, `column` (default: the second) their classes.  Samples may come in any
    order and the file may list more; a sample it does not list, or lists twice, is a one-line
    `DataFileError`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataFileError(f"{path}: no such file" if not os.path.exists(path) else f"{path}: not a file")
    ext, gz = _split_ext(path)
    try:
        delimiter = _sniff_delimiter(path, gz, TEXT_DELIMITERS.get(ext, ","))
        with _open_text(path, gz) as fh:
            records = list(_records(fh, delimiter))
    except UnicodeDecodeError:
        raise DataFileError(f"{path}: not UTF-8 text") from None
    except (csv.Error, OSError, EOFError, zlib.error) as exc:
        raise DataFileError(f"{path}: cannot read the annotations ({exc})") from None
    if len(records) < 2 or len(records[0][1]) < 2:
        raise DataFileError(f"{path}: expected a header line and one line per sample: its name, then its "
                            "class (one or more columns)")
    header = records[0][1]
    if column is None:
        j = 1
    elif column in header[1:]:
        j = header.index(column, 1)
    else:
        raise DataFileError(f"{path}: no column {column!r}; columns: {', '.join(header[1:])}")
    classes = {}
    for lineno, cells in records[1:]:
        if len(cells) <= j:
            raise DataFileError(f"{path}: line {lineno} has {len(cells)} fields; the class is field {j + 1}")
        if cells[0] in classes:
            raise DataFileError(f"{path}: line {lineno}: sample {cells[0]!r} is listed twice")
        classes[cells[0]] = cells[j]
    missing = [name for name in names if str(name) not in classes]
    if missing:
        raise DataFileError(f"{path}: {len(missing)} of {len(names)} samples have no class (first: "
                            f"{str(missing[0])!r})")
    return [classes[str(name)] for name in names]


# -- binary formats ------------------------------------------------------------------------------
def _entry_locator(path, base):
    note = " (1-based, as in the file)" if base else ""
    return lambda i, j: f"{path}: entry [{i + base}, {j + base}]{note}"


def _as_matrix(path, A, what="array"):
    if sp.issparse(A):
        from .validation import check_sparse_structure  # before SciPy's conversions read the indices
        A = sp.csr_matrix(check_sparse_structure(A, path, error=DataFileError))
        kind = A.dtype.kind
    else:
        A = np.asarray(A)
        kind = A.dtype.kind
        if A.ndim != 2:
            raise DataFileError(f"{path}: holds a {A.ndim}-D {what} of shape {A.shape}; expected a 2-D matrix")
    if kind not in "biuf":
        raise DataFileError(f"{path}: holds {A.dtype} values; expected numbers")
    if 0 in A.shape:
        raise DataFileError(f"{path}: holds an empty {A.shape[0]}×{A.shape[1]} matrix")
    return A


def _names(z, key, path):
    if key not in z.files:
        return None
    arr = z[key]
    if arr.ndim != 1 or arr.dtype.kind not in "US":
        raise DataFileError(f"{path}: {key} must be a 1-D array of strings")
    return [str(v) for v in arr.tolist()]


def _numpy_error(path, exc, what):
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "pickle" in msg:
        return DataFileError(f"{path}: holds pickled Python objects; nmfkit never unpickles data files "
                             "(save a numeric array instead)")
    return DataFileError(f"{path}: not a valid {what} ({msg})")


def _read_numpy(path):
    with open(path, "rb") as fh:
        head = fh.read(6)
    if not head.startswith((b"\x93NUMPY", b"PK\x03\x04")):   # np.load would take it for a pickle
        what = "holds a pickle, and nmfkit never unpickles data files" if head[:1] == b"\x80" else \
            "has no .npy/.npz header"
        raise DataFileError(f"{path}: not a valid NumPy file ({what})")
    try:
        obj = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - a damaged header raises ValueError, SyntaxError, TokenError, …
        raise _numpy_error(path, exc, "NumPy file") from None
    if not hasattr(obj, "files"):
        return LabeledMatrix(_as_matrix(path, obj), None, None, path)
    with obj as z:
        try:
            if "format" in z.files and "shape" in z.files:
                X = sp.load_npz(path)
            else:
                arrays = [k for k in z.files if k not in ("row_names", "col_names")]
                if len(arrays) == 1 or "X" in arrays:
                    X = z["X" if "X" in arrays else arrays[0]]
                else:
                    raise DataFileError(f"{path}: holds {len(arrays)} arrays ({', '.join(arrays[:5])}); expected "
                                        "one matrix, one named X, or a SciPy sparse matrix (save_npz)")
            rows, cols = _names(z, "row_names", path), _names(z, "col_names", path)
        except DataFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - zipfile, zlib, NumPy and SciPy raise many types
            raise _numpy_error(path, exc, ".npz matrix") from None
    X = _as_matrix(path, X)
    for names, n, axis in ((rows, X.shape[0], "rows"), (cols, X.shape[1], "columns")):
        if names is not None and len(names) != n:
            raise DataFileError(f"{path}: {len(names)} {axis[:-1]} names for {n} {axis}")
    return LabeledMatrix(X, rows, cols, path)


_NUMBER_BYTES = np.zeros(256, dtype=bool)
_NUMBER_BYTES[list(b"0123456789+-.eE \t\r\nnNaAiIfFtTyY")] = True   # numbers, inf, nan and spaces


def _scan_mtx(path, gz):
    """One pass over a Matrix Market file: (banner tokens, size-line tokens or None, whether the file ends
    with a newline).  Refuses a byte after the comments that no number can hold: SciPy's parser reads
    some (a NUL byte, a last line cut inside "1E-") past the end of its buffer."""
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
        banner = fh.readline(1 << 16)
        if b"\0" in banner:
            raise DataFileError(f"{path}: not a valid Matrix Market file (a NUL byte in line 1)")
        lineno, size_line, last = 1, None, banner[-1:]
        for raw in iter(lambda: fh.readline(1 << 16), b""):
            lineno, last = lineno + 1, raw[-1:]
            if b"\0" in raw:
                raise DataFileError(f"{path}: not a valid Matrix Market file (a NUL byte in line {lineno})")
            if raw.strip() and not raw.lstrip().startswith(b"%"):
                size_line = raw
                break
        lines_before = lineno - 1
        chunk = size_line or b""
        while chunk:
            codes = np.frombuffer(chunk, dtype=np.uint8)
            bad = ~_NUMBER_BYTES[codes]
            if bad.any():
                p = int(np.argmax(bad))
                line = lines_before + chunk.count(b"\n", 0, p) + 1
                raise DataFileError(f"{path}: not a valid Matrix Market file (line {line}: byte "
                                    f"{bytes(codes[p:p + 1])!r} cannot be part of a number)")
            lines_before += chunk.count(b"\n")
            last = chunk[-1:]
            chunk = fh.read(1 << 22)
    return banner.split(), (size_line.split() if size_line else None), last == b"\n"


def _check_mtx_size(path, gz, banner, size_tokens):
    """Refuse a Matrix Market header whose declared size the file cannot hold or memory cannot take,
    before the parser allocates for it."""
    from .validation import physical_memory
    if len(banner) != 5 or size_tokens is None:
        return                                   # the parser names what is wrong
    layout, symmetric = banner[2].lower(), banner[4].lower() != b"general"
    try:
        sizes = [int(v) for v in size_tokens]
    except ValueError:
        return
    if any(v < 0 for v in sizes) or len(sizes) != (3 if layout == b"coordinate" else 2):
        return
    m, n = sizes[:2]
    if m == 0 or n == 0:                          # the parser divides by zero on an empty array
        raise DataFileError(f"{path}: holds an empty {m}×{n} matrix")
    if symmetric and m != n:
        raise DataFileError(f"{path}: the header declares a {banner[4].decode('ascii', 'replace')} {m}×{n} "
                            "matrix; a symmetric matrix must be square")
    if layout == b"coordinate":
        stored, min_bytes, needed = sizes[2], 4, (m + 1) * 8 + sizes[2] * 48 * (2 if symmetric else 1)
        if stored > m * n:
            raise DataFileError(f"{path}: the header declares {stored} entries for a {m}×{n} matrix")
    else:
        stored = m * (m + 1) // 2 if symmetric else m * n
        min_bytes, needed = 2, 16 * m * n
    if not gz and stored * min_bytes > os.path.getsize(path):
        raise DataFileError(f"{path}: the header declares a {m}×{n} matrix with {stored} entries, more than "
                            f"the file's {os.path.getsize(path)} bytes can hold (truncated or damaged?)")
    total = physical_memory()
    if total is not None and needed > total:
        raise DataFileError(f"{path}: the header declares a {m}×{n} matrix with {stored} entries, which would "
                            f"need about {needed / 2**30:,.1f} GiB, more than this machine's "
                            f"{total / 2**30:,.1f} GiB of memory")


def _read_mtx(path, gz=False):
    try:
        banner, size_tokens, ends_with_newline = _scan_mtx(path, gz)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFileError(f"{path}: cannot read the file (damaged or truncated: {exc})") from None
    _check_mtx_size(path, gz, banner, size_tokens)
    try:
        source = path
        if not ends_with_newline:             # the parser would read past the end of the last line
            with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
                source = _io.BytesIO(fh.read() + b"\n")
        M = scipy.io.mmread(source)
    except Exception as exc:  # noqa: BLE001 - the parser raises many types; all mean "bad file"
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataFileError(f"{path}: not a valid Matrix Market file ({msg})") from None
    return LabeledMatrix(_as_matrix(path, M), None, None, path)


# -- Matrix Market labels: 10x folders and nmfkit's sibling files ---------------------------------
TENX_ROWS = ("features.tsv", "genes.tsv")    # 10x Genomics: gene id, gene symbol[, feature type]
TENX_COLS = "barcodes.tsv"


def _existing(folder, name):
    """folder/name or folder/name.gz, whichever exists (None if neither)."""
    for candidate in (name, name + ".gz"):
        full = os.path.join(folder, candidate)
        if os.path.isfile(full):
            return full
    return None


def _tenx_files(folder):
    """(matrix, features, barcodes) paths of a 10x Genomics folder, or None."""
    matrix = _existing(folder, "matrix.mtx")
    rows = next((f for f in (_existing(folder, n) for n in TENX_ROWS) if f), None)
    cols = _existing(folder, TENX_COLS)
    return (matrix, rows, cols) if matrix and rows and cols else None


def label_files(path) -> tuple[str, str]:
    """The files next to `name.mtx(.gz)` that hold its row and column names: `name.rows.tsv` and
    `name.cols.tsv` (one name per line; read also when gzip-compressed)."""
    folder, name = os.path.split(os.fspath(path))
    stem = name[:-3] if name.lower().endswith(".gz") else name
    stem = stem[:-4] if stem.lower().endswith(".mtx") else stem
    return os.path.join(folder, stem + ".rows.tsv"), os.path.join(folder, stem + ".cols.tsv")


def _read_names(path, count, what, matrix_path, column=0):
    """`count` names from a one-name-per-line file (tab-separated: the `column`-th field, or the first
    when a line has fewer fields)."""
    try:
        with (gzip.open(path, "rt", encoding="utf-8-sig") if path.lower().endswith(".gz")
              else open(path, encoding="utf-8-sig")) as fh:
            lines = fh.read().splitlines()
    except UnicodeDecodeError:
        raise DataFileError(f"{path}: not UTF-8 text") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFileError(f"{path}: cannot read the file (damaged or truncated: {exc})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) != count:
        raise DataFileError(f"{path}: has {len(lines)} {what} names, but {matrix_path} has {count} {what}s")
    names = []
    for line in lines:
        fields = line.split("\t")
        names.append(fields[column] if len(fields) > column else fields[0])
    return names


def _read_tenx(matrix, features, barcodes):
    """A 10x Genomics matrix: genes × cells, named by gene symbol (the id where a line has none) and
    barcode."""
    M = _read_mtx(matrix, matrix.lower().endswith(".gz"))
    m, n = M.shape
    rows = _read_names(features, m, "row", matrix, column=1)
    cols = _read_names(barcodes, n, "column", matrix)
    return LabeledMatrix(M.X, rows, cols, os.path.dirname(matrix) or ".", format="10x")


def _read_mtx_labeled(path, gz):
    folder, name = os.path.split(path)
    tenx = _tenx_files(folder or ".")
    if tenx is not None and os.path.samefile(tenx[0], path):
        lm = _read_tenx(*tenx)
        lm.path = path
        return lm
    lm = _read_mtx(path, gz)
    m, n = lm.shape
    for which, (plain, count) in enumerate(zip(label_files(path), (m, n))):
        found = _existing(*os.path.split(plain))
        if found:
            names = _read_names(found, count, ("row", "column")[which], path)
            if which == 0:
                lm.row_names = names
            else:
                lm.col_names = names
    return lm


def _read_h5ad(path):
    try:
        import anndata
    except ImportError:
        raise DataFileError(f"{path}: reading .h5ad files needs the anndata package: "
                            "pip install nmfkit[anndata]") from None
    try:
        adata = anndata.read_h5ad(path)
    except Exception as exc:  # noqa: BLE001 - h5py and anndata raise many types
        raise DataFileError(f"{path}: not a valid .h5ad file ({str(exc).splitlines()[0] if str(exc) else exc!r})") \
            from None
    if adata.X is None:
        raise DataFileError(f"{path}: the AnnData object has no X matrix")
    return LabeledMatrix(_as_matrix(path, adata.X), [str(v) for v in adata.obs_names],
                         [str(v) for v in adata.var_names], path)


def _pyarrow(path):
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise DataFileError(f"{path}: Parquet files need the pyarrow package: pip install nmfkit[parquet]") from None
    return pyarrow


def _read_parquet(path):
    """Numeric columns → the matrix's columns; one text column (or a saved index) → row labels."""
    pa = _pyarrow(path)
    try:
        table = pa.parquet.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types; all mean "bad file"
        raise DataFileError(f"{path}: not a valid Parquet file ({str(exc).splitlines()[0]})") from None
    numeric, labels = [], None
    for name, column in zip(table.column_names, table.columns):
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            numeric.append(name)
        elif (pa.types.is_string(kind) or pa.types.is_large_string(kind)) and labels is None:
            labels = [str(v) for v in column.to_pylist()]
        else:
            raise DataFileError(f"{path}: column {name!r} is {kind}, not a number (only one text column, "
                                "the row labels, is allowed)")
    if not numeric:
        raise DataFileError(f"{path}: no numeric columns")
    X = np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in numeric])
    return LabeledMatrix(_as_matrix(path, X), labels, [str(c) for c in numeric], path)


# -- nmfkit's own archives (models, checkpoints) ---------------------------------------------------
def read_archive(path, kind: str, fmt: str) -> tuple[dict, dict]:
    """(metadata, arrays) of an nmfkit .npz archive: arrays plus a JSON string `meta` whose "format" is
    `fmt`.  Nothing is unpickled; anything else, damaged or truncated is a one-line `DataFileError`
    naming the file (`kind` says what was expected: "model", "checkpoint")."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataFileError(f"{path}: is a directory, not an nmfkit {kind} file")
    not_ours = f"{path}: not an nmfkit {kind} file"
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"PK\x03\x04":          # a pickle, a .npy, text: never handed to np.load
                raise DataFileError(f"{not_ours} (not an .npz archive)")
        with np.load(path, allow_pickle=False) as z:
            if "meta" not in z.files:
                raise DataFileError(f"{not_ours} (no metadata)")
            raw = z["meta"]
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise DataFileError(f"{not_ours} (malformed metadata)")
            meta = json.loads(raw.tobytes().decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != fmt:
                raise DataFileError(not_ours)
            arrays = {k: z[k] for k in z.files if k != "meta"}
    except DataFileError:
        raise
    except PermissionError:
        raise DataFileError(f"{path}: permission denied") from None
    except Exception as exc:  # noqa: BLE001 - zipfile, zlib, NumPy and json raise many types; all mean "damaged"
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataFileError(f"{path}: damaged or truncated nmfkit {kind} file ({msg})") from None
    return meta, arrays


def check_fields(path, meta: dict, fields: dict, kind: str) -> None:
    """Every `fields` key (name → type or tuple of types) is in an archive's metadata with that type
    (a bool counts only where bool is asked for), else a one-line DataFileError naming the file."""
    for key, types in fields.items():
        if key not in meta:
            raise DataFileError(f"{path}: the {kind} has no {key!r} field")
        value, wanted = meta[key], types if isinstance(types, tuple) else (types,)
        if not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted):
            names = " or ".join("None" if t is type(None) else t.__name__ for t in wanted)
            raise DataFileError(f"{path}: the {kind}'s {key!r} field is malformed ({value!r}, not a {names})")


def signed_factors(options) -> set:
    """The factors ("W", "H") a fit with these options leaves unconstrained in sign (semi-NMF:
    `nonneg_W=False`); a model's or checkpoint's options say so."""
    options = options if isinstance(options, dict) else {}
    return {name for name in ("W", "H") if options.get(f"nonneg_{name}") is False}


def check_factor(path, name, A, kind="model", signed=False):
    """A factor read from an archive: a finite 2-D float array, non-negative unless the fit left it
    `signed` (semi-NMF), else a DataFileError."""
    if not isinstance(A, np.ndarray) or A.ndim != 2 or A.dtype.kind != "f" or 0 in A.shape:
        what = f"a {A.ndim}-D {A.dtype} array of shape {A.shape}" if isinstance(A, np.ndarray) else "missing"
        raise DataFileError(f"{path}: {name} is {what}; an nmfkit {kind} holds non-empty 2-D float factors")
    if not np.isfinite(A).all():
        raise DataFileError(f"{path}: {name} holds {int((~np.isfinite(A)).sum())} NaN or infinite values")
    if not signed and (A < 0).any():
        raise DataFileError(f"{path}: {name} holds {int((A < 0).sum())} negative values; factors are non-negative")
    return A


# -- value checks --------------------------------------------------------------------------------
def _check_values(X, locate, allow_negative, allow_missing):
    """Refuse infinite, NaN (unless allowed) and negative (unless allowed) entries, naming the first."""
    values = X.data if sp.issparse(X) else X
    if values.dtype.kind != "f" and allow_negative:
        return
    problems = []
    if values.dtype.kind == "f":
        problems.append((np.isinf(values), "infinite value", ""))
        if not allow_missing:
            problems.append((np.isnan(values), "missing value", "; missing values are not supported here"))
    if not allow_negative:
        problems.append((values < 0, "negative value", "; NMF needs non-negative data (shift or clip it first)"))
    for flags, what, hint in problems:
        if flags.any():
            p = int(np.flatnonzero(flags.ravel())[0])
            if sp.issparse(X):
                i = int(np.searchsorted(X.indptr, p, side="right") - 1)
                j = int(X.indices[p])
            else:
                i, j = divmod(p, X.shape[1])
            count = int(flags.sum())
            more = f" ({count} such entries in all)" if count > 1 else ""
            raise DataFileError(f"{locate(i, j)}: {what} {values.ravel()[p]:g}{more}{hint}")


# -- writing -------------------------------------------------------------------------------------
def write_matrix(path, X, row_names=None, col_names=None, corner=None) -> str:
    """Write X (dense or sparse) with optional names to .csv/.tsv/.txt (optionally .gz), .npy, .npz,
    .mtx or .parquet (with pyarrow).

    Text keeps names as a header row and a first column (`corner` is the header's first cell, e.g.
    "gene"; empty by default); .npz keeps them as string arrays next to the matrix (still readable by
    scipy.sparse.load_npz); .parquet keeps them as column names and a text column "row"; .mtx keeps
    them in the files `label_files(path)` names (`name.rows.tsv`, `name.cols.tsv`, one name a line),
    which `read_matrix` reads back; .npy holds values only.  Each file is written under a temporary
    name and renamed into place, so an interrupted write leaves any previous file at `path` whole.
    """
    path = os.fspath(path)
    ext, gz = _split_ext(path)
    m, n = X.shape
    row_names = None if row_names is None else [str(v) for v in row_names]
    col_names = None if col_names is None else [str(v) for v in col_names]
    for names, size, axis in ((row_names, m, "row"), (col_names, n, "column")):
        if names is not None and len(names) != size:
            raise ValueError(f"{len(names)} {axis} names for a matrix with {size} {axis}s")
    if ext in TEXT_DELIMITERS:
        delimiter = TEXT_DELIMITERS[ext] or "\t"
        with _atomic_text(path, gz) as fh:
            out = csv.writer(fh, delimiter=delimiter, lineterminator="\n")
            if col_names is not None:
                out.writerow(([corner or ""] if row_names is not None else []) + col_names)
            for i in range(m):
                row = X[i].toarray().ravel() if sp.issparse(X) else np.asarray(X[i]).ravel()
                cells = [repr(float(v)) for v in row.tolist()]   # shortest exact decimal form
                out.writerow(([row_names[i]] if row_names is not None else []) + cells)
    elif ext == ".npy" and not gz:
        with atomic_write(path, "wb") as fh:
            np.save(fh, X.toarray() if sp.issparse(X) else np.asarray(X), allow_pickle=False)
    elif ext == ".npz" and not gz:
        names = {k: np.array(v, dtype=str) for k, v in (("row_names", row_names), ("col_names", col_names))
                 if v is not None}
        if sp.issparse(X):
            C = sp.csr_matrix(X)
            arrays = dict(indices=C.indices, indptr=C.indptr, format=np.array(b"csr"), shape=np.array(C.shape),
                          data=C.data)
        else:
            arrays = dict(X=np.asarray(X))
        with atomic_write(path, "wb") as fh:
            np.savez_compressed(fh, **arrays, **names)
    elif ext == ".mtx":
        target = sp.coo_matrix(X) if sp.issparse(X) else np.asarray(X)
        for names, label_path in zip((row_names, col_names), label_files(path)):
            stale = _existing(*os.path.split(label_path))
            if names is None and stale:
                raise ValueError(f"{path}: {stale} would name this matrix's "
                                 f"{'rows' if label_path.endswith('.rows.tsv') else 'columns'}; pass the names "
                                 "or remove that file")
        for names, label_path in zip((row_names, col_names), label_files(path)):
            if names is not None:
                if any("\n" in v or "\r" in v for v in names):
                    raise ValueError(f"{path}: a name holds a line break; .mtx names are one a line")
                with atomic_write(label_path, "w", encoding="utf-8", newline="\n") as fh:
                    fh.write("".join(v + "\n" for v in names))
        with atomic_write(path, "wb") as raw:
            if gz:
                with gzip.GzipFile(fileobj=raw, mode="wb") as fh:
                    scipy.io.mmwrite(fh, target)
            else:
                scipy.io.mmwrite(raw, target)
    elif ext == ".parquet" and not gz:
        pa = _pyarrow(path)
        A = X.toarray() if sp.issparse(X) else np.asarray(X)
        names = [str(c) for c in col_names] if col_names is not None else [f"V{j + 1}" for j in range(A.shape[1])]
        columns = {"row": [str(r) for r in row_names]} if row_names is not None else {}
        columns.update({name: A[:, j] for j, name in enumerate(names)})
        with atomic_path(path) as tmp:
            pa.parquet.write_table(pa.table(columns), tmp)
    else:
        raise ValueError(f"{path}: cannot write this format; use .csv, .tsv, .txt (optionally .gz), "
                         ".npy, .npz, .mtx or .parquet")
    return path


@contextlib.contextmanager
def _atomic_text(path, gz):
    """A UTF-8 text file object (gzip-compressed when `gz`) written atomically to `path`."""
    with atomic_write(path, "wb") as raw:
        if gz:
            with gzip.GzipFile(filename=os.path.basename(path)[:-3], fileobj=raw, mode="wb") as zipped, \
                    _io.TextIOWrapper(zipped, encoding="utf-8", newline="") as fh:
                yield fh
        else:
            with _io.TextIOWrapper(raw, encoding="utf-8", newline="") as fh:
                yield fh
