"""No entry point modifies its inputs: for every kind of input (dense C/F order in float64, float32
and int; CSR with duplicates, explicit zeros and unsorted indices; CSC; COO; a DataFrame; a masked
array) and every entry point (fit with each solver, n_runs, mask=, missing="mask", a given start;
project; the scikit-learn estimator; the R interface; consensus, rank surveys, cross-validation),
the bytes, dtype, shape, strides and flags of every array the caller passed are the same after the
call."""
import types

import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit
from nmfkit import r_api

M, N, K = 7, 6, 2
BASE = np.random.default_rng(7).random((M, N)) + 0.1
BASE[BASE < 0.35] = 0.0                      # some zeros, so sparse inputs have structure


def _untidy_csr():
    """A CSR with a duplicate and an explicit zero in every row and indices in descending order."""
    data, indices, indptr = [], [], [0]
    for i in range(M):
        cols = list(np.flatnonzero(BASE[i]))
        zero = next(j for j in range(N) if j not in cols) if len(cols) < N else None
        entries = [(j, BASE[i, j]) for j in cols[1:]] + [(cols[0], BASE[i, cols[0]] / 2)] * 2
        if zero is not None:
            entries.append((zero, 0.0))
        entries.sort(key=lambda e: -e[0])
        data += [v for _, v in entries]
        indices += [j for j, _ in entries]
        indptr.append(len(data))
    X = sp.csr_matrix((np.array(data), np.array(indices, dtype=np.int32), np.array(indptr, dtype=np.int32)),
                      shape=(M, N))
    assert not X.has_canonical_format and np.any(X.data == 0)
    return X


def _coo_with_duplicates():
    C = sp.coo_matrix(BASE)
    return sp.coo_matrix((np.r_[C.data / 2, C.data / 2], (np.r_[C.row, C.row], np.r_[C.col, C.col])), shape=(M, N))


def _frame():
    import pandas as pd
    return pd.DataFrame(BASE, index=[f"r{i}" for i in range(M)], columns=[f"c{j}" for j in range(N)])


def _masked():
    return np.ma.masked_array(BASE, mask=np.eye(M, N, dtype=bool))


INPUTS = {
    "dense C float64": lambda: BASE.copy(),
    "dense F float64": lambda: np.asfortranarray(BASE),
    "dense C float32": lambda: BASE.astype(np.float32),
    "dense F float32": lambda: np.asfortranarray(BASE, dtype=np.float32),
    "dense int": lambda: np.rint(BASE * 10).astype(np.int64),
    "CSR untidy": _untidy_csr,
    "CSR float32": lambda: sp.csr_matrix(BASE, dtype=np.float32),
    "CSC untidy": lambda: _untidy_csr().T.tocsc().T,       # a CSC view with the same untidy arrays
    "COO duplicates": _coo_with_duplicates,
    "DataFrame": _frame,
    "masked array": _masked,
}
MASK = ~np.eye(M, N, dtype=bool)
MASK.setflags(write=False)


def _snapshot(obj):
    """Everything about obj's arrays that a call could change."""
    if isinstance(obj, np.ma.MaskedArray):
        return ("masked", _snapshot(np.ma.getdata(obj)), _snapshot(np.ma.getmaskarray(obj)))
    if sp.issparse(obj):
        names = ("data", "row", "col") if obj.format == "coo" else ("data", "indices", "indptr")
        return (obj.format, obj.shape) + tuple(_snapshot(getattr(obj, a)) for a in names)
    if hasattr(obj, "to_numpy") and hasattr(obj, "dtypes"):
        return ("frame", tuple(map(str, obj.dtypes)), tuple(obj.index), tuple(obj.columns),
                _snapshot(obj.to_numpy()))
    a = np.asarray(obj)
    flags = {f: a.flags[f] for f in ("C_CONTIGUOUS", "F_CONTIGUOUS", "WRITEABLE", "ALIGNED", "OWNDATA")}
    return (a.dtype.str, a.shape, a.strides, tuple(sorted(flags.items())), a.tobytes(order="A"))


