"""R NMF-exact solvers: `lee`, `brunet` and every other method of R's nmfAlgorithm().

Pure-Python tests always run.  Tests marked `r` compare with R package NMF
iterate for iterate (tests/r/r_compat_reference.R, run once per module) and
skip, saying why, when Rscript or the NMF package is missing.
"""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit
from nmfkit import r_api
from nmfkit.engines import make_engine
from nmfkit.solvers.r_compat import LEE_EPS, R_DOUBLE_EPS, RBrunet, RLee

R_SCRIPT = Path(__file__).parents[1] / "r" / "r_compat_reference.R"
ITERATIONS = (1, 10, 100)
LOSS = {"lee": "frobenius", "brunet": "kl"}


def _sparse_data(m=200, n=50, k=4, density=0.1, seed=7):
    """A ~10 %-dense matrix with no all-zero row or column, and a start."""
    rng = np.random.default_rng(seed)
    X = sp.random(m, n, density=density, random_state=rng, format="lil")
    for i in range(m):                       # one guaranteed entry per row and column
        X[i, i % n] = X[i, i % n] or rng.random() + 0.1
    for j in range(n):
        X[j % m, j] = X[j % m, j] or rng.random() + 0.1
    X = sp.csr_matrix(X) * 10.0
    return X, rng.random((m, k)) + 0.05, rng.random((k, n)) + 0.05


# --- pure-Python tests -------------------------------------------------------------

@pytest.mark.parametrize("solver", ["lee", "brunet"])
@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_runs_finite_nonnegative(solver, kind):
    X, _, _ = _sparse_data(60, 25, 3, 0.3, seed=3)
    data = X if kind == "sparse" else X.toarray()
    res = nmfkit.fit(data, 3, solver=solver, loss=LOSS[solver], seed=0, max_iter=50, tol=0)
    assert res.n_iter == 50 and res.options["init"] == "random"
    for F in (res.W, res.H):
        assert np.all(np.isfinite(F)) and F.min() >= 0
    assert np.all(np.isfinite(res.history["objective"]))
    assert res.history["objective"][-1] < res.history["objective"][1]
    if solver == "lee":
        np.testing.assert_allclose(res.W.sum(axis=0), 1.0, rtol=1e-12)


def test_dense_and_sparse_engines_agree():
    X, W0, H0 = _sparse_data(80, 30, 3, 0.2, seed=4)
    for solver in ("lee", "brunet"):
        a = nmfkit.fit(X, 3, solver=solver, loss=LOSS[solver], init=(W0, H0), max_iter=30, tol=0)
        b = nmfkit.fit(X.toarray(), 3, solver=solver, loss=LOSS[solver], init=(W0, H0), max_iter=30, tol=0)
        np.testing.assert_allclose(a.W, b.W, rtol=1e-9)
        np.testing.assert_allclose(a.H, b.H, rtol=1e-9)
        np.testing.assert_allclose(a.loss, b.loss, rtol=1e-9)


def _lee_reference(X, W, H, n_iter):
    """R's nmf_update.lee written out in wide form, dense NumPy."""
    for _ in range(n_iter):
        H = np.maximum(H * (W.T @ X), LEE_EPS) / ((W.T @ W) @ H + LEE_EPS)
        W = np.maximum(W * (X @ H.T), LEE_EPS) / (W @ (H @ H.T) + LEE_EPS)
        W = W / W.sum(axis=0)
    return W, H


def _brunet_reference(X, W, H, n_iter):
    """R's nmf_update.brunet written out in wide form, dense NumPy (i from 1)."""
    for i in range(1, n_iter + 1):
        H = H * (W.T @ (X / (W @ H))) / W.sum(axis=0)[:, None]
        W = W * ((X / (W @ H)) @ H.T) / H.sum(axis=1)[None, :]
        if i % 10 == 0:
            H, W = np.maximum(H, R_DOUBLE_EPS), np.maximum(W, R_DOUBLE_EPS)
    return W, H


