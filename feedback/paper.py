"""Import paper questionnaires from a CSV or XLSX file, one response per row.

``create_paper_import`` checks the file up front (type, size, header) and stores it;
``run_paper_import`` streams it row by row, converts each cell by question type and stores
each row through ``submit_response`` (channel paper), so a row is validated like an API
submission and stored whole or not at all. A row's ``client_id`` derives from the import and
the row number, so a rerun or a retried task never stores a row twice. ``start_paper_import``
runs a small file at once and hands a large one to a Celery task.

Row numbers count the header as row 1, as a spreadsheet shows them. The report names rows,
columns and cells but never a cell's value, and the file is dropped once the import is done:
nothing a citizen wrote on a rejected form is kept.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from feedback.errors import AnswersInvalid, ClientIdConflict
from feedback.models import PaperImport, Response
from feedback.services import resolve_target, round_questions, submit_response
from feedback.validation import clean_answers, is_shown
from surveys.models import Question, Round

logger = logging.getLogger(__name__)

# Fixed forever: changing it would give every row of an unfinished import a new client_id.
CLIENT_ID_NAMESPACE = uuid.UUID("2f8b6c1e-5d7a-4e39-9b0c-7a1d3e5f9c42")
MAX_FILE_BYTES = 20 * 1024 * 1024
PROGRESS_EVERY = 50
KNOWN_COLUMNS = ("unit", "agency", "weight", "row_id")
YES = frozenset({"1", "true", "có", "yes", "x"})
NO = frozenset({"0", "false", "không", "no"})
XLSX_MAGIC = b"PK\x03\x04"


class CellError(ValueError):
    """A cell cannot be read as an answer of its question's type."""


@dataclass
class Progress:
    processed: int = 0
    accepted: int = 0
    rejected: int = 0
    report: list[dict[str, Any]] = field(default_factory=list)

    def add(self, entry: dict[str, Any]) -> None:
        self.processed += 1
        if entry["status"] == "accepted":
            self.accepted += 1
        else:
            self.rejected += 1
        self.report.append(entry)

    def fields(self) -> dict[str, Any]:
        return {
            "processed_rows": self.processed,
            "accepted_rows": self.accepted,
            "rejected_rows": self.rejected,
            "report": self.report,
        }


def file_error(message: str) -> ValidationError:
    return ValidationError({"file": [message]})


def too_large_message() -> str:
    return _("The file is larger than %(mb)s MB; split it into smaller files.") % {
        "mb": MAX_FILE_BYTES // (1024 * 1024)
    }


def client_id_for(*, import_id: int, row_number: int) -> uuid.UUID:
    return uuid.uuid5(CLIENT_ID_NAMESPACE, f"paper-import:{import_id}:{row_number}")


# Reading files ---------------------------------------------------------------------------


def file_kind(*, file_name: str, content: bytes) -> str:
    """``"csv"`` or ``"xlsx"``, or ``ValidationError`` naming what is wrong with the file."""
    if len(content) > MAX_FILE_BYTES:
        raise file_error(too_large_message())
    suffix = Path(file_name).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise file_error(
            _("%(name)s is not a CSV or XLSX file (.csv or .xlsx).") % {"name": file_name}
        )
    if not content.removeprefix(codecs.BOM_UTF8).strip():
        raise file_error(_("The file is empty."))
    if suffix == ".xlsx" and not content.startswith(XLSX_MAGIC):
        raise file_error(_("%(name)s is not an XLSX workbook.") % {"name": file_name})
    return suffix[1:]


def read_rows(*, kind: str, content: bytes) -> Iterator[list[Any]]:
    """Every row of the file (the header first) as a list of cells, streamed."""
    if kind == "csv":
        yield from _csv_rows(content)
    else:
        yield from _xlsx_rows(content)


