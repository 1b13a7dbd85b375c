"""Joint NMF, iNMF, online iNMF and quantile normalisation (nmfkit.joint) on data simulated from
their models: recovery with a margin, monotone block-coordinate descent, objectives that match a
direct evaluation, and the equivalences that define the joint fit."""
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

import nmfkit
from nmfkit.joint import OnlineINMF, fit_joint, inmf, inmf_objective, quantile_norm

K, G = 4, 60


def simulate(seed=0, sizes=(150, 120), noise=0.01):
    """Data sets from the iNMF model: X_i = H_i (W + V_i) with 1 % multiplicative noise; W has a
    strong entry per component, V_i are small and sparse (the data-set-specific part)."""
    rng = np.random.default_rng(seed)
    W = rng.random((K, G)) * (rng.random((K, G)) < 0.5)
    W[np.arange(K), np.arange(K) * 5] += 2
    Vs = [0.5 * rng.random((K, G)) * (rng.random((K, G)) < 0.15) for _ in sizes]
    Hs = [rng.random((n, K)) * (rng.random((n, K)) < 0.6) for n in sizes]
    Xs = [np.maximum(H @ (W + V) * (1 + noise * rng.standard_normal((len(H), G))), 0) for H, V in zip(Hs, Vs)]
    return Xs, W, Vs, Hs


def cosines(A, B):
    A = A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-300)
    B = B / np.maximum(np.linalg.norm(B, axis=1, keepdims=True), 1e-300)
    return A @ B.T


def matched(A, B):
    """Row-wise cosines of A's rows against B's after the best one-to-one matching, and the matching."""
    C = cosines(A, B)
    rows, cols = linear_sum_assignment(-C)
    return C[rows, cols], rows, cols


def test_inmf_recovers_shared_and_specific_factors_monotonically():
    Xs, W, Vs, Hs = simulate()
    result = inmf(Xs, K, lam=1.0, max_iter=200, tol=1e-8, seed=0)
    objective = result.history["objective"]
    assert np.all(np.diff(objective) <= 1e-12 * objective[0])              # block-exact: never increases
    assert not result.monotonicity
    assert result.loss == pytest.approx(inmf_objective(Xs, result.W, result.V, result.H, 1.0), rel=1e-10)
    shared, rows, cols = matched(result.W, W)
    assert shared.min() > 0.97                                            # measured ≥ 0.991
    for i in range(2):
        specific = cosines(result.W + result.V[i], W + Vs[i])[rows, cols]
        assert specific.min() > 0.97                                      # measured ≥ 0.993
        assert cosines(result.H[i].T, Hs[i].T)[rows, cols].min() > 0.97   # measured ≥ 0.998


def test_inmf_inputs_dense_sparse_streamed_and_named_give_the_same_fit(tmp_path):
    Xs, *_ = simulate(seed=1, sizes=(60, 50))
    np.save(tmp_path / "b.npy", Xs[1])
    dense = inmf(Xs, K, max_iter=15, tol=0, seed=3)
    mixed = inmf({"a": sp.csr_matrix(Xs[0]), "b": str(tmp_path / "b.npy")}, K, max_iter=15, tol=0, seed=3)
    assert mixed.names == ["a", "b"] and dense.names == ["0", "1"]
    np.testing.assert_allclose(mixed.history["objective"], dense.history["objective"], rtol=1e-8)
    with pytest.raises(ValueError, match="same features"):
        inmf([Xs[0], Xs[1][:, :10]], K)
    with pytest.raises(ValueError, match="lam"):
        inmf(Xs, K, lam=-1)


def test_quantile_norm_aligns_each_clusters_factor_distributions():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 400)
    H_ref = rng.random((400, 3)) * 0.2
    H_ref[np.arange(400), labels] += 1.0
    H_other = rng.random((300, 3)) * 0.2
    other_labels = rng.integers(0, 3, 300)
    H_other[np.arange(300), other_labels] += 1.0
    H_other = H_other ** 2 * 3.0                       # a different (monotone) distortion of every factor
    normed, clusters = quantile_norm([H_ref, H_other], knn_k=0)
    assert (clusters[0] == labels).all() and (clusters[1] == other_labels).all()
    levels = np.linspace(0, 1, 11)
    for c in range(3):
        for j in range(3):
            ref = np.quantile(normed[0][clusters[0] == c, j], levels)
            mine = np.quantile(normed[1][clusters[1] == c, j], levels)
            np.testing.assert_allclose(mine, ref, atol=0.05 * ref.max())   # 50 quantiles → interpolation error
    np.testing.assert_array_equal(normed[0], H_ref / np.linalg.norm(H_ref, axis=0))   # the reference only scaled
    smoothed, _ = quantile_norm([H_ref, H_other], knn_k=5)
    assert len(smoothed) == 2
    with pytest.raises(ValueError, match="reference"):
        quantile_norm([H_ref, H_other], reference=4)


