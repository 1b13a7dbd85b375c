"""One answer from a rank survey: which rank, how sure, and which measures disagree.

Each measure the survey computed casts a vote (or abstains when it cannot tell ranks apart):

    fit vs random   Frigyesi & Höglund (2008): the smallest rank k beyond which one more
                    component lowers the residual sum of squares (RSS) no more than it does on
                    the randomised data (weight 2: the only rule that uses the chance baseline)
    cross-validation  the held-out-error rule of `cross_validate_rank` (weight 2), when given
    RSS bend        Hutchins et al. (2008): the rank where the RSS curve bends most sharply
                    (largest second difference); abstains when no bend of the data's curve is
                    sharper than every bend of the randomised data's curve
    cophenetic      Brunet et al. (2004): the last rank before the largest drop of the
                    cophenetic correlation; abstains when no drop exceeds `FLAT` (the curve is flat)
    dispersion      Kim & Park (2007): the smallest rank whose dispersion is within `FLAT` of
                    the highest; abstains when the curve is flat

The rank with the most weight wins (ties go to the rule listed first).  Confidence is "high"
when at least two measures vote and all of them agree, "moderate" when the winner holds at
least half of the weight cast, and "low" otherwise, or when larger ranks might do better (the
winner is the largest rank surveyed, or components beat the randomised data up to it).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FLAT = 0.01      # changes of cophenetic/dispersion below this are within run-to-run variation

CITATIONS = {"fit vs random": "Frigyesi & Höglund 2008", "cross-validation": "held-out entries",
             "RSS bend": "Hutchins et al. 2008", "cophenetic": "Brunet et al. 2004",
             "dispersion": "Kim & Park 2007"}
WEIGHTS = {"fit vs random": 2, "cross-validation": 2, "RSS bend": 1, "cophenetic": 1, "dispersion": 1}


@dataclass
class Vote:
    """One measure's choice: `rank` (None when it abstains) and why, in one sentence."""
    measure: str
    rank: int | None
    reason: str
    weight: int = 1


@dataclass
class RankVerdict:
    """The survey's conclusion: `rank`, `confidence` ('high', 'moderate', 'low'), `text` (one
    paragraph) and the per-measure `votes`."""
    rank: int
    confidence: str
    text: str
    votes: list = field(default_factory=list)

    @property
    def agree(self) -> bool:
        """True when every measure that voted chose `rank`."""
        return all(v.rank in (None, self.rank) for v in self.votes)

    def as_dict(self) -> dict:
        return {"rank": self.rank, "confidence": self.confidence, "text": self.text,
                "votes": {v.measure: v.rank for v in self.votes}}

    def __str__(self):
        return self.text


def _ranks_text(ranks) -> str:
    return f"ranks {ranks[0]}–{ranks[-1]}" if len(ranks) > 1 else f"rank {ranks[0]}"


def fit_vs_random_vote(ranks, rss, random_rss) -> Vote:
    name = "fit vs random"
    gains, random_gains = -np.diff(rss), -np.diff(random_rss)
    for i in range(len(gains)):
        if gains[i] <= random_gains[i]:
            change = f"lowers the RSS by only {gains[i]:.4g}" if gains[i] > 0 else "does not lower the RSS"
            return Vote(name, int(ranks[i]), f"a component beyond rank {ranks[i]} {change}, where on randomised data "
                        f"it lowers it by {random_gains[i]:.4g}", WEIGHTS[name])
    return Vote(name, None, f"every added component up to rank {ranks[-1]} lowers the RSS more than on "
                "randomised data: the rank may be larger than the survey's range", WEIGHTS[name])


def rss_bend_vote(ranks, rss, random_rss=None) -> Vote:
    name = "RSS bend"
    inner = [i for i in range(1, len(ranks) - 1) if ranks[i - 1] + 1 == ranks[i] == ranks[i + 1] - 1]
    if not inner:
        return Vote(name, None, "too few consecutive ranks to see a bend")
    bends = np.array([rss[i - 1] - 2 * rss[i] + rss[i + 1] for i in inner])
    best = int(np.argmax(bends))
    if random_rss is not None:
        random_bends = [abs(random_rss[i - 1] - 2 * random_rss[i] + random_rss[i + 1]) for i in inner]
        if bends[best] <= max(random_bends):
            return Vote(name, None, "the RSS curve bends no more sharply than on randomised data")
    elif bends[best] <= 0:
        return Vote(name, None, "the RSS curve does not bend")
    return Vote(name, int(ranks[inner[best]]), f"the RSS curve bends most sharply at rank {ranks[inner[best]]}")


