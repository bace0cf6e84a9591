"""Fixtures of the dashboard tests: three rounds scored by the real pipeline.

- ``sipas-2022`` (closed) over Thái Nguyên, Quảng Ninh and Lạng Sơn, demo responses;
- ``demo`` (open) over the same three plus Hà Nội, which gets a single response (suppressed),
  with an open comment that must never reach a results page;
- ``r2025`` after the merger, over Thái Nguyên of 2025 (merged from Bắc Kạn and Thái Nguyên)
  and Quảng Ninh (not merged);
- ``empty`` over the same units, without any run.

Every published value comes from ``scoring.services.recompute_round`` on stored responses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone

from demo.responses import generate_demo_responses
from scoring.services import recompute_round
from surveys.models import Round, Unit
from tests.factories import submitted_response
from tests.support.responses import valid_answers
from tests.support.sipas_rounds import narrowed_sipas_rounds

MIN_N = 3
OLD_UNITS = ["19", "22", "20"]
SECRET_COMMENT = "Bí mật cá nhân 4711: số điện thoại 0912 345 678"


@dataclass(frozen=True)
class Published:
    old: Round
    demo: Round
    merged: Round
    empty: Round


def copy_round(source: Round, code: str, *, opens_at: dt.datetime, units: list[str]) -> Round:
    copy = Round.objects.create(
        code=code,
        name_vi=f"Vòng {code}",
        name_en=f"Round {code}",
        period_start=opens_at.date() - dt.timedelta(days=300),
        period_end=opens_at.date(),
        opens_at=opens_at,
        closes_at=opens_at + dt.timedelta(days=30),
        version=source.version,
    )
    copy.units.set(Unit.objects.filter(code__in=units))
    return copy


@pytest.fixture
def published(sipas, settings) -> Published:
    settings.MIN_PUBLISH_N = MIN_N
    old, demo = narrowed_sipas_rounds(OLD_UNITS, earlier_per_unit=5, seed=1)
    generate_demo_responses(round_code="demo", responses=4 * len(OLD_UNITS), seed=2)
    demo.units.add(Unit.objects.get(code="01"))
    submitted_response("demo", "01", valid_answers(Q11=SECRET_COMMENT))
    # A second unit under MIN_N: were Hà Nội the only one withheld, the national values and
    # the other units' would give its values back, and complementary suppression would
    # withhold one of the three units on every indicator.
    demo.units.add(Unit.objects.get(code="02"))
    no_service_questions = {k: v for k, v in valid_answers().items() if not k.startswith("S")}
    submitted_response("demo", "02", no_service_questions)  # SVC stays under MIN_N nationally
    recompute_round(round_code="demo")

    later = demo.closes_at + dt.timedelta(days=1)
    merged = copy_round(demo, "r2025", opens_at=later, units=["19-2025", "22"])
    generate_demo_responses(round_code="r2025", responses=8, seed=3)
    recompute_round(round_code="r2025")

    empty = copy_round(demo, "empty", opens_at=timezone.now(), units=OLD_UNITS)
    return Published(old=old, demo=demo, merged=merged, empty=empty)


def rank_shown(score: Any, language: str) -> str:
    """A rank as a page must show it: "2/63 (95%: 1–5)" (the same in Vietnamese)."""
    return f"{score.rank}/{score.rank_of} (95%: {score.rank_low}–{score.rank_high})"
