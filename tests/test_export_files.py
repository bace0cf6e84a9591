"""Export files that stream: the XLSX workbook written as it is sent, and the temporary file
of formats a library writes (removed once the download is closed)."""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.http import FileResponse, StreamingHttpResponse
from django.test import Client
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from demo.responses import generate_demo_responses
from results import export_files, exports
from surveys.models import Round
from tests import results_fixtures

staff_client = results_fixtures.staff_client
ROUND = "sipas-2022"


def openpyxl_workbook(sheets: list[tuple[str, list[list[Any]]]]) -> bytes:
    """The workbook as the export wrote it before it streamed (openpyxl, write-only)."""

    def value(sheet: Any, v: Any) -> Any:
        if isinstance(v, dt.datetime):
            return v.replace(tzinfo=None)
        if isinstance(v, str):
            text = WriteOnlyCell(sheet, value=None)
            text.value = ILLEGAL_CHARACTERS_RE.sub("", v)
            text.data_type = "s"
            return text
        return v

    workbook = Workbook(write_only=True)
    for title, rows in sheets:
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append([value(sheet, v) for v in row])
    handle = io.BytesIO()
    workbook.save(handle)
    return handle.getvalue()


def cells(content: bytes) -> dict[str, list[list[tuple[Any, str, str]]]]:
    """Every sheet's cells as (value, data type, number format), read back by openpyxl."""
    book = openpyxl.load_workbook(io.BytesIO(content))
    return {
        sheet.title: [[(c.value, c.data_type, c.number_format) for c in row] for row in sheet.rows]
        for sheet in book.worksheets
    }


TRICKY = [
    ["text", "=HYPERLINK(1)", " padded ", "a\r\nb\tc", "bell\x07&<>\"'", "Rất hài lòng", ""],
    ["numbers", 0, -7, 10**15 + 1, 2.5, 1e-7, Decimal("3.25")],
    ["flags", True, False, None, float("nan"), None, "@SUM(A1)"],
    [
        "times",
        dt.datetime(2022, 5, 1, 10, 3, 4, 123456, tzinfo=dt.timezone(dt.timedelta(hours=7))),
        dt.datetime(2023, 12, 31, 23, 59, 59),
    ],
]


