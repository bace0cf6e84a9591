"""Helpers of the XLSForm tests: hand-written workbooks and a version's full outline."""

from __future__ import annotations

import zipfile
from io import BytesIO
from typing import Any

from openpyxl import Workbook

from surveys.models import QuestionnaireVersion

VI = "label::Tiếng Việt (vi)"
EN = "label::English (en)"


def workbook(sheets: dict[str, list[list[Any]]]) -> bytes:
    """An ``.xlsx`` with these sheets, each a list of rows (the first: the header)."""
    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def with_raw_cell_text(content: bytes, marker: str, raw: str) -> bytes:
    """The workbook with ``marker`` (a text cell) replaced by ``raw`` in the XML itself,
    e.g. ``_x0000_`` (NUL as OOXML writes it), which openpyxl refuses to write."""
    source = zipfile.ZipFile(BytesIO(content))
    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith(".xml"):
                data = data.replace(marker.encode(), raw.encode())
            target.writestr(info, data)
    return out.getvalue()


def outline(version: QuestionnaireVersion) -> dict[str, Any]:
    """Everything a version holds, without ids: sections, questions (types, labels and
    hints in both languages, bounds, conditions, scoring tags), choices, indicators."""
    sections = []
    for section in version.sections.order_by("position"):
        questions = []
        for q in section.questions.order_by("position").select_related(
            "show_if_question", "indicator"
        ):
            questions.append(
                {
                    "code": q.code,
                    "position": q.position,
                    "type": q.type,
                    "required": q.required,
                    "label": (q.label_vi, q.label_en),
                    "help": (q.help_vi, q.help_en),
                    "min": q.min_value,
                    "max": q.max_value,
                    "max_length": q.max_length,
                    "show_if": (
                        q.show_if_question.code if q.show_if_question else None,
                        q.show_if_values,
                    ),
                    "indicator": q.indicator.code if q.indicator else None,
                    "satisfied": q.satisfied_values,
                    "excluded": q.excluded_from_indices,
                    "personal_data": q.personal_data,
                    "choices": [
                        (c.code, c.position, c.label_vi, c.label_en)
                        for c in q.choices.order_by("position")
                    ],
                }
            )
        sections.append(
            {
                "code": section.code,
                "position": section.position,
                "title": (section.title_vi, section.title_en),
                "intro": (section.intro_vi, section.intro_en),
                "questions": questions,
            }
        )
    indicators = sorted(
        (
            i.code,
            i.parent.code if i.parent else None,
            i.kind,
            i.position,
            i.name_vi,
            i.name_en,
            i.aggregation,
            i.weight,
            i.policy_group.code if i.policy_group else None,
        )
        for i in version.indicators.select_related("parent", "policy_group")
    )
    groups = [
        (g.code, g.position, g.name_vi, g.name_en)
        for g in version.policy_groups.order_by("position")
    ]
    return {"sections": sections, "indicators": indicators, "policy_groups": groups}
