"""The scoring engine's values, worked out by hand on a small questionnaire and on SIPAS."""

from __future__ import annotations

import math
from fractions import Fraction as F
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from feedback.models import Answer, Response
from scoring import sql
from scoring.engine import NodeValue, UnsupportedQuestion, compute_values
from surveys.models import Indicator, Question, QuestionnaireVersion, Round
from tests.factories import typed
from tests.support.small_surveys import Survey, approx, respond, small_survey, values_by

pytestmark = pytest.mark.django_db


T3 = 3.182446305284263  # t(0.975, 3 degrees of freedom), from t tables: 3.182


@pytest.fixture
def survey() -> Survey:
    """Seven respondents; a missing key is an unanswered (or hidden) question.

    unit A: r1 w=1   USED yes  Q1=5 ✓  Q2=4 ✓  Q3 yes ✓  Q4=a ✓
            r2 w=2   USED yes  Q1=3    Q2=5 ✓  Q3 no     Q4=b
            r3 w=0.5 USED no   Q1=4 ✓  (hidden) Q3 yes ✓ (missing)
            r4 w=1   USED yes  (missing) Q2=2  Q3 yes ✓  Q4=c
    unit B: r5 w=1   USED no   Q1=1    (hidden) Q3 no    Q4=a ✓
            r6 w=2   USED yes  Q1=4 ✓  Q2=4 ✓  Q3 yes ✓  Q4=a ✓
    unit C: no responses
    unit D: r7 w=1   USED no   Q1=5 ✓  (hidden) Q3 no    (missing)
    """
    s = small_survey()
    respond(s.round, "A", 1.0, USED=True, Q1=5, Q2=4, Q3=True, Q4="a")
    respond(s.round, "A", 2.0, USED=True, Q1=3, Q2=5, Q3=False, Q4="b")
    respond(s.round, "A", 0.5, USED=False, Q1=4, Q3=True)
    respond(s.round, "A", 1.0, USED=True, Q2=2, Q3=True, Q4="c")
    respond(s.round, "B", 1.0, USED=False, Q1=1, Q3=False, Q4="a")
    respond(s.round, "B", 2.0, USED=True, Q1=4, Q2=4, Q3=True, Q4="a")
    respond(s.round, "D", 1.0, USED=False, Q1=5, Q3=False)
    return s


def se_percent(n: int, scores: list[F]) -> float:
    """100 · sqrt(n/(n−1) · Σ(z − z̄)²) over n respondents (absent ones have z = 0)."""
    mean = sum(scores, F(0)) / n
    squares = sum(((z - mean) ** 2 for z in scores), F(0)) + (n - len(scores)) * mean**2
    return 100 * math.sqrt(F(n, n - 1) * squares)


def test_item_values_are_weighted_shares_of_valid_answers(survey: Survey) -> None:
    v = values_by(survey)
    # unit A, I1 (Q1): satisfied weights 1 (r1) + 0.5 (r3) of valid 1 + 2 + 0.5 (r4 missing)
    assert v["A", "I1"].value == approx(F(100) * F(3, 2) / F(7, 2))  # 300/7
    assert (v["A", "I1"].n, v["A", "I1"].valid) == (3, 3)
    assert v["A", "I1"].weight_sum == approx(3.5)
    # unit A, I2 (Q2, hidden for r3): satisfied 1 (r1) + 2 (r2) of valid 1 + 2 + 1 (r4)
    assert v["A", "I2"].value == approx(F(100) * 3 / 4)  # 75
    # unit A, I3 (Q3 yes/no): yes weights 1 + 0.5 + 1 of valid 1 + 2 + 0.5 + 1
    assert v["A", "I3"].value == approx(F(100) * F(5, 2) / F(9, 2))  # 500/9
    assert (v["A", "I3"].n, v["A", "I3"].valid) == (4, 4)
    # unit A, I4 (Q4 single choice): "a" weight 1 (r1) of valid 1 + 2 + 1 (r3 missing)
    assert v["A", "I4"].value == approx(25)
    # unit B: I1 2 of 1 + 2; I2 2 of 2 (r5 hidden); I3 2 of 1 + 2; I4 1 + 2 of 1 + 2
    assert v["B", "I1"].value == approx(F(200, 3))
    assert v["B", "I2"].value == approx(100)
    assert (v["B", "I2"].n, v["B", "I2"].weight_sum) == (1, 2.0)
    assert v["B", "I3"].value == approx(F(200, 3))
    assert v["B", "I4"].value == approx(100)
    # unit D: I2 hidden and I4 missing for its only respondent: no valid answer, no value
    assert v["D", "I1"].value == approx(100)
    assert v["D", "I3"].value == approx(0)
    assert (v["D", "I2"].value, v["D", "I2"].n, v["D", "I2"].valid) == (None, 0, 0)
    assert v["D", "I4"].value is None