def test_online_inmf_three_scenarios():
    Xs, W, Vs, Hs = simulate(seed=4, sizes=(300, 300))
    model = OnlineINMF(K, lam=1.0, seed=0)
    for epoch in range(3):                                 # scenario 1: both data sets, interleaved chunks
        for s in range(0, 300, 50):
            for i in (0, 1):
                model.partial_fit(Xs[i][s:s + 50], dataset=f"d{i}")
    shared, rows, cols = matched(model.W, W)
    assert shared.min() > 0.9                              # measured ≥ 0.93 after 3 passes
    H0 = model.transform(Xs[0], "d0")
    rel = np.linalg.norm(Xs[0] - H0 @ (model.W + model.V["d0"])) / np.linalg.norm(Xs[0])
    assert rel < 0.15                                      # measured 0.112 (batch iNMF: 0.01)
    new_X, *_ = simulate(seed=5, sizes=(80,))
    W_before = model.W.copy()
    projected = model.project(new_X[0])                    # scenario 3: W not updated
    np.testing.assert_array_equal(model.W, W_before)
    assert projected.shape == (80, K) and projected.min() >= 0
    model.partial_fit(new_X[0], dataset="late")            # scenario 2: a data set arriving later
    assert set(model.V) == {"d0", "d1", "late"} and model.n_seen["late"] == 80


def test_joint_shared_H_with_weights_is_the_stacked_rescaled_fit(tmp_path):
    rng = np.random.default_rng(6)
    H = rng.random((3, 30))
    X1, X2 = rng.random((40, 3)) @ H, rng.random((25, 3)) @ H
    np.save(tmp_path / "x2.npy", X2)
    joint = fit_joint([sp.csr_matrix(X1), str(tmp_path / "x2.npy")], 3, weights=[1.0, 4.0], solver="hals",
                      seed=0, max_iter=30, tol=0)
    direct = nmfkit.fit(np.vstack([X1, 2.0 * X2]), 3, solver="hals", seed=0, max_iter=30, tol=0)
    np.testing.assert_allclose(joint.fit.history["objective"], direct.history["objective"], rtol=1e-9)
    np.testing.assert_allclose(joint.shared, direct.H, rtol=1e-7, atol=1e-10)
    # the loss is Σ w_i ½‖X_i − W_i H‖² at the returned factors
    value = sum(w * 0.5 * np.sum((X - F @ joint.shared) ** 2) for w, X, F in zip((1, 4), (X1, X2), joint.own))
    assert joint.loss == pytest.approx(value, rel=1e-8)


def test_joint_shared_W_and_kl_weights():
    rng = np.random.default_rng(7)
    W = rng.random((35, 3))
    X1, X2 = W @ rng.random((3, 20)), W @ rng.random((3, 15))
    joint = fit_joint([X1, X2], 3, share="W", weights=[2.0, 1.0], loss="kl", solver="mu", seed=0, max_iter=40,
                      tol=0)
    assert joint.shared.shape == (35, 3) and [F.shape for F in joint.own] == [(3, 20), (3, 15)]
    direct = nmfkit.fit(np.hstack([2.0 * X1, X2]).T, 3, loss="kl", solver="mu", seed=0, max_iter=40, tol=0)
    np.testing.assert_allclose(joint.fit.history["objective"], direct.history["objective"], rtol=1e-9)
    with pytest.raises(ValueError, match="same rows"):
        fit_joint([X1, X2[:10]], 3, share="W")
    with pytest.raises(ValueError, match="scale-invariant"):
        fit_joint([X1 + 0.1, X2 + 0.1], 3, share="W", weights=[1, 2], loss="is")
    with pytest.raises(ValueError, match="one positive number per data set"):
        fit_joint([X1, X2], 3, share="W", weights=[1.0])