def cophenetic_vote(ranks, values) -> Vote:
    name = "cophenetic"
    drops = values[:-1] - values[1:]
    if len(drops) == 0 or not np.any(drops > FLAT):
        return Vote(name, None, f"it never drops by more than {FLAT} from one rank to the next over "
                    f"{_ranks_text(ranks)} (values {np.nanmin(values):.3f} to {np.nanmax(values):.3f}), so it singles "
                    "out no rank")
    i = int(np.nanargmax(drops))
    return Vote(name, int(ranks[i]), f"its largest drop, {values[i]:.3f} → {values[i + 1]:.3f}, comes after "
                f"rank {ranks[i]}")


def dispersion_vote(ranks, values) -> Vote:
    name = "dispersion"
    if not np.any(np.isfinite(values)) or np.nanmax(values) - np.nanmin(values) <= FLAT:
        return Vote(name, None, f"it stays within {FLAT} over {_ranks_text(ranks)}, so it singles out no rank")
    top = np.nanmax(values)
    i = int(np.flatnonzero(values >= top - FLAT)[0])
    return Vote(name, int(ranks[i]), f"it first comes within {FLAT} of its highest value ({top:.3f}) "
                f"at rank {ranks[i]} ({values[i]:.3f})")


def rank_verdict(survey, cv=None) -> RankVerdict:
    """Combine the measures of a `RankSurvey` (and, if given, a `CrossValidation`) into one verdict."""
    ranks = [int(r) for r in survey.ranks]
    rss = survey.column("rss")
    votes = []
    randomised = survey.random_rows is not None
    if randomised:
        votes.append(fit_vs_random_vote(ranks, rss, survey.column("rss", random=True)))
    if cv is not None:
        votes.append(Vote("cross-validation", int(cv.best_rank),
                          f"the {cv.rule!r} rule on held-out error picks rank {cv.best_rank}",
                          WEIGHTS["cross-validation"]))
    votes.append(rss_bend_vote(ranks, rss, survey.column("rss", random=True) if randomised else None))
    votes.append(cophenetic_vote(ranks, survey.column("cophenetic")))
    votes.append(dispersion_vote(ranks, survey.column("dispersion")))

    cast = [v for v in votes if v.rank is not None]
    if not cast:
        chosen = ranks[0] if len(ranks) == 1 else int(survey.best_rank("cophenetic"))
        score, total = 0, 0
    else:
        weight = {}
        for v in cast:
            weight[v.rank] = weight.get(v.rank, 0) + v.weight
        top = max(weight.values())
        chosen = next(v.rank for v in cast if weight[v.rank] == top)    # ties: the rule listed first
        score, total = top, sum(v.weight for v in cast)
    agreeing = [v for v in cast if v.rank == chosen]
    others = [v for v in cast if v.rank != chosen]
    # the largest rank surveyed, or components that beat chance up to it: larger ranks might do better
    at_edge = (len(ranks) > 1 and chosen == ranks[-1]) or (randomised and votes[0].rank is None)
    if not cast:
        confidence = "low"
    elif len(cast) >= 2 and not others and not at_edge:
        confidence = "high"
    elif 2 * score >= total and not at_edge:
        confidence = "moderate"
    else:
        confidence = "low"

    parts = []
    if cast:
        parts.append(f"Rank {chosen} ({confidence} confidence: {len(agreeing)} of {len(cast)} measures that "
                     f"could decide point to it).")
    else:
        parts.append(f"No measure singles out a rank; rank {chosen}, the last before the largest cophenetic "
                     "drop, is a guess (low confidence).")
    for v in votes:
        parts.append(f"{v.measure[0].upper() + v.measure[1:]} ({CITATIONS[v.measure]}): {v.reason}.")
    if others:
        parts.append("The measures disagree: " + "; ".join(f"{v.measure} points to rank {v.rank}" for v in others)
                     + ".")
    if at_edge:
        parts.append("Survey larger ranks before trusting this verdict.")
    if not randomised:
        parts.append("Without the randomised survey (randomized=True) the chance baseline is missing.")
    return RankVerdict(rank=int(chosen), confidence=confidence, text=" ".join(parts), votes=votes)