class TestXlsxStream:
    def test_cells_read_back_as_the_openpyxl_workbook_gave_them(self) -> None:
        sheets = [("first sheet", TRICKY), ("codebook", [["question"], ["S01"]])]
        streamed = b"".join(export_files.xlsx_stream(sheets))
        reference = cells(openpyxl_workbook(sheets))
        # one difference: openpyxl wrote a CR as it is, which an XML reader reads as LF
        assert reference["first sheet"][0][3][0] == "a\nb\tc"
        reference["first sheet"][0][3] = ("a\r\nb\tc", "s", "General")
        assert cells(streamed) == reference
        first = cells(streamed)["first sheet"]
        assert first[0][1] == ("=HYPERLINK(1)", "s", "General")  # text, never a formula
        assert first[0][3][0] == "a\r\nb\tc" and first[0][4][0] == "bell&<>\"'"
        # read back to the millisecond (openpyxl), both ways
        assert first[3][1] == (dt.datetime(2022, 5, 1, 10, 3, 4, 123000), "d", "yyyy-mm-dd h:mm:ss")

    def test_bytes_leave_before_the_rows_are_read(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The workbook is not built before it is sent: the first bytes come before the first
        row is read, and more come while rows are still being read."""
        monkeypatch.setattr(export_files, "FLUSH_BYTES", 4096)
        pulled = 0

        def rows() -> Iterator[list[Any]]:
            nonlocal pulled
            for n in range(30_000):
                pulled += 1
                yield [n, f"row {n} of the sheet, with some text to compress", n * 0.5, n % 2 == 0]

        stream = export_files.xlsx_stream([("responses", rows())])
        chunks = [next(stream)]
        assert chunks[0].startswith(b"PK\x03\x04") and pulled == 0
        seen_while_reading = []
        for chunk in stream:
            chunks.append(chunk)
            seen_while_reading.append(pulled < 30_000)
        assert sum(seen_while_reading) >= 2  # blocks went out with rows still unread
        book = openpyxl.load_workbook(io.BytesIO(b"".join(chunks)))
        assert book["responses"].max_row == 30_000

    def test_a_large_sheet_has_zip64_sizes_and_reads_back(self) -> None:
        sheets = [("scores", [["a", 1], ["b", 2.5]])]
        content = b"".join(export_files.xlsx_stream(sheets, large=True))
        assert cells(content) == cells(openpyxl_workbook(sheets))


class TestXlsxDownloads:
    @pytest.fixture
    def demo(self, sipas: Any) -> Round:
        generate_demo_responses(round_code=ROUND, responses=40, seed=5)
        return Round.objects.get(code=ROUND)

    def test_responses_xlsx_streams_what_openpyxl_wrote(
        self, staff_client: Client, demo: Round
    ) -> None:
        response = staff_client.get(f"/api/v1/rounds/{ROUND}/responses.xlsx")
        assert response.status_code == 200 and isinstance(response, StreamingHttpResponse)
        assert response.headers["Content-Type"] == export_files.XLSX_CONTENT_TYPE
        assert 'filename="sipas-2022-responses.xlsx"' in response.headers["Content-Disposition"]
        streamed = b"".join(response.streaming_content)
        reference = openpyxl_workbook(
            [
                ("responses", list(exports.response_rows(demo))),
                ("codebook", list(exports.codebook_rows(demo))),
            ]
        )
        read_back = cells(streamed)
        assert read_back == cells(reference)
        assert list(read_back) == ["responses", "codebook"]
        assert len(read_back["responses"]) == 41 and len(read_back["responses"][0]) > 60

    def test_a_round_large_enough_gets_zip64_sheets(
        self, staff_client: Client, demo: Round, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(exports, "XLSX_BYTES_PER_RESPONSE", 2**30)
        _sheets, large = exports.response_sheets(demo)
        assert large
        response = staff_client.get(f"/api/v1/rounds/{ROUND}/responses.xlsx")
        assert len(cells(b"".join(response.streaming_content))["responses"]) == 41


@pytest.mark.django_db  # closing a response closes old database connections
class TestTemporaryFile:
    @staticmethod
    def write_lines(path: Path) -> None:
        with path.open("w") as handle:
            for n in range(10_000):
                handle.write(f"line {n}\n")

    def test_the_file_is_sent_then_removed_when_the_response_closes(self) -> None:
        response = export_files.temporary_file_response(
            self.write_lines, "round.sav", "application/x-spss-sav"
        )
        assert isinstance(response, FileResponse) and response.streaming
        path = Path(response.file_to_stream.name)
        assert path.exists() and path.suffix == ".sav"
        assert response.headers["Content-Length"] == str(path.stat().st_size)
        assert 'filename="round.sav"' in response.headers["Content-Disposition"]
        content = b"".join(response.streaming_content)
        assert content.decode().splitlines()[-1] == "line 9999"
        response.close()
        assert not path.exists()

    def test_a_download_stopped_halfway_removes_the_file(self) -> None:
        response = export_files.temporary_file_response(self.write_lines, "x.dta", "application/x")
        path = Path(response.file_to_stream.name)
        next(iter(response.streaming_content))
        response.close()
        assert not path.exists()

    def test_a_failing_writer_leaves_no_file(self) -> None:
        before = set(Path(tempfile.gettempdir()).glob("export-*.parquet"))

        def fail(path: Path) -> None:
            path.write_bytes(b"half")
            raise RuntimeError("the library failed")

        with pytest.raises(RuntimeError, match="library failed"):
            export_files.temporary_file(fail, suffix=".parquet")
        assert set(Path(tempfile.gettempdir()).glob("export-*.parquet")) == before
