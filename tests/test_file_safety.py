"""Files are never lost: atomic writes, no output over an input or over files nmfkit did not write,
reruns into nmfkit's own folder, and every refusal before the first iteration (`nmfkit` CLI and library)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nmfkit
from nmfkit import Factorization, checkpoint, plots, report
from nmfkit._files import TEMP_PREFIX, atomic_write
from nmfkit.cli import main
from nmfkit.io import read_matrix, write_matrix
from nmfkit.registry import SOLVERS

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
MANIFEST = ".nmfkit-run.json"


@pytest.fixture
def X():
    rng = np.random.default_rng(3)
    return rng.random((12, 3)) @ rng.random((3, 8))


@pytest.fixture
def data_csv(tmp_path, X):
    return os.fspath(write_matrix(tmp_path / "data.csv", X))


@pytest.fixture
def no_fit(monkeypatch):
    """Fails the test if any fit, consensus or survey starts; returns the list of attempted calls."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("the work started although the command should have been refused first")
    for name in ("fit", "consensus", "estimate_rank", "cross_validate_rank"):
        monkeypatch.setattr(nmfkit, name, refuse)
    return calls


def _fit(*args):
    return main(["fit", *map(str, args), "--solver", "mu", "--seed", "0", "--max-iter", "20", "-q"])