def test_pooled_weighted_mean_and_mean_nodes_follow_their_rule(survey: Survey) -> None:
    v = values_by(survey)
    # unit A, E1 pooled over I1 and I2: satisfied 1.5 + 3 of valid 3.5 + 4 → 4.5/7.5
    assert v["A", "E1"].value == approx(60)
    # r1–r4 each have a valid answer under E1 (r3 only Q1, r4 only Q2); 3 + 3 answers
    assert (v["A", "E1"].n, v["A", "E1"].valid) == (4, 6)
    assert v["A", "E1"].weight_sum == approx(1 + 2 + 0.5 + 1)
    # unit A, E2 weighted mean: (3 · 5/9 + 1 · 1/4) / (3 + 1) = 23/48
    e2_a = F(100) * (3 * F(5, 9) + 1 * F(1, 4)) / 4
    assert v["A", "E2"].value == approx(e2_a)
    assert (v["A", "E2"].n, v["A", "E2"].valid) == (4, 4 + 3)
    # unit A, ROOT mean of E1 and E2
    assert v["A", "ROOT"].value == approx((60 + e2_a) / 2)
    assert (v["A", "ROOT"].n, v["A", "ROOT"].valid) == (4, 13)
    # unit B: E1 (2 + 2)/(3 + 2); E2 (3 · 2/3 + 1 · 1)/4; ROOT (80 + 75)/2
    assert v["B", "E1"].value == approx(80)
    assert v["B", "E2"].value == approx(75)
    assert v["B", "ROOT"].value == approx(F(155, 2))
    # unit D: E1 pooled over I1 only (1 of 1); E2 renormalized to I3 alone (weight 3/3 → 0)
    assert v["D", "E1"].value == approx(100)
    assert v["D", "E2"].value == approx(0)
    assert v["D", "ROOT"].value == approx(50)


def test_national_values_pool_all_respondents_with_weights(survey: Survey) -> None:
    v = values_by(survey)
    # I1: satisfied 1.5 (A) + 2 (B) + 1 (D) of valid 3.5 + 3 + 1 → 4.5/7.5, not the mean
    # of the unit values (300/7, 200/3, 100)
    assert v[None, "I1"].value == approx(60)
    assert (v[None, "I1"].n, v[None, "I1"].valid) == (3 + 2 + 1, 6)
    # I2: 3 + 2 of 4 + 2; I3: 2.5 + 2 + 0 of 4.5 + 3 + 1; I4: 1 + 3 of 4 + 3
    i2, i3, i4 = F(5, 6), F(9, 2) / F(17, 2), F(4, 7)
    assert v[None, "I2"].value == approx(100 * i2)
    assert v[None, "I3"].value == approx(100 * i3)  # 900/17
    assert v[None, "I4"].value == approx(100 * i4)
    # E1 pooled: 4.5 + 5 of 7.5 + 6; E2: (3 · 9/17 + 1 · 4/7)/4; ROOT their mean
    e1, e2 = F(19, 2) / F(27, 2), (3 * i3 + i4) / 4
    assert v[None, "E1"].value == approx(100 * e1)  # 1900/27
    assert v[None, "E2"].value == approx(100 * e2)
    assert v[None, "ROOT"].value == approx(100 * (e1 + e2) / 2)
    assert (v[None, "ROOT"].n, v[None, "ROOT"].weight_sum) == (7, approx(8.5))