def _start():
    rng = np.random.default_rng(3)
    return rng.random((M, K)) + 0.1, rng.random((K, N)) + 0.1


def _sklearn_round_trip(X):
    from nmfkit.sklearn import NMF
    est = NMF(K, max_iter=5, random_state=0)
    W = est.fit_transform(X)
    est.transform(X)
    est.inverse_transform(W)
    return W


def _sklearn_custom(X, W0, H0):
    from nmfkit.sklearn import NMF
    return NMF(K, init="custom", solver="hals", max_iter=5).fit_transform(X, W=W0, H=H0)


def _sklearn_api(name):
    from nmfkit import sklearn as sk
    if not hasattr(sk, name):
        pytest.skip(f"nmfkit.sklearn has no {name}")
    return getattr(sk, name)


def _minibatch(X):
    est = _sklearn_api("MiniBatchNMF")(K, max_iter=3, random_state=0)
    W = est.fit_transform(X)
    est.partial_fit(X)
    return W


def _nnf(X, W0=None, H0=None):
    init = None if W0 is None else "custom"
    return _sklearn_api("non_negative_factorization")(X, W0, H0, n_components=K, init=init, max_iter=5,
                                                      random_state=0)


def _anndata_fit(X):
    adata = types.SimpleNamespace(X=X, layers={}, obsm={}, varm={}, uns={},
                                  obs_names=[f"r{i}" for i in range(M)], var_names=[f"c{j}" for j in range(N)])
    from nmfkit import anndata
    return anndata.fit(adata, K, max_iter=5, seed=0)


def _fit(solver, loss="frobenius", **kw):
    return lambda X: nmfkit.fit(X, K, solver=solver, loss=loss, max_iter=5, seed=0, **kw)


# name -> (callable(X, extra inputs...), names of the extra inputs it takes, takes missing entries)
ENTRIES = {
    "fit mu": (_fit("mu"), (), False),
    "fit mu kl": (_fit("mu", "kl"), (), False),
    "fit mu beta": (_fit("mu", beta=1.5), (), False),
    "fit hals": (_fit("hals"), (), False),
    "fit anls": (_fit("anls"), (), False),
    "fit pgd": (_fit("pgd"), (), False),
    "fit sgd": (_fit("sgd"), (), False),
    "fit ccd": (_fit("ccd", "kl"), (), False),
    "fit brunet": (_fit("brunet", "kl"), (), False),
    "fit lee": (_fit("lee"), (), False),
    "fit n_runs": (_fit("mu", n_runs=3, init="random"), (), False),
    "fit mask=": (lambda X, mask: nmfkit.fit(X, K, solver="mu", mask=mask, max_iter=5, seed=0), ("mask",), True),
    "fit missing=mask": (_fit("pgd", missing="mask"), (), True),
    "fit init=(W0, H0) hals": (lambda X, W0, H0: nmfkit.fit(X, K, solver="hals", init=(W0, H0), max_iter=5,
                                                               alpha_W=0.1), ("W0", "H0"), False),
    "fit init=(W0, H0) mu kl": (lambda X, W0, H0: nmfkit.fit(X, K, solver="mu", loss="kl", init=(W0, H0),
                                                                max_iter=5), ("W0", "H0"), False),
    "fit init=(W0, H0) pgd": (lambda X, W0, H0: nmfkit.fit(X, K, solver="pgd", init=(W0, H0), max_iter=5),
                              ("W0", "H0"), False),
    "project": (lambda X, W0: nmfkit.project(W0, X, max_iter=5), ("W0",), False),
    "project kl": (lambda X, W0: nmfkit.project(W0, X, loss="kl", max_iter=5), ("W0",), False),
    "NMF fit_transform/transform/inverse_transform": (_sklearn_round_trip, (), False),
    "NMF init=custom": (_sklearn_custom, ("W0", "H0"), False),
    "MiniBatchNMF fit_transform/partial_fit": (_minibatch, (), False),
    "non_negative_factorization": (_nnf, (), False),
    "non_negative_factorization init=custom": (_nnf, ("W0", "H0"), False),
    "r_api.nmf": (lambda X: r_api.nmf(X, K, "brunet", seed=1, maxIter=5), (), False),
    "r_api.nmf given start": (lambda X, W0, H0: r_api.nmf(X, K, "lee", seed=(W0, H0), maxIter=5),
                              ("W0", "H0"), False),
    "r_api.randomize": (lambda X: r_api.randomize(X, seed=0), (), False),
    "r_api.rss/evar": (lambda X, W0, H0: (r_api.rss(r_api.nmfModel(W=W0, H=H0), X),
                                          r_api.evar(r_api.nmfModel(W=W0, H=H0), X)), ("W0", "H0"), False),
    "heldout_error": (lambda X, W0, H0, mask: nmfkit.rank.heldout_error(X, W0, H0, mask), ("W0", "H0", "mask"),
                      False),
    "consensus": (lambda X: nmfkit.consensus(X, K, n_runs=2, n_jobs=1, progress=False, max_iter=5, seed=0),
                  (), False),
    "estimate_rank": (lambda X: nmfkit.estimate_rank(X, [1, 2], n_runs=2, n_jobs=1, progress=False, max_iter=5,
                                                     seed=0), (), False),
    "cross_validate_rank": (lambda X: nmfkit.cross_validate_rank(X, [1, 2], n_splits=1, max_iter=5, seed=0),
                            (), False),
    "anndata.fit": (_anndata_fit, (), False),
}
NEEDS_SKLEARN = ("NMF fit_transform/transform/inverse_transform", "NMF init=custom",
                 "MiniBatchNMF fit_transform/partial_fit", "non_negative_factorization",
                 "non_negative_factorization init=custom")


