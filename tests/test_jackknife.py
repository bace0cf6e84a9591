"""Jackknife (JKn) standard errors by PSU within strata, each replicate raked again
(``scoring.replicates``): hand-worked replicates, Taylor agreement, raking, runs, admin."""

from __future__ import annotations

import datetime as dt
import math
import random
from fractions import Fraction as F
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone

from feedback.models import Response
from scoring import engine, intervals, replicates, services
from scoring.margins import replace_margins
from scoring.models import Score
from surveys import services as survey_services
from surveys.models import Indicator, Question, Round, StratumPopulation, Unit
from tests.factories import QuestionFactory, SectionFactory, VersionFactory
from tests.support.admin import admin_url, form_data
from tests.support.small_surveys import approx, respond, small_round

pytestmark = pytest.mark.django_db


def jkn(strata: list[tuple[F, list[F]]]) -> F:
    """Σ_h (n_h − 1)/n_h Σ_i (θ_(hi) − θ)², θ and the replicates as exact fractions."""
    return sum(
        (F(len(reps) - 1, len(reps)) * sum((r - full) ** 2 for r in reps) for full, reps in strata),
        F(0),
    )


# --- a hand-worked design ---------------------------------------------------------------


def two_item_round(code: str = "r-jk", variance: str = "taylor") -> Round:
    """M (mean) of I1 and I2, each fed by one yes/no question (Q1, Q2; yes is satisfied)."""
    version = VersionFactory(label=code)
    section = SectionFactory(version=version, code="MAIN", position=1)
    agg, kind = Indicator.Aggregation, Indicator.Kind
    mean = Indicator.objects.create(
        version=version, code="M", kind=kind.INDEX, aggregation=agg.MEAN, name_vi="M"
    )
    for position, code_ in enumerate(("1", "2"), start=1):
        item = Indicator.objects.create(
            version=version, code=f"I{code_}", kind=kind.ITEM, aggregation=agg.SHARE,
            parent=mean, position=position, name_vi=f"I{code_}",
        )  # fmt: skip
        QuestionFactory(
            section=section, code=f"Q{code_}", position=position, type=Question.Type.YESNO,
            indicator=item, satisfied_values=[True],
        )  # fmt: skip
    survey_services.publish_version(version_id=version.pk)
    now = timezone.now()
    survey_round = Round.objects.create(
        code=code,
        name_vi="Vòng",
        period_start=dt.date(2024, 1, 1),
        period_end=dt.date(2024, 12, 31),
        opens_at=now - dt.timedelta(days=1),
        closes_at=now + dt.timedelta(days=1),
        version=version,
        variance_method=variance,
    )
    survey_round.units.set(
        [Unit.objects.get_or_create(code=c, defaults={"name": c, "kind": "province"})[0]
         for c in "AB"]
    )  # fmt: skip
    return survey_round


@pytest.fixture
def design() -> Round:
    """Two strata (the units' defaults), villages as PSUs; a missing key is unanswered.

    unit A (stratum A)  a1: w1 Q1 yes Q2 no;   w2 Q1 no  Q2 yes
                        a2: w1 Q1 yes Q2 yes;  w1 Q1 yes (no Q2)
    unit B (stratum B)  b1: w1 Q1 yes Q2 yes
                        b2: w1 Q1 no  Q2 yes;  w1 Q1 yes Q2 no
                        b3: w2 Q1 no  Q2 no
    """
    r = two_item_round()
    respond(r, "A", 1, "a1", Q1=True, Q2=False)
    respond(r, "A", 2, "a1", Q1=False, Q2=True)
    respond(r, "A", 1, "a2", Q1=True, Q2=True)
    respond(r, "A", 1, "a2", Q1=True)
    respond(r, "B", 1, "b1", Q1=True, Q2=True)
    respond(r, "B", 1, "b2", Q1=False, Q2=True)
    respond(r, "B", 1, "b2", Q1=True, Q2=False)
    respond(r, "B", 2, "b3", Q1=False, Q2=False)
    return r


def jackknife_se(survey_round: Round, **options: Any) -> dict[tuple[str | None, str], Any]:
    result = replicates.jackknife(
        round_id=survey_round.pk, version_id=survey_round.version_id, **options
    )
    units = dict(Unit.objects.values_list("id", "code"))
    codes = dict(Indicator.objects.values_list("id", "code"))
    return {(units.get(u), codes[i]): se for (u, i), se in result.se.items()}