def _error_line(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nmfkit: error: ") and "Traceback" not in err, err
    return err


def _snapshot(folder):
    return {p: open(os.path.join(folder, p), "rb").read() for p in sorted(os.listdir(folder))}


def _no_temp_files(folder):
    return not [p for p in os.listdir(folder) if p.startswith(TEMP_PREFIX)]


# -- never over an input --------------------------------------------------------------------------------------
def test_fit_refuses_to_write_over_its_input_even_with_force(tmp_path, X, no_fit, capsys):
    proj = tmp_path / "proj"
    proj.mkdir()
    write_matrix(proj / "H.csv", X)
    (proj / "W.csv").write_text("the user's own W\n")
    before = _snapshot(proj)
    for force in ([], ["--force"]):
        assert _fit(proj / "H.csv", "--rank", 2, "--out", proj, *force) == 2
        assert "would write H.csv over the input file" in _error_line(capsys)
        assert _snapshot(proj) == before


def test_checkpoint_over_the_input_or_an_output_is_refused(tmp_path, X, no_fit, capsys):
    data = tmp_path / "data.npy"
    np.save(data, X)
    before = data.read_bytes()
    assert _fit(data, "--rank", 2, "--out", tmp_path / "o", "--checkpoint", data, "--force") == 2
    assert f"--checkpoint {data} is the input file" in _error_line(capsys)
    assert data.read_bytes() == before
    assert _fit(data, "--rank", 2, "--out", tmp_path / "o", "--checkpoint", tmp_path / "o" / "W.csv") == 2
    assert "is one of the files written to --out" in _error_line(capsys)
    assert not (tmp_path / "o").exists()          # a refused run leaves no empty folder behind


def test_out_inside_an_input_store_is_refused(tmp_path, X, no_fit, capsys):
    store = tmp_path / "x.zarr"
    store.mkdir()
    (store / ".zarray").write_text("{}")
    before = _snapshot(store)
    assert _fit(store, "--rank", 2, "--out", store / "fit", "--force") == 2
    assert f"is inside the input {store}" in _error_line(capsys)
    assert _snapshot(store) == before


def test_subprocess_refuses_to_overwrite_its_input(tmp_path, X):
    proj = tmp_path / "proj"
    proj.mkdir()
    write_matrix(proj / "H.csv", X)
    before = _snapshot(proj)
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "nmfkit", "fit", str(proj / "H.csv"), "-k", "2", "-o", str(proj)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "over the input file" in proc.stderr
    assert _snapshot(proj) == before


# -- never over files nmfkit did not write ---------------------------------------------------------------------
def test_foreign_files_need_force_and_reruns_do_not(tmp_path, data_csv, capsys):
    out = tmp_path / "proj"
    out.mkdir()
    (out / "W.csv").write_text("the user's own W\n")
    (out / "notes.txt").write_text("unrelated\n")
    assert _fit(data_csv, "--rank", 2, "--out", out) == 2
    assert "already holds W.csv, which nmfkit did not write; use --force" in _error_line(capsys)
    assert (out / "W.csv").read_text() == "the user's own W\n"
    assert _fit(data_csv, "--rank", 2, "--out", out, "--force") == 0
    assert read_matrix(out / "W.csv").X.shape == (12, 2)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["complete"] and sorted(manifest["files"]) == sorted(
        ["W.csv", "H.csv", "summary.json", "model.npz", "history.csv"])
    assert _fit(data_csv, "--rank", 3, "--out", out) == 0       # a rerun into its own folder: no --force
    assert read_matrix(out / "W.csv").X.shape == (12, 3)
    assert (out / "notes.txt").read_text() == "unrelated\n"     # files it does not write are left alone
    assert _no_temp_files(out)


def test_rerun_removes_the_stale_files_of_the_previous_run(tmp_path, data_csv):
    out = tmp_path / "o"
    assert _fit(data_csv, "--rank", 2, "--out", out, "--runs", 3, "--consensus", "--report") == 0
    assert {"report.html", "consensus.csv", "clusters.csv", "consensus.png"} <= set(os.listdir(out))
    (out / "mine.txt").write_text("keep\n")
    assert _fit(data_csv, "--rank", 2, "--out", out) == 0
    assert sorted(os.listdir(out)) == sorted([MANIFEST, "W.csv", "H.csv", "summary.json", "model.npz",
                                              "history.csv", "mine.txt"])


def test_a_tampered_manifest_never_removes_files_outside_the_folder(tmp_path, data_csv, capsys):
    out = tmp_path / "o"
    assert _fit(data_csv, "--rank", 2, "--out", out) == 0
    outside = tmp_path / "precious.txt"
    outside.write_text("keep\n")
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"] += ["../precious.txt", str(outside)]
    (out / MANIFEST).write_text(json.dumps(manifest))
    assert _fit(data_csv, "--rank", 2, "--out", out) == 0
    assert outside.read_text() == "keep\n"
    (out / MANIFEST).write_text("not json")                        # not nmfkit's: refused, then forced
    assert _fit(data_csv, "--rank", 2, "--out", out) == 2
    assert f"holds a {MANIFEST} that nmfkit did not write" in _error_line(capsys)
    assert _fit(data_csv, "--rank", 2, "--out", out, "--force") == 0


def test_rank_refuses_foreign_files_and_reruns_into_its_own_folder(tmp_path, X, capsys):
    path = tmp_path / "x.csv"
    np.savetxt(path, X, delimiter=",")
    out = tmp_path / "survey"
    out.mkdir()
    (out / "report.html").write_text("<p>someone else's report</p>")
    args = ["rank", str(path), "--ranks", "2-3", "--runs", "2", "--jobs", "1", "--seed", "1", "--max-iter", "30",
            "--no-random", "-q", "--out", str(out)]
    assert main(args) == 2
    assert "already holds report.html, which nmfkit did not write" in _error_line(capsys)
    assert main(args + ["--force"]) == 0
    assert {"survey.csv", "consensus_k3.png"} <= set(os.listdir(out))
    assert main(args[:3] + ["2"] + args[4:]) == 0                  # rank 2 only: rank 3's files are stale
    assert "consensus_k3.csv" not in os.listdir(out) and "consensus_k2.csv" in os.listdir(out)
    assert _no_temp_files(out)


def test_demo_refuses_foreign_folders_and_records_its_files(tmp_path, monkeypatch, capsys):
    import types

    def faces(out_dir, quick=False):
        """A demo writing one or two files."""
        files = [os.path.join(out_dir, "faces.html")]
        with atomic_write(files[0]) as fh:
            fh.write("<p>faces</p>")
        if not quick:
            with atomic_write(os.path.join(out_dir, "extra.csv")) as fh:
                fh.write("a\n")
            files.append(os.path.join(out_dir, "extra.csv"))
        return {"files": files}

    monkeypatch.setitem(sys.modules, "nmfkit.demos", types.SimpleNamespace(DEMOS={"faces": faces}))
    out = tmp_path / "demo"
    out.mkdir()
    (out / "thesis.tex").write_text("mine")
    assert main(["demo", "--out", str(out)]) == 2
    assert "already holds thesis.tex, which nmfkit did not write" in _error_line(capsys)
    assert sorted(os.listdir(out)) == ["thesis.tex"]
    fresh = tmp_path / "fresh"
    assert main(["demo", "--out", str(fresh)]) == 0
    assert sorted(json.loads((fresh / MANIFEST).read_text())["files"]) == ["extra.csv", "faces.html"]
    assert main(["demo", "--quick", "--out", str(fresh)]) == 0     # its own folder: the stale file goes
    assert sorted(os.listdir(fresh)) == [MANIFEST, "faces.html"]
    assert main(["demo", "--out", str(out), "--force"]) == 0
    assert (out / "thesis.tex").read_text() == "mine"


# -- atomic writes --------------------------------------------------------------------------------------------
class _InterruptedRows:
    """X whose third row raises KeyboardInterrupt: a Ctrl-C in the middle of writing it."""

    def __init__(self, X):
        self.X, self.shape = X, X.shape

    def __getitem__(self, i):
        if i == 2:
            raise KeyboardInterrupt
        return self.X[i]


@pytest.mark.parametrize("name", ["W.csv", "W.tsv.gz"])
def test_interrupted_write_matrix_keeps_the_old_file(tmp_path, X, name):
    path = tmp_path / name
    write_matrix(path, X)
    before = path.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        write_matrix(path, _InterruptedRows(X))
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == [name]


def test_write_into_a_missing_folder_names_the_destination(tmp_path, X):
    target = tmp_path / "nope" / "W.csv"
    with pytest.raises(FileNotFoundError) as info:
        write_matrix(target, X)
    assert info.value.filename == str(target)


def _partial_then_interrupt(file, *args, **kwargs):
    file.write(b"PK\x03\x04 half a zip")
    raise KeyboardInterrupt


def test_interrupted_save_report_and_checkpoint_keep_the_old_files(tmp_path, X, monkeypatch):
    result = nmfkit.fit(X, 2, solver="mu", seed=0, max_iter=10)
    model = result.save(tmp_path / "model.npz")
    html = report.write_html(tmp_path / "r.html", "first", [("a", "b")])
    ckpt = tmp_path / "fit.ckpt.npz"
    nmfkit.fit(X, 2, solver="mu", seed=0, max_iter=10, tol=0, checkpoint=ckpt, checkpoint_every=5)
    figure = plots.save(plots.convergence(result.history), tmp_path / "f.png")
    before = _snapshot(tmp_path)
    monkeypatch.setattr(np, "savez_compressed", _partial_then_interrupt)
    monkeypatch.setattr(np, "savez", _partial_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        result.save(model)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(ckpt, fingerprint={}, iteration=1, seconds=0.0, W=result.W, Ht=result.H.T,
                        best=(1.0, result.W, result.H.T, 1), history={}, solver_state={}, rng_state=None)

    def interrupted_sync(path):          # the new text is written, then Ctrl-C before the rename
        raise KeyboardInterrupt
    monkeypatch.setattr("nmfkit._files._sync", interrupted_sync)
    with pytest.raises(KeyboardInterrupt):
        report.write_html(html, "second", [])
    monkeypatch.undo()

    class Interrupted(type(plots.convergence(result.history))):
        def savefig(self, fh, **kwargs):
            _partial_then_interrupt(fh)
    with pytest.raises(KeyboardInterrupt):
        plots.save(Interrupted(), figure)
    assert _snapshot(tmp_path) == before                   # old files intact, no temporary file left
    assert Factorization.load(model).W.shape == (12, 2)


def test_second_ctrl_c_while_writing_outputs_leaves_whole_files(tmp_path, data_csv, monkeypatch, capsys):
    out = tmp_path / "o"
    assert _fit(data_csv, "--rank", 2, "--out", out) == 0
    old_H = (out / "H.csv").read_bytes()
    real = nmfkit.io.write_matrix

    def interrupt_on_H(path, X, *args):
        return real(path, _InterruptedRows(X) if str(path).endswith("H.csv") else X, *args)
    monkeypatch.setattr(nmfkit.io, "write_matrix", interrupt_on_H)
    before = _snapshot(out)
    assert _fit(data_csv, "--rank", 3, "--out", out) == 130
    assert capsys.readouterr().err.strip().endswith("nmfkit: interrupted")
    assert _snapshot(out) == before                        # the previous run, whole: no new W beside an old H
    assert (out / "H.csv").read_bytes() == old_H and _no_temp_files(out)
    monkeypatch.undo()
    assert _fit(data_csv, "--rank", 3, "--out", out) == 0  # the folder is still nmfkit's own
    assert read_matrix(out / "H.csv").X.shape == (3, 8)


def test_ctrl_c_while_outputs_are_moved_into_place_waits_until_they_are(tmp_path, data_csv, monkeypatch):
    import signal

    from nmfkit.cli import _output
    real_replace = os.replace

    def replace_and_interrupt(src, dst):     # a Ctrl-C arrives while the first output is moved in
        real_replace(src, dst)
        if dst == str(out / "W.csv"):
            os.kill(os.getpid(), signal.SIGINT)
    out = tmp_path / "o"
    monkeypatch.setattr(_output.os, "replace", replace_and_interrupt)
    assert _fit(data_csv, "--rank", 2, "--out", out) == 130
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["complete"] and sorted(os.listdir(out)) == sorted([MANIFEST, *manifest["files"]])


# -- late errors become early errors --------------------------------------------------------------------------
def test_out_under_a_file_is_refused_before_the_fit(tmp_path, data_csv, no_fit, capsys):
    assert _fit(data_csv, "--rank", 2, "--out", tmp_path / "data.csv" / "out") == 2
    assert "data.csv is a file, not a folder" in _error_line(capsys)
    assert _fit(data_csv, "--rank", 2, "--out", data_csv) == 2
    assert "exists and is not a folder" in _error_line(capsys)
    assert main(["rank", data_csv, "--out", str(tmp_path / "data.csv" / "r")]) == 2
    assert "is a file, not a folder" in _error_line(capsys)


def test_read_only_out_is_refused_before_the_fit(tmp_path, data_csv, no_fit, monkeypatch, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):          # permissions do not bind this user (root): simulate them
            def denied(folder, name):
                raise PermissionError(13, "Permission denied")
            monkeypatch.setattr("nmfkit._files._create_temp", denied)
            monkeypatch.setattr(os, "makedirs", lambda *a, **k: denied(None, None))
        assert _fit(data_csv, "--rank", 2, "--out", locked) == 2
        assert f"--out {locked}: cannot write in {locked}" in _error_line(capsys)
        assert _fit(data_csv, "--rank", 2, "--out", locked / "sub") == 2
        assert f"--out {locked / 'sub'}: cannot create the folder" in _error_line(capsys)
    finally:
        locked.chmod(0o755)
    assert no_fit == []


def test_checkpoint_folder_and_foreign_file_are_checked_before_the_fit(tmp_path, data_csv, no_fit, capsys):
    missing = tmp_path / "nope" / "fit.ckpt.npz"
    assert _fit(data_csv, "--rank", 2, "--out", tmp_path / "o", "--checkpoint", missing) == 2
    assert f"the folder {tmp_path / 'nope'} does not exist" in _error_line(capsys)
    notes = tmp_path / "notes.npz"
    notes.write_bytes(b"the user's file")
    assert _fit(data_csv, "--rank", 2, "--out", tmp_path / "o", "--checkpoint", notes) == 2
    assert "exists and is not an nmfkit checkpoint; use --force" in _error_line(capsys)
    assert notes.read_bytes() == b"the user's file"
    assert _fit(data_csv, "--rank", 2, "--out", tmp_path / "o", "--resume", tmp_path / "gone.npz") == 2
    assert "gone.npz" in _error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_library_fit_checks_the_checkpoint_folder_before_iterating(tmp_path, X, monkeypatch):
    cls, steps = SOLVERS["mu"].cls, []
    original = cls.step
    monkeypatch.setattr(cls, "step", lambda self, W, Ht: steps.append(1) or original(self, W, Ht))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        nmfkit.fit(X, 2, solver="mu", checkpoint=tmp_path / "nope" / "c.npz")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        nmfkit.fit(X, 2, solver="mu", checkpoint=tmp_path)
    assert steps == []


def test_image_shape_is_checked_against_the_rows_before_the_fit(tmp_path, data_csv, no_fit, capsys):
    assert _fit(data_csv, "--rank", 2, "--out", tmp_path / "o", "--report", "--image-shape", "5x5") == 2
    assert "--image-shape 5x5 has 25 pixels, but each column of W has 12 entries" in _error_line(capsys)
    assert _fit(data_csv, "--rank", 2, "--out", tmp_path / "o", "--report", "--transpose",
                "--image-shape", "3x4") == 2
    assert "has 8 entries (the columns of INPUT (--transpose))" in _error_line(capsys)
    assert _fit(data_csv, "--rank", 2, "--out", tmp_path / "o", "--image-shape", "3x4") == 2
    assert "add --report" in _error_line(capsys)
    assert _fit(data_csv, "--rank", 2, "--out", tmp_path / "o", "--report", "--image-shape", "0x12") == 2
    assert "two positive sizes" in _error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_image_shape_that_fits_draws_the_basis_images(tmp_path, data_csv):
    assert _fit(data_csv, "--rank", 2, "--out", tmp_path / "o", "--report", "--image-shape", "3x4") == 0
    assert "<img" in (tmp_path / "o" / "report.html").read_text()


def test_options_used_after_the_work_are_checked_before_it(tmp_path, data_csv, no_fit, capsys):
    assert _fit(data_csv, "--rank", 2, "--out", tmp_path / "o", "--checkpoint", tmp_path / "c.npz",
                "--checkpoint-every", 0) == 2
    assert "--checkpoint-every must be at least 1" in _error_line(capsys)
    assert _fit(data_csv, "--rank", 2, "--out", tmp_path / "o", "--consensus", "--runs", 1) == 2
    assert "--runs N with N ≥ 2" in _error_line(capsys)
    rank = ["rank", data_csv, "--ranks", "2-3", "--out", str(tmp_path / "r"), "--cv"]
    assert main(rank + ["--holdout", "1.5"]) == 2
    assert "--holdout must be a fraction strictly between 0 and 1" in _error_line(capsys)
    assert main(rank + ["--splits", "0"]) == 2
    assert "--splits must be at least 1" in _error_line(capsys)
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()
