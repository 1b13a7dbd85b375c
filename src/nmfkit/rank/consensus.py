"""Many runs, one answer: the consensus matrix and its stability measures.

For r independent fits with sample assignments c⁽ᵗ⁾_j = argmax_k H⁽ᵗ⁾_kj,

    connectivity  M⁽ᵗ⁾_ij = 1[c⁽ᵗ⁾_i = c⁽ᵗ⁾_j]          (n×n, Brunet et al. 2004)
    consensus     C = (1/r) Σ_t M⁽ᵗ⁾
    cophenetic    Pearson correlation of the condensed 1 − C with the cophenetic
                  distances of its average-linkage (UPGMA) tree; 1 when C is
                  exactly block-diagonal with zeros elsewhere
    dispersion    Σ_ij 4 (C_ij − ½)² / n²                    (Kim & Park 2007)
    silhouette    mean silhouette width of the clusters cut from that tree at
                  k = rank, with dissimilarity 1 − C           (Rousseeuw 1987)

These are R NMF 0.25's `consensus`, `cophcor`, `dispersion` and
`silhouette(fit, what="consensus")` definitions.

Several data sets (a list or dict of cells × genes matrices sharing their genes): each run is an
iNMF (`nmfkit.joint.inmf`, Welch et al. 2019) and assigns every cell of every data set to its
largest loading, c⁽ᵗ⁾_j = argmax_k (H_i)_jk; the consensus is then over the cells of all data
sets together (in data-set order), so a stable joint clustering gives a crisp C.

Cost: r fits (run in parallel processes, each with one BLAS thread) plus
O(r n²) to accumulate C and O(n² log n) for the tree.  Memory is
O((m + n) k + n²): only the best fit's factors and the n×n consensus are kept —
never a feature-by-feature (m×m) matrix.
"""
from __future__ import annotations

import ast
import contextlib
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import numpy as np
from scipy.cluster.hierarchy import cophenet, cut_tree
from scipy.spatial.distance import squareform

from ..progress import Progress
from ..registry import DETERMINISTIC_INITS
from ..result import Factorization
from ..validation import check_matrix, check_positive_int, check_rank, check_seed, choose, spawn_runs
from .hclust import average_linkage


# -- measures on a consensus matrix --------------------------------------------------------------
def connectivity(labels) -> np.ndarray:
    """M_ij = 1 when samples i and j share a cluster label (n×n float64)."""
    labels = np.asarray(labels)
    return (labels[:, None] == labels[None, :]).astype(np.float64)


def consensus_matrix(assignments) -> np.ndarray:
    """Mean connectivity over runs; `assignments` is r×n (one label row per run)."""
    A = np.atleast_2d(np.asarray(assignments))
    C = np.zeros((A.shape[1], A.shape[1]))
    for labels in A:
        C += labels[:, None] == labels[None, :]
    return C / A.shape[0]


def _dissimilarity(C) -> np.ndarray:
    D = 1.0 - np.asarray(C, dtype=np.float64)
    np.fill_diagonal(D, 0.0)
    return D


def consensus_linkage(C) -> np.ndarray:
    """Average-linkage tree of the dissimilarity 1 − C (SciPy linkage matrix, R's merge order)."""
    return average_linkage(_dissimilarity(C))


def cophenetic_correlation(C) -> float:
    """Pearson correlation between 1 − C and the cophenetic distances of its UPGMA tree."""
    C = np.asarray(C, dtype=np.float64)
    n = C.shape[0]
    if n < 2:
        return float("nan")
    upper = C[np.triu_indices(n, 1)]
    if np.all(upper == 0) and np.all(np.diag(C) == C[0, 0]):
        return 1.0                    # perfectly separated runs (R's special case)
    D = _dissimilarity(C)
    d = squareform(D, checks=False)
    coph = cophenet(average_linkage(D))
    if np.ptp(d) == 0 or np.ptp(coph) == 0:
        return float("nan")           # no variation: the correlation is undefined
    return float(np.corrcoef(d, coph)[0, 1])


def dispersion(C) -> float:
    """Kim & Park (2007) dispersion Σ 4(C_ij − ½)²/n², in [0, 1]; 1 for a crisp consensus."""
    C = np.asarray(C, dtype=np.float64)
    return float(np.sum(4.0 * (C - 0.5) ** 2) / C.shape[0] ** 2)


