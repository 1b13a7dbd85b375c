"""Matplotlib figures for factorizations and their convergence.

Every function returns a `matplotlib.figure.Figure` (built with the object API, never pyplot's global
state, so it works headless and in threads) and accepts `fig=` or `ax=` to draw into an existing one.
`save(fig, path)` writes PNG or SVG according to the file extension.

  convergence(history)       each tracked convergence quantity against the iteration, on a log axis
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

# legend names of the five classic curves of Lee & Seung's analysis (M = X, U = W, V = H; g is the
# H-subproblem ½‖X − W_k H‖² of the step), in order; other tracked columns follow with their own names
CLASSIC_LEGEND = {
    "objective": "objective ½‖X − WH‖²",
    "diff_norm_V": "½‖W(Hₖ − Hₖ₊₁)‖²",
    "inner_product": "⟨∇g(Hₖ₊₁), Hₖ − Hₖ₊₁⟩",
    "inner_product2": "its sum-of-squares form (equal on MU steps)",
    "decrease_V": "g(Hₖ) − g(Hₖ₊₁)",
}
CLASSIC_COLUMNS = tuple(CLASSIC_LEGEND)
LOSS_NAMES = {"frobenius": "½‖X − WH‖²", "kl": "KL divergence D(X‖WH)", "is": "Itakura–Saito divergence"}


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


def _loss_of(history):
    options = getattr(history, "options", None) or {}
    return options.get("loss")


def objective_label(loss=None) -> str:
    """Legend text of the objective column for a fit of `loss` ("objective" when unknown)."""
    return f"objective {LOSS_NAMES[loss]}" if loss in LOSS_NAMES else "objective"


def _signed_decades(values, linthresh, per_side=5):
    """Ticks of a symmetric-log axis: 0 and at most `per_side` powers of 10 on each side, none at the
    edge of the linear region (where their labels would sit on the one of 0)."""
    ticks = [0.0]
    for sign in (1.0, -1.0):
        side = values[values * sign > 0] * sign
        if side.size == 0:
            continue
        low = math.floor(math.log10(linthresh)) + 1
        high = math.ceil(math.log10(side.max()))
        step = max(1, math.ceil((high - low + 1) / per_side))
        ticks += [sign * 10.0 ** e for e in range(high, low - 1, -step)]
    return sorted(ticks)


def convergence(history, columns=None, *, log=True, ax=None, fig=None, title=None, loss=None):
    """Each tracked convergence quantity against the iteration, on a logarithmic y axis.

    `columns` defaults to the five curves of Lee & Seung's (2001) analysis (the objective,
    ½‖W(Hₖ − Hₖ₊₁)‖², the two forms of the inner product ⟨∇g(Hₖ₊₁), Hₖ − Hₖ₊₁⟩ and the H-subproblem's
    decrease g(Hₖ) − g(Hₖ₊₁), g(H) = ½‖X − WₖH‖²) that are in the history; any history column can be
    named (the default leaves out columns without a finite value, e.g. the Frobenius-only ones of a
    KL fit).  The objective is recorded after each step; its legend names the fit's loss (`loss=`,
    read from a Factorization by default).  When a curve has negative values (extrapolated steps can
    make g rise) the axis is symmetric-logarithmic, so every value is drawn with its sign; otherwise
    it is logarithmic and zeros are left as gaps."""
    cols = _history_columns(history)
    loss = loss if loss is not None else _loss_of(history)
    if columns is None:
        columns = [c for c in CLASSIC_COLUMNS if c in cols and np.isfinite(cols[c]).any()] or ["objective"]
    missing = [c for c in columns if c not in cols]
    if missing:
        raise ValueError(f"history has no column(s) {missing}; it has {sorted(cols)} "
                         "(fit with track=True for the convergence quantities)")
    fig, ax = _axes(ax, fig, figsize=(8.4, 4.2))
    it = cols.get("iteration", np.arange(len(cols[columns[0]])))
    values = np.concatenate([cols[name] for name in columns])
    values = values[np.isfinite(values)]
    signed = log and bool(np.any(values < 0))
    for name in columns:
        label = objective_label(loss) if name == "objective" else CLASSIC_LEGEND.get(name, name)
        ax.plot(it, cols[name], "-", label=label)
    ax.set_xlabel("iteration")
    if signed:
        nonzero = np.abs(values[values != 0])
        linthresh = float(max(nonzero.min(), nonzero.max() * 1e-12))
        ax.set_yscale("symlog", linthresh=linthresh)
        ax.set_yticks(_signed_decades(values, linthresh))
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.set_ylabel("value (signed log scale)")
    elif log:
        ax.set_yscale("log")
        ax.set_ylabel("value (log scale)")
    else:
        ax.set_ylabel("value")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    if title:
        ax.set_title(title)
    return fig


def objective_vs_time(fits, labels=None, *, log=True, ax=None, fig=None, title=None):
    """Objective against wall time (seconds) for several fits of one problem.

    `fits`: a list of Factorizations (or histories), or a dict label -> fit.  A solver's first fit
    in a process includes the one-off compilation of its kernels (Numba) in its first iteration;
    run a short fit of each solver first to compare the solvers' speed rather than compile times."""
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


