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
                # ``raw`` is taken byte for byte (latin-1): it may hold bytes UTF-8 refuses.
                data = data.replace(marker.encode(), raw.encode("latin-1"))
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


def shared_strings_workbook(sheets: dict[str, list[list[str]]], raw: dict[str, str]) -> bytes:
    """An ``.xlsx`` written the way Excel writes one: text in a shared string table.

    ``raw`` replaces texts by XML written as is (e.g. ``&#0;``, a NUL character reference,
    which no XML parser accepts): what a hostile or broken tool could put in a file.
    """
    from xml.sax.saxutils import escape

    from openpyxl.utils import get_column_letter

    strings: list[str] = []
    index: dict[str, int] = {}
    sheet_parts = []
    for _number, rows in enumerate(sheets.values(), start=1):
        xml_rows = []
        for r, row in enumerate(rows, start=1):
            cells = []
            for c, text in enumerate(row, start=1):
                if text is None:
                    continue
                if text not in index:
                    index[text] = len(strings)
                    strings.append(text)
                ref = f"{get_column_letter(c)}{r}"
                cells.append(f'<c r="{ref}" t="s"><v>{index[text]}</v></c>')
            xml_rows.append(f'<row r="{r}">{"".join(cells)}</row>')
        sheet_parts.append(
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f"<sheetData>{''.join(xml_rows)}</sheetData></worksheet>"
        )
    items = "".join(f"<si><t>{raw.get(s, escape(s))}</t></si>" for s in strings)
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package = "http://schemas.openxmlformats.org/package/2006/relationships"
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    files = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
            + "".join(
                f'<Override PartName="/xl/worksheets/sheet{n}.xml" '
                f'ContentType="{ct}.worksheet+xml"/>'
                for n in range(1, len(sheet_parts) + 1)
            )
            + f'<Override PartName="/xl/sharedStrings.xml" ContentType="{ct}.sharedStrings+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{package}">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" xmlns:r="{rel}">'
            "<sheets>"
            + "".join(
                f'<sheet name="{name}" sheetId="{n}" r:id="rId{n}"/>'
                for n, name in enumerate(sheets, start=1)
            )
            + "</sheets></workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{package}">'
            + "".join(
                f'<Relationship Id="rId{n}" Type="{rel}/worksheet" '
                f'Target="worksheets/sheet{n}.xml"/>'
                for n in range(1, len(sheet_parts) + 1)
            )
            + f'<Relationship Id="rId{len(sheet_parts) + 1}" Type="{rel}/sharedStrings" '
            'Target="sharedStrings.xml"/></Relationships>'
        ),
        "xl/sharedStrings.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{main}" count="{len(strings)}" '
            f'uniqueCount="{len(strings)}">{items}</sst>'
        ),
    }
    for n, part in enumerate(sheet_parts, start=1):
        files[f"xl/worksheets/sheet{n}.xml"] = part
    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text.encode("utf-8"))
    return out.getvalue()
