"""Matplotlib figures for factorizations and their convergence.

Every function returns a `matplotlib.figure.Figure` (built with the object API, never pyplot's global
state, so it works headless and in threads) and accepts `fig=` or `ax=` to draw into an existing one.
`save(fig, path)` writes PNG or SVG according to the file extension.

  convergence(history)       log of each tracked convergence quantity against the iteration
  objective_vs_time(fits)    objective against wall time for several fits of one problem
  basis_images(W, shape)     grid of the columns of W reshaped as images (faces: parts-based bases)
  heatmap(A)                 coefficient (H) or basis (W) matrix as a heatmap
  top_features(W, names)     one bar chart per component: its `n` largest weights with their names

Cost: drawing only; the largest is a heatmap of the whole matrix (downsampled by imshow).
matplotlib is a core dependency of nmfkit; figures are made with its object API (no pyplot state).
"""
from __future__ import annotations

import math
import os

import numpy as np

from ._files import save_figure as atomic_save_figure

# legend names of the five classic curves, in order; other tracked columns follow with their own names
SEED_LEGEND = {
    "objective": "||M-UV||^2",
    "diff_norm_V": "0.5||U(Vk-Vk1)||^2",
    "inner_product": "inner Product 1",
    "inner_product2": "inner Product 2",
    "decrease_V": "g(Vk)-g(Vk1)",
}
SEED_COLUMNS = tuple(SEED_LEGEND)


def _figure_module():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from None
    return Figure


