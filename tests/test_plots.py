"""Figures: each returns a matplotlib Figure and saves as PNG or SVG; bad input gets a clear error."""
import numpy as np
import pytest

import nmfkit
from nmfkit import plots

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.random((36, 20))


@pytest.fixture(scope="module")
def tracked():
    return nmfkit.fit(X, 4, solver="mu", tol=0, max_iter=30, seed=0, track=True)


def check_saves(fig, tmp_path, name):
    assert isinstance(fig, Figure)
    png, svg = tmp_path / f"{name}.png", tmp_path / f"{name}.svg"
    plots.save(fig, png)
    plots.save(fig, svg)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in svg.read_bytes()[:2000]


def test_basis_images_grid(tmp_path):
    W = RNG.random((64, 7))
    fig = plots.basis_images(W, (8, 8))
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 7 and len(fig.axes) == 9          # 3×3 grid, two empty cells
    np.testing.assert_allclose(shown[2].images[0].get_array(), W[:, 2].reshape(8, 8))
    fig_f = plots.basis_images(W, (8, 8), ncols=7, order="F")
    np.testing.assert_allclose(fig_f.axes[0].images[0].get_array(), W[:, 0].reshape(8, 8, order="F"))
    check_saves(fig, tmp_path, "basis")
    with pytest.raises(ValueError, match="does not match"):
        plots.basis_images(W, (8, 7))


def test_convergence_figure_has_the_seed_legend(tmp_path, tracked):
    fig = plots.convergence(tracked)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["||M-UV||^2", "0.5||U(Vk-Vk1)||^2", "inner Product 1", "inner Product 2",
                      "g(Vk)-g(Vk1)"]
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(), np.log(tracked.history["objective"]))
    check_saves(fig, tmp_path, "convergence")
    fig2 = plots.convergence(tracked.to_frame(), ["theta_V", "kkt_residual"])
    assert len(fig2.axes[0].lines) == 2
    with pytest.raises(ValueError, match="track=True"):
        plots.convergence(nmfkit.fit(X, 3, max_iter=5), ["theta_V"])


def test_objective_vs_time_and_heatmaps_and_top_features(tmp_path, tracked):
    other = nmfkit.fit(X, 4, solver="mu", tol=0, max_iter=10, seed=1)
    fig = plots.objective_vs_time({"mu 30": tracked, "mu 10": other})
    assert [ln.get_label() for ln in fig.axes[0].lines] == ["mu 30", "mu 10"]
    check_saves(fig, tmp_path, "time")
    check_saves(plots.coefficient_heatmap(tracked.H), tmp_path, "coef")
    check_saves(plots.basis_heatmap(tracked.W), tmp_path, "basis_hm")
    names = [f"word{i}" for i in range(36)]
    fig = plots.top_features(tracked.W, names, n=5)
    first = fig.axes[0]
    top = np.argsort(tracked.W[:, 0])[::-1][:5]
    assert [t.get_text() for t in first.get_yticklabels()] == [names[i] for i in top]
    np.testing.assert_allclose([p.get_width() for p in first.patches], tracked.W[top, 0])
    check_saves(fig, tmp_path, "top")
    with pytest.raises(ValueError, match="feature names"):
        plots.top_features(tracked.W, names[:3])


def test_save_rejects_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match="png"):
        plots.save(plots.heatmap(np.eye(3)), tmp_path / "x.bmp")


def test_draws_into_given_axes():
    fig = Figure()
    ax = fig.add_subplot(1, 2, 2)
    assert plots.heatmap(np.eye(3), ax=ax, colorbar=False) is fig
