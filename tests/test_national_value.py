"""A round's national value: pooled over all respondents (default) or units weighted by their
population from the round's margins (``Round.national_value``, issue 13 item 8)."""

from __future__ import annotations

import math

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.timezone import localtime

from demo.responses import generate_demo_responses
from scoring import engine
from scoring.engine import NodeValue
from scoring.models import PopulationMargin, Run, Score
from scoring.services import (
    MissingPopulations,
    population_weighted_national,
    recompute_round,
    unit_populations,
)
from surveys.models import Round, Unit

ROUND = "sipas-2022"
UNITS = ("19", "20", "22")  # Thái Nguyên, Lạng Sơn, Quảng Ninh
POPULATIONS = {"19": 1_300_000.0, "20": 800_000.0, "22": 1_400_000.0}
SEXES = ("nam", "nu")
AGES = ("18_25", "26_34", "35_49", "50_60", "tren_60")
Z = 1.959963984540054


def node(unit_id: int | None, value: float | None, se: float | None, deff: float | None, n=100):
    return NodeValue(
        indicator_id=1, indicator_code="X", unit_id=unit_id, value=value, n=n, valid=n,
        weight_sum=float(n), se=se, ci_low=None, ci_high=None, deff=deff,
        n_eff=None if deff is None else n / deff,
    )  # fmt: skip


