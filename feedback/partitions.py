"""The answer table and the compact records partitioned by round (PostgreSQL only).

On PostgreSQL ``feedback_answer`` and ``feedback_responserecord`` are declaratively
partitioned, ``PARTITION BY LIST (round_id)``: one partition per survey round
(``<table>_round_<id>``) and a DEFAULT partition (``<table>_default``), so that storing,
refreshing and scoring a round touches that round's tables and indexes only, however many
rounds came before, and a closed round can be detached and archived as one table
(docs/capacity.md). SQLite keeps plain tables: the Django models are the same.

PostgreSQL wants the partition key in every primary key and unique constraint of a
partitioned table, so in the database the answers' primary key is ``(id, round_id)`` and
their one-answer-per-question constraint ``(response_id, question_id, round_id)``; the
records' primary key is ``(response_id, round_id)``. A response has one round, so these say
the same as the models' constraints, and Django goes on addressing rows by ``id`` (or
``response_id``).

Where partitions come from:

- migration ``0008`` converts existing tables, one partition per existing round;
- creating a round creates its partitions (``feedback.signals``, in the transaction that
  creates the round); deleting a round drops them if they are empty;
- the DEFAULT partition catches the rows of a round whose partitions were not created (a
  round inserted by raw SQL or ``bulk_create``, which sends no signal): nothing fails, and
  ``ensure_round_partitions`` later moves those rows to the round's own partition.

Creating a round's partitions attaches new tables: it locks the DEFAULT partitions, which
the records' triggers of every submission touch, so submissions wait for the transaction
creating the round to commit (a fraction of a second); dropping them (a deleted round)
locks the parent tables as briefly. Rounds are created far less often than answered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper

KEY = "round_id"
TABLES = ("feedback_answer", "feedback_responserecord")


def partition_name(table: str, round_id: int) -> str:
    """The partition of ``table`` holding the rows of round ``round_id``."""
    return f"{table}_round_{int(round_id)}"


def default_name(table: str) -> str:
    return f"{table}_default"


def is_partitioned(table: str, connection: BaseDatabaseWrapper = default_connection) -> bool:
    """True when ``table`` is a partitioned table (PostgreSQL, after migration 0008)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p JOIN pg_class c "
            "ON c.oid = p.partrelid WHERE c.oid = to_regclass(%s))",
            [table],
        )
        return bool(cursor.fetchone()[0])


def partitions(table: str, connection: BaseDatabaseWrapper = default_connection) -> list[str]:
    """Names of the partitions of ``table``, sorted (none when it is not partitioned)."""
    if not is_partitioned(table, connection):
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s) ORDER BY 1",
            [table],
        )
        return [name for (name,) in cursor.fetchall()]


def ensure_round_partitions(
    round_ids: Iterable[int], connection: BaseDatabaseWrapper = default_connection
) -> list[str]:
    """Create the partitions of these rounds that do not exist yet (in the caller's
    transaction), moving any of their rows from the DEFAULT partition. Returns the
    partitions created; does nothing where the tables are not partitioned."""
    created = []
    for table in TABLES:
        if not is_partitioned(table, connection):
            continue
        existing = set(partitions(table, connection))
        default = default_name(table)
        with connection.cursor() as cursor:
            for round_id in sorted({int(r) for r in round_ids}):
                name = partition_name(table, round_id)
                if name in existing:
                    continue
                # A table of its own, then ATTACH (a SHARE UPDATE EXCLUSIVE lock on the
                # parent, ACCESS EXCLUSIVE on the DEFAULT partition, which it scans). Rows of
                # the round that went to the DEFAULT partition move first: they would fail
                # the attach.
                cursor.execute(
                    f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                )
                cursor.execute(
                    f"WITH moved AS (DELETE FROM {default} WHERE {KEY} = %s RETURNING *) "
                    f"INSERT INTO {name} SELECT * FROM moved",
                    [round_id],
                )
                cursor.execute(
                    f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES IN ({round_id})"
                )
                created.append(name)
    return created


