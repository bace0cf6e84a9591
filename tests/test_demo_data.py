"""Synthetic SIPAS responses (``manage.py generate_demo_data``, ``demo.responses``)."""

from __future__ import annotations

from collections import defaultdict
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import Count, Q

from demo import responses as demo
from feedback.models import Answer, Response
from feedback.services import request_digest, round_questions, submit_response
from feedback.validation import clean_answers
from surveys.models import Round

ROUND = "sipas-2022"


def generate(responses: int, seed: int = 7, *flags: str) -> str:
    out = StringIO()
    call_command(
        "generate_demo_data",
        "--round", ROUND, "--responses", str(responses), "--seed", str(seed), *flags,
        stdout=out,
    )  # fmt: skip
    return out.getvalue()


def snapshot() -> list[tuple[Any, ...]]:
    """Every demo response with its answers, independent of database ids."""
    answers: dict[int, list[tuple]] = defaultdict(list)
    for response_id, code, value, number, choice in Answer.objects.values_list(
        "response_id", "question__code", "value", "number", "code"
    ):
        answers[response_id].append((code, value, number, choice))
    return sorted(
        (
            r.client_id,
            r.receipt,
            r.unit_id,
            r.request_digest,
            r.submitted_at,
            r.channel,
            r.weight,
            sorted(answers[r.pk], key=lambda a: a[0]),
        )
        for r in Response.objects.all()
    )


def sent_answers(response: Response) -> dict[str, Any]:
    return dict(response.answers.values_list("question__code", "value"))


def test_the_same_seed_gives_the_same_responses(sipas: Any) -> None:
    generate(120, 11)
    first = snapshot()
    generate(120, 11, "--replace")
    assert snapshot() == first
    assert Response.objects.count() == 120

    generate(60, 11, "--replace")
    generate(60, 11)  # continues the seed's sequence: two runs of 60 = one run of 120
    assert snapshot() == first

    generate(30, 12)  # another seed adds other responses
    assert Response.objects.count() == 150
    assert Response.objects.values("receipt").distinct().count() == 150


def test_hidden_questions_get_no_answers(sipas: Any) -> None:
    generate(400)

    def without(screener: str) -> Q:
        return Q(response__answers__question__code=screener, response__answers__value=False)

    service = Answer.objects.filter(question__code__startswith="S")
    assert service.exists()
    assert not service.filter(without("Q8_4")).exists()
    assert not Answer.objects.filter(without("Q8_2"), question__code="P06").exists()
    assert not Answer.objects.filter(without("Q8_1"), question__code="P07").exists()
    # Screeners route both ways, and some optional items are left blank.
    procedure = Answer.objects.filter(question__code="Q8_4")
    assert 0.2 < procedure.filter(value=True).count() / procedure.count() < 0.6
    assert Answer.objects.filter(question__code="P01").count() < 400


def test_every_stored_answer_passes_validation(sipas: Any) -> None:
    generate(150)
    questions = round_questions(Round.objects.get(code=ROUND))
    for response in Response.objects.select_related("unit").prefetch_related("answers")[:150]:
        answers = sent_answers(response)
        cleaned, errors = clean_answers(questions, answers)
        assert errors == {}
        stored = {a.question.code: (a.value, a.number, a.code) for a in response.answers.all()}
        assert stored == {c: (a.value, a.number, a.code) for c, a in cleaned.items()}
        digest = request_digest(
            round_code=ROUND,
            unit_code=response.unit.code,
            answers=answers,
            design={"psu": response.psu, "stratum": response.stratum},
        )
        assert response.request_digest == digest


def test_required_answers_are_always_there(sipas: Any) -> None:
    generate(300)
    required = ["A01", "A02", *(f"Q8_{n}" for n in range(1, 8))]
    counts = Response.objects.annotate(
        given=Count("answers", filter=Q(answers__question__code__in=required))
    )
    assert set(counts.values_list("given", flat=True)) == {len(required)}
    assert Answer.objects.filter(question__code="A03").count() < 300  # optional: some blank


def test_provincial_levels_follow_the_published_ranking(sipas: Any) -> None:
    levels = demo.unit_levels([f"{n:02d}" for n in range(1, 97)], seed=3)
    ordered = sorted(levels, key=lambda code: levels[code][0])
    assert ordered[-1] == "22" and ordered[-2] == "19"  # Quảng Ninh, Thái Nguyên
    assert ordered[0] == "20" and ordered[1] == "06"  # Lạng Sơn, Bắc Kạn

    # 40 respondents per province, without village effects: at 31 per village a province's
    # 40 come from 2 villages, whose effects (SD 0.09 at ICC 0.05) would blur the levels.
    generate(2520, 7, "--icc", "0")
    satisfied = Count("id", filter=Q(number__gte=4))
    shares = {
        row["response__unit__code"]: row["satisfied"] / row["total"]
        for row in Answer.objects.filter(question__code__regex=r"^[PS][0-9]")
        .values("response__unit__code")
        .annotate(satisfied=satisfied, total=Count("id"))
    }
    assert shares["22"] > shares["20"] + 0.08
    assert shares["19"] > shares["06"] + 0.08