def test_hand_worked_replicates_of_a_share_and_a_mean(design: Round) -> None:
    se = jackknife_se(design)
    # Unit A, I1 = 3/5 (yes: 1 + 1 + 1 of 1 + 2 + 1 + 1). Drop a1: a2 doubled, 2 + 2 of 4
    # = 1. Drop a2: a1 doubled, 2 of 2 + 4 = 1/3. n_A = 2.
    i1_a = [F(1), F(1, 3)]
    assert se["A", "I1"] == approx(100 * math.sqrt(jkn([(F(3, 5), i1_a)])))
    assert jkn([(F(3, 5), i1_a)]) == F(26, 225)  # ½·((2/5)² + (4/15)²)
    # I2 = 3/4 (yes: 2 + 1 of 1 + 2 + 1); drop a1: 1; drop a2: 4 of 2 + 4 = 2/3.
    # M = (I1 + I2)/2 = 27/40; drop a1: (1 + 1)/2 = 1; drop a2: (1/3 + 2/3)/2 = 1/2.
    m_a = jkn([(F(27, 40), [F(1), F(1, 2)])])
    assert m_a == F(109, 1600)  # ½·((13/40)² + (7/40)²)
    assert se["A", "M"] == approx(100 * math.sqrt(m_a))
    # Unit B, I1 = 2/5 (yes 1 + 1 of 1 + 1 + 1 + 2); the other PSUs × 3/2 in each replicate:
    # drop b1: 1.5 of 3 + 3 = 1/4; drop b2: 1.5 of 1.5 + 3 = 1/3; drop b3: 3 of 4.5 = 2/3.
    i1_b = jkn([(F(2, 5), [F(1, 4), F(1, 3), F(2, 3)])])
    assert se["B", "I1"] == approx(100 * math.sqrt(i1_b))
    # Nation, I1 = (3 + 2)/(5 + 5) = 1/2; a replicate changes one unit's totals only:
    # drop a1: (4 + 2)/(4 + 5) = 2/3; drop a2: (2 + 2)/(6 + 5) = 4/11;
    # drop b1: (3 + 1.5)/(5 + 6) = 9/22; drop b2: (3 + 1.5)/(5 + 4.5) = 9/19;
    # drop b3: (3 + 3)/(5 + 4.5) = 12/19. Strata A (n = 2) and B (n = 3) add up.
    national = jkn([(F(1, 2), [F(2, 3), F(4, 11)]), (F(1, 2), [F(9, 22), F(9, 19), F(12, 19)])])
    assert se[None, "I1"] == approx(100 * math.sqrt(national))


def test_a_finite_population_correction_scales_its_stratum(design: Round) -> None:
    """Stratum B (3 PSUs sampled) of 6: f = 1/2, its terms × (1 − f); stratum A has none."""
    StratumPopulation.objects.create(round=design, unit=Unit.objects.get(code="B"), population=6)
    se = jackknife_se(design)
    a_part = jkn([(F(1, 2), [F(2, 3), F(4, 11)])])
    b_part = jkn([(F(1, 2), [F(9, 22), F(9, 19), F(12, 19)])])
    assert se["B", "I1"] == approx(
        100 * math.sqrt(F(1, 2) * jkn([(F(2, 5), [F(1, 4), F(1, 3), F(2, 3)])]))
    )
    assert se["A", "I1"] == approx(100 * math.sqrt(F(26, 225)))
    assert se[None, "I1"] == approx(100 * math.sqrt(a_part + F(1, 2) * b_part))


def test_a_stratum_across_two_units_changes_both_in_each_replicate() -> None:
    """Stratum "north" holds units A and B (each a domain of it); village v3 spans both.

    A: v1 yes, v3 no;   B: v2 no, v3 yes (all w = 1); n = 3, the PSUs left × 3/2.
    """
    r = two_item_round()
    respond(r, "A", 1, "v1", "north", Q1=True)
    respond(r, "A", 1, "v3", "north", Q1=False)
    respond(r, "B", 1, "v2", "north", Q1=False)
    respond(r, "B", 1, "v3", "north", Q1=True)
    se = jackknife_se(r)
    # A = 1/2; drop v1: 0; drop v2: 1.5 of 3 = 1/2; drop v3: 1.
    assert se["A", "I1"] == approx(100 * math.sqrt(jkn([(F(1, 2), [F(0), F(1, 2), F(1)])])))
    # B = 1/2; drop v1: 1/2; drop v2: 1; drop v3: 0.
    assert se["B", "I1"] == approx(100 * math.sqrt(jkn([(F(1, 2), [F(1, 2), F(1), F(0)])])))
    # Nation 2/4; drop v1: 1.5 of 4.5 = 1/3; drop v2: 3 of 4.5 = 2/3; drop v3: 1.5 of 3.
    nation = jkn([(F(1, 2), [F(1, 3), F(2, 3), F(1, 2)])])
    assert nation == F(1, 27)
    assert se[None, "I1"] == approx(100 * math.sqrt(nation))


