"""The classic convergence experiment of the Lee–Seung updates, through nmfkit.

A 15×8 random M, rank 5, U random in [0,1), V random in [1,2), 10 000 Lee–Seung multiplicative
updates; per iteration the objective, ½‖U(Vk − Vk1)‖², the two forms of ⟨∇g(Vk1), Vk − Vk1⟩ and
g(Vk) − g(Vk1) are recorded (`fit(..., track=True)`) and drawn on a log scale.

nmfkit's MU clamps at a floor of eps² (≈ 5e-32) where plain updates have none; the script
also runs plain NumPy updates and prints how far apart the two sets of curves are.

    python examples/lee_seung_convergence.py [--quick] [--iterations N] [--seed S] [--out FIGURE.png]
"""
from __future__ import annotations

import argparse

import numpy as np

import nmfkit
from nmfkit import plots

STEP_COLUMNS = ("diff_norm_V", "inner_product", "inner_product2", "decrease_V")


def plain_loop_rows(history):
    """Re-align nmfkit's history to a plain loop's rows: such a loop records the objective before each
    step and the step's quantities on the same row; nmfkit records the state after the step."""
    n = len(history["objective"]) - 1
    rows = {"iteration": np.arange(n), "objective": np.asarray(history["objective"][:-1])}
    rows.update({c: np.asarray(history[c][1:]) for c in STEP_COLUMNS})
    return rows


def plain_lee_seung(M, U, V, iterations):
    """A plain NumPy Lee–Seung loop (no floor), recording the same quantities in M ≈ U V orientation."""
    out = {c: np.empty(iterations) for c in ("objective",) + STEP_COLUMNS}
    for i in range(iterations):
        A, R = U.T @ U, U.T @ M
        V1 = V * R / (A @ V)
        U1 = U * (M @ V1.T) / (U @ (V1 @ V1.T))
        D = V1 - V
        ud = np.sum((U @ D) ** 2)
        out["objective"][i] = 0.5 * np.sum((M - U @ V) ** 2)
        out["diff_norm_V"][i] = 0.5 * ud
        out["inner_product"][i] = np.sum(D * (R - A @ V1))
        with np.errstate(divide="ignore", invalid="ignore"):
            out["inner_product2"][i] = np.sum(D * D * (A @ V) / V) - np.sum(D * (A @ D))
        out["decrease_V"][i] = out["inner_product"][i] + 0.5 * ud
        U, V = U1, V1
    out["final"] = 0.5 * np.sum((M - U @ V) ** 2)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 000 iterations instead of 10 000")
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="lee_seung_convergence.png", help="figure file (.png or .svg)")
    args = ap.parse_args(argv)
    iterations = args.iterations or (1000 if args.quick else 10000)

    rng = np.random.default_rng(args.seed)
    U = rng.random((15, 5))
    V = rng.random((5, 8)) + 1.0
    M = rng.random((15, 8))
    result = nmfkit.fit(M, 5, solver="mu", init=(U, V), tol=0, max_iter=iterations,
                        track=["diff_norm_V", "decrease_V", "inner_products", "theta"])
    rows = plain_loop_rows(result.history)
    fig = plots.convergence(rows, title=f"Lee–Seung MU, 15×8, rank 5, {iterations} iterations", loss="frobenius")
    print("figure:", plots.save(fig, args.out))

    plain = plain_lee_seung(M, U.copy(), V.copy(), iterations)
    print(f"final objective: nmfkit {result.loss:.12g}, plain Lee–Seung {plain['final']:.12g}")
    for c in ("objective",) + STEP_COLUMNS:
        a, b = rows[c], plain[c]
        ok = (a > 0) & (b > 0)
        gap = np.max(np.abs(np.log(a[ok]) - np.log(b[ok]))) if ok.any() else float("nan")
        worst = int(np.flatnonzero(ok)[np.argmax(np.abs(np.log(a[ok]) - np.log(b[ok])))]) if ok.any() else -1
        print(f"{c:15s} max |log nmfkit − log plain| = {gap:.3g} (iteration {worst}, value {a[worst]:.3g}) "
              f"over {ok.sum()} iterations "
              f"(non-positive: nmfkit {np.sum(a <= 0)}, plain {np.sum(b <= 0)})")
    agree = np.max(np.abs(rows["inner_product"] - rows["inner_product2"])
                   / np.maximum(np.abs(rows["inner_product"]), 1e-300))
    print(f"inner product forms: max relative difference {agree:.3g}")
    floor = np.finfo(float).eps ** 2
    print(f"smallest factor entry {min(result.W.min(), result.H.min()):.3g} (nmfkit floor {floor:.3g}; "
          f"the floor {'was' if min(result.W.min(), result.H.min()) <= floor else 'was never'} reached)")
    print(f"monotonicity: {len(result.monotonicity)} increase(s) recorded")


if __name__ == "__main__":
    main()
