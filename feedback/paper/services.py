"""Import paper questionnaires from a CSV or XLSX file, one response per row.

``create_paper_import`` checks the file up front (type, size, header, and that the round is
open or the user may enter forms late) and stores it; ``run_paper_import`` streams it a batch
of rows at a time. ``import_rows`` checks a batch set-based: each question's column is
converted and cleaned at once, in form order with the display conditions (``check_rows``),
each distinct cell and answer worked out once per import, the units and agencies resolved
once, the stored forms found with one query; then ``store_forms`` stores the good rows with
one COPY of their responses and one of their answers (``bulk_create`` on SQLite). The outcome
is the one ``import_row`` gives for each row alone through ``submit_response`` (channel
paper), the API's path, and a property test holds the two equal: a row is validated like an
API submission and stored whole or not at all. A batch the database refuses as a whole (a
form another import stores at the same moment) is redone row by row with ``import_row``.
``start_paper_import`` runs a small file at once and queues a large one for a Celery task;
if the broker does not take the task, the import is deleted and ``BrokerUnavailable`` raised.

A paper form is stored once in its round, whatever the file or row it comes in: its key is
its ``row_id`` or, without one, the digest of its content (unit, agency, weight, answers,
and ``psu``/``stratum`` when given),
and a unique index on ``(round, paper_key)`` backs this up. A row whose form is stored
already is reported as a duplicate; one reusing a ``row_id`` with other answers is rejected.

Rows are committed in batches of ``batch_rows`` (``BATCH_ROWS``, more for a large file so that
its progress moves about ``PROGRESS_STEPS`` times), each batch in one transaction with the
import's counters, report and ``last_row``: a worker that dies loses only its open batch,
and the next run of the task (the message delivered again, or queued again by
``requeue_stalled_paper_imports``) resumes after ``last_row``. While a worker imports, it
holds a PostgreSQL session lock on the import, which frees when its connection dies.

Row numbers count the header as row 1, as a spreadsheet shows them. The report names rows,
columns and cells but never a cell's value, nor a database error's text (logged on the
server instead), and the file is dropped once the import is done: nothing a citizen wrote
on a rejected form is kept.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.db.models import F, Func, JSONField, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from config import worker_locks
from config.input_guard import UNSTORABLE
from config.queueing import BrokerUnavailable, enqueue
from feedback import records, signals
from feedback.errors import AnswersInvalid, ClientIdConflict
from feedback.models import (
    DESIGN_CODE_MAX_LENGTH,
    Answer,
    PaperImport,
    Response,
    new_receipt_code,
)
from feedback.services import request_digest, resolve_target, round_questions, submit_response
from feedback.validation import (
    AnswerError,
    CleanAnswer,
    clean_answers,
    clean_value,
    is_shown,
    question_name,
)
from surveys import scoping
from surveys.models import Question, Round

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 20 * 1024 * 1024
BATCH_ROWS = 100  # fewest rows per transaction: the most a dead worker's import loses
MAX_BATCH_ROWS = 5000  # most rows per transaction, however large the file
PROGRESS_STEPS = 50  # a large file commits (and shows its progress) about this many times
MAX_ATTEMPTS = 10  # runs of one import (retries, workers lost) before it is failed
IMPORT_LOCK = 7003  # first key of the advisory lock a worker holds on the import it runs
LATE_ENTRY_PERMISSION = "feedback.import_late_paper"
KNOWN_COLUMNS = ("unit", "agency", "weight", "row_id", "psu", "stratum")
YES = frozenset({"1", "true", "có", "yes", "x"})
NO = frozenset({"0", "false", "không", "no"})
XLSX_MAGIC = b"PK\x03\x04"


class CellError(ValueError):
    """A cell cannot be read as an answer of its question's type."""


class UncachedFormula:
    """An XLSX cell holding a formula whose value the file does not store (never computed:
    the file was written by a program, not saved by a spreadsheet)."""

    def __repr__(self) -> str:
        return "UncachedFormula"


UNCACHED_FORMULA = UncachedFormula()


@dataclass
class Progress:
    """An import's counters, and the report entries not yet committed."""

    processed: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicate: int = 0
    entries: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, paper_import: PaperImport) -> Progress:
        return cls(
            processed=paper_import.processed_rows,
            accepted=paper_import.accepted_rows,
            rejected=paper_import.rejected_rows,
            duplicate=paper_import.duplicate_rows,
        )

    def add(self, entry: dict[str, Any]) -> None:
        self.processed += 1
        match entry["status"]:
            case "accepted":
                self.accepted += 1
            case "duplicate":
                self.duplicate += 1
            case _:
                self.rejected += 1
        self.entries.append(entry)

    def counters(self) -> dict[str, int]:
        return {
            "processed_rows": self.processed,
            "accepted_rows": self.accepted,
            "rejected_rows": self.rejected,
            "duplicate_rows": self.duplicate,
        }


