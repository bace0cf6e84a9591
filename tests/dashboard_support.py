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
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone

from demo.responses import generate_demo_responses
from feedback.models import Response
from feedback.services import submit_response
from scoring.services import recompute_round
from surveys.models import Round, Unit
from tests.support.responses import valid_answers

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
    old = Round.objects.get(code="sipas-2022")
    old.units.set(Unit.objects.filter(code__in=OLD_UNITS))
    generate_demo_responses(round_code="sipas-2022", responses=5 * len(OLD_UNITS), seed=1)
    recompute_round(round_code="sipas-2022")

    demo = Round.objects.get(code="demo")
    demo.units.set(Unit.objects.filter(code__in=OLD_UNITS))
    generate_demo_responses(round_code="demo", responses=4 * len(OLD_UNITS), seed=2)
    demo.units.add(Unit.objects.get(code="01"))
    submit_response(
        round_code="demo",
        unit_code="01",
        answers=valid_answers(Q11=SECRET_COMMENT),
        channel=Response.Channel.API,
        client_id=uuid.uuid4(),
    )
    # A second unit under MIN_N: were Hà Nội the only one withheld, the national values and
    # the other units' would give its values back, and complementary suppression would
    # withhold one of the three units on every indicator.
    demo.units.add(Unit.objects.get(code="02"))
    submit_response(
        round_code="demo",
        unit_code="02",  # no service questions: SVC stays under MIN_N nationally
        answers={k: v for k, v in valid_answers().items() if not k.startswith("S")},
        channel=Response.Channel.API,
        client_id=uuid.uuid4(),
    )
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
