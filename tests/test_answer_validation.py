"""Each question type accepts exactly the values documented for the API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from feedback.validation import clean_answers
from surveys.models import Choice, Question
from tests.factories import QuestionFactory, SectionFactory, VersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def questions() -> list[Question]:
    section = SectionFactory(version=VersionFactory(), code="ALL")

    def make(code: str, kind: str, **fields: Any) -> Question:
        return QuestionFactory(section=section, code=code, type=kind, **fields)

    make("SCALE", Question.Type.SCALE, min_value=Decimal(1), max_value=Decimal(5))
    make("NUM", Question.Type.NUMBER, min_value=Decimal(0), max_value=Decimal(120))
    single = make("ONE", Question.Type.SINGLE)
    many = make("MANY", Question.Type.MULTIPLE, min_value=Decimal(1), max_value=Decimal(2))
    for question in (single, many):
        Choice.objects.bulk_create(
            Choice(question=question, code=c, position=i, label_vi=c) for i, c in enumerate("abc")
        )
    make("YN", Question.Type.YESNO)
    make("TXT", Question.Type.TEXT, max_length=5)
    make("LONG", Question.Type.LONGTEXT)
    make("DAY", Question.Type.DATE)
    return list(section.questions.prefetch_related("choices").select_related("show_if_question"))


def check(questions: list[Question], code: str, value: Any) -> tuple[Any, list[str] | None]:
    cleaned, errors = clean_answers(questions, {code: value})
    return (cleaned[code].value if code in cleaned else None), errors.get(code)


@pytest.mark.parametrize(
    ("code", "value", "stored"),
    [
        ("SCALE", 1, 1),
        ("SCALE", 5, 5),
        ("NUM", 0, 0),
        ("NUM", 120, 120),
        ("ONE", "b", "b"),
        ("MANY", ["c", "a"], ["a", "c"]),
        ("YN", False, False),
        ("TXT", " ab ", "ab"),
        ("LONG", "x" * 5000, "x" * 5000),
        ("DAY", "2026-02-28", "2026-02-28"),
    ],
)
def test_valid_values_are_stored_in_canonical_form(questions, code, value, stored) -> None:
    assert check(questions, code, value) == (stored, None)


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("SCALE", 0),
        ("SCALE", 6),
        ("SCALE", 4.5),
        ("SCALE", "4"),
        ("SCALE", True),
        ("NUM", -1),
        ("NUM", 121),
        ("ONE", "z"),
        ("ONE", ["a"]),
        ("MANY", "a"),
        ("MANY", ["a", "z"]),
        ("MANY", ["a", "a"]),
        ("MANY", ["a", "b", "c"]),
        ("YN", "true"),
        ("YN", 1),
        ("TXT", "abcdef"),
        ("TXT", 5),
        ("LONG", "x" * 5001),
        ("DAY", "2026-02-30"),
        ("DAY", "30/01/2026"),
    ],
)
def test_invalid_values_are_refused_naming_the_question(questions, code, value) -> None:
    stored, errors = check(questions, code, value)
    assert stored is None
    assert errors and errors[0].startswith(code)


@pytest.mark.parametrize("value", [None, "", "   ", []])
def test_empty_values_count_as_no_answer(questions, value) -> None:
    cleaned, errors = clean_answers(questions, {"TXT": value, "MANY": value})
    assert cleaned == {} and errors == {}
