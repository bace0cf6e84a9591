"""Rows of the exports: published scores, raw responses in the wide layout, the codebook.

Everything is a generator over server-side cursors (``.iterator(chunk_size=...)``), so a
round of any size streams in constant memory. Raw responses are one query over responses
and one over answers, both ordered by response, merged in step (no query per response).
Questions flagged ``personal_data`` are never exported.
"""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from feedback.models import Answer, Response
from scoring.models import Score
from surveys.models import Choice, Question, Round

CHUNK_SIZE = 2000
SCORE_HEADER = [
    "round",
    "run",
    "scope",
    "unit",
    "unit_name",
    "indicator",
    "indicator_name_vi",
    "indicator_name_en",
    "value",
    "n",
    "valid",
    "se",
    "ci_low",
    "ci_high",
    "rank",
    "rank_of",
    "suppressed",
    "change",
    "change_significant",
    # issue 13: precision, rank interval, change p-value
    "deff",
    "n_eff",
    "rank_low",
    "rank_high",
    "change_p",
]
SCORE_FIELDS = (
    "run_id",
    "scope",
    "unit__code",
    "unit__name",
    "indicator__code",
    "indicator__name_vi",
    "indicator__name_en",
    "value",
    "n",
    "valid",
    "se",
    "ci_low",
    "ci_high",
    "rank",
    "rank_of",
    "suppressed",
    "change",
    "change_significant",
    "deff",
    "n_eff",
    "rank_low",
    "rank_high",
    "change_p",
)
HIDDEN_WHEN_SUPPRESSED = (
    "value",
    "se",
    "ci_low",
    "ci_high",
    "change",
    "change_significant",
    "deff",
    "n_eff",
    "rank_low",
    "rank_high",
    "change_p",
)
EXPORTED_SCOPES = (Score.Scope.NATIONAL, Score.Scope.NATIONAL_MEAN, Score.Scope.UNIT)
RESPONSE_HEADER = ["id", "round", "unit", "submitted_at", "channel", "weight", "stratum", "psu"]
CODEBOOK_HEADER = [
    "question",
    "section",
    "type",
    "label_vi",
    "label_en",
    "indicator",
    "choice",
    "choice_label_vi",
    "choice_label_en",
]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def score_rows(*, round_code: str, run_id: int) -> Iterator[list[Any]]:
    """The header, then every national and unit score of the run; suppressed values blank."""
    yield SCORE_HEADER
    rows = (
        Score.objects.filter(run_id=run_id, scope__in=EXPORTED_SCOPES)
        .order_by("indicator__position", "indicator__code", "scope", "unit__code")
        .values(*SCORE_FIELDS)
    )
    for row in rows.iterator(chunk_size=CHUNK_SIZE):
        if row["suppressed"]:
            row |= dict.fromkeys(HIDDEN_WHEN_SUPPRESSED)
        yield [round_code, *row.values()]


@dataclass(frozen=True)
class Column:
    code: str
    type: str


def response_columns(survey_round: Round) -> tuple[list[Column], dict[int, int]]:
    """The question columns of a round's export and each question id's column index.

    Columns follow the round's questionnaire version; questions of other versions that
    the round's responses used are matched by code (or appended). Personal data is left out.
    """
    version_ids = {survey_round.version_id} | set(
        Response.objects.filter(round=survey_round).values_list("version_id", flat=True).distinct()
    )
    questions = (
        Question.objects.filter(version_id__in=version_ids, personal_data=False)
        .order_by("section__position", "position", "id")
        .values_list("id", "code", "type", "version_id")
    )
    main = [q for q in questions if q[3] == survey_round.version_id]
    others = [q for q in questions if q[3] != survey_round.version_id]
    columns: list[Column] = []
    index: dict[str, int] = {}
    by_id: dict[int, int] = {}
    for pk, code, kind, _version in [*main, *others]:
        if code not in index:
            index[code] = len(columns)
            columns.append(Column(code, kind))
        by_id[pk] = index[code]
    return columns, by_id