def test_updates_match_written_out_formulas():
    """The tall-form, engine-based steps equal R's formulas in wide form,
    including brunet's floor at iterations 10, 20 (start with tiny entries so
    the floor bites) and lee's ε (start with zeros)."""
    X, W0, H0 = _sparse_data(50, 20, 3, 0.3, seed=5)
    Xd = X.toarray()
    W0[0, 0], H0[1, 2] = 0.0, 0.0
    W, H = _lee_reference(Xd, W0, H0, 25)
    res = nmfkit.fit(X, 3, solver="lee", init=(W0, H0), max_iter=25, tol=0)
    np.testing.assert_allclose(res.W, W, rtol=1e-11)
    np.testing.assert_allclose(res.H, H, rtol=1e-11)
    np.testing.assert_allclose(res.loss, 0.5 * np.sum((Xd - W @ H) ** 2), rtol=1e-9)

    W0b, H0b = W0 + 0.05, H0 + 0.05
    W0b[3, 1], H0b[2, 4] = 1e-300, 1e-300     # collapse towards 0 unless floored
    W, H = _brunet_reference(Xd, W0b, H0b, 20)
    assert W.min() >= R_DOUBLE_EPS and H.min() >= R_DOUBLE_EPS
    res = nmfkit.fit(X, 3, solver="brunet", loss="kl", init=(W0b, H0b), max_iter=20, tol=0)
    np.testing.assert_allclose(res.W, W, rtol=1e-11)
    np.testing.assert_allclose(res.H, H, rtol=1e-11)
    kl = np.sum(np.where(Xd > 0, Xd * np.log(np.where(Xd > 0, Xd, 1) / (W @ H)), 0) - Xd + W @ H)
    np.testing.assert_allclose(res.loss, kl, rtol=1e-9)


def test_floor_counter_restarts_each_run():
    X, W0, H0 = _sparse_data(40, 15, 2, 0.4, seed=6)
    solver = RBrunet(make_engine(X), "kl", 1.0)
    for _ in range(2):
        W, Ht = solver.prepare(W0, np.ascontiguousarray(H0.T))
        assert solver.iteration == 0
        for _ in range(3):
            W, Ht, _ = solver.step(W, Ht)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("zero", ["row", "column", "both"])
def test_brunet_refuses_zero_rows_and_columns(kind, zero):
    X, _, _ = _sparse_data(30, 12, 2, 0.5, seed=8)
    X = X.toarray()
    if zero in ("row", "both"):
        X[4] = 0
    if zero in ("column", "both"):
        X[:, 7] = 0
    data = sp.csr_matrix(X) if kind == "sparse" else X
    with pytest.raises(ValueError) as err:
        nmfkit.fit(data, 2, solver="brunet", loss="kl", max_iter=5)
    msg = str(err.value)
    assert "all-zero" in msg and "NaN" in msg and "solver='mu', loss='kl'" in msg
    if zero in ("row", "both"):
        assert "row 4" in msg
    if zero in ("column", "both"):
        assert "column 7" in msg
    # the suggested alternative works on the same data and stays finite
    res = nmfkit.fit(data, 2, solver="mu", loss="kl", max_iter=20)
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H))


def test_brunet_refuses_dead_start_component():
    X, W0, H0 = _sparse_data(30, 12, 2, 0.5, seed=11)
    W0[:, 1] = 0
    with pytest.raises(ValueError, match="component 1 is an all-zero column of W0.*solver='mu', loss='kl'"):
        nmfkit.fit(X, 2, solver="brunet", loss="kl", init=(W0, H0), max_iter=5)
    W0[:, 1] = 1.0
    W0[3, 0] = 0.0             # a single zero entry is fine: R floors it at iteration 10
    res = nmfkit.fit(X, 2, solver="brunet", loss="kl", init=(W0, H0), max_iter=12, tol=0)
    assert res.W[3, 0] >= R_DOUBLE_EPS and np.all(np.isfinite(res.W))


