"""Raw responses and published scores as SPSS (``.sav``), Stata (``.dta``) and Parquet.

The rows are those of the CSV export (``exports.response_rows``, ``exports.score_rows``: the
same responses, columns and order; personal-data questions never read), read by server-side
cursors and written as they come: SPSS and Stata row by row through ReadStat
(``readstat_files``), Parquet one row group per ``PARQUET_ROWS`` rows (``pyarrow``). Labels
are in the language asked for (``vi`` or ``en``).

SPSS and Stata (docs/exports.md, *Statistical formats*):

- each question's variable label is its label; scale points, choices and yes/no have value
  labels; a single choice whose codes are not all whole numbers is numbered 1, 2, … in the
  order of its choices; a multiple choice is its text (codes joined by ';', as in the CSV) and
  one 0/1 variable per choice (``<code>_<n>``);
- a missing answer says why: *not shown* (the display condition hid the question, or the
  response's questionnaire version has no such question) or *not answered* (shown, left
  empty): SPSS user-missing codes -8 and -9 (numbers that may go that low get codes below
  their minimum), Stata ``.a`` and ``.b``; text answers are empty either way. A question
  whose display condition reads a personal-data answer (never read) is system-missing.
- ``submitted_at`` is a datetime in the local time of the CSV, to the millisecond; a date
  question is a date; weight, unit, stratum and PSU are variables.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.db import connections, router, transaction
from django.db.models import Max
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from feedback.models import Answer, Response
from results import exports
from results.readstat_files import Missing, Variable, write_file
from scoring.models import SCORE_FIELDS, Score
from surveys.models import Choice, Question, Round

if TYPE_CHECKING:  # pyarrow is imported by the Parquet writers only (a worker's memory)
    import pyarrow as pa

LANGUAGES = ("vi", "en")
NOT_SHOWN = Missing("a")
NOT_ANSWERED = Missing("b")
SPSS_CODES = {NOT_SHOWN.tag: -8.0, NOT_ANSWERED.tag: -9.0}
PARQUET_ROWS = 10_000  # rows per Parquet row group
CODEBOOK_KEY = b"sipas.codebook"
NUMERIC = {Question.Type.SCALE, Question.Type.NUMBER, Question.Type.YESNO, Question.Type.SINGLE}
TEXT = {Question.Type.TEXT, Question.Type.LONGTEXT, Question.Type.MULTIPLE}


def missing_labels() -> dict[str, str]:
    return {
        NOT_SHOWN.tag: _("Not shown (display condition)"),
        NOT_ANSWERED.tag: _("Not answered"),
    }


def field_labels() -> dict[str, str]:
    """Variable labels of the response fields, in the active language."""
    return {
        "id": _("Response id"),
        "round": _("Survey round"),
        "unit": _("Unit (code)"),
        "submitted_at": _("Submitted at (local time)"),
        "channel": _("Channel"),
        "weight": _("Weight"),
        "stratum": _("Stratum"),
        "psu": _("Primary sampling unit (PSU)"),
        "review_state": _("Review state"),
    }


# --- The questions of a round's export --------------------------------------------------------


@dataclass
class Item:
    """One question column of the export: its type, labels, choices and display conditions."""

    code: str
    index: int
    type: str
    label_vi: str = ""
    label_en: str = ""
    min_value: float | None = None
    choices: list[tuple[str, str, str]] = field(default_factory=list)  # code, vi, en
    numbers: dict[str, float] = field(default_factory=dict)  # choice code → number written

    def label(self, lang: str) -> str:
        return (self.label_en if lang == "en" else "") or self.label_vi

    def choice_label(self, choice: tuple[str, str, str], lang: str) -> str:
        return (choice[2] if lang == "en" else "") or choice[1]


@dataclass(frozen=True)
class Condition:
    """A display condition of one version's question: the column it reads, and its values.

    ``column`` None: the question it reads is personal data (not read), so unknown.
    """

    column: int | None
    values: tuple[Any, ...]


ABSENT = Condition(-1, ())  # the response's version has no question of that code


def export_items(survey_round: Round) -> tuple[list[Item], dict[int, dict[int, Condition]]]:
    """The question columns (as ``exports.response_columns``) and each version's conditions."""
    columns, by_id = exports.response_columns(survey_round)
    index = {c.code: n for n, c in enumerate(columns)}
    items = [Item(code=c.code, index=n, type=c.type) for n, c in enumerate(columns)]
    questions = list(
        Question.objects.filter(pk__in=list(by_id))
        .order_by("section__position", "position", "id")
        .values(
            "pk",
            "code",
            "version_id",
            "label_vi",
            "label_en",
            "min_value",
            "show_if_question__code",
            "show_if_question__personal_data",
            "show_if_values",
        )
    )
    main = survey_round.version_id
    questions.sort(key=lambda q: q["version_id"] != main)  # the round's version names first
    labelled: set[str] = set()
    conditions: dict[int, dict[int, Condition]] = {}
    for q in questions:
        item = items[index[q["code"]]]
        if q["code"] not in labelled:
            labelled.add(q["code"])
            item.label_vi, item.label_en = q["label_vi"], q["label_en"]
            item.min_value = None if q["min_value"] is None else float(q["min_value"])
        controller = q["show_if_question__code"]
        if controller is not None:
            column = None if q["show_if_question__personal_data"] else index.get(controller)
            values = tuple(q["show_if_values"] or ())
            conditions.setdefault(q["version_id"], {})[item.index] = Condition(column, values)
    versions = {q["version_id"] for q in questions}
    for version in versions:
        present = {index[q["code"]] for q in questions if q["version_id"] == version}
        for item in items:
            if item.index not in present:
                conditions.setdefault(version, {})[item.index] = ABSENT
    question_code = {q["pk"]: q["code"] for q in questions}
    choices = Choice.objects.filter(question_id__in=list(by_id)).order_by(
        "question_id", "position", "id"
    )
    main_ids = {q["pk"] for q in questions if q["version_id"] == main}
    for choice in sorted(choices, key=lambda c: c.question_id not in main_ids):
        item = items[index[question_code[choice.question_id]]]
        if all(code != choice.code for code, _vi, _en in item.choices):
            item.choices.append((choice.code, choice.label_vi, choice.label_en))
    for item in items:
        codes = [code for code, _vi, _en in item.choices]
        whole = all(code.isascii() and code.lstrip("-").isdigit() for code in codes)
        item.numbers = {c: float(c) if whole else float(n) for n, c in enumerate(codes, 1)}
    return items, conditions


