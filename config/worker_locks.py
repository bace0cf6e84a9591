"""Advisory locks a worker holds on what it works on (PostgreSQL): a scoring run, a paper
import. Each kind of work has its own first key; the second is the object's id.

A worker holds a session lock while it works, so a second copy of its task backs off, and
the server frees the lock when the worker's session ends: a free lock on work that is
still running means its worker is gone. Elsewhere than PostgreSQL there are no locks (a
claim always succeeds).
"""

from __future__ import annotations

from django.db import connection


def claim(kind: int, object_id: int) -> bool:
    """Take the lock for this connection's session; False if another session holds it."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [kind, object_id])
        return bool(cursor.fetchone()[0])


def release(kind: int, object_id: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [kind, object_id])


def unheld(kind: int, object_ids: list[int]) -> list[int]:
    """The ids whose lock no session holds, each taken until the current transaction ends
    (PostgreSQL only)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM unnest(%s::bigint[]) AS id "
            "WHERE pg_try_advisory_xact_lock(%s, id::int)",
            [object_ids, kind],
        )
        return [row[0] for row in cursor]
