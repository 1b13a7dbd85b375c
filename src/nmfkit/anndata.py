"""NMF of AnnData objects (single-cell data, cells × genes), scanpy style.

    import nmfkit.anndata
    nmfkit.anndata.fit(adata, rank=10, layer="counts", loss="kl", seed=0)
    adata.obsm["X_nmf"]     # usage: cells × rank  (W)
    adata.varm["NMF"]       # programs: genes × rank  (Hᵀ)
    adata.uns["nmf"]        # summary: rank, solver, loss, error, iterations, component names
    nmfkit.anndata.project(query, reference=adata)   # usage of new cells on the same programs

AnnData's orientation is nmfkit's: X (cells × genes) ≈ W H with W the cell
usage and H the gene programs, so nothing is transposed for the fit; sparse
matrices stay sparse.  `project` solves min_{W ≥ 0} D(X_query ‖ W H) with the
reference programs fixed (`nmfkit.project` on the transposed problem: exact
NNLS for Frobenius), after aligning the query's genes to the reference's by
name.  The anndata package is only needed to create AnnData objects; this module
works on anything with AnnData's `X`, `layers`, `obsm`, `varm`, `uns`, `var_names`.
Cost: that of `nmfkit.fit` / `nmfkit.project` on the chosen matrix.
"""
from __future__ import annotations

import numpy as np

from .fit import fit as nmf_fit
from .project import project as project_matrix
from .validation import precheck


def _keys(key_added):
    base = "nmf" if key_added is None else str(key_added)
    return f"X_{base}", (base.upper() if key_added is None else base), base


def _matrix(adata, layer):
    if not all(hasattr(adata, a) for a in ("X", "obsm", "varm", "uns", "layers")):
        raise TypeError(f"expected an AnnData object (pip install nmfkit[anndata]); got {type(adata).__name__}")
    if layer is None:
        if adata.X is None:
            raise ValueError("adata.X is empty; pass layer= to factorize one of adata.layers")
        return adata.X
    if layer not in adata.layers:
        raise ValueError(f"adata has no layer {layer!r}; layers: {', '.join(adata.layers.keys()) or '(none)'}")
    return adata.layers[layer]


def _summary(result, layer):
    """h5ad-writable summary (no None values, plain types)."""
    info = {"rank": int(result.rank), "solver": str(result.options.get("solver")),
            "loss": str(result.options.get("loss")), "relative_error": float(result.relative_error),
            "objective": float(result.loss), "n_iter": int(result.n_iter), "converged": bool(result.converged),
            "stop_reason": str(result.stop_reason), "components": list(result.component_names),
            "seconds": float(result.seconds)}
    if layer is not None:
        info["layer"] = str(layer)
    if result.options.get("seed") is not None:
        info["seed"] = int(result.options["seed"])
    return info


def fit(adata, rank, layer=None, *, key_added=None, copy=False, **fit_kwargs):
    """Factorize adata.X (or adata.layers[layer]), cells × genes, and store the result.

    Writes obsm["X_nmf"] (cell usage W, cells × rank), varm["NMF"] (gene programs
    Hᵀ, genes × rank) and uns["nmf"] (summary); `key_added="k"` uses "X_k", "k"
    and "k" instead.  `fit_kwargs` go to `nmfkit.fit` (solver, loss, seed, …).
    Returns the `nmfkit.Factorization` (labelled by obs/var names), or the
    modified copy of adata when copy=True.
    """
    if copy:
        adata = adata.copy()
    X = _matrix(adata, layer)
    result = nmf_fit(X, rank, **fit_kwargs)
    result.row_names = [str(v) for v in adata.obs_names]
    result.col_names = [str(v) for v in adata.var_names]
    obsm_key, varm_key, uns_key = _keys(key_added)
    adata.obsm[obsm_key] = np.asarray(result.W)
    adata.varm[varm_key] = np.ascontiguousarray(result.H.T)
    adata.uns[uns_key] = _summary(result, layer)
    return adata if copy else result


def project(adata, reference, layer=None, *, key_added=None, loss=None, **project_kwargs):
    """Usage of adata's cells on the programs of `reference` (an AnnData fitted by `fit`).

    Genes are matched by name: every reference gene must be in adata.var_names
    (extra query genes are ignored).  Writes adata.obsm["X_nmf"] (or "X_<key_added>")
    and returns it.  The loss defaults to the reference fit's.
    """
    obsm_key, varm_key, uns_key = _keys(key_added)
    if varm_key not in reference.varm:
        raise ValueError(f"reference has no varm[{varm_key!r}]; run nmfkit.anndata.fit on it first")
    programs = np.asarray(reference.varm[varm_key])             # genes × rank
    ref_genes = [str(v) for v in reference.var_names]
    position = {str(g): i for i, g in enumerate(adata.var_names)}
    missing = [g for g in ref_genes if g not in position]
    if missing:
        raise ValueError(f"{len(missing)} reference genes are not in the query (first: {missing[0]!r}); "
                         "the query must measure every gene of the programs")
    X = _matrix(adata, layer)
    precheck(X, "adata.X" if layer is None else f"adata.layers[{layer!r}]")   # before selecting genes
    cols = np.fromiter((position[g] for g in ref_genes), dtype=np.int64, count=len(ref_genes))
    X = X[:, cols]
    if loss is None:
        loss = reference.uns.get(uns_key, {}).get("loss", "frobenius")
    usage = project_matrix(programs, X.T, loss=loss, **project_kwargs).T
    adata.obsm[obsm_key] = np.ascontiguousarray(usage)
    return adata.obsm[obsm_key]
