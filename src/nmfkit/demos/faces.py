"""Parts of faces: NMF basis images beside PCA's eigenfaces (Lee & Seung, Nature 401:788, 1999).

X (pixels × images, 400 ORL faces downsampled to 56×46) ≈ W H with rank k = 49:
  * NMF   min ½‖X − WH‖²_F, W, H ≥ 0 (`solver="auto"`), started from NNDSVDa;
  * PCA   X − x̄1ᵀ ≈ U_k S_k V_kᵀ from a thin SVD (numpy), the k leading eigenfaces U_k;
  * sparse NMF   the same objective + λ₁‖W‖₁ + λ₁'‖H‖₁ (`alpha_W`, `alpha_H`, `l1_ratio=1`), MU warm
    started from the plain fit: the penalty trades a little error for more local parts.
Sparseness of a basis image w ∈ R^p is Hoyer's (√p − ‖w‖₁/‖w‖₂)/(√p − 1) (0: flat, 1: one pixel),
averaged over the k images (for PCA on |U_k|).

Cost: NMF O(m n k) per iteration (m = 2 576 pixels, n = 400 images); the SVD O(m n²) once.
Each fit has a wall-clock cap so that the whole demo stays within two minutes on two cores.
"""
from __future__ import annotations

import os

import numpy as np

from ._common import Clock, new_figure, prepare_out, save_figure

FULL = dict(size=(56, 46), rank=49, max_iter=300, time_limit=30.0, sparse_iter=200, sparse_time=20.0)
QUICK = dict(size=(28, 23), rank=16, max_iter=25, time_limit=5.0, sparse_iter=20, sparse_time=3.0)
# L1 weights (scikit-learn's meaning: λ₁ = alpha_W·n on W, alpha_H·m on H). L1 on W alone is undone
# by rescaling (W/c, cH), so H needs a small weight too; a large one moves the sparsity into H.
# The penalised run uses MU: measured on these faces, HALS's exact coordinate steps under the
# same weights switch whole components off (14-27 of 49), while MU shrinks them gradually.
SPARSE = dict(alpha_W=0.01, alpha_H=3e-5, l1_ratio=1.0)
SPARSE_SOLVER = "mu"
N_RECONSTRUCTIONS = 8


def _pca(X, rank):
    """Mean face, the `rank` leading eigenfaces (columns) and the rank-k reconstruction of X."""
    mean = X.mean(axis=1, keepdims=True)
    U = np.linalg.svd(X - mean, full_matrices=False)[0][:, :rank]
    U = U * np.where(U.sum(axis=0) < 0, -1.0, 1.0)      # sign is arbitrary: mostly-positive reads better
    return mean, U, mean + U @ (U.T @ (X - mean))       # projection on the k eigenfaces


def _relative_error(X, approx) -> float:
    return float(np.linalg.norm(X - approx) / np.linalg.norm(X))


def _reconstruction_figure(X, approximations, image_shape, columns):
    """Rows: the original images, then one row per approximation."""
    rows = [("original", X)] + list(approximations.items())
    fig = new_figure((1.1 * len(columns) + 0.9, 1.35 * len(rows)))
    axes = fig.subplots(len(rows), len(columns), squeeze=False)
    for r, (label, M) in enumerate(rows):
        for c, j in enumerate(columns):
            ax = axes[r, c]
            ax.imshow(np.clip(M[:, j], 0, 1).reshape(image_shape), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize="small")
    return fig


def _sparseness_figure(values):
    """Histogram of per-image Hoyer sparseness for each basis."""
    fig = new_figure((6.4, 3.4))
    ax = fig.add_subplot()
    bins = np.linspace(0, 1, 41)
    for label, v in values.items():
        ax.hist(v, bins=bins, alpha=0.55, label=f"{label} (mean {np.mean(v):.2f})")
    ax.set_xlabel("Hoyer sparseness of a basis image")
    ax.set_ylabel("basis images")
    ax.legend(fontsize="small")
    return fig


