"""nmfkit: non-negative matrix factorization, V ≈ W H with W, H ≥ 0.

    import nmfkit
    result = nmfkit.fit(X, rank=10)            # X: NumPy array or SciPy sparse
    result.W, result.H, result.relative_error
"""
from __future__ import annotations

from .fit import fit
from .registry import SOLVERS, INITS
from .result import Factorization

__version__ = "0.1.0"


def solvers_table():
    """One row per registered solver: name, losses, engines, monotone, summary."""
    return [{"solver": s.name, "losses": s.losses, "engines": s.engines, "monotone": s.monotone,
             "summary": s.summary} for s in SOLVERS.values()]


__all__ = ["fit", "Factorization", "SOLVERS", "INITS", "solvers_table", "__version__"]
