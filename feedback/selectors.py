"""Reads of what citizens send."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Model
from django.db.models.expressions import Col

from feedback.models import Response
from surveys.models import QuestionnaireVersion, Round, Unit


@dataclass(frozen=True)
class Target:
    """What a submission names, as found: the round (its version loaded), the unit when
    the round covers it, and whether the idempotency key was already used."""

    round: Round | None
    unit: Unit | None
    client_id_used: bool = False


_TARGET_MODELS: tuple[tuple[type[Model], str], ...] = (
    (Round, "r"),
    (QuestionnaireVersion, "v"),
    (Unit, "u"),
)


@functools.cache
def _target_statement(vendor: str) -> tuple[str, tuple[tuple[int, Col], ...]]:
    """``find_target``'s statement, and the position and column of each value it selects
    that the database backend or the field converts (most need nothing)."""
    quote = connection.ops.quote_name
    columns = tuple(
        field.get_col(alias)
        for model, alias in _TARGET_MODELS
        for field in model._meta.concrete_fields
    )
    converted = tuple(
        (position, col)
        for position, col in enumerate(columns)
        if connection.ops.get_db_converters(col) or col.get_db_converters(connection)
    )
    selected = ", ".join(f"{col.alias}.{quote(col.target.column)}" for col in columns)
    covers = Round.units.through._meta
    client_id = "%s::uuid" if vendor == "postgresql" else "%s"
    sql = f"""
        SELECT {selected}, used.id
        FROM (SELECT {client_id} AS client_id) AS sent
        LEFT JOIN {Round._meta.db_table} r ON r.code = %s
        LEFT JOIN {QuestionnaireVersion._meta.db_table} v ON v.id = r.version_id
        LEFT JOIN {Unit._meta.db_table} u ON u.code = %s AND EXISTS (
            SELECT 1 FROM {covers.db_table} ru WHERE ru.round_id = r.id AND ru.unit_id = u.id
        )
        LEFT JOIN {Response._meta.db_table} used ON used.client_id = sent.client_id
    """
    return sql, converted


def find_target(*, round_code: str, unit_code: str, client_id: uuid.UUID | None = None) -> Target:
    """The round ``round_code`` with its version, its unit ``unit_code`` and whether
    ``client_id`` was already used, read in one statement (one round trip to the database,
    the only read of a submission before it stores).

    The codes must be text the database can store (``feedback.services.resolve_target``
    checks them first).
    """
    sql, converted = _target_statement(connection.vendor)
    key = Response._meta.get_field("client_id").get_db_prep_value(client_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [key, round_code, unit_code])
        row = cursor.fetchone()
    row = list(row)
    for position, col in converted:
        for convert in connection.ops.get_db_converters(col) + col.get_db_converters(connection):
            row[position] = convert(row[position], col, connection)
    found: dict[type[Model], Model | None] = {}
    start = 0
    for model, _alias in _TARGET_MODELS:
        fields = [field.attname for field in model._meta.concrete_fields]
        values = row[start : start + len(fields)]
        missing = values[0] is None  # no such row: the LEFT JOIN gave NULLs
        found[model] = None if missing else model.from_db(connection.alias, fields, values)
        start += len(fields)
    survey_round = found[Round]
    if survey_round is not None:
        survey_round.version = found[QuestionnaireVersion]
    return Target(survey_round, found[Unit], client_id_used=row[start] is not None)


def target_unchanged(target: Target) -> tuple[str, list[Any]]:
    """SQL condition (and its parameters) true while ``target`` (round and unit found) is
    still what the database holds, as far as a submission reads it: the round's code,
    version (and its publication time), opening and closing times and open-link rule, the
    unit's code, and the round covering the unit. A write guarded by it stores nothing if
    any of them changed since.
    """
    survey_round, unit = target.round, target.unit
    assert survey_round is not None and unit is not None
    covers = Round.units.through._meta.db_table
    sql = (
        f"EXISTS (SELECT 1 FROM {Round._meta.db_table} r "
        f"JOIN {covers} ru ON ru.round_id = r.id "
        f"JOIN {Unit._meta.db_table} u ON u.id = ru.unit_id "
        f"JOIN {QuestionnaireVersion._meta.db_table} v ON v.id = r.version_id "
        f"WHERE r.id = %s AND r.code = %s AND r.version_id = %s AND r.opens_at = %s "
        f"AND r.closes_at = %s AND r.allow_open_link = %s AND u.id = %s AND u.code = %s "
        f"AND v.published_at IS NOT DISTINCT FROM %s)"
    )
    return sql, [
        survey_round.pk,
        survey_round.code,
        survey_round.version_id,
        survey_round.opens_at,
        survey_round.closes_at,
        survey_round.allow_open_link,
        unit.pk,
        unit.code,
        survey_round.version.published_at,
    ]
