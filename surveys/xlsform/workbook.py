"""Reading an uploaded ``.xlsx`` safely: every cell as text, or problems naming the cell.

An upload is untrusted: it may be no zip at all, a zip whose parts inflate to gigabytes,
a sheet whose declared size is a million rows by 16,384 columns, or cells holding a NUL
or a lone surrogate (OOXML writes them ``_x0000_``, ``_xD800_``). The sizes are checked
before openpyxl parses anything, rows and columns are read up to fixed limits, and each
cell is turned into text here, so the importer only ever sees bounded, storable strings.
"""

from __future__ import annotations

import datetime as dt
import math
import posixpath
import re
import zipfile
from dataclasses import asdict, dataclass
from io import BytesIO
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import ElementTree
from django.utils.translation import gettext as _
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from config.input_guard import printable, text_problem

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_UNPACKED_BYTES = 50 * 1024 * 1024  # all parts of the zip, inflated
MAX_ROWS = 5000  # per sheet, header included
MAX_COLUMNS = 64
MAX_CELL_CHARS = 10_000


@dataclass(frozen=True)
class Problem:
    """One reason an XLSForm is refused: where (sheet, row, column) and what."""

    sheet: str
    row: int | None
    column: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = [self.sheet] if self.sheet else []
        if self.row is not None:
            where.append(_("row %(row)s") % {"row": self.row})
        if self.column:
            where.append(_("column %(column)s") % {"column": self.column})
        return f"{', '.join(where)}: {self.message}" if where else self.message


class XlsformRefused(Exception):
    """The XLSForm cannot be imported; ``problems`` lists every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class Sheet:
    """A sheet read as text: its header (column names) and data rows (column → text).

    ``rows`` holds ``(row number, values)`` for each row with something in it; ``columns``
    maps each column name to its letter, for messages.
    """

    name: str
    columns: dict[str, str]
    rows: list[tuple[int, dict[str, str]]]


def cell_text(value: Any) -> str:
    """A cell's value as the text an XLSForm means by it (``1.0`` → ``1``, a date ISO)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()


def _unpacked_size(content: bytes) -> int:
    with zipfile.ZipFile(BytesIO(content)) as archive:
        return sum(info.file_size for info in archive.infolist())


def read_sheets(content: bytes, wanted: tuple[str, ...]) -> tuple[dict[str, Sheet], list[Problem]]:
    """The ``wanted`` sheets of an ``.xlsx`` file (those present), and the problems met.

    Sheet names are matched without regard to case. A problem without a sheet is about the
    file as a whole; with one, it names the row and the column.
    """
    if len(content) > MAX_FILE_BYTES:
        limit = MAX_FILE_BYTES // (1024 * 1024)
        return {}, [Problem("", None, None, _("The file is larger than %(n)s MB.") % {"n": limit})]
    not_xlsx = Problem("", None, None, _("The file is not an Excel workbook (.xlsx)."))
    try:
        if _unpacked_size(content) > MAX_UNPACKED_BYTES:
            limit = MAX_UNPACKED_BYTES // (1024 * 1024)
            message = _("The workbook unpacks to more than %(n)s MB.") % {"n": limit}
            return {}, [Problem("", None, None, message)]
        workbook = load_workbook(BytesIO(content), read_only=True, data_only=True)
    except ParseError:  # a part is no XML: maybe a string with a character XML cannot carry
        return {}, _unreadable_text(content, wanted) or [not_xlsx]
    except Exception:  # any failure to open it means the same to the user
        return {}, [not_xlsx]

    sheets: dict[str, Sheet] = {}
    problems: list[Problem] = []
    try:
        by_name = {name.strip().lower(): name for name in workbook.sheetnames}
        for name in wanted:
            if name in by_name:
                worksheet = workbook[by_name[name]]
                try:
                    sheet, found = _read_sheet(worksheet, name)
                except ParseError as error:  # in the header row: named by its letter
                    sheet, found = Sheet(name, {}, []), [_unreadable_cell(worksheet, name, error)]
                sheets[name] = sheet
                problems += found
    except Exception:  # a part that cannot be parsed: the file is damaged
        return {}, [not_xlsx]
    finally:
        workbook.close()
    return sheets, problems


def _read_sheet(worksheet: Any, name: str) -> tuple[Sheet, list[Problem]]:
    problems: list[Problem] = []
    worksheet.reset_dimensions()  # the declared size is the file's word: not trusted
    header_cells = next(
        worksheet.iter_rows(min_row=1, max_row=1, max_col=MAX_COLUMNS + 1, values_only=True),
        (),
    )
    columns: dict[str, str] = {}
    positions: list[tuple[int, str]] = []
    for index, value in enumerate(header_cells[:MAX_COLUMNS], start=1):
        letter = get_column_letter(index)
        text = cell_text(value)
        if not text:
            continue
        if problem := _text_problem(text):
            problems.append(Problem(name, 1, letter, problem))
            continue
        if text in columns:
            problems.append(
                Problem(name, 1, text, _("The column %(c)s appears twice.") % {"c": text})
            )
            continue
        columns[text] = letter
        positions.append((index - 1, text))
    if len(header_cells) > MAX_COLUMNS and cell_text(header_cells[MAX_COLUMNS]):
        problems.append(
            Problem(
                name, 1, None, _("A sheet may have at most %(n)s columns.") % {"n": MAX_COLUMNS}
            )
        )

    rows: list[tuple[int, dict[str, str]]] = []
    width = max((index for index, _column in positions), default=-1) + 1
    if width:
        try:
            rows = _read_rows(worksheet, name, width, positions, problems)
        except ParseError as error:
            problems.append(_unreadable_cell(worksheet, name, error, columns))
    return Sheet(name=name, columns=columns, rows=rows), problems