def _csv_rows(content: bytes) -> Iterator[list[Any]]:
    text = io.TextIOWrapper(io.BytesIO(content), encoding="utf-8-sig", newline="")
    try:
        # Excel saves "CSV" with semicolons where the comma is the decimal separator.
        delimiter = max(",;\t", key=text.readline().count)
        text.seek(0)
        yield from csv.reader(text, delimiter=delimiter)
    except UnicodeDecodeError:
        raise file_error(_("The CSV file is not UTF-8 text; save it as CSV UTF-8.")) from None
    except csv.Error as problem:
        raise file_error(
            _("The CSV file cannot be read: %(problem)s") % {"problem": problem}
        ) from None


def _xlsx_rows(content: bytes) -> Iterator[list[Any]]:
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds of error on a damaged workbook
        logger.info("unreadable XLSX upload", exc_info=True)
        raise file_error(_("The XLSX workbook cannot be read; is it damaged?")) from None
    try:
        if not workbook.worksheets:
            return
        for cells in workbook.worksheets[0].iter_rows(min_row=1, values_only=True):
            yield list(cells)
    finally:
        workbook.close()


def is_blank(cells: list[Any]) -> bool:
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells)


def header_columns(cells: list[Any], questions: dict[str, Question]) -> list[str]:
    """The canonical column names (question codes or known columns; "" for no header)."""
    canonical = {name: name for name in KNOWN_COLUMNS} | {
        code.casefold(): code for code in questions
    }
    canonical |= {code: code for code in questions}
    names = ["" if cell is None else str(cell).strip() for cell in cells]
    if not any(names):
        raise file_error(_("The first row must name the columns; it is empty."))
    unknown = [
        name
        for name in names
        if name and name not in canonical and name.casefold() not in canonical
    ]
    if unknown:
        raise file_error(
            _(
                "Unknown column %(columns)s: a column must be a question code of the round's "
                "questionnaire or one of %(known)s."
            )
            % {"columns": ", ".join(unknown), "known": ", ".join(KNOWN_COLUMNS)}
        )
    columns = [canonical.get(name) or canonical.get(name.casefold(), "") for name in names]
    seen: set[str] = set()
    for column in columns:
        if column and column in seen:
            raise file_error(_("The column %(column)s appears twice.") % {"column": column})
        seen.add(column)
    if "unit" not in seen:
        raise file_error(_("The file has no unit column (the code of the unit surveyed)."))
    return columns


def _round(round_code: str) -> Round:
    survey_round = Round.objects.filter(code=round_code).first()
    if survey_round is None:
        raise ValidationError(
            {"round": [_("There is no survey round %(code)s.") % {"code": round_code}]}
        )
    return survey_round


def check_paper_file(*, round_code: str, file_name: str, content: bytes) -> int:
    """The number of data rows of a valid file, or ``ValidationError`` naming the problem."""
    return _count_rows(_round(round_code), file_name, content)


def _count_rows(survey_round: Round, file_name: str, content: bytes) -> int:
    kind = file_kind(file_name=file_name, content=content)
    questions = {q.code: q for q in round_questions(survey_round)}
    rows = read_rows(kind=kind, content=content)
    header = next(rows, None)
    if header is None:
        raise file_error(_("The file is empty."))
    header_columns(header, questions)
    total = sum(1 for cells in rows if not is_blank(cells))
    if not total:
        raise file_error(_("The file has a header but no rows of answers."))
    return total


# Converting cells ------------------------------------------------------------------------


def _text(cell: Any) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, dt.datetime | dt.date):
        return cell.isoformat()
    return str(cell).strip()


def _whole_number(cell: Any) -> int:
    if isinstance(cell, bool):
        raise CellError(_("must be a whole number"))
    if isinstance(cell, int):
        return cell
    if isinstance(cell, float):
        if cell.is_integer():
            return int(cell)
        raise CellError(_("must be a whole number"))
    try:
        number = Decimal(str(cell).strip())
    except InvalidOperation:
        raise CellError(_("must be a whole number")) from None
    if not number.is_finite() or number != number.to_integral_value():
        raise CellError(_("must be a whole number"))
    return int(number)


