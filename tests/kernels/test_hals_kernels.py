"""Parity of the Numba HALS kernel with its whole-array NumPy twin."""
import numpy as np
import pytest

from nmfkit.solvers import _hals_kernels as _kernels


def _problem(p, k, dtype, seed=0, dead=()):
    rng = np.random.default_rng(seed)
    A = rng.random((3 * k, k))
    A[:, list(dead)] = 0                      # dead components: G_jj = 0
    G = (A.T @ A).astype(dtype)
    R = (rng.random((p, k)) @ G).astype(dtype)  # a feasible optimum exists
    R -= 0.3 * R.mean()                       # ... and some coordinates go to 0
    F = rng.random((p, k)).astype(dtype)
    return F, R, G


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("p,k", [(7, 1), (50, 4), (3000, 12)])   # 3000×12 runs the parallel variant
@pytest.mark.parametrize("sweeps,delta", [(1, 0.0), (8, 0.1), (30, 0.0)])
def test_numba_matches_numpy(dtype, p, k, sweeps, delta):
    F, R, G = _problem(p, k, dtype)
    F_numba, F_numpy = F.copy(), F.copy()
    done_numba = _kernels.hals_sweeps(F_numba, R, G, sweeps, delta)
    done_numpy = _kernels.hals_sweeps_numpy(F_numpy, R, G, sweeps, delta)
    rtol = 1e-9 if dtype == np.float64 else 2e-3
    np.testing.assert_allclose(F_numba, F_numpy, rtol=rtol, atol=rtol * np.abs(F_numpy).max())
    assert F_numba.dtype == dtype
    assert (F_numba >= 0).all()
    if dtype == np.float64:          # the per-row early stop fires at the same sweep
        np.testing.assert_array_equal(done_numba, done_numpy)
    assert done_numba.min() >= 1 and done_numba.max() <= sweeps


def test_parallel_and_serial_variants_agree():
    F, R, G = _problem(4000, 16, np.float64, seed=3)
    a, b = F.copy(), F.copy()
    done = np.zeros(len(F), dtype=np.int64)
    S = R - F @ G                           # the kernels take the negative gradient
    _kernels._hals_sweeps_parallel(a, S.copy(), G, 5, 0.1, done.copy())
    _kernels._hals_sweeps_serial(b, S.copy(), G, 5, 0.1, done.copy())
    np.testing.assert_array_equal(a, b)   # same per-row arithmetic, only the row order differs


def test_sweeps_decrease_the_half_step_objective():
    F, R, G = _problem(200, 6, np.float64, seed=1)

    def f(F):
        return 0.5 * np.einsum("ij,jk,ik->", F, G, F) - np.vdot(F, R)

    values = [f(F)]
    for _ in range(10):
        _kernels.hals_sweeps(F, R, G, 1, 0.0)
        values.append(f(F))
    assert np.all(np.diff(values) <= 1e-9 * abs(values[0]))
    assert values[-1] < values[0]


def test_converges_to_the_nnls_solution():
    from scipy.optimize import nnls
    rng = np.random.default_rng(2)
    A = rng.random((40, 5))
    B = rng.random((40, 30))
    G, R = A.T @ A, (A.T @ B).T               # rows of F solve min ‖A f − b‖, f ≥ 0
    F = np.ones((30, 5))
    _kernels.hals_sweeps(F, R, G, 5000, 0.0)
    expected = np.array([nnls(A, B[:, i])[0] for i in range(30)])
    np.testing.assert_allclose(F, expected, atol=1e-6)


def test_dead_coordinate_is_minimised_without_dividing_by_zero():
    # G_jj = 0: the coordinate's objective is −R_ij·F_ij, minimised by 0 where R_ij ≤ 0
    # (the L1 case) and unbounded — so left alone — where R_ij > 0.
    F, R, G = _problem(100, 5, np.float64, dead=(2,))
    R[:50, 2] = -1.0
    R[50:, 2] = 1.0
    before = F[:, 2].copy()
    for kernel in (_kernels.hals_sweeps, _kernels.hals_sweeps_numpy):
        out = F.copy()
        kernel(out, R, G, 4, 0.0)
        assert np.isfinite(out).all()
        assert (out[:50, 2] == 0).all()
        np.testing.assert_array_equal(out[50:, 2], before[50:])


