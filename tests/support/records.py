"""Scores from the compact response records checked against the answer table's."""

from __future__ import annotations

import math
from typing import Any

from scoring import sql
from scoring.engine import NodeValue, compute_values

NOISE = 1e-9  # an SE (0–100) below this is rounding noise around 0


def same(a: float | None, b: float | None) -> bool:
    """Equal to 1e-9 (relative) or within rounding noise; ``None`` only equals ``None``."""
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=NOISE)


def assert_scored_alike(round_id: int, version_id: int, **kwargs: Any) -> list[NodeValue]:
    """Every figure from the records equals the answer table's computation (1e-9)."""
    from_records = compute_values(
        round_id=round_id, version_id=version_id, source=sql.RECORDS, **kwargs
    )
    from_answers = compute_values(
        round_id=round_id, version_id=version_id, source=sql.ANSWERS, **kwargs
    )
    assert_values_alike(from_records, from_answers)
    return from_records


def assert_values_alike(values: list[NodeValue], expected: list[NodeValue]) -> None:
    """The same nodes with the same counts, and every figure equal to 1e-9: PostgreSQL sums
    floats in the order it reads the rows, so two computations of the same data may differ
    in the last bits."""
    assert len(values) == len(expected) > 0
    for r, a in zip(values, expected, strict=True):
        assert (r.indicator_id, r.unit_id, r.n, r.valid, r.df) == (
            a.indicator_id,
            a.unit_id,
            a.n,
            a.valid,
            a.df,
        )
        for field in ("value", "weight_sum", "se", "ci_low", "ci_high"):
            assert same(getattr(r, field), getattr(a, field)), (field, r, a)
        if r.se is None or r.se > NOISE:
            # deff and n_eff are ratios of variances: where the SE is rounding noise (a true
            # 0, e.g. every PSU's total equal) they are ratios of noise in either path.
            for field in ("deff", "n_eff"):
                assert same(getattr(r, field), getattr(a, field)), (field, r, a)
