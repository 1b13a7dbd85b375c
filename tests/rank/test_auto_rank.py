"""rank="auto": the search on the held-out error curve (nmfkit.rank.auto).

Three kinds of checks: the search logic on synthetic curves (no fitting: its answer must be the
full sweep's, with fewer evaluations), the search on planted data of known rank (dense and
sparse, several ranks and noise levels), and `nmfkit.fit(X, rank="auto")` end to end.
"""
import numpy as np
import pytest
import scipy.sparse as sp
from _planted import low_rank

import nmfkit
from nmfkit.rank import auto
from nmfkit.rank.auto import search_rank
from nmfkit.rank.cross_validation import pick_rank


def sparse_planted(m, n, r, noise, seed):
    """Sparse rank-r data: sparse non-negative factors, multiplicative noise (zeros stay zeros)."""
    rng = np.random.default_rng(seed)
    W = rng.random((m, r)) * (rng.random((m, r)) < 0.4)
    H = rng.random((r, n)) * (rng.random((r, n)) < 0.4)
    L = W @ H
    return sp.csr_matrix(L * np.clip(1 + noise * rng.standard_normal(L.shape), 0, None))


# -- the search logic, on curves given in closed form -------------------------------------------------------
def synthetic_curve(monkeypatch, curve):
    """Replace each masked fit by curve(k, split): the search then only reads the curve."""
    def split_error(self, k, mask, observed_mean, init_seqs):
        split = next(s for s, entry in enumerate(self.splits) if entry[0] is mask)
        return curve(k, split)
    monkeypatch.setattr(auto._Curve, "_split_error", split_error)


def unimodal(k0, below, above, spread):
    """Falls by `below` per rank up to k0, then rises by `above` per rank; splits differ by ±spread."""
    return lambda k, s: (below * (k0 - k) if k <= k0 else above * (k - k0)) + 1.0 + spread * (s - 1)


@pytest.mark.parametrize("rule", ["min", "1se"])
def test_search_finds_the_sweep_rank_of_every_unimodal_curve(monkeypatch, rule):
    X = np.ones((60, 60))
    lo, hi = 1, 40
    for k0 in range(lo, hi + 1):
        for below, above, spread in ((1.0, 0.01, 0.0), (0.3, 0.002, 0.05), (0.01, 1.0, 0.002)):
            curve = unimodal(k0, below, above, spread)
            synthetic_curve(monkeypatch, curve)
            found = search_rank(X, (lo, hi), n_splits=3, rule=rule, seed=0)
            ranks = list(range(lo, hi + 1))
            errors = np.array([[curve(k, s) for s in range(3)] for k in ranks])
            se = errors.std(axis=1, ddof=1) / np.sqrt(3)
            assert found.rank == pick_rank(ranks, errors.mean(axis=1), se, rule), (k0, below, above, spread)
            assert found.n_evaluated <= 20 < found.sweep_size, found.order   # log-many, not a sweep
            assert len(set(found.order)) == found.n_evaluated                # no rank fitted twice


def test_one_se_rule_reaches_below_the_minimum_by_bisection(monkeypatch):
    # a long, shallow fall to the minimum at 30: every rank from 21 on is within one standard error
    synthetic_curve(monkeypatch, lambda k, s: 0.001 * abs(30 - k) + (0.5 if k <= 20 else 0.0) + 0.02 * s)
    found = search_rank(np.ones((50, 50)), (1, 40), rule="1se", seed=0)
    assert found.rank == 21
    assert {20, 21} <= set(found.order)                # the boundary's two sides were both evaluated
    assert found.n_evaluated <= 20 < found.sweep_size    # 7 doubling + golden section + bisection


def test_search_ends_at_hi_when_the_error_keeps_falling(monkeypatch):
    synthetic_curve(monkeypatch, lambda k, s: 1.0 / k)
    found = search_rank(np.ones((20, 20)), (2, 13), rule="min", seed=0)
    assert found.rank == 13 and found.order[:4] == [2, 4, 8, 13]


