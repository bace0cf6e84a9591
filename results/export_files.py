"""How export files leave the server without being held whole in memory.

Two ways, for two kinds of format:

- ``xlsx_stream``: an XLSX workbook written as it is sent. The package (a zip) is written
  by ``zipfile`` to a sink that is emptied after every block of rows (the zip entries carry
  data descriptors, since their sizes are known only at their end); the worksheet XML is
  built here row by row, the rest of the package is the constant parts openpyxl writes. The
  first bytes leave before the first row is read, and memory holds one block of rows.
- ``temporary_file``: for formats written by a library that needs a whole, seekable file
  (SPSS, Stata, Parquet of later issues): the library writes to a temporary file, which is
  then sent in blocks by ``FileResponse`` and deleted when the response is closed (also when
  the download stops halfway, or when the writer fails). Memory stays that of the writer.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape

from django.http import FileResponse, StreamingHttpResponse
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel
from openpyxl.writer.theme import theme_xml

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FLUSH_BYTES = 256 * 1024  # compressed bytes gathered before they are sent on
ROWS_PER_WRITE = 200  # rows joined into one string before they go to the compressor
COMPRESS_LEVEL = 1  # zlib level: 6 (openpyxl's) costs about twice the time for ~15% bytes
LARGE_ENTRY_BYTES = 1 << 30  # a sheet that may exceed this is written with zip64 sizes

# --- XLSX -------------------------------------------------------------------------------------

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_TYPES = "application/vnd.openxmlformats-officedocument"
_SHEET_START = (
    f'<worksheet xmlns="{_MAIN}"><sheetPr><outlinePr summaryBelow="1" summaryRight="1" />'
    '<pageSetUpPr /></sheetPr><sheetViews><sheetView workbookViewId="0"><selection '
    'activeCell="A1" sqref="A1" /></sheetView></sheetViews><sheetFormatPr baseColWidth="8" '
    'defaultRowHeight="15" /><sheetData>'
)
_SHEET_END = (
    '</sheetData><pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" '
    'footer="0.5" /></worksheet>'
)
# The styles openpyxl writes for a write-only workbook holding datetimes: cell style 1 is
# "yyyy-mm-dd h:mm:ss".
_STYLES = (
    f'<styleSheet xmlns="{_MAIN}"><numFmts count="1"><numFmt numFmtId="164" '
    'formatCode="yyyy-mm-dd h:mm:ss" /></numFmts><fonts count="1"><font><name val="Calibri" />'
    '<family val="2" /><color theme="1" /><sz val="11" /><scheme val="minor" /></font></fonts>'
    '<fills count="2"><fill><patternFill /></fill><fill><patternFill patternType="gray125" />'
    '</fill></fills><borders count="1"><border><left /><right /><top /><bottom /><diagonal />'
    '</border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
    'borderId="0" /></cellStyleXfs><cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" '
    'borderId="0" pivotButton="0" quotePrefix="0" xfId="0" /><xf numFmtId="164" fontId="0" '
    'fillId="0" borderId="0" pivotButton="0" quotePrefix="0" xfId="0" /></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0" hidden="0" />'
    '</cellStyles><tableStyles count="0" defaultTableStyle="TableStyleMedium9" '
    'defaultPivotStyle="PivotStyleLight16" /></styleSheet>'
)
_ROOT_RELS = (
    f'<Relationships xmlns="{_RELS}"><Relationship Type="{_DOC_RELS}/officeDocument" '
    'Target="xl/workbook.xml" Id="rId1" /></Relationships>'
)
_ESCAPES = {"\r": "&#13;"}  # a literal CR would be read back as LF


def _each_sheet(template: str, sheets: int) -> str:
    """``template`` for each sheet, its number ``{n}`` from 1, joined."""
    return "".join(template.format(n=n) for n in range(1, sheets + 1))


def _content_types(sheets: int) -> str:
    overrides = _each_sheet(
        '<Override PartName="/xl/worksheets/sheet{n}.xml" '
        f'ContentType="{_TYPES}.spreadsheetml.worksheet+xml" />',
        sheets,
    )
    return (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml" /><Default Extension="xml" ContentType="application/xml" />'
        f'<Override PartName="/xl/styles.xml" ContentType="{_TYPES}.spreadsheetml.styles+xml" />'
        f'<Override PartName="/xl/theme/theme1.xml" ContentType="{_TYPES}.theme+xml" />'
        f'{overrides}<Override PartName="/xl/workbook.xml" '
        f'ContentType="{_TYPES}.spreadsheetml.sheet.main+xml" /></Types>'
    )


def _workbook(titles: list[str]) -> str:
    sheets = "".join(
        f'<sheet name="{escape(title, {chr(34): "&quot;"})}" sheetId="{n}" state="visible" '
        f'r:id="rId{n}" />'
        for n, title in enumerate(titles, 1)
    )
    return (
        f'<workbook xmlns:r="{_DOC_RELS}" xmlns="{_MAIN}"><workbookPr /><bookViews>'
        '<workbookView visibility="visible" minimized="0" showHorizontalScroll="1" '
        'showVerticalScroll="1" showSheetTabs="1" tabRatio="600" firstSheet="0" activeTab="0" '
        f'autoFilterDateGrouping="1" /></bookViews><sheets>{sheets}</sheets>'
        '<calcPr calcId="124519" fullCalcOnLoad="1" /></workbook>'
    )


def _workbook_rels(sheets: int) -> str:
    links = _each_sheet(
        f'<Relationship Type="{_DOC_RELS}/worksheet" Target="/xl/worksheets/sheet{{n}}.xml" '
        'Id="rId{n}" />',
        sheets,
    )
    return (
        f'<Relationships xmlns="{_RELS}">{links}'
        f'<Relationship Type="{_DOC_RELS}/styles" Target="styles.xml" Id="rId{sheets + 1}" />'
        f'<Relationship Type="{_DOC_RELS}/theme" Target="theme/theme1.xml" '
        f'Id="rId{sheets + 2}" /></Relationships>'
    )


def _text(ref: str, value: str) -> str:
    """An inline string cell: never a formula, illegal XML characters dropped; an empty one
    has no content (as openpyxl writes it: read back as None)."""
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if not value:
        return f'<c r="{ref}" t="inlineStr"/>'
    body = escape(value, _ESCAPES)
    if value != value.strip():
        return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{body}</t></is></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{body}</t></is></c>'


def _number(value: float | int | Decimal) -> str:
    """A number as openpyxl writes it (``%.16g``); NaN and infinities have no value."""
    if isinstance(value, int) and -(10**15) < value < 10**15:
        return str(value)
    if isinstance(value, float | Decimal) and not math.isfinite(value):
        return ""
    return format(float(value), ".16g")


def _cell(ref: str, value: Any) -> str:
    """One ``<c>`` element, typed as openpyxl types the value (text for anything unknown)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _text(ref, value)
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | float | Decimal):
        number = _number(value)
        return f'<c r="{ref}" t="n"><v>{number}</v></c>' if number else ""
    if isinstance(value, dt.datetime):
        # local time, as the export gives it (Excel has no time zones), style 1: a datetime
        serial = format(to_excel(value.replace(tzinfo=None)), ".16g")
        return f'<c r="{ref}" s="1" t="n"><v>{serial}</v></c>'
    return _text(ref, str(value))