def test_single_psu_strata_of_a_unit_are_collapsed() -> None:
    """Unit A: strata s1, s2 with one PSU each (collapsed into one stratum of 2 PSUs);
    stratum s3 with one PSU next to s4 with two (s3 joins s4: 3 PSUs); unit B: one stratum
    of one PSU (a certainty PSU: no replicate, no SE)."""
    r = two_item_round()
    respond(r, "A", 1, "p", "s1", Q1=True)
    respond(r, "A", 1, "p", "s2", Q1=False)
    respond(r, "B", 1, "p", "s9", Q1=True)
    respond(r, "B", 1, "p", "s9", Q1=False)  # the same PSU
    result = replicates.jackknife(round_id=r.pk, version_id=r.version_id)
    assert (result.replicates, result.strata, result.certainty) == (2, 1, 1)
    se = jackknife_se(r)
    # A: I1 = 1/2; drop s1's PSU: 0, drop s2's: 1; n = 2 → ½·(¼ + ¼) = ¼.
    assert se["A", "I1"] == approx(50)
    assert se["B", "I1"] is None
    # Nation 2/4 = 1/2: drop s1: (0 + 1)/(2 + 2) = 1/4; drop s2: (2 + 1)/(2 + 2) = 3/4.
    assert se[None, "I1"] == approx(100 * math.sqrt(jkn([(F(1, 2), [F(1, 4), F(3, 4)])])))

    lone = two_item_round("r-jk-lone")
    respond(lone, "A", 1, "p", "s3", Q1=True)
    respond(lone, "A", 1, "p", "s4", Q1=False)
    respond(lone, "A", 1, "q", "s4", Q1=True)
    respond(lone, "A", 1, "q", "s4", Q1=True)
    result = replicates.jackknife(round_id=lone.pk, version_id=lone.version_id)
    assert (result.replicates, result.strata, result.certainty) == (3, 1, 0)
    # I1 = 3/4; × 3/2 for the two PSUs left: drop s3/p: (1.5·2)/(1.5·3) = 2/3;
    # drop s4/p: (1.5 + 3)/(1.5 + 3) = 1; drop s4/q: 1.5/(1.5 + 1.5) = 1/2.
    expected = jkn([(F(3, 4), [F(2, 3), F(1), F(1, 2)])])
    assert jackknife_se(lone)["A", "I1"] == approx(100 * math.sqrt(expected))


def test_a_share_jackknifed_by_respondent_is_close_to_taylor_but_not_equal() -> None:
    """Default design (PSU = respondent): JKn and linearization estimate the same variance
    of a ratio to first order; they differ in the second."""
    rng = random.Random(13)
    r = two_item_round()
    for k in range(120):
        unit = "A" if k < 70 else "B"
        answers = {"Q1": rng.random() < 0.6}
        if rng.random() < 0.8:
            answers["Q2"] = rng.random() < 0.3
        respond(r, unit, rng.choice([0.5, 1.0, 2.0, 3.0]), **answers)
    taylor = {
        (v.unit_id, v.indicator_code): v.se
        for v in engine.compute_values(round_id=r.pk, version_id=r.version_id)
    }
    result = replicates.jackknife(round_id=r.pk, version_id=r.version_id)
    assert result.replicates == 120
    codes = dict(Indicator.objects.filter(version=r.version).values_list("id", "code"))
    for (unit, indicator), se in result.se.items():
        t = taylor[unit, codes[indicator]]
        assert 0.9 < se / t < 1.1, (unit, codes[indicator], se, t)
        assert abs(se - t) > 1e-6  # not the same estimator


# --- raking ------------------------------------------------------------------------------