def _matches(value: Any, allowed: Sequence[Any]) -> bool:
    """``feedback.validation.is_shown`` on a stored answer: is it one of the values?"""
    if isinstance(value, list):
        return any(v in allowed for v in value)
    if isinstance(value, bool):
        return any(v is value for v in allowed)
    return value in allowed


def missing_reason(
    column: int, cells: list[Any], conditions: dict[int, Condition]
) -> Missing | None:
    """Why the answer in ``column`` is missing: not shown, not answered, or unknown (None)."""
    condition = conditions.get(column)
    if condition is None:
        return NOT_ANSWERED
    if condition is ABSENT:
        return NOT_SHOWN
    if condition.column is None:
        return None
    controlling = cells[condition.column]
    if controlling is None or not _matches(controlling, condition.values):
        return NOT_SHOWN
    return NOT_ANSWERED


def raw_response_rows(survey_round: Round, limit: int) -> Iterator[tuple[list[Any], list[Any]]]:
    """Each response up to id ``limit``: its fields (with its version) and stored answers."""
    columns, by_id = exports.response_columns(survey_round)
    rows = exports.responses_with_cells(
        survey_round,
        (*exports.RESPONSE_FIELDS, "version_id"),
        by_id,
        len(columns),
        limit=limit,
        convert=lambda value: value,
    )
    for fields, cells in rows:
        yield list(fields), cells


