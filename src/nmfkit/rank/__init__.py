"""Choosing the rank and trusting the answer.

consensus            many runs of one rank → consensus matrix, cophenetic, dispersion, silhouette
estimate_rank        a survey over ranks, on the data and on randomised data
rank_verdict         one conclusion from a survey's measures: rank, confidence, disagreements
cross_validate_rank  held-out-entry test error per rank, rank chosen by "min" or "1se"
search_rank          the same curve searched at few ranks (doubling, golden section); fit(X, rank="auto")
feature_score, select_features, top_features   which features drive each component
plots                survey plot, consensus heatmap, CV curve
"""
from .auto import RankSearch, search_rank
from .consensus import (
    ConsensusResult,
    connectivity,
    consensus,
    consensus_clusters,
    consensus_matrix,
    consensus_silhouette,
    cophenetic_correlation,
    dispersion,
    silhouette_widths,
)
from .cross_validation import CrossValidation, cross_validate_rank, heldout_error, speckled_mask
from .estimate import RankSurvey, estimate_rank, hoyer_sparseness, randomize
from .features import feature_score, select_features, top_features
from .verdict import RankVerdict, rank_verdict

__all__ = ["ConsensusResult", "connectivity", "consensus", "consensus_clusters", "consensus_matrix",
           "consensus_silhouette", "cophenetic_correlation", "dispersion", "silhouette_widths",
           "CrossValidation", "cross_validate_rank", "heldout_error", "speckled_mask", "RankSearch", "search_rank",
           "RankSurvey", "estimate_rank", "hoyer_sparseness", "randomize",
           "feature_score", "select_features", "top_features", "RankVerdict", "rank_verdict"]