def consensus_clusters(C, k: int, tree=None) -> np.ndarray:
    """Clusters cut from the average-linkage tree of 1 − C at k groups (R's `cutree`).

    Labels are 0-based and numbered by first appearance among the samples."""
    tree = consensus_linkage(C) if tree is None else tree
    k = min(int(k), np.asarray(C).shape[0])
    return canonical_labels(cut_tree(tree, n_clusters=k).ravel())


def silhouette_widths(D, labels) -> np.ndarray:
    """Silhouette width s_i = (b_i − a_i)/max(a_i, b_i) for a dissimilarity matrix D.

    a_i: mean dissimilarity to the other members of i's cluster; b_i: the smallest
    mean dissimilarity to another cluster.  Singletons get 0 (Rousseeuw 1987;
    `cluster::silhouette`).  Needs at least two clusters."""
    D = np.asarray(D, dtype=np.float64)
    labels = np.asarray(labels)
    names, idx = np.unique(labels, return_inverse=True)
    if names.size < 2:
        raise ValueError("silhouette needs at least two clusters")
    onehot = np.zeros((labels.size, names.size))
    onehot[np.arange(labels.size), idx] = 1.0
    sizes = onehot.sum(axis=0)
    sums = D @ onehot                                   # n × clusters: Σ_j∈c D_ij
    own = sums[np.arange(labels.size), idx]
    own_size = sizes[idx]
    a = np.divide(own, own_size - 1, out=np.zeros_like(own), where=own_size > 1)
    mean_other = sums / sizes
    mean_other[np.arange(labels.size), idx] = np.inf
    b = mean_other.min(axis=1)
    top = np.maximum(a, b)
    s = np.divide(b - a, top, out=np.zeros_like(a), where=top > 0)
    s[own_size == 1] = 0.0
    return s


def consensus_silhouette(C, k: int, tree=None) -> float:
    """Mean silhouette width of the k consensus clusters under dissimilarity 1 − C (NaN if < 2 clusters)."""
    labels = consensus_clusters(C, k, tree)
    if np.unique(labels).size < 2:
        return float("nan")
    return float(np.mean(silhouette_widths(1.0 - np.asarray(C, dtype=np.float64), labels)))


# -- the runs ------------------------------------------------------------------------------------
@dataclass
class ConsensusResult:
    """Outcome of `consensus`: the n×n consensus matrix and its stability measures."""
    rank: int
    consensus: np.ndarray
    cophenetic: float
    dispersion: float
    silhouette: float
    sample_clusters: np.ndarray        # consensus clusters (cut of the UPGMA tree at k)
    feature_clusters: np.ndarray       # argmax of each row of the best fit's W
    assignments: np.ndarray            # r×n per-run sample assignments (argmax of H columns)
    best: Factorization
    objectives: np.ndarray             # every run's final objective, in run order
    n_iter: np.ndarray
    seconds: float
    options: dict = field(default_factory=dict)

    @property
    def n_runs(self) -> int:
        return int(self.objectives.size)

    def linkage(self) -> np.ndarray:
        """Average-linkage tree of 1 − consensus (for dendrograms and ordering)."""
        return consensus_linkage(self.consensus)

    def summary(self) -> dict:
        return {"rank": self.rank, "n_runs": self.n_runs, "cophenetic": self.cophenetic,
                "dispersion": self.dispersion, "silhouette": self.silhouette,
                "objective_min": float(self.objectives.min()), "objective_mean": float(self.objectives.mean()),
                "seconds": self.seconds}

    def plot(self, labels=None, **kwargs):
        """Consensus heatmap ordered by the dendrogram (see `nmfkit.rank.plots.consensus_heatmap`)."""
        from .plots import consensus_heatmap
        return consensus_heatmap(self, labels=labels, **kwargs)

    def __repr__(self):
        return (f"ConsensusResult(rank {self.rank}, {self.n_runs} runs: cophenetic {self.cophenetic:.5f}, "
                f"dispersion {self.dispersion:.5f}, silhouette {self.silhouette:.5f})")


CONSENSUS_TOL = 1e-5     # per-run relative-decrease stop of consensus runs (see `consensus`)
_WORKER_X = None
_WORKER_LIMITS = None


def _init_worker(X):
    """Process-pool initializer: keep X once per worker; one BLAS and one Numba thread per process
    (the processes already fill the cores; more threads only contend)."""
    global _WORKER_X, _WORKER_LIMITS
    _WORKER_X = X
    import numba
    numba.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
        _WORKER_LIMITS = threadpool_limits(1)
    except ImportError:       # optional: without it BLAS may oversubscribe the cores
        _WORKER_LIMITS = None


