"""No silent wrong answers: extreme data scales, subnormal KL entries, bad β, starts that cannot
move, one-run consensus, resumes on other data or options, and HALS's treatment of a given start.

Scaling tests use powers of two: dividing by 2^e is exact in binary floating point, so a fit of
X·2^e must reproduce the fit of X bit for bit, with the factors times 2^(e/2)."""
import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit
from nmfkit import checkpoint as ckpt
from nmfkit.engines import make_engine
from nmfkit.engines._dense_kernels import kl_products_numpy
from nmfkit.engines._kernels import log_ratio
from nmfkit.engines.dense import beta_divergence_dense
from nmfkit.fit import data_scale_log2, in_data_units, times_power_of_two
from nmfkit.registry import resolve_loss
from nmfkit.solvers._ccd_kernels import kl_cd_csr_numpy, kl_cd_dense_numpy

X = np.random.default_rng(0).random((30, 20))          # entries in (0, 1): max has exponent 0


def quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return nmfkit.fit(*args, **kwargs)


# -- 1. extreme scales -------------------------------------------------------------------------------

@pytest.mark.parametrize("solver", ["hals", "mu", "pgd", "anls", "sgd"])
def test_huge_data_is_fitted_rescaled_exactly(solver):
    ref = nmfkit.fit(X, 3, solver=solver, seed=0, max_iter=30)
    with pytest.warns(RuntimeWarning, match="above the float64 range"):     # ½‖X‖² ~ 2^1992 overflows
        big = nmfkit.fit(X * 2.0 ** 996, 3, solver=solver, seed=0, max_iter=30)
    assert big.stop_reason == ref.stop_reason != "diverged"
    np.testing.assert_array_equal(big.W, ref.W * 2.0 ** 498)
    np.testing.assert_array_equal(big.H, ref.H * 2.0 ** 498)
    assert big.relative_error == ref.relative_error
    assert big.loss == math.inf and big.options["scale_log2"] == 996


@pytest.mark.parametrize("solver", ["hals", "mu", "anls"])
def test_data_scaled_by_1e300_is_not_diverged(solver):
    big = quiet_fit(X * 1e300, 3, solver=solver, seed=0, max_iter=50)
    assert big.stop_reason != "diverged" and np.isfinite(big.W).all() and np.isfinite(big.H).all()
    assert big.options["scale_log2"] == 996
    # the fit of X·1e300 is the fit of X·1e300 / 2^996 (an exact division), factors times 2^498
    ref = nmfkit.fit(times_power_of_two(X * 1e300, -996), 3, solver=solver, seed=0, max_iter=50)
    np.testing.assert_array_equal(big.W, ref.W * 2.0 ** 498)
    assert big.relative_error == ref.relative_error and big.n_iter == ref.n_iter