def file_error(message: str) -> ValidationError:
    return ValidationError({"file": [message]})


def too_large_message() -> str:
    return _("The file is larger than %(mb)s MB; split it into smaller files.") % {
        "mb": MAX_FILE_BYTES // (1024 * 1024)
    }


def paper_key(*, row_id: str, content: dict[str, Any]) -> str:
    """A form's identity in its round: its row_id, else the digest of what it says."""
    if row_id:
        return "row:" + hashlib.sha256(row_id.encode()).hexdigest()
    canonical = json.dumps(
        content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return "content:" + hashlib.sha256(canonical.encode()).hexdigest()


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
    """The first sheet's cell values; a formula with no stored value is ``UNCACHED_FORMULA``.

    openpyxl reads either the values a spreadsheet saved (``data_only``, None for a formula
    never computed) or the formulas, so the sheet is read both ways side by side.
    """
    try:
        values = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        formulas = load_workbook(io.BytesIO(content), read_only=True, data_only=False)
    except Exception:  # openpyxl raises many kinds of error on a damaged workbook
        logger.info("unreadable XLSX upload", exc_info=True)
        raise file_error(_("The XLSX workbook cannot be read; is it damaged?")) from None
    try:
        if not values.worksheets:
            return
        rows = values.worksheets[0].iter_rows(min_row=1, values_only=True)
        written = formulas.worksheets[0].iter_rows(min_row=1, values_only=True)
        for cells, as_written in zip(rows, written, strict=False):
            yield [
                UNCACHED_FORMULA
                if cell is None and isinstance(raw, str) and raw.startswith("=")
                else cell
                for cell, raw in zip(cells, as_written, strict=False)
            ]
    finally:
        values.close()
        formulas.close()


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


def _round(round_code: str, user: AbstractBaseUser | None = None) -> Round:
    """The round, or ``ValidationError`` naming ``round``; a round outside the user's scope
    (another province's local round, for province staff) is as unknown as a missing one."""
    rounds = Round.objects.all() if user is None else scoping.rounds_for(user)
    survey_round = rounds.filter(code=round_code).first()
    if survey_round is None:
        raise ValidationError(
            {"round": [_("There is no survey round %(code)s.") % {"code": round_code}]}
        )
    return survey_round


def check_paper_file(
    *, round_code: str, file_name: str, content: bytes, user: AbstractBaseUser | None
) -> int:
    """The number of data rows of a valid file, or ``ValidationError`` naming the problem."""
    survey_round = _round(round_code, user)
    check_round_accepts_forms(survey_round, user)
    return _count_rows(survey_round, file_name, content)


def check_round_accepts_forms(survey_round: Round, user: AbstractBaseUser | None) -> bool:
    """Whether the import is a late entry; ``ValidationError`` if the round has closed and
    the user lacks the late-entry permission (its published scores would change)."""
    if survey_round.closes_at > timezone.now():
        return False
    if user is not None and user.has_perm(LATE_ENTRY_PERMISSION):
        return True
    raise ValidationError(
        {
            "round": [
                _(
                    "The survey round %(round)s closed on %(closes)s: importing forms into it "
                    "needs the permission to enter paper forms late."
                )
                % {
                    "round": survey_round.code,
                    "closes": timezone.localtime(survey_round.closes_at).date(),
                }
            ]
        }
    )


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
    except (ValueError, TypeError, OverflowError):  # text, a date cell, an int beyond a float
        weight = -1.0
    if not 0 < weight < float("inf"):
        raise CellError(_("the design weight must be a number greater than 0"))
    return weight


# Importing -------------------------------------------------------------------------------


@dataclass
class ImportMemo:
    """What an import works out once and reuses for every row holding the same thing: a
    cell converted, an answer cleaned (with its JSON text), a unit and agency resolved."""

    converted: dict[tuple[str, type, Any], Any] = field(default_factory=dict)
    cleaned: dict[tuple[str, type, Any], tuple[CleanAnswer, AnswerRow] | str] = field(
        default_factory=dict
    )
    targets: dict[tuple[str, str], tuple[int, int | None] | dict[str, list[str]]] = field(
        default_factory=dict
    )


@dataclass(frozen=True)
class RowContext:
    paper_import: PaperImport
    questions: dict[str, Question]
    columns: list[str]
    memo: ImportMemo = field(default_factory=ImportMemo)


@dataclass
class ReadRow:
    """A row's cells by column, and what is wrong with its cells and known columns."""

    number: int
    values: dict[str, Any]
    errors: dict[str, list[str]]
    row_id: str
    unit_code: str
    agency_code: str
    weight: float
    design: dict[str, str]


def read_row(context: RowContext, number: int, cells: list[Any]) -> ReadRow:
    """A row's cells by column, with the problems of its cells (not yet of its answers):
    formulas without a value, text that cannot be stored, values in unnamed columns, the
    unit missing, a bad weight, design codes too long."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for index, cell in enumerate(cells):
        column = context.columns[index] if index < len(context.columns) else ""
        if cell is UNCACHED_FORMULA:
            problem = _(
                "cell %(cell)s holds a formula whose value the file does not store; open "
                "the file in a spreadsheet, save it and upload it again"
            )
        elif isinstance(cell, str) and not storable(cell):
            problem = _(
                "cell %(cell)s holds a character that cannot be stored (a NUL or an "
                "unpaired surrogate)"
            )
        else:
            problem = ""
        if problem:  # the cell is read as empty
            ref = f"{get_column_letter(index + 1)}{number}"
            errors.setdefault(column or ref, []).append(problem % {"cell": ref})
            cell = None
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
    weight = 1.0
    try:
        weight = convert_weight(values.get("weight"))
    except CellError as problem:
        errors["weight"] = [_cell_message(context, "weight", number, problem)]
    design = {"psu": "", "stratum": ""}
    for column in design:
        if values.get(column) is None:
            continue
        design[column] = _text(values[column])
        if len(design[column]) > DESIGN_CODE_MAX_LENGTH:
            problem = CellError(
                _("has %(length)d characters; a %(column)s code has at most %(max)d")
                % {
                    "length": len(design[column]),
                    "column": column,
                    "max": DESIGN_CODE_MAX_LENGTH,
                }
            )
            errors[column] = [_cell_message(context, column, number, problem)]
    return ReadRow(number, values, errors, row_id, unit_code, agency_code, weight, design)


def import_row(context: RowContext, number: int, cells: list[Any]) -> dict[str, Any]:
    """Store one row as a response through ``submit_response``, or say why not; the report
    entry of the row. The one-row path: ``import_rows`` stores a batch at once and falls
    back to this for a batch the database refuses."""
    read = read_row(context, number, cells)
    values, errors = read.values, read.errors
    row_id, unit_code, agency_code = read.row_id, read.unit_code, read.agency_code
    weight, design = read.weight, read.design

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

    answer_errors: dict[str, list[str]] = {}
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

    round_code = context.paper_import.round.code
    content = {"unit": unit_code, "agency": agency_code, "weight": weight, "answers": answers}
    # The design counts only when given, so keys of forms stored before it existed stay valid.
    content |= {column: code for column, code in design.items() if code}
    key = paper_key(row_id=row_id, content=content)
    digest = request_digest(
        round_code=round_code, unit_code=unit_code, answers=answers, design=design
    )
    if stored := _stored_form(context, key, number, row_id, digest):
        return stored
    try:
        with transaction.atomic():
            submission = submit_response(
                round_code=round_code,
                unit_code=unit_code,
                agency_code=agency_code,
                answers=answers,
                channel=Response.Channel.PAPER,
                weight=weight,
                psu=design["psu"],
                stratum=design["stratum"],
                import_batch_id=context.paper_import.pk,
            )
            Response.objects.filter(pk=submission.response.pk).update(paper_key=key)
    except AnswersInvalid as problem:
        return _rejected(number, row_id, problem.errors)
    except ClientIdConflict as problem:
        return _rejected(number, row_id, {"row": [problem.detail]})
    except ValidationError as problem:
        return _rejected(number, row_id, problem.message_dict)
    except IntegrityError:
        # Another import stored the same form a moment ago (the unique paper_key index).
        if stored := _stored_form(context, key, number, row_id, digest):
            return stored
        raise
    return {
        "row": number,
        "row_id": row_id,
        "status": "accepted",
        "receipt": submission.response.receipt,
    }


def storable(text: str) -> bool:
    """False for text PostgreSQL cannot store: a NUL, or a lone surrogate (not UTF-8)."""
    return UNSTORABLE.search(text) is None


def _stored_form(
    context: RowContext, key: str, number: int, row_id: str, digest: str
) -> dict[str, Any] | None:
    """The report entry of a row whose form the round holds already, else None."""
    stored = (
        Response.objects.filter(round_id=context.paper_import.round_id, paper_key=key)
        .values("receipt", "request_digest", "import_batch_id")
        .first()
    )
    if stored is None:
        return None
    return _stored_entry(stored, number, row_id, digest)


def _stored_entry(stored: dict[str, Any], number: int, row_id: str, digest: str) -> dict[str, Any]:
    """The report entry of a row whose form is ``stored`` (its receipt, request digest and
    import): a duplicate, or a row_id reused with other answers (rejected)."""
    if row_id and stored["request_digest"] != digest:
        return _rejected(
            number,
            row_id,
            {
                "row_id": [
                    _(
                        "A form with this row_id is already stored with other answers (import "
                        "%(import)s); it was kept and this row was not stored."
                    )
                    % {"import": stored["import_batch_id"]}
                ]
            },
        )
    return {
        "row": number,
        "row_id": row_id,
        "status": "duplicate",
        "receipt": stored["receipt"],
        "import": stored["import_batch_id"],
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


# Importing a batch of rows set-based ----------------------------------------------------

# An answer's columns after its response's id: question id, JSON text, number, code.
AnswerRow = tuple[int, str, float | None, str]

# Free text is seldom written twice: its cells are converted and cleaned without a memo.
UNMEMOISED = frozenset({Question.Type.TEXT, Question.Type.LONGTEXT})


@dataclass
class CheckedRow:
    """A row checked with its batch: the answers it gives (as written, for its key and
    digest), the answers to store (each with the columns COPY writes), and its errors:
    ``errors`` when its cells have problems (the row is rejected as it is), else ``refused``
    when its unit, agency or answers do (rejected unless its form is stored already, which
    ``import_row`` looks at first)."""

    read: ReadRow
    errors: dict[str, list[str]]
    refused: dict[str, list[str]]
    answers: dict[str, Any]
    cleaned: list[tuple[CleanAnswer, AnswerRow]]
    target: tuple[int, int | None] | None


@dataclass
class NewForm:
    """A checked row to store as a new response."""

    row: CheckedRow
    key: str
    digest: str
    receipt: str


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _is_empty(value: Any) -> bool:
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def _convert_column(
    context: RowContext, question: Question, reads: list[ReadRow], cell_errors: list[dict]
) -> list[Any]:
    """The answers one question's column gives, row by row (None: empty or unreadable, the
    problem then in ``cell_errors``); each distinct cell is converted once per import."""
    code = question.code
    memo = None if question.type in UNMEMOISED else context.memo.converted
    column: list[Any] = []
    for index, read in enumerate(reads):
        cell = read.values.get(code)
        if cell is None:
            column.append(None)
            continue
        key = (code, type(cell), cell)
        if memo is not None and key in memo:
            value = memo[key]
        else:
            try:
                value = convert_cell(question, cell)
            except CellError as problem:
                value = problem
            if memo is not None:
                memo[key] = value
        if isinstance(value, CellError):
            cell_errors[index][code] = [
                _("%(code)s: %(problem)s")
                % {"code": code, "problem": _cell_message(context, code, read.number, value)}
            ]
            value = None
        column.append(value)
    return column


def _clean(
    context: RowContext, question: Question, value: Any
) -> tuple[CleanAnswer, AnswerRow] | str:
    """``clean_value`` of a non-empty answer with its columns, or the error message as
    ``clean_answers`` words it; once per distinct answer and import."""
    memo = None if question.type in UNMEMOISED else context.memo.cleaned
    key = (question.code, type(value), _frozen(value))
    if memo is not None and key in memo:
        return memo[key]
    choice_codes = [c.code for c in question.choices.all()]
    try:
        answer = clean_value(question, value, choice_codes)
        text = json.dumps(answer.value, ensure_ascii=False)
        result: tuple[CleanAnswer, AnswerRow] | str = (
            answer,
            (question.pk, text, answer.number, answer.code),
        )
    except AnswerError as problem:
        result = _("%(question)s: the answer %(problem)s.") % {
            "question": question_name(question),
            "problem": problem,
        }
    if memo is not None:
        memo[key] = result
    return result


def _shown(question: Question, cleaned: dict[str, list[CleanAnswer | None]], index: int) -> bool:
    condition = question.show_if_question
    if condition is None:
        return True
    column = cleaned.get(condition.code)
    answer = column[index] if column is not None else None
    return answer is not None and is_shown(question, {condition.code: answer})


def _target(context: RowContext, unit_code: str, agency_code: str) -> Any:
    """The unit and agency ids a row names, or the errors ``resolve_target`` gives; once
    per distinct pair of codes and import."""
    key = (unit_code, agency_code)
    if key not in context.memo.targets:
        try:
            _survey_round, unit, agency = resolve_target(
                round_code=context.paper_import.round.code,
                unit_code=unit_code,
                agency_code=agency_code,
            )
            context.memo.targets[key] = (unit.pk, agency.pk if agency else None)
        except ValidationError as problem:
            context.memo.targets[key] = problem.message_dict
    return context.memo.targets[key]


def check_rows(context: RowContext, reads: list[ReadRow]) -> list[CheckedRow]:
    """Check a batch of rows column by column, as ``import_row`` checks one row.

    Each question's column is converted, then cleaned in form order with the display
    condition evaluated on the cleaned column it depends on, as ``clean_answers`` does for
    one row; distinct values are worked out once. A row's errors are then combined as
    ``import_row`` reports them: with a problem in its cells, every problem at once;
    otherwise (``refused``) the unit or agency problem, else the answers' problems.
    """
    size = len(reads)
    questions = list(context.questions.values())
    present = set(context.columns)
    cell_errors: list[dict[str, list[str]]] = [{} for _ in reads]
    answer_errors: list[dict[str, list[str]]] = [{} for _ in reads]
    written: list[dict[str, Any]] = [{} for _ in reads]
    cleaned: dict[str, list[CleanAnswer | None]] = {}
    to_store: list[list[tuple[CleanAnswer, AnswerRow]]] = [[] for _ in reads]
    for question in questions:
        code = question.code
        if code in present:
            column = _convert_column(context, question, reads, cell_errors)
            for index, value in enumerate(column):
                if value is not None:
                    written[index][code] = value
        else:
            column = [None] * size
        condition = question.show_if_question
        controlling = cleaned.get(condition.code) if condition is not None else None
        shown: dict[int, bool] = {}  # by the controlling answer (the same object when equal)
        required = ""
        out: list[CleanAnswer | None] = [None] * size
        for index, value in enumerate(column):
            if condition is not None:
                answer = controlling[index] if controlling is not None else None
                if answer is None:
                    continue
                if (visible := shown.get(id(answer))) is None:
                    visible = shown[id(answer)] = is_shown(question, {condition.code: answer})
                if not visible:
                    continue
            if _is_empty(value):
                if question.required:
                    required = required or _("%(question)s: an answer is required.") % {
                        "question": question_name(question)
                    }
                    answer_errors[index][code] = [required]
                continue
            result = _clean(context, question, value)
            if isinstance(result, str):
                answer_errors[index][code] = [result]
            else:
                out[index] = result[0]
                to_store[index].append(result)
        cleaned[code] = out

    checked = []
    for index, read in enumerate(reads):
        errors, refused = dict(read.errors), {}
        errors |= {
            code: messages
            for code, messages in cell_errors[index].items()
            if _shown(context.questions[code], cleaned, index)
        }
        target = _target(context, read.unit_code, read.agency_code) if read.unit_code else None
        if errors:
            for code, messages in answer_errors[index].items():
                errors.setdefault(code, messages)
            if isinstance(target, dict):
                for key, messages in target.items():
                    errors.setdefault(key, messages)
        elif isinstance(target, dict):
            refused = dict(target)
        elif answer_errors[index]:
            refused = answer_errors[index]
        checked.append(
            CheckedRow(
                read=read,
                errors=errors,
                refused=refused,
                answers=written[index],
                cleaned=to_store[index],
                target=None if errors or refused else target,
            )
        )
    return checked


def import_rows(context: RowContext, batch: list[tuple[int, list[Any]]]) -> list[dict[str, Any]]:
    """The report entries of a batch of rows, its good rows stored at once.

    If the database refuses the batch (a value it will not take, or another import storing
    one of its forms at the same moment), nothing of it is kept and the batch is redone row
    by row (``import_row``), so that only the row at fault is rejected.
    """
    try:
        with transaction.atomic():
            return _import_batch(context, batch)
    except (OperationalError, InterfaceError):
        raise
    except DatabaseError:
        logger.warning(
            "paper import %s: the batch from row %s was refused as a whole; importing it "
            "row by row",
            context.paper_import.pk,
            batch[0][0],
            exc_info=True,
        )
        return [_import_row_safely(context, number, cells) for number, cells in batch]


def _import_batch(context: RowContext, batch: list[tuple[int, list[Any]]]) -> list[dict[str, Any]]:
    paper_import = context.paper_import
    round_code = paper_import.round.code
    checked = check_rows(context, [read_row(context, number, cells) for number, cells in batch])
    entries: list[dict[str, Any]] = []
    good: list[tuple[int, CheckedRow, str, str]] = []
    for row in checked:
        read = row.read
        if row.errors:
            entries.append(_rejected(read.number, read.row_id, row.errors))
            continue
        content = {
            "unit": read.unit_code,
            "agency": read.agency_code,
            "weight": read.weight,
            "answers": row.answers,
        }
        content |= {column: code for column, code in read.design.items() if code}
        key = paper_key(row_id=read.row_id, content=content)
        digest = request_digest(
            round_code=round_code, unit_code=read.unit_code, answers=row.answers, design=read.design
        )
        good.append((len(entries), row, key, digest))
        entries.append({})
    # Forms stored already, by an earlier batch or import: one query for the batch.
    stored = {
        form["paper_key"]: form
        for form in Response.objects.filter(
            round_id=paper_import.round_id, paper_key__in=[key for _i, _r, key, _d in good]
        ).values("paper_key", "receipt", "request_digest", "import_batch_id")
    }
    new: list[NewForm] = []
    for position, row, key, digest in good:
        number, row_id = row.read.number, row.read.row_id
        if key in stored:  # stored before, or by an earlier row of this batch
            entries[position] = _stored_entry(stored[key], number, row_id, digest)
            continue
        if row.refused:
            entries[position] = _rejected(number, row_id, row.refused)
            continue
        form = NewForm(row, key, digest, new_receipt_code())
        stored[key] = {
            "receipt": form.receipt,
            "request_digest": digest,
            "import_batch_id": paper_import.pk,
        }
        new.append(form)
        entries[position] = {
            "row": number,
            "row_id": row_id,
            "status": "accepted",
            "receipt": form.receipt,
        }
    store_forms(context, new)
    return entries


RESPONSE_COLUMNS = (
    "id",
    "receipt",
    "round_id",
    "version_id",
    "unit_id",
    "agency_id",
    "channel",
    "request_digest",
    "submitted_at",
    "weight",
    "psu",
    "stratum",
    "import_batch_id",
    "paper_key",
)


def store_forms(context: RowContext, forms: list[NewForm]) -> list[int]:
    """Store checked forms as paper responses with their answers; their new ids.

    PostgreSQL: the ids are drawn from the table's sequence in one query, then the responses
    and their answers go in with one COPY each. Elsewhere (SQLite): two ``bulk_create``.
    """
    if not forms:
        return []
    paper_import = context.paper_import
    now = timezone.now()
    fixed = {
        "round_id": paper_import.round_id,
        "version_id": paper_import.round.version_id,
        "channel": Response.Channel.PAPER,
        "submitted_at": now,
        "import_batch_id": paper_import.pk,
    }

    def columns(form: NewForm) -> dict[str, Any]:
        read, (unit_id, agency_id) = form.row.read, form.row.target or (None, None)
        return fixed | {
            "receipt": form.receipt,
            "unit_id": unit_id,
            "agency_id": agency_id,
            "request_digest": form.digest,
            "weight": read.weight,
            "psu": read.design["psu"],
            "stratum": read.design["stratum"],
            "paper_key": form.key,
        }

    if connection.vendor == "postgresql":
        responses, answers = Response._meta.db_table, Answer._meta.db_table
        # COPY goes through psycopg's own cursor: its errors are turned into Django's here
        # (IntegrityError, OperationalError…), as a query's are.
        with connection.cursor() as cursor, connection.wrap_database_errors:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [responses, len(forms)],
            )
            ids = [row[0] for row in cursor.fetchall()]
            names = ", ".join(RESPONSE_COLUMNS)
            with cursor.cursor.copy(f"COPY {responses} ({names}) FROM STDIN") as copy:
                for response_id, form in zip(ids, forms, strict=True):
                    row = columns(form) | {"id": response_id}
                    copy.write_row([row[name] for name in RESPONSE_COLUMNS])
            with cursor.cursor.copy(
                f"COPY {answers} (response_id, round_id, question_id, value, number, code) "
                "FROM STDIN"
            ) as copy:
                round_id = paper_import.round_id
                for response_id, form in zip(ids, forms, strict=True):
                    for _answer, tail in form.row.cleaned:
                        copy.write_row((response_id, round_id, *tail))
    else:
        created = Response.objects.bulk_create(Response(**columns(form)) for form in forms)
        ids = [response.pk for response in created]
        Answer.objects.bulk_create(
            Answer(
                response_id=response_id,
                round_id=paper_import.round_id,
                question=answer.question,
                value=answer.value,
                number=answer.number,
                code=answer.code,
            )
            for response_id, form in zip(ids, forms, strict=True)
            for answer, _columns in form.row.cleaned
        )
    records.refresh(ids)  # the compact scoring records, in the same transaction
    signals.responses_created.send(
        sender=Response, response_ids=ids, round_id=paper_import.round_id
    )
    return ids


def create_paper_import(
    *, round_code: str, file_name: str, content: bytes, uploaded_by: AbstractBaseUser | None
) -> PaperImport:
    """Check a file of paper forms and store it as a pending import of ``uploaded_by``."""
    survey_round = _round(round_code, uploaded_by)
    late_entry = check_round_accepts_forms(survey_round, uploaded_by)
    total = _count_rows(survey_round, file_name, content)
    return PaperImport.objects.create(
        round=survey_round,
        file_name=Path(file_name).name[:255],
        content=content,
        uploaded_by=uploaded_by,
        late_entry=late_entry,
        total_rows=total,
    )


def start_paper_import(
    *, round_code: str, file_name: str, content: bytes, uploaded_by: AbstractBaseUser | None
) -> PaperImport:
    """Create an import; run it now when small, else queue it for a worker.

    ``BrokerUnavailable`` if the task cannot be queued: the import is deleted again.
    """
    paper_import = create_paper_import(
        round_code=round_code, file_name=file_name, content=content, uploaded_by=uploaded_by
    )
    if paper_import.total_rows <= settings.PAPER_IMPORT_SYNC_MAX_ROWS:
        return run_paper_import(import_id=paper_import.pk)
    try:
        queue_paper_import(import_id=paper_import.pk)
    except BrokerUnavailable:
        PaperImport.objects.filter(pk=paper_import.pk, status=PaperImport.Status.PENDING).delete()
        raise
    paper_import.refresh_from_db()  # an eager task (no Redis) has run already
    return paper_import


def queue_paper_import(*, import_id: int) -> None:
    """Hand the import to a worker; ``BrokerUnavailable`` if the broker does not take it."""
    from feedback.tasks import import_paper_forms

    PaperImport.objects.filter(pk=import_id).update(queued_at=timezone.now())
    enqueue(import_paper_forms, import_id)


def claim_import(import_id: int) -> bool:
    """Take the import's lock for this database session; False if another worker has it.

    The server frees the lock when the session ends, so a dead worker's import is free.
    """
    return worker_locks.claim(IMPORT_LOCK, import_id)


def release_import(import_id: int) -> None:
    worker_locks.release(IMPORT_LOCK, import_id)


def run_paper_import(*, import_id: int) -> PaperImport:
    """Import the rows of a pending or interrupted import after its last committed row.

    A finished or failed import is left as is, and so is one another worker is running.
    """
    paper_import = PaperImport.objects.select_related("round").get(pk=import_id)
    finished = (PaperImport.Status.DONE, PaperImport.Status.FAILED)
    if paper_import.status in finished or not claim_import(import_id):
        return paper_import
    try:
        paper_import.refresh_from_db()  # as it is now that this session holds it
        if paper_import.status in finished:
            return paper_import
        if paper_import.attempts >= MAX_ATTEMPTS:
            fail_paper_import(
                import_id=import_id,
                error=_(
                    "The import was started %(n)s times without finishing (its worker stopped "
                    "each time); rows up to %(row)s are stored."
                )
                % {"n": paper_import.attempts, "row": paper_import.last_row},
            )
            return paper_import
        PaperImport.objects.filter(pk=import_id).update(
            status=PaperImport.Status.RUNNING,
            error="",
            attempts=F("attempts") + 1,
            heartbeat_at=timezone.now(),
        )
        paper_import.refresh_from_db()
        try:
            _import_rows(paper_import)
        except (OperationalError, InterfaceError):
            raise  # transient: the task retries and resumes after the last committed row
        except ValidationError as problem:  # the file turned out unreadable past its start
            fail_paper_import(import_id=import_id, error=" ".join(problem.messages))
        except Exception:
            # The error's text may quote a cell (a database error does): log it, show none.
            logger.exception("paper import %s failed", import_id)
            fail_paper_import(import_id=import_id, error=stopped_message(import_id))
    finally:
        release_import(import_id)
    paper_import.refresh_from_db()
    return paper_import


def stopped_message(import_id: int) -> str:
    """What a failed import says: where it stopped, never why in the error's own words."""
    last_row = PaperImport.objects.filter(pk=import_id).values_list("last_row", flat=True).first()
    return _(
        "The import stopped after row %(row)s because of an unexpected error, recorded in "
        "the server log under paper import %(id)s. Rows up to row %(row)s are stored."
    ) % {"row": last_row or 1, "id": import_id}