@pytest.fixture
def raked(settings) -> Round:
    """Unit A in four villages of varied urban/rural mix; urban respondents are satisfied,
    rural ones not; area margins u 1 : r 1. Raked, I1 is 50% in the full sample and in every
    replicate, so the re-raked SE is 0; with the raked weights held fixed it is not."""
    settings.RAKING_QUESTIONS = {"sex": "SEX", "age": "AGE", "area": "AREA"}
    settings.RAKING_MAX_ITERATIONS, settings.RAKING_TOLERANCE = 1000, 1e-12
    survey_round, _version = small_round()
    villages = {"v1": (3, 1), "v2": (1, 3), "v3": (2, 2), "v4": (4, 1)}  # (urban, rural)
    for village, (urban, rural) in villages.items():
        for area, count in (("u", urban), ("r", rural)):
            for _ in range(count):
                response = respond(
                    survey_round, "A", 1.0, SEX="nam", AGE="a1", AREA=area, Q1=area == "u"
                )
                Response.objects.filter(pk=response.pk).update(psu=village)
    replace_margins(
        round_code="r-raking", data="unit,dimension,category,population\nA,area,u,1\nA,area,r,1\n"
    )
    return survey_round


def test_re_raking_each_replicate_counts_raking_in_the_precision(raked: Round) -> None:
    rerake = jackknife_se(raked)
    fixed = jackknife_se(raked, rerake=False)
    assert rerake["A", "I1"] == approx(0)
    # Fixed factors: the full sample has 10 urban, 7 rural (w = 1), factors u 17/20, r 17/14.
    # Replicates (other villages × 4/3): drop v1: u (1+2+4)·4/3, r (3+2+1)·4/3 →
    # I1 = 7·17/20 / (7·17/20 + 6·17/14) = (119/20)/(119/20 + 51/7); and so on.
    fu, fr = F(17, 20), F(17, 14)

    def fixed_share(urban: int, rural: int) -> F:
        return urban * fu / (urban * fu + rural * fr)

    reps = [fixed_share(7, 6), fixed_share(9, 4), fixed_share(8, 5), fixed_share(6, 6)]
    expected = jkn([(fixed_share(10, 7), reps)])
    assert fixed_share(10, 7) == F(1, 2)
    assert fixed["A", "I1"] == approx(100 * math.sqrt(expected))
    assert fixed["A", "I1"] > 5


def test_replicates_are_centred_on_the_published_raked_values(raked: Round) -> None:
    """θ of the jackknife (its own read and raking) is the value the run publishes."""
    Round.objects.filter(pk=raked.pk).update(variance_method=Round.Variance.JACKKNIFE)
    run = services.recompute_round(round_code=raked.code)
    result = replicates.jackknife(round_id=raked.pk, version_id=raked.version_id)
    published = {
        (s.unit_id, s.indicator_id): s.value
        for s in Score.objects.filter(run=run, scope__in=[Score.Scope.UNIT, Score.Scope.NATIONAL])
    }
    assert published.keys() == result.values.keys()
    for key, value in published.items():
        assert result.values[key] == approx(value)
    assert published[Unit.objects.get(code="A").pk, Indicator.objects.get(
        version=raked.version, code="I1").pk] == approx(50)  # fmt: skip


# --- runs and the admin ------------------------------------------------------------------


def test_a_jackknife_round_publishes_jackknife_standard_errors(design: Round) -> None:
    Round.objects.filter(pk=design.pk).update(variance_method=Round.Variance.JACKKNIFE)
    progress: list[str] = []
    run = services.recompute_round(round_code=design.code, progress=progress.append)
    assert run.settings_used["variance"]["method"] == "jackknife"
    assert run.settings_used["variance"]["replicates"] == 5  # a1, a2, b1, b2, b3
    assert "r-jk: jackknife: replicate 5 of 5" in progress
    score = Score.objects.get(run=run, unit__code="A", indicator__code="I1")
    assert score.se == approx(100 * math.sqrt(F(26, 225)))
    assert (score.ci_low, score.ci_high) == pytest.approx(
        # unit A: villages a1 and a2 in one stratum, 1 degree of freedom (t quantile 12.71)
        intervals.interval(60.0, 100 * math.sqrt(26 / 225), n=4, df=1)
    )
    national = Score.objects.get(run=run, scope=Score.Scope.NATIONAL, indicator__code="M")
    assert national.se is not None and national.value is not None


def test_a_taylor_round_keeps_the_engine_standard_errors(design: Round) -> None:
    run = services.recompute_round(round_code=design.code)
    assert "variance" not in run.settings_used
    score = Score.objects.get(run=run, unit__code="A", indicator__code="I1")
    engine_se = {
        (v.unit_id, v.indicator_code): v.se
        for v in engine.compute_values(round_id=design.pk, version_id=design.version_id)
    }
    assert score.se == approx(engine_se[score.unit_id, "I1"])