def _axes(ax=None, fig=None, figsize=(6.4, 4.2)):
    """(fig, ax): the given axes, a new axes on the given figure, or a new figure."""
    if ax is not None:
        return ax.figure, ax
    if fig is None:
        fig = _figure_module()(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def save(fig, path, dpi=120) -> str:
    """Write `fig` to `path`; the format (png, svg, pdf) follows the extension."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in ("png", "svg", "pdf"):
        raise ValueError(f"cannot tell the image format of {path!r}: use a .png, .svg or .pdf name")
    return atomic_save_figure(fig, path, dpi=dpi)      # a temporary file renamed into place


def _history_columns(history):
    """dict name -> float array from a dict, a pandas DataFrame, a structured array or a Factorization."""
    history = getattr(history, "history", history)
    if hasattr(history, "dtype") and history.dtype.names:
        return {k: np.asarray(history[k], dtype=float) for k in history.dtype.names}
    return {k: np.asarray(history[k], dtype=float) for k in list(history.keys())}


def convergence(history, columns=None, *, log=True, ax=None, fig=None, title=None):
    """Natural log of each tracked convergence quantity against the iteration.

    `columns` defaults to five curves (objective, ½‖U(Vk−Vk1)‖², the two inner products,
    g(Vk)−g(Vk1)) with their usual legend names; any history column can be named.  The objective is
    recorded after each step.
    Non-positive values have no logarithm and are left as gaps."""
    cols = _history_columns(history)
    if columns is None:
        columns = [c for c in SEED_COLUMNS if c in cols] or ["objective"]
    missing = [c for c in columns if c not in cols]
    if missing:
        raise ValueError(f"history has no column(s) {missing}; it has {sorted(cols)} "
                         "(fit with track=True for the convergence quantities)")
    fig, ax = _axes(ax, fig)
    it = cols.get("iteration", np.arange(len(cols[columns[0]])))
    for name in columns:
        y = cols[name]
        if log:
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.where(y > 0, np.log(np.where(y > 0, y, 1.0)), np.nan)
        ax.plot(it, y, "-", label=SEED_LEGEND.get(name, name))
    ax.set_xlabel("time steps")
    seed_figure = all(c in SEED_LEGEND for c in columns)
    ax.set_ylabel(("log loss" if seed_figure else "natural log") if log else "value")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def objective_vs_time(fits, labels=None, *, log=True, ax=None, fig=None, title=None):
    """Objective against wall time (seconds) for several fits of one problem.

    `fits`: a list of Factorizations (or histories), or a dict label -> fit."""
    if isinstance(fits, dict):
        labels, fits = list(fits), list(fits.values())
    if labels is None:
        labels = [getattr(f, "options", {}).get("solver", f"fit {i + 1}") for i, f in enumerate(fits)]
    fig, ax = _axes(ax, fig)
    for f, label in zip(fits, labels):
        cols = _history_columns(f)
        ax.plot(cols["seconds"], cols["objective"], "-", marker=".", markersize=3, label=str(label))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("seconds")
    ax.set_ylabel("objective")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def basis_images(W, image_shape, ncols=None, *, order="C", cmap="gray", normalize=True,
                 fig=None, figsize=None, titles=True):
    """Grid of the columns of W (m×k) reshaped to `image_shape` (h, w), h·w = m.

    Each image is scaled to its own maximum when `normalize` (parts-based bases differ in scale).
    `order="F"` for images stored column-major (MATLAB/R data)."""
    W = np.asarray(W)
    if W.ndim != 2:
        raise ValueError(f"W must be a 2-D m×k matrix, got shape {W.shape}")
    h, w = (int(v) for v in image_shape)
    if h * w != W.shape[0]:
        raise ValueError(f"image_shape {h}×{w} = {h * w} pixels does not match W's {W.shape[0]} rows")
    k = W.shape[1]
    ncols = int(ncols) if ncols else max(1, math.ceil(math.sqrt(k)))
    nrows = max(1, math.ceil(k / ncols))
    if fig is None:
        fig = _figure_module()(figsize=figsize or (1.2 * ncols + 0.4, 1.2 * nrows + 0.4 * bool(titles)),
                               layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for j, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if j >= k:
            continue
        img = W[:, j].reshape(h, w, order=order)
        top = img.max() if normalize and img.max() > 0 else None
        ax.imshow(img, cmap=cmap, vmin=0 if top else None, vmax=top, interpolation="nearest")
        if titles:
            ax.set_title(str(j + 1), fontsize="small")
    return fig


def heatmap(A, *, row_names=None, col_names=None, cmap="viridis", ax=None, fig=None, title=None,
            xlabel=None, ylabel=None, colorbar=True, max_labels=40):
    """A matrix (H: components × samples, or W: features × components) as a heatmap."""
    A = np.asarray(A, dtype=float)
    if A.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D matrix, got shape {A.shape}")
    fig, ax = _axes(ax, fig)
    image = ax.imshow(A, aspect="auto", cmap=cmap, interpolation="nearest")
    for names, n, set_ticks, set_labels in ((row_names, A.shape[0], ax.set_yticks, ax.set_yticklabels),
                                            (col_names, A.shape[1], ax.set_xticks, ax.set_xticklabels)):
        if names is not None and len(names) == n and n <= max_labels:
            set_ticks(np.arange(n))
            set_labels([str(s) for s in names], fontsize="x-small")
    if colorbar:
        fig.colorbar(image, ax=ax, shrink=0.8)
    for setter, text in ((ax.set_title, title), (ax.set_xlabel, xlabel), (ax.set_ylabel, ylabel)):
        if text:
            setter(text)
    return fig


def coefficient_heatmap(H, **kw):
    """H (k×n) as a heatmap: rows are components, columns samples."""
    kw.setdefault("title", "coefficients H")
    kw.setdefault("xlabel", "sample")
    kw.setdefault("ylabel", "component")
    kw.setdefault("row_names", [str(i + 1) for i in range(np.shape(H)[0])])
    return heatmap(H, **kw)


def basis_heatmap(W, **kw):
    """W (m×k) as a heatmap: rows are features, columns components."""
    kw.setdefault("title", "basis W")
    kw.setdefault("xlabel", "component")
    kw.setdefault("ylabel", "feature")
    kw.setdefault("col_names", [str(i + 1) for i in range(np.shape(W)[1])])
    return heatmap(W, **kw)


def top_features(W, names=None, n=10, *, components=None, ncols=None, fig=None, color="C0"):
    """One horizontal bar chart per component (column of W): its `n` largest weights and names.

    Text topics (as in Lee & Seung's 1999 encyclopedia example) read as the words with the largest weights."""
    W = np.asarray(W, dtype=float)
    if W.ndim != 2:
        raise ValueError(f"W must be a 2-D m×k matrix, got shape {W.shape}")
    m, k = W.shape
    if names is None:
        names = [str(i) for i in range(m)]
    if len(names) != m:
        raise ValueError(f"{len(names)} feature names for {m} rows of W")
    components = list(range(k)) if components is None else [int(c) for c in components]
    n = max(1, min(int(n), m))
    ncols = int(ncols) if ncols else min(len(components), 5)
    nrows = math.ceil(len(components) / ncols)
    if fig is None:
        fig = _figure_module()(figsize=(2.6 * ncols, 0.22 * n * nrows + 0.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, c in zip(axes.flat, components):
        order = np.argsort(W[:, c])[::-1][:n]
        ax.barh(np.arange(n), W[order, c], color=color)
        ax.set_yticks(np.arange(n))
        ax.set_yticklabels([str(names[i]) for i in order], fontsize="x-small")
        ax.invert_yaxis()                       # largest on top
        ax.set_title(f"component {c + 1}", fontsize="small")
        ax.tick_params(axis="x", labelsize="x-small")
    for ax in list(axes.flat)[len(components):]:
        ax.set_axis_off()
    return fig
