"""Self-contained HTML reports: one file, figures inlined as base64 PNG, no network access.

    write_html(path, title, sections)

`sections` is a list of (heading, content) pairs (or a dict heading -> content); content is one item
or a list of items, each one of
  matplotlib Figure   -> inline <img src="data:image/png;base64,...">
  str                 -> a paragraph (escaped)
  Html(str)           -> raw HTML, inserted as is
  dict                -> a two-column key/value table
  list of dicts       -> a table, one row per dict (columns: union of the keys, in first-seen order)

`factorization_report(result, path)` assembles the standard report of a fit: summary, parameters,
runs, the consensus of many runs (when given), monotonicity findings, convergence figures (the objective;
with track=True also the quantities of Lee & Seung's analysis) and factor views (basis/coefficient
heatmaps, top features, basis images when `image_shape` is given).
Cost: one PNG render per figure; the file holds no factor values beyond the figures.
"""
from __future__ import annotations

import base64
import html
import io
import os
import time

import numpy as np

from ._files import atomic_write

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em;border-bottom:2px solid #4a7ab5;padding-bottom:.2em}
h2{font-size:1.2em;margin-top:1.8em;color:#2f5d94}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
.table{overflow-x:auto;max-width:100%}
.verdict{background:#eef6ee;border-left:4px solid #3a8a3a;padding:.5em .8em}
th,td{border:1px solid #ccd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#eef2f8}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
.note{color:#555;font-size:.85em}
.warn{color:#9a3b00;font-weight:600}
"""


class Html(str):
    """A string inserted into the report without escaping."""


def figure_to_base64(fig, dpi=110) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return html.escape(f"{float(value):.6g}")
    if isinstance(value, (list, tuple)) and len(value) > 12:
        value = f"[{len(value)} items]"
    return html.escape(str(value))


def _render(item) -> str:
    if isinstance(item, Html):
        return str(item)
    if isinstance(item, str):
        return f"<p>{html.escape(item)}</p>"
    if hasattr(item, "savefig"):
        return f'<img alt="figure" src="data:image/png;base64,{figure_to_base64(item)}">'
    if isinstance(item, dict):
        rows = "".join(f"<tr><th>{_cell(k)}</th><td>{_cell(v)}</td></tr>" for k, v in item.items())
        return f'<div class="table"><table>{rows}</table></div>'
    if isinstance(item, (list, tuple)) and item and all(isinstance(r, dict) for r in item):
        cols = list(dict.fromkeys(k for r in item for k in r))
        head = "".join(f"<th>{_cell(c)}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c, ''))}</td>" for c in cols) + "</tr>"
                       for r in item)
        return f'<div class="table"><table><tr>{head}</tr>{body}</table></div>'
    if isinstance(item, (list, tuple)):
        return "".join(_render(x) for x in item)
    raise TypeError(f"cannot put a {type(item).__name__} in a report: use a Figure, str, dict or list of dicts")


def render_html(title, sections) -> str:
    """The report as an HTML string (see `write_html`)."""
    if isinstance(sections, dict):
        sections = list(sections.items())
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for heading, content in sections:
        parts.append(f"<section><h2>{html.escape(str(heading))}</h2>{_render(content)}</section>")
    parts.append(f'<p class="note">Written by nmfkit on {time.strftime("%Y-%m-%d %H:%M:%S")}.</p>'
                 "</body></html>\n")
    return "".join(parts)


def write_html(path, title, sections) -> str:
    """Write a self-contained HTML report to `path` (atomically: a temporary file renamed into place)
    and return the path."""
    path = os.fspath(path)
    text = render_html(title, sections)
    with atomic_write(path, "w", encoding="utf-8") as fh:   # whole or not at all
        fh.write(text)
    return path


def _fmt_monotonicity(result):
    spec_monotone = result.options.get("solver") is not None
    increases = list(getattr(result, "monotonicity", []) or [])
    if not increases:
        return "No objective increase was recorded." if spec_monotone else ""
    rows = [{"iteration": int(i), "increase": float(up)} for i, up in increases]
    return [Html(f'<p class="warn">The objective increased at {len(rows)} iteration(s) although the '
                 "solver promises a non-increasing objective.</p>"), rows]


def _extrapolates(opts) -> bool:
    """Whether the fit's H half-steps end at an extrapolated point (hals' default)."""
    return opts.get("solver") == "hals" and bool(opts.get("extrapolate", True))


def _convergence_section(result, plots):
    opts = result.options or {}
    hist = result.history

    def recorded(names):        # columns with a value to draw (Frobenius-only ones are NaN for KL)
        return [c for c in names if c in hist and np.isfinite(np.asarray(hist[c], dtype=float)).any()]

    tracked = recorded(c for c in plots.CLASSIC_COLUMNS if c != "objective")
    if not tracked:
        fig = plots.convergence(hist, ["objective"], title="objective per iteration", loss=opts.get("loss"))
        return [fig, "Only the objective was recorded; fit with track=True for the convergence "
                     "diagnostics of Lee & Seung's analysis (see the diagnostics guide)."]
    content = [plots.convergence(hist, ["objective", *tracked], loss=opts.get("loss"),
                                 title="objective and the H half-step's quantities")]
    notes = ["Quantities of Lee & Seung's (2001) analysis: g(H) = ½‖X − WₖH‖² is the H-subproblem of "
             "step k, ⟨∇g(Hₖ₊₁), Hₖ − Hₖ₊₁⟩ its first-order term, and g(Hₖ) − g(Hₖ₊₁) = that term + "
             "½‖Wₖ(Hₖ − Hₖ₊₁)‖² (exactly: g is quadratic)."]
    decrease = np.asarray(hist["decrease_V"], dtype=float)[1:] if "decrease_V" in tracked else np.zeros(0)
    rises = int(np.sum(decrease < 0))
    if _extrapolates(opts) and decrease.size:
        notes.append(f"hals extrapolates (Ang & Gillis 2019): Hₖ₊₁ is the extrapolated point, along which "
                     f"g may rise, so g(Hₖ) − g(Hₖ₊₁) is negative at {rises} of {decrease.size} steps; "
                     "the objective of the accepted iterates never rises (see Monotonicity).")
    elif rises:
        notes.append(f"g(Hₖ) − g(Hₖ₊₁) is negative at {rises} of {decrease.size} steps.")
    content.append(" ".join(notes))
    extra = recorded(("theta_V", "theta_U", "kkt_residual", "relative_error"))
    if extra:
        content.append(plots.convergence(hist, extra, title="curvature ratios θ, KKT residual, relative error"))
    sv = recorded(("sv_min_WtW", "sv_max_WtW", "sv_min_HHt", "sv_max_HHt"))
    if sv:
        content.append(plots.convergence(hist, sv, title="extreme singular values of WᵀW and HHᵀ"))
    return content


def _consensus_section(consensus, sample_names, labels=None):
    """The consensus of many runs: its heatmap and stability measures."""
    table = {"runs": consensus.n_runs, "rank": consensus.rank,
             "cophenetic correlation": consensus.cophenetic, "dispersion": consensus.dispersion,
             "silhouette": consensus.silhouette,
             "cluster sizes": ", ".join(f"{c + 1}: {int(np.sum(consensus.sample_clusters == c))}"
                                        for c in np.unique(consensus.sample_clusters))}
    names = list(sample_names) if sample_names is not None else None
    return [table, consensus.plot(labels=labels, sample_names=names),
            "The consensus matrix holds, for each pair of samples, the fraction of runs that put them in "
            "the same cluster (the dominant component of their columns of H; Brunet et al. 2004). A "
            "cophenetic correlation and a dispersion close to 1 mean the runs agree."]


def factorization_report(result, path, *, title=None, image_shape=None, feature_names=None, n_top=10,
                         image_order="C", consensus=None, parameters=None, sample_labels=None):
    """The standard report of a `Factorization` (see the module docstring); returns the path.

    `consensus`: the `ConsensusResult` the fit is the best run of; the report then has a Consensus
    section and orders the samples of the H heatmap by consensus cluster; `sample_labels` (known classes
    of the samples) add a class bar to its consensus map.  `parameters`: entries that
    replace or add to the shown parameters (e.g. the random seed and number of runs a user asked for)."""
    from . import plots

    opts = dict(result.options or {})
    if consensus is not None:
        opts.update({"seed": consensus.options.get("seed", opts.get("seed")), "n_runs": consensus.n_runs})
    opts.update(parameters or {})
    title = title or f"nmfkit: rank-{result.rank} {opts.get('solver', '?')} factorization"
    m, n = result.W.shape[0], result.H.shape[1]
    summary = {"data shape": f"{m} × {n}", "rank": result.rank, "solver": opts.get("solver"),
               "loss": opts.get("loss"), "final objective": result.loss,
               "relative error ‖X − WH‖/‖X‖": result.relative_error, "iterations": result.n_iter,
               "converged": result.converged, "stop reason": result.stop_reason,
               "seconds": result.seconds}
    if consensus is not None:
        summary["runs"] = f"{consensus.n_runs} (the best of them is shown)"
    sections = [("Summary", summary), ("Parameters", opts)]
    if len(result.runs) > 1:
        sections.append(("Runs", list(result.runs)))
    if consensus is not None:
        sections.append(("Consensus", _consensus_section(consensus, result.col_names, sample_labels)))
    sections.append(("Monotonicity", _fmt_monotonicity(result)))
    sections.append(("Convergence", _convergence_section(result, plots)))

    views = []
    if image_shape is not None:
        views.append(plots.basis_images(result.W, image_shape, order=image_order))
    names = feature_names if feature_names is not None else result.row_names
    views.append(plots.top_features(result.W, names, n=n_top, components=range(min(result.rank, 10))))
    views.append(plots.basis_heatmap(result.W, row_names=names))
    if consensus is not None:
        views.append(plots.coefficient_heatmap(result.H, col_names=result.col_names, order=n > 40,
                                               groups=consensus.sample_clusters, group_name="consensus cluster"))
    else:
        views.append(plots.coefficient_heatmap(result.H, col_names=result.col_names))
    sections.append(("Factors", views))
    return write_html(path, title, sections)