def test_unit_without_responses_gets_no_values(survey: Survey) -> None:
    v = values_by(survey)
    assert {unit for unit, _code in v} == {"A", "B", "D", None}
    assert {code for _unit, code in v} == {"ROOT", "E1", "E2", "I1", "I2", "I3", "I4"}
    assert len(v) == 4 * 7


def test_standard_error_of_an_item_linearizes_its_ratio(survey: Survey) -> None:
    v = values_by(survey)
    # unit A, I1: p = 3/7, X = 3.5; z_i = w_i (y_i − p x_i) / X over its 4 respondents
    p, x = F(3, 7), F(7, 2)
    scores = [
        1 * (1 - p) / x,  # r1 satisfied: 8/49
        2 * (0 - p) / x,  # r2 not satisfied: −12/49
        F(1, 2) * (1 - p) / x,  # r3 satisfied: 4/49
        F(0),  # r4 no answer to Q1
    ]
    # SE² = 4/3 · (64 + 144 + 16)/2401 = 896/7203 → SE = 35.27 points
    assert v["A", "I1"].se == approx(100 * math.sqrt(F(896, 7203)))
    assert v["A", "I1"].se == approx(se_percent(4, scores))
    # the logit interval: logit(3/7) = ln(3/4) ± q · s/(p(1 − p)), s = SE/100, p(1 − p) =
    # 12/49, q the t quantile on 4 respondents (PSUs) − 1 stratum = 3 degrees of freedom:
    # t(0.975, 3) = 3.182446 (t tables)
    assert v["A", "I1"].df == 3
    half = T3 * math.sqrt(896 / 7203) / (12 / 49)
    low, high = (100 / (1 + math.exp(-(math.log(3 / 4) + d))) for d in (-half, half))
    assert (v["A", "I1"].ci_low, v["A", "I1"].ci_high) == (approx(low), approx(high))
    assert 0 < low < 300 / 7 < high < 100  # inside (0, 100), where Wald ran past both ends


def test_standard_error_of_a_pooled_node_counts_each_respondent_once(survey: Survey) -> None:
    v = values_by(survey)
    # unit A, E1 pooled: P = 0.6, ΣX = 7.5; z_i = w_i (Σ y − P Σ x) / 7.5
    scores = [
        F(1) * (2 - F(3, 5) * 2) / F(15, 2),  # r1: Q1 ✓ Q2 ✓ → 8/75
        F(2) * (1 - F(3, 5) * 2) / F(15, 2),  # r2: Q1 ✗ Q2 ✓ → −4/75
        F(1, 2) * (1 - F(3, 5) * 1) / F(15, 2),  # r3: Q1 ✓ → 2/75
        F(1) * (0 - F(3, 5) * 1) / F(15, 2),  # r4: Q2 ✗ → −6/75
    ]
    # SE² = 4/3 · (64 + 16 + 4 + 36)/5625 = 160/5625 → SE = 16.86 points
    se = 100 * math.sqrt(F(160, 5625))
    assert v["A", "E1"].se == approx(se)
    assert v["A", "E1"].se == approx(se_percent(4, scores))
    # logit interval: ln(0.6/0.4) ± q · (SE/100)/(0.6 · 0.4), 3 degrees of freedom again
    half = T3 * (se / 100) / F(6, 25)
    low, high = (100 / (1 + math.exp(-(math.log(1.5) + d))) for d in (-half, half))
    assert v["A", "E1"].ci_low == approx(low)
    assert v["A", "E1"].ci_high == approx(high)


