"""scikit-learn's own NMF test suite, run against nmfkit's estimators.

The installed scikit-learn's `sklearn.decomposition.tests.test_nmf` runs in a subprocess in
which `sklearn.decomposition.NMF`, `MiniBatchNMF` and `non_negative_factorization` are nmfkit's
(substituted before the module is imported; nothing of scikit-learn's file is copied here).
The module's calls of scikit-learn's private helpers `_initialize_nmf` and `_beta_divergence`
go to nmfkit's initialisations and divergences.  Deliberate differences are listed once, in
EXPECTED_FAILURES (strict: a difference that disappears fails the run, so the list stays
true); tests of scikit-learn's own internals are in NOT_APPLICABLE.  Everything else must pass.
"""
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import types
from collections import Counter
from pathlib import Path

import pytest

SUITE = "sklearn.decomposition.tests.test_nmf"
DOCS = "docs/coming-from-sklearn.md"

# test name (or name[parameters]) -> (reason, docs anchor)
EXPECTED_FAILURES = {
    "test_n_components_greater_n_features": (
        "nmfkit refuses more components than min(n_samples, n_features)",
        f"{DOCS}#rank-at-most-min-of-n_samples-and-n_features"),
    "test_minibatch_nmf_partial_fit": (
        "scikit-learn's MiniBatchNMF writes its updates into the H array the caller passed, and the test "
        "compares that array with itself; nmfkit never modifies its inputs",
        f"{DOCS}#inputs-are-never-modified"),
    "test_beta_divergence": (
        "for beta <= 0 the divergence of a zero entry of X is +inf, as defined; scikit-learn's "
        "_beta_divergence leaves those entries' logarithm out",
        f"{DOCS}#divergences-at-zero-entries"),
    "test_nmf_multiplicative_update_sparse": (
        "for the Frobenius loss the returned W is the exact minimiser for the final H, for other losses "
        "the multiplicative updates continued from the solver's W, so W is not continuous in beta_loss at 2",
        f"{DOCS}#fit_transform-returns-the-best-w-for-the-final-components"),
    "test_nmf_float32_float64_consistency[NMF-solver0]": (
        "nmfkit stops on the relative decrease of the objective: on this exactly factorable matrix float64 "
        "keeps improving until max_iter while float32 stops at its rounding floor, so the dtypes stop at "
        "different iterates",
        f"{DOCS}#stopping-rule"),
}

# tests of scikit-learn's internal helpers that have no nmfkit counterpart -> reason
NOT_APPLICABLE = {
    "test_special_sparse_dot": "tests scikit-learn's private sparse product helper `_special_sparse_dot`",
}

GROUPS = ("NMF", "MiniBatchNMF", "non_negative_factorization")


def _suite_available():
    try:
        return importlib.util.find_spec(SUITE) is not None
    except ModuleNotFoundError:
        return False


# -- the subprocess side --------------------------------------------------------------------------
def _private_helpers():
    """nmfkit's initialisations and divergences under scikit-learn's private names."""
    import numpy as np
    from sklearn.utils.validation import check_array, check_non_negative

    from nmfkit.engines import make_engine
    from nmfkit.registry import INITS
    from nmfkit.validation import check_matrix, check_seed

    def _initialize_nmf(X, n_components, init=None, eps=1e-6, random_state=None):
        X = check_array(X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32])
        check_non_negative(X, "NMF initialization")
        init = "nndsvda" if init is None else init
        if init.startswith("nndsvd") and n_components > min(X.shape):
            raise ValueError(f"init = '{init}' can only be used when n_components <= min(n_samples, n_features)")
        engine = make_engine(check_matrix(X))
        seed = check_seed(random_state, "random_state")
        W, Ht = INITS[init](engine, n_components, np.random.default_rng(np.random.SeedSequence(seed)))
        return W, np.ascontiguousarray(Ht.T)

    def _beta_divergence(X, W, H, beta, square_root=False):
        names = {"frobenius": 2.0, "kullback-leibler": 1.0, "itakura-saito": 0.0}
        beta = names.get(beta, beta)
        engine = make_engine(check_matrix(X, allow_zero=True))
        Ht = np.ascontiguousarray(H.T, dtype=engine.dtype)
        W = np.ascontiguousarray(W, dtype=engine.dtype)
        if beta == 2:
            value = engine.frobenius_exact(W, Ht)
        elif beta == 1:
            value = engine.kl_divergence(W, Ht)
        else:
            value = engine.beta_divergence(W, Ht, beta)
        return float(np.sqrt(2 * value)) if square_root else float(value)

    module = types.ModuleType("nmfkit_private_helpers")
    module._initialize_nmf, module._beta_divergence = _initialize_nmf, _beta_divergence
    return module


