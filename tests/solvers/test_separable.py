"""Separable NMF (solver="spa", init="spa"): exact anchors on noiseless separable data, approximate
anchors under small noise, sparse data never densified, clear refusals."""
import numpy as np
import pytest
import scipy.sparse as sp
from _planted import basis_error

import nmfkit
from nmfkit.solvers.separable import project_capped_simplex, snpa, spa


def separable(m=40, n=100, k=6, noise=0.0, seed=0):
    """X = W [I, H'] Π (+ relative noise): the columns of W appear among X's columns, at shuffled
    positions; H' has columns summing to 0.9.  Returns X, W and the anchor positions."""
    rng = np.random.default_rng(seed)
    W = rng.random((m, k)) * (rng.random((m, k)) < 0.6) + 0.05 * rng.random((m, k))
    H = np.hstack([np.eye(k), 0.9 * rng.dirichlet(np.full(k, 0.3), size=n - k).T])
    perm = rng.permutation(n)
    X = (W @ H)[:, perm]
    X = np.maximum(X * (1 + noise * rng.standard_normal(X.shape)), 0)
    return X, W, np.argsort(perm)[:k]


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noiseless_anchors_are_found_exactly(sparse, dtype, seed):
    X, W, anchors = separable(seed=seed)
    X = X.astype(dtype)
    data = sp.csr_matrix(X) if sparse else X
    assert set(spa(data, 6).tolist()) == set(anchors.tolist())
    fit = nmfkit.fit(data, 6, solver="spa")
    assert fit.n_iter == 1 and fit.stop_reason == "target"
    np.testing.assert_array_equal(fit.W, X[:, spa(data, 6)])         # W is made of X's own columns
    # Exact model: rounding only (checked densely: the sparse engine's ‖X − WH‖ formula cancels to √eps).
    tol = 1e-10 if dtype == np.float64 else 1e-5
    residual = np.linalg.norm(X.astype(np.float64) - fit.W.astype(np.float64) @ fit.H) / np.linalg.norm(X)
    assert residual < tol


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beats_plain_nmf_on_separable_data_from_the_same_start(seed):
    X, W, _ = separable(seed=seed)
    exact = nmfkit.fit(X, 6, solver="spa", init="random", seed=seed)
    plain = nmfkit.fit(X, 6, solver="hals", init="random", seed=seed, max_iter=500)
    # SPA's basis is the planted one up to rounding; HALS stops at a basis ≈ 1e-2 away (measured).
    assert basis_error(W, exact.W) < 1e-10
    assert basis_error(W, exact.W) + 1e-3 < basis_error(W, plain.W)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_noise_moves_the_anchors_only_a_little(seed):
    noise = 0.01
    X, W, anchors = separable(noise=noise, seed=seed)
    assert set(spa(X, 6).tolist()) == set(anchors.tolist())
    fit = nmfkit.fit(X, 6, solver="spa")
    # Gillis–Vavasis: the chosen columns are within O(ε κ²) of W's; here they are the noisy anchors.
    assert basis_error(W, fit.W) < 2 * noise
    assert fit.relative_error < 2 * noise


def test_init_spa_starts_iterative_solvers_at_the_anchors():
    X, W, _ = separable(noise=0.01, seed=3)
    start = nmfkit.fit(X, 6, solver="spa")
    for solver in ("hals", "anls", "mu"):
        fit = nmfkit.fit(X, 6, solver=solver, init="spa", max_iter=50)
        assert fit.options["init"] == "spa"
        assert fit.history["objective"][0] <= start.loss * (1 + 1e-9)    # the start is SPA's fit
        assert fit.loss <= start.loss
    noiseless, _, _ = separable(seed=3)
    assert nmfkit.fit(noiseless, 6, solver="hals", init="spa", max_iter=5).relative_error < 1e-10


def test_sparse_data_is_not_densified():
    rng = np.random.default_rng(0)
    m, n = 100_000, 50_000                   # dense float64 would need 40 GB
    X = sp.random(m, n, density=2e-5, random_state=rng, format="csr")
    before = X.copy()
    fit = nmfkit.fit(X, 3, solver="spa")
    assert fit.W.shape == (m, 3) and fit.H.shape == (3, n)
    assert (X != before).nnz == 0


def test_too_few_independent_columns_is_refused():
    X, _, _ = separable(seed=0)
    with pytest.raises(ValueError, match="only 6 linearly independent columns, fewer than rank 7"):
        nmfkit.fit(X, 7, solver="spa")
    with pytest.raises(ValueError, match="only 6 linearly independent columns"):
        nmfkit.fit(X, 7, solver="hals", init="spa")
    with pytest.raises(ValueError, match="only 0 linearly independent"):
        spa(np.zeros((5, 4)), 1)


