"""Ranks of units on one indicator: highest first, equal values at 2 decimals share a rank.

Standard competition ranking ("1, 2, 2, 4"): a unit's rank is one more than the number of
units with a strictly higher value after rounding to 2 decimals. Units without a value or
suppressed for too few respondents are not ranked and do not count in ``rank_of``.

Each rank has a 95% interval (``rank_intervals``): every unit's value is drawn from its
sampling distribution (normal on the logit scale with the logit SE) a few thousand times
with a seed fixed per run and indicator, and the interval is the 2.5% and 97.5% quantiles
of the unit's rank over the draws. Units whose intervals overlap cannot be told apart.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping

import numpy as np

from scoring.intervals import EDGE

RANK_DECIMALS = 2


def competition_ranks(values: Mapping[Hashable, float | None]) -> tuple[dict[Hashable, int], int]:
    """``({key: rank}, rank_of)`` for the keys whose value is not None."""
    rounded = {key: round(v, RANK_DECIMALS) for key, v in values.items() if v is not None}
    ordered = sorted(rounded.values(), reverse=True)
    first_position: dict[float, int] = {}
    for position, value in enumerate(ordered, start=1):
        first_position.setdefault(value, position)
    return {key: first_position[v] for key, v in rounded.items()}, len(rounded)


# --- Rank intervals ---------------------------------------------------------------------------

RANK_DRAWS = 2000
RANK_QUANTILES = (0.025, 0.975)  # a 95% interval of each unit's rank
RANK_SEED_KEY = 13_006  # mixed into every run's seed, so ranks draw their own stream


def rank_seed(run_id: int, indicator_id: int) -> int:
    """The seed of one indicator's rank draws in one run: the same run, the same intervals."""
    return int(np.random.SeedSequence([RANK_SEED_KEY, run_id, indicator_id]).generate_state(1)[0])


def edge_size(n: int | float | None, n_eff: float | None) -> float | None:
    """The sample size behind a value for the edge rule: its effective size, else its ``n``."""
    if n_eff is not None and math.isfinite(n_eff) and n_eff > 0:
        return float(n_eff)
    return float(n) if n else None


def logit_spread(value: float, se: float | None, size: float | None) -> tuple[float, float]:
    """``(centre, sd)`` of a value (0–100) on the logit scale, for drawing it.

    Inside (0, 100) with a positive SE: logit(p) and the delta-method SE s/(p(1 − p)).
    At exactly 0 or 100, or without a usable SE (None or 0), the SE says nothing; with a
    sample size n (the effective size when known) the rule is the continuity-corrected
    p̃ = (n·p + 0.5)/(n + 1) with the binomial logit SE 1/√(n·p̃(1 − p̃)) — e.g. 100% of 63
    draws around 99.22% with SD 1.0 on the logit scale. Without a size the value is fixed
    (SD 0, logit ±∞ at the edges), so it keeps its place in every draw.
    """
    p = value / 100
    inside = EDGE < p < 1 - EDGE
    if inside and se is not None and se > 0:
        return math.log(p / (1 - p)), (se / 100) / (p * (1 - p))
    if size is not None and size > 0:
        smoothed = (size * p + 0.5) / (size + 1)
        return math.log(smoothed / (1 - smoothed)), 1 / math.sqrt(size * smoothed * (1 - smoothed))
    if not inside:
        return (math.inf if p >= 1 - EDGE else -math.inf), 0.0
    return math.log(p / (1 - p)), 0.0


def rank_intervals[K: Hashable](
    estimates: Mapping[K, tuple[float, float | None]],
    *,
    seed: int,
    draws: int = RANK_DRAWS,
    sizes: Mapping[K, float | None] | None = None,
) -> dict[K, tuple[int, int]]:
    """95% intervals ``(rank_low, rank_high)`` of each unit's rank, highest value first.

    ``estimates``: each unit's (value 0–100, SE). Each of ``draws`` draws gives every unit
    a value normal on the logit scale (``logit_spread``; ``sizes``, optional, give the
    sample sizes for the edge rule), ranks the units highest first (competition ranks: a
    tie takes the best place) and the interval is the 2.5% and 97.5% quantiles of each
    unit's ranks over the draws (the inverted empirical distribution, so each end is a rank
    that occurred). Drawing is vectorised (one draws × units matrix) and seeded: the same
    seed and estimates give the same intervals, whatever the mapping's order.
    """
    try:
        keys = sorted(estimates)  # type: ignore[type-var]
    except TypeError:
        keys = list(estimates)
    if not keys:
        return {}
    sizes = sizes or {}
    spread = np.array(
        [logit_spread(*estimates[key], sizes.get(key)) for key in keys], dtype=float
    ).reshape(len(keys), 2)
    centre, sd = spread[:, 0], spread[:, 1]
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((draws, len(keys)))
    drawn = centre + np.where(sd > 0, sd * noise, 0.0)  # ±∞ stays ±∞ where the SD is 0
    low, high = rank_quantiles(competition_ranks_of_draws(drawn), RANK_QUANTILES)
    return {key: (int(lo), int(hi)) for key, lo, hi in zip(keys, low, high, strict=True)}


def competition_ranks_of_draws(drawn: np.ndarray) -> np.ndarray:
    """Each row's competition ranks, highest first (scipy's ``rankdata(-drawn, "min")``):
    one argsort per row, then each run of equal values takes its first position."""
    draws, units = drawn.shape
    order = np.argsort(-drawn, axis=1)
    ordered = np.take_along_axis(drawn, order, axis=1)
    new_value = np.ones((draws, units), dtype=bool)
    new_value[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.maximum.accumulate(np.where(new_value, np.arange(units), 0), axis=1)
    ranks = np.empty((draws, units), dtype=np.int64)
    np.put_along_axis(ranks, order, first + 1, axis=1)
    return ranks


def rank_quantiles(ranks: np.ndarray, quantiles: tuple[float, ...]) -> list[np.ndarray]:
    """Per column of integer ranks 1..U, each quantile by the inverted empirical
    distribution (numpy's ``method="inverted_cdf"``): the smallest rank r with
    #{draws with rank ≤ r} ≥ q·draws. Counted with one bincount, not sorted."""
    draws, units = ranks.shape
    cells = (np.arange(units) * (units + 1))[None, :] + ranks
    counts = np.bincount(cells.ravel(), minlength=units * (units + 1)).reshape(units, units + 1)
    cumulative = counts.cumsum(axis=1)
    return [(cumulative >= q * draws).argmax(axis=1) for q in quantiles]