def drop_round_partitions(
    round_id: int, connection: BaseDatabaseWrapper = default_connection
) -> list[str]:
    """Drop the partitions of a deleted round, if they are empty (a round with responses
    cannot be deleted: they protect it). Returns the partitions dropped."""
    dropped = []
    for table in TABLES:
        name = partition_name(table, round_id)
        if name not in partitions(table, connection):
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {name})")
            if cursor.fetchone()[0]:
                continue  # rows left: keep them for a DBA to look at
            cursor.execute(f"DROP TABLE {name}")
        dropped.append(name)
    return dropped


# --- Migration 0008: converting a plain table into a partitioned one, and back ----------


def _columns(definition: str) -> list[str]:
    return [c.strip() for c in re.search(r"\(([^)]*)\)", definition).group(1).split(",")]


def rebuild_table(cursor, table: str, *, partitioned: bool, round_ids: Iterable[int] = ()) -> None:
    """Re-create ``table`` as a partitioned table (one partition per round of
    ``round_ids`` and a DEFAULT one) or, ``partitioned=False``, as a plain table, with its
    rows, identity sequence, indexes and constraints under the same names.

    The primary key and unique constraints gain ``round_id`` when partitioned and lose it
    otherwise (none of these tables' own constraints names the round). No other table may
    reference ``table`` by a foreign key. Triggers are the caller's (``feedback.records``).
    """
    cursor.execute("SELECT count(*) FROM pg_constraint WHERE confrelid = to_regclass(%s)", [table])
    if cursor.fetchone()[0]:
        raise RuntimeError(f"{table} is referenced by a foreign key: it cannot be rebuilt")
    cursor.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = to_regclass(%s) AND contype IN ('p', 'u', 'f') ORDER BY contype DESC",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = to_regclass(%s) "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid "
        "AND c.conrelid = x.indrelid) ORDER BY 1",
        [table],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attidentity <> '' AND NOT attisdropped",
        [table],
    )
    identities = [name for (name,) in cursor.fetchall()]

    new = f"{table}__rebuilt"
    like = f"(LIKE {table} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS)"
    if partitioned:
        cursor.execute(f"CREATE TABLE {new} {like} PARTITION BY LIST ({KEY})")
        for round_id in sorted({int(r) for r in round_ids}):
            cursor.execute(
                f"CREATE TABLE {partition_name(table, round_id)} PARTITION OF {new} "
                f"FOR VALUES IN ({round_id})"
            )
        cursor.execute(f"CREATE TABLE {default_name(table)} PARTITION OF {new} DEFAULT")
    else:
        cursor.execute(f"CREATE TABLE {new} {like}")
    cursor.execute(f"INSERT INTO {new} SELECT * FROM {table}")
    cursor.execute(f"DROP TABLE {table}")  # with its partitions, indexes and constraints
    cursor.execute(f"ALTER TABLE {new} RENAME TO {table}")
    for column in identities:
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, column])
        (sequence,) = cursor.fetchone()
        cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {table}_{column}_seq")
        cursor.execute(
            f"SELECT setval('{table}_{column}_seq', COALESCE(MAX({column}), 0) + 1, false) "
            f"FROM {table}"
        )
    for name, kind, definition in constraints:
        if kind in ("p", "u"):
            columns = [c for c in _columns(definition) if c != KEY]
            if partitioned:
                columns.append(KEY)
            definition = re.sub(r"\([^)]*\)", f"({', '.join(columns)})", definition, count=1)
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
    for _name, definition in indexes:
        cursor.execute(definition)
    cursor.execute(f"ANALYZE {table}")


def partition_tables(connection: BaseDatabaseWrapper) -> None:
    """Migration 0008 forward: partition the answers and the records by round."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred check left pending
        cursor.execute("SELECT id FROM surveys_round")
        round_ids = [pk for (pk,) in cursor.fetchall()]
        for table in TABLES:
            rebuild_table(cursor, table, partitioned=True, round_ids=round_ids)
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def unpartition_tables(connection: BaseDatabaseWrapper) -> None:
    """Migration 0008 backward: plain tables again, rows kept."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in TABLES:
            rebuild_table(cursor, table, partitioned=False)
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