def _read_rows(
    worksheet: Any, name: str, width: int, positions: list[tuple[int, str]], problems: list[Problem]
) -> list[tuple[int, dict[str, str]]]:
    rows: list[tuple[int, dict[str, str]]] = []
    for number, cells in enumerate(
        worksheet.iter_rows(min_row=2, max_row=MAX_ROWS + 1, max_col=width, values_only=True),
        start=2,
    ):
        if number > MAX_ROWS:
            if any(cell_text(cell) for cell in cells):
                message = _("A sheet may have at most %(n)s rows.") % {"n": MAX_ROWS}
                problems.append(Problem(name, number, None, message))
            break
        values: dict[str, str] = {}
        for index, column in positions:
            text = cell_text(cells[index]) if index < len(cells) else ""
            if not text:
                continue
            if problem := _text_problem(text):
                problems.append(Problem(name, number, column, problem))
                continue
            values[column] = text
        if values:
            rows.append((number, values))
    return rows


def _unreadable_cell(
    worksheet: Any, name: str, error: ParseError, columns: dict[str, str] | None = None
) -> Problem:
    """The cell where a sheet's XML stops being readable: a character XML cannot carry
    (NUL, a lone surrogate...) written as a character reference, or raw bytes."""
    archive = worksheet.parent._archive
    where = _cell_at_error(archive.read(worksheet._worksheet_path), error)
    letter, row = where if where else (None, None)
    column = next((c for c, lt in (columns or {}).items() if lt == letter), letter)
    return Problem(name, row, column, unreadable_message())


def unreadable_message() -> str:
    return _(
        "The cell holds a character that cannot be read or stored (NUL, a control character "
        "or a lone surrogate)."
    )


CELL = re.compile(r'<(?:\w+:)?c\b[^>]*\br="([A-Z]+)([0-9]+)"')
SHARED_STRING = re.compile(r"<(?:\w+:)?si\b")


def _error_offset(text: str, error: ParseError) -> int:
    line, column = getattr(error, "position", (1, 0))
    lines = text.split("\n")
    return sum(len(part) + 1 for part in lines[: max(line - 1, 0)]) + column


def _cell_at_error(xml: bytes, error: ParseError) -> tuple[str, int] | None:
    """(column letter, row) of the cell of a sheet's XML where the parser stopped."""
    text = xml.decode("utf-8", errors="replace")
    cells = list(CELL.finditer(text, 0, _error_offset(text, error)))
    return (cells[-1].group(1), int(cells[-1].group(2))) if cells else None


def _unreadable_text(content: bytes, wanted: tuple[str, ...]) -> list[Problem]:
    """The cells of the ``wanted`` sheets that use the shared string no parser can read,
    when that is why the workbook could not be opened."""
    with zipfile.ZipFile(BytesIO(content)) as archive:
        names = set(archive.namelist())
        strings_path = "xl/sharedStrings.xml"
        if strings_path not in names:
            return []
        text = archive.read(strings_path).decode("utf-8", errors="replace")
        try:
            ElementTree.fromstring(text.encode())
            return []  # the shared strings are fine: something else is broken
        except ParseError as error:
            index = len(SHARED_STRING.findall(text, 0, _error_offset(text, error))) - 1
        if index < 0:
            return []
        problems = []
        for sheet, path in _sheet_parts(archive).items():
            if sheet.strip().lower() not in wanted or path not in names:
                continue
            xml = archive.read(path).decode("utf-8", errors="replace")
            pattern = re.compile(
                r'<(?:\w+:)?c\b[^>]*\br="([A-Z]+)([0-9]+)"[^>]*\bt="s"[^>]*>\s*'
                rf"<(?:\w+:)?v>{index}</"
            )
            problems += [
                Problem(sheet.strip().lower(), int(m.group(2)), m.group(1), unreadable_message())
                for m in pattern.finditer(xml)
            ]
        return problems


def _sheet_parts(archive: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name → path of its part in the zip, from the workbook and its relationships."""
    try:
        book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ParseError):
        return {}
    targets = {rel.get("Id"): rel.get("Target", "") for rel in rels}
    parts = {}
    for sheet in book.iter():
        if sheet.tag.endswith("}sheet") or sheet.tag == "sheet":
            rid = next((v for k, v in sheet.attrib.items() if k.endswith("}id")), None)
            target = targets.get(rid, "")
            path = target.lstrip("/") if target.startswith("/") else posixpath.join("xl", target)
            parts[sheet.get("name", "")] = posixpath.normpath(path)
    return parts


def _text_problem(text: str) -> str | None:
    if problem := text_problem(text):
        return f"{problem} ({printable(text)[:80]})"
    if len(text) > MAX_CELL_CHARS:
        return _("The text is longer than %(n)s characters.") % {"n": MAX_CELL_CHARS}
    return None