def batch_rows(total_rows: int) -> int:
    """Rows per transaction for a file of ``total_rows``: ``BATCH_ROWS``, or for a large
    file enough that it commits about ``PROGRESS_STEPS`` times (each commit appends to the
    stored report, and shows the progress), at most ``MAX_BATCH_ROWS``."""
    return max(BATCH_ROWS, min(MAX_BATCH_ROWS, total_rows // PROGRESS_STEPS))


def _import_rows(paper_import: PaperImport) -> None:
    content = bytes(paper_import.content)
    questions = {q.code: q for q in round_questions(paper_import.round)}
    kind = file_kind(file_name=paper_import.file_name, content=content)
    rows = read_rows(kind=kind, content=content)
    context = RowContext(paper_import, questions, header_columns(next(rows), questions))
    progress = Progress.of(paper_import)
    size = batch_rows(paper_import.total_rows)
    batch: list[tuple[int, list[Any]]] = []
    for number, cells in enumerate(rows, start=2):
        if number <= paper_import.last_row or is_blank(cells):
            continue
        batch.append((number, cells))
        if len(batch) == size:
            _commit_batch(context, progress, batch)
            batch = []
    if batch:
        _commit_batch(context, progress, batch)
    PaperImport.objects.filter(pk=paper_import.pk).update(
        total_rows=progress.processed,
        status=PaperImport.Status.DONE,
        finished_at=timezone.now(),
        content=b"",  # the forms are stored or rejected: keep no copy of what citizens wrote
    )


def _commit_batch(
    context: RowContext, progress: Progress, batch: list[tuple[int, list[Any]]]
) -> None:
    """Store a batch of rows and record their outcome, all in one transaction."""
    import_id = context.paper_import.pk
    with transaction.atomic():
        for entry in import_rows(context, batch):
            progress.add(entry)
        if connection.vendor == "postgresql":
            # Append to the stored report in the database: no rewrite of it from here.
            report: Any = Func(
                F("report"),
                Value(progress.entries, output_field=JSONField()),
                template="%(expressions)s",
                arg_joiner=" || ",
                output_field=JSONField(),
            )
        else:
            stored = PaperImport.objects.select_for_update().values_list("report", flat=True)
            report = [*stored.get(pk=import_id), *progress.entries]
        PaperImport.objects.filter(pk=import_id).update(
            **progress.counters(),
            report=report,
            last_row=batch[-1][0],
            heartbeat_at=timezone.now(),
        )
    progress.entries = []


def _import_row_safely(context: RowContext, number: int, cells: list[Any]) -> dict[str, Any]:
    """``import_row``, with a row the database refuses rejected rather than the import.

    The database's message may quote the value, so it goes to the log, not the report.
    """
    try:
        with transaction.atomic():
            return import_row(context, number, cells)
    except (OperationalError, InterfaceError):
        raise
    except DatabaseError:
        logger.exception(
            "paper import %s: row %s refused by the database", context.paper_import.pk, number
        )
        return _rejected(
            number,
            "",
            {
                "row": [
                    _(
                        "Row %(row)s could not be stored: the database refused one of its "
                        "values. The details are in the server log."
                    )
                    % {"row": number}
                ]
            },
        )


def fail_paper_import(*, import_id: int, error: str) -> None:
    """Mark an import failed; rows already stored stay (and would count as duplicates)."""
    PaperImport.objects.filter(pk=import_id).exclude(status=PaperImport.Status.DONE).update(
        status=PaperImport.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )


def requeue_stalled_paper_imports(*, now: dt.datetime | None = None) -> list[int]:
    """Queue again the pending or running imports no worker runs, queued (or uploaded) at
    least ``STALLED_WORK_MINUTES`` ago: the task never started, or its worker died. The ids
    queued again; a second copy of the task is harmless (``claim_import``)."""
    now = now or timezone.now()
    stalled_since = now - dt.timedelta(minutes=settings.STALLED_WORK_MINUTES)
    candidates = dict(
        PaperImport.objects.filter(
            status__in=[PaperImport.Status.PENDING, PaperImport.Status.RUNNING]
        )
        .annotate(queued=Coalesce("queued_at", "created_at"))
        .filter(queued__lt=stalled_since)
        .values_list("id", "heartbeat_at")
    )
    if connection.vendor == "postgresql":
        with transaction.atomic():  # the locks taken are free again when it ends
            idle = worker_locks.unheld(IMPORT_LOCK, list(candidates))
    else:
        idle = [pk for pk, seen in candidates.items() if seen is None or seen < stalled_since]
    requeued = []
    for import_id in sorted(idle):
        try:
            queue_paper_import(import_id=import_id)
        except BrokerUnavailable:
            break  # the next sweep tries again
        requeued.append(import_id)
    return requeued