def test_init_spa_needs_in_memory_data(tmp_path):
    X, _, _ = separable(seed=0)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    with pytest.raises(ValueError, match="init='spa' needs X as a NumPy array or SciPy sparse matrix"):
        nmfkit.fit(mapped, 3, solver="hals", init="spa")


def test_options_are_checked_before_any_work():
    X, _, _ = separable(seed=0)
    with pytest.raises(TypeError, match="normalize must be True or False"):
        nmfkit.fit(X, 3, solver="spa", normalize="yes")
    with pytest.raises(ValueError, match="takes no penalties"):
        nmfkit.fit(X, 3, solver="spa", alpha_W=0.1)


def test_without_normalisation_the_longest_columns_are_chosen():
    X = np.diag([1.0, 3.0, 2.0]) @ np.array([[1.0, 0, 0, 0.5], [0, 1, 0, 0.5], [0, 0, 1, 0]])
    assert spa(X, 1, normalize=False).tolist() == [1]
    assert spa(X, 3, normalize=False).tolist() == [1, 2, 0]


# -- snpa: the successive non-negative projection algorithm -------------------------------------------

def dependent_anchors(seed=0):
    """10 × 50 separable X whose 5 anchors span only 3 dimensions: they are the vertices of a
    pentagon (in the simplex) mapped by a random non-negative 10 × 3 matrix, so none lies in the
    convex hull of the others.  Returns X and the anchor positions."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(5) / 5
    plane = np.stack([1 / 3 + 0.2 * np.cos(angles), 1 / 3 + 0.2 * np.sin(angles)])
    W = rng.random((10, 3)) @ np.vstack([plane, 1 - plane.sum(axis=0)])
    H = np.hstack([np.eye(5), 0.95 * rng.dirichlet(np.ones(5), size=45).T])
    order = rng.permutation(50)
    return (W @ H)[:, order], np.argsort(order)[:5]


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_snpa_finds_anchors_spa_cannot(sparse, seed):
    X, anchors = dependent_anchors(seed)
    data = sp.csr_matrix(X) if sparse else X
    assert set(snpa(data, 5).tolist()) == set(anchors.tolist())
    fit = nmfkit.fit(data, 5, solver="snpa")
    assert np.linalg.norm(X - fit.W @ fit.H) / np.linalg.norm(X) < 1e-8    # NNLS with a 1e-12 ridge
    with pytest.raises(ValueError, match="only 3 linearly independent columns"):
        nmfkit.fit(data, 5, solver="spa")


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_snpa_on_separable_data(noise):
    X, W, anchors = separable(noise=noise, seed=4)
    assert set(snpa(X, 6).tolist()) == set(anchors.tolist())
    assert basis_error(W, nmfkit.fit(X, 6, solver="snpa").W) < 2 * noise + 1e-10


def test_snpa_refusals():
    rng = np.random.default_rng(0)
    X = np.repeat(rng.random((8, 3)), 10, axis=1) * rng.uniform(0.5, 2, 30)    # 3 directions only
    with pytest.raises(ValueError, match="only 3 columns of X lie outside the convex hull"):
        nmfkit.fit(X, 4, solver="snpa")
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="inner_iterations must be an integer ≥ 1"):
            nmfkit.fit(X, 2, solver="snpa", inner_iterations=bad)


def test_capped_simplex_projection_is_the_euclidean_one():
    rng = np.random.default_rng(1)
    H = rng.normal(0.3, 0.8, size=(4, 200))
    P = project_capped_simplex(H)
    assert (P >= 0).all() and (P.sum(axis=0) <= 1 + 1e-12).all()
    # optimality: ⟨H − P, Q − P⟩ ≤ 0 for feasible Q (vertices 0 and e_i span the set)
    for Q in [np.zeros(4)] + list(np.eye(4)):
        assert (np.einsum("in,in->n", H - P, Q[:, None] - P) <= 1e-12).all()


@pytest.mark.parametrize("name", ["spa", "snpa"])
def test_the_solver_keeps_its_anchors(name):
    from nmfkit.engines import make_engine
    from nmfkit.registry import SOLVERS
    X, _, anchors = separable(seed=5)
    solver = SOLVERS[name].cls(make_engine(X), "frobenius", 2.0)
    assert solver.result_options() == {}
    W, Ht, _ = solver.step(np.ones((40, 6)), np.ones((100, 6)))
    assert solver.done and sorted(solver.result_options()["anchors"]) == sorted(anchors.tolist())
    np.testing.assert_array_equal(W, X[:, solver.anchors])
    assert solver.get_state()["anchors"] is solver.anchors                 # carried by checkpoints