def test_the_design_effect_is_rescaled_by_the_variance_ratio() -> None:
    value = engine.NodeValue(
        indicator_id=1, indicator_code="I", unit_id=7, value=40.0, n=50, valid=50,
        weight_sum=50.0, se=4.0, ci_low=None, ci_high=None, deff=1.5, n_eff=50 / 1.5,
    )  # fmt: skip
    result = replicates.JackknifeResult(se={(7, 1): 6.0}, replicates=9, strata=1, certainty=0)
    (out,) = replicates.apply([value], result)
    assert out.se == 6.0
    assert out.deff == approx(1.5 * (6 / 4) ** 2)  # 3.375
    assert out.n_eff == approx(50 / 3.375)
    assert (out.ci_low, out.ci_high) == pytest.approx(intervals.logit_interval(40.0, 6.0))
    (gone,) = replicates.apply([value], replicates.JackknifeResult({}, 0, 0, 0))
    assert (gone.se, gone.deff, gone.n_eff, gone.ci_low) == (None, None, None, None)


def test_the_round_admin_form_saves_the_variance_method(admin_client: Client, sipas) -> None:
    url = admin_url("round", "add")
    data = form_data(admin_client, url, "round_form")
    assert data["variance_method"] == ["taylor"]  # the default, checked
    units = list(Unit.objects.filter(code__in=["01", "79"]).values_list("pk", flat=True))
    data.update(
        {
            "code": ["r-jk-admin"],
            "name_vi": ["Vòng"],
            "period_start": ["2026-01-01"],
            "period_end": ["2026-12-31"],
            "opens_at_0": ["2026-06-01"],
            "opens_at_1": ["08:00:00"],
            "closes_at_0": ["2026-07-01"],
            "closes_at_1": ["08:00:00"],
            "version": [str(sipas.pk)],
            "units": [str(u) for u in units],
            "variance_method": ["jackknife"],
            "stratum_populations-TOTAL_FORMS": ["0"],
            "stratum_populations-INITIAL_FORMS": ["0"],
        }
    )
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Round.objects.get(code="r-jk-admin").variance_method == "jackknife"


def test_the_round_admin_refuses_an_unknown_variance_method(admin_client: Client, sipas) -> None:
    survey_round = Round.objects.get(code="demo")
    url = admin_url("round", "change", survey_round.pk)
    data = form_data(admin_client, url, "round_form")
    data["variance_method"] = ["bootstrap"]
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "variance_method" in response.context["adminform"].form.errors
    survey_round.refresh_from_db()
    assert survey_round.variance_method == "taylor"


def test_the_jackknife_of_a_share_equals_samplics() -> None:
    """A stratified cluster design with weights and missing answers: the SE of item I1 per
    unit (a domain) and nationally equals samplics' JKn (conservative: centred on θ)."""
    samplics_weighting = pytest.importorskip("samplics.weighting")
    samplics_estimation = pytest.importorskip("samplics.estimation")
    from samplics.utils.types import PopParam, RepMethod

    rng = random.Random(2024)
    r = two_item_round()
    rows = []  # (unit, village, weight, answered, satisfied), sorted by stratum (unit)
    for unit, villages in (("A", 3), ("B", 4)):
        for v in range(villages):
            for _ in range(rng.randint(2, 6)):
                weight = rng.choice([0.5, 1.0, 1.5, 4.0])
                answered, satisfied = rng.random() < 0.85, rng.random() < 0.4 + 0.1 * v
                rows.append((unit, f"{unit}{v}", weight, answered, answered and satisfied))
                respond(r, unit, weight, f"v{v}", **({"Q1": satisfied} if answered else {}))
    se = jackknife_se(r)

    unit, psu, weight, x, y = (np.array(column) for column in zip(*rows, strict=True))
    replicate = samplics_weighting.ReplicateWeight(RepMethod.jackknife, strat=True)
    weights = replicate.replicate(weight, psu, unit)
    assert list(weights["_psu"]) == list(psu)  # rows kept in order (sorted by stratum)
    rep_weights = weights[[c for c in weights if c.startswith("_jk_wgt_")]].to_numpy()
    estimator = samplics_estimation.ReplicateEstimator(RepMethod.jackknife, PopParam.ratio)
    for domain in (None, "A", "B"):
        inside = np.ones(len(rows), bool) if domain is None else unit == domain
        estimator.estimate(
            y=np.where(inside, y, 0.0).astype(float),
            x=np.where(inside, x, 0.0).astype(float),
            samp_weight=weight,
            rep_weights=rep_weights,
            rep_coefs=np.array(replicate.rep_coefs),
            conservative=True,
        )
        assert se[domain, "I1"] == pytest.approx(100 * math.sqrt(estimator.variance), abs=1e-9)
