"""Ranks of units on one indicator: highest first, equal values at 2 decimals share a rank.

Standard competition ranking ("1, 2, 2, 4"): a unit's rank is one more than the number of
units with a strictly higher value after rounding to 2 decimals. Units without a value or
suppressed for too few respondents are not ranked and do not count in ``rank_of``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

RANK_DECIMALS = 2


def competition_ranks(values: Mapping[Hashable, float | None]) -> tuple[dict[Hashable, int], int]:
    """``({key: rank}, rank_of)`` for the keys whose value is not None."""
    rounded = {key: round(v, RANK_DECIMALS) for key, v in values.items() if v is not None}
    ordered = sorted(rounded.values(), reverse=True)
    first_position: dict[float, int] = {}
    for position, value in enumerate(ordered, start=1):
        first_position.setdefault(value, position)
    return {key: first_position[v] for key, v in rounded.items()}, len(rounded)
