"""Paper forms for tests: SIPAS answers as a clerk types them into CSV or XLSX, and imports."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook

from demo.paper_forms import paper_cell
from feedback.models import PaperImport
from feedback.paper import services as paper
from tests.support.responses import valid_answers

CODES = list(valid_answers())
HEADER = ["row_id", "unit", "weight", *CODES]


def row(row_id: str, unit: str = "19", weight: str = "", **changes: Any) -> list[Any]:
    """A row of ``HEADER``: ``valid_answers(**changes)`` of ``unit``."""
    answers = valid_answers(**changes)
    return [row_id, unit, weight, *(paper_cell(answers.get(code, "")) for code in CODES)]


def csv_bytes(rows: list[list[Any]], header: list[str] = HEADER, bom: bool = True) -> bytes:
    lines = [",".join(f'"{cell}"' for cell in line) for line in [header, *rows]]
    return ("\ufeff" if bom else "").encode() + "\r\n".join(lines).encode()


def xlsx_bytes(rows: list[list[Any]], header: list[str] = HEADER) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(header)
    for line in rows:
        sheet.append(line)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def uploaded(content: bytes, file_name: str = "forms.csv") -> PaperImport:
    """A file of the round ``demo`` uploaded, not imported yet."""
    return paper.create_paper_import(
        round_code="demo", file_name=file_name, content=content, uploaded_by=None
    )


def imported(content: bytes, file_name: str = "forms.csv") -> PaperImport:
    """A file of the round ``demo`` imported in this process (no worker)."""
    return paper.run_paper_import(import_id=uploaded(content, file_name).pk)


def errors_by_row(paper_import: PaperImport) -> dict[int, dict[str, str]]:
    """The import's rejected rows: row number → {field: message}."""
    return {
        entry["row"]: {e["field"]: e["message"] for e in entry["errors"]}
        for entry in paper_import.report
        if entry["status"] == "rejected"
    }