@contextmanager
def snapshot(alias: str) -> Iterator[None]:
    """One view of the data for the count and the rows (PostgreSQL: repeatable read).

    Inside a transaction already open (tests), that transaction's reads are used.
    """
    connection = connections[alias]
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        with transaction.atomic(using=alias):
            yield
        return
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def _byte_lengths(survey_round: Round, items: list[Item], alias: str) -> dict[str, int]:
    """The longest value, in UTF-8 bytes, of each text field and text question column."""
    vendor = connections[alias].vendor
    if vendor == "postgresql":
        size, answer_text = "octet_length({})", "a.value #>> '{}'"
    else:
        size, answer_text = "length(CAST({} AS BLOB))", "json_extract(a.value, '$')"
    fields = ("r.channel", "r.stratum", "r.psu", "r.review_state", "u.code")
    responses = Response._meta.db_table
    units = Response._meta.get_field("unit").related_model._meta.db_table
    text_items = {i.code: i for i in items if i.type in Question.TEXT_TYPES}
    text_ids = list(
        Question.objects.filter(
            code__in=list(text_items), version_id__in=_versions(survey_round), personal_data=False
        ).values_list("pk", "code")
    )
    lengths: dict[str, int] = {}
    with connections[alias].cursor() as cursor:
        sizes = ", ".join(f"max({size.format(f)})" for f in fields)
        cursor.execute(
            f'SELECT {sizes} FROM "{responses}" r JOIN "{units}" u ON u.id = r.unit_id '
            "WHERE r.round_id = %s",
            [survey_round.pk],
        )
        for name, value in zip(
            ("channel", "stratum", "psu", "review_state", "unit"), cursor.fetchone(), strict=True
        ):
            lengths[name] = value or 1
        if text_ids:
            code_of = dict(text_ids)
            marks = ", ".join(["%s"] * len(code_of))
            cursor.execute(
                f"SELECT a.question_id, max({size.format(answer_text)}) "
                f'FROM "{Answer._meta.db_table}" a WHERE a.round_id = %s '
                f"AND a.question_id IN ({marks}) GROUP BY a.question_id",
                [survey_round.pk, *code_of],
            )
            for pk, value in cursor.fetchall():
                code = code_of[pk]
                lengths[code] = max(lengths.get(code, 1), value or 1)
    return lengths


def _versions(survey_round: Round) -> set[int]:
    return {survey_round.version_id} | set(
        Response.objects.filter(round=survey_round)
        .order_by()
        .values_list("version_id", flat=True)
        .distinct()
    )


# --- SPSS and Stata -----------------------------------------------------------------------------


def variable_name(code: str, taken: set[str], limit: int = 32) -> str:
    """A Stata/SPSS variable name for a code: letters, digits and '_', unique, ``limit`` long."""
    name = "".join(ch if ch.isascii() and (ch.isalnum() or ch == "_") else "_" for ch in code)
    if not name or not (name[0].isalpha() or name[0] == "_"):
        name = "q" + name
    name = name[:limit]
    base, n = name, 1
    while name.lower() in taken:
        n += 1
        name = f"{base[: limit - len(str(n)) - 1]}_{n}"
    taken.add(name.lower())
    return name


def spss_codes(item: Item) -> dict[str, float]:
    """The user-missing codes of a question: -8 and -9, or below a minimum that allows them."""
    if item.type != Question.Type.NUMBER or (item.min_value is not None and item.min_value > -8):
        return dict(SPSS_CODES)
    if item.min_value is None:  # answers are within ±2**53 (feedback.validation.MAX_NUMBER)
        return {NOT_SHOWN.tag: -9.1e15, NOT_ANSWERED.tag: -9.2e15}
    low = math.floor(item.min_value)
    return {NOT_SHOWN.tag: float(low - 1), NOT_ANSWERED.tag: float(low - 2)}


