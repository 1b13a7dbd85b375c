"""The solver contract table: every registered solver × each loss it declares ×
engine (dense, sparse, memmap — a read-only `.npy` map — and torch — a dense CPU tensor — when
torch is installed) × dtype (float64, float32), on small seeded planted problems.

(Other engines, e.g. "masked", have their own tests.)
Checks: W, H ≥ 0 and finite; the input's dtype is kept; the objective history is
non-increasing where the solver promises it (spec.monotone); the Frobenius
solvers recover the planted low-rank matrix down to the noise level; other
losses at least fit well.  Losses and engines a solver does not declare must be
refused with a clear error.  New solvers join the table by registering.
"""
import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit
from nmfkit.registry import LOSSES, SOLVERS

try:
    import torch
except ImportError:
    torch = None

ENGINES = ("dense", "sparse", "memmap") + (("torch",) if torch is not None else ())
DTYPES = (np.float64, np.float32)
RANK = 4
NOISE = 0.01

# Iteration budget and allowed excess over the noise level, per solver.  A solver
# not listed gets DEFAULT; tighten its entry when it lands.
BUDGET = {
    "hals": {"max_iter": 200, "excess": 1.1},
    "anls": {"max_iter": 200, "excess": 1.1},
    "mu": {"max_iter": 1500, "excess": 2.5},
}
DEFAULT = {"max_iter": 500, "excess": 3.0}
OTHER_LOSS_ITER = 150        # non-Frobenius losses are checked for a good fit, not recovery
# Constrained models cannot recover the planted rank-4 matrix: nsnmf fits W S H with
# R's smoothing θ = 0.5, offset spends one of the 4 components on the offset.  They are
# checked for a fit within this relative error instead.
CONSTRAINED = {"nsnmf": 0.25, "offset": 0.2}
# Separable NMF (spa) takes W among the columns of X; the planted matrix is not separable, so the
# best such W leaves an error of ≈ 0.08 here (measured); the check is that it is a sane fit.
CONSTRAINED["spa"] = 0.15
CONSTRAINED["snpa"] = 0.15   # the same anchors as spa here (measured ≈ 0.08)
# Convex NMF takes W = X G, G ≥ 0 (basis vectors inside the cone of the samples); the planted
# basis is not, and the best such W leaves ≈ 0.10 here (measured).
CONSTRAINED["convex"] = 0.15
# ARD-NMF prunes the components its noise model cannot tell from noise: with its default dispersion
# φ = 1 (unit-variance noise for β = 2, Poisson counts for KL) the weaker planted components of this
# problem (noise 0.01) are pruned, as the MAP says they should be, leaving ≈ 0.21–0.40 here (measured);
# tests/solvers/test_ard.py checks that it recovers planted ranks with φ matched to the noise.
CONSTRAINED["ard"] = 0.5
# Models whose data must have a special form run the same checks in their own test file:
# symmetric NMF needs a square symmetric X, and the planted matrix here is 60×45.
OWN_CONTRACT = {"symmetric": "needs a square symmetric X: checked in tests/solvers/test_symmetric.py"}
ALL_LOSSES = (*LOSSES, "beta")


def loss_args(loss):
    """fit() arguments selecting a loss (a general β-divergence needs its exponent)."""
    return {"beta": 1.5} if loss == "beta" else {"loss": loss}


# Losses whose data must be strictly positive: Itakura–Saito, and the gamma and inverse Gaussian
# likelihoods of solver irls (their densities vanish at x = 0, so irls refuses zeros).
POSITIVE_DATA = ("is", "gamma", "inverse_gaussian")


def data_for(loss, X):
    """Losses in POSITIVE_DATA need strictly positive data: shift every entry (stored, if sparse)."""
    if loss not in POSITIVE_DATA:
        return X
    if torch is not None and isinstance(X, torch.Tensor):
        return X + 0.1
    return sp.csr_matrix(X.toarray() + 0.1) if sp.issparse(X) else X + X.dtype.type(0.1)


def host(A):
    """A factor as a NumPy array (torch results are tensors)."""
    return A.numpy() if torch is not None and isinstance(A, torch.Tensor) else A


