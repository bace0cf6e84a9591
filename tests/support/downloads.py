"""Reading what a download view sent: streamed bodies, CSV with a BOM, XLSX workbooks."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl


def body(response: Any) -> bytes:
    """The bytes of a response, streamed or not."""
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def streamed(response: Any) -> str:
    """The text of a streamed response."""
    return b"".join(response.streaming_content).decode()


def csv_rows(response: Any) -> list[list[str]]:
    """The rows of a UTF-8 CSV download, which starts with a BOM so that Excel reads it."""
    text = body(response).decode("utf-8")
    assert text.startswith("\ufeff")  # so that Excel reads UTF-8
    return list(csv.reader(io.StringIO(text[1:])))


def xlsx_sheets(response: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Each sheet's rows of an XLSX download (or of its bytes)."""
    content = response if isinstance(response, bytes) else body(response)
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets}