@dataclass
class Table:
    """What an SPSS or Stata file holds: variables, rows, and how many."""

    variables: list[Variable]
    rows: Iterator[list[Any]]
    row_count: int
    file_label: str
    notes: list[str]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def response_table(survey_round: Round, lang: str, limit: int, count: int, alias: str) -> Table:
    """The variables and rows of a round's responses in SPSS/Stata form (labels in ``lang``)."""
    items, conditions = export_items(survey_round)
    lengths = _byte_lengths(survey_round, items, alias)
    yes_no = {1.0: _("Yes"), 0.0: _("No")}
    taken: set[str] = set()
    labels = field_labels()
    variables = [
        Variable(variable_name("id", taken), "number", labels["id"], format="F12.0"),
        Variable(
            variable_name("round", taken),
            "text",
            labels["round"],
            width=len(survey_round.code.encode()),
        ),
        Variable(variable_name("unit", taken), "text", labels["unit"], width=lengths["unit"]),
        Variable(variable_name("submitted_at", taken), "datetime", labels["submitted_at"]),
        Variable(
            variable_name("channel", taken), "text", labels["channel"], width=lengths["channel"]
        ),
        Variable(variable_name("weight", taken), "number", labels["weight"], measure="scale"),
        Variable(
            variable_name("stratum", taken), "text", labels["stratum"], width=lengths["stratum"]
        ),
        Variable(variable_name("psu", taken), "text", labels["psu"], width=lengths["psu"]),
        Variable(
            variable_name("review_state", taken),
            "text",
            labels["review_state"],
            width=lengths["review_state"],
        ),
    ]
    plan: list[tuple[Item, str, int]] = []  # item, what the variable holds, choice number
    for item in items:
        name = variable_name(item.code, taken)
        label = item.label(lang)
        kind = item.type
        if kind in NUMERIC:
            values: dict[float, str] = {}
            if kind == Question.Type.YESNO:
                values = dict(yes_no)
            elif item.choices:
                values = {item.numbers[c[0]]: item.choice_label(c, lang) for c in item.choices}
            measure = (
                "scale"
                if kind == Question.Type.NUMBER
                else ("ordinal" if kind == Question.Type.SCALE else "nominal")
            )
            variables.append(
                Variable(
                    name,
                    "number",
                    label,
                    value_labels=values,
                    missing_codes=spss_codes(item),
                    measure=measure,
                )
            )
            plan.append((item, "number", 0))
        elif kind == Question.Type.DATE:
            # SPSS reads a date's number as a date: no user-missing codes (system-missing)
            variables.append(Variable(name, "date", label))
            plan.append((item, "date", 0))
        else:
            width = lengths.get(item.code, 1)
            if kind == Question.Type.MULTIPLE:
                width = max(1, sum(len(c[0].encode()) + 1 for c in item.choices))
            variables.append(Variable(name, "text", label, width=width))
            plan.append((item, "text", 0))
            if kind == Question.Type.MULTIPLE:
                for n, choice in enumerate(item.choices, 1):
                    variables.append(
                        Variable(
                            variable_name(f"{item.code}_{n}", taken),
                            "number",
                            f"{item.code}: {item.choice_label(choice, lang)}",
                            value_labels=dict(yes_no),
                            missing_codes=dict(SPSS_CODES),
                            measure="nominal",
                        )
                    )
                    plan.append((item, "choice", n))

    def rows() -> Iterator[list[Any]]:
        code = survey_round.code
        empty: dict[int, Condition] = {}
        for fields, cells in raw_response_rows(survey_round, limit):
            pk, unit, submitted, channel, weight, stratum, psu, review_state, version = fields
            local = timezone.localtime(submitted).replace(tzinfo=None)
            row: list[Any] = [pk, code, unit, local, channel, weight, stratum, psu, review_state]
            version_conditions = conditions.get(version, empty)
            for item, holds, n in plan:
                value = cells[item.index]
                if value is None or value == [] or value == "":
                    if holds == "text":
                        row.append(None)
                    else:
                        row.append(missing_reason(item.index, cells, version_conditions))
                elif holds == "number":
                    number = item.numbers.get(value) if isinstance(value, str) else None
                    row.append(number if number is not None else _number(value))
                elif holds == "date":
                    try:
                        row.append(dt.date.fromisoformat(value))
                    except (TypeError, ValueError):
                        row.append(None)
                elif holds == "choice":
                    chosen = value if isinstance(value, list) else [value]
                    row.append(1.0 if item.choices[n - 1][0] in chosen else 0.0)
                else:
                    row.append(exports.cell(value))
            yield row

    notes = [
        _("Raw responses of the round %(round)s; personal data is never exported.")
        % {"round": survey_round.code},
        _("Missing answers: %(a)s, %(b)s (SPSS user-missing codes, Stata .a and .b).")
        % {"a": missing_labels()[NOT_SHOWN.tag], "b": missing_labels()[NOT_ANSWERED.tag]},
        _("Stata: a text longer than 2,045 bytes is cut; the CSV and SPSS files hold it whole."),
    ]
    return Table(variables, rows(), count, survey_round.code, notes)


