"""Consensus clustering: measures, R's hclust order, reproducibility, and parity with R NMF.

Tests marked `r` compare with R package NMF 0.25 (`cophcor`, `dispersion`,
`cluster::silhouette` of `cutree(hclust(1 − C, "average"), k)`) on the same
consensus matrices; they skip, saying why, when Rscript or NMF is missing.
"""
import shutil
import subprocess

import numpy as np
import pytest
from _planted import clustered as planted
from scipy.cluster.hierarchy import cophenet, linkage
from scipy.spatial.distance import squareform

import nmfkit
from nmfkit.rank.consensus import (
    connectivity,
    consensus_clusters,
    consensus_matrix,
    consensus_silhouette,
    cophenetic_correlation,
    dispersion,
    silhouette_widths,
)
from nmfkit.rank.hclust import average_linkage


def noisy_assignments(n=25, runs=12, k=3, agree=0.8, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    return np.array([np.where(rng.random(n) < agree, truth, rng.integers(0, k, n)) for _ in range(runs)])


def same_partition(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.array_equal(a[:, None] == a[None, :], b[:, None] == b[None, :])


# -- measures ------------------------------------------------------------------------------------
def test_connectivity_and_consensus_matrix():
    A = np.array([[0, 0, 1, 1], [0, 1, 1, 1]])
    assert np.array_equal(connectivity(A[0]), [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]])
    C = consensus_matrix(A)
    assert np.allclose(C, (connectivity(A[0]) + connectivity(A[1])) / 2)
    assert np.allclose(np.diag(C), 1) and np.allclose(C, C.T)


def test_crisp_consensus_measures_are_one():
    C = connectivity(np.array([0, 0, 1, 1, 1, 2, 2]))
    assert cophenetic_correlation(C) == 1.0
    assert dispersion(C) == 1.0
    assert consensus_silhouette(C, 3) == 1.0
    assert same_partition(consensus_clusters(C, 3), [0, 0, 1, 1, 1, 2, 2])


def test_dispersion_of_undecided_consensus_is_zero():
    C = np.full((6, 6), 0.5)
    assert dispersion(C) == pytest.approx(0.0)


def test_silhouette_matches_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    P = rng.random((20, 4))
    D = np.sqrt(((P[:, None] - P[None]) ** 2).sum(-1))
    labels = np.array([0] * 8 + [1] * 11 + [2])           # includes a singleton cluster
    ours = silhouette_widths(D, labels)
    ref = metrics.silhouette_samples(D, labels, metric="precomputed")
    assert np.allclose(ours, ref, atol=1e-12)
    with pytest.raises(ValueError, match="two clusters"):
        silhouette_widths(D, np.zeros(20))


def test_average_linkage_matches_scipy_without_ties():
    rng = np.random.default_rng(5)
    P = rng.random((30, 3))
    D = np.sqrt(((P[:, None] - P[None]) ** 2).sum(-1))
    ours = average_linkage(D)
    ref = linkage(squareform(D, checks=False), method="average")
    assert np.allclose(np.sort(ours[:, 2]), np.sort(ref[:, 2]), atol=1e-14)
    assert np.allclose(cophenet(ours), cophenet(ref), atol=1e-14)


# -- runs ----------------------------------------------------------------------------------------
def test_consensus_of_clustered_data_is_crisp(clustered_matrix):
    X, groups = clustered_matrix
    res = nmfkit.consensus(X, 3, n_runs=8, seed=1, n_jobs=1, progress=False)
    assert res.cophenetic == pytest.approx(1.0, abs=1e-9)
    assert res.dispersion == pytest.approx(1.0, abs=1e-9)
    assert res.silhouette == pytest.approx(1.0, abs=1e-9)
    assert same_partition(res.sample_clusters, groups)
    assert res.consensus.shape == (30, 30)                       # n×n only, never m×m
    assert res.best.W.shape == (60, 3) and res.feature_clusters.shape == (60,)
    assert res.objectives.shape == (8,) and res.best.loss == pytest.approx(res.objectives.min())
    assert res.assignments.shape == (8, 30)


def test_parallel_runs_reproduce_inline_runs():
    X, _ = planted(seed=2)
    a = nmfkit.consensus(X, 3, n_runs=6, seed=7, n_jobs=1, progress=False, max_iter=60)
    b = nmfkit.consensus(X, 3, n_runs=6, seed=7, n_jobs=2, progress=False, max_iter=60)
    assert np.array_equal(a.assignments, b.assignments)
    assert np.array_equal(a.objectives, b.objectives)
    c = nmfkit.consensus(X, 3, n_runs=6, seed=8, n_jobs=1, progress=False, max_iter=60)
    assert not np.array_equal(a.objectives, c.objectives)


def test_consensus_on_sparse_data():
    sp = pytest.importorskip("scipy.sparse")
    X, groups = planted(noise=0.0)
    res = nmfkit.consensus(sp.csr_matrix(X), 3, n_runs=4, seed=0, n_jobs=1, progress=False, max_iter=80)
    assert same_partition(res.sample_clusters, groups)


def test_consensus_refuses_bad_arguments():
    X, _ = planted()
    with pytest.raises(ValueError, match="deterministic"):
        nmfkit.consensus(X, 2, init="nndsvd", n_jobs=1)
    with pytest.raises(ValueError, match="n_jobs"):
        nmfkit.consensus(X, 2, n_runs=2, n_jobs=0)
    with pytest.raises(ValueError, match="solver"):
        nmfkit.consensus(X, 2, solver="nope", n_jobs=1)
    with pytest.raises(ValueError, match="rank"):
        nmfkit.consensus(X, 0, n_jobs=1)


# -- R parity ------------------------------------------------------------------------------------
R_MEASURES = r"""
suppressMessages(library(NMF))
args <- commandArgs(TRUE)
for (f in args) {
  C <- as.matrix(read.csv(f, header = FALSE)); dimnames(C) <- NULL
  k <- as.integer(sub(".*_k([0-9]+)\\.csv$", "\\1", f))
  hc <- hclust(as.dist(1 - C), method = "average")
  cl <- cutree(hc, k = k)
  si <- summary(cluster::silhouette(cl, dmatrix = 1 - C))$avg.width
  cat(sprintf("%.17g", c(cophcor(C), dispersion(C), si)), "|", cl, "|", sprintf("%.17g", sort(hc$height)), "\n")
}
"""


@pytest.fixture(scope="module")
def r_available():
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not found: install R (r-base-core) to compare with R NMF")
    probe = subprocess.run(["Rscript", "-e", "suppressMessages(library(NMF))"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("R package NMF not installed (apt-get install r-cran-nmf)")


@pytest.mark.r
def test_measures_agree_with_r_nmf(r_available, tmp_path):
    cases = []
    for seed in range(10):
        runs = (3, 5, 12, 30)[seed % 4]                      # few runs: many tied consensus values
        k = 2 + seed % 4
        C = consensus_matrix(noisy_assignments(n=20 + seed, runs=runs, k=k, agree=0.6 + 0.03 * seed, seed=seed))
        path = tmp_path / f"C{seed}_k{k}.csv"
        np.savetxt(path, C, fmt="%.17g", delimiter=",")
        cases.append((path, C, k))
    out = subprocess.run(["Rscript", "-e", R_MEASURES, *[str(p) for p, _, _ in cases]],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == len(cases)
    for (path, C, k), line in zip(cases, lines):
        values, clusters, heights = (part.split() for part in line.split("|"))
        coph, disp, sil = (float(v) for v in values)
        assert cophenetic_correlation(C) == pytest.approx(coph, abs=1e-12), path.name
        assert dispersion(C) == pytest.approx(disp, abs=1e-12), path.name
        assert consensus_silhouette(C, k) == pytest.approx(sil, abs=1e-12), path.name
        assert same_partition(consensus_clusters(C, k), np.array(clusters, dtype=int)), path.name
        ours = np.sort(average_linkage(1.0 - C)[:, 2])
        assert np.allclose(ours, np.array(heights, dtype=float), atol=1e-12), path.name


def test_connectivity_stop_follows_r_rule():
    from nmfkit.rank.consensus import ConnectivityStop, canonical_labels
    assert np.array_equal(canonical_labels([2, 2, 0, 1, 0]), [0, 0, 1, 2, 1])
    stop = ConnectivityStop(stopconv=2, check_interval=10)
    Ht = np.array([[1.0, 0.0], [0.0, 1.0]])
    def state(it, H):
        return type("S", (), {"iteration": it, "Ht": H})()
    assert not stop(state(5, Ht))                            # not a check iteration
    assert not stop(state(10, Ht))                           # first check
    assert not stop(state(20, Ht[:, ::-1]))                  # relabelled: same partition, unchanged 1
    assert not stop(state(30, Ht))                           # unchanged 2
    assert stop(state(40, Ht))                               # unchanged 3 > stopconv
    X, groups = planted()
    res = nmfkit.consensus(X, 3, n_runs=3, seed=0, n_jobs=1, progress=False, stop="connectivity")
    assert np.all(res.n_iter >= 410) and same_partition(res.sample_clusters, groups)
    with pytest.raises(ValueError, match="stop"):
        nmfkit.consensus(X, 3, n_runs=2, n_jobs=1, stop="never")


# -- plain scripts: worker processes would rerun a script's unguarded top level -----------------------
_SCRIPT = """
import numpy as np
import nmfkit
rng = np.random.default_rng(0)
X = rng.random((20, 2)) @ np.kron(np.eye(2), np.ones((1, 5))) + 0.01 * rng.random((20, 10))
print("top level")
{call}
"""


def _run_script(tmp_path, code):
    import os
    import subprocess
    import sys
    script = tmp_path / "plain.py"
    script.write_text(code)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": os.path.join(root, "src")}
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=300)


def test_script_without_main_guard_runs_inline_with_a_notice(tmp_path):
    done = _run_script(tmp_path, _SCRIPT.format(
        call=("res = nmfkit.consensus(X, 2, n_runs=4, seed=0, n_jobs=2, progress=False)\n"
              "print('done', round(res.cophenetic, 6))")))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("top level") == 1 and "done 1.0" in done.stdout
    notice = [line for line in done.stderr.splitlines() if line.startswith("nmfkit:")]
    assert len(notice) == 1 and "plain.py" in notice[0] and 'if __name__ == "__main__":' in notice[0]
    assert "line 7" in notice[0]


def test_script_with_main_guard_uses_worker_processes(tmp_path):
    done = _run_script(tmp_path, _SCRIPT.format(
        call="if __name__ == '__main__':\n"
             "    res = nmfkit.consensus(X, 2, n_runs=4, seed=0, n_jobs=2, progress=False)\n"
             "    print('done', round(res.cophenetic, 6))"))
    assert done.returncode == 0, done.stderr
    assert "done 1.0" in done.stdout and "nmfkit:" not in done.stderr
    # worker processes import the script again (its top level, not the guarded call): proof they were started
    assert done.stdout.count("top level") > 1 and done.stdout.count("done") == 1


def test_unguarded_line_is_none_outside_a_script():
    from nmfkit.rank.consensus import unguarded_script_line
    assert unguarded_script_line() is None        # pytest's __main__ finished its top level long ago


def test_broken_worker_pool_finishes_the_runs_inline(monkeypatch, capsys):
    import importlib
    from concurrent.futures.process import BrokenProcessPool
    module = importlib.import_module("nmfkit.rank.consensus")

    class BrokenPool:
        def __init__(self, X, jobs):
            self.X = X

        @property
        def executor(self):
            raise BrokenProcessPool("a worker died while starting")

        def close(self):
            pass

    monkeypatch.setattr(module, "RunPool", BrokenPool)
    monkeypatch.setattr(module, "unguarded_script_line", lambda: None)
    X, _ = planted(m=20, n=10, k=2, noise=0.01, seed=0)
    res = nmfkit.consensus(X, 2, n_runs=4, seed=0, n_jobs=2, progress=False)
    inline = nmfkit.consensus(X, 2, n_runs=4, seed=0, n_jobs=1, progress=False)
    assert np.array_equal(res.assignments, inline.assignments) and res.n_runs == 4
    assert "worker processes failed (BrokenProcessPool: a worker died while starting)" in capsys.readouterr().err