def planted(kind, dtype, seed=0):
    """X = W H + 1 % noise on the nonzeros, W, H ≥ 0 and sparse-ish, so the
    same structure serves the dense and the CSR engine.  Returns (X, ‖noise‖/‖X‖)."""
    rng = np.random.default_rng(seed)
    W = rng.random((60, RANK)) * (rng.random((60, RANK)) < 0.5)
    H = rng.random((RANK, 45)) * (rng.random((RANK, 45)) < 0.5)
    W[np.arange(60), np.arange(60) % RANK] += 0.5    # every component present, and no
    H[np.arange(45) % RANK, np.arange(45)] += 0.5    # all-zero row or column (some solvers refuse those)
    L = W @ H
    X = L * (1 + NOISE * rng.standard_normal(L.shape))
    X = np.maximum(X, 0)
    noise = np.linalg.norm(X - L) / np.linalg.norm(X)
    X = X.astype(dtype)
    if kind == "torch":
        return torch.from_numpy(X), noise
    return (sp.csr_matrix(X) if kind == "sparse" else X), noise


def mapped(kind, X, folder):
    """For the memmap engine: X saved as folder/X.npy and mapped read-only; other kinds as they are."""
    if kind != "memmap":
        return X
    np.save(folder / "X.npy", X)
    return np.load(folder / "X.npy", mmap_mode="r")


CASES = [(name, loss, kind, dtype)
         for name, spec in sorted(SOLVERS.items())
         for loss in spec.losses
         for kind in spec.engines if kind in ENGINES
         for dtype in DTYPES]


@pytest.mark.parametrize("name,loss,kind,dtype", CASES,
                         ids=[f"{n}-{loss}-{k}-{np.dtype(d).name}" for n, loss, k, d in CASES])
def test_contract(name, loss, kind, dtype, tmp_path):
    spec = SOLVERS[name]
    if name in OWN_CONTRACT:
        pytest.skip(OWN_CONTRACT[name])
    budget = BUDGET.get(name, DEFAULT)
    X, noise = planted(kind, dtype)
    X = mapped(kind, data_for(loss, X), tmp_path)
    X_before = X.clone() if kind == "torch" else X.copy()
    max_iter = budget["max_iter"] if loss == "frobenius" else min(budget["max_iter"], OTHER_LOSS_ITER)
    fit = nmfkit.fit(X, RANK, solver=name, max_iter=max_iter, tol=1e-9, seed=0, **loss_args(loss))
    if kind == "torch":
        assert isinstance(fit.W, torch.Tensor) and isinstance(fit.H, torch.Tensor)
        fit.W, fit.H, X, X_before = host(fit.W), host(fit.H), host(X), host(X_before)

    assert fit.W.shape == (60, RANK) and fit.H.shape == (RANK, 45)
    assert fit.W.dtype == dtype and fit.H.dtype == dtype
    assert np.isfinite(fit.W).all() and np.isfinite(fit.H).all()
    assert (fit.W >= 0).all() and (fit.H >= 0).all()
    assert np.isfinite(fit.loss) and fit.n_iter >= 1
    diff = (X - X_before) if kind != "sparse" else (X - X_before).toarray()
    assert not diff.any()                                   # X untouched

    obj = np.asarray(fit.history["objective"])
    assert obj[-1] < obj[0]
    if spec.monotone:
        slack = (1e-9 if dtype == np.float64 else 1e-5) * obj[0]
        rises = np.diff(obj)
        assert rises.max() <= slack, f"objective rose by {rises.max():.3g} at iteration {rises.argmax() + 1}"

    if name in CONSTRAINED:
        assert fit.relative_error < CONSTRAINED[name]
    elif loss == "frobenius":
        assert fit.relative_error <= budget["excess"] * noise + 1e-3, (fit.relative_error, noise)
    else:
        assert fit.relative_error < 0.1


REFUSALS = [(name, loss, None) for name, spec in sorted(SOLVERS.items())
            for loss in ALL_LOSSES if loss not in spec.losses] + \
           [(name, spec.losses[0], kind) for name, spec in sorted(SOLVERS.items())
            for kind in ENGINES if kind not in spec.engines]


@pytest.mark.skipif(not REFUSALS, reason="every solver supports every loss and engine")
@pytest.mark.parametrize("name,loss,kind", REFUSALS or [(None, None, None)])
def test_undeclared_combinations_are_refused(name, loss, kind, tmp_path):
    X, _ = planted(kind or "dense", np.float64)
    X = X + 0.1 if kind is None else mapped(kind, X, tmp_path)   # strictly positive, valid for every loss
    expected = "does not support loss" if kind is None else "does not run on"
    with pytest.raises(ValueError, match=expected):
        nmfkit.fit(X, RANK, solver=name, max_iter=2, **loss_args(loss))


