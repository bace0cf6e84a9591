"""Compact response records: one narrow row per response holding what scoring reads.

A full recompute reads one ``ResponseRecord`` per response instead of its ~59 answers
(``scoring.sql``). A record copies the response's design (round, version, unit, agency,
stratum, PSU, design weight) and packs its scored answers in bit masks: the version's
scored questions (tagged with a ``share`` indicator, not excluded from the indices) in
question id order, 63 per word, word w in ``valid_w`` (the question has an answer) and
``satisfied_w`` (the answer is in the question's satisfied values, read by
``satisfied_rule``, the engine's own rule). Up to ``WORDS`` words (252 questions); a version
with more scored questions keeps records of its first 252 and is scored from the answers
(``covers``). Words beyond the version's last are NULL.

The answers stay the source of truth. ``refresh(response_ids)`` recomputes the records of
the given responses from their answers in a few set-based statements whatever their number
(the versions' layouts, DELETE, INSERT … SELECT); every write of a response or of its
answers calls it in the same transaction:

- ``feedback.services.store_response`` (API, web form, paper rows redone one by one), which
  instead completes the record the triggers inserted with ``record_update``: the masks
  computed from the answers it has just stored (``masks``, the same rule), in the same
  message, reading no answer back;
- ``feedback.paper.services.store_forms`` (paper forms stored with COPY);
- ``demo.responses`` (generated demo responses, per chunk; their deletion);
- the migration that created the table, and ``manage.py rebuild_response_records``.

A published version is frozen (``surveys.models``), so its layout and satisfied sets never
change; a response's version never changes either. ``rebuild(round_id=…)`` recomputes a
round's (or all) records and ``mismatches`` lists the responses whose stored record differs
from the recomputation (``rebuild_response_records --check``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.db import connection

from feedback.models import Answer, Response, ResponseRecord
from surveys.models import Indicator, Question, QuestionnaireVersion

BITS_PER_WORD = 63  # bits per word: a signed 64-bit integer in both databases
WORDS = 4  # mask words per record (valid_0…3, satisfied_0…3)
MAX_QUESTIONS = WORDS * BITS_PER_WORD

DESIGN_FIELDS = (
    "round_id",
    "version_id",
    "unit_id",
    "agency_id",
    "stratum",
    "psu",
    "weight",
)
MASK_FIELDS = tuple(f"{kind}_{w}" for w in range(WORDS) for kind in ("valid", "satisfied"))


class UnsupportedQuestion(ValueError):
    """A question feeds an item in a way the engine cannot score (e.g. multiple choice)."""


def satisfied_rule(code: str, kind: str, satisfied: object) -> tuple[str, tuple]:
    """The answer column and values that count as satisfied for one question."""
    values = satisfied if isinstance(satisfied, list) else []
    if kind in (Question.Type.SCALE, Question.Type.NUMBER, Question.Type.YESNO):
        try:
            # bool before int: yes/no answers are stored as 1.0/0.0
            numbers = {float(v) for v in values if not isinstance(v, dict | list)}
        except ValueError:
            raise UnsupportedQuestion(
                f"{code}: satisfied values {values!r} are not numbers"
            ) from None
        return "number", tuple(sorted(numbers))
    if kind == Question.Type.SINGLE:
        return "code", tuple(sorted({str(v) for v in values}))
    raise UnsupportedQuestion(f"{code}: {kind} questions cannot feed an item")


@dataclass(frozen=True)
class Layout:
    """A version's scored questions in bit order, and how each is satisfied (None: never,
    e.g. a question the engine refuses to score)."""

    version_id: int
    questions: tuple[int, ...]
    rules: tuple[tuple[str, tuple] | None, ...]

    @property
    def words(self) -> int:
        return max(1, -(-min(len(self.questions), MAX_QUESTIONS) // BITS_PER_WORD))

    @cached_property
    def bits(self) -> dict[int, tuple[int, int, frozenset[Any] | None]]:
        """Question id → (word, bit, the satisfied values of its answer column, or None
        when it is never satisfied); only the questions the records hold."""
        found: dict[int, tuple[int, int, frozenset[Any] | None]] = {}
        for position, (q, rule) in enumerate(zip(self.questions, self.rules, strict=True)):
            if position >= MAX_QUESTIONS:
                break
            word, bit = divmod(position, BITS_PER_WORD)
            found[q] = (word, 1 << bit, frozenset(rule[1]) if rule and rule[1] else None)
        return found

    @cached_property
    def columns(self) -> dict[int, str]:
        """Question id → the answer column its satisfied values are read from."""
        return {q: rule[0] for q, rule in zip(self.questions, self.rules, strict=True) if rule}


def layouts(version_ids: Iterable[int]) -> dict[int, Layout]:
    """The layout of each version (one query for all)."""
    ids = sorted(set(version_ids))
    found: dict[int, list[tuple[int, tuple[str, tuple] | None]]] = {v: [] for v in ids}
    rows = (
        Question.objects.filter(
            version_id__in=ids,
            indicator__aggregation=Indicator.Aggregation.SHARE,
            excluded_from_indices=False,
        )
        .order_by("id")
        .values_list("version_id", "id", "code", "type", "satisfied_values")
    )
    for version_id, pk, code, kind, satisfied in rows:
        try:
            rule: tuple[str, tuple] | None = satisfied_rule(code, kind, satisfied)
        except UnsupportedQuestion:
            rule = None  # the engine refuses the version; its records say "never satisfied"
        found[version_id].append((pk, rule))
    return {
        v: Layout(v, tuple(q for q, _r in qs), tuple(r for _q, r in qs)) for v, qs in found.items()
    }


# A published version never changes, so neither does its layout: read once per process. The
# key holds the publication time too (a reused id, in tests or a restored database, is a new
# key); a draft's layout is read each time.
_LAYOUT_CACHE: dict[tuple[int, Any], Layout] = {}
_LAYOUT_CACHE_SIZE = 32


def version_layout(version: QuestionnaireVersion) -> Layout:
    """The layout of ``version`` (cached per process once it is published)."""
    key = (version.pk, version.published_at)
    if (layout := _LAYOUT_CACHE.get(key)) is not None:
        return layout
    layout = layouts([version.pk])[version.pk]
    if version.status != QuestionnaireVersion.Status.DRAFT and version.published_at is not None:
        if len(_LAYOUT_CACHE) >= _LAYOUT_CACHE_SIZE:
            _LAYOUT_CACHE.clear()
        _LAYOUT_CACHE[key] = layout
    return layout


def masks(layout: Layout, answers: Iterable[tuple[int, float | None, str]]) -> list[int | None]:
    """The mask columns (``MASK_FIELDS`` order) of a response whose answers are these
    (question id, number, code): what ``_records_select`` computes from the stored rows (one
    answer per question), without reading them back."""
    valid = [0] * WORDS
    satisfied = [0] * WORDS
    bits, columns = layout.bits, layout.columns
    for question, number, code in answers:
        if (found := bits.get(question)) is None:
            continue
        word, bit, values = found
        valid[word] |= bit
        if values is not None:
            answered = number if columns[question] == "number" else code
            if answered is not None and answered in values:
                satisfied[word] |= bit
    used = layout.words
    return [mask if w < used else None for w in range(WORDS) for mask in (valid[w], satisfied[w])]


def record_update(
    layout: Layout, answers: Iterable[tuple[int, float | None, str]], *, where: str
) -> tuple[str, list[Any]]:
    """UPDATE writing the masks of the one response's record matching ``where`` (its
    ``%s`` parameters come after the returned ones) from its answers, and marking it fresh.

    For a response just stored with these answers: the triggers have inserted its record
    with its design, stale; this completes it as ``refresh`` would, in one statement that
    reads no answer.
    """
    sets = ", ".join(f"{name} = %s" for name in MASK_FIELDS)
    return (
        f"UPDATE {ResponseRecord._meta.db_table} SET {sets}, stale = %s WHERE {where}",
        [*masks(layout, answers), False],
    )


def covers(version_id: int, question_ids: Sequence[int]) -> bool:
    """True when the records of ``version_id`` hold exactly ``question_ids`` in bit order."""
    layout = layouts([version_id])[version_id]
    return len(layout.questions) <= MAX_QUESTIONS and list(layout.questions) == sorted(question_ids)


def _json_table(columns: Sequence[str]) -> str:
    """A table of integer columns read from one JSON parameter (a list of lists)."""
    if connection.vendor == "postgresql":
        cols = ", ".join(f"(e->>{i})::bigint AS {name}" for i, name in enumerate(columns))
        return f"SELECT {cols} FROM json_array_elements(%s::json) AS e"
    cols = ", ".join(
        f"CAST(json_extract(value, '$[{i}]') AS INTEGER) AS {name}"
        for i, name in enumerate(columns)
    )
    return f"SELECT {cols} FROM json_each(%s)"


def _records_select(
    where: str, where_params: list[Any], found: dict[int, Layout], *, by_round: bool = True
) -> tuple[str, list[Any]]:
    """SELECT of the records the answers give for the responses matching ``where`` (on
    ``r``, the response table), columns in ``DESIGN_FIELDS + MASK_FIELDS`` order after
    ``response_id``. ``by_round``: the answers are read by (response, round), so that
    PostgreSQL reads only the rounds' partitions (False before migration 0008 adds the
    answers' round)."""
    bits: list[list[int]] = []
    whens: list[str] = []
    params: list[Any] = []
    for layout in found.values():
        grouped: dict[tuple[str, tuple], list[int]] = {}
        for position, (q, rule) in enumerate(zip(layout.questions, layout.rules, strict=True)):
            if position >= MAX_QUESTIONS:
                break
            word, bit = divmod(position, BITS_PER_WORD)
            bits.append([q, word, 1 << bit])
            if rule is not None and rule[1]:
                grouped.setdefault(rule, []).append(q)
        for (column, values), ids in grouped.items():
            whens.append(
                f"WHEN a.question_id IN ({', '.join(['%s'] * len(ids))}) "
                f"AND a.{column} IN ({', '.join(['%s'] * len(values))}) THEN 1"
            )
            params += [*ids, *values]
    satisfied = f"CASE {' '.join(whens)} ELSE 0 END" if whens else "0"
    words_of = {v: layout.words for v, layout in found.items()}
    masks = []
    for w in range(WORDS):
        valid = f"COALESCE(CAST(SUM(CASE WHEN x.word = {w} THEN x.bit END) AS BIGINT), 0)"
        sat = f"COALESCE(CAST(SUM(CASE WHEN x.word = {w} AND x.s = 1 THEN x.bit END) AS BIGINT), 0)"
        if w == 0:
            masks += [valid, sat]
            continue
        needing = [v for v, n in words_of.items() if n > w]
        if not needing:
            masks += ["CAST(NULL AS BIGINT)", "CAST(NULL AS BIGINT)"]
            continue
        inside = ", ".join(str(int(v)) for v in needing)
        masks += [
            f"CASE WHEN r.version_id IN ({inside}) THEN {valid} END",
            f"CASE WHEN r.version_id IN ({inside}) THEN {sat} END",
        ]
    answers = (
        f"SELECT a.response_id, q.word, q.bit, {satisfied} AS s "
        f"FROM {Answer._meta.db_table} a JOIN q ON q.question = a.question_id "
        f"WHERE {'(a.response_id, a.round_id)' if by_round else 'a.response_id'} IN "
        f"(SELECT r.id{', r.round_id' if by_round else ''} "
        f"FROM {Response._meta.db_table} r WHERE {where})"
    )
    sql = (
        f"WITH q AS MATERIALIZED ({_json_table(['question', 'word', 'bit'])}) "
        f"SELECT r.id AS response_id, {', '.join(f'r.{f}' for f in DESIGN_FIELDS)}, "
        f"{', '.join(f'{m} AS {name}' for m, name in zip(masks, MASK_FIELDS, strict=True))}, "
        f"FALSE AS stale "
        f"FROM {Response._meta.db_table} r LEFT JOIN ({answers}) x ON x.response_id = r.id "
        f"WHERE {where} GROUP BY r.id, {', '.join(f'r.{f}' for f in DESIGN_FIELDS)}"
    )
    return sql, [json.dumps(bits), *params, *where_params, *where_params]