def test_standard_error_of_a_mean_combines_item_scores_per_respondent(survey: Survey) -> None:
    v = values_by(survey)
    # unit A, ROOT = ½ E1 + ½ E2 with E2 = ¾ I3 + ¼ I4 (p3 = 5/9, X3 = 4.5; p4 = ¼, X4 = 4)
    # E2 scores: ¾ w (y3 − 5/9)/4.5 + ¼ w (y4 − ¼)/4
    e1 = [F(8, 75), F(-4, 75), F(2, 75), F(-6, 75)]  # as in the pooled test
    e2 = [
        F(3, 4) * (1 - F(5, 9)) / F(9, 2) + F(1, 4) * (1 - F(1, 4)) / 4,  # r1: 2/27 + 3/64
        F(3, 4) * 2 * (0 - F(5, 9)) / F(9, 2) + F(1, 4) * 2 * (0 - F(1, 4)) / 4,  # −5/27 − 1/32
        F(3, 4) * F(1, 2) * (1 - F(5, 9)) / F(9, 2),  # r3 (no Q4): 1/27
        F(3, 4) * (1 - F(5, 9)) / F(9, 2) + F(1, 4) * (0 - F(1, 4)) / 4,  # r4: 2/27 − 1/64
    ]
    assert e2 == [F(2, 27) + F(3, 64), F(-5, 27) - F(1, 32), F(1, 27), F(2, 27) - F(1, 64)]
    root = [(a + b) / 2 for a, b in zip(e1, e2, strict=True)]
    assert v["A", "E2"].se == approx(se_percent(4, e2))
    assert v["A", "ROOT"].se == approx(se_percent(4, root))