def test_a_failed_fit_never_wins(monkeypatch):
    curve = unimodal(3, 1.0, 0.01, 0.0)
    synthetic_curve(monkeypatch, lambda k, s: np.nan if k == 8 else curve(k, s))
    found = search_rank(np.ones((20, 20)), (1, 16), rule="min", seed=0)
    assert found.rank == 3 and 8 in found.order and 16 not in found.order


# -- planted data -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("r, noise", [(2, 0.1), (5, 0.1), (3, 0.3), (6, 0.3)])
def test_planted_dense_rank_is_found(r, noise):
    X = low_rank(60, 50, r, noise=noise, seed=r)
    found = search_rank(X, (1, 16), seed=1)
    # the 1-SE rule may stop one rank short when the noise hides the last component
    assert found.rank in (r - 1, r) if noise >= 0.3 else found.rank == r, found
    assert found.n_evaluated < 16


@pytest.mark.parametrize("r, noise", [(2, 0.05), (4, 0.05), (6, 0.2)])
def test_planted_sparse_rank_is_found(r, noise):
    X = sparse_planted(80, 60, r, noise, seed=r)
    found = search_rank(X, (1, 12), seed=1)
    assert found.rank == r, found
    assert found.n_evaluated < 12


def test_default_range_never_fits_the_large_ranks():
    X = low_rank(60, 50, 2, noise=0.1, seed=2)
    found = search_rank(X, seed=1)
    assert found.rank_range == (1, 50) and found.rank == 2
    assert found.n_evaluated <= 5 and max(found.order) <= 4


def test_errors_are_cross_validate_ranks_for_the_same_seed_and_sparse_equals_dense():
    X = sparse_planted(40, 30, 3, 0.1, seed=7)
    before = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    sweep = nmfkit.cross_validate_rank(X, range(1, 9), seed=3, rule="1se")
    found = search_rank(X, (1, 8), seed=3)
    for k, errors in found.errors.items():
        np.testing.assert_allclose(errors, sweep.errors[k - 1], rtol=1e-12)
    assert found.rank == sweep.best_rank
    assert all(np.array_equal(a, b) for a, b in zip(before, (X.data, X.indices, X.indptr)))   # input untouched
    dense = search_rank(X.toarray(), (1, 8), seed=3)
    assert dense.order == found.order
    for k in found.order:                       # same masks and starts; only the summation order differs
        np.testing.assert_allclose(dense.errors[k], found.errors[k], rtol=1e-6)


# -- nmfkit.fit(X, rank="auto") ---------------------------------------------------------------------------------
def test_fit_auto_records_the_search_and_fits_the_chosen_rank():
    X = low_rank(40, 30, 3, noise=0.1, seed=3)
    result = nmfkit.fit(X, "auto", rank_range=(1, 8), seed=4, solver="hals")
    info = result.options["rank_search"]
    assert result.rank == info["rank"] == 3
    assert info["n_evaluated"] == len(info["evaluated"]) < 8 and info["solver"] == "mu"
    assert [e["rank"] for e in info["evaluated"]][:3] == [1, 2, 4]
    search = search_rank(X, (1, 8), seed=4)
    assert [(e["rank"], e["test_error"]) for e in info["evaluated"]] == \
        [(r["rank"], r["test_error"]) for r in search.records()]
    plain = nmfkit.fit(X, 3, seed=4, solver="hals")          # the final fit is fit(X, k) with the same seed
    np.testing.assert_array_equal(result.W, plain.W)


