"""examples/progress.ipynb, executed in a real Jupyter kernel: a fit and a rank survey show
their progress in the notebook (where stderr is not a terminal)."""
import os
import re

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _texts(cell):
    """Every text the cell showed: streams, and display data (the last state of updated displays)."""
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append(o.get("text", ""))
        elif o.get("output_type") in ("display_data", "execute_result", "update_display_data"):
            data = o.get("data", {})
            out.append(data.get("text/plain", ""))
            if "application/vnd.jupyter.widget-view+json" in data:
                out.append("<widget>")
    return "\n".join(out)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    with open(os.path.join(ROOT, "examples", "progress.ipynb"), encoding="utf-8") as fh:
        nb = nbformat.read(fh, as_version=4)
    cwd = tmp_path_factory.mktemp("notebook")
    env_path = os.path.join(ROOT, "src") + os.pathsep + os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = env_path        # the kernel imports this checkout's nmfkit
    try:
        client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                         resources={"metadata": {"path": str(cwd)}})
        client.execute()
    finally:
        os.environ["PYTHONPATH"] = env_path.split(os.pathsep, 1)[1]
    return nb


def test_fit_shows_progress_in_the_notebook(executed):
    fit_cell = next(c for c in executed.cells if c.cell_type == "code" and "verbose=True" in c.source)
    text = _texts(fit_cell)
    assert re.search(r"mu \[#+\] 500/500 iterations objective", text) or "<widget>" in text, text


def test_rank_survey_shows_progress_and_a_verdict_in_the_notebook(executed):
    cell = next(c for c in executed.cells if c.cell_type == "code" and "estimate_rank" in c.source)
    text = _texts(cell)
    for k in (2, 3, 4, 5):
        assert re.search(rf"consensus k={k} \[#+\] 5/5 runs", text) or "<widget>" in text, text
    assert "Rank 3 (" in text, text
