"""Progress is shown wherever the output goes: a terminal, a notebook (tests/test_notebook.py),
a log file or a pipe; and never when it was not asked for."""
import io
import os
import subprocess
import sys
import textwrap

from nmfkit import progress

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_terminal_rewrites_one_line():
    out = Tty()
    bar = progress.Progress(10, "nmf", "iterations", stream=out)
    assert bar.mode == "terminal"
    for i in range(1, 11):
        bar.update(i, objective=1.0 / i, force=True)
    bar.close()
    text = out.getvalue()
    assert text.count("\r") == 10 and text.endswith("\n") and text.count("\n") == 1
    assert "10/10 iterations objective 0.1" in text


def test_log_shows_first_periodic_and_last_lines(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(progress, "LOG_INTERVAL", 3600.0)
    bar = progress.Progress(100, "consensus k=3", "runs", stream=out)
    assert bar.mode == "log"
    for i in range(1, 101):
        bar.update(i)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines                   # the first and the last only: 1 hour never elapsed
    assert lines[0].startswith("consensus k=3 1/100 runs") and lines[1].startswith("consensus k=3 100/100 runs")
    assert "\r" not in out.getvalue()


def test_disabled_prints_nothing():
    out = Tty()
    bar = progress.Progress(5, stream=out, enabled=False)
    bar.update(3, force=True)
    bar.close()
    assert out.getvalue() == ""


def _run_script(code, tmp_path):
    """Run `code` with stdout and stderr redirected to a file (as in a batch job); return the file's text."""
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(code))
    log = tmp_path / "job.log"
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")}
    with open(log, "w") as fh:
        done = subprocess.run([sys.executable, str(script)], stdout=fh, stderr=subprocess.STDOUT, cwd=tmp_path,
                              env=env, timeout=300)
    text = log.read_text()
    assert done.returncode == 0, text
    return text


def test_fit_in_a_batch_log_prints_periodic_plain_lines(tmp_path):
    text = _run_script("""
        import time
        import numpy as np
        import nmfkit
        from nmfkit import progress
        progress.LOG_INTERVAL = 0.05
        X = np.random.default_rng(0).random((30, 20))
        slow = lambda state: time.sleep(0.002)          # ~2 s for 1000 iterations: several intervals
        nmfkit.fit(X, 3, solver="mu", max_iter=1000, tol=0, verbose=True, callback=slow, seed=0)
        print("finished")
    """, tmp_path)
    lines = [line for line in text.splitlines() if " iterations objective " in line]
    assert len(lines) >= 5, text                      # first, several periodic, last
    assert lines[-1].startswith("mu 1000/1000 iterations objective")
    counts = [int(line.split()[1].split("/")[0]) for line in lines]
    assert counts == sorted(counts) and counts[0] < 100
    assert "\r" not in text and text.rstrip().endswith("finished")


def test_rank_survey_in_a_batch_log_prints_progress(tmp_path):
    text = _run_script("""
        import numpy as np
        import nmfkit
        rng = np.random.default_rng(0)
        X = rng.random((30, 2)) @ np.kron(np.eye(2), np.ones((1, 6))) + 0.01 * rng.random((30, 12))
        nmfkit.estimate_rank(X, ranks=[2, 3], n_runs=4, seed=0, n_jobs=1)
    """, tmp_path)
    for k in (2, 3):
        assert f"consensus k={k} 4/4 runs" in text and f"consensus k={k} (randomised data) 4/4 runs" in text, text


def test_quiet_fit_in_a_batch_log_prints_nothing(tmp_path):
    text = _run_script("""
        import numpy as np
        import nmfkit
        nmfkit.fit(np.random.default_rng(0).random((10, 8)), 2, max_iter=50, seed=0)
    """, tmp_path)
    assert text == ""