@pytest.mark.parametrize("scale", [1e-300, 5e-320])
def test_tiny_and_subnormal_data_fit_without_error(scale):
    Xs = X * scale                                      # 5e-320: subnormal, rounded to its few bits
    e = data_scale_log2(Xs, make_engine(Xs))
    exact = times_power_of_two(Xs, -e)                  # subnormals scaled up by a power of two: exact
    ref = nmfkit.fit(exact, 3, seed=0, max_iter=30)
    with pytest.warns(RuntimeWarning, match="below the float64 range"):
        small = nmfkit.fit(Xs, 3, seed=0, max_iter=30)
    assert small.loss == 0.0 and small.stop_reason != "diverged"
    assert small.relative_error == ref.relative_error
    np.testing.assert_array_equal(small.W, times_power_of_two(ref.W, e // 2))


def test_float32_data_scaled_by_1e25():
    X32 = X.astype(np.float32)
    ref = nmfkit.fit(X32, 3, seed=0, max_iter=30)
    big = nmfkit.fit(X32 * np.float32(2.0 ** 84), 3, seed=0, max_iter=30)
    np.testing.assert_array_equal(big.W, ref.W * np.float32(2.0 ** 42))
    assert big.W.dtype == np.float32
    np.testing.assert_allclose(big.loss, ref.loss * 2.0 ** 168, rtol=1e-12)   # the same float64 number
    issue = quiet_fit((X * 1e25).astype(np.float32), 3, seed=0, max_iter=30)
    assert issue.stop_reason != "diverged" and np.isfinite(issue.loss)
    np.testing.assert_allclose(issue.relative_error, ref.relative_error, rtol=1e-4)   # float32 rounding


def test_given_start_is_scaled_with_the_data():
    rng = np.random.default_rng(1)
    W0, H0 = rng.random((30, 3)), rng.random((3, 20))
    ref = nmfkit.fit(X, 3, solver="pgd", init=(W0, H0), max_iter=20)
    big = quiet_fit(X * 2.0 ** 996, 3, solver="pgd", init=(W0 * 2.0 ** 498, H0 * 2.0 ** 498), max_iter=20)
    np.testing.assert_array_equal(big.W, ref.W * 2.0 ** 498)
    np.testing.assert_array_equal(big.H, ref.H * 2.0 ** 498)


def test_callback_and_history_are_in_the_data_units():
    seen = []
    small = nmfkit.fit(X * 2.0 ** -200, 3, solver="hals", seed=0, max_iter=10, tol=0,
                       callback=lambda s: seen.append((s.objective, s.W.max())) and False)
    ref = nmfkit.fit(X, 3, solver="hals", seed=0, max_iter=10, tol=0)
    assert small.options["scale_log2"] == -200
    np.testing.assert_array_equal(small.history["objective"], ref.history["objective"] * 2.0 ** -400)
    assert seen[-1] == (small.loss, small.W.max())


def test_options_in_data_units_are_refused_when_rescaling():
    with pytest.raises(ValueError, match="alpha_W=0.1 is in X's units"):
        nmfkit.fit(X * 1e300, 3, solver="hals", alpha_W=0.1)
    with pytest.raises(ValueError, match="step=0.01"):
        nmfkit.fit(X * 1e-300, 3, solver="pgd", step=0.01)


@pytest.mark.parametrize("data", [X, X * 1e6, X * 1e-12, sp.csr_matrix(X * (X > 0.5)),
                                  (X * 1e9).astype(np.float32), (X * 1e-9).astype(np.float32)])
def test_ordinary_data_is_not_rescaled(data):
    assert data_scale_log2(data, make_engine(data)) == 0
    assert "scale_log2" not in nmfkit.fit(data, 2, max_iter=3).options


def test_loss_units_follow_the_loss_degree():
    assert in_data_units(3.0, 10, "frobenius", 2.0) == 3.0 * 2.0 ** 20
    assert in_data_units(3.0, 10, "kl", 1.0) == 3.0 * 2.0 ** 10
    assert in_data_units(3.0, 10, "is", 0.0) == 3.0
    assert in_data_units(3.0, 10, "beta", 1.5) == pytest.approx(3.0 * 2.0 ** 15, rel=1e-15)
    assert in_data_units(3.0, 1000, "frobenius", 2.0) == math.inf


# -- 2. subnormal KL entries --------------------------------------------------------------------------

Y = X * 100
Y[0, 0] = 1e-323                  # x/λ underflows to 0 for every λ > 1e-323 / 2^-1075


@pytest.mark.parametrize("solver", ["mu", "ccd", "brunet"])
@pytest.mark.parametrize("rank", [2, 6, 12])                # fused kernels at small ranks, BLAS above
@pytest.mark.parametrize("sparse", [False, True])
def test_kl_with_a_subnormal_entry_stays_finite(solver, rank, sparse):
    f = nmfkit.fit(sp.csr_matrix(Y) if sparse else Y, rank, loss="kl", solver=solver, seed=0, max_iter=20)
    assert np.isfinite(f.loss) and f.loss > 0 and f.stop_reason != "diverged"
    assert np.isfinite(f.history["objective"]).all()


def test_kl_float32_subnormal_entry_stays_finite():
    Y32 = (X * 100).astype(np.float32)
    Y32[0, 0] = np.float32(1e-45)
    for data in (Y32, sp.csr_matrix(Y32)):
        for rank in (2, 6):
            f = nmfkit.fit(data, rank, loss="kl", solver="mu", seed=0, max_iter=20)
            assert np.isfinite(f.loss) and f.stop_reason != "diverged"


def kl_reference(Xd, L):
    """Σ x (log x − log λ) − x + λ in float64 (no ratio that could underflow)."""
    pos = Xd > 0
    return float(np.sum(Xd[pos] * (np.log(Xd[pos]) - np.log(L[pos]))) - Xd.sum() + L.sum())


def test_kl_numpy_twins_stay_finite():
    rng = np.random.default_rng(2)
    W, Ht = rng.random((30, 4)) + 1, rng.random((20, 4)) + 1    # λ ≥ 4: x/λ underflows
    L = W @ Ht.T
    want = kl_reference(Y, L)
    assert kl_products_numpy(Y, W, Ht, ("loss",))["loss"] == pytest.approx(want, rel=1e-12)
    assert beta_divergence_dense(Y, L, 1) == pytest.approx(want, rel=1e-12)
    x = np.array([1e-323, 2.0])
    assert np.isfinite(log_ratio(x, np.array([10.0, 1.0]))).all()
    # coordinate-descent twins: the loss at their returned rows, against the reference there
    Fn, loss = kl_cd_dense_numpy(Y, W, Ht, 1, 0.0, want_loss=True)
    assert loss == pytest.approx(kl_reference(Y, np.maximum(Fn @ Ht.T, 1e-300)), rel=1e-10)
    C = sp.csr_matrix(Y)
    Fn, loss = kl_cd_csr_numpy(C.indptr, C.indices, C.data, W, Ht, 1, 0.0, want_loss=True)
    assert loss == pytest.approx(kl_reference(Y, Fn @ Ht.T), rel=1e-10)


def test_sklearn_reconstruction_error_is_not_zero_for_a_subnormal_entry():
    from nmfkit.sklearn import NMF
    model = NMF(3, beta_loss="kullback-leibler", solver="mu", max_iter=30, random_state=0).fit(Y)
    assert np.isfinite(model.reconstruction_err_) and model.reconstruction_err_ > 1.0


def test_torch_kl_with_a_subnormal_entry_stays_finite():
    torch = pytest.importorskip("torch")
    for data in (torch.tensor(Y), torch.tensor(Y).to_sparse_csr()):
        f = nmfkit.fit(data, 3, loss="kl", solver="mu", seed=0, max_iter=20)
        assert np.isfinite(f.loss) and f.stop_reason != "diverged"
    from nmfkit.engines.torch_engine import beta_divergence
    L = np.random.default_rng(2).random(Y.shape) + 4
    assert beta_divergence(torch.tensor(Y), torch.tensor(L), 1) == pytest.approx(kl_reference(Y, L), rel=1e-12)


def test_dask_kl_with_a_subnormal_entry_stays_finite():
    da = pytest.importorskip("dask.array")
    f = nmfkit.fit(da.from_array(Y, chunks=(10, 20)), 3, loss="kl", solver="mu", seed=0, max_iter=20)
    assert np.isfinite(f.loss) and f.stop_reason != "diverged"


# -- 3. β ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("beta", [float("nan"), float("inf"), -float("inf"), "abc", True])
def test_bad_beta_is_refused(beta):
    with pytest.raises(ValueError, match="beta must be a finite number"):
        resolve_loss("frobenius", beta)
    with pytest.raises(ValueError, match="beta must be a finite number"):
        nmfkit.fit(X, 2, beta=beta)


def test_cli_refuses_beta_nan(tmp_path, capsys):
    from nmfkit.cli import main
    path = tmp_path / "x.csv"
    np.savetxt(path, X, delimiter=",")
    assert main(["fit", str(path), "--rank", "2", "--beta", "nan", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "beta must be a finite number" in err and len(err.splitlines()) == 1


# -- 4. starts that cannot move -----------------------------------------------------------------------

@pytest.mark.parametrize("solver", ["pgd", "sgd", "hals", "mu", "anls"])
def test_all_zero_start_is_refused(solver):
    with pytest.raises(ValueError, match="W0 is all zeros"):
        nmfkit.fit(X, 3, solver=solver, init=(np.zeros((30, 3)), np.ones((3, 20))))
    with pytest.raises(ValueError, match="H0 is all zeros"):
        nmfkit.fit(X, 3, solver=solver, init=(np.ones((30, 3)), np.zeros((3, 20))))
    W0, H0 = np.ones((30, 3)), np.ones((3, 20))
    W0[:, :2] = 0
    H0[2] = 0                                     # every component has a zero side: W0 H0 = 0
    with pytest.raises(ValueError, match="the product W0 H0 is zero"):
        nmfkit.fit(X, 3, solver=solver, init=(W0, H0))


@pytest.mark.parametrize("solver", ["pgd", "sgd", "hals", "mu", "anls"])
def test_random_starts_do_not_end_at_zero(solver):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)     # the zero-result warning would fail here
        f = nmfkit.fit(X, 3, solver=solver, init="random", seed=0, max_iter=50)
    assert (f.W @ f.H).max() > 0.1


def test_a_zero_result_is_reported(monkeypatch):
    from nmfkit import registry
    from nmfkit.solvers.base import Solver

    class Collapse(Solver):          # a solver that falls into W = H = 0 after one step
        def step(self, W, Ht):
            W, Ht = np.zeros_like(W), np.zeros_like(Ht)
            return W, Ht, self.objective(W, Ht)

    monkeypatch.setitem(registry.SOLVERS, "collapse", registry.SolverSpec("collapse", Collapse, ("frobenius",)))
    with pytest.warns(RuntimeWarning, match="zero factorization"):
        nmfkit.fit(X, 3, solver="collapse", seed=0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)     # under penalties W H = 0 can be the optimum
        f = nmfkit.fit(X, 3, solver="hals", alpha_W=0.5, alpha_H=0.5, l1_ratio=1.0, seed=0, max_iter=50)
    assert not (f.W @ f.H).any()


# -- 5. consensus needs two runs ----------------------------------------------------------------------

def test_consensus_of_one_run_is_refused():
    from nmfkit.rank import consensus, estimate_rank
    with pytest.raises(ValueError, match="consensus needs at least 2 runs"):
        consensus(X, 2, n_runs=1, progress=False)
    with pytest.raises(ValueError, match="consensus needs at least 2 runs"):
        estimate_rank(X, [2, 3], n_runs=1)


# -- 6. resumes on other data or options --------------------------------------------------------------

@pytest.mark.parametrize("solver, options", [("sgd", {}), ("pgd", {"step": 0.01})])
def test_resume_on_other_data_of_the_same_shape_is_refused(tmp_path, solver, options):
    path = tmp_path / "fit.ckpt.npz"
    nmfkit.fit(X, 3, solver=solver, seed=0, max_iter=20, tol=0, checkpoint=path, checkpoint_every=5,
               callback=lambda s: s.iteration == 12, **options)
    other = np.random.default_rng(5).random(X.shape)
    with pytest.raises(ValueError, match="other data of the same shape"):
        nmfkit.fit(other, 3, solver=solver, seed=0, max_iter=20, tol=0, resume=path, **options)
    # the same values in another layout or container resume
    nmfkit.fit(np.asfortranarray(X), 3, solver=solver, seed=0, max_iter=20, tol=0, resume=path, **options)


def test_resume_on_the_same_sparse_matrix_in_another_form(tmp_path):
    S = sp.csr_matrix(X * (X > 0.5))
    path = tmp_path / "fit.ckpt.npz"
    nmfkit.fit(S, 3, solver="mu", seed=0, max_iter=20, tol=0, checkpoint=path, checkpoint_every=5,
               callback=lambda s: s.iteration == 12)
    coo = S.tocoo()
    f = nmfkit.fit(sp.coo_matrix((coo.data, (coo.row, coo.col)), shape=S.shape).tocsc(), 3, solver="mu",
                   seed=0, max_iter=20, tol=0, resume=path)
    assert f.n_iter == 20
    T = S.copy()
    T.data[0] *= 2
    with pytest.raises(ValueError, match="other data"):
        nmfkit.fit(T, 3, solver="mu", seed=0, max_iter=20, tol=0, resume=path)


def test_resume_with_other_solver_options_is_refused(tmp_path):
    path = tmp_path / "fit.ckpt.npz"
    nmfkit.fit(X, 3, solver="mu", seed=0, max_iter=20, tol=0, checkpoint=path, checkpoint_every=5,
               alpha_W=0.01, callback=lambda s: s.iteration == 12)
    with pytest.raises(ValueError, match=r"checkpoint is for alpha_W=0\.01, but this fit has alpha_W=0\.0"):
        nmfkit.fit(X, 3, solver="mu", seed=0, max_iter=20, tol=0, resume=path)
    with pytest.raises(ValueError, match=r"l1_ratio=0\.0, but this fit has l1_ratio=0\.5"):
        nmfkit.fit(X, 3, solver="mu", seed=0, max_iter=20, tol=0, resume=path, alpha_W=0.01, l1_ratio=0.5)
    f = nmfkit.fit(X, 3, solver="mu", seed=0, max_iter=20, tol=0, resume=path, alpha_W=0.01)
    assert f.n_iter == 20
    with pytest.raises(TypeError, match="unknown options: alpha_w"):    # a typo is named as such
        nmfkit.fit(X, 3, solver="mu", seed=0, max_iter=20, tol=0, resume=path, alpha_w=0.01)


@pytest.mark.parametrize("family", ["dask", "torch"])
def test_resume_compares_dask_and_torch_data(tmp_path, family):
    if family == "dask":
        da = pytest.importorskip("dask.array")
        make = lambda A: da.from_array(A, chunks=(10, 20))      # noqa: E731  (compared by dask's token)
    else:
        torch = pytest.importorskip("torch")
        make = torch.tensor                                     # compared by value
    path = tmp_path / "fit.ckpt.npz"
    nmfkit.fit(make(X), 3, solver="mu", seed=0, max_iter=20, tol=0, checkpoint=path, checkpoint_every=5,
               callback=lambda s: s.iteration == 12)
    assert nmfkit.fit(make(X.copy()), 3, solver="mu", seed=0, max_iter=20, tol=0, resume=path).n_iter == 20
    with pytest.raises(ValueError, match="other data"):
        nmfkit.fit(make(X * 1.5), 3, solver="mu", seed=0, max_iter=20, tol=0, resume=path)


def test_checkpoint_without_a_data_digest_is_refused(tmp_path):
    saved = {"shape": [30, 20], "rank": 3, "solver": "mu", "loss": "frobenius", "beta": 2.0, "dtype": "float64"}
    current = {**saved, "data": "abc", "options": {}}
    with pytest.raises(ValueError, match="does not record the data"):
        ckpt.check_fingerprint(saved, current, "old.ckpt.npz")


# -- 7. HALS uses a given start as given --------------------------------------------------------------

@pytest.mark.parametrize("alpha, l1_ratio", [(0.01, 1.0), (0.002, 0.0), (0.01, 0.5)])
def test_hals_restart_from_a_result_does_not_start_higher(alpha, l1_ratio):
    kw = dict(solver="hals", alpha_W=alpha, alpha_H=alpha, l1_ratio=l1_ratio)
    X40 = np.random.default_rng(1).random((40, 30))
    first = nmfkit.fit(X40, 4, seed=0, max_iter=300, **kw)
    again = nmfkit.fit(X40, 4, init=(first.W, first.H), max_iter=3, **kw)
    # before the fix the optimal rescaling raised the penalised objective (e.g. +0.27 on 64.5)
    assert again.history["objective"][0] <= first.loss * (1 + 1e-12)
    assert np.all(np.diff(again.history["objective"]) <= 1e-12 * first.loss)


def test_hals_given_start_with_a_dead_component_is_used_as_given():
    first = nmfkit.fit(X, 3, solver="hals", seed=0, max_iter=100)
    W0 = first.W.copy()
    W0[:, 0] = 0                                  # component 0 contributes nothing to W0 H0
    objective_at_start = 0.5 * np.sum((X - W0 @ first.H) ** 2)
    for alpha in (0.0, 0.01):
        f = nmfkit.fit(X, 3, solver="hals", init=(W0, first.H), alpha_W=alpha, max_iter=30)
        assert np.isfinite(f.W).all() and np.isfinite(f.H).all()
        if alpha == 0.0:
            assert f.history["objective"][0] <= objective_at_start * (1 + 1e-12)
            assert f.loss < objective_at_start