@pytest.mark.parametrize("kind", list(INPUTS))
@pytest.mark.parametrize("entry", list(ENTRIES))
def test_inputs_are_never_modified(entry, kind):
    if entry in NEEDS_SKLEARN:
        pytest.importorskip("sklearn")
    call, extra_names, takes_missing = ENTRIES[entry]
    X = INPUTS[kind]()
    W0, H0 = _start()
    if getattr(X, "dtype", None) == np.float32:      # scikit-learn wants W and H in X's dtype
        W0, H0 = W0.astype(np.float32), H0.astype(np.float32)
    extras = {"mask": MASK, "W0": W0, "H0": H0}
    args = [extras[name] for name in extra_names]
    before = [_snapshot(a) for a in (X, *args)]
    if kind == "masked array" and not takes_missing:
        with pytest.raises(ValueError, match=r"masked entries .*(missing='mask'|\.filled)"):
            call(X, *args)
    else:
        call(X, *args)
    after = [_snapshot(a) for a in (X, *args)]
    for name, b, a in zip(("X", *extra_names), before, after):
        assert a == b, f"{entry} changed its input {name} ({kind})"


def test_untidy_csr_sum_is_unchanged_by_fit():
    """The reported case: a CSR with an explicit zero and duplicates keeps its own sum and arrays."""
    U = sp.csr_matrix((np.array([1.0, 0.0, 2.0]), np.array([1, 0, 1]), np.array([0, 2, 3])), shape=(2, 2))
    data, indices, indptr = U.data.copy(), U.indices.copy(), U.indptr.copy()
    result = nmfkit.fit(U, 1, max_iter=3)
    assert np.array_equal(U.data, data) and np.array_equal(U.indices, indices) and np.array_equal(U.indptr, indptr)
    assert U.sum() == 3.0            # (SciPy's own sum sorts U's indices in place: checked last)
    assert result.W.shape == (2, 1)


def test_engine_copies_only_to_canonicalise():
    """A canonical CSR is used as is (no copy of a large matrix); an untidy one is copied, then tidied."""
    from nmfkit.engines import SparseEngine
    tidy = sp.csr_matrix(BASE)
    assert np.shares_memory(SparseEngine(tidy).X.data, tidy.data)
    untidy = _untidy_csr()
    engine = SparseEngine(untidy)
    assert not np.shares_memory(engine.X.data, untidy.data)
    assert engine.X.has_canonical_format and engine.X.data.all()
    np.testing.assert_array_equal(engine.X.toarray(), BASE)