def response_file(survey_round: Round, kind: str, lang: str, path: Path) -> None:
    """Write a round's raw responses as ``kind`` (sav, dta, parquet) at ``path``."""
    alias = router.db_for_read(Response)
    with translation.override(lang), snapshot(alias):
        totals = Response.objects.filter(round=survey_round).aggregate(last=Max("pk"))
        limit = totals["last"] or 0
        count = Response.objects.filter(round=survey_round, pk__lte=limit).count()
        if kind == "parquet":
            write_response_parquet(survey_round, lang, limit, path)
            return
        table = response_table(survey_round, lang, limit, count, alias)
        write_file(
            path,
            kind,
            table.variables,
            table.rows,
            table.row_count,
            file_label=table.file_label,
            notes=table.notes,
            missing_labels=missing_labels(),
        )


# --- Scores -----------------------------------------------------------------------------------

SCORE_FLAGS = {"suppressed", "change_significant"}
SCORE_NUMBERS = {"run", *SCORE_FIELDS} - SCORE_FLAGS


def score_labels() -> dict[str, str]:
    """Variable labels of the scores export, in the active language."""
    labels = {
        "round": _("Survey round"),
        "run": _("Scoring run"),
        "unit": _("Unit (code)"),
        "unit_name": _("Unit"),
        "indicator": _("Indicator (code)"),
        "indicator_name_vi": _("Indicator (Vietnamese)"),
        "indicator_name_en": _("Indicator (English)"),
    }
    for name in exports.SCORE_HEADER:  # the others: the model's (scope, the score's fields)
        if name not in labels:
            field_name = exports.SCORE_PLACE.get(name, name)
            labels[name] = str(Score._meta.get_field(field_name).verbose_name)
    return labels


def score_file(round_code: str, run_id: int, kind: str, lang: str, path: Path) -> None:
    """Write a published run's scores as ``kind`` (sav, dta, parquet) at ``path``.

    The scores of a run are a few thousand rows: they are read twice (widths and count,
    then the file), never held.
    """
    with translation.override(lang):
        labels = score_labels()
        header = exports.SCORE_HEADER
        if kind == "parquet":
            write_score_parquet(round_code, run_id, labels, path)
            return
        widths = dict.fromkeys(header, 1)
        count = 0
        for row in _score_values(round_code, run_id):
            count += 1
            for name, value in zip(header, row, strict=True):
                if isinstance(value, str):
                    widths[name] = max(widths[name], len(value.encode()))
        variables = []
        for name in header:
            if name in SCORE_FLAGS:
                values = {1.0: _("Yes"), 0.0: _("No")}
                variables.append(Variable(name, "number", labels[name], value_labels=values))
            elif name in SCORE_NUMBERS:
                variables.append(Variable(name, "number", labels[name]))
            else:
                variables.append(Variable(name, "text", labels[name], width=widths[name]))
        write_file(
            path,
            kind,
            variables,
            _score_values(round_code, run_id),
            count,
            file_label=f"{round_code} run {run_id}",
            notes=[_("Published scores; suppressed values are missing.")],
        )


def _score_values(round_code: str, run_id: int) -> Iterator[list[Any]]:
    rows = exports.score_rows(round_code=round_code, run_id=run_id)
    next(rows)  # the header
    for row in rows:
        yield [float(v) if isinstance(v, bool) else v for v in row]


# --- Parquet ----------------------------------------------------------------------------------


def _parquet_type(item: Item) -> pa.DataType:
    import pyarrow as pa

    if item.type in (Question.Type.SCALE, Question.Type.NUMBER):
        return pa.int64()
    if item.type == Question.Type.YESNO:
        return pa.bool_()
    if item.type == Question.Type.DATE:
        return pa.date32()
    return pa.string()


def _field(name: str, kind: pa.DataType, meta: dict[str, Any]) -> pa.Field:
    import pyarrow as pa

    return pa.field(
        name,
        kind,
        metadata={
            k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
            for k, v in meta.items()
        },
    )


def codebook(survey_round: Round, items: list[Item], lang: str) -> dict[str, Any]:
    """The codebook of the responses export as one JSON document (Parquet metadata)."""
    return {
        "round": survey_round.code,
        "language": lang,
        "fields": field_labels(),
        "questions": [
            {
                "code": item.code,
                "type": item.type,
                "label": item.label(lang),
                "label_vi": item.label_vi,
                "label_en": item.label_en,
                "choices": [
                    {
                        "code": c,
                        "label": item.choice_label((c, vi, en), lang),
                        "label_vi": vi,
                        "label_en": en,
                    }
                    for c, vi, en in item.choices
                ],
            }
            for item in items
        ],
        "missing": _("Missing answers are null; the SPSS and Stata files say why."),
    }


