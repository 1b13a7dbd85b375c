"""nmfkit: non-negative matrix factorization, X ≈ W H with W, H ≥ 0.

    import nmfkit
    result = nmfkit.fit(X, rank=10)   # X: NumPy array, SciPy sparse, pandas DataFrame or dask array
    result.W, result.H, result.relative_error
"""
from __future__ import annotations

from . import (  # streaming NMF and several-matrix models
    _threads,  # noqa: F401  (first: sets the OpenMP wait policy before Numba starts its threads)
    joint,
    stream,
)
from .cluster import bipartition, dclust
from .deep import DeepFactorization, deep_fit
from .distributions import choose_distribution
from .fit import fit
from .project import project
from .rank import (
    ConsensusResult,
    CrossValidation,
    RankSearch,
    RankSurvey,
    consensus,
    cross_validate_rank,
    estimate_rank,
    feature_score,
    randomize,
    search_rank,
    select_features,
    top_features,
)
from .registry import INITS, SOLVERS
from .result import Factorization

__version__ = "0.1.0"


def solvers_table():
    """One row per registered solver: name, losses, engines, monotone, summary."""
    return [{"solver": s.name, "losses": s.losses, "engines": s.engines, "monotone": s.monotone,
             "summary": s.summary} for s in SOLVERS.values()]


__all__ = ["fit", "Factorization", "SOLVERS", "INITS", "solvers_table", "__version__"]
__all__ += ["consensus", "estimate_rank", "cross_validate_rank", "ConsensusResult", "RankSurvey", "CrossValidation",
            "feature_score", "select_features", "top_features", "randomize"]
__all__ += ["project", "NMF", "MiniBatchNMF", "non_negative_factorization"]
__all__ += ["choose_distribution"]
__all__ += ["stream", "joint"]
__all__ += ["bipartition", "dclust"]
__all__ += ["deep_fit", "DeepFactorization"]
__all__ += ["search_rank", "RankSearch"]


def __getattr__(name):
    """`nmfkit.NMF`, `MiniBatchNMF` and `non_negative_factorization` are imported on first use, so
    nmfkit itself never needs scikit-learn."""
    if name in ("NMF", "MiniBatchNMF", "non_negative_factorization"):
        from . import sklearn
        return getattr(sklearn, name)
    raise AttributeError(f"module 'nmfkit' has no attribute {name!r}")
