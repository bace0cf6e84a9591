"""Change against the previous round, through the 2025 lineage (predecessors pooled)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from feedback.models import Response
from feedback.services import submit_response
from scoring import services
from scoring.models import Score
from surveys.models import Round, Unit
from tests.test_response_api import valid_answers

pytestmark = pytest.mark.django_db


def answer(round_code: str, unit: str, s01: int) -> None:
    submit_response(
        round_code=round_code,
        unit_code=unit,
        answers=valid_answers(S01=s01),
        channel=Response.Channel.PAPER,
        client_id=uuid.uuid4(),
    )


@pytest.fixture
def two_rounds(sipas) -> None:
    """sipas-2022 over the old provinces; a 2025 round over Hà Nội and the merged Thái Nguyên."""
    at = timezone.make_aware(dt.datetime(2025, 9, 1))
    later = Round.objects.create(
        code="sipas-2025",
        name_vi="SIPAS 2025",
        period_start=dt.date(2025, 1, 1),
        period_end=dt.date(2025, 12, 31),
        opens_at=at,
        closes_at=at + dt.timedelta(days=60),
        version=sipas,
    )
    later.units.set(Unit.objects.filter(code__in=["01", "19-2025"]))
    for unit, s01 in [("06", 5), ("06", 2), ("19", 4), ("19", 4), ("01", 5), ("01", 5)]:
        answer("sipas-2022", unit, s01)
    for unit, s01 in [("19-2025", 5)] * 4 + [("01", 1)] * 2:
        answer("sipas-2025", unit, s01)
    services.recompute_round(round_code="sipas-2022")


def s01(scope: str, unit: str | None = None) -> Score:
    return Score.objects.get(
        run__round__code="sipas-2025",
        run__status="published",
        indicator__code="S01",
        scope=scope,
        unit__code=unit,
    )


def test_a_merged_province_compares_with_its_predecessors_pooled(two_rounds) -> None:
    services.recompute_round(round_code="sipas-2025")
    merged = s01("unit", "19-2025")
    # now 4 of 4 satisfied = 100; before, Bắc Kạn (5, 2) and Thái Nguyên (4, 4) pooled:
    # 3 of 4 = 75, so the change is +25. SE before: p = .75, X = 4, z = .0625 (×3) and
    # −.1875, Σz² = .046875, SE² = 4/3 · .046875 = .0625 → 25 points; SE now 0;
    # 25 < 1.96 · 25, so not significant.
    assert merged.value == pytest.approx(100.0)
    assert merged.change == pytest.approx(25.0)
    assert merged.change_significant is False


def test_an_unchanged_province_compares_with_itself(two_rounds) -> None:
    services.recompute_round(round_code="sipas-2025")
    ha_noi = s01("unit", "01")
    # before 5, 5 → 100 (SE 0); now 1, 1 → 0 (SE 0): −100, significant at any margin
    assert ha_noi.change == pytest.approx(-100.0)
    assert ha_noi.change_significant is True


def test_the_national_value_compares_with_the_previous_national_value(two_rounds) -> None:
    services.recompute_round(round_code="sipas-2025")
    # before 5 of 6 (5, 2, 4, 4, 5, 5) = 83.33; now 4 of 6 = 66.67
    assert s01("national").change == pytest.approx(200 / 3 - 500 / 6)


def test_a_first_round_has_no_change(two_rounds) -> None:
    first = Score.objects.get(
        run__round__code="sipas-2022", indicator__code="S01", scope="unit", unit__code="19"
    )
    assert first.change is None and first.change_significant is None