def run(out_dir="out/demo", quick=False) -> dict:
    """Parts of faces: rank-49 NMF basis images beside PCA's eigenfaces (ORL faces)."""
    import nmfkit

    from .. import plots, report
    from ..datasets import load_faces
    from ..rank import hoyer_sparseness

    cfg = QUICK if quick else FULL
    out_dir = prepare_out(out_dir)
    clock, files = Clock(), []
    data = load_faces(size=cfg["size"])
    X, shape, k = data.X, data.image_shape, cfg["rank"]
    print(f"faces: {data.shape[1]} images of {shape[0]}×{shape[1]} pixels, rank {k}", flush=True)

    nmf = nmfkit.fit(X, k, solver="auto", max_iter=cfg["max_iter"], time_limit=cfg["time_limit"], seed=0)
    mean, eigenfaces, pca_approx = _pca(X, k)
    sparse = nmfkit.fit(X, k, solver=SPARSE_SOLVER, init=(nmf.W, nmf.H), max_iter=cfg["sparse_iter"],
                        time_limit=cfg["sparse_time"], **SPARSE)

    per_image = {"NMF": _per_column_hoyer(nmf.W), "sparse NMF": _per_column_hoyer(sparse.W),
                 "PCA": _per_column_hoyer(np.abs(eigenfaces))}
    rows = []
    for label, fit, W in (("NMF", nmf, nmf.W), ("sparse NMF", sparse, sparse.W), ("PCA", None, eigenfaces)):
        rows.append({"method": label,
                     "solver": fit.options["solver"] if fit else "SVD (numpy)",
                     "iterations": fit.n_iter if fit else "",
                     "stop": fit.stop_reason if fit else "",
                     "seconds": round(fit.seconds, 2) if fit else "",
                     "relative error": round(fit.relative_error if fit else _relative_error(X, pca_approx), 4),
                     "sparseness W": round(hoyer_sparseness(np.abs(W)), 3),
                     "sparseness H": round(hoyer_sparseness(fit.H), 3) if fit else ""})

    grid = int(np.ceil(np.sqrt(k)))
    figs = {"nmf_basis.png": plots.basis_images(nmf.W, shape, ncols=grid, titles=False),
            "pca_basis.png": plots.basis_images(eigenfaces, shape, ncols=grid, normalize=False, titles=False,
                                                signed=True),        # a diverging map shows the signs
            "sparse_nmf_basis.png": plots.basis_images(sparse.W, shape, ncols=grid, titles=False)}
    for title, name in (("NMF basis images", "nmf_basis.png"),
                        ("PCA eigenfaces (red positive, blue negative, white 0)", "pca_basis.png"),
                        ("sparse NMF basis images", "sparse_nmf_basis.png")):
        figs[name].suptitle(title, fontsize="medium")
    picks = np.linspace(0, X.shape[1] - 1, N_RECONSTRUCTIONS).astype(int)
    figs["reconstructions.png"] = _reconstruction_figure(
        X, {"NMF": nmf.W @ nmf.H, "PCA": pca_approx, "sparse NMF": sparse.W @ sparse.H}, shape, picks)
    figs["sparseness.png"] = _sparseness_figure(per_image)
    for name, fig in figs.items():
        save_figure(fig, out_dir, name, files)

    html = os.path.join(out_dir, "faces.html")
    report.write_html(html, "nmfkit demo: parts of faces", [
        ("Data", {"data set": data.name, "matrix": f"{X.shape[0]} pixels × {X.shape[1]} images",
                  "source": data.source, "licence": data.licence, "citation": data.citation}),
        ("Summary", [rows, (
            "NMF's basis images are non-negative and combine only additively, so each one tends to "
            "cover a region of the face; PCA's eigenfaces are signed, holistic patterns. Hoyer "
            "sparseness (0 flat, 1 a single pixel) measures how local a basis image is; the L1 "
            f"penalty ({', '.join(f'{a}={v}' for a, v in SPARSE.items())}) raises it.")]),
        ("NMF basis images (W)", figs["nmf_basis.png"]),
        ("PCA eigenfaces", figs["pca_basis.png"]),
        ("Sparse NMF basis images", figs["sparse_nmf_basis.png"]),
        ("Reconstructions", figs["reconstructions.png"]),
        ("Sparseness of the basis images", figs["sparseness.png"]),
    ])
    files.append(html)
    seconds = clock()
    print(f"{'method':11s} {'rel. error':>10s} {'sparseness W':>13s} {'iters':>6s} {'seconds':>8s}")
    for r in rows:
        print(f"{r['method']:11s} {r['relative error']:10.4f} {r['sparseness W']:13.3f} "
              f"{str(r['iterations']):>6s} {str(r['seconds']):>8s}")
    print(f"faces demo: {seconds:.1f} s; report {html}", flush=True)
    return {"name": "faces", "out_dir": out_dir, "files": files, "report": html, "seconds": seconds, "figures": figs,
            "table": rows, "sparseness": {k_: float(np.mean(v)) for k_, v in per_image.items()}}


def _per_column_hoyer(W) -> np.ndarray:
    W = np.abs(np.asarray(W, dtype=np.float64))
    p = W.shape[0]
    l1, l2 = W.sum(axis=0), np.sqrt((W * W).sum(axis=0))
    ratio = np.divide(l1, l2, out=np.full_like(l1, np.sqrt(p)), where=l2 > 0)
    return (np.sqrt(p) - ratio) / (np.sqrt(p) - 1.0)
