"""ruff (configured in pyproject.toml: E, F, W and import order at 120 columns) passes on the linted paths."""
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINTED = ["src", "tests", "benchmarks", "examples"]


def ruff_command():
    try:
        import ruff  # noqa: F401
    except ImportError:
        exe = shutil.which("ruff")
        return [exe] if exe else None
    return [sys.executable, "-m", "ruff"]


@pytest.mark.skipif(ruff_command() is None, reason="ruff is not installed (pip install nmfkit[test])")
def test_ruff_passes():
    done = subprocess.run([*ruff_command(), "check", "--no-cache", *LINTED], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
