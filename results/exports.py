"""Rows of the exports: published scores, raw responses in the wide layout, the codebook.

Everything is a generator over server-side cursors (``.iterator(chunk_size=...)``), so a
round of any size streams in constant memory. Raw responses are one query over responses
and one over answers, both ordered by response, merged in step (no query per response).
The CSV of raw responses is faster still: PostgreSQL builds its rows itself, one statement
streamed with ``COPY ... TO STDOUT`` (``response_csv_copy``; docs/exports.md), the same bytes
as ``csv_stream(response_rows(...))``. Questions flagged ``personal_data`` are never exported.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, router, transaction
from django.utils import timezone

from feedback.models import Answer, Response
from results.export_files import LARGE_ENTRY_BYTES
from scoring.models import HIDDEN_WHEN_SUPPRESSED, SCORE_FIELDS, Score
from surveys.models import Choice, Question, Round

CHUNK_SIZE = 2000
# The scores' columns: where each row comes from, then the score's fields as published.
SCORE_PLACE = {
    "run": "run_id",
    "scope": "scope",
    "unit": "unit__code",
    "unit_name": "unit__name",
    "indicator": "indicator__code",
    "indicator_name_vi": "indicator__name_vi",
    "indicator_name_en": "indicator__name_en",
}
SCORE_HEADER = ["round", *SCORE_PLACE, *SCORE_FIELDS]
SCORE_COLUMNS = (*SCORE_PLACE.values(), *SCORE_FIELDS)  # what the rows read, after the round
EXPORTED_SCOPES = (Score.Scope.NATIONAL, Score.Scope.NATIONAL_MEAN, Score.Scope.UNIT)
RESPONSE_HEADER = [
    "id",
    "round",
    "unit",
    "submitted_at",
    "channel",
    "weight",
    "stratum",
    "psu",
    "review_state",  # accepted, or excluded from the indices (feedback.review.services)
]
# What a response's columns are read from (all but ``round``, the round's code), in their order.
RESPONSE_FIELDS = (
    "pk",
    "unit__code",
    "submitted_at",
    "channel",
    "weight",
    "stratum",
    "psu",
    "review_state",
)
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
        .values(*SCORE_COLUMNS)
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
        Response.objects.filter(round=survey_round)
        .order_by()  # no default ordering in the DISTINCT: one row per version, not per response
        .values_list("version_id", flat=True)
        .distinct()
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


def responses_with_cells(
    survey_round: Round,
    fields: Sequence[str],
    by_id: dict[int, int],
    width: int,
    *,
    limit: int | None = None,
    convert: Callable[[Any], Any] = cell,
) -> Iterator[tuple[tuple[Any, ...], list[Any]]]:
    """Each response of the round (``fields`` of it, the first being ``pk``; up to id
    ``limit`` if given), oldest first, with its answers placed in ``width`` cells (``by_id``:
    question id → cell, each stored value passed through ``convert``): two streamed queries
    merged on the response id, never a query per response."""
    responses = Response.objects.filter(round=survey_round)
    answers = Answer.objects.filter(
        round=survey_round, response__round=survey_round, question_id__in=list(by_id)
    )
    if limit is not None:
        responses = responses.filter(pk__lte=limit)
        answers = answers.filter(response_id__lte=limit)
    pending_answers = (
        answers.order_by("response_id")
        .values_list("response_id", "question_id", "value")
        .iterator(chunk_size=CHUNK_SIZE * 40)
    )
    pending = next(pending_answers, None)
    for row in responses.order_by("pk").values_list(*fields).iterator(chunk_size=CHUNK_SIZE):
        cells: list[Any] = [None] * width
        while pending is not None and pending[0] <= row[0]:
            if pending[0] == row[0]:
                cells[by_id[pending[1]]] = convert(pending[2])
            pending = next(pending_answers, None)
        yield row, cells


def response_rows(survey_round: Round) -> Iterator[list[Any]]:
    """The header, then one row per response: its fields, then one cell per question."""
    columns, by_id = response_columns(survey_round)
    yield [*RESPONSE_HEADER, *(c.code for c in columns)]
    rows = responses_with_cells(survey_round, RESPONSE_FIELDS, by_id, len(columns))
    for (pk, unit, submitted_at, channel, weight, stratum, psu, review_state), cells in rows:
        submitted = timezone.localtime(submitted_at)
        yield [
            *(pk, survey_round.code, unit, submitted, channel, weight, stratum, psu, review_state),
            *cells,
        ]


# --- Raw responses as CSV, built by PostgreSQL ------------------------------------------------

# What Python's float() reads (after an optional sign): a text cell that starts with "+", "-",
# a tab or a carriage return and reads as a number is not a formula (csv_text).
_NUMBER_RE = (
    r"^\s*[+-]?((\d(_?\d)*(\.(\d(_?\d)*)?)?|\.\d(_?\d)*)(e[+-]?\d(_?\d)*)?"
    r"|inf|infinity|nan)\s*$"
)
COPY_FLUSH_BYTES = 256 * 1024  # bytes gathered from COPY before they are sent on


def _sql_text(expression: str) -> str:
    """SQL of ``csv_text`` for a text expression: empty is NULL, a formula gets a quote."""
    x = f"({expression})"
    return (
        f"CASE WHEN left({x}, 1) IN ('=', '@') OR (left({x}, 1) IN ('+', '-', E'\\t', E'\\r') "
        f"AND {x} !~* '{_NUMBER_RE}') THEN '''' || {x} ELSE NULLIF({x}, '') END"
    )


def _sql_cell(kinds: set[str], ids: list[int]) -> str:
    """SQL of ``cell`` then ``csv_text`` for one question column (``o``: answers by id)."""
    keys = [f"o->'{pk}'" for pk in ids]
    value = f"coalesce({', '.join(keys)})" if len(keys) > 1 else keys[0]
    text = f"o->>'{ids[0]}'" if len(ids) == 1 else f"({value}) #>> '{{}}'"
    if kinds <= {Question.Type.SCALE, Question.Type.NUMBER}:
        return text  # whole numbers (clean_value): never a formula
    if kinds == {Question.Type.YESNO}:
        return f"CASE {text} WHEN 'true' THEN '1' WHEN 'false' THEN '0' END"
    if not kinds & {Question.Type.MULTIPLE, Question.Type.YESNO}:
        return _sql_text(text)  # choice codes, text, dates
    # Several choices, or a code whose type differs between versions: any JSON, as cell().
    return _sql_text(
        f"CASE jsonb_typeof({value}) "
        f"WHEN 'boolean' THEN CASE WHEN {text} = 'true' THEN '1' ELSE '0' END "
        f"WHEN 'array' THEN array_to_string(ARRAY(SELECT jsonb_array_elements_text({value})), ';') "
        f"ELSE {text} END"
    )


# submitted_at as datetime.isoformat() in the time zone {zone} (timezone.localtime): the
# local time, then the offset of that zone at that instant.
_LOCAL = "(r.submitted_at AT TIME ZONE {zone})"
_OFFSET = f"({_LOCAL} - (r.submitted_at AT TIME ZONE 'UTC'))"
_SUBMITTED_SQL = (
    f"to_char({_LOCAL}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN to_char({_LOCAL}, 'US') "
    f"= '000000' THEN '' ELSE to_char({_LOCAL}, '.US') END || CASE WHEN {_OFFSET} < '0' "
    f"THEN '-' || to_char(-{_OFFSET}, 'HH24:MI') ELSE '+' || to_char({_OFFSET}, 'HH24:MI') END"
)
# The weight as repr(float): "1.0", "2.5", "1e+16".
_WEIGHT_SQL = (
    "CASE WHEN r.weight = trunc(r.weight) AND abs(r.weight) < 1e16 "
    "THEN trunc(r.weight)::numeric::text || '.0' ELSE r.weight::text END"
)


def _literal(text: str) -> str:
    """A standard-conforming SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def response_copy_sql(survey_round: Round, time_zone: str) -> tuple[str, list[str]]:
    """``COPY (...) TO STDOUT`` of a round's raw responses, and the CSV header.

    One row per response: its fields, then one cell per question column. A response's
    answers to the exported questions (personal data is not even read) are gathered by one
    aggregate into a JSON object keyed by question id; each column reads its key(s). Every
    cell is written as ``csv_stream(response_rows(...))`` writes it.
    """
    columns, by_id = response_columns(survey_round)
    ids_by_column: list[list[int]] = [[] for _ in columns]
    for pk, column in sorted(by_id.items()):
        ids_by_column[column].append(pk)
    types = dict(Question.objects.filter(pk__in=list(by_id)).values_list("pk", "type"))
    fields = [
        "r.id",
        _literal(csv_text(survey_round.code)),
        _sql_text("u.code"),
        _SUBMITTED_SQL.replace("{zone}", _literal(time_zone)),
        _sql_text("r.channel"),
        _WEIGHT_SQL,
        _sql_text("r.stratum"),
        _sql_text("r.psu"),
        "r.review_state",
        *(_sql_cell({types[pk] for pk in ids}, ids) for ids in ids_by_column),
    ]
    units = Response._meta.get_field("unit").related_model._meta.db_table
    query = (
        f"COPY (SELECT {', '.join(fields)}"
        f' FROM "{Response._meta.db_table}" r JOIN "{units}" u ON u.id = r.unit_id'
        " LEFT JOIN LATERAL (SELECT jsonb_object_agg(a.question_id::text, a.value) AS o"
        f' FROM "{Answer._meta.db_table}" a WHERE a.response_id = r.id'
        f" AND a.round_id = {int(survey_round.pk)}"
        f" AND a.question_id = ANY('{{{','.join(map(str, sorted(by_id)))}}}'::bigint[])) s"
        f" ON true WHERE r.round_id = {int(survey_round.pk)} ORDER BY r.id)"
        " TO STDOUT (FORMAT csv)"
    )
    return query, [*RESPONSE_HEADER, *(c.code for c in columns)]