def test_the_national_value_weights_unit_values_by_population_worked_by_hand() -> None:
    # Units 1 and 2 have values; unit 3 has none for this node and does not count.
    values = [
        node(1, 80.0, 2.0, 2.0),
        node(2, 60.0, 3.0, 1.5),
        node(3, None, None, None, n=0),
        node(None, 71.0, 1.2, 1.1, n=300),  # the engine's pooled national value
    ]
    populations = {1: 3_000_000.0, 2: 1_000_000.0, 3: 9_000_000.0}

    national = population_weighted_national(values, populations)[-1]

    # shares 3/4 and 1/4: value (3·80 + 1·60)/4 = 75
    assert national.value == pytest.approx(75.0, abs=1e-12)
    # SE² = (3/4·2)² + (1/4·3)² = 2.25 + 0.5625 = 2.8125
    assert national.se == pytest.approx(math.sqrt(2.8125), abs=1e-12)
    # simple-sample variances SE²/deff: 4/2 = 2 and 9/1.5 = 6 → (3/4)²·2 + (1/4)²·6 = 1.5
    assert national.deff == pytest.approx(2.8125 / 1.5, abs=1e-12)
    assert national.n_eff == pytest.approx(300 / 1.875, abs=1e-9)
    # logit interval: logit(0.75) ± Z·0.016771/(0.75·0.25)
    half = Z * math.sqrt(2.8125) / 100 / (0.75 * 0.25)
    low, high = (100 / (1 + math.exp(-(math.log(3) + s * half))) for s in (-1, 1))
    assert (national.ci_low, national.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert 70.7 < national.ci_low < 71.8 and 78.0 < national.ci_high < 78.5
    # counts stay the pooled ones; unit rows are untouched
    assert (national.n, national.valid, national.weight_sum) == (300, 300, 300.0)
    assert population_weighted_national(values, populations)[:3] == values[:3]


def test_a_unit_without_a_standard_error_leaves_the_national_one_unknown() -> None:
    values = [node(1, 80.0, 2.0, 2.0), node(2, 100.0, None, None, n=1), node(None, 81.0, 2, 2)]

    national = population_weighted_national(values, {1: 1.0, 2: 1.0})[-1]

    assert national.value == pytest.approx(90.0)
    assert (national.se, national.ci_low, national.ci_high, national.deff) == (None,) * 4


@pytest.fixture
def survey(sipas) -> Round:
    """sipas-2022 over three provinces with 150 demo respondents each."""
    survey_round = Round.objects.get(code=ROUND)
    survey_round.units.set(Unit.objects.filter(code__in=UNITS))
    generate_demo_responses(round_code=ROUND, responses=450, seed=5)
    return survey_round


def add_margins(survey_round: Round, codes: tuple[str, ...] = UNITS) -> None:
    """Sex × age margins summing to the unit's population (its age bands in 1:2:3:2:2)."""
    shares = dict(zip(AGES, (0.1, 0.2, 0.3, 0.2, 0.2), strict=True))
    PopulationMargin.objects.bulk_create(
        PopulationMargin(
            round=survey_round,
            unit=Unit.objects.get(code=code),
            dimension=PopulationMargin.Dimension.SEX_AGE,
            category=f"{sex}|{age}",
            population=POPULATIONS[code] / 2 * share,
        )
        for code in codes
        for sex in SEXES
        for age, share in shares.items()
    )


def unit_and_national(run: Run, code: str) -> tuple[dict[str, Score], Score]:
    rows = Score.objects.filter(run=run, indicator__code=code).select_related("unit")
    units = {s.unit.code: s for s in rows if s.scope == Score.Scope.UNIT}
    return units, next(s for s in rows if s.scope == Score.Scope.NATIONAL)


def test_unit_populations_sum_sex_age_margins_else_area_margins(survey: Round) -> None:
    add_margins(survey, ("19",))
    units = {u.code: u for u in Unit.objects.filter(code__in=UNITS)}
    area = PopulationMargin.Dimension.AREA
    PopulationMargin.objects.bulk_create(
        [
            PopulationMargin(round=survey, unit=units["19"], dimension=area, category="do_thi",
                             population=5.0),
            PopulationMargin(round=survey, unit=units["20"], dimension=area, category="do_thi",
                             population=200_000.0),
            PopulationMargin(round=survey, unit=units["20"], dimension=area, category="nong_thon",
                             population=600_000.0),
            PopulationMargin(round=survey, unit=units["22"], dimension=area, category="do_thi",
                             population=0.0),
        ]
    )  # fmt: skip

    populations = unit_populations(round_id=survey.pk)

    assert populations == {
        units["19"].pk: pytest.approx(1_300_000.0),  # sex × age wins over area
        units["20"].pk: pytest.approx(800_000.0),  # area: 200,000 + 600,000
    }  # 22: a population of 0 is no population


def test_a_population_weighted_run_combines_its_unit_values_and_says_so(
    survey: Round, client: Client
) -> None:
    survey.national_value = Round.NationalValue.POPULATION
    survey.save(update_fields=["national_value"])
    add_margins(survey)

    run = recompute_round(round_code=ROUND)

    assert run.status == Run.Status.PUBLISHED
    assert run.settings_used["national_value"] == "population"
    total = sum(POPULATIONS.values())  # 3,500,000
    for code in ("SIPAS", "P01", "S09"):
        units, national = unit_and_national(run, code)
        shares = {u: POPULATIONS[u] / total for u in units}  # 13/35, 8/35, 14/35
        assert national.value == pytest.approx(
            sum(shares[u] * units[u].value for u in units), abs=1e-9
        )
        assert national.se == pytest.approx(
            math.sqrt(sum((shares[u] * units[u].se) ** 2 for u in units)), abs=1e-9
        )
        assert national.ci_low < national.value < national.ci_high
    # not the pooled value the engine computes over the same respondents and weights
    pooled = {
        v.indicator_code: v.value
        for v in engine.compute_values(
            round_id=survey.pk, version_id=survey.version_id, weights_run_id=run.pk
        )
        if v.unit_id is None
    }
    assert abs(unit_and_national(run, "SIPAS")[1].value - pooled["SIPAS"]) > 1e-6

    body = client.get("/api/v1/rankings/", {"round": ROUND, "indicator": "SIPAS"}).json()
    assert body["national"]["method"] == "population"
    assert body["national"]["value"] == pytest.approx(unit_and_national(run, "SIPAS")[1].value)
    page = client.get(reverse("dashboard:round", args=[ROUND]), HTTP_ACCEPT_LANGUAGE="en")
    assert "National value (units weighted by their population)" in page.content.decode()


def test_units_without_margins_fail_the_run_and_are_named(survey: Round) -> None:
    survey.national_value = Round.NationalValue.POPULATION
    survey.save(update_fields=["national_value"])
    add_margins(survey, ("19", "22"))

    with pytest.raises(MissingPopulations, match="no population margins in this round: 20\\."):
        recompute_round(round_code=ROUND)

    run = Run.objects.get(round=survey)
    assert run.status == Run.Status.FAILED
    assert "MissingPopulations" in run.error and ": 20." in run.error
    assert not Score.objects.filter(run=run).exists()


def test_the_default_national_value_is_pooled_and_says_so(survey: Round, client: Client) -> None:
    run = recompute_round(round_code=ROUND)

    assert run.settings_used["national_value"] == "pooled"
    pooled = {
        (v.indicator_code, v.unit_id): v.value
        for v in engine.compute_values(round_id=survey.pk, version_id=survey.version_id)
    }
    for code in ("SIPAS", "P01"):
        assert unit_and_national(run, code)[1].value == pytest.approx(pooled[code, None], abs=1e-12)
    body = client.get("/api/v1/rankings/", {"round": ROUND, "indicator": "SIPAS"}).json()
    assert body["national"]["method"] == "pooled"
    page = client.get(reverse("dashboard:round", args=[ROUND]), HTTP_ACCEPT_LANGUAGE="en")
    assert "National value (pooled over all respondents)" in page.content.decode()


def test_the_round_admin_sets_the_national_value(admin_client: Client, sipas) -> None:
    survey_round = Round.objects.get(code=ROUND)
    url = reverse("admin:surveys_round_change", args=[survey_round.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="national_value"' in page and 'value="population"' in page

    data = {
        "code": survey_round.code,
        "name_vi": survey_round.name_vi,
        "period_start": survey_round.period_start.isoformat(),
        "period_end": survey_round.period_end.isoformat(),
        "opens_at_0": localtime(survey_round.opens_at).date().isoformat(),
        "opens_at_1": localtime(survey_round.opens_at).time().isoformat(),
        "closes_at_0": localtime(survey_round.closes_at).date().isoformat(),
        "closes_at_1": localtime(survey_round.closes_at).time().isoformat(),
        "version": survey_round.version_id,
        "units": list(survey_round.units.values_list("pk", flat=True)[:3]),
        "variance_method": survey_round.variance_method,
        "national_value": "population",
        "stratum_populations-TOTAL_FORMS": "0",
        "stratum_populations-INITIAL_FORMS": "0",
    }
    response = admin_client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    survey_round.refresh_from_db()
    assert survey_round.national_value == Round.NationalValue.POPULATION