def _versions(where: str, params: list[Any]) -> dict[int, Layout]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT r.version_id FROM {Response._meta.db_table} r WHERE {where}", params
        )
        return layouts(v for (v,) in cursor.fetchall())


def _replace(
    where: str,
    params: list[Any],
    delete_where: str,
    delete_params: list[Any],
    *,
    by_round: bool = True,
) -> int:
    found = _versions(where, params)
    table = ResponseRecord._meta.db_table
    select, select_params = _records_select(where, params, found, by_round=by_round)
    columns = ", ".join(["response_id", *DESIGN_FIELDS, *MASK_FIELDS, "stale"])
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {delete_where}", delete_params)
        if not found:
            return 0
        cursor.execute(f"INSERT INTO {table} ({columns}) {select}", select_params)
        return cursor.rowcount


def _id_list(response_ids: Iterable[int]) -> tuple[str, list[Any]]:
    ids = sorted({int(pk) for pk in response_ids})
    if connection.vendor == "postgresql":
        return "= ANY(%s)", [ids]
    return "IN (SELECT value FROM json_each(%s))", [json.dumps(ids)]


def refresh(response_ids: Iterable[int]) -> int:
    """Recompute the records of these responses from their answers (a response that no
    longer exists loses its record). A few statements whatever the number; call it in the
    transaction that wrote the responses or their answers. Returns the records written."""
    test, params = _id_list(response_ids)
    if not params[0] or params[0] == "[]":
        return 0
    return _replace(f"r.id {test}", params, f"response_id {test}", params)