@pytest.mark.parametrize("solver", ["lee", "brunet"])
def test_float32_stays_float32(solver):
    X, _, _ = _sparse_data(40, 20, 2, 0.4, seed=12)
    res = nmfkit.fit(X.astype(np.float32), 2, solver=solver, loss=LOSS[solver], seed=0, max_iter=30, tol=0)
    assert res.W.dtype == np.float32 and res.H.dtype == np.float32
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H)) and min(res.W.min(), res.H.min()) >= 0


def test_lee_is_fine_with_zero_rows():
    X = np.random.default_rng(9).random((20, 10))
    X[3] = 0
    X[:, 2] = 0
    res = nmfkit.fit(X, 2, solver="lee", max_iter=50, tol=0, seed=1)
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H)) and res.W.min() > 0


@pytest.mark.parametrize("solver, wrong", [("lee", "kl"), ("brunet", "frobenius"), ("brunet", "is")])
def test_wrong_loss_is_refused(solver, wrong):
    X = np.random.default_rng(0).random((10, 8))
    with pytest.raises(ValueError, match=rf"solver '{solver}' does not support loss '{wrong}'.*choose one of"):
        nmfkit.fit(X, 2, solver=solver, loss=wrong)


def test_defaults_and_bad_options():
    spec = {row["solver"]: row for row in nmfkit.solvers_table()}
    assert spec["lee"]["losses"] == ("frobenius",) and spec["brunet"]["losses"] == ("kl",)
    from nmfkit.registry import SOLVERS
    for name in ("lee", "brunet"):
        assert SOLVERS[name].max_iter == 2000 and SOLVERS[name].default_init == "random"
        assert SOLVERS[name].cls.returns_last_iterate      # the driver returns the last iterate, like R
    assert not SOLVERS["lee"].monotone and SOLVERS["brunet"].monotone
    X = np.random.default_rng(0).random((10, 8))
    with pytest.raises(TypeError, match="unknown options: rescale"):
        nmfkit.fit(X, 2, solver="lee", rescale=False)
    with pytest.raises(ValueError, match="takes no penalties"):
        nmfkit.fit(X, 2, solver="lee", alpha_W=0.1)


def test_returns_last_iterate_even_if_objective_rose():
    """lee's rescaling can raise the objective (here every other iteration on
    data with zero rows); the result is still the last iterate, as in R, and
    the default tol does not mistake a rise for convergence."""
    X = np.random.default_rng(9).random((20, 10))
    X[3], X[:, 2] = 0, 0
    rng = np.random.default_rng(1)
    W0, H0 = rng.random((20, 2)), rng.random((2, 10))
    res = nmfkit.fit(X, 2, solver="lee", init=(W0, H0), max_iter=40, tol=0)
    f = res.history["objective"]
    assert np.any(np.diff(f) > 1e-6 * f[1:]) and f[-1] > f.min()
    W, H = _lee_reference(X, W0, H0, 40)
    np.testing.assert_allclose(res.W, W, rtol=1e-11)
    np.testing.assert_allclose(res.H, H, rtol=1e-11)
    assert res.n_iter == 40 and res.loss == f[-1] and RLee.name == "lee"
    assert nmfkit.fit(X, 2, solver="lee", init=(W0, H0)).n_iter > 2


# --- comparisons with R --------------------------------------------------------------

def _read(path, shape):
    return np.fromfile(path, dtype="<f8").reshape(shape, order="F")


def _write(path, A):
    np.asarray(A, dtype="<f8").ravel(order="F").tofile(path)