def _yes_no(cell: Any) -> bool:
    if isinstance(cell, bool):
        return cell
    word = _text(cell).casefold()
    if word in YES:
        return True
    if word in NO:
        return False
    raise CellError(_("must be yes or no (1/0, true/false, có/không, yes/no, x)"))


def convert_cell(question: Question, cell: Any) -> Any:
    """The answer a cell gives to ``question``: None when empty, ``CellError`` when unreadable."""
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return None
    match question.type:
        case Question.Type.SCALE | Question.Type.NUMBER:
            return _whole_number(cell)
        case Question.Type.YESNO:
            return _yes_no(cell)
        case Question.Type.MULTIPLE:
            return [code.strip() for code in re.split(r"[;,]", _text(cell)) if code.strip()]
        case Question.Type.DATE:
            if isinstance(cell, dt.datetime):
                return cell.date().isoformat()
            return _text(cell)  # validation checks the ISO form
        case Question.Type.TEXT | Question.Type.LONGTEXT:
            return cell if isinstance(cell, str) else _text(cell)
    return _text(cell)


def convert_weight(cell: Any) -> float:
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return 1.0
    try:
        weight = float(cell) if not isinstance(cell, bool) else -1.0
    except ValueError:
        weight = -1.0
    if not 0 < weight < float("inf"):
        raise CellError(_("the design weight must be a number greater than 0"))
    return weight


# Importing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowContext:
    paper_import: PaperImport
    questions: dict[str, Question]
    columns: list[str]