def rebuild(*, round_id: int | None = None, by_round: bool = True) -> int:
    """Recompute every record of a round (or of all rounds) from the answers
    (``by_round=False``: answers without their round, migration 0007)."""
    if round_id is None:
        return _replace("1 = 1", [], "1 = 1", [], by_round=by_round)
    return _replace("r.round_id = %s", [round_id], "round_id = %s", [round_id])


def mismatches(*, round_id: int | None = None, limit: int = 20) -> tuple[int, list[int]]:
    """(count, first ids) of responses whose stored record differs from the answers' (a
    missing, surplus or different record), in one set-based comparison."""
    where, params = ("r.round_id = %s", [round_id]) if round_id is not None else ("1 = 1", [])
    found = _versions(where, params)
    table = ResponseRecord._meta.db_table
    columns = ", ".join(["response_id", *DESIGN_FIELDS, *MASK_FIELDS, "stale"])
    stored = f"SELECT {columns} FROM {table}" + (" WHERE round_id = %s" if round_id else "")
    stored_params = [round_id] if round_id is not None else []
    if found:
        expected, expected_params = _records_select(where, params, found)
    else:
        expected = f"SELECT {columns} FROM {table} WHERE 1 = 0"
        expected_params = []
    sql = (
        f"SELECT DISTINCT d.response_id FROM ("
        f"SELECT * FROM (SELECT * FROM ({expected}) e1 EXCEPT SELECT * FROM ({stored}) s1) m1 "
        f"UNION ALL "
        f"SELECT * FROM (SELECT * FROM ({stored}) s2 EXCEPT SELECT * FROM ({expected}) e2) m2"
        f") d ORDER BY 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*expected_params, *stored_params, *stored_params, *expected_params])
        ids = [int(pk) for (pk,) in cursor.fetchall()]
    return len(ids), ids[:limit]


# Triggers: every response has a record whose design columns follow the response; a change
# to a response's answers (or version) by any path marks the record stale until ``refresh``
# rewrites it. PostgreSQL: statement-level triggers over transition tables (one statement
# per write statement, COPY included); SQLite: row-level triggers.
_DESIGN_NEW = ", ".join(f"n.{f}" for f in ("id", *DESIGN_FIELDS))
_DESIGN_SET = ", ".join(f"{f} = n.{f}" for f in DESIGN_FIELDS)
_RECORD = "feedback_responserecord"
_COLUMNS = f"response_id, {', '.join(DESIGN_FIELDS)}, valid_0, satisfied_0, stale"


def postgresql_triggers(*, by_round: bool = True) -> list[str]:
    """CREATE statements of the PostgreSQL triggers (see above). ``by_round``: an answer's
    record is found by (response, round), so that only the round's partition is read
    (False before migration 0008 adds the answers' round)."""
    key = "(response_id, round_id)" if by_round else "response_id"
    stale_new = (
        f"UPDATE {_RECORD} SET stale = true WHERE NOT stale "
        f"AND {key} IN (SELECT {key.strip('()')} FROM n)"
    )
    stale_old = stale_new.replace("FROM n", "FROM o")
    bodies = {
        ("feedback_response", "INSERT", "NEW TABLE AS n"): (
            f"INSERT INTO {_RECORD} ({_COLUMNS}) SELECT {_DESIGN_NEW}, 0, 0, true FROM n n"
        ),
        ("feedback_response", "UPDATE", "NEW TABLE AS n"): (
            f"UPDATE {_RECORD} r SET {_DESIGN_SET}, "
            f"stale = r.stale OR r.version_id <> n.version_id FROM n n WHERE r.response_id = n.id"
        ),
        ("feedback_response", "DELETE", "OLD TABLE AS o"): (
            f"DELETE FROM {_RECORD} WHERE response_id IN (SELECT id FROM o)"
        ),
        ("feedback_answer", "INSERT", "NEW TABLE AS n"): stale_new,
        ("feedback_answer", "UPDATE", "NEW TABLE AS n"): stale_new,
        ("feedback_answer", "DELETE", "OLD TABLE AS o"): stale_old,
    }
    statements = []
    for (table, event, transition), body in bodies.items():
        name = f"{table}_{event.lower()}_record"
        statements += [
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {body}; RETURN NULL; END $$",
            f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {transition} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
        ]
    return statements


def sqlite_triggers() -> list[str]:
    """CREATE statements of the SQLite triggers (row-level, see above)."""
    design_new = _DESIGN_NEW.replace("n.", "NEW.")
    design_set = _DESIGN_SET.replace("n.", "NEW.")
    stale = f"UPDATE {_RECORD} SET stale = 1 WHERE stale = 0 AND response_id = {{row}}.response_id"
    bodies = {
        ("feedback_response", "INSERT"): (
            f"INSERT INTO {_RECORD} ({_COLUMNS}) VALUES ({design_new}, 0, 0, 1)"
        ),
        ("feedback_response", "UPDATE"): (
            f"UPDATE {_RECORD} SET {design_set}, "
            f"stale = stale OR version_id <> NEW.version_id WHERE response_id = NEW.id"
        ),
        ("feedback_response", "DELETE"): f"DELETE FROM {_RECORD} WHERE response_id = OLD.id",
        ("feedback_answer", "INSERT"): stale.format(row="NEW"),
        ("feedback_answer", "UPDATE"): stale.format(row="NEW") + "; " + stale.format(row="OLD"),
        ("feedback_answer", "DELETE"): stale.format(row="OLD"),
    }
    return [
        f"CREATE TRIGGER {table}_{event.lower()}_record AFTER {event} ON {table} "
        f"FOR EACH ROW BEGIN {body}; END"
        for (table, event), body in bodies.items()
    ]


def create_triggers(connection_: Any, *, by_round: bool = True) -> None:
    """Install the triggers on ``connection_`` (PostgreSQL or SQLite)."""
    if connection_.vendor == "postgresql":
        statements = postgresql_triggers(by_round=by_round)
    else:
        statements = sqlite_triggers()
    with connection_.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


TRIGGERS = tuple(
    (table, f"{table}_{event}_record")
    for table in ("feedback_response", "feedback_answer")
    for event in ("insert", "update", "delete")
)


def recreate_triggers_on_sqlite(apps: Any, schema_editor: Any) -> None:
    """A migration step: SQLite rebuilds ``feedback_response`` to add a column with a
    constraint and loses the records' triggers on the way; they are created again
    (PostgreSQL alters the table in place and keeps them)."""
    if schema_editor.connection.vendor == "sqlite":
        drop_triggers(schema_editor.connection)
        create_triggers(schema_editor.connection)


def drop_triggers(connection_: Any) -> None:
    """Remove the triggers (and, on PostgreSQL, their functions): the migration's reverse,
    before the records' table goes, so that no trigger is left writing to it."""
    with connection_.cursor() as cursor:
        for table, name in TRIGGERS:
            if connection_.vendor == "postgresql":
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
                cursor.execute(f"DROP FUNCTION IF EXISTS {name}()")
            else:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
