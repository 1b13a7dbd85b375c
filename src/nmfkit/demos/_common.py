"""Small helpers shared by the demos: output folder, figure saving, CSV writing, cluster matching.

Figures use matplotlib's object API (`matplotlib.figure.Figure`), never pyplot's global state, so
the demos run headless.  `misassigned` counts the samples outside their cluster's class under the
best one-to-one matching of clusters to classes (all k! matchings when k ≤ number of classes, the
majority class of each cluster otherwise) — cost O(k!·n), k ≤ 5 here.
"""
from __future__ import annotations

import csv
import itertools
import os
import time

import numpy as np

from .._files import atomic_write
from .._files import save_figure as atomic_save_figure


def prepare_out(out_dir) -> str:
    """Create the output folder and return it as a str."""
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    return out_dir


def save_figure(fig, out_dir, name, files, dpi=110) -> str:
    """Write `fig` as out_dir/name (PNG), record the path in `files`, return it."""
    path = atomic_save_figure(fig, os.path.join(out_dir, name), dpi=dpi)
    files.append(path)
    return path


def write_csv(path, header, rows, files) -> str:
    with atomic_write(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    files.append(path)
    return path


def new_figure(figsize):
    from matplotlib.figure import Figure
    return Figure(figsize=figsize, layout="constrained")


class Clock:
    """Seconds since construction."""

    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start


def misassigned(clusters, labels) -> tuple[int, dict]:
    """(number of samples outside their cluster's matched class, {cluster: class})."""
    clusters = np.asarray(clusters)
    labels = np.asarray(labels).astype(str)
    cluster_ids = list(np.unique(clusters))
    classes = [str(y) for y in np.unique(labels)]
    counts = np.array([[np.sum((clusters == c) & (labels == y)) for y in classes] for c in cluster_ids])
    if len(cluster_ids) <= len(classes):
        best, best_match = -1, None
        for perm in itertools.permutations(range(len(classes)), len(cluster_ids)):
            hits = sum(counts[i, j] for i, j in enumerate(perm))
            if hits > best:
                best, best_match = hits, perm
        mapping = {int(c): classes[j] for c, j in zip(cluster_ids, best_match)}
    else:
        best = int(counts.max(axis=1).sum())
        mapping = {int(c): classes[int(np.argmax(counts[i]))] for i, c in enumerate(cluster_ids)}
    return int(clusters.size - best), mapping


def crosstab(clusters, labels) -> list[dict]:
    """Rows 'cluster c' with the count of each class in it (for the report tables)."""
    clusters = np.asarray(clusters)
    labels = np.asarray(labels).astype(str)
    classes = list(np.unique(labels))
    return [{"cluster": int(c) + 1, **{y: int(np.sum((clusters == c) & (labels == y))) for y in classes}}
            for c in np.unique(clusters)]
