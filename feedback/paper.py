"""Import paper questionnaires from a CSV or XLSX file, one response per row.

``create_paper_import`` checks the file up front (type, size, header, and that the round is
open or the user may enter forms late) and stores it; ``run_paper_import`` streams it row by
row, converts each cell by question type and stores each row through ``submit_response``
(channel paper), so a row is validated like an API submission and stored whole or not at all.
``start_paper_import`` runs a small file at once and queues a large one for a Celery task;
if the broker does not take the task, the import is deleted and ``BrokerUnavailable`` raised.

A paper form is stored once in its round, whatever the file or row it comes in: its key is
its ``row_id`` or, without one, the digest of its content (unit, agency, weight, answers,
and ``psu``/``stratum`` when given),
and a unique index on ``(round, paper_key)`` backs this up. A row whose form is stored
already is reported as a duplicate; one reusing a ``row_id`` with other answers is rejected.

Rows are committed in batches of ``BATCH_ROWS``, each batch in one transaction with the
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

from config.queueing import BrokerUnavailable, enqueue
from feedback.errors import AnswersInvalid, ClientIdConflict
from feedback.models import DESIGN_CODE_MAX_LENGTH, PaperImport, Response
from feedback.services import request_digest, resolve_target, round_questions, submit_response
from feedback.validation import clean_answers, is_shown
from surveys.models import Question, Round

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 20 * 1024 * 1024
BATCH_ROWS = 100  # rows per transaction: the most a dead worker's import loses and redoes
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


def _round(round_code: str) -> Round:
    survey_round = Round.objects.filter(code=round_code).first()
    if survey_round is None:
        raise ValidationError(
            {"round": [_("There is no survey round %(code)s.") % {"code": round_code}]}
        )
    return survey_round


def check_paper_file(
    *, round_code: str, file_name: str, content: bytes, user: AbstractBaseUser | None
) -> int:
    """The number of data rows of a valid file, or ``ValidationError`` naming the problem."""
    survey_round = _round(round_code)
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
        ref = f"{get_column_letter(index + 1)}{number}"
        if cell is UNCACHED_FORMULA:
            errors.setdefault(column or ref, []).append(
                _(
                    "cell %(cell)s holds a formula whose value the file does not store; open "
                    "the file in a spreadsheet, save it and upload it again"
                )
                % {"cell": ref}
            )
            cell = None
        elif isinstance(cell, str) and not storable(cell):
            errors.setdefault(column or ref, []).append(
                _(
                    "cell %(cell)s holds a character that cannot be stored (a NUL or an "
                    "unpaired surrogate)"
                )
                % {"cell": ref}
            )
            cell = None
        if column:
            values[column] = cell
        elif not is_blank([cell]):
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
    return "\x00" not in text and not any("\ud800" <= char <= "\udfff" for char in text)


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


def create_paper_import(
    *, round_code: str, file_name: str, content: bytes, uploaded_by: AbstractBaseUser | None
) -> PaperImport:
    """Check a file of paper forms and store it as a pending import of ``uploaded_by``."""
    survey_round = _round(round_code)
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
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [IMPORT_LOCK, import_id])
        return bool(cursor.fetchone()[0])


def release_import(import_id: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [IMPORT_LOCK, import_id])


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


def _import_rows(paper_import: PaperImport) -> None:
    content = bytes(paper_import.content)
    questions = {q.code: q for q in round_questions(paper_import.round)}
    kind = file_kind(file_name=paper_import.file_name, content=content)
    rows = read_rows(kind=kind, content=content)
    context = RowContext(paper_import, questions, header_columns(next(rows), questions))
    progress = Progress.of(paper_import)
    batch: list[tuple[int, list[Any]]] = []
    for number, cells in enumerate(rows, start=2):
        if number <= paper_import.last_row or is_blank(cells):
            continue
        batch.append((number, cells))
        if len(batch) == BATCH_ROWS:
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
        for number, cells in batch:
            progress.add(_import_row_safely(context, number, cells))
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
        with transaction.atomic(), connection.cursor() as cursor:
            # A transaction-level try-lock: free again when this transaction ends.
            cursor.execute(
                "SELECT id FROM unnest(%s::bigint[]) AS id "
                "WHERE pg_try_advisory_xact_lock(%s, id::int)",
                [list(candidates), IMPORT_LOCK],
            )
            idle = [row[0] for row in cursor]
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