def basis_images(W, image_shape, ncols=None, *, order="C", cmap=None, normalize=True, signed=None,
                 fig=None, figsize=None, titles=True):
    """Grid of the columns of W (m×k) reshaped to `image_shape` (h, w), h·w = m.

    Each image is scaled to its own maximum when `normalize` (parts-based bases differ in scale).
    Signed bases (PCA's eigenfaces; `signed` defaults to whether W has negative entries) are drawn
    with a diverging colour map centred at 0 (blue negative, red positive), non-negative ones in grey.
    `order="F"` for images stored column-major (MATLAB/R data)."""
    W = np.asarray(W)
    if W.ndim != 2:
        raise ValueError(f"W must be a 2-D m×k matrix, got shape {W.shape}")
    h, w = (int(v) for v in image_shape)
    if h * w != W.shape[0]:
        raise ValueError(f"image_shape {h}×{w} = {h * w} pixels does not match W's {W.shape[0]} rows")
    k = W.shape[1]
    signed = bool(np.any(W < 0)) if signed is None else bool(signed)
    cmap = cmap or ("RdBu_r" if signed else "gray")
    largest = float(np.max(np.abs(W))) if W.size else 0.0
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
        if signed:              # centred at 0: equal reach both ways, so colour shows the sign
            reach = float(np.max(np.abs(img))) if normalize else largest
            reach = reach if reach > 0 else 1.0
            ax.imshow(img, cmap=cmap, vmin=-reach, vmax=reach, interpolation="nearest")
        else:
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
        if names is not None and len(names) == n:
            shown = np.arange(0, n, max(1, math.ceil(n / max_labels)))   # every name, or every s-th one
            set_ticks(shown)
            set_labels([str(names[i]) for i in shown], fontsize="x-small")
    if colorbar:
        fig.colorbar(image, ax=ax, shrink=0.8)
    for setter, text in ((ax.set_title, title), (ax.set_xlabel, xlabel), (ax.set_ylabel, ylabel)):
        if text:
            setter(text)
    return fig


def sample_order(H, groups=None):
    """Column order of H (k×n) that puts alike samples side by side: by `groups` (e.g. consensus
    clusters) when given, else by dominant component (argmax of the column); within a group by the
    dominant coefficient, largest first.  Returns (order, the group of each ordered sample)."""
    H = np.asarray(H, dtype=float)
    dominant = np.argmax(H, axis=0)
    groups = dominant if groups is None else np.asarray(groups)
    if groups.shape != (H.shape[1],):
        raise ValueError(f"got {groups.size} group labels for {H.shape[1]} samples")
    strength = H[dominant, np.arange(H.shape[1])]
    order = np.lexsort((-strength, groups))
    return order, groups[order]


def coefficient_heatmap(H, *, groups=None, order=None, group_name="dominant component", **kw):
    """H (k×n) as a heatmap: rows are components, columns samples.

    `order`: None keeps the samples' order up to 40 samples and otherwise orders them by `groups`
    (cluster labels) or by dominant component (`sample_order`), with lines between the groups;
    True or False forces it."""
    H = np.asarray(H, dtype=float)
    kw.setdefault("title", "coefficients H")
    kw.setdefault("ylabel", "component")
    kw.setdefault("row_names", [str(i + 1) for i in range(np.shape(H)[0])])
    reorder = H.shape[1] > kw.get("max_labels", 40) if order is None else bool(order)
    if not reorder:
        kw.setdefault("xlabel", "sample")
        return heatmap(H, **kw)
    columns, ordered_groups = sample_order(H, groups)
    if kw.get("col_names") is not None:
        kw["col_names"] = [kw["col_names"][j] for j in columns]
    kw.setdefault("xlabel", f"sample, ordered by {group_name}")
    fig = heatmap(H[:, columns], **kw)
    ax = kw.get("ax") or fig.axes[0]
    for edge in np.flatnonzero(ordered_groups[1:] != ordered_groups[:-1]):
        ax.axvline(edge + 0.5, color="white", lw=0.8)
    return fig


def basis_heatmap(W, **kw):
    """W (m×k) as a heatmap: rows are features, columns components."""
    kw.setdefault("title", "basis W")
    kw.setdefault("xlabel", "component")
    kw.setdefault("ylabel", "feature")
    kw.setdefault("col_names", [str(i + 1) for i in range(np.shape(W)[1])])
    return heatmap(W, **kw)


def top_features(W, names=None, n=10, *, components=None, ncols=None, fig=None, color="C0"):
    """One horizontal bar chart per component (column of W): its `n` largest weights and names.
    When `components` shows only some of W's columns, the figure's title says which.

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
    if len(components) < k:
        shown = (f"components {components[0] + 1}–{components[-1] + 1}"
                 if components == list(range(components[0], components[-1] + 1))
                 else "components " + ", ".join(str(c + 1) for c in components))
        fig.suptitle(f"top {n} features of {shown} (of {k})", fontsize="medium")
    return fig
