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


def test_convergence_figure_labels_in_the_users_terms(tmp_path, tracked):
    fig = plots.convergence(tracked)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["objective ½‖X − WH‖²", "½‖W(Hₖ − Hₖ₊₁)‖²", "⟨∇g(Hₖ₊₁), Hₖ − Hₖ₊₁⟩",
                      "its sum-of-squares form (equal on MU steps)", "g(Hₖ) − g(Hₖ₊₁)"]
    assert ax.get_xlabel() == "iteration" and ax.get_yscale() == "log"    # MU: every value is ≥ 0
    np.testing.assert_allclose(ax.lines[0].get_ydata(), tracked.history["objective"])
    check_saves(fig, tmp_path, "convergence")
    fig2 = plots.convergence(tracked.to_frame(), ["theta_V", "kkt_residual"])
    assert len(fig2.axes[0].lines) == 2
    with pytest.raises(ValueError, match="track=True"):
        plots.convergence(nmfkit.fit(X, 3, max_iter=5), ["theta_V"])


def test_convergence_of_an_untracked_kl_fit_names_its_loss():
    kl = nmfkit.fit(X, 3, solver="mu", loss="kl", max_iter=5, seed=0)
    labels = [t.get_text() for t in plots.convergence(kl).axes[0].get_legend().get_texts()]
    assert labels == ["objective KL divergence D(X‖WH)"]
    frame = {"iteration": np.arange(3), "objective": np.array([3.0, 2.0, 1.0])}
    assert plots.convergence(frame).axes[0].get_legend().get_texts()[0].get_text() == "objective"


def test_convergence_of_default_hals_draws_every_curve_over_every_iteration():
    # extrapolated HALS steps make the H-subproblem rise: negative values must still be drawn
    fit = nmfkit.fit(X, 4, tol=0, max_iter=40, seed=0, track=True)
    assert fit.options["solver"] == "hals" and np.any(fit.history["decrease_V"][1:] < 0)
    ax = plots.convergence(fit).axes[0]
    assert ax.get_yscale() == "symlog"
    assert len(ax.lines) - 1 == len(ax.get_legend().get_texts()) == 5    # the extra line marks 0
    for line in ax.lines[:5]:
        y = np.asarray(line.get_ydata(), dtype=float)
        assert np.all(np.isfinite(y[1:])), line.get_label()                # no gap, no early stop
    kl = nmfkit.fit(X, 3, solver="mu", loss="kl", max_iter=10, seed=0, track=True)
    shown = [t.get_text() for t in plots.convergence(kl).axes[0].get_legend().get_texts()]
    assert shown == ["objective KL divergence D(X‖WH)", "½‖W(Hₖ − Hₖ₊₁)‖²"]    # NaN columns left out


def test_signed_basis_images_use_a_diverging_map_centred_at_zero():
    W = RNG.standard_normal((64, 3))
    fig = plots.basis_images(W, (8, 8))
    for j, ax in enumerate(fig.axes[:3]):
        image = ax.images[0]
        low, high = image.get_clim()
        assert image.get_cmap().name == "RdBu_r" and low == -high == -np.abs(W[:, j]).max()
    assert plots.basis_images(np.abs(W), (8, 8)).axes[0].images[0].get_cmap().name == "gray"


def test_top_features_says_when_it_shows_some_components():
    W = RNG.random((30, 16))
    fig = plots.top_features(W, n=5, components=range(10))
    assert fig._suptitle.get_text() == "top 5 features of components 1–10 (of 16)"
    assert plots.top_features(W[:, :4], n=5)._suptitle is None


def test_heatmaps_keep_row_names_and_order_many_samples():
    names = [f"gene{i}" for i in range(100)]
    ax = plots.basis_heatmap(RNG.random((100, 3)), row_names=names).axes[0]
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert 20 <= len(shown) <= 40 and set(shown) <= set(names) and shown[0] == "gene0"
    H = RNG.random((3, 90))
    ax = plots.coefficient_heatmap(H).axes[0]
    drawn = ax.images[0].get_array()
    dominant = np.argmax(drawn, axis=0)
    assert np.all(np.diff(dominant) >= 0) and "dominant component" in ax.get_xlabel()
    np.testing.assert_allclose(np.sort(drawn, axis=1), np.sort(H, axis=1))   # the same samples, reordered
    groups = RNG.integers(0, 3, 90)
    order, ordered = plots.sample_order(H, groups)
    assert np.all(np.diff(ordered) >= 0) and sorted(order) == list(range(90))
    small = plots.coefficient_heatmap(H[:, :10]).axes[0]
    np.testing.assert_allclose(small.images[0].get_array(), H[:, :10])      # few samples: as given


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