def write_response_parquet(survey_round: Round, lang: str, limit: int, path: Path) -> None:
    """Raw responses as Parquet: one row group per ``PARQUET_ROWS`` responses, as read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    items, _conditions = export_items(survey_round)
    zone = timezone.get_current_timezone_name()
    labels = field_labels()
    fixed = [
        ("id", pa.int64()),
        ("round", pa.string()),
        ("unit", pa.string()),
        ("submitted_at", pa.timestamp("us", tz=zone)),
        ("channel", pa.string()),
        ("weight", pa.float64()),
        ("stratum", pa.string()),
        ("psu", pa.string()),
        ("review_state", pa.string()),
    ]
    fields = [_field(name, kind, {"label": labels[name]}) for name, kind in fixed]
    for item in items:
        meta = {
            "label": item.label(lang),
            "label_vi": item.label_vi,
            "label_en": item.label_en,
            "type": item.type,
            "choices": [
                {"code": c, "label": item.choice_label((c, vi, en), lang)}
                for c, vi, en in item.choices
            ],
        }
        fields.append(_field(item.code, _parquet_type(item), meta))
    document = json.dumps(codebook(survey_round, items, lang), ensure_ascii=False)
    schema = pa.schema(fields, metadata={CODEBOOK_KEY: document.encode()})

    def value(item: Item, stored: Any) -> Any:
        if stored is None or stored == [] or stored == "":
            return None
        if item.type == Question.Type.DATE:
            try:
                return dt.date.fromisoformat(stored)
            except (TypeError, ValueError):
                return None
        kind = _parquet_type(item)
        if kind == pa.int64():
            return stored if isinstance(stored, int) and not isinstance(stored, bool) else None
        if kind == pa.bool_():
            return stored if isinstance(stored, bool) else None
        converted = exports.cell(stored)
        return converted if isinstance(converted, str) else str(converted)

    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        columns: list[list[Any]] = [[] for _ in fields]
        for record, cells in raw_response_rows(survey_round, limit):
            pk, unit, submitted, channel, weight, stratum, psu, review_state, _version = record
            local = timezone.localtime(submitted)
            fixed_values = (pk, survey_round.code, unit, local, channel, weight, stratum, psu)
            for n, v in enumerate((*fixed_values, review_state)):
                columns[n].append(v)
            for item in items:
                columns[len(fixed) + item.index].append(value(item, cells[item.index]))
            if len(columns[0]) >= PARQUET_ROWS:
                writer.write_batch(pa.record_batch(columns, schema=schema))
                columns = [[] for _ in fields]
        if columns[0]:
            writer.write_batch(pa.record_batch(columns, schema=schema))


def write_score_parquet(round_code: str, run_id: int, labels: dict[str, str], path: Path) -> None:
    """Published scores as Parquet, in row groups of ``PARQUET_ROWS``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {name: pa.float64() for name in SCORE_NUMBERS}
    types |= {
        n: pa.int64() for n in ("run", "n", "valid", "rank", "rank_of", "rank_low", "rank_high")
    }
    types |= {name: pa.bool_() for name in SCORE_FLAGS}
    header = exports.SCORE_HEADER
    schema = pa.schema(
        [_field(name, types.get(name, pa.string()), {"label": labels[name]}) for name in header],
        metadata={
            CODEBOOK_KEY: json.dumps(
                {"round": round_code, "run": run_id, "fields": labels}, ensure_ascii=False
            ).encode()
        },
    )
    rows = exports.score_rows(round_code=round_code, run_id=run_id)
    next(rows)
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        columns: list[list[Any]] = [[] for _ in header]
        for row in rows:
            for n, v in enumerate(row):
                columns[n].append(v)
            if len(columns[0]) >= PARQUET_ROWS:
                writer.write_batch(pa.record_batch(columns, schema=schema))
                columns = [[] for _ in header]
        writer.write_batch(pa.record_batch(columns, schema=schema))