def response_csv(survey_round: Round) -> Iterator[bytes]:
    """The raw responses CSV: built by PostgreSQL (``COPY``), else by ``response_rows``."""
    alias = router.db_for_read(Response)
    if connections[alias].vendor != "postgresql":
        return csv_stream(response_rows(survey_round))
    return response_csv_copy(survey_round, alias)


def response_csv_copy(survey_round: Round, alias: str) -> Iterator[bytes]:
    """The bytes of ``csv_stream(response_rows(survey_round))``, built by PostgreSQL.

    One ``COPY ... TO STDOUT`` (``submitted_at`` in the current time zone, as
    ``timezone.localtime`` gives it). PostgreSQL sends each row
    as one message ending in "\\n"; it is passed on ending in "\\r\\n" as ``csv.writer``
    ends it (a newline inside a quoted text stays as it is). Rows go out in blocks of about
    ``COPY_FLUSH_BYTES``, so memory does not grow with the round.
    """
    query, header = response_copy_sql(survey_round, timezone.get_current_timezone_name())
    yield b"".join(csv_stream([header]))
    # In a transaction (or a savepoint), so that a download stopped halfway, whose COPY is
    # cancelled, leaves the connection as it was.
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        block: list[bytes] = []
        size = 0
        with raw.copy(query) as copy:
            for row in copy:
                block.append(bytes(row[:-1]))
                size += len(row)
                if size >= COPY_FLUSH_BYTES:
                    block.append(b"")
                    yield b"\r\n".join(block)
                    block, size = [], 0
        if block:
            block.append(b"")
            yield b"\r\n".join(block)


# An upper bound of one response's row in the sheet XML (SIPAS demo rows: ~67 cells, 2,820
# bytes), to decide before the first row whether the sheet needs zip64 sizes
# (results.export_files); long free-text answers could pass it.
XLSX_BYTES_PER_RESPONSE = 6144


def response_sheets(survey_round: Round) -> tuple[list[tuple[str, Iterator[list[Any]]]], bool]:
    """The sheets of the raw responses workbook (responses, codebook), and whether it is large.

    Large: the responses sheet may pass 2 GiB of XML, so it is written with zip64 sizes.
    """
    responses = Response.objects.filter(round=survey_round).count()
    sheets = [("responses", response_rows(survey_round)), ("codebook", codebook_rows(survey_round))]
    return sheets, responses * XLSX_BYTES_PER_RESPONSE > LARGE_ENTRY_BYTES


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
