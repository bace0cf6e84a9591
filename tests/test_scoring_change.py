"""Change against the previous round, through the 2025 lineage (predecessors pooled): its
p-value and its Benjamini–Hochberg flag."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from django.utils import timezone

from feedback.models import Response
from scoring import services
from scoring.models import Score
from surveys.models import Round, Unit
from tests.support.responses import answer

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_rounds(sipas, settings) -> None:
    """sipas-2022 over the old provinces; a 2025 round over Hà Nội and the merged Thái Nguyên.

    Publishing from one respondent on, so the tiny units are not suppressed (suppressed
    changes are not tested)."""
    settings.MIN_PUBLISH_N = 1
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
        answer(unit, round_code="sipas-2022", channel=Response.Channel.PAPER, S01=s01)
    for unit, s01 in [("19-2025", 5)] * 4 + [("01", 1)] * 2:
        answer(unit, round_code="sipas-2025", channel=Response.Channel.PAPER, S01=s01)
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
    # −.1875, Σz² = .046875, SE² = 4/3 · .046875 = .0625 → 25 points. Now at 100 the
    # design-based SE is 0, so the edge rule takes p̃ = (4 + .5)/(4 + 1) = .9 and
    # SE = 100·√(.9·.1/4) = 15. SE_d = √(25² + 15²) = 29.155, z = 25/29.155 = .8575,
    # p = erfc(.8575/√2) = .3912.
    assert merged.value == pytest.approx(100.0)
    assert merged.change == pytest.approx(25.0)
    assert merged.change_p == pytest.approx(0.39117, abs=1e-5)
    # the family of S01's units is {Hà Nội .0073, this .3912}: .3912 > 2·.05/2, not flagged
    assert merged.change_significant is False


def test_an_unchanged_province_compares_with_itself(two_rounds) -> None:
    services.recompute_round(round_code="sipas-2025")
    ha_noi = s01("unit", "01")
    # before 5, 5 → 100; now 1, 1 → 0: −100, both design-based SEs 0. Edge rule, n = 2:
    # before p̃ = 2.5/3 = 5/6, now p̃ = .5/3 = 1/6, each SE = 100·√((5/6)(1/6)/2) = 26.352;
    # SE_d = 37.268, z = 100/37.268 = 2.6833, p = erfc(2.6833/√2) = .00729.
    assert ha_noi.change == pytest.approx(-100.0)
    assert ha_noi.change_p == pytest.approx(0.0072904, abs=1e-6)
    # BH over S01's two units (m = 2): .00729 ≤ 1·.05/2 = .025 → flagged; .3912 > .05 → not
    assert ha_noi.change_significant is True


def test_the_national_value_compares_with_the_previous_national_value(two_rounds) -> None:
    services.recompute_round(round_code="sipas-2025")
    # before 5 of 6 (5, 2, 4, 4, 5, 5) = 83.33; now 4 of 6 = 66.67
    national = s01("national")
    assert national.change == pytest.approx(200 / 3 - 500 / 6)
    before = Score.objects.get(
        run__round__code="sipas-2022", indicator__code="S01", scope="national"
    )
    # Now the nation is stratified by unit and each unit is homogeneous (all 5, all 1): the
    # design-based SE is 0, so the p-value takes the edge rule's SE: n = 6, p = 4/6,
    # p̃ = (4 + .5)/7 = .642857, SE = 100·√(.642857·.357143/6) = 19.5615. Before, the
    # published SE: 16.6667. SE_d = √(19.5615² + 16.6667²) = 25.699, z = 16.6667/25.699 =
    # .64854, p = erfc(.64854/√2) = .5166.
    assert national.se == pytest.approx(0.0, abs=1e-9)
    assert before.se == pytest.approx(16.6667, abs=1e-4)
    assert national.change_p == pytest.approx(0.5166, abs=1e-4)
    assert national.change_significant is not None


def test_no_change_is_published_over_a_value_withheld_in_the_previous_round(
    two_rounds, settings
) -> None:
    # The earlier round published again with MIN_PUBLISH_N = 3: its units (2 respondents
    # each) are withheld, its national value (6) is not. A change over a withheld value
    # would give it back (previous = value − change), so none is published for Hà Nội nor
    # for the merged province (both predecessors withheld); the nation keeps its change.
    settings.MIN_PUBLISH_N = 3
    services.recompute_round(round_code="sipas-2022")
    assert Score.objects.get(
        run__round__code="sipas-2022",
        run__status="published",
        indicator__code="S01",
        unit__code="01",
    ).suppressed
    settings.MIN_PUBLISH_N = 1
    services.recompute_round(round_code="sipas-2025")
    for unit in ("01", "19-2025"):
        score = s01("unit", unit)
        assert not score.suppressed and score.value is not None
        assert score.change is None and score.change_p is None
        assert score.change_significant is None
    assert s01("national").change == pytest.approx(200 / 3 - 500 / 6)


def test_a_first_round_has_no_change(two_rounds) -> None:
    first = Score.objects.get(
        run__round__code="sipas-2022", indicator__code="S01", scope="unit", unit__code="19"
    )
    assert first.change is None and first.change_p is None and first.change_significant is None


def test_the_national_values_of_a_round_form_one_family(two_rounds) -> None:
    services.recompute_round(round_code="sipas-2025")
    national = Score.objects.filter(
        run__round__code="sipas-2025", run__status="published", scope="national"
    ).exclude(change_p=None)
    p = sorted(national.values_list("change_p", flat=True))
    # BH by hand over all national p-values of the round: the largest k with p_(k) ≤ k·.05/m
    k = max((i for i, value in enumerate(p, start=1) if value <= i * 0.05 / len(p)), default=0)
    flagged = national.filter(change_significant=True)
    assert flagged.count() == k
    assert all(score.change_p <= p[k - 1] for score in flagged) if k else True
    assert len(p) > 1  # one family across indicators, not a test per indicator


# --- The pieces, by hand ----------------------------------------------------------------------


def test_change_p_value_is_two_sided_normal() -> None:
    # d = 5, SEs 3 and 4: SE_d = 5, z = 1, p = 2·(1 − Φ(1)) = .31731
    assert services.change_p_value(5.0, 3.0, 4.0) == pytest.approx(0.317311, abs=1e-6)
    assert services.change_p_value(-5.0, 3.0, 4.0) == pytest.approx(0.317311, abs=1e-6)
    # d = 1.959963984540054·5 gives p = .05 exactly
    assert services.change_p_value(1.959963984540054 * 5, 3.0, 4.0) == pytest.approx(0.05)
    assert services.change_p_value(5.0, None, 4.0) is None
    # zero SEs on both sides: no change is no evidence, any change is certain
    assert services.change_p_value(0.0, 0.0, 0.0) == 1.0
    assert services.change_p_value(2.0, 0.0, 0.0) == 0.0


def test_change_se_keeps_a_design_se_and_replaces_it_at_the_edges() -> None:
    assert services.change_se(80.0, 2.5, 100) == 2.5
    # 0% of 9: p̃ = .5/10 = .05, SE = 100·√(.05·.95/9) = 7.2648
    assert services.change_se(0.0, 0.0, 9) == pytest.approx(100 * math.sqrt(0.05 * 0.95 / 9))
    assert services.change_se(100.0, 0.0, None) == 0.0


def flagged_scores() -> list[Score]:
    def score(scope: str, indicator: int, p: float | None, suppressed: bool = False) -> Score:
        return Score(scope=scope, indicator_id=indicator, change_p=p, suppressed=suppressed)

    return [
        score("unit", 1, 0.01),  # 0
        score("unit", 1, 0.04),  # 1
        score("unit", 2, 0.04),  # 2
        score("national", 1, 0.02),  # 3
        score("national", 2, 0.03),  # 4
        score("unit", 1, 0.001, suppressed=True),  # 5
        score("unit", 2, None),  # 6
    ]


def test_flag_changes_tests_each_family_on_its_own() -> None:
    scores = flagged_scores()
    services.flag_changes(scores)
    # indicator 1's units: .01, .04 (m = 2; the suppressed .001 is not published, not
    # counted): .01 ≤ .025 ✓, .04 ≤ .05 ✓ → both. Indicator 2's unit: .04 ≤ .05 ✓.
    # Nationals together: .02 ≤ .025 ✓, .03 ≤ .05 ✓ → both.
    assert [s.change_significant for s in scores] == [True, True, True, True, True, None, None]


def test_flag_changes_with_one_family_of_units_per_indicator_not_one_per_round() -> None:
    scores = flagged_scores()
    scores[2].change_p = 0.03  # alone in its family: ≤ .05, flagged
    scores[1].change_p = 0.06  # indicator 1: .01 ≤ .025 ✓, .06 > .05 → only the first
    services.flag_changes(scores)
    assert [s.change_significant for s in scores[:3]] == [True, False, True]