def test_uinmf_recovers_unshared_metagenes_and_stays_monotone():
    """Data set 0 also measured 15 features data set 1 did not: Y_0 = H_0 U_0 (+ noise)."""
    Xs, W, Vs, Hs = simulate(seed=8)
    rng = np.random.default_rng(9)
    U0 = rng.random((K, 15)) * (rng.random((K, 15)) < 0.5)
    U0[np.arange(K), np.arange(K) * 3] += 1.5
    Y0 = np.maximum(Hs[0] @ U0 * (1 + 0.01 * rng.standard_normal((len(Hs[0]), 15))), 0)
    result = inmf(Xs, K, lam=1.0, max_iter=200, tol=1e-8, seed=0, unshared=[sp.csr_matrix(Y0), None])
    objective = result.history["objective"]
    assert np.all(np.diff(objective) <= 1e-12 * objective[0]) and not result.monotonicity
    assert result.loss == pytest.approx(inmf_objective(Xs, result.W, result.V, result.H, 1.0, [Y0, None],
                                                       result.U), rel=1e-10)
    assert result.U[1] is None and result.U[0].shape == (K, 15)
    shared, rows, cols = matched(result.W, W)
    assert shared.min() > 0.97
    assert cosines(result.U[0], U0)[rows, cols].min() > 0.95
    with pytest.raises(ValueError, match="rows but its data set has"):
        inmf(Xs, K, unshared={"0": Y0[:10]})
    with pytest.raises(ValueError, match="does not have"):
        inmf(Xs, K, unshared={"zz": Y0})


def test_online_inmf_over_files_read_chunk_by_chunk(tmp_path):
    from nmfkit.joint import online_inmf
    Xs, W, Vs, Hs = simulate(seed=10, sizes=(300, 250))
    paths = []
    for i, X in enumerate(Xs):
        np.save(tmp_path / f"x{i}.npy", X)
        paths.append(str(tmp_path / f"x{i}.npy"))
    model, H = online_inmf(paths, K, lam=1.0, chunk=50, epochs=3, seed=0)
    assert [h.shape for h in H] == [(300, K), (250, K)]
    shared, rows, cols = matched(model.W, W)
    assert shared.min() > 0.9                              # measured 0.951 (3 epochs of 50-cell chunks)
    for i in range(2):
        rel = np.linalg.norm(Xs[i] - H[i] @ (model.W + model.V[str(i)])) / np.linalg.norm(Xs[i])
        assert rel < 0.15                                  # measured 0.104 and 0.109
        print(f"data set {i}: relative error {rel:.3f}, shared cosines {np.round(shared, 3)}")


# -- checkpoints, Ctrl-C and progress of iNMF ----------------------------------------------------------

def test_inmf_resume_is_bit_identical_and_refuses_other_problems_by_name(tmp_path):
    Xs, *_ = simulate(seed=11, sizes=(40, 30))
    Y0 = np.random.default_rng(12).random((40, 8))
    named = {"a": Xs[0], "b": sp.csr_matrix(Xs[1])}
    whole = inmf(named, K, lam=2.0, max_iter=20, tol=0, seed=1, unshared={"a": Y0})
    path = tmp_path / "inmf.ckpt.npz"
    first = inmf(named, K, lam=2.0, max_iter=10, tol=0, seed=1, unshared={"a": Y0}, checkpoint=path,
                 checkpoint_every=10)
    assert first.n_iter == 10 and path.exists()
    resumed = inmf(named, K, lam=2.0, max_iter=20, tol=0, seed=1, unshared={"a": Y0}, resume=path)
    assert resumed.n_iter == 20 and resumed.loss == whole.loss
    for a, b in [(resumed.W, whole.W), (resumed.U[0], whole.U[0]), *zip(resumed.H, whole.H),
                 *zip(resumed.V, whole.V)]:
        np.testing.assert_array_equal(a, b)                       # bit-identical, not merely close
    np.testing.assert_array_equal(resumed.history["objective"], whole.history["objective"])
    np.testing.assert_array_equal(resumed.history["iteration"], np.arange(21))
    refusals = [
        (dict(Xs={"a": Xs[0], "b": Xs[1] * 1.001}), "data set 'b' is not the one.*other values"),
        (dict(Xs={"a": Xs[0], "c": Xs[1]}), r"data sets \['a', 'b'\], but this fit has \['a', 'c'\]"),
        (dict(Xs={"a": Xs[0][:30], "b": Xs[1]}, unshared={"a": Y0[:30]}), "data set 'a' is not the one.*other shape"),
        (dict(unshared={"a": Y0 * 2}), "data set 'a' is not the one.*unshared features' values"),
        (dict(unshared=None), "data set 'a' is not the one.*unshared features' shape"),
        (dict(lam=1.0), "lam=2.0, but this fit has lam=1.0"),
    ]
    for change, message in refusals:
        options = {"Xs": named, "lam": 2.0, "unshared": {"a": Y0}, **change}
        with pytest.raises(ValueError, match=message):
            inmf(options.pop("Xs"), K, max_iter=20, resume=path, **options)
    with pytest.raises(ValueError, match="several data sets"):
        nmfkit.fit(np.vstack(Xs), K, resume=path)
    with pytest.raises(ValueError, match="checkpoint_every"):
        inmf(named, K, checkpoint=tmp_path / "other.npz", checkpoint_every=0)


