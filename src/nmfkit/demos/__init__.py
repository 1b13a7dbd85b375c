"""Demonstrations on real data: `nmfkit demo NAME` calls `DEMOS[NAME](out_dir, quick=...)`.

    faces   parts of faces (Lee & Seung 1999): NMF basis images beside PCA's eigenfaces
    topics  topics of news text: tf-idf NMF, topics read off their top words
    golub   programs of genes (Brunet et al. 2004): metagenes and consensus clustering

Each `run(out_dir="out/demo", quick=False) -> dict` writes PNGs, CSVs and one self-contained HTML
report into out_dir, prints a short summary, and returns the numbers and the files written.
The data come from optional packages: `pip install nmfkit[data]`.
"""
from __future__ import annotations

from . import faces, golub, topics

DEMOS = {"faces": faces.run, "topics": topics.run, "golub": golub.run}

__all__ = ["DEMOS"]
