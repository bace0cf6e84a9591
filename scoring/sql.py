"""The SQL of the scoring engine: scored answers, item totals per unit, linearized sums.

Every statement here is one set-based pass over the answers of a round; the engine
(``scoring.engine``) only builds the small inputs (satisfied rules, coefficients) and turns
the small outputs (one row per unit and question, or per unit and node) into values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection

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
) -> list[tuple[int, int, float, float, int]]:
    """(scope, question, Σ w·satisfied, Σ w, valid answers) per scope and question."""
    scored, params = _scored_answers(
        scope_sql=_scope_sql(unit_level, unit_map),
        rules=rules,
        question_ids=question_ids,
        weights_run_id=weights_run_id,
    )
    sql = (
        f"SELECT x.scope, x.question_id, SUM(x.w * x.s), SUM(x.w), COUNT(*) "
        f"FROM ({scored}) x GROUP BY x.scope, x.question_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, round_id, version_id, *question_ids])
        return [(int(s), int(q), float(y), float(x), int(n)) for s, q, y, x, n in cursor]


def _coefficients_table() -> str:
    """A table (scope, node, question, a, b, na, nb) read from one JSON parameter of rows.

    One parameter whatever the number of rows: neither SQLite's nor PostgreSQL's limit on
    bound parameters applies, and the statement text stays the same.
    """
    if connection.vendor == "postgresql":
        return (
            "SELECT (e->>0)::bigint AS scope, (e->>1)::bigint AS node, "
            "(e->>2)::bigint AS question, (e->>3)::double precision AS a, "
            "(e->>4)::double precision AS b, (e->>5)::double precision AS na, "
            "(e->>6)::double precision AS nb FROM json_array_elements(%s::json) AS e"
        )
    # Typed columns (CAST) give the join the same affinity as the answer columns, which
    # SQLite needs to look rows up by (scope, question).
    return (
        "SELECT CAST(json_extract(value, '$[0]') AS INTEGER) AS scope, "
        "CAST(json_extract(value, '$[1]') AS INTEGER) AS node, "
        "CAST(json_extract(value, '$[2]') AS INTEGER) AS question, "
        "CAST(json_extract(value, '$[3]') AS REAL) AS a, "
        "CAST(json_extract(value, '$[4]') AS REAL) AS b, "
        "CAST(json_extract(value, '$[5]') AS REAL) AS na, "
        "CAST(json_extract(value, '$[6]') AS REAL) AS nb FROM json_each(%s)"
    )


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
    linearized score z for the node, and ``w·(na·s − nb)`` to the national one. Scores are
    summed per respondent first, then their sums and squares per scope: a respondent
    belongs to one scope, so the national sums are the sums of these over scopes.
    """
    if not coefficients:
        return []
    scored, params = _scored_answers(
        scope_sql=_scope_sql(unit_level, unit_map),
        rules=rules,
        question_ids=question_ids,
        weights_run_id=weights_run_id,
    )
    sql = (
        f"WITH coef AS MATERIALIZED ({_coefficients_table()}), "
        f"per_respondent AS ("
        f"SELECT c.scope AS scope, c.node AS node, MAX(x.w) AS w, "
        f"SUM(x.w * (c.a * x.s - c.b)) AS z, SUM(x.w * (c.na * x.s - c.nb)) AS nz "
        # CROSS JOIN keeps SQLite from looping over coefficients outside (PostgreSQL
        # plans it as any inner join): each answer looks its rows up by an automatic index.
        f"FROM ({scored}) x CROSS JOIN coef c "
        f"WHERE c.scope = x.scope AND c.question = x.question_id "
        f"GROUP BY c.scope, c.node, x.response_id) "
        f"SELECT scope, node, COUNT(*), SUM(w), SUM(z), SUM(z * z), SUM(nz), SUM(nz * nz) "
        f"FROM per_respondent GROUP BY scope, node"
    )
    payload = json.dumps([[s, k, q, *map(float, abn)] for s, k, q, *abn in coefficients])
    with connection.cursor() as cursor:
        cursor.execute(sql, [payload, *params, round_id, version_id, *question_ids])
        return [
            (int(s), int(k), int(n), float(w), float(z), float(zz), float(nz), float(nzz))
            for s, k, n, w, z, zz, nz, nzz in cursor
        ]