def test_nodes_read_through_their_blocks_match_nodes_read_answer_by_answer(
    survey: Survey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mean's z is γ × its blocks' z; read directly, every figure is the same."""
    through_blocks = compute_values(round_id=survey.round.pk, version_id=survey.version.pk)
    plan = sql._linear_plan
    monkeypatch.setattr(sql, "_linear_plan", lambda rows, _blocks, scopes: plan(rows, {}, scopes))
    direct = compute_values(round_id=survey.round.pk, version_id=survey.version.pk)

    assert [(v.indicator_code, v.unit_id, v.n) for v in through_blocks] == [
        (v.indicator_code, v.unit_id, v.n) for v in direct
    ]
    for blocked, plain in zip(through_blocks, direct, strict=True):
        assert blocked.weight_sum == pytest.approx(plain.weight_sum, rel=1e-12)
        if plain.se is None:
            assert blocked.se is None
        else:
            assert blocked.se == pytest.approx(plain.se, rel=1e-9, abs=1e-12)
    assert any(v.se for v in direct)


def test_answer_bits_read_through_a_table_match_those_read_from_an_array(
    survey: Survey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL reads each answer's bit from an array unless question ids spread too far."""
    default = compute_values(round_id=survey.round.pk, version_id=survey.version.pk)
    monkeypatch.setattr(sql, "ARRAY_SPAN_LIMIT", 0)
    joined = compute_values(round_id=survey.round.pk, version_id=survey.version.pk)
    assert [(v.indicator_code, v.unit_id, v.n, v.valid) for v in joined] == [
        (v.indicator_code, v.unit_id, v.n, v.valid) for v in default
    ]
    for table, array in zip(joined, default, strict=True):  # sums may differ in order only
        if array.se is None:
            assert table.se is None
        else:
            assert table.se == pytest.approx(array.se, rel=1e-12)
        assert table.weight_sum == pytest.approx(array.weight_sum, rel=1e-12)


def test_one_respondent_gives_no_standard_error(survey: Survey) -> None:
    v = values_by(survey)
    assert v["D", "ROOT"].value == approx(50)
    assert (v["D", "ROOT"].se, v["D", "ROOT"].ci_low, v["D", "ROOT"].ci_high) == (None,) * 3
    # the nation's 7 respondents do give one
    assert v[None, "ROOT"].se is not None


def test_responses_naming_no_agency_count_nationally_at_agency_level(survey: Survey) -> None:
    by_unit = values_by(survey)
    by_agency = values_by(survey, unit_level="agency")
    # no response names an agency: no agency rows, the same national rows
    assert {unit for unit, _code in by_agency} == {None}
    for (unit, code), row in by_agency.items():
        assert row == by_unit[unit, code] or (
            row.value == approx(by_unit[unit, code].value)
            and row.se == approx(by_unit[unit, code].se)
            and (row.n, row.valid) == (by_unit[unit, code].n, by_unit[unit, code].valid)
        )


def test_multiple_choice_items_are_refused(survey: Survey) -> None:
    Question.objects.filter(pk=survey.questions["Q4"].pk).update(type=Question.Type.MULTIPLE)
    with pytest.raises(UnsupportedQuestion):
        compute_values(round_id=survey.round.pk, version_id=survey.version.pk)


def add_responses(survey: Survey, count: int, start: int) -> None:
    """``count`` more respondents in units A and B, with varied answers and weights."""
    responses = Response.objects.bulk_create(
        Response(
            round=survey.round,
            version=survey.version,
            unit=survey.units["AB"[i % 2]],
            channel=Response.Channel.API,
            weight=1 + i % 3,
        )
        for i in range(start, start + count)
    )
    q = survey.questions
    Answer.objects.bulk_create(
        Answer(response=r, question=question, value=value, **typed(value))
        for i, r in enumerate(responses, start=start)
        for question, value in (
            (q["USED"], i % 2 == 0),
            (q["Q1"], 1 + i % 5),
            (q["Q3"], i % 3 == 0),
            (q["Q4"], "abc"[i % 3]),
        )
    )


def test_query_count_does_not_grow_with_responses() -> None:
    survey = small_survey()
    counts = []
    for start, count in ((0, 10), (10, 90)):  # 10 responses, then 100
        add_responses(survey, count, start)
        with CaptureQueriesContext(connection) as queries:
            compute_values(round_id=survey.round.pk, version_id=survey.version.pk)
        # Statements reading data; on PostgreSQL one statement runs in a savepoint with
        # its own settings (set_config), which reads nothing.
        counts.append(
            [
                q["sql"][:30]
                for q in queries.captured_queries
                if not q["sql"].startswith(("SAVEPOINT", "RELEASE", "SELECT set_config"))
            ]
        )
    # the tree, the scored questions, the design per scope and per stratum, the units'
    # codes, the stratum populations, the item totals and the linearized sums
    assert len(counts[0]) == len(counts[1]) == 8, counts


def test_sipas_tree_gets_every_node_per_unit_and_sipas_is_the_mean_of_its_fields(
    sipas: QuestionnaireVersion,
) -> None:
    survey_round = Round.objects.get(code="sipas-2022")
    units = list(survey_round.units.order_by("code")[:2])
    scored = list(
        Question.objects.filter(version=sipas, indicator__isnull=False)
        .select_related("indicator")
        .prefetch_related("choices")
        .order_by("id")
    )
    for i in range(5):
        response = Response.objects.create(
            round=survey_round, version=sipas, unit=units[i % 2], channel="api", weight=1 + i
        )
        answers = []
        for j, question in enumerate(scored):
            if (i + j) % 7 == 0:
                continue  # a missing answer
            if question.type == Question.Type.YESNO:
                value: Any = (i + j) % 2 == 0
            elif question.type == Question.Type.SINGLE:
                codes = [c.code for c in question.choices.all()]
                value = codes[(i + j) % len(codes)]
            else:
                low, high = int(question.min_value), int(question.max_value)
                value = low + (i * 3 + j) % (high - low + 1)
            answers.append(
                Answer(response=response, question=question, value=value, **typed(value))
            )
        Answer.objects.bulk_create(answers)

    rows = compute_values(round_id=survey_round.pk, version_id=sipas.pk)

    codes = set(Indicator.objects.filter(version=sipas).values_list("code", flat=True))
    by_scope: dict[int | None, dict[str, NodeValue]] = {}
    for row in rows:
        by_scope.setdefault(row.unit_id, {})[row.indicator_code] = row
    assert set(by_scope) == {units[0].pk, units[1].pk, None}
    for scope, values in by_scope.items():
        assert set(values) == codes, scope
        assert len([r for r in rows if r.unit_id == scope]) == len(codes)
        pol, svc = values["POL"].value, values["SVC"].value
        assert values["SIPAS"].value == approx((pol + svc) / 2)
        assert values["SIPAS"].n == (5 if scope is None else 3 - (scope == units[1].pk))