@pytest.fixture(scope="module")
def r_results(tmp_path_factory):
    """Run R's nmf() for every case once; return data, starts and R's factors."""
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not found: install R (r-base-core) to compare with R NMF")
    probe = subprocess.run(["Rscript", "-e", "cat(as.character(packageVersion('NMF')))"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("R package NMF not installed (apt-get install r-cran-nmf)")
    work = tmp_path_factory.mktemp("r_compat")
    X, W0, H0 = _sparse_data()
    W0[1, 0], H0[2, 3] = 1e-300, 1e-300      # stay tiny until brunet's floor lifts them
    (work / "sparse_dims.txt").write_text(f"{X.shape[0]} {X.shape[1]} {W0.shape[1]}\n")
    _write(work / "sparse_X.bin", X.toarray())
    _write(work / "sparse_W0.bin", W0)
    _write(work / "sparse_H0.bin", H0)
    done = subprocess.run(["Rscript", str(R_SCRIPT), str(work)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"R failed:\n{done.stderr[-3000:]}"
    m, n, k = (int(v) for v in (work / "golub_dims.txt").read_text().split())
    cases = {"sparse": (X, W0, H0),
             "golub": (_read(work / "golub_X.bin", (m, n)), _read(work / "golub_W0.bin", (m, k)),
                       _read(work / "golub_H0.bin", (k, n)))}
    out, extras = {}, {}
    for name, (data, W_start, H_start) in cases.items():
        groups = (work / f"{name}_groups.txt").read_text().split()
        n_groups = len(set(groups))
        extras[name] = {"weight": _read(work / f"{name}_weight.bin", data.shape), "groups": groups,
                        "siNMF_W0": _read(work / f"{name}_siNMF_W0.bin", (data.shape[0], W_start.shape[1] + n_groups))}
        for method in r_api.METHODS:
            extra = n_groups if method == "siNMF" else 0
            shapes = ((data.shape[0], W_start.shape[1] + extra), (H_start.shape[0] + extra, data.shape[1]))
            for n_iter in ITERATIONS:
                stem = work / f"{name}_{method.replace('/', '_').replace('-', '_')}_{n_iter}"
                out[name, method, n_iter] = (_read(f"{stem}_W.bin", shapes[0]), _read(f"{stem}_H.bin", shapes[1]))
                if method == "offset":
                    out[name, method, n_iter] += (np.fromfile(f"{stem}_offset.bin", dtype="<f8"),)
    return {"cases": cases, "fits": out, "extras": extras, "versions": (work / "versions.txt").read_text()}


def _rel(A, B):
    return float(np.linalg.norm(A - B) / np.linalg.norm(B))


@pytest.mark.r
@pytest.mark.parametrize("data_name", ["golub", "sparse"])
@pytest.mark.parametrize("method", ["lee", "brunet"])
def test_matches_r_iterate_for_iterate(r_results, data_name, method):
    X, W0, H0 = r_results["cases"][data_name]
    assert sp.issparse(X) == (data_name == "sparse")
    for n_iter in ITERATIONS:
        W_r, H_r = r_results["fits"][data_name, method, n_iter]
        res = nmfkit.fit(X, W0.shape[1], solver=method, loss=LOSS[method], init=(W0, H0),
                         max_iter=n_iter, tol=0)
        assert res.n_iter == n_iter
        errors = _rel(res.W, W_r), _rel(res.H, H_r)
        print(f"{data_name} {method} N={n_iter}: rel. Frobenius diff W {errors[0]:.2e}, H {errors[1]:.2e}")
        assert max(errors) <= 1e-10, (data_name, method, n_iter, errors, r_results["versions"])
        if data_name == "sparse":      # the entries started at 1e-300: brunet's floor, lee's ε
            np.testing.assert_allclose([res.W[1, 0], res.H[2, 3]], [W_r[1, 0], H_r[2, 3]], rtol=1e-8)


#: R's parameters for the methods that need them (the same as tests/r/r_compat_reference.R)
PE_NMF = {"alpha": 0.5, "beta": 0.1}


@pytest.mark.r
@pytest.mark.parametrize("data_name", ["golub", "sparse"])
@pytest.mark.parametrize("method", list(r_api.METHODS))
def test_every_r_method_matches_r(r_results, data_name, method):
    """r_api.nmf(x, rank, METHOD) reproduces R's nmf(x, rank, METHOD) from the same start:
    W and H (and the offset) within 1e-10 relative after 1, 10 and 100 iterations."""
    X, W0, H0 = r_results["cases"][data_name]
    extras = r_results["extras"][data_name]
    kw = {}
    if method == "ls-nmf":
        kw["weight"] = extras["weight"]
        X = X.toarray() if sp.issparse(X) else X        # ls-nmf forms W H densely: dense data only
    elif method == "pe-nmf":
        kw.update(PE_NMF)
    elif method == "siNMF":
        kw["groups"] = extras["groups"]
        W0 = extras["siNMF_W0"]
    worst = 0.0
    for n_iter in ITERATIONS:
        fit = r_api.nmf(X, H0.shape[0], method, seed=(W0, H0), **{".stop": n_iter}, **kw)
        assert fit.niter == n_iter
        want = r_results["fits"][data_name, method, n_iter]
        errors = [_rel(fit.W, want[0]), _rel(fit.H, want[1])]
        if method == "offset":
            errors.append(_rel(r_api.offset(fit), want[2]))
        worst = max(worst, *errors)
        assert max(errors) <= 1e-10, (data_name, method, n_iter, errors, r_results["versions"])
    print(f"{data_name} {method}: worst rel. Frobenius difference from R {worst:.2e}")


# --- the other R methods, without R: written-out formulas and refusals -----------------

def _offset_reference(X, W, H, n_iter, eps=LEE_EPS):
    off = X.mean(axis=1)
    for _ in range(n_iter):
        H = np.maximum(H * (W.T @ X), eps) / (W.T @ W @ H + (W.T @ off)[:, None] + eps)
        W = np.maximum(W * (X @ H.T), eps) / (W @ H @ H.T + off[:, None] * H.sum(axis=1)[None, :] + eps)
        off = off * np.maximum(X.sum(axis=1), eps) / ((W @ H + off[:, None]).sum(axis=1) + eps)
    return W, H, off


def _nsnmf_reference(X, W, H, n_iter, theta):
    k = W.shape[1]
    S = (1 - theta) * np.eye(k) + theta / k
    for _ in range(n_iter):
        WS = W @ S
        H = H * (WS.T @ (X / (WS @ H))) / WS.sum(axis=0)[:, None]
        SH = S @ H
        W = W * ((X / (W @ SH)) @ SH.T) / SH.sum(axis=1)[None, :]
        W = W / W.sum(axis=0)
    return W, H


def _penmf_reference(X, W, H, n_iter, alpha, beta):
    M = np.ones((W.shape[1],) * 2) - np.eye(W.shape[1])
    for _ in range(n_iter):
        H = H * (W.T @ X) / (W.T @ W @ H + beta)
        W = W * (X @ H.T) / (W @ H @ H.T + alpha * W @ M)
    return W, H


def _lsnmf_reference(X, W, H, n_iter, weight, eps=LEE_EPS):
    for _ in range(n_iter):
        H = np.maximum(H * (W.T @ (weight * X)), eps) / (W.T @ (weight * (W @ H)) + eps)
        W = np.maximum(W * ((weight * X) @ H.T), eps) / ((weight * (W @ H)) @ H.T + eps)
    return W, H


def _snmf_r_reference(X, W, H, n_iter, eta, beta):
    """Kim & Park's SNMF/R by brute-force NNLS (SciPy's Lawson–Hanson) on the stacked systems."""
    from scipy.optimize import nnls
    k = W.shape[1]
    W = W / np.sqrt((W ** 2).sum(axis=0))
    for _ in range(n_iter):
        C = np.vstack([W, np.sqrt(beta) * np.ones((1, k))])
        H = np.column_stack([nnls(C, np.append(X[:, j], 0.0))[0] for j in range(X.shape[1])])
        C = np.vstack([H.T, eta * np.eye(k)])
        W = np.vstack([nnls(C, np.append(X[i], np.zeros(k)))[0] for i in range(X.shape[0])])
    return W, H


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_offset_nsnmf_penmf_match_written_out_formulas(kind):
    X, W0, H0 = _sparse_data(50, 20, 3, 0.3, seed=15)
    Xd = X.toarray()
    data = X if kind == "sparse" else Xd
    W, H, off = _offset_reference(Xd, W0, H0, 15)
    fit = r_api.nmf(data, 3, "offset", seed=(W0, H0), **{".stop": 15})
    for got, want in ((fit.W, W), (fit.H, H), (r_api.offset(fit), off)):
        np.testing.assert_allclose(got, want, rtol=1e-10)
    raw = nmfkit.fit(data, 4, solver="offset", init=(np.hstack([W0, W0[:, :1]]), np.vstack([H0, H0[:1]])),
                     max_iter=15, tol=0)      # nmfkit's form: the offset is the last component
    np.testing.assert_allclose(raw.W[:, 3], off, rtol=1e-10)
    np.testing.assert_array_equal(raw.H[3], 1.0)
    np.testing.assert_allclose(raw.loss, 0.5 * np.sum((Xd - W @ H - off[:, None]) ** 2), rtol=1e-9)

    W, H = _nsnmf_reference(Xd, W0, H0, 15, 0.3)
    fit = r_api.nmf(data, 3, "nsNMF", seed=(W0, H0), theta=0.3, **{".stop": 15})
    np.testing.assert_allclose(fit.W, W, rtol=1e-10)
    np.testing.assert_allclose(fit.H, H, rtol=1e-10)
    raw = nmfkit.fit(data, 3, solver="nsnmf", loss="kl", theta=0.3, init=(W0, H0), max_iter=15, tol=0)
    np.testing.assert_allclose(raw.W @ raw.H, W @ r_api.smoothing(fit) @ H, rtol=1e-10)   # nmfkit: W (S H)

    W, H = _penmf_reference(Xd, W0, H0, 15, 0.4, 0.2)
    fit = r_api.nmf(data, 3, "pe-nmf", seed=(W0, H0), alpha=0.4, beta=0.2, **{".stop": 15})
    np.testing.assert_allclose(fit.W, W, rtol=1e-10)
    np.testing.assert_allclose(fit.H, H, rtol=1e-10)


def test_lsnmf_and_snmf_match_written_out_formulas():
    X, W0, H0 = _sparse_data(40, 15, 3, 0.4, seed=16)
    Xd = X.toarray()
    weight = np.random.default_rng(3).uniform(0.5, 1.5, Xd.shape)
    W, H = _lsnmf_reference(Xd, W0, H0, 12, weight)
    fit = r_api.nmf(Xd, 3, "ls-nmf", seed=(W0, H0), weight=weight, **{".stop": 12})
    np.testing.assert_allclose(fit.W, W, rtol=1e-10)
    np.testing.assert_allclose(fit.H, H, rtol=1e-10)
    with pytest.raises(ValueError, match="does not run on sparse data"):
        r_api.nmf(X, 3, "ls-nmf", seed=(W0, H0), weight=weight)
    with pytest.raises(ValueError, match="weight must be one number or a matrix"):
        r_api.nmf(Xd, 3, "ls-nmf", seed=(W0, H0), weight=weight[:5])

    eta = float(Xd.max())
    W, H = _snmf_r_reference(Xd, W0, H0, 6, eta, 0.01)
    fit = r_api.nmf(X, 3, "snmf/r", seed=(W0, H0), maxIter=6, bi_conv=(0, 1e9))
    np.testing.assert_allclose(fit.W, W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fit.H, H, rtol=1e-9, atol=1e-12)
    # SNMF/L is SNMF/R on the transpose, with the roles of W and H swapped
    fit_l = r_api.nmf(X.T, 3, "snmf/l", seed=(H0.T, W0.T), maxIter=6, bi_conv=(0, 1e9))
    np.testing.assert_allclose(fit_l.W, H.T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fit_l.H, W.T, rtol=1e-9, atol=1e-12)


def test_snmf_is_monotone_and_stops_by_kim_park_rule():
    X, _, _ = _sparse_data(60, 25, 3, 0.3, seed=17)
    fit = nmfkit.fit(X, 3, solver="snmf", seed=2, tol=0)
    f = fit.history["objective"]
    assert np.all(np.diff(f) <= 1e-9 * f[0])
    assert fit.stop_reason == "target" and fit.n_iter < 20000 and fit.n_iter % 5 == 0
    assert (fit.H == 0).mean() > 0.05                       # sparse H
    with pytest.raises(ValueError, match="sparsity .R's beta. must be a positive number"):
        nmfkit.fit(X, 3, solver="snmf", sparsity=0)
    with pytest.raises(ValueError, match="version must be 'r'"):
        nmfkit.fit(X, 3, solver="snmf", version="x")


def test_sinmf_groups_and_refusals():
    X, W0, H0 = _sparse_data(30, 12, 2, 0.5, seed=18)
    groups = np.array(["x", "y"] * 6)
    fit = nmfkit.fit(X, 4, solver="sinmf", groups=groups, max_iter=30, seed=0)
    np.testing.assert_array_equal(fit.H[2:], (groups[None, :] == np.array([["x"], ["y"]])).astype(float))
    np.testing.assert_allclose(np.linalg.norm(fit.W[:, :2], axis=0), 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="rank must exceed 2"):
        nmfkit.fit(X, 2, solver="sinmf", groups=groups)
    with pytest.raises(ValueError, match="one label per column of X"):
        nmfkit.fit(X, 4, solver="sinmf", groups=groups[:5])
    with pytest.raises(ValueError, match=r"theta must be in \[0, 1\)"):
        nmfkit.fit(X, 2, solver="nsnmf", loss="kl", theta=1.0)
    Xz = X.toarray()
    Xz[3] = 0
    for solver, loss in (("nsnmf", "kl"), ("penmf", "frobenius")):
        with pytest.raises(ValueError, match="all-zero row"):
            nmfkit.fit(Xz, 2, solver=solver, loss=loss)
    with pytest.raises(ValueError, match="offset must be a finite non-negative vector of length 30"):
        nmfkit.fit(X, 3, solver="offset", offset=np.ones(4))


def test_kl_only_solvers_default_to_their_loss():
    """fit(X, k, solver="nsnmf", theta=0.5) needs no loss=: a solver without a Frobenius form
    runs its own loss; an explicit wrong loss is still refused."""
    X, _, _ = _sparse_data(30, 12, 2, 0.5, seed=19)
    for solver, options in (("nsnmf", {"theta": 0.5}), ("brunet", {})):
        fit = nmfkit.fit(X, 2, solver=solver, max_iter=5, seed=0, **options)
        assert fit.options["loss"] == "kl"
        with pytest.raises(ValueError, match="does not support loss 'frobenius'"):
            nmfkit.fit(X, 2, solver=solver, loss="frobenius", **options)
    assert nmfkit.fit(X, 2, solver="snmf", max_iter=5, seed=0).options["loss"] == "frobenius"


def test_snmf_resumes_its_stop_test_from_a_checkpoint(tmp_path):
    """A run split by a checkpoint stops at the same iteration, with the same factors, as one run:
    Kim & Park's counters travel in the checkpoint."""
    X, _, _ = _sparse_data(60, 25, 3, 0.3, seed=17)
    whole = nmfkit.fit(X, 3, solver="snmf", seed=2, tol=0)
    assert whole.stop_reason == "target" and whole.n_iter > 12
    ckpt = tmp_path / "snmf.npz"
    nmfkit.fit(X, 3, solver="snmf", seed=2, tol=0, max_iter=12, checkpoint=ckpt, checkpoint_every=6)
    resumed = nmfkit.fit(X, 3, solver="snmf", seed=2, tol=0, resume=ckpt)
    assert resumed.n_iter == whole.n_iter and resumed.stop_reason == "target"
    np.testing.assert_allclose(resumed.W, whole.W, rtol=1e-12)
    np.testing.assert_allclose(resumed.H, whole.H, rtol=1e-12)