class RunPool:
    """Worker processes that hold X once and run fits on it, reusable across `consensus` calls
    (a rank survey starts the processes once, not once per rank: ~1.3 s each on 2 cores).

    "forkserver", not "fork": forking a process whose Numba/OpenMP threads are running
    can deadlock or abort (GNU OpenMP refuses it)."""

    def __init__(self, X, jobs: int):
        self.X, self.jobs = X, jobs
        self.executor = ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(X,),
                                            mp_context=multiprocessing.get_context("forkserver"))

    def close(self):
        self.executor.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @classmethod
    def shared(cls, X, n_jobs, n_runs):
        """A pool for surveys of `n_runs` runs per rank on X, or a null context where
        `n_jobs` sends the runs inline (pass either as `consensus(pool=...)`)."""
        jobs = resolve_jobs(n_jobs, n_runs)
        return cls(X, jobs) if jobs > 1 else contextlib.nullcontext()


def canonical_labels(labels) -> np.ndarray:
    """Relabel clusters by first appearance: equal outputs ⇔ equal partitions (equal connectivity)."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank_of = np.empty(first.size, dtype=np.int64)
    rank_of[np.argsort(first)] = np.arange(first.size)
    return rank_of[inverse]


class ConnectivityStop:
    """R NMF's default stop (`nmf.stop.connectivity`) as a fit callback.

    Every `check_interval` iterations the sample assignments argmax_k H_kj are
    compared with the last check's; the fit stops once the connectivity matrix
    has stayed the same for more than `stopconv` consecutive checks."""

    def __init__(self, stopconv=40, check_interval=10):
        self.stopconv, self.check_interval = stopconv, check_interval
        self.previous, self.unchanged = None, 0

    @staticmethod
    def loadings(state):
        """Samples × components: Hᵀ (samples are the columns of X)."""
        return state.Ht

    def __call__(self, state) -> bool:
        if state.iteration % self.check_interval:
            return False
        labels = canonical_labels(np.argmax(self.loadings(state), axis=1))
        if self.previous is not None and np.array_equal(labels, self.previous):
            self.unchanged += 1
        else:
            self.previous, self.unchanged = labels, 0
        return self.unchanged > self.stopconv


class CellConnectivityStop(ConnectivityStop):
    """`ConnectivityStop` for iNMF runs: the samples are the cells, the rows of the stacked H_i (the
    driver's W)."""

    @staticmethod
    def loadings(state):
        return state.W


def _fit_runs(X, rank, seeds, fit_kwargs):
    """Fit once per seed (an iNMF when X is several data sets); return (run index, labels, objective,
    n_iter, result) per run: a sample's label is its largest loading (for iNMF, every data set's cells
    in data-set order)."""
    from ..fit import fit
    from ..joint import inmf
    X = _WORKER_X if X is None else X
    kwargs = dict(fit_kwargs)
    stop = kwargs.pop("stop", "tol")
    several = _several(X)
    out = []
    for index, seed in seeds:
        if stop == "connectivity":
            kwargs.update(tol=0, callback=CellConnectivityStop() if several else ConnectivityStop())
        if several:
            r = inmf(X, rank, seed=seed, **kwargs)
            labels = np.concatenate([np.argmax(H, axis=1) for H in r.H])
        else:
            r = fit(X, rank, seed=seed, **kwargs)
            labels = np.argmax(r.H, axis=0)
        out.append((index, labels, r.loss, r.n_iter, r))
    return out


_NOTICED = set()


def _notice(text, key=None):
    """A one-line notice on stderr, once per process for each `key` (default: the text)."""
    key = text if key is None else key
    if key not in _NOTICED:
        _NOTICED.add(key)
        print(f"nmfkit: {text}", file=sys.stderr, flush=True)


def _is_main_guard(test) -> bool:
    """`__name__ == "__main__"` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(x, ast.Name) and x.id == "__name__" for x in sides)
            and any(isinstance(x, ast.Constant) and x.value == "__main__" for x in sides))


def unguarded_script_line():
    """The line of the running script (`__main__` with a file) from which nmfkit was called, when
    that line lies outside an `if __name__ == "__main__":` block; else None.

    Worker processes started with "forkserver" or "spawn" import the script again, so such a
    line would run again inside them (and try to start workers of its own)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path:
        return None                        # an interactive session or a notebook: nothing is re-imported
    line, frame = None, sys._getframe(1)
    while frame is not None:
        if frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
        frame = frame.f_back
    if line is None:
        return None                        # called after the script's top level finished
    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return line                        # the script cannot be read: assume no guard
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_guard(node.test) and node.body:
            if node.body[0].lineno <= line <= node.body[-1].end_lineno:
                return None
    return line


def resolve_jobs(n_jobs, n_tasks) -> int:
    """Worker processes to use for `n_tasks` tasks: 1 (inline) when `n_jobs` is 1 or when worker
    processes cannot start from here (a daemonic process, or a script's unguarded top level)."""
    if n_jobs is None or n_jobs == 1:
        return 1
    if isinstance(n_jobs, (bool, np.bool_)) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a positive integer or -1 (all cores); got {n_jobs!r}")
    cores = os.cpu_count() or 1
    jobs = max(1, min(cores + 1 + n_jobs if n_jobs < 0 else n_jobs, n_tasks))
    if jobs > 1 and multiprocessing.current_process().daemon:
        return 1                           # a worker process cannot start workers of its own
    if jobs > 1:
        line = unguarded_script_line()
        if line is not None:
            _notice(f"running the runs in this process (n_jobs=1): worker processes would rerun "
                    f"{os.path.basename(sys.modules['__main__'].__file__)} from the top; to use {jobs} "
                    f"processes, put line {line} and below under `if __name__ == \"__main__\":`", key="unguarded")
            return 1
    return jobs


def check_consensus_runs(n_runs) -> int:
    """`n_runs` of a consensus: at least 2, since one run agrees with itself perfectly."""
    n_runs = check_positive_int(n_runs, "n_runs")
    if n_runs < 2:
        raise ValueError(f"consensus needs at least 2 runs (one run always agrees with itself); got n_runs={n_runs}")
    return n_runs


def run_seeds(seed, n_runs):
    """One integer seed per run, spawned from one SeedSequence: the same whatever n_jobs is."""
    return [int(c.generate_state(1, dtype=np.uint64)[0]) for c in spawn_runs(seed, n_runs)]


def _run_all(fit_runs, X, rank, seeds, kwargs, jobs, pool, collect, finished):
    """Every run of `seeds` through `fit_runs`, inline (jobs = 1) or in worker processes, each batch of
    results passed to `collect`; runs left when the workers fail are run here."""
    if jobs == 1:
        for item in seeds:
            collect(fit_runs(X, rank, [item], kwargs))
        return
    # several runs per task amortise the inter-process overhead, yet keep the load balanced
    n_runs = len(seeds)
    per_task = max(1, n_runs // (4 * jobs))
    chunks = [seeds[i:i + per_task] for i in range(0, n_runs, per_task)]
    own = pool is None or pool.X is not X
    runner = None
    try:
        runner = RunPool(X, jobs) if own else pool
        futures = [runner.executor.submit(fit_runs, None, rank, chunk, kwargs) for chunk in chunks]
        for fut in as_completed(futures):
            collect(fut.result())
    except (BrokenProcessPool, OSError) as exc:
        _notice(f"worker processes failed ({type(exc).__name__}: {exc}); "
                "running the remaining runs in this process", key="broken")
        for item in seeds:
            if item[0] not in finished:
                collect(fit_runs(X, rank, [item], kwargs))
    finally:
        if own and runner is not None:
            runner.close()


def consensus(X, rank, n_runs=30, solver=None, loss=None, seed=None, n_jobs=-1, progress=True,
              init="random", stop="tol", pool=None, progress_label=None, **fit_kwargs) -> ConsensusResult:
    """Run `n_runs` independent fits of rank `rank` and summarise their agreement.

    Each run is `nmfkit.fit(X, rank, solver=…, loss=…, init=…, seed=s_t)` with
    s_t spawned from `numpy.random.SeedSequence(seed)`, so results do not depend
    on `n_jobs`.  Runs go to `n_jobs` processes (-1: all cores; 1: inline).
    `init` must be random ("random" or "nndsvdar"): deterministic starts would
    make every run identical.  `stop="tol"` uses fit's relative-decrease rule
    (`tol=`, default 1e-5 here: with fit's 1e-4 runs stop before their assignments
    settle, and the cophenetic curve gets noisy); `stop="connectivity"` is R NMF's
    default: stop once the sample
    assignments have not changed for 40 checks made every 10 iterations
    (up to `max_iter`).  `pool`: a `RunPool` on the same X to reuse its worker
    processes (as `estimate_rank` does across ranks).  `progress` shows the runs done (a line in a
    terminal, a display in Jupyter, a line every 10 s in a log; see `nmfkit.progress`), headed by
    `progress_label` (default "consensus k=<rank>").  Other keyword arguments go to `nmfkit.fit`.
    Returns a `ConsensusResult` (consensus matrix, cophenetic, dispersion,
    silhouette, sample and feature clusters, best fit, every run's objective).
    `solver` and `loss` default to "mu" and "kl".

    Several data sets: `X` a list or dict of matrices, cells × genes, sharing their genes (columns),
    as `nmfkit.joint.inmf` takes them.  Each run is `inmf(X, rank, seed=s_t, …)` and assigns each
    cell to its largest loading in H_i; the consensus is over the cells of all data sets, in
    data-set order (`options["datasets"]` gives each one's name and number of cells).
    `feature_clusters` are the genes' largest components in the best run's shared W, `best` is
    that run's `INMFResult`.  Keyword arguments go to `inmf` (lam, max_iter, tol, time_limit,
    unshared); `stop="tol"` keeps inmf's own tol unless given.  iNMF fits its own Frobenius
    objective from its own seeded start, so solver=, loss= and init= do not apply.
    """
    if _several(X):
        return _integrative_consensus(X, rank, n_runs, solver, loss, seed, n_jobs, progress, init, stop, pool,
                                      progress_label, fit_kwargs)
    solver = "mu" if solver is None else solver
    loss = "kl" if loss is None else loss
    X = check_matrix(X, "X")
    rank = check_rank(rank, X.shape)
    n_runs = check_consensus_runs(n_runs)
    seed = check_seed(seed)
    if isinstance(init, str) and init in DETERMINISTIC_INITS:
        raise ValueError(f"consensus needs random starts, but init={init!r} is deterministic; "
                         "use init='random' or 'nndsvdar'")
    if not isinstance(init, str):
        raise TypeError("consensus needs a random init method name ('random' or 'nndsvdar'), not given factors")
    for bad in ("n_runs", "callback"):
        if bad in fit_kwargs:
            raise TypeError(f"consensus does not pass {bad}= to the individual fits")
    stop = choose(stop, ("tol", "connectivity"), "stop")
    if stop == "connectivity" and "tol" in fit_kwargs:
        raise TypeError("stop='connectivity' replaces tol=; pass one or the other")
    if stop == "tol":
        fit_kwargs.setdefault("tol", CONSENSUS_TOL)
    kwargs = dict(solver=solver, loss=loss, init=init, **fit_kwargs)
    # fail early, in this process, on a bad solver/loss/option combination
    from ..fit import fit
    fit(X, rank, seed=0, **{**kwargs, "max_iter": 1, "tol": 0})
    kwargs["stop"] = stop

    seeds = list(enumerate(run_seeds(seed, n_runs)))
    jobs = resolve_jobs(n_jobs, n_runs)
    bar = Progress(n_runs, progress_label or f"consensus k={rank}", "runs", enabled=progress)
    started = time.perf_counter()
    n = X.shape[1]
    assignments = np.zeros((n_runs, n), dtype=np.int64)
    objectives = np.zeros(n_runs)
    n_iter = np.zeros(n_runs, dtype=np.int64)
    best, best_key, done, finished = None, None, 0, set()

    def collect(batch):
        # keep only the best run's factors: memory stays O((m + n) k + r n)
        nonlocal best, best_key, done
        for index, labels, objective, iters, f in batch:
            finished.add(index)
            assignments[index], objectives[index], n_iter[index] = labels, objective, iters
            if best_key is None or (objective, index) < best_key:   # first run among equal minima
                best, best_key = f, (objective, index)
            done += 1
        bar.update(done)

    with bar:
        _run_all(_fit_runs, X, rank, seeds, kwargs, jobs, pool, collect, finished)
    C = consensus_matrix(assignments)
    tree = consensus_linkage(C)
    return ConsensusResult(
        rank=rank, consensus=C, cophenetic=cophenetic_correlation(C), dispersion=dispersion(C),
        silhouette=consensus_silhouette(C, rank, tree), sample_clusters=consensus_clusters(C, rank, tree),
        feature_clusters=np.argmax(best.W, axis=1), assignments=assignments, best=best,
        objectives=objectives, n_iter=n_iter, seconds=time.perf_counter() - started,
        options={"n_runs": n_runs, "seed": seed, **{k: v for k, v in kwargs.items()}})


# -- several data sets: iNMF runs ------------------------------------------------------------------
INMF_OPTIONS = ("lam", "max_iter", "tol", "time_limit", "unshared")


def _several(X) -> bool:
    """Whether X is several data sets: a dict, or a list or tuple of 2-D matrices or paths (a list of rows
    or of 1-D arrays is one matrix)."""
    if isinstance(X, dict):
        return True
    if not isinstance(X, (list, tuple)) or not X:
        return False
    return all(isinstance(x, (str, os.PathLike)) or getattr(x, "ndim", None) == 2 or hasattr(x, "read")
               for x in X)


def check_integrative_options(what, solver, loss, init, fit_kwargs, allowed=INMF_OPTIONS):
    """Refuse, in one line each, what an integrative (iNMF) rank tool cannot honour."""
    if solver not in (None, "inmf"):
        raise ValueError(f"{what} of several data sets runs iNMF (block coordinate descent on its Frobenius "
                         f"objective); solver={solver!r} does not apply")
    if loss not in (None, "frobenius"):
        raise ValueError(f"{what} of several data sets runs iNMF, whose objective is the Frobenius loss; "
                         f"loss={loss!r} is not defined for it")
    if init != "random":
        raise ValueError(f"{what} of several data sets starts each iNMF run from its own seeded joint NMF; "
                         f"init={init!r} does not apply")
    unknown = sorted(set(fit_kwargs) - set(allowed))
    if unknown:
        raise TypeError(f"{what} of several data sets passes {', '.join(allowed)} to iNMF; "
                        f"got {', '.join(unknown)}")


def _integrative_consensus(Xs, rank, n_runs, solver, loss, seed, n_jobs, progress, init, stop, pool, progress_label,
                           fit_kwargs) -> ConsensusResult:
    """`consensus` of several data sets: the cells of all of them, clustered by repeated iNMF runs."""
    from ..joint import _engines, shared_features
    from ..validation import check_nonneg_float
    check_integrative_options("consensus", solver, loss, init, fit_kwargs)
    names, engines, _ = _engines(Xs, "X")
    g = shared_features(names, [e.shape for e in engines])
    rank = check_rank(rank, (max(e.shape[0] for e in engines), g))
    n_runs = check_consensus_runs(n_runs)
    seed = check_seed(seed)
    stop = choose(stop, ("tol", "connectivity"), "stop")
    if stop == "connectivity" and "tol" in fit_kwargs:
        raise TypeError("stop='connectivity' replaces tol=; pass one or the other")
    for name in ("lam", "tol", "time_limit"):
        if name in fit_kwargs and fit_kwargs[name] is not None:
            check_nonneg_float(fit_kwargs[name], name)
    if "max_iter" in fit_kwargs:
        check_positive_int(fit_kwargs["max_iter"], "max_iter")
    kwargs = {**fit_kwargs, "stop": stop}
    seeds = list(enumerate(run_seeds(seed, n_runs)))
    sizes = [e.shape[0] for e in engines]
    assignments = np.zeros((n_runs, sum(sizes)), dtype=np.int64)
    objectives, n_iter = np.zeros(n_runs), np.zeros(n_runs, dtype=np.int64)
    best, best_key, finished = None, None, set()
    bar = Progress(n_runs, progress_label or f"consensus (iNMF) k={rank}", "runs", enabled=progress)
    started = time.perf_counter()

    def collect(batch):
        nonlocal best, best_key
        for index, labels, objective, iters, r in batch:
            finished.add(index)
            assignments[index], objectives[index], n_iter[index] = labels, objective, iters
            if best_key is None or (objective, index) < best_key:
                best, best_key = r, (objective, index)
        bar.update(len(finished))

    with bar:
        _run_all(_fit_runs, Xs, rank, seeds, kwargs, resolve_jobs(n_jobs, n_runs), pool, collect, finished)
    C = consensus_matrix(assignments)
    tree = consensus_linkage(C)
    return ConsensusResult(
        rank=rank, consensus=C, cophenetic=cophenetic_correlation(C), dispersion=dispersion(C),
        silhouette=consensus_silhouette(C, rank, tree), sample_clusters=consensus_clusters(C, rank, tree),
        feature_clusters=np.argmax(best.W, axis=0), assignments=assignments, best=best,
        objectives=objectives, n_iter=n_iter, seconds=time.perf_counter() - started,
        options={"n_runs": n_runs, "seed": seed, "model": "inmf", "datasets": dict(zip(names, sizes)),
                 **{k: v for k, v in kwargs.items() if k != "unshared"}})
