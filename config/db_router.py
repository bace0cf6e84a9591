"""Reads of the public results from a read replica; everything else from the primary.

With ``DATABASE_REPLICA_URL`` set (a PostgreSQL hot standby of ``DATABASE_URL``), the
settings add the database alias ``replica``, this router and ``ReplicaReadsMiddleware``.
Only reads made inside ``replica_reads()`` go to the replica: the middleware opens it for a
GET or HEAD answered by a view of the ``results`` app (the read API, the public dashboard,
the exports), for the whole request including a streamed body. So that nothing a writer must
read back ever comes from a replica that may lag behind:

- every write goes to the primary, and so does every read outside ``replica_reads()``
  (submissions, the admin, Celery tasks: a recompute reads the answers it just counted);
- a read inside a transaction on the primary stays on the primary;
- accounts, sessions, tokens and content types are always read on the primary (a session
  written at login is read back on the next request).

A whole results request reads one database, so a document and the published run that keys
its cache (``results.api.caching``) agree: a lagging replica serves the previous
publication, under the previous key, until it has replayed the new one. Migrations run on
the primary only. See docs/capacity.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, resolve

REPLICA = "replica"
READ_METHODS = frozenset({"GET", "HEAD"})
REPLICA_VIEW_MODULES = ("results.",)  # views whose GET/HEAD read from the replica
PRIMARY_ONLY_APPS = frozenset({"auth", "sessions", "authtoken", "contenttypes", "admin"})

_replica_reads: ContextVar[bool] = ContextVar("replica_reads", default=False)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


@contextmanager
def replica_reads() -> Iterator[None]:
    """Reads in this block go to the replica (when one is configured)."""
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


class ReplicaRouter:
    """Django database router: see the module docstring."""

    def db_for_read(self, model: type, **hints: Any) -> str:
        if (
            _replica_reads.get()
            and replica_configured()
            and model._meta.app_label not in PRIMARY_ONLY_APPS
            and not connections[DEFAULT_DB_ALIAS].in_atomic_block
        ):
            return REPLICA
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model: type, **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # the replica holds the same rows as the primary

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS


def _streamed(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A streamed body produced inside ``replica_reads()``, chunk by chunk."""
    iterator = iter(chunks)
    while True:
        with replica_reads():
            try:
                chunk = next(iterator)
            except StopIteration:
                return
        yield chunk


class ReplicaReadsMiddleware:
    """Opens ``replica_reads()`` for GET/HEAD requests answered by a results view."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        if not replica_configured():
            raise MiddlewareNotUsed("no DATABASE_REPLICA_URL")
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.method not in READ_METHODS or not self._results_view(request):
            return self.get_response(request)
        with replica_reads():
            response = self.get_response(request)
        if response.streaming:
            response.streaming_content = _streamed(response.streaming_content)
        return response

    @staticmethod
    def _results_view(request: HttpRequest) -> bool:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return False
        module = getattr(match.func, "__module__", "") or ""
        return module.startswith(REPLICA_VIEW_MODULES)
