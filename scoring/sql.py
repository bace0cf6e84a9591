"""The SQL of the scoring engine: scored answers, item totals per unit, linearized sums.

Every statement here is one set-based pass over the answers of a round; the engine
(``scoring.engine``) only builds the small inputs (satisfied rules, coefficients) and turns
the small outputs (one row per unit and question, or per unit and node) into values.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from feedback.models import Answer, Response
from scoring.models import ResponseWeight

# Scope keys in the SQL results: a unit's (or agency's) id, NO_SCOPE for responses that
# name no unit at the chosen level (they count nationally only), NATIONAL for the nation.
NATIONAL = 0
NO_SCOPE = -1

SCOPE_COLUMNS = {"unit": "unit_id", "agency": "agency_id"}


@dataclass(frozen=True)
class SatisfiedRule:
    """Questions whose answer is satisfied when ``column`` (number or code) is in ``values``."""

    column: str
    values: tuple[Any, ...]
    question_ids: tuple[int, ...]


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def _scored_answers(
    *,
    scope_sql: str,
    rules: Sequence[SatisfiedRule],
    question_ids: Sequence[int],
    weights_run_id: int | None = None,
) -> tuple[str, list[Any]]:
    """One row per valid scored answer: response, scope, weight, question, satisfied 0/1.

    With ``weights_run_id`` a response's weight is its raked weight in that run
    (``ResponseWeight``), else its design weight.
    """
    whens, params = [], []
    for rule in rules:
        if not rule.values:
            continue  # nothing counts as satisfied: the ELSE branch says so
        whens.append(
            f"WHEN a.question_id IN ({_placeholders(len(rule.question_ids))}) "
            f"AND a.{rule.column} IN ({_placeholders(len(rule.values))}) THEN 1"
        )
        params += [*rule.question_ids, *rule.values]
    satisfied = f"CASE {' '.join(whens)} ELSE 0 END" if whens else "0"
    weight, weights = "r.weight", ""
    if weights_run_id is not None:
        weight = "COALESCE(rw.weight, r.weight)"
        weights = (
            f"LEFT JOIN {ResponseWeight._meta.db_table} rw "
            f"ON rw.run_id = {int(weights_run_id)} AND rw.response_id = r.id "
        )
    sql = (
        f"SELECT r.id AS response_id, {scope_sql} AS scope, {weight} AS w, "
        f"a.question_id AS question_id, {satisfied} AS s "
        f"FROM {Answer._meta.db_table} a "
        f"JOIN {Response._meta.db_table} r ON r.id = a.response_id {weights}"
        f"WHERE r.round_id = %s AND r.version_id = %s "
        f"AND a.question_id IN ({_placeholders(len(question_ids))})"
    )
    return sql, params


def _scope_sql(unit_level: str, unit_map: Mapping[int, int] | None = None) -> str:
    """The scope of a response: its unit (or agency), renamed through ``unit_map``.

    ``unit_map`` pools units: e.g. the provinces merged in 2025 all map to their successor,
    so a previous round can be compared with the merged province. Ids are integers, inlined.
    """
    column = f"r.{SCOPE_COLUMNS[unit_level]}"
    if unit_map:
        cases = " ".join(f"WHEN {int(k)} THEN {int(v)}" for k, v in sorted(unit_map.items()))
        column = f"CASE {column} {cases} ELSE {column} END"
    return f"COALESCE({column}, {NO_SCOPE})"


def item_totals(
    *,
    round_id: int,
    version_id: int,
    unit_level: str,
    rules: Sequence[SatisfiedRule],
    question_ids: Sequence[int],
    unit_map: Mapping[int, int] | None = None,
    weights_run_id: int | None = None,
) -> list[tuple[int, int, float, float, int, float, float]]:
    """(scope, question, Σ w·s, Σ w, valid answers, Σ w²·s, Σ w²) per scope and question.

    s is 1 for a satisfied answer, else 0. The squared weights give the standard error of
    single-question items without a pass per respondent (see ``scoring.engine``).
    """
    scored, params = _scored_answers(
        scope_sql=_scope_sql(unit_level, unit_map),
        rules=rules,
        question_ids=question_ids,
        weights_run_id=weights_run_id,
    )
    sql = (
        f"SELECT x.scope, x.question_id, SUM(x.w * x.s), SUM(x.w), COUNT(*), "
        f"SUM(x.w * x.w * x.s), SUM(x.w * x.w) "
        f"FROM ({scored}) x GROUP BY x.scope, x.question_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, round_id, version_id, *question_ids])
        return [
            (int(s), int(q), float(y), float(x), int(n), float(yy), float(xx))
            for s, q, y, x, n, yy, xx in cursor
        ]


BITS_PER_WORD = 63  # answer bits per integer mask (a signed 64-bit integer in both databases)


def _json_rows(columns: Sequence[tuple[str, str]]) -> str:
    """A table read from one JSON parameter holding a list of rows (lists).

    One parameter whatever the number of rows: neither SQLite's nor PostgreSQL's limit on
    bound parameters applies. ``columns`` are (name, type) with type ``int`` or ``float``.
    """
    if connection.vendor == "postgresql":
        casts = {"int": "bigint", "float": "double precision"}
        cols = ", ".join(
            f"(e->>{i})::{casts[kind]} AS {name}" for i, (name, kind) in enumerate(columns)
        )
        return f"SELECT {cols} FROM json_array_elements(%s::json) AS e"
    casts = {"int": "INTEGER", "float": "REAL"}
    cols = ", ".join(
        f"CAST(json_extract(value, '$[{i}]') AS {casts[kind]}) AS {name}"
        for i, (name, kind) in enumerate(columns)
    )
    return f"SELECT {cols} FROM json_each(%s)"


def linearized_sums(
    *,
    round_id: int,
    version_id: int,
    unit_level: str,
    rules: Sequence[SatisfiedRule],
    question_ids: Sequence[int],
    coefficients: Sequence[tuple[int, int, int, float, float, float, float]],
    unit_map: Mapping[int, int] | None = None,
    weights_run_id: int | None = None,
) -> list[tuple[int, int, int, float, float, float, float, float]]:
    """(scope, node, n, Σ w, Σ z, Σ z², Σ z_nat, Σ z_nat²) per scope and node.

    ``coefficients`` rows are (scope, node, question, a, b, na, nb): each valid answer of
    the question by a respondent of the scope adds ``w·(a·s − b)`` to the respondent's
    linearized score z for the node, and ``w·(na·s − nb)`` to the national one.

    One statement in three steps. (1) One row per respondent: its scope, weight and two
    bit masks per word of 63 questions, the questions it answered validly and those it
    answered satisfied (a GROUP BY over the answers; each question has one bit, and a
    respondent answers a question once, so OR and SUM of the bits agree). (2) For each
    respondent, every node's z and national z, from its masks and its scope's coefficients
    (one row per scope; each answer bit adds a − b when satisfied, −b when not). (3) Per
    scope, for every node: respondents with an answer under it, their weights, Σ z, Σ z²
    and the national ones. A respondent belongs to one scope, so the national sums are the
    sums of these over scopes. Step 2 never expands answers by node: its cost is one row
    per respondent, whatever the depth of the tree.
    """
    if not coefficients:
        return []
    postgres = connection.vendor == "postgresql"
    positions = {q: i for i, q in enumerate(sorted(set(question_ids)))}
    words = max(1, -(-len(positions) // BITS_PER_WORD))
    # The terms: (node, question) pairs of any scope, each with 4 coefficients per scope.
    terms = sorted({(node, q) for _s, node, q, *_abn in coefficients})
    term_index = {term: i for i, term in enumerate(terms)}
    values: dict[int, list[float]] = {}
    for scope, node, q, a, b, na, nb in coefficients:
        row = values.setdefault(scope, [0.0] * (4 * len(terms)))
        i = 4 * term_index[node, q]
        row[i : i + 4] = [float(a) - float(b), -float(b), float(na) - float(nb), -float(nb)]
    nodes = sorted({node for node, _q in terms})
    questions_of = {node: [q for n, q in terms if n == node] for node in nodes}

    def bit(q: int) -> tuple[int, int]:
        return divmod(positions[q], BITS_PER_WORD)

    def coefficient(i: int) -> str:
        return f"c.v[{i + 1}]" if postgres else f"c.v{i}"

    def answered(word: int, value: int, column: str) -> str:
        return f"(p.{column}{word} & {value}) <> 0"

    def score(node: int, offset: int) -> str:
        """A respondent's z (offset 0) or national z (offset 2) for the node."""
        cases = []
        for q in questions_of[node]:
            word, position = bit(q)
            i = 4 * term_index[node, q] + offset
            cases.append(
                f"CASE WHEN {answered(word, 1 << position, 'y')} THEN {coefficient(i)} "
                f"WHEN {answered(word, 1 << position, 'x')} THEN {coefficient(i + 1)} "
                f"ELSE 0 END"
            )
        return f"p.w * ({' + '.join(cases)})"

    def member(node: int) -> str:
        masks: dict[int, int] = defaultdict(int)
        for q in questions_of[node]:
            word, position = bit(q)
            masks[word] |= 1 << position
        return " OR ".join(answered(word, mask, "x") for word, mask in sorted(masks.items()))

    scored, params = _scored_answers(
        scope_sql=_scope_sql(unit_level, unit_map),
        rules=rules,
        question_ids=question_ids,
        weights_run_id=weights_run_id,
    )
    bit_or = "BIT_OR" if postgres else "SUM"
    masks = ", ".join(
        f"COALESCE({bit_or}(CASE WHEN q.word = {w} THEN q.bit END), 0) AS x{w}, "
        f"COALESCE({bit_or}(CASE WHEN q.word = {w} AND x.s = 1 THEN q.bit END), 0) AS y{w}"
        for w in range(words)
    )
    per_node = ", ".join(
        f"CASE WHEN {member(node)} THEN 1 ELSE 0 END AS m{k}, "
        f"{score(node, 0)} AS z{k}, {score(node, 2)} AS n{k}"
        for k, node in enumerate(nodes)
    )
    sums = ", ".join(
        f"SUM(m{k}), SUM(m{k} * w), SUM(z{k}), SUM(z{k} * z{k}), SUM(n{k}), SUM(n{k} * n{k})"
        for k in range(len(nodes))
    )
    if postgres:
        coef = (
            "SELECT (e->>0)::bigint AS scope, "
            "ARRAY(SELECT json_array_elements_text(e->1)::double precision) AS v "
            "FROM json_array_elements(%s::json) AS e"
        )
    else:  # one column per coefficient: SQLite has no arrays
        coef = (
            "SELECT "
            + ", ".join(
                ["CAST(json_extract(value, '$[0]') AS INTEGER) AS scope"]
                + [f"json_extract(value, '$[1][{i}]') AS v{i}" for i in range(4 * len(terms))]
            )
            + " FROM json_each(%s)"
        )
    # OFFSET 0 keeps PostgreSQL from inlining each z into every sum that uses it, and lets
    # it stream; SQLite materializes the (small) per-respondent rows instead.
    fence = "OFFSET 0" if postgres else ""
    materialized = "" if postgres else "MATERIALIZED"
    bits = _json_rows([("question", "int"), ("word", "int"), ("bit", "int")])
    sql = (
        f"WITH q AS MATERIALIZED ({bits}), "
        f"c AS MATERIALIZED ({coef}), "
        f"p AS {materialized} (SELECT x.response_id, MAX(x.scope) AS scope, MAX(x.w) AS w, {masks} "
        f"FROM ({scored}) x JOIN q ON q.question = x.question_id GROUP BY x.response_id), "
        f"z AS {materialized} (SELECT p.scope AS scope, p.w AS w, {per_node} "
        f"FROM p JOIN c ON c.scope = p.scope {fence}) "
        f"SELECT scope, {sums} FROM z GROUP BY scope"
    )
    question_rows = json.dumps([[q, bit(q)[0], 1 << bit(q)[1]] for q in sorted(positions)])
    coef_rows = json.dumps([[scope, row] for scope, row in sorted(values.items())])
    args = [question_rows, coef_rows, *params, round_id, version_id, *question_ids]
    if postgres:
        with transaction.atomic(), connection.cursor() as cursor:
            # For this statement only: no JIT (compiling its wide expressions costs more
            # than it saves), and memory to group a million respondents without spilling.
            cursor.execute(
                "SELECT set_config('jit', 'off', true), set_config('work_mem', %s, true)",
                [settings.SCORING_WORK_MEM],
            )
            cursor.execute(sql, args)
            rows = cursor.fetchall()  # one row per scope
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            rows = cursor.fetchall()
    out = []
    for scope, *figures in rows:
        for k, node in enumerate(nodes):
            n, w, z, zz, nz, nzz = figures[6 * k : 6 * k + 6]
            if n:
                out.append(
                    (int(scope), node, int(n), float(w), float(z), float(zz),
                     float(nz), float(nzz))
                )  # fmt: skip
    return out