def test_kernel_settings_are_defined_once_and_numba_is_required():
    """Numba is a hard dependency (no pure-Python fallbacks), and the row blocks that fix the
    order of partial sums are set in one module for every kernel."""
    import pathlib
    import re

    import nmfkit
    from nmfkit.engines import _blocks, _dense_kernels
    from nmfkit.engines import _kernels as sparse_kernels
    from nmfkit.solvers import _ccd_kernels
    sources = {p: p.read_text(encoding="utf-8") for p in pathlib.Path(nmfkit.__file__).parent.rglob("*.py")}
    for path, text in sources.items():
        assert "numba is None" not in text and "numba = None" not in text, path.name
        if path.name != "_blocks.py":
            assert not re.search(r"^(\w*ROW_BLOCKS|_?VECTORISE) *=", text, re.M), path.name
    assert sparse_kernels.ROW_BLOCKS == _dense_kernels.ROW_BLOCKS == _blocks.ROW_BLOCKS
    assert _ccd_kernels.KL_CD_ROW_BLOCKS == _blocks.KL_CD_ROW_BLOCKS


# -- the box-constrained sweeps (bounds, signed factors, per-row curvature) --------------------------

BOXES = [(0.0, np.inf), (0.0, 0.6), (-np.inf, np.inf), (-np.inf, 0.5)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lower,upper", BOXES)
@pytest.mark.parametrize("p,k", [(9, 1), (400, 5), (3000, 12)])   # 3000×12 runs the parallel variant
@pytest.mark.parametrize("row_diag", [False, True])
def test_box_numba_matches_numpy(dtype, lower, upper, p, k, row_diag):
    F, R, G = _problem(p, k, dtype, seed=5, dead=(0,) if k > 1 else ())
    R = R - 0.5 * np.abs(R).mean()                  # some coordinates want to be negative
    d = np.random.default_rng(1).random(p).astype(dtype) if row_diag else None
    F = np.clip(F, lower, upper)                    # a feasible start, as the solver hands over
    a, b = F.copy(), F.copy()
    done_a = _kernels.hals_box_sweeps(a, R, G, 8, 0.1, lower, upper, d)
    done_b = _kernels.hals_box_sweeps_numpy(b, R, G, 8, 0.1, lower, upper, d)
    rtol = 1e-9 if dtype == np.float64 else 2e-3
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
    assert a.dtype == dtype and a.min() >= lower and a.max() <= upper
    if dtype == np.float64:
        np.testing.assert_array_equal(done_a, done_b)


def test_box_kernel_with_the_default_box_is_the_plain_kernel():
    """lower = 0, upper = ∞, no row diagonal: the same operations in the same order, bit for bit."""
    F, R, G = _problem(500, 7, np.float64, seed=6, dead=(3,))
    a, b = F.copy(), F.copy()
    _kernels.hals_sweeps(a, R, G, 6, 0.1)
    _kernels.hals_box_sweeps(b, R, G, 6, 0.1)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("lower,upper", BOXES)
def test_box_sweeps_converge_to_the_bounded_least_squares_solution(lower, upper):
    """Rows of F solve min ½‖A f − bᵢ‖² + ½dᵢ‖f‖² over lower ≤ f ≤ upper (scipy's lsq_linear)."""
    from scipy.optimize import lsq_linear
    rng = np.random.default_rng(7)
    A, B = rng.random((15, 4)), rng.standard_normal((6, 15)) + 0.5
    d = rng.random(6)
    G, R = A.T @ A, B @ A
    F = np.clip(rng.random((6, 4)), lower, upper)
    _kernels.hals_box_sweeps(F, R, G, 3000, 0.0, lower, upper, d)
    for i in range(6):
        stacked = np.r_[A, np.sqrt(d[i]) * np.eye(4)]
        target = np.r_[B[i], np.zeros(4)]
        ref = lsq_linear(stacked, target, bounds=(lower, upper), tol=1e-14, lsmr_tol="auto").x
        np.testing.assert_allclose(F[i], ref, atol=1e-7)


def test_box_sweeps_decrease_the_half_step_objective():
    F, R, G = _problem(200, 6, np.float64, seed=8)
    d = np.random.default_rng(2).random(200)

    def f(F):
        return 0.5 * np.einsum("ij,jk,ik->", F, G, F) + 0.5 * (d[:, None] * F * F).sum() - np.vdot(F, R)

    values = [f(F)]
    for _ in range(10):
        _kernels.hals_box_sweeps(F, R, G, 1, 0.0, -np.inf, 0.8, d)
        values.append(f(F))
    assert np.all(np.diff(values) <= 1e-12 * abs(values[0]))
    assert values[-1] < values[0]


def test_box_coordinate_of_a_linear_coordinate():
    """Zero curvature: the end of the box the slope points to, or no move where that end is infinite."""
    c = _kernels.box_coordinate
    assert c(0.3, 1.0, 0.0, 0.0, 2.0) == 2.0 and c(0.3, 1.0, 0.0, 0.0, np.inf) == 0.3
    assert c(0.3, -1.0, 0.0, 0.0, 2.0) == 0.0 and c(0.3, -1.0, 0.0, -np.inf, 2.0) == 0.3


# -- the row lanes of the sweep kernel and the solver's one-pass helpers ------------------------------

@pytest.mark.parametrize("lanes", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("p", [1, 7, 8, 9, 61])
def test_each_row_is_swept_as_if_alone(dtype, p, lanes):
    """Rows share lanes and refill them as others stop; each row's arithmetic is still its own:
    sweeping all rows at once equals sweeping each row by itself, bit for bit (sweep counts too)."""
    F, R, G = _problem(p, 6, dtype, seed=11, dead=(4,))
    R[::3] *= 50                                  # rows far from their optimum need more sweeps
    S = R - F @ G                                 # the kernels take the negative gradient
    together = F.copy()
    done = _kernels._hals_sweeps_serial(together, S.copy(), G, 40, 0.05, np.zeros(p, np.int64), lanes)
    assert done.min() < done.max() or p == 1      # rows stop at different sweeps
    for i in range(p):
        alone = F[i:i + 1].copy()
        done_alone = _kernels._hals_sweeps_serial(alone, S[i:i + 1].copy(), G, 40, 0.05, np.zeros(1, np.int64),
                                                      lanes)
        np.testing.assert_array_equal(alone[0], together[i])
        assert done_alone[0] == done[i]


@pytest.mark.parametrize("zero_share", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("variant", ["_hals_sweeps_serial", "_hals_sweeps_parallel"])
def test_lanes_and_rows_agree_bit_for_bit(zero_share, variant):
    """The two ways of ordering the rows (side by side, one at a time) do the same arithmetic per row."""
    F, R, G = _problem(700, 9, np.float64, seed=12, dead=(5,))
    F[np.random.default_rng(3).random(F.shape) < zero_share] = 0
    S = R - F @ G
    a, b = F.copy(), F.copy()
    done_a = getattr(_kernels, variant)(a, S.copy(), G, 7, 0.1, np.zeros(700, np.int64), True)
    done_b = getattr(_kernels, variant)(b, S.copy(), G, 7, 0.1, np.zeros(700, np.int64), False)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(done_a, done_b)


def test_lanes_are_used_unless_the_start_is_mostly_zero():
    F = np.ones((10, 10))
    assert _kernels.use_lanes(F)
    F.flat[:int(10 * 10 * _kernels.LANES_MAX_ZERO_SHARE) + 1] = 0
    assert not _kernels.use_lanes(F)


def test_zero_sweeps_leave_F_alone():
    F, R, G = _problem(20, 3, np.float64)
    out = F.copy()
    done = _kernels.hals_sweeps(out, R, G, 0, 0.1)
    np.testing.assert_array_equal(out, F)
    assert (done == 0).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_zero_columns_matches_numpy(dtype):
    rng = np.random.default_rng(4)
    F = rng.random((50, 6)).astype(dtype)
    F[:, [1, 4]] = 0
    F[:49, 2] = 0                                 # nonzero only in the last row
    F[10, 5] = np.nan                             # NaN is not zero (as in F.any)
    F[:, 5] = np.where(np.arange(50) == 10, F[:, 5], 0)
    for A in (F, F[::2], F[:, ::-1], np.zeros((0, 3), dtype), np.asfortranarray(F)):
        np.testing.assert_array_equal(_kernels.zero_columns(A), _kernels.zero_columns_numpy(A))
    np.testing.assert_array_equal(_kernels.zero_columns(F), [1, 4])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_extrapolate_matches_numpy_bit_for_bit(dtype):
    """Same operations in the same order and dtype (β rounded to F's dtype first)."""
    rng = np.random.default_rng(5)
    F, F_prev = rng.random((300, 7)).astype(dtype), rng.random((300, 7)).astype(dtype)
    for beta in (0.25, 1 / 3, 1.0):
        out = _kernels.extrapolate(F, F_prev, beta)
        np.testing.assert_array_equal(out, _kernels.extrapolate_numpy(F, F_prev, beta))
        assert out.dtype == dtype and out.flags.c_contiguous and (out >= 0).all() and (out == 0).any()
    np.testing.assert_array_equal(_kernels.extrapolate(F.T, F_prev.T, 0.5),
                                  _kernels.extrapolate_numpy(F.T, F_prev.T, 0.5))