def test_if_empty_adds_nothing_to_a_round_with_responses(sipas: Any) -> None:
    assert "100 demo responses" in generate(100, 7, "--if-empty")
    assert "no demo data added" in generate(100, 7, "--if-empty")
    assert Response.objects.count() == 100


def test_replace_keeps_responses_that_are_not_demo_data(sipas: Any) -> None:
    answers = {"A01": "nu", "A02": "35_49", **{f"Q8_{n}": False for n in range(1, 8)}, "P01": 4}
    real = submit_response(round_code=ROUND, unit_code="19", answers=answers, channel="paper")
    generate(50)
    generate(20, 8, "--replace")
    assert Response.objects.count() == 21
    assert Response.objects.filter(pk=real.response.pk).exists()
    assert Answer.objects.filter(response=real.response).count() == len(answers)


def test_demo_client_ids_encode_seed_and_index() -> None:
    client_id = demo.demo_client_id(2**32 - 1, 123_456)
    assert client_id.version == 8
    assert demo.demo_index(client_id) == 123_456
    low, high = demo.demo_client_id_range()
    assert low <= client_id <= high
    assert demo.demo_client_id_range(5)[1] < demo.demo_client_id(6, 0)


@pytest.mark.postgres
def test_demo_data_is_copied_on_postgresql(sipas: Any) -> None:
    generate(20)
    assert Answer.objects.filter(response__round__code=ROUND).count() > 20 * 30


# --- Villages ------------------------------------------------------------------------------


def test_respondents_are_sampled_by_village_and_record_it_as_their_psu(sipas: Any) -> None:
    survey_round = Round.objects.get(code=ROUND)
    units = list(survey_round.units.order_by("code").values_list("code", flat=True))
    generate(len(units) * 40)  # 40 per unit: village 1 has 31 of them, village 2 has 9
    first = units[0]
    rows = list(
        Response.objects.filter(unit__code=first)
        .order_by("client_id")
        .values_list("psu", "stratum")
    )
    assert [psu for psu, _s in rows] == [f"{first}-T01"] * 31 + [f"{first}-T02"] * 9
    assert {stratum for _p, stratum in rows} == {""}  # the unit is the stratum
    # the village is also the respondent's answer A10 (when given), its commune A09
    for response in Response.objects.filter(unit__code=first, psu=f"{first}-T02"):
        given = sent_answers(response)
        assert given.get("A10", "Thôn 2") == "Thôn 2"
        assert given.get("A09", "Xã 1") == "Xã 1"


def test_a_village_effect_has_the_variance_the_icc_asks_for() -> None:
    unit = demo.UnitProfile(1, "19", level=0.8, policy_shift=0.0, mountainous=False, coastal=False)
    effects = [demo.village_effect(7, unit, village, 0.05) for village in range(1, 4001)]
    mean = sum(effects) / len(effects)
    variance = sum((e - mean) ** 2 for e in effects) / (len(effects) - 1)
    # ICC · L(1 − L) = 0.05 · 0.8 · 0.2 = 0.008; 4,000 draws: relative SE √(2/3999) ≈ 2.2%
    assert variance == pytest.approx(0.008, rel=0.08)
    assert abs(mean) < 0.004  # SE √(0.008/4000) ≈ 0.0014
    assert demo.village_effect(7, unit, 3, 0.05) == effects[2]  # (seed, unit, village) only
    assert demo.village_effect(7, unit, 3, 0.0) == 0.0


def village_icc() -> float:
    """The ANOVA estimate of the intra-village correlation of satisfied answers (4 or 5),
    per policy item P01–P05 and unit, averaged."""
    villages: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    rows = Answer.objects.filter(question__code__in=[f"P0{n}" for n in range(1, 6)]).values_list(
        "question__code", "response__unit_id", "response__psu", "number"
    )
    for item, unit, psu, number in rows:
        villages[item, unit][psu].append(1.0 if number >= 4 else 0.0)
    estimates = []
    for groups in (list(by_psu.values()) for by_psu in villages.values()):
        k, n = len(groups), sum(len(ys) for ys in groups)
        grand = sum(map(sum, groups)) / n
        pairs = [(ys, sum(ys) / len(ys)) for ys in groups]
        between = sum(len(ys) * (m - grand) ** 2 for ys, m in pairs) / (k - 1)
        within = sum((y - m) ** 2 for ys, m in pairs for y in ys) / (n - k)
        m0 = (n - sum(len(ys) ** 2 for ys in groups) / n) / (k - 1)
        estimates.append((between - within) / (between + (m0 - 1) * within))
    return sum(estimates) / len(estimates)


@pytest.mark.parametrize(("icc", "low", "high"), [(0.0, -0.01, 0.01), (0.1, 0.05, 0.13)])
def test_answers_are_correlated_within_villages_as_asked(sipas: Any, icc, low, high) -> None:
    survey_round = Round.objects.get(code=ROUND)
    survey_round.units.set(survey_round.units.order_by("code")[:3])
    generate(3 * 31 * 20, 7, "--icc", str(icc))  # 20 villages of 31 in each of 3 units

    assert Response.objects.values("psu").distinct().count() == 60
    assert low < village_icc() < high