def test_inmf_ctrl_c_returns_the_best_so_far_and_its_checkpoint_resumes_exactly(tmp_path):
    Xs, *_ = simulate(seed=13, sizes=(40, 30))
    whole = inmf(Xs, K, max_iter=20, tol=0, seed=2)

    def ctrl_c(state):
        if state.iteration == 13:
            raise KeyboardInterrupt

    path = tmp_path / "inmf.ckpt.npz"
    with pytest.warns(RuntimeWarning, match="inmf: interrupted at iteration 13"):
        stopped = inmf(Xs, K, max_iter=20, tol=0, seed=2, callback=ctrl_c, checkpoint=path, checkpoint_every=10)
    assert stopped.stop_reason == "interrupted" and stopped.n_iter == 13
    assert stopped.loss == stopped.history["objective"][-1] == whole.history["objective"][13]
    resumed = inmf(Xs, K, max_iter=20, tol=0, seed=2, resume=path)     # the checkpoint written at the interrupt
    np.testing.assert_array_equal(resumed.W, whole.W)
    np.testing.assert_array_equal(resumed.history["objective"], whole.history["objective"])


class _InterruptingReader:
    """Rows of X, with Ctrl-C (KeyboardInterrupt) raised at the `fail_at`-th read."""

    def __init__(self, X, fail_at):
        self.X, self.shape, self.dtype, self.reads, self.fail_at = X, X.shape, X.dtype, 0, fail_at

    def read(self, start, stop):
        self.reads += 1
        if self.reads == self.fail_at:
            raise KeyboardInterrupt
        return self.X[start:stop]


def test_inmf_ctrl_c_during_the_start_returns_the_start_with_one_warning():
    Xs, *_ = simulate(seed=14, sizes=(40, 30))
    reader = _InterruptingReader(Xs[1], fail_at=20)        # inside the start's joint NMF (20 HALS iterations)
    with pytest.warns(RuntimeWarning) as caught:
        result = inmf([Xs[0], reader], K, max_iter=10, tol=0, seed=0)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "inmf: interrupted during the start" in messages[0]
    assert result.stop_reason == "interrupted" and result.n_iter == 0
    assert np.all(result.V[0] == 0) and result.loss == pytest.approx(
        inmf_objective(Xs, result.W, result.V, result.H, 5.0), rel=1e-10)


def test_inmf_verbose_shows_progress(capsys):
    Xs, *_ = simulate(seed=15, sizes=(40, 30))
    inmf(Xs, K, max_iter=6, tol=0, seed=0, verbose=True)
    err = capsys.readouterr().err
    assert "inmf 6/6 iterations objective" in err
    inmf(Xs, K, max_iter=6, tol=0, seed=0)
    assert capsys.readouterr().err == ""


def test_fit_joint_checkpoints_through_the_streamed_fit(tmp_path):
    """fit_joint is one streamed fit of the stacked, rescaled data: its checkpoint is tied to those values
    (weights included), and anls (whose state is its iterate) resumes bit-identically."""
    rng = np.random.default_rng(16)
    Xs = [rng.random((40, 30)), rng.random((30, 30))]
    whole = fit_joint(Xs, 3, solver="anls", weights=[1.0, 2.0], max_iter=20, tol=0, seed=1)
    path = tmp_path / "joint.ckpt.npz"
    fit_joint(Xs, 3, solver="anls", weights=[1.0, 2.0], max_iter=10, tol=0, seed=1, checkpoint=path,
              checkpoint_every=10)
    resumed = fit_joint(Xs, 3, solver="anls", weights=[1.0, 2.0], max_iter=20, tol=0, seed=1, resume=path)
    np.testing.assert_array_equal(resumed.shared, whole.shared)
    for a, b in zip(resumed.own, whole.own):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="other data"):
        fit_joint(Xs, 3, solver="anls", weights=[1.0, 3.0], max_iter=20, resume=path)

    def ctrl_c(state):
        if state.iteration == 5:
            raise KeyboardInterrupt

    with pytest.warns(RuntimeWarning, match="interrupted at iteration 5"):
        stopped = fit_joint(Xs, 3, solver="anls", weights=[1.0, 2.0], max_iter=20, tol=0, seed=1, callback=ctrl_c)
    assert stopped.fit.stop_reason == "interrupted" and stopped.fit.n_iter == 5
    assert stopped.loss == pytest.approx(whole.fit.history["objective"][5], rel=1e-12)
