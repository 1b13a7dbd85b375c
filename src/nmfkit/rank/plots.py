"""Figures for rank selection (matplotlib Figures built without pyplot, so no GUI
backend is touched; save them with `fig.savefig(path)`).

survey_plot        every measure of a `RankSurvey` against rank, real data (solid)
                   and randomised data (dashed): structure shows where the real
                   curve beats the chance one.
consensus_heatmap  the consensus matrix ordered by its average-linkage
                   dendrogram (drawn on top), with a bar of the consensus clusters
                   (numbered 1..k, in grey) and, optionally, a colour bar of known
                   sample labels.
cv_plot            held-out error per rank: mean ± one standard error, each
                   split faintly, the chosen rank marked.
Cost: O(n²) for the heatmap, negligible otherwise.
"""
from __future__ import annotations

import numpy as np


def _pyplot():
    """matplotlib and its Figure class; figures are built without pyplot (no GUI backend)."""
    try:
        import matplotlib
        import matplotlib.patches  # noqa: F401  (legend patches)
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install nmfkit[plot]") from None
    return matplotlib, Figure


SURVEY_PANELS = (("cophenetic", "cophenetic"), ("dispersion", "dispersion"), ("silhouette", "silhouette"),
                 ("rss", "residual sum of squares"), ("evar", "explained variance"),
                 (("sparseness_W", "sparseness_H"), "sparseness (W, H)"))


def survey_plot(survey, figsize=(11, 6.5)):
    """All survey measures against rank; real data solid, randomised data dashed."""
    _, Figure = _pyplot()
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(2, 3).ravel()
    ranks = np.asarray(survey.ranks)
    has_random = survey.random_rows is not None
    for ax, (names, title) in zip(axes, SURVEY_PANELS):
        names = names if isinstance(names, tuple) else (names,)
        for name, colour in zip(names, ("C0", "C1")):
            label = name.replace("sparseness_", "") if len(names) > 1 else "data"
            ax.plot(ranks, survey.column(name), "o-", color=colour, label=label)
            if has_random:
                ax.plot(ranks, survey.column(name, random=True), "s--", color=colour, alpha=0.6,
                        label=f"{label} (randomised)")
        ax.set_title(title)
        ax.set_xlabel("rank")
        ax.set_xticks(ranks)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    axes[-1].legend(fontsize="small")
    solver = survey.options.get("solver", "?")
    fig.suptitle(f"Rank survey ({solver}/{survey.options.get('loss', '?')}, "
                 f"{survey.options.get('n_runs', '?')} runs per rank)")
    return fig


def _codes(values):
    names, codes = np.unique(np.asarray(values).astype(str), return_inverse=True)
    return names, codes


def _cluster_bar(ax, clusters):
    """Contiguous runs of equal cluster numbers as alternating grey blocks, each labelled with its
    number (after the dendrogram ordering a cluster is one block)."""
    edges = np.flatnonzero(clusters[1:] != clusters[:-1]) + 1
    starts, stops = np.r_[0, edges], np.r_[edges, clusters.size]
    shade = np.zeros(clusters.size)
    for i, (a, b) in enumerate(zip(starts, stops)):
        shade[a:b] = 0.55 if i % 2 else 0.8
    ax.imshow(shade[None, :], aspect="auto", cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for a, b in zip(starts, stops):
        if b - a >= max(1, clusters.size // 60):
            ax.text((a + b - 1) / 2, 0, str(clusters[a]), ha="center", va="center", fontsize="x-small")


def consensus_heatmap(result, labels=None, sample_names=None, figsize=(7.5, 7)):
    """Consensus matrix ordered by the average-linkage dendrogram, with cluster annotation.

    result : a `ConsensusResult`.  labels : optional known classes of the samples
    (drawn as a second annotation bar)."""
    from scipy.cluster.hierarchy import dendrogram
    matplotlib, Figure = _pyplot()
    C = result.consensus
    n = C.shape[0]
    tree = result.linkage()
    fig = Figure(figsize=figsize)
    bars = 1 + (labels is not None)
    grid = fig.add_gridspec(2 + bars, 2, height_ratios=[1.2] + [0.18] * bars + [6], width_ratios=[30, 1],
                            hspace=0.03, wspace=0.03)
    ax_tree = fig.add_subplot(grid[0, 0])
    info = dendrogram(tree, ax=ax_tree, no_labels=True, color_threshold=0, above_threshold_color="0.3")
    order = np.asarray(info["leaves"])
    ax_tree.set_axis_off()
    ax_tree.set_title(f"consensus, rank {result.rank}: cophenetic {result.cophenetic:.4f}, "
                      f"dispersion {result.dispersion:.4f} ({result.n_runs} runs)", fontsize="medium")
    annotations = [("cluster", result.sample_clusters + 1)]
    if labels is not None:
        if len(labels) != n:
            raise ValueError(f"got {len(labels)} labels for {n} samples")
        annotations.append(("label", labels))
    cmap = matplotlib.colormaps["tab10"]
    for row, (title, values) in enumerate(annotations, start=1):
        ax = fig.add_subplot(grid[row, 0])
        names, codes = _codes(values)
        if title == "cluster":      # shades of grey, numbered: never the colours of the known classes
            _cluster_bar(ax, np.asarray(values)[order])
        else:
            ax.imshow(codes[order][None, :], aspect="auto", cmap=cmap, vmin=0, vmax=9, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([0])
        ax.set_yticklabels([title], fontsize="small")
        if title == "label":
            handles = [matplotlib.patches.Patch(color=cmap(i % 10), label=name) for i, name in enumerate(names)]
            fig.legend(handles=handles, loc="lower left", fontsize="small", ncol=min(len(names), 5), frameon=False)
    ax = fig.add_subplot(grid[-1, 0])
    image = ax.imshow(C[np.ix_(order, order)], cmap="RdYlBu_r", vmin=0, vmax=1, interpolation="nearest",
                      aspect="auto")
    if sample_names is not None and n <= 80:
        ax.set_yticks(range(n))
        ax.set_yticklabels(np.asarray(sample_names)[order], fontsize=6)
    else:
        ax.set_yticks([])
    ax.set_xticks([])
    fig.colorbar(image, cax=fig.add_subplot(grid[-1, 1]), label="consensus")
    return fig


def cv_plot(cv, figsize=(6, 4)):
    """Held-out error against rank: mean ± standard error, each split, the chosen rank."""
    _, Figure = _pyplot()
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    ranks = np.asarray(cv.ranks)
    for s in range(cv.errors.shape[1]):
        ax.plot(ranks, cv.errors[:, s], "-", color="0.7", lw=0.8, label="splits" if s == 0 else None)
    se = np.nan_to_num(cv.se)
    ax.errorbar(ranks, cv.mean, yerr=se, fmt="o-", color="C0", capsize=3, label="mean ± s.e.")
    ax.axvline(cv.best_rank, color="C3", ls="--", label=f"chosen ({cv.rule}): {cv.best_rank}")
    ax.set_xlabel("rank")
    ax.set_ylabel(f"held-out {'mean squared error' if cv.loss == 'frobenius' else 'KL divergence per entry'}")
    ax.set_xticks(ranks)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig
