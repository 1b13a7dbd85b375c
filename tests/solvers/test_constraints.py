"""Per-factor penalties and constraints of hals: semi-NMF, upper bounds, L21, graph Laplacian, ortho.

Each model is planted, fitted with the option and with plain hals from the same seed (the same
start), and the option must recover what was planted with a clear margin; every history must be
non-increasing (the options keep hals monotone for the penalised objective)."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

import nmfkit
from nmfkit.penalties import FactorRule, factor_rules
from nmfkit.solvers.hals import HALS


def _matched(true, fitted):
    """`fitted`'s columns matched to `true`'s (by cosine) and scaled onto them by least squares."""
    unit = fitted / np.maximum(np.linalg.norm(fitted, axis=0), 1e-300)
    _, cols = linear_sum_assignment(-np.abs((true / np.linalg.norm(true, axis=0)).T @ unit))
    B = fitted[:, cols]
    return B * ((true * B).sum(0) / np.maximum((B * B).sum(0), 1e-300))


def _error(true, fitted):
    return np.linalg.norm(true - _matched(true, fitted)) / np.linalg.norm(true)


def _non_increasing(result):
    o = np.asarray(result.history["objective"])
    # float64 sums of a few thousand terms: rounding far below 1e-12 of the start
    return bool(np.all(np.diff(o) <= 1e-12 * o[0]))


def _fit(X, k, seed, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no monotonicity warning, no zero-result warning
        return nmfkit.fit(X, k, solver="hals", seed=seed, tol=0, **options)


# -- semi-NMF ---------------------------------------------------------------------------------------

def _polygon_slacks(seed):
    """Slack matrix of a regular 12-gon at its vertices and 70 interior points: X = W H with W = [p, 1]
    (mixed sign) and H = [−a; b] ≥ 0 on the side that matters, rank 3 but non-negative rank > 3, so
    plain NMF cannot fit it at rank 3 while semi-NMF (W signed) can."""
    rng = np.random.default_rng(seed)
    q = 12
    normals = 2 * np.pi * (np.arange(q) + 0.5) / q
    A = np.c_[np.cos(normals), np.sin(normals)]
    corners = 2 * np.pi * np.arange(q) / q
    radius, angle = 0.95 * np.sqrt(rng.random(70)), 2 * np.pi * rng.random(70)
    P = np.r_[np.c_[np.cos(corners), np.sin(corners)] / np.cos(np.pi / q),
              np.c_[radius * np.cos(angle), radius * np.sin(angle)]]
    W = np.c_[P, np.ones(len(P))]
    X = np.maximum(W @ np.r_[-A.T, np.ones((1, q))], 0)      # clears −1e-16 rounding at the vertices
    return X, W


@pytest.mark.parametrize("seed", [0, 1])
def test_semi_nmf_fits_what_plain_nmf_cannot(seed):
    X, W = _polygon_slacks(seed)
    semi = _fit(X, 3, seed, nonneg_W=False, max_iter=1500)
    plain = _fit(X, 3, seed, max_iter=1500)
    assert semi.W.min() < 0 and semi.H.min() >= 0
    assert semi.relative_error < 1e-4 < 0.05 < plain.relative_error
    Q = np.linalg.qr(semi.W)[0]                       # semi-NMF's W is unique up to an invertible map:
    assert np.linalg.norm(W - Q @ (Q.T @ W)) < 1e-4 * np.linalg.norm(W)   # its column space is W's
    assert _non_increasing(semi)


def test_signed_factor_refuses_l1_and_ortho():
    X = np.random.default_rng(0).random((20, 15))
    with pytest.raises(ValueError, match="nonneg_W=True"):
        nmfkit.fit(X, 2, solver="hals", nonneg_W=False, alpha_W=0.1, l1_ratio=0.5)
    with pytest.raises(ValueError, match="nonneg_H=True"):
        nmfkit.fit(X, 2, solver="hals", nonneg_H=False, ortho_H=0.1)
    with pytest.raises(TypeError, match="nonneg_W must be True or False"):
        nmfkit.fit(X, 2, solver="hals", nonneg_W="no")


# -- upper bounds -----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_upper_bound_recovers_saturated_factors(seed):
    rng = np.random.default_rng(seed)
    m, n, k = 80, 60, 4
    W = np.minimum(1.6 * rng.random((m, k)), 1.0)           # about 40 % of the entries sit at the bound 1
    H = np.minimum(1.6 * rng.random((k, n)), 1.0) * (rng.random((k, n)) < 0.7)
    X = W @ H + 0.05 * rng.random((m, n))
    bounded = _fit(X, k, seed, upper_bound=1.0, max_iter=500)
    plain = _fit(X, k, seed, max_iter=500)
    assert bounded.W.max() <= 1.0 and bounded.H.max() <= 1.0 and bounded.W.min() >= 0
    assert _error(W, bounded.W) < 0.5 * _error(W, plain.W)
    assert _error(H.T, bounded.H.T) < 0.5 * _error(H.T, plain.H.T)
    assert _non_increasing(bounded)


def test_upper_bound_per_factor_and_checks():
    X = np.random.default_rng(1).random((30, 20)) * 4
    r = _fit(X, 3, 0, upper_bound=(None, 0.5), max_iter=50)
    assert r.H.max() <= 0.5 and r.W.max() > 0.5
    for bad in (0, -1.0, float("nan"), "1"):
        with pytest.raises(ValueError, match="upper_bound must be a number > 0 or None"):
            nmfkit.fit(X, 3, solver="hals", upper_bound=bad)
    with pytest.raises(ValueError, match="one value or a pair"):
        nmfkit.fit(X, 3, solver="hals", upper_bound=(1, 2, 3))


def test_a_given_start_above_the_bound_is_projected():
    rng = np.random.default_rng(2)
    X = rng.random((25, 20))
    W0, H0 = 3 * rng.random((25, 3)) + 1, rng.random((3, 20))
    r = nmfkit.fit(X, 3, solver="hals", init=(W0, H0), upper_bound=(1.0, None), max_iter=20, tol=0)
    assert r.W.max() <= 1.0
    assert _non_increasing(r)
    assert W0.min() >= 1                               # the user's start is not modified


# -- L21 group sparsity -----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("lam", [0.5, 2.0])
def test_l21_selects_the_planted_rank(seed, lam):
    rng = np.random.default_rng(seed)
    X = rng.random((80, 3)) @ rng.random((3, 60)) + 0.01 * rng.random((80, 60))
    r = _fit(X, 8, seed, l21_W=lam, l21_H=lam, max_iter=400)
    plain = _fit(X, 8, seed, max_iter=400)
    live = np.flatnonzero(np.abs(r.H).sum(1) > 0)
    assert len(live) == 3 and np.all(np.abs(plain.H).sum(1) > 0)
    assert np.array_equal(live, np.flatnonzero(np.abs(r.W).sum(0) > 0))    # whole components are zero
    assert r.relative_error < 0.05
    assert _non_increasing(r)


def test_l21_zero_test_is_exact():
    """Components are dropped, in order, exactly when removing one lowers ½tr(FGFᵀ) − ⟨F,R⟩ + λΣ‖f_j‖."""
    rng = np.random.default_rng(3)
    A = rng.random((12, 4))
    G = A.T @ A
    R = rng.random((30, 4)) @ G
    R[:, 2] = 0.01                                      # a component worth less than its penalty
    F = rng.random((30, 4))
    F[:, 2] *= 1e-2
    optimum = np.linalg.solve(G, R.T).T                # every component earns its keep at a small λ
    for F, lam, expected in ((F, 1.0, 1), (optimum, 1e-9, 0)):

        def value(F):
            return 0.5 * np.einsum("ij,jk,ik->", F, G, F) - np.vdot(F, R) + lam * np.linalg.norm(F, axis=0).sum()

        brute = F.copy()
        for j in range(4):                             # the same greedy order, by direct evaluation
            trial = brute.copy()
            trial[:, j] = 0
            if value(trial) < value(brute):
                brute = trial
        F1 = F.copy()
        assert FactorRule(l21=lam).drop_components(F1, R, G, None) == expected
        assert np.array_equal(F1, brute)


# -- graph Laplacian (GNMF) -------------------------------------------------------------------------

def _grouped_samples(seed):
    """Samples in 3 groups; H puts each sample on its group's component; the graph links each sample
    to 5 random others of its group (a kNN graph of the kind GNMF builds); heavy noise."""
    rng = np.random.default_rng(seed)
    m, n, k = 40, 120, 3
    group = np.arange(n) % k
    H = 0.1 * rng.random((k, n))
    H[group, np.arange(n)] += 1.0
    W = rng.random((m, k))
    X = np.maximum(W @ H + 0.5 * rng.standard_normal((m, n)), 0)
    rows, cols = [], []
    for i in range(n):
        same = np.flatnonzero((group == group[i]) & (np.arange(n) != i))
        rows += [i] * 5
        cols += list(rng.choice(same, 5, replace=False))
    A = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return X, H, ((A + A.T) > 0).astype(float)


@pytest.mark.parametrize("seed", [0, 1])
def test_graph_regularisation_recovers_graph_smooth_factors(seed):
    X, H, A = _grouped_samples(seed)
    # a penalty on H alone needs W's scale pinned (X ≈ (cW)(H/c)): W ≤ 1, as planted, in both fits
    graph = _fit(X, 3, seed, graph_H=A, graph_alpha=10.0, upper_bound=(1.0, None), max_iter=300)
    plain = _fit(X, 3, seed, upper_bound=(1.0, None), max_iter=300)
    assert _error(H.T, graph.H.T) < 0.6 * _error(H.T, plain.H.T)
    assert _non_increasing(graph)


def test_graph_is_validated_and_not_modified():
    X = np.random.default_rng(0).random((10, 8))
    A = sp.random(8, 8, density=0.4, random_state=0, format="csr")
    A = A + A.T
    kept = A.copy()
    nmfkit.fit(X, 2, solver="hals", graph_H=A, graph_alpha=1.0, max_iter=5)
    assert (A != kept).nnz == 0
    cases = [(dict(graph_H=np.ones((7, 7))), "8×8"), (dict(graph_W=np.ones((8, 8))), "10×10"),
             (dict(graph_H=np.triu(np.ones((8, 8)))), "symmetric"), (dict(graph_H=-A), "negative"),
             (dict(graph_H=np.ones(8)), "square 2-D"), (dict(graph_H="graph"), "adjacency matrix")]
    for options, message in cases:
        with pytest.raises((ValueError, TypeError), match=message):
            nmfkit.fit(X, 2, solver="hals", graph_alpha=1.0, **options)
    L = sp.diags(np.asarray(A.sum(axis=1)).ravel()) - A
    with pytest.raises(ValueError, match="looks like a graph Laplacian"):
        nmfkit.fit(X, 2, solver="hals", graph_H=L, graph_alpha=1.0)
    with pytest.raises(ValueError, match="graph_alpha is 0"):
        nmfkit.fit(X, 2, solver="hals", graph_H=A)
    with pytest.raises(ValueError, match="without a graph"):
        nmfkit.fit(X, 2, solver="hals", graph_alpha=1.0)


def test_graph_majorizer_touches_and_lies_above():
    """The graph half-step data: the majorizer equals the penalty at F₀ and lies above it elsewhere."""
    rng = np.random.default_rng(4)
    n, k = 15, 3
    A = sp.random(n, n, density=0.3, random_state=4)
    rule = factor_rules((4, n), graph_H=A + A.T, graph_alpha=2.0)["H"]
    F0, G = rng.random((n, k)), np.eye(k)
    R0 = np.zeros((n, k))
    R, _, d, _ = rule.edit(R0, G, F0)
    const = rule.value(F0) - (0.5 * (d[:, None] * F0 * F0).sum() - np.vdot(F0, R))

    def majorizer(F):      # the graph part of the majorized half-step objective, plus its constant
        return 0.5 * (d[:, None] * F * F).sum() - np.vdot(F, R) + const

    assert majorizer(F0) == pytest.approx(rule.value(F0), rel=1e-12)
    for _ in range(20):
        F = rng.random((n, k)) * 3
        assert majorizer(F) >= rule.value(F) - 1e-12 * abs(rule.value(F))


# -- ortho (angular) --------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_ortho_recovers_disjoint_components(seed):
    rng = np.random.default_rng(seed)
    m, n, k = 90, 60, 3
    W = np.zeros((m, k))
    W[np.arange(m), np.arange(m) % k] = 1 + rng.random(m)    # each feature on one component
    H = rng.random((k, n))
    X = np.maximum(W @ H + 0.3 * rng.standard_normal((m, n)), 0)
    ortho = _fit(X, k, seed, ortho_W=1.0, upper_bound=(None, 1.0), max_iter=300)
    plain = _fit(X, k, seed, upper_bound=(None, 1.0), max_iter=300)
    assert _error(W, ortho.W) < 0.5 * _error(W, plain.W)
    unit = ortho.W / np.linalg.norm(ortho.W, axis=0)
    assert (unit.T @ unit - np.eye(k)).max() < 0.05           # nearly disjoint supports
    assert _non_increasing(ortho)


# -- all options: objective, refusals, routing, plain path --------------------------------------------

def test_reported_objective_includes_every_penalty():
    rng = np.random.default_rng(5)
    X = rng.random((30, 25))
    A = sp.random(25, 25, density=0.2, random_state=5)
    options = dict(l21_W=0.3, ortho_W=0.2, graph_H=A + A.T, graph_alpha=0.5, upper_bound=(None, 2.0),
                   alpha_W=0.01)
    r = nmfkit.fit(X, 4, solver="hals", seed=0, max_iter=40, tol=0, **options)
    W, Ht = r.W, r.H.T
    D = A + A.T
    D.setdiag(0)
    L = sp.diags(np.asarray(D.sum(1)).ravel()) - D
    expected = (0.5 * np.linalg.norm(X - W @ Ht.T) ** 2 + 0.3 * np.linalg.norm(W, axis=0).sum()
                + 0.2 * sum(W[:, a] @ W[:, b] for a in range(4) for b in range(a + 1, 4))
                + 0.25 * np.vdot(Ht, L @ Ht) + 0.01 * 25 * 0.5 * np.vdot(W, W) + 0.01 * 30 * 0.5 * np.vdot(Ht, Ht))
    assert r.loss == pytest.approx(expected, rel=1e-10)
    assert r.options["l21_W"] == 0.3 and r.options["upper_bound"] == (None, 2.0)


def test_default_options_take_the_plain_path_bit_for_bit():
    rng = np.random.default_rng(6)
    X = rng.random((40, 30))
    plain = nmfkit.fit(X, 4, solver="hals", seed=1, max_iter=30, tol=0)
    same = nmfkit.fit(X, 4, solver="hals", seed=1, max_iter=30, tol=0, upper_bound=None, nonneg_W=True,
                      nonneg_H=True, l21_W=0.0, ortho_H=0.0)
    assert np.array_equal(plain.W, same.W) and np.array_equal(plain.H, same.H)
    assert np.array_equal(plain.history["objective"], same.history["objective"])


def test_solver_auto_picks_hals_and_other_losses_are_refused():
    X = np.random.default_rng(7).random((20, 15))
    assert nmfkit.fit(X, 2, upper_bound=1.0, max_iter=5).options["solver"] == "hals"
    with pytest.raises(ValueError, match="does not support loss 'kl'"):
        nmfkit.fit(X, 2, loss="kl", l21_H=1.0)


def test_sparse_memmap_and_float32_data(tmp_path):
    rng = np.random.default_rng(8)
    X = sp.random(60, 40, density=0.3, random_state=8, format="csr")
    np.save(tmp_path / "X.npy", X.toarray())
    start = (rng.random((60, 3)), rng.random((3, 40)))
    # one sweep per half-step: the sweep caps depend on nnz, which differs between the two kinds
    options = dict(l21_W=0.1, l21_H=0.1, upper_bound=2.0, init=start, inner_alpha=0, max_iter=30)
    dense, sparse = _fit(X.toarray(), 3, 0, **options), _fit(X, 3, 0, **options)
    mapped = _fit(np.load(tmp_path / "X.npy", mmap_mode="r"), 3, 0, **options)
    assert mapped.options["engine"] == "memmap"
    # the same arithmetic up to the summation order of the products with X (float64)
    for other in (sparse, mapped):
        np.testing.assert_allclose(other.W, dense.W, rtol=1e-7, atol=1e-9)
        assert other.loss == pytest.approx(dense.loss, rel=1e-9)
    single = _fit(X.astype(np.float32), 3, 0, nonneg_W=False, upper_bound=(None, 2.0), max_iter=60)
    assert single.W.dtype == np.float32 and _non_increasing(single)


def test_torch_data_is_refused_with_the_options():
    torch = pytest.importorskip("torch")
    X = torch.rand(20, 15, dtype=torch.float64)
    with pytest.raises(ValueError, match="NumPy/SciPy data only"):
        nmfkit.fit(X, 2, solver="hals", upper_bound=1.0)


def test_step_does_not_modify_inputs_with_options():
    from nmfkit.engines import make_engine
    rng = np.random.default_rng(9)
    X = rng.random((20, 15))
    solver = HALS(make_engine(X), "frobenius", 2.0, l21_H=0.5, upper_bound=1.0, nonneg_W=False)
    W, Ht = solver.prepare(rng.random((20, 3)), rng.random((15, 3)))
    W0, Ht0 = W.copy(), Ht.copy()
    W1, Ht1, obj = solver.step(W, Ht)
    assert np.array_equal(W, W0) and np.array_equal(Ht, Ht0)
    assert obj == pytest.approx(solver.objective(W1, Ht1), rel=1e-10)


def test_semi_nmf_model_and_checkpoint_round_trip(tmp_path):
    """A signed W (nonneg_W=False) is saved, loaded and resumed; an unsigned model with negative
    values is still refused."""
    rng = np.random.default_rng(5)
    X = np.abs(rng.standard_normal((40, 3)) @ rng.random((3, 20)))
    ckpt = tmp_path / "semi.ckpt.npz"
    fit = nmfkit.fit(X, 3, solver="hals", nonneg_W=False, max_iter=20, tol=0, seed=0, checkpoint=str(ckpt),
                     checkpoint_every=10)
    assert (fit.W < 0).any()
    fit.save(tmp_path / "semi.npz")
    back = nmfkit.Factorization.load(tmp_path / "semi.npz")
    np.testing.assert_array_equal(back.W, fit.W)
    resumed = nmfkit.fit(X, 3, solver="hals", nonneg_W=False, max_iter=25, tol=0, seed=0, resume=str(ckpt))
    assert resumed.n_iter == 25
    plain = nmfkit.fit(X, 3, solver="hals", max_iter=5, seed=0)
    plain.W[0, 0] = -1.0
    plain.save(tmp_path / "plain.npz")
    with pytest.raises(ValueError, match="negative values"):
        nmfkit.Factorization.load(tmp_path / "plain.npz")
