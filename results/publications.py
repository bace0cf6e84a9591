"""Which run of each round is published, known to each process without a query per read.

Every read of a result document starts by asking which run is published (the document and
its ``ETag`` are keyed on it). ``selectors.publication`` asks PostgreSQL each time; this
module keeps the answers in the process and asks again only when a publication may have
changed, so a cached document is served with no query at all.

How a process learns of a change, at once and without a timer:

- Whatever changes a publication (a run saved with a new status or publication time, a run
  deleted, a round's code or questionnaire version changed, a round deleted) sends
  ``NOTIFY results_publication`` in its own transaction (``post_save``/``post_delete``
  receivers, connected in ``results.apps``). PostgreSQL delivers it when, and only if, that
  transaction commits.
- Each serving process ``LISTEN``\\ s on its persistent database connection and, before each
  read, looks at the socket for a notification (no round trip: libpq reads what already
  arrived). A notification, a new connection, or a notification seen while psycopg ran
  another query drops everything known, and the next read asks PostgreSQL again.
- The process that made the change forgets at once too (its own transaction may read its
  change before it commits).

What is known is also asked again after ``RESULTS_PUBLICATION_RECHECK_SECONDS`` (5 by
default): a writer that bypasses the model signals (``QuerySet.update`` on the status, raw
SQL) is seen within that time.

Without persistent connections on PostgreSQL (``CONN_MAX_AGE=0``, SQLite), inside a
transaction, and with a read replica (``DATABASE_REPLICA_URL``), nothing is kept: each read
asks the database, as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections

from config.db_router import replica_configured
from results import selectors
from results.selectors import Publication

CHANNEL = "results_publication"
DATABASE = "default"
ALL = "*"  # the key of every round's publication (``selectors.publications``)
# A process keeps at most this many round codes (unknown codes are kept as "none" too).
MAX_ENTRIES = 1000


class PublicationWatch:
    """This process's known publications, dropped whenever PostgreSQL says they changed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.known: dict[str, tuple[float, Any]] = {}
        self.generation = 0  # counts the times everything was forgotten
        self.listening_on: Any = None  # the psycopg connection we LISTEN on

    def forget(self, *_args: Any) -> None:
        with self.lock:
            self.known.clear()
            self.generation += 1

    @staticmethod
    def usable(connection: Any) -> bool:
        """Whether this process may keep answers: PostgreSQL with persistent connections,
        outside a transaction (a LISTEN inside one would only count once it commits), and
        no read replica: a notification from the primary can come before the standby has
        replayed the run, and a document built then would be cached, empty, under the new
        run's key; with a replica each read asks it (``config.db_router``)."""
        return (
            not replica_configured()
            and connection.vendor == "postgresql"
            and bool(connection.settings_dict.get("CONN_MAX_AGE"))
            and not connection.in_atomic_block
        )

    def listen(self, connection: Any) -> None:
        """LISTEN on the current connection (a new one forgets everything); poll it."""
        raw = connection.connection
        if raw is None or raw.closed or raw is not self.listening_on:
            self.forget()
            connection.ensure_connection()
            raw = connection.connection
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
            raw.add_notify_handler(self.forget)  # those psycopg reads during other queries
            self.listening_on = raw
            return
        pgconn = raw.pgconn
        try:
            pgconn.consume_input()  # non-blocking: reads what the server already sent
        except Exception:  # a broken connection: forget, the next query will say why
            self.forget()
            self.listening_on = None
            return
        notified = False
        while pgconn.notifies() is not None:
            notified = True
        if notified:
            self.forget()

    def answer(self, key: str, ask: Callable[[], Any]) -> Any:
        connection = connections[DATABASE]
        if not self.usable(connection):
            return ask()
        self.listen(connection)
        now = time.monotonic()
        with self.lock:
            found = self.known.get(key)
            generation = self.generation
        if found is not None and now - found[0] < settings.RESULTS_PUBLICATION_RECHECK_SECONDS:
            return found[1]
        value = ask()  # after listen(): a change committed from now on will be notified
        with self.lock:
            if generation != self.generation:  # notified while asking: keep nothing
                return value
            if len(self.known) >= MAX_ENTRIES:
                self.known.clear()
            self.known[key] = (now, value)
        return value


watch = PublicationWatch()


def publication(*, round_code: str) -> Publication | None:
    """The published run of the round with this code, or None (``selectors.publication``)."""
    return watch.answer(round_code, lambda: selectors.publication(round_code=round_code))


def publications() -> list[Publication]:
    """Every round's published run, oldest publication first (``selectors.publications``)."""
    return watch.answer(ALL, selectors.publications)


# --- Telling every process ---------------------------------------------------------------------

RUN_FIELDS = {"status", "published_at", "round", "round_id"}
ROUND_FIELDS = {"code", "version", "version_id", "owner_unit", "owner_unit_id"}


def publication_changed(using: str = DATABASE) -> None:
    """Forget here, and tell every process when the current transaction commits."""
    watch.forget()
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {CHANNEL}")


def run_saved(sender: Any, instance: Any, created: bool, update_fields: Any, **kwargs: Any) -> None:
    if created and instance.status != "published":
        return
    if update_fields is None or RUN_FIELDS & set(update_fields):
        publication_changed(kwargs.get("using") or DATABASE)


def round_saved(
    sender: Any, instance: Any, created: bool, update_fields: Any, **kwargs: Any
) -> None:
    if not created and (update_fields is None or ROUND_FIELDS & set(update_fields)):
        publication_changed(kwargs.get("using") or DATABASE)


def deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    publication_changed(kwargs.get("using") or DATABASE)
