"""Round trip: the built-in SIPAS version exported as XLSForm, converted by pyxform without
a warning, and imported back, is the same version."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from pyxform.xls2xform import convert

from surveys.models import QuestionnaireVersion
from surveys.services import start_draft
from surveys.xlsform import export_xlsform, import_xlsform
from tests.support.xlsform import outline


@pytest.mark.django_db
def test_sipas_round_trip_gives_back_an_equal_version(sipas: Any, client: Client) -> None:
    content = client.get(
        f"/api/v1/questionnaires/sipas/versions/{sipas.number}/xlsform.xlsx"
    ).content
    warnings: list[str] = []
    convert(content, warnings=warnings, file_type=".xlsx")
    assert warnings == []

    imported = import_xlsform(content)
    version = imported.version
    assert not imported.created_questionnaire
    assert version.questionnaire_id == sipas.questionnaire_id
    assert version.number == sipas.number + 1
    assert version.status == QuestionnaireVersion.Status.DRAFT
    assert version.label == sipas.label

    expected, got = outline(sipas), outline(version)
    assert got["policy_groups"] == expected["policy_groups"]
    assert got["indicators"] == expected["indicators"]
    for want, have in zip(expected["sections"], got["sections"], strict=True):
        assert have == want
    # The outline covers what the round trip must keep, and SIPAS uses each of it.
    questions = [q for s in expected["sections"] for q in s["questions"]]
    assert {q["type"] for q in questions} == {
        "scale",
        "single",
        "multiple",
        "yesno",
        "text",
        "longtext",
    }
    assert any(q["show_if"][0] for q in questions)
    assert any(q["max_length"] for q in questions)
    assert any(s["intro"][0] for s in expected["sections"])


@pytest.mark.django_db
def test_round_trip_of_a_draft_with_numbers_dates_and_personal_data(sipas: Any) -> None:
    """Types SIPAS does not use: a number with decimal bounds, a date, a multiple choice
    with bounds on the number chosen, personal data behind a consent question, a code
    starting with a digit."""
    from surveys.models import Question, Section

    draft = start_draft(version_id=sipas.pk)
    section = Section.objects.create(
        version=draft,
        code="Z",
        position=draft.sections.count() + 1,
        title_vi="Phần Z",
        title_en="Part Z",
    )
    consent = Question.objects.create(
        section=section, code="9CONSENT", position=1, type="yesno", label_vi="Đồng ý?"
    )
    specs = [
        {"code": "ZN", "type": "number", "label_vi": "Số", "min_value": "0.5", "max_value": 120},
        {"code": "ZD", "type": "date", "label_vi": "Ngày", "label_en": "Day"},
        {
            "code": "ZP",
            "type": "text",
            "label_vi": "Điện thoại",
            "personal_data": True,
            "excluded_from_indices": True,
            "show_if_question": consent,
            "show_if_values": [True],
            "max_length": 20,
        },
        {
            "code": "ZM",
            "type": "multiple",
            "label_vi": "Chọn",
            "min_value": 1,
            "max_value": 2,
            "show_if_question": consent,
            "show_if_values": [True, False],
        },
    ]
    for position, spec in enumerate(specs, start=2):
        Question.objects.create(section=section, position=position, **spec)
    multiple = Question.objects.get(version=draft, code="ZM")
    for position, code in enumerate(["a", "b", "c"], start=1):
        multiple.choices.create(code=code, position=position, label_vi=code.upper())
    Question.objects.filter(version=draft, code="S01").update(
        show_if_question=Question.objects.get(version=draft, code="Q2"),
        show_if_values=["internet", "khac"],
    )

    Question.objects.create(
        section=section,
        position=len(specs) + 2,
        code="ZT",
        type="text",
        label_vi="Vì sao?",
        show_if_question=Question.objects.get(version=draft, code="A08"),
        show_if_values=["Hà Nội", "Đắk Lắk's"],
    )

    content = export_xlsform(draft)
    warnings: list[str] = []
    convert(content, warnings=warnings, file_type=".xlsx")
    assert warnings == []  # English labels left empty (choices a, b, c) warn of nothing
    imported = import_xlsform(content).version
    expected, got = outline(draft), outline(imported)
    for want, have in zip(expected["sections"], got["sections"], strict=True):
        assert have == want
    assert got == expected
