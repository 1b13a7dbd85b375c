"""nmfkit.anndata: NMF of AnnData objects (cells × genes), h5ad round trip, projection of new cells."""
import numpy as np
import pytest
import scipy.sparse as sp

anndata = pytest.importorskip("anndata", reason="anndata not installed (pip install nmfkit[anndata])")

import nmfkit  # noqa: E402
import nmfkit.anndata as nad  # noqa: E402


def _adata(n_cells=60, n_genes=40, k=3, seed=0, sparse=False, dtype=np.float32):
    rng = np.random.default_rng(seed)
    usage, programs = rng.gamma(1.0, 1.0, (n_cells, k)), rng.gamma(0.3, 1.0, (k, n_genes))
    counts = rng.poisson(5 * usage @ programs).astype(dtype)
    a = anndata.AnnData(sp.csr_matrix(counts) if sparse else counts)
    a.obs_names = [f"cell{i}" for i in range(n_cells)]
    a.var_names = [f"gene{j}" for j in range(n_genes)]
    a.layers["counts"] = a.X.copy()
    return a


@pytest.mark.parametrize("sparse", [False, True])
def test_fit_stores_usage_programs_and_summary(sparse, tmp_path):
    a = _adata(sparse=sparse)
    res = nad.fit(a, 3, layer="counts", solver="mu", loss="kl", seed=0, max_iter=200)
    assert a.obsm["X_nmf"].shape == (60, 3) and a.varm["NMF"].shape == (40, 3)
    np.testing.assert_allclose(a.obsm["X_nmf"] @ a.varm["NMF"].T, res.W @ res.H)
    info = a.uns["nmf"]
    assert info["rank"] == 3 and info["loss"] == "kl" and info["layer"] == "counts"
    assert info["components"] == ["NMF1", "NMF2", "NMF3"]
    assert res.W_frame.index[0] == "cell0" and res.H_frame.columns[-1] == "gene39"
    a.write_h5ad(tmp_path / "fit.h5ad")                      # the summary is h5ad-writable
    back = anndata.read_h5ad(tmp_path / "fit.h5ad")
    np.testing.assert_allclose(back.varm["NMF"], a.varm["NMF"])
    assert back.uns["nmf"]["n_iter"] == info["n_iter"]


def test_copy_and_key_added():
    a = _adata()
    b = nad.fit(a, 2, key_added="nmf2", copy=True, seed=0)
    assert "X_nmf2" in b.obsm and "nmf2" in b.varm and "nmf2" in b.uns
    assert "X_nmf2" not in a.obsm


# Reversing the genes reverses the order of every sum in the projection's products, so the two
# results differ by rounding amplified by the k×k Gram's condition number: tight in float64, and
# at float32's precision (eps ≈ 1.2e-7, times that amplification) in float32.
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_project_new_cells_matches_transform(dtype, rtol):
    ref = _adata(seed=1, dtype=dtype)
    res = nad.fit(ref, 3, seed=0)
    query = ref[:10, ::-1].copy()                             # same cells, genes in reversed order
    query = anndata.AnnData(query.X.copy(), obs=query.obs.copy(), var=query.var.copy())
    usage = nad.project(query, ref)
    expected = nmfkit.project(res.H.T, ref.X[:10].T).T
    np.testing.assert_allclose(usage, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    with pytest.raises(ValueError, match="reference genes are not in the query"):
        nad.project(query[:, :5].copy(), ref)


def test_errors_are_clear():
    a = _adata()
    with pytest.raises(ValueError, match="no layer 'raw'"):
        nad.fit(a, 2, layer="raw")
    with pytest.raises(TypeError, match="expected an AnnData"):
        nad.fit(np.ones((3, 3)), 1)
    with pytest.raises(ValueError, match="run nmfkit.anndata.fit"):
        nad.project(a, _adata())