def import_row(context: RowContext, number: int, cells: list[Any]) -> dict[str, Any]:
    """Store one row as a response, or say why not; the report entry of the row."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for index, cell in enumerate(cells):
        column = context.columns[index] if index < len(context.columns) else ""
        if column:
            values[column] = cell
        elif not is_blank([cell]):
            ref = f"{get_column_letter(index + 1)}{number}"
            errors.setdefault(ref, []).append(
                _("cell %(cell)s has a value but its column has no name") % {"cell": ref}
            )

    row_id = _text(values["row_id"]) if values.get("row_id") is not None else ""
    unit_code = _text(values["unit"]) if values.get("unit") is not None else ""
    agency_code = _text(values["agency"]) if values.get("agency") is not None else ""
    if not unit_code:
        errors["unit"] = [_("the unit is required")]
    try:
        weight = convert_weight(values.get("weight"))
    except CellError as problem:
        errors["weight"] = [_cell_message(context, "weight", number, problem)]

    answers: dict[str, Any] = {}
    cell_errors: dict[str, list[str]] = {}
    for code, cell in values.items():
        if code not in context.questions:
            continue
        try:
            value = convert_cell(context.questions[code], cell)
        except CellError as problem:
            cell_errors[code] = [
                _("%(code)s: %(problem)s")
                % {"code": code, "problem": _cell_message(context, code, number, problem)}
            ]
            continue
        if value is not None:
            answers[code] = value

    if errors or cell_errors:
        cleaned, answer_errors = clean_answers(list(context.questions.values()), answers)
        # Like the API, ignore whatever is written for a question the form hides.
        errors |= {c: m for c, m in cell_errors.items() if is_shown(context.questions[c], cleaned)}
    if errors:
        # Report every problem of the row at once, without storing anything.
        for code, messages in answer_errors.items():
            errors.setdefault(code, messages)
        if unit_code:
            try:
                resolve_target(
                    round_code=context.paper_import.round.code,
                    unit_code=unit_code,
                    agency_code=agency_code,
                )
            except ValidationError as problem:
                for key, messages in problem.message_dict.items():
                    errors.setdefault(key, messages)
        return _rejected(number, row_id, errors)

    try:
        submission = submit_response(
            round_code=context.paper_import.round.code,
            unit_code=unit_code,
            agency_code=agency_code,
            answers=answers,
            channel=Response.Channel.PAPER,
            client_id=client_id_for(import_id=context.paper_import.pk, row_number=number),
            weight=weight,
            import_batch_id=context.paper_import.pk,
        )
    except AnswersInvalid as problem:
        return _rejected(number, row_id, problem.errors)
    except ClientIdConflict as problem:
        return _rejected(number, row_id, {"row": [problem.detail]})
    except ValidationError as problem:
        return _rejected(number, row_id, problem.message_dict)
    return {
        "row": number,
        "row_id": row_id,
        "status": "accepted",
        "receipt": submission.response.receipt,
    }


def _cell_message(context: RowContext, column: str, number: int, problem: Exception) -> str:
    ref = f"{get_column_letter(context.columns.index(column) + 1)}{number}"
    return _("cell %(cell)s %(problem)s") % {"cell": ref, "problem": problem}


def _rejected(number: int, row_id: str, errors: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "row": number,
        "row_id": row_id,
        "status": "rejected",
        "errors": [
            {"field": key, "message": message}
            for key, messages in errors.items()
            for message in messages
        ],
    }


def create_paper_import(
    *, round_code: str, file_name: str, content: bytes, uploaded_by: AbstractBaseUser | None
) -> PaperImport:
    """Check a file of paper forms and store it as a pending import."""
    survey_round = _round(round_code)
    total = _count_rows(survey_round, file_name, content)
    return PaperImport.objects.create(
        round=survey_round,
        file_name=Path(file_name).name[:255],
        content=content,
        uploaded_by=uploaded_by,
        total_rows=total,
    )


def start_paper_import(
    *, round_code: str, file_name: str, content: bytes, uploaded_by: AbstractBaseUser | None
) -> PaperImport:
    """Create an import; run it now when small, else queue it for a worker after commit."""
    paper_import = create_paper_import(
        round_code=round_code, file_name=file_name, content=content, uploaded_by=uploaded_by
    )
    if paper_import.total_rows <= settings.PAPER_IMPORT_SYNC_MAX_ROWS:
        return run_paper_import(import_id=paper_import.pk)

    from feedback.tasks import import_paper_forms

    transaction.on_commit(lambda: import_paper_forms.delay(paper_import.pk))
    paper_import.refresh_from_db()  # an eager task (no Redis) may have run already
    return paper_import


def run_paper_import(*, import_id: int) -> PaperImport:
    """Import every row of a pending or interrupted import; a finished one is left as is."""
    paper_import = PaperImport.objects.select_related("round").get(pk=import_id)
    if paper_import.status == PaperImport.Status.DONE:
        return paper_import
    PaperImport.objects.filter(pk=import_id).update(status=PaperImport.Status.RUNNING, error="")
    try:
        _import_rows(paper_import)
    except OperationalError:
        raise  # transient: the task retries, and rows already stored are skipped
    except Exception as problem:
        logger.exception("paper import %s failed", import_id)
        fail_paper_import(import_id=import_id, error=str(problem) or problem.__class__.__name__)
    paper_import.refresh_from_db()
    return paper_import


def _import_rows(paper_import: PaperImport) -> None:
    content = bytes(paper_import.content)
    questions = {q.code: q for q in round_questions(paper_import.round)}
    kind = file_kind(file_name=paper_import.file_name, content=content)
    rows = read_rows(kind=kind, content=content)
    context = RowContext(paper_import, questions, header_columns(next(rows), questions))
    progress = Progress()
    for number, cells in enumerate(rows, start=2):
        if is_blank(cells):
            continue
        progress.add(import_row(context, number, cells))
        if progress.processed % PROGRESS_EVERY == 0:
            PaperImport.objects.filter(pk=paper_import.pk).update(**progress.fields())
    PaperImport.objects.filter(pk=paper_import.pk).update(
        **progress.fields(),
        total_rows=progress.processed,
        status=PaperImport.Status.DONE,
        finished_at=timezone.now(),
        content=b"",  # the forms are stored or rejected: keep no copy of what citizens wrote
    )


def fail_paper_import(*, import_id: int, error: str) -> None:
    """Mark an import failed; rows already stored stay (a rerun would skip them)."""
    PaperImport.objects.filter(pk=import_id).exclude(status=PaperImport.Status.DONE).update(
        status=PaperImport.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )
