"""Misuse gets one clear line: names matched forgivingly, seeds checked by name, work that cannot fit in
memory refused before it starts, damaged or foreign model and checkpoint files refused by name."""
import json
import os
import pickle
import re

import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit
from nmfkit import checkpoint, validation
from nmfkit.io import DataFileError
from nmfkit.r_api import nmf
from nmfkit.rank import consensus, cross_validate_rank, estimate_rank

GIB = 2**30


@pytest.fixture
def X():
    return np.random.default_rng(0).random((12, 8)) + 0.01


def _one_line(exc_info):
    text = str(exc_info.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# -- names ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, suggestion", [
    ({"solver": "hal"}, "did you mean 'hals'?"),
    ({"loss": "frobenious"}, "did you mean 'frobenius'?"),
    ({"init": "nndsvda_"}, "did you mean 'nndsvda'?"),
    ({"missing": "masks"}, "did you mean 'mask'?"),
])
def test_unknown_names_get_a_did_you_mean(X, kwargs, suggestion):
    with pytest.raises(ValueError, match="choose one of") as info:
        nmfkit.fit(X, 2, **kwargs)
    assert _one_line(info).endswith(suggestion)


def test_far_off_names_get_no_suggestion(X):
    with pytest.raises(ValueError, match=r"unknown solver 'magic'; choose one of: [a-z, ]+$"):
        nmfkit.fit(X, 2, solver="magic")


def test_names_match_case_insensitively(X):
    res = nmfkit.fit(X, 2, solver="HALS", init="NNDSVD", max_iter=5)
    assert (res.options["solver"], res.options["init"]) == ("hals", "nndsvd")
    res = nmfkit.fit(X, 2, solver="Mu", loss="KL", missing="ERROR", max_iter=5)
    assert (res.options["solver"], res.options["loss"]) == ("mu", "kl")
    assert nmf(X, 2, method="LEE", seed=1, maxIter=5).fit.options["solver"] == "lee"


def test_case_folding_only_where_unambiguous():
    assert validation.choose("a", ("A", "b"), "option") == "A"
    with pytest.raises(ValueError, match="unknown option 'mu'; choose one of: MU, Mu"):
        validation.choose("mu", ("Mu", "MU"), "option")


# -- seeds ---------------------------------------------------------------------------------------
BAD_SEEDS = ["abc", 1.5, -1, True]
SEED_TAKERS = {
    "fit": lambda X, s: nmfkit.fit(X, 2, seed=s, max_iter=3),
    "consensus": lambda X, s: consensus(X, 2, n_runs=2, seed=s, max_iter=3, n_jobs=1, progress=False),
    "estimate_rank": lambda X, s: estimate_rank(X, [2], n_runs=2, seed=s, max_iter=3, n_jobs=1, progress=False),
    "cross_validate_rank": lambda X, s: cross_validate_rank(X, [2], n_splits=2, seed=s, max_iter=3),
    "r_api.nmf": lambda X, s: nmf(X, 2, seed=s, maxIter=3),
}


@pytest.mark.parametrize("taker", sorted(SEED_TAKERS))
@pytest.mark.parametrize("seed", BAD_SEEDS, ids=repr)
def test_bad_seeds_are_refused_by_name(X, taker, seed):
    with pytest.raises((ValueError, TypeError)) as info:
        SEED_TAKERS[taker](X, seed)
    assert _one_line(info).startswith("seed must be None, a non-negative integer") or taker == "r_api.nmf"
    assert "seed" in str(info.value)


def test_sklearn_random_state_is_checked_by_name(X):
    with pytest.raises(ValueError, match=r"^random_state must be None, a non-negative integer.*got 'abc'$"):
        nmfkit.NMF(2, random_state="abc", max_iter=3).fit(X)


@pytest.mark.parametrize("make", [np.random.RandomState, np.random.default_rng], ids=["RandomState", "Generator"])
def test_random_state_and_generator_are_accepted_deterministically(X, make):
    a = nmfkit.fit(X, 2, init="random", seed=make(7), max_iter=5)
    b = nmfkit.fit(X, 2, init="random", seed=make(7), max_iter=5)
    c = nmfkit.fit(X, 2, init="random", seed=make(8), max_iter=5)
    np.testing.assert_array_equal(a.W, b.W)
    assert not np.array_equal(a.W, c.W)
    assert isinstance(a.options["seed"], int)            # the derived seed is recorded: the run can be repeated
    np.testing.assert_array_equal(nmfkit.fit(X, 2, init="random", seed=a.options["seed"], max_iter=5).W, a.W)
    s1 = nmfkit.NMF(2, init="random", random_state=make(3), max_iter=5).fit_transform(X)
    s2 = nmfkit.NMF(2, init="random", random_state=make(3), max_iter=5).fit_transform(X)
    np.testing.assert_array_equal(s1, s2)
    r = consensus(X, 2, n_runs=2, seed=make(5), max_iter=5, n_jobs=1, progress=False)
    assert r.objectives.shape == (2,)


# -- memory ----------------------------------------------------------------------------------------
@pytest.fixture
def small_machine(monkeypatch):
    """A machine with 16 GiB, so the refusals do not depend on the test host's memory."""
    monkeypatch.setattr(validation, "physical_memory", lambda: 16 * GIB)


def _three_entries(m, n):
    return sp.csr_matrix((np.array([1.0, 2.0, 3.0]), (np.array([0, 5, 7]), np.array([1, 2, 9]))), shape=(m, n))


def test_a_rank_that_needs_terabytes_is_refused_up_front(small_machine):
    with pytest.raises(ValueError, match=r"^rank 100000 on a 1000000×1000000 matrix would need about "
                                         r"5,960\.5 GiB, more than this machine's 16\.0 GiB of memory$"):
        nmfkit.fit(_three_entries(10**6, 10**6), 100_000)


def test_dense_products_count_towards_the_memory_needed(small_machine):
    assert validation.physical_memory() == 16 * GIB
    validation.check_fit_memory((10**5, 10**4), 10, np.float64, dense=False)      # factors only: small
    validation.check_fit_memory((10**5, 10**4), 10, np.float64, dense=True)       # + 7.5 GiB for m×n: fits
    with pytest.raises(ValueError, match=r"would need about 29\.8 GiB"):
        validation.check_fit_memory((10**5, 4 * 10**4), 10, np.float64, dense=True)


def test_sgd_does_not_build_an_index_of_every_entry(small_machine):
    with pytest.raises(ValueError, match=r"^sgd's visiting order over all 100000×100000 entries would need about "
                                         r"298\.0 GiB"):
        nmfkit.fit(_three_entries(100_000, 100_000), 2, solver="sgd")


def test_inner_alpha_out_of_range_is_refused_before_numba(X):
    with pytest.raises(ValueError, match=r"^inner_alpha must be at most 1e\+06; got 1e\+30$"):
        nmfkit.fit(X, 2, solver="hals", inner_alpha=1e30)


# -- Ctrl-C inside a Numba parallel region -------------------------------------------------------------
def _raise_from_numba(context):
    try:
        raise context
    except BaseException:   # what a Numba parallel region reports when the interrupt lands inside it
        raise SystemError("<function> returned a result with an exception set")   # noqa: B904


def test_numba_system_error_from_ctrl_c_is_an_interrupted_result(X):
    def callback(state):
        if state.iteration == 3:
            _raise_from_numba(KeyboardInterrupt())
        return False
    with pytest.warns(RuntimeWarning, match="interrupted at iteration 3"):
        res = nmfkit.fit(X, 2, solver="hals", callback=callback, max_iter=50, tol=0)
    assert res.stop_reason == "interrupted" and np.isfinite(res.loss)


def test_other_system_errors_are_not_swallowed(X):
    def callback(state):
        if state.iteration == 2:
            _raise_from_numba(RuntimeError("a real bug"))
        return False
    with pytest.raises(SystemError):
        nmfkit.fit(X, 2, solver="hals", callback=callback, max_iter=50, tol=0)


# -- model and checkpoint files ------------------------------------------------------------------------
@pytest.fixture
def model(tmp_path, X):
    return nmfkit.fit(X, 2, max_iter=10).save(tmp_path / "model.npz")


def _rewrite(path, drop=(), **changes):
    """Rewrite an nmfkit archive with some arrays or metadata fields replaced (meta={...}) or dropped."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["meta"].tobytes())
    meta.update(changes.pop("meta", {}))
    for key in drop:
        meta.pop(key, None)
        arrays.pop(key, None)
    arrays.update(changes)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    return path


class Exploit:
    """Unpickling this creates a folder: the proof that a loader unpickled it."""
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.mark.parametrize("loader", [nmfkit.Factorization.load, checkpoint.load], ids=["model", "checkpoint"])
def test_a_pickle_named_npz_is_refused_and_never_unpickled(tmp_path, loader):
    path = tmp_path / "model.npz"
    path.write_bytes(pickle.dumps(Exploit(tmp_path / "unpickled")))
    with pytest.raises(DataFileError, match=r"model\.npz: not an nmfkit (model|checkpoint) file") as info:
        loader(path)
    assert "allow_pickle" not in _one_line(info)
    assert not (tmp_path / "unpickled").exists()


@pytest.mark.parametrize("change, message", [
    (dict(drop=["loss"]), "the model has no 'loss' field"),
    (dict(meta={"loss": "small"}), r"the model's 'loss' field is malformed \('small', not a Real\)"),
    (dict(H=np.ones((3, 8))), "W is 12×2 but H is 3×8; their ranks disagree"),
    (dict(W=np.full((12, 2), np.nan)), "W holds 24 NaN or infinite values"),
    (dict(H=-np.ones((2, 8))), "H holds 16 negative values"),
    (dict(W=np.ones(12)), "W is a 1-D float64 array of shape \\(12,\\)"),
    (dict(W=np.ones((12, 2), dtype=np.int64)), "W is a 2-D int64 array"),
    (dict(drop=["W"]), "W is missing"),
    (dict(meta={"history_keys": ["objective", "nope"]}), "history column 'nope' is missing"),
    (dict(meta={"row_names": ["a"]}), "row_names do not match its 12 rows"),
    (dict(meta={"format": "something else"}), "not an nmfkit model file$"),
])
def test_malformed_models_are_refused_by_name(model, change, message):
    _rewrite(model, **change)
    with pytest.raises(DataFileError, match=r"model\.npz: ") as info:
        nmfkit.Factorization.load(model)
    assert re.search(message, _one_line(info)), str(info.value)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_a_truncated_model_is_refused_by_name(model, keep):
    data = open(model, "rb").read()
    open(model, "wb").write(data[:int(len(data) * keep)])
    with pytest.raises(DataFileError, match=r"model\.npz: (damaged or truncated nmfkit model file|not an nmfkit)"):
        nmfkit.Factorization.load(model)


def test_a_model_round_trips_after_the_checks(model):
    back = nmfkit.Factorization.load(model)
    assert back.W.shape == (12, 2) and back.H.shape == (2, 8) and isinstance(back.loss, float)


@pytest.fixture
def ckpt(tmp_path, X):
    path = tmp_path / "fit.ckpt.npz"
    nmfkit.fit(X, 2, solver="mu", max_iter=6, tol=0, checkpoint=path, checkpoint_every=3)
    return path


@pytest.mark.parametrize("change, message", [
    (dict(W=np.full((12, 2), np.nan)), "W holds 24 NaN or infinite values"),
    (dict(Ht=-np.ones((8, 2))), "Ht holds 16 negative values"),
    (dict(Ht=np.ones((8, 3))), "factors disagree in shape"),
    (dict(drop=["iteration"]), "has no 'iteration' field"),
    (dict(meta={"best_objective": None}), "'best_objective' field is malformed"),
    (dict(meta={"best_objective": float("nan")}), "best iterate is malformed"),
    (dict(meta={"history_keys": ["iteration", "seconds"]}), "no finite objective per iteration"),
])
def test_malformed_checkpoints_are_refused_before_resuming(X, ckpt, change, message):
    _rewrite(ckpt, **change)
    with pytest.raises(DataFileError, match=r"fit\.ckpt\.npz: ") as info:
        nmfkit.fit(X, 2, solver="mu", max_iter=9, tol=0, resume=ckpt)
    assert message in _one_line(info)


def test_a_truncated_checkpoint_is_refused_by_name(X, ckpt):
    data = open(ckpt, "rb").read()
    open(ckpt, "wb").write(data[: len(data) // 2])
    with pytest.raises(DataFileError, match=r"fit\.ckpt\.npz: damaged or truncated nmfkit checkpoint file"):
        nmfkit.fit(X, 2, solver="mu", max_iter=9, tol=0, resume=ckpt)


def test_a_sound_checkpoint_still_resumes(X, ckpt):
    res = nmfkit.fit(X, 2, solver="mu", max_iter=9, tol=0, resume=ckpt)
    assert res.n_iter == 9 and np.isfinite(res.loss)


@pytest.mark.parametrize("call", [
    lambda seed: nmfkit.r_api.nmfModel(2, (6, 5), seed=seed),
    lambda seed: nmfkit.r_api.rmatrix(4, 3, seed=seed),
    lambda seed: nmfkit.r_api.rnmf(2, (6, 5), seed=seed),
    lambda seed: nmfkit.r_api.syntheticNMF(20, 2, 10, seed=seed),
    lambda seed: nmfkit.rank.estimate.randomize(np.ones((4, 3)), seed=seed),
], ids=["nmfModel", "rmatrix", "rnmf", "syntheticNMF", "randomize"])
def test_random_helpers_check_their_seed_by_name(call):
    with pytest.raises(ValueError, match="seed must be None, a non-negative integer"):
        call("abc")
    a, b = call(7), call(np.random.default_rng(7))          # an int and a Generator of it agree
    first = lambda v: np.asarray(v.W if hasattr(v, "W") else (v[0] if isinstance(v, tuple) else v))  # noqa: E731
    np.testing.assert_array_equal(first(a), first(b))