def test_the_table_covers_the_fast_solvers():
    names = {case[0] for case in CASES}
    assert {"mu", "hals", "anls"} <= names
    assert all(SOLVERS[n].losses for n in names)


# -- the two protocols behind the table --------------------------------------------------------
# Which engines each solver runs on, derived from the solvers' `requires` and the engines'
# `capabilities`; this is the support table the documentation promises.
SUPPORT = {
    "hals": ("dense", "sparse", "dask", "torch", "memmap"),
    "anls": ("dense", "sparse", "dask", "memmap"),
    "ccd": ("dense", "sparse"),
    "mu": ("dense", "sparse", "masked", "dask", "torch", "memmap"),
    "pgd": ("dense", "sparse", "masked", "torch"),
    "sgd": ("dense", "sparse", "masked"),
    "lsnmf": ("dense",),
    "ard": ("dense", "sparse", "dask", "memmap"),
}


def engine_classes():
    from nmfkit.engines import DaskEngine, DenseEngine, MaskedEngine, MemmapEngine, SparseEngine
    classes = {"dense": DenseEngine, "sparse": SparseEngine, "masked": MaskedEngine, "dask": DaskEngine,
               "memmap": MemmapEngine}
    if torch is not None:
        from nmfkit.engines.torch_engine import TorchEngine
        classes["torch"] = TorchEngine
    return classes


def test_engines_are_derived_from_requires_and_capabilities():
    from nmfkit.engines import engines_for
    for name, spec in SOLVERS.items():
        assert spec.engines == engines_for(spec.cls.requires), name
        assert spec.engines == SUPPORT.get(name, ("dense", "sparse")), name
    with pytest.raises(ValueError, match="unknown engine capabilities: gpu"):
        engines_for({"core", "gpu"})


def test_each_engine_implements_the_groups_it_declares():
    from nmfkit.engines import ENGINE_CAPABILITIES
    from nmfkit.engines.base import CAPABILITIES
    for kind, cls in engine_classes().items():
        assert cls.kind == kind and cls.capabilities == ENGINE_CAPABILITIES[kind]
        assert set(cls.capabilities) <= set(CAPABILITIES) and "core" in cls.capabilities
        for group in cls.capabilities:
            for method in CAPABILITIES[group]:
                assert not getattr(getattr(cls, method), "__isabstractmethod__", False), (kind, group, method)


def test_no_solver_asks_an_engine_its_kind():
    import pathlib

    import nmfkit.solvers
    for path in pathlib.Path(nmfkit.solvers.__file__).parent.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert ".kind" not in text and "isinstance(engine" not in text, path.name


def test_solver_protocol_has_no_shared_mutable_state():
    """Every attribute the driver reads is declared per instance; no class holds a dict or list."""
    X = np.random.default_rng(0).random((9, 9))
    engine = nmfkit.engines.make_engine(X + X.T)        # square and symmetric: every solver accepts it
    for name, spec in SOLVERS.items():
        for klass in spec.cls.__mro__:
            for attr, value in vars(klass).items():
                assert attr.startswith("__") or not isinstance(value, (dict, list, set)), (name, klass.__name__, attr)
        a, b = (spec.cls(engine, spec.losses[0], LOSSES.get(spec.losses[0], 1.5)) for _ in range(2))
        assert a.cache is not b.cache
        for attr in ("want_objective", "given_start", "rng", "done", "monotone", "cache", "penalised",
                     "returns_last_iterate", "objective_every", "checkpoint_attrs", "requires"):
            assert hasattr(a, attr), (name, attr)


def test_architecture_page_states_the_engine_capabilities():
    """docs/architecture.md's capability table is the one the engines declare."""
    import pathlib
    import re

    from nmfkit.engines import ENGINE_CAPABILITIES
    from nmfkit.engines.base import CAPABILITIES
    page = pathlib.Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
    kinds = ("dense", "sparse", "masked", "dask", "torch", "memmap")
    rows = {m.group(1): [c.strip() == "✓" for c in m.group(2).split("|")[-len(kinds):]]
            for m in re.finditer(r"^\| `(\w+)` \|(.*)\|$", page.read_text(encoding="utf-8"), re.M)
            if m.group(1) in CAPABILITIES}
    assert set(rows) == set(CAPABILITIES)
    for group, marks in rows.items():
        assert marks == [group in ENGINE_CAPABILITIES[kind] for kind in kinds]