class _Sink:
    """What ``zipfile`` writes, kept until the generator hands it on (a file with no seek)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        return data


def xlsx_stream(
    sheets: Sequence[tuple[str, Iterable[Sequence[Any]]]], *, large: bool = False
) -> Iterator[bytes]:
    """The bytes of an XLSX workbook of ``sheets`` (title, rows), produced as rows are read.

    Cells read back as openpyxl's write-only workbook writes them: text as inline strings
    (never formulas), numbers, booleans, datetimes as serials in style ``yyyy-mm-dd
    h:mm:ss`` (their local time), None as no cell. ``large``: write the worksheets with
    zip64 sizes, needed past 2 GiB of sheet XML (the size is not known before the end).
    """
    sink = _Sink()
    titles = [title for title, _rows in sheets]
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as book:
        book.writestr("[Content_Types].xml", _content_types(len(titles)))
        book.writestr("_rels/.rels", _ROOT_RELS)
        book.writestr("xl/workbook.xml", _workbook(titles))
        book.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(len(titles)))
        book.writestr("xl/styles.xml", _STYLES)
        book.writestr("xl/theme/theme1.xml", theme_xml)
        yield sink.take()
        for number, (_title, rows) in enumerate(sheets, 1):
            name = f"xl/worksheets/sheet{number}.xml"
            with book.open(name, "w", force_zip64=large) as part:
                part.write(_SHEET_START.encode())
                yield from _write_rows(part, rows, sink)
                part.write(_SHEET_END.encode())
            yield sink.take()
    yield sink.take()  # the central directory


def _write_rows(part: IO[bytes], rows: Iterable[Sequence[Any]], sink: _Sink) -> Iterator[bytes]:
    """Write each row's XML into the zip entry; hand on what the compressor gave, in blocks."""
    letters: list[str] = []
    block: list[str] = []
    for index, row in enumerate(rows, 1):
        while len(letters) < len(row):
            letters.append(get_column_letter(len(letters) + 1))
        line = str(index)
        cells = "".join([_cell(letter + line, v) for letter, v in zip(letters, row, strict=False)])
        block.append(f'<row r="{line}">{cells}</row>')
        if len(block) >= ROWS_PER_WRITE:
            part.write("".join(block).encode("utf-8", "replace"))
            block.clear()
            if sink.size >= FLUSH_BYTES:
                yield sink.take()
    if block:
        part.write("".join(block).encode("utf-8", "replace"))


def xlsx_response(
    sheets: Sequence[tuple[str, Iterable[Sequence[Any]]]], file_name: str, *, large: bool = False
) -> StreamingHttpResponse:
    """A download of the workbook of ``sheets``, streamed (``xlsx_stream``)."""
    response = StreamingHttpResponse(
        xlsx_stream(sheets, large=large), content_type=XLSX_CONTENT_TYPE
    )
    response.headers["Content-Disposition"] = f'attachment; filename="{file_name}"'
    return response


# --- Any format a library writes to a file ----------------------------------------------------


class _RemovedOnClose(io.FileIO):
    """A file open for reading that deletes itself when closed (the response closes it)."""

    def close(self) -> None:
        try:
            super().close()
        finally:
            Path(self.name).unlink(missing_ok=True)


def temporary_file(write: Callable[[Path], None], *, suffix: str = "") -> IO[bytes]:
    """A file ``write(path)`` writes, opened for reading, deleted when closed.

    The path is a new file in the temporary directory (``TMPDIR``), so its disk must hold
    the largest export. If ``write`` raises, the file is deleted and the error goes on.
    """
    descriptor, name = tempfile.mkstemp(prefix="export-", suffix=suffix)
    os.close(descriptor)
    path = Path(name)
    try:
        write(path)
        return _RemovedOnClose(path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def temporary_file_response(
    write: Callable[[Path], None], file_name: str, content_type: str
) -> FileResponse:
    """A download of what ``write(path)`` writes to a temporary file, deleted once sent."""
    suffix = Path(file_name).suffix
    return FileResponse(
        temporary_file(write, suffix=suffix),
        as_attachment=True,
        filename=file_name,
        content_type=content_type,
    )
