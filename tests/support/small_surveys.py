"""Small published questionnaires with a round, and responses written straight to the tables,
for the scoring tests worked out by hand."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from feedback.models import Response
from scoring.engine import NodeValue, compute_values
from surveys import services
from surveys.models import Choice, Indicator, Question, QuestionnaireVersion, Round, Unit
from tests.factories import (
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

    def indicator(code: str, kind: str, aggregation: str, parent=None, weight=1.0, position=0):
        return Indicator.objects.create(
            version=version,
            code=code,
            kind=kind,
            aggregation=aggregation,
            parent=parent,
            weight=weight,
            position=position,
            name_vi=code,
        )

    agg, kind = Indicator.Aggregation, Indicator.Kind
    root = indicator("ROOT", kind.INDEX, agg.MEAN)
    e1 = indicator("E1", kind.ELEMENT, agg.POOLED, root, position=1)
    e2 = indicator("E2", kind.ELEMENT, agg.WEIGHTED_MEAN, root, position=2)
    i1 = indicator("I1", kind.ITEM, agg.SHARE, e1, position=1)
    i2 = indicator("I2", kind.ITEM, agg.SHARE, e1, position=2)
    i3 = indicator("I3", kind.ITEM, agg.SHARE, e2, weight=3.0, position=1)
    i4 = indicator("I4", kind.ITEM, agg.SHARE, e2, weight=1.0, position=2)

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
    item = Indicator.objects.create(
        version=version,
        code="I1",
        kind=Indicator.Kind.ITEM,
        aggregation=Indicator.Aggregation.SHARE,
        name_vi="I1",
    )
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