def _groups(item):
    """Which of NMF, MiniBatchNMF, non_negative_factorization an item exercises."""
    source = inspect.getsource(item.function)
    used = {"non_negative_factorization"} if re.search(r"\b(non_negative_factorization|nnmf)\(", source) else set()
    estimator = getattr(getattr(item, "callspec", None), "params", {}).get("Estimator")
    if estimator is not None:
        return used | {estimator.__name__}
    if re.search(r"\bMiniBatchNMF\(", source):
        used.add("MiniBatchNMF")
    if re.search(r"(?<![\w.])NMF\(", source):
        used.add("NMF")
    return used or {"internal helpers"}


class SuitePlugin:
    """Marks the listed differences and records every item's outcome and groups in a JSON file."""

    def __init__(self, report_path):
        self.report_path, self.groups, self.outcomes = report_path, {}, {}

    def pytest_collection_modifyitems(self, items):
        for item in items:
            self.groups[item.nodeid] = sorted(_groups(item))
            for key in (item.name, item.originalname):
                if key in EXPECTED_FAILURES:
                    reason, anchor = EXPECTED_FAILURES[key]
                    item.add_marker(pytest.mark.xfail(reason=f"{reason} ({anchor})", strict=True))
                    break
                if key in NOT_APPLICABLE:
                    item.add_marker(pytest.mark.skip(reason=NOT_APPLICABLE[key]))
                    break

    def pytest_runtest_logreport(self, report):
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "failed"
        elif report.failed:
            outcome = "failed"
        elif report.skipped:
            outcome = "skipped"
        elif report.when == "call":
            outcome = "passed"
        else:
            return
        if outcome == "failed" or report.when == "call" or outcome in ("skipped", "xfailed"):
            previous = self.outcomes.get(report.nodeid)
            if previous != "failed":
                self.outcomes[report.nodeid] = outcome

    def pytest_sessionfinish(self):
        Path(self.report_path).write_text(json.dumps({"groups": self.groups, "outcomes": self.outcomes}))


def run_suite(report_path, *pytest_args):
    """Substitute nmfkit's estimators into scikit-learn, then run scikit-learn's NMF tests."""
    import sklearn.decomposition

    import nmfkit.sklearn

    for name in GROUPS:
        setattr(sklearn.decomposition, name, getattr(nmfkit.sklearn, name))
    sklearn.decomposition._nmf = _private_helpers()       # what `from sklearn.decomposition import _nmf` gets
    return pytest.main(["--pyargs", SUITE, "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "-o", "addopts=",
                        "-W", "ignore::pytest.PytestAssertRewriteWarning", *pytest_args],
                       plugins=[SuitePlugin(report_path)])


# -- the test side --------------------------------------------------------------------------------
def run_in_subprocess(tmp):
    """Run the suite in a fresh interpreter; its report (groups and outcomes) and its log."""
    report = tmp / "report.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
               PYTHONDONTWRITEBYTECODE="1")       # no caches written into the installed scikit-learn
    env.pop("PYTEST_ADDOPTS", None)               # the outer run's options (e.g. -n 2) are not the suite's
    code = "import sys, test_sklearn_suite as s; sys.exit(s.run_suite(sys.argv[1]))"
    out = subprocess.run([sys.executable, "-c", code, str(report)], cwd=tmp, env=env, capture_output=True,
                         text=True, timeout=900)
    if not report.exists():
        pytest.fail(f"scikit-learn's suite did not run (exit {out.returncode}):\n"
                    f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    data = json.loads(report.read_text())
    data["log"] = out.stdout
    return data


def counts(data, group):
    """Outcome counts of the items that exercise `group`."""
    return Counter(outcome for nodeid, outcome in data["outcomes"].items() if group in data["groups"].get(nodeid, ()))


def test_scikit_learn_suite_passes(tmp_path):
    # one test, so that a parallel run (pytest -n) runs the suite once
    if not _suite_available():
        pytest.skip(f"the installed scikit-learn does not ship its tests ({SUITE})")
    suite = run_in_subprocess(tmp_path)
    failed = sorted(n for n, o in suite["outcomes"].items() if o == "failed")
    for group in GROUPS + ("internal helpers",):
        print(f"{group}: {dict(counts(suite, group))}")
    assert not failed, f"{len(failed)} of scikit-learn's tests fail:\n" + "\n".join(failed[:40]) + \
        "\n" + suite["log"][-6000:]
    for group in GROUPS:
        assert counts(suite, group)["passed"] > 0, f"no test of scikit-learn's suite ran {group}"
    names = {re.sub(r"^.*::", "", n) for n in suite["outcomes"]}
    stale = [key for key in EXPECTED_FAILURES.keys() | NOT_APPLICABLE.keys()
             if not any(n == key or n.split("[")[0] == key for n in names)]
    assert not stale, f"entries that match no test of scikit-learn's suite any more: {stale}"


def test_every_expected_failure_links_the_docs():
    text = (Path(__file__).parents[2] / DOCS).read_text()
    anchors = set(re.findall(r"^#+ (.+)$", text, flags=re.M))
    slugs = {re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", a).strip().lower()) for a in anchors}
    for reason, link in EXPECTED_FAILURES.values():
        assert link.split("#")[1] in slugs, f"{link} names no heading of {DOCS}"