def cell(value: Any) -> Any:
    """An answer as one cell: yes/no as 1/0, several choices joined by ';'."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return str(value)
    return value


def response_rows(survey_round: Round) -> Iterator[list[Any]]:
    """The header, then one row per response: its fields, then one cell per question."""
    columns, by_id = response_columns(survey_round)
    yield [*RESPONSE_HEADER, *(c.code for c in columns)]
    responses = (
        Response.objects.filter(round=survey_round)
        .order_by("pk")
        .values_list("pk", "unit__code", "submitted_at", "channel", "weight", "stratum", "psu")
        .iterator(chunk_size=CHUNK_SIZE)
    )
    answers = (
        Answer.objects.filter(response__round=survey_round, question_id__in=list(by_id))
        .order_by("response_id")
        .values_list("response_id", "question_id", "value")
        .iterator(chunk_size=CHUNK_SIZE * 40)
    )
    pending = next(answers, None)
    for pk, unit, submitted_at, channel, weight, stratum, psu in responses:
        cells: list[Any] = [None] * len(columns)
        while pending is not None and pending[0] <= pk:
            if pending[0] == pk:
                column = by_id[pending[1]]
                cells[column] = cell(pending[2])
            pending = next(answers, None)
        submitted = timezone.localtime(submitted_at)
        yield [pk, survey_round.code, unit, submitted, channel, weight, stratum, psu, *cells]


def codebook_rows(survey_round: Round) -> Iterator[list[Any]]:
    """The header, then one row per choice (or per question without choices)."""
    yield CODEBOOK_HEADER
    _columns, by_id = response_columns(survey_round)
    questions = (
        Question.objects.filter(pk__in=list(by_id))
        .select_related("section", "indicator")
        .order_by("version_id", "section__position", "position", "id")
    )
    choices: dict[int, list[Choice]] = {}
    for choice in Choice.objects.filter(question_id__in=list(by_id)).order_by("position", "id"):
        choices.setdefault(choice.question_id, []).append(choice)
    seen: set[str] = set()
    for question in questions:
        if question.code in seen:
            continue
        seen.add(question.code)
        common = [
            question.code,
            question.section.code,
            question.type,
            question.label_vi,
            question.label_en,
            question.indicator.code if question.indicator else None,
        ]
        options = [(c.code, c.label_vi, c.label_en) for c in choices.get(question.pk, [])]
        if question.type == Question.Type.YESNO:
            options = [("1", "Có", "Yes"), ("0", "Không", "No")]
        for option in options or [(None, None, None)]:
            yield [*common, *option]


# --- Writers ----------------------------------------------------------------------------------


class _Line:
    """A file-like object whose write returns what it is given (Django's streaming CSV)."""

    def write(self, value: str) -> str:
        return value


def csv_text(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        try:
            float(value)
        except ValueError:
            return "'" + value  # so a spreadsheet never runs a cell as a formula
    return value


def csv_stream(rows: Iterable[list[Any]]) -> Iterator[bytes]:
    """UTF-8 CSV with a byte order mark (so Excel reads Vietnamese), one chunk per row."""
    writer = csv.writer(_Line())
    yield "\ufeff".encode()
    for row in rows:
        yield writer.writerow([csv_text(v) for v in row]).encode()


def _xlsx_value(sheet: Any, value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)  # local time (TIME_ZONE); Excel has no zones
    if isinstance(value, str):
        text = WriteOnlyCell(sheet, value=None)
        text.value = ILLEGAL_CHARACTERS_RE.sub("", value)
        text.data_type = "s"  # text, even when it starts with "=": never a formula
        return text
    return value


def xlsx_file(sheets: Iterable[tuple[str, Iterable[list[Any]]]]) -> IO[bytes]:
    """A write-only workbook saved to an anonymous temporary file, rewound."""
    workbook = Workbook(write_only=True)
    for title, rows in sheets:
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append([_xlsx_value(sheet, v) for v in row])
    handle = tempfile.TemporaryFile()  # noqa: SIM115 (the response closes it)
    workbook.save(handle)
    handle.seek(0)
    return handle