def test_fit_auto_settings_and_labels(tmp_path):
    pd = pytest.importorskip("pandas")
    X = low_rank(40, 30, 2, noise=0.1, seed=5)
    frame = pd.DataFrame(X, index=[f"g{i}" for i in range(40)])
    result = nmfkit.fit(frame, "auto", rank_range=(1, 6), seed=0, loss="kl", solver="mu",
                        rank_search={"n_splits": 2, "holdout": 0.2, "rule": "min"})
    info = result.options["rank_search"]
    assert (info["n_splits"], info["holdout"], info["rule"], info["loss"]) == (2, 0.2, "min", "kl")
    assert result.row_names[0] == "g0" and result.rank == info["rank"] == 2
    result.save(tmp_path / "auto.npz")               # the search record is plain JSON
    assert nmfkit.Factorization.load(tmp_path / "auto.npz").options["rank_search"] == info


def test_fit_auto_shows_progress(capsys):
    nmfkit.fit(low_rank(30, 20, 2, noise=0.1, seed=1), "auto", rank_range=(1, 5), seed=0, verbose=True)
    assert "rank search" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(rank_range=(0, 5)), ValueError, "rank_range"),
    (dict(rank_range=(4, 2)), ValueError, "rank_range"),
    (dict(rank_range=5), TypeError, "pair"),
    (dict(rank_range=(1, 99)), ValueError, "min"),
    (dict(rank_search={"folds": 3}), ValueError, "unknown setting"),
    (dict(rank_search={"holdout": 1.5}), ValueError, "holdout"),
    (dict(rank_search={"solver": "hals"}), ValueError, "missing entries"),
    (dict(loss="is"), ValueError, "frobenius' or 'kl"),
    (dict(mask=np.ones((20, 15), dtype=bool)), ValueError, "mask"),
    (dict(init=(np.ones((20, 2)), np.ones((2, 15)))), ValueError, "W0, H0"),
    (dict(resume="x.ckpt"), ValueError, "resume"),
    (dict(solver="hals", bogus_option=1), TypeError, "bogus_option"),
    (dict(checkpoint="/no/such/folder/fit.ckpt"), FileNotFoundError, "does not exist"),
])
def test_fit_auto_refuses_bad_settings_before_searching(monkeypatch, kwargs, error, match):
    def no_search(*args, **kw):
        raise AssertionError("the search started before the settings were checked")
    monkeypatch.setattr(auto._Curve, "mean", no_search)
    with pytest.raises(error, match=match):
        nmfkit.fit(np.ones((20, 15)), "auto", **kwargs)


def test_fit_auto_refuses_data_it_cannot_mask():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="NumPy array or SciPy sparse"):
        nmfkit.fit(torch.ones(10, 8), "auto")


def test_other_strings_are_still_refused_as_ranks():
    with pytest.raises(TypeError, match="rank must be an integer"):
        nmfkit.fit(np.ones((5, 5)), "three")


# -- nmfkit fit --rank auto ---------------------------------------------------------------------------------
def test_cli_rank_auto_writes_the_search(tmp_path, capsys):
    import json

    from nmfkit.cli import main
    path = tmp_path / "x.csv"
    np.savetxt(path, low_rank(30, 20, 2, noise=0.1, seed=1), delimiter=",")
    assert main(["fit", str(path), "--rank", "auto", "--rank-range", "1-5", "--seed", "0",
                 "--out", str(tmp_path / "out")]) == 0
    assert "rank auto  2 by the 1se rule" in capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rank"] == summary["options"]["rank_search"]["rank"] == 2
    assert summary["options"]["rank_search"]["rank_range"] == [1, 5]


@pytest.mark.parametrize("argv, fragment", [
    (["--rank", "three"], "invalid int value: 'three' (give an integer or auto)"),
    (["--rank", "auto", "--rank-range", "1-x"], "--rank-range must look like"),
    (["--rank", "2", "--rank-range", "1-4"], "add --rank auto"),
    (["--rank", "auto", "--consensus", "--runs", "3"], "--consensus"),
])
def test_cli_rank_auto_usage_errors(tmp_path, capsys, argv, fragment):
    from nmfkit.cli import main
    path = tmp_path / "x.csv"
    np.savetxt(path, np.ones((4, 3)), delimiter=",")
    assert main(["fit", str(path), "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1
