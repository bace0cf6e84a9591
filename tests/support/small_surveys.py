"""Small published questionnaires with a round, and responses written straight to the tables,
for the scoring tests worked out by hand."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import partial
from typing import Any

import pytest

from feedback.models import Response
from scoring.engine import NodeValue, compute_values
from surveys import services
from surveys.models import Choice, Indicator, Question, QuestionnaireVersion, Round, Unit
from tests.factories import (
    IndicatorFactory,
    QuestionFactory,
    ResponseFactory,
    RoundFactory,
    SectionFactory,
    UnitFactory,
    VersionFactory,
)

TOLERANCE = 1e-9
YEAR_2024 = {"period_start": dt.date(2024, 1, 1), "period_end": dt.date(2024, 12, 31)}


def approx(value: Fraction | float) -> Any:
    """Equal to ``value`` within ``TOLERANCE``."""
    return pytest.approx(float(value), abs=TOLERANCE)


@dataclass
class Survey:
    version: QuestionnaireVersion
    round: Round
    units: dict[str, Unit]
    questions: dict[str, Question]


def small_survey() -> Survey:
    """ROOT (mean) of E1 (pooled: I1, I2) and E2 (weighted mean: I3 ×3, I4 ×1).

    USED is a yes/no screener (not scored); Q2 is shown only if USED is yes. Q1 and Q2 are
    1–5 scales (satisfied 4, 5), Q3 a yes/no (satisfied yes), Q4 a single choice a/b/c
    (satisfied a). The round ``r-scoring`` covers units A, B, C and D.
    """
    version = VersionFactory(label="scoring")
    section = SectionFactory(version=version, code="MAIN", position=1)

    indicator = partial(IndicatorFactory, version=version)
    agg, element = Indicator.Aggregation, Indicator.Kind.ELEMENT
    root = indicator(code="ROOT", index=True)
    e1 = indicator(code="E1", kind=element, aggregation=agg.POOLED, parent=root, position=1)
    e2 = indicator(code="E2", kind=element, aggregation=agg.WEIGHTED_MEAN, parent=root, position=2)
    i1 = indicator(code="I1", parent=e1, position=1)
    i2 = indicator(code="I2", parent=e1, position=2)
    i3 = indicator(code="I3", parent=e2, weight=3.0, position=1)
    i4 = indicator(code="I4", parent=e2, weight=1.0, position=2)

    used = QuestionFactory(
        section=section, code="USED", position=1, type=Question.Type.YESNO, required=True,
        excluded_from_indices=True,
    )  # fmt: skip
    scale = {"type": Question.Type.SCALE, "min_value": Decimal(1), "max_value": Decimal(5)}
    q1 = QuestionFactory(
        section=section, code="Q1", position=2, indicator=i1, satisfied_values=[4, 5], **scale
    )
    q2 = QuestionFactory(
        section=section, code="Q2", position=3, indicator=i2, satisfied_values=[4, 5],
        show_if_question=used, show_if_values=[True], **scale,
    )  # fmt: skip
    q3 = QuestionFactory(
        section=section, code="Q3", position=4, type=Question.Type.YESNO, indicator=i3,
        satisfied_values=[True],
    )  # fmt: skip
    q4 = QuestionFactory(
        section=section, code="Q4", position=5, type=Question.Type.SINGLE, indicator=i4,
        satisfied_values=["a"],
    )  # fmt: skip
    Choice.objects.bulk_create(
        [Choice(question=q, code=str(p), position=p, label_vi=str(p)) for q in (q1, q2)
         for p in range(1, 6)]
        + [Choice(question=q4, code=c, position=p, label_vi=c) for p, c in enumerate("abc")]
    )  # fmt: skip
    services.publish_version(version_id=version.pk)

    units = {code: UnitFactory(code=code) for code in ("A", "B", "C", "D")}
    survey_round = RoundFactory(
        code="r-scoring", name_vi="Vòng", version=version, units=units.values(), **YEAR_2024
    )
    questions = {q.code: q for q in (used, q1, q2, q3, q4)}
    return Survey(version, survey_round, units, questions)


def small_round() -> tuple[Round, QuestionnaireVersion]:
    """SEX (nam, nu), AGE (a1, a2), AREA (u, r), all excluded, and one yes/no item I1 (Q1);
    the round ``r-raking`` covers units A and B."""
    version = VersionFactory(label="raking")
    section = SectionFactory(version=version, code="MAIN", position=1)
    item = IndicatorFactory(version=version, code="I1")
    for position, (code, choices) in enumerate(
        {"SEX": ("nam", "nu"), "AGE": ("a1", "a2"), "AREA": ("u", "r")}.items(), start=1
    ):
        question = QuestionFactory(
            section=section,
            code=code,
            position=position,
            type=Question.Type.SINGLE,
            excluded_from_indices=True,
        )
        Choice.objects.bulk_create(
            Choice(question=question, code=c, position=p, label_vi=c) for p, c in enumerate(choices)
        )
    QuestionFactory(
        section=section,
        code="Q1",
        position=9,
        type=Question.Type.YESNO,
        indicator=item,
        satisfied_values=[True],
    )
    services.publish_version(version_id=version.pk)
    units = [UnitFactory(code=c, name=c) for c in "AB"]
    survey_round = RoundFactory(
        code="r-raking", name_vi="Vòng", version=version, units=units, **YEAR_2024
    )
    return survey_round, version


def respond(
    survey_round: Round, unit: str, weight: float, psu: str = "", stratum: str = "", **answers: Any
) -> Response:
    """A response of the unit coded ``unit`` in ``survey_round``, with ``answers`` by code."""
    return ResponseFactory(
        round=survey_round,
        unit=Unit.objects.get(code=unit),
        weight=weight,
        psu=psu,
        stratum=stratum,
        answers=answers,
    )


def values_by(survey: Survey, **kwargs: Any) -> dict[tuple[str | None, str], NodeValue]:
    """The engine's values of the survey's round: (unit code or None, indicator code) → value."""
    rows = compute_values(round_id=survey.round.pk, version_id=survey.version.pk, **kwargs)
    code_of = {unit.pk: code for code, unit in survey.units.items()}
    return {(code_of.get(row.unit_id), row.indicator_code): row for row in rows}
