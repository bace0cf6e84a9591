"""Who made a change: the request's user (session or API token, read when the entry is
written, after DRF has authenticated the request), else the system: a Celery task's name,
or a management command's (``command:<name>``).

``AuditMiddleware`` keeps the current request in a context variable; Celery's task signals
keep the running task's name; ``as_system(name)`` names any other system actor. A
``pre_save`` receiver on auditlog's ``LogEntry`` fills in the actor and, in
``additional_data``, the system actor and the request's path. No IP address is stored
(``AUDITLOG_DISABLE_REMOTE_ADDR``), as everywhere in this service.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest, HttpResponse

_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)
_system: ContextVar[str | None] = ContextVar("audit_system", default=None)


class AuditMiddleware:
    """Makes the request (so its user) known to the audit entries it causes."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


@contextlib.contextmanager
def as_system(name: str) -> Iterator[None]:
    """Entries written inside are by the system actor ``name`` (a task, a command)."""
    token = _system.set(name)
    try:
        yield
    finally:
        _system.reset(token)


def current_actor() -> tuple[Any, str]:
    """(user or None, system actor name or '') of an entry written now."""
    request = _request.get()
    user = getattr(request, "user", None) if request is not None else None
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    return user, _system.get() or ""


def _fill_actor(sender: type, instance: Any, **kwargs: Any) -> None:
    if instance.pk is not None:
        return
    user, system = current_actor()
    if instance.actor_id is None and user is not None:
        instance.actor = user
        instance.actor_email = getattr(user, "email", None) or None
    extra = dict(instance.additional_data or {})
    if system:
        extra["system"] = system
    request = _request.get()
    if request is not None:
        extra.setdefault("path", request.path[:200])
    if user is None and not system:
        extra.setdefault("system", _command() or "unknown")  # a shell, a migration, a test
    instance.additional_data = extra or None


def _command() -> str:
    """``command:<name>`` when running ``manage.py <name>``, else ''."""
    argv = sys.argv
    if len(argv) > 1 and argv[0].endswith("manage.py"):
        return f"command:{argv[1]}"
    return ""


def _task_started(task: Any = None, **kwargs: Any) -> None:
    name = f"celery:{getattr(task, 'name', '?')}"
    request = getattr(task, "request", None)
    if request is not None:
        request.audit_token = _system.set(name)


def _task_finished(task: Any = None, **kwargs: Any) -> None:
    request = getattr(task, "request", None)
    token = getattr(request, "audit_token", None)
    if token is not None:
        with contextlib.suppress(ValueError):
            _system.reset(token)
        request.audit_token = None


def connect() -> None:
    """Connect the receivers (once, from ``AuditConfig.ready``)."""
    from auditlog.models import LogEntry
    from celery.signals import task_postrun, task_prerun
    from django.db.models.signals import pre_save

    pre_save.connect(_fill_actor, sender=LogEntry, dispatch_uid="audit_fill_actor")
    task_prerun.connect(_task_started, dispatch_uid="audit_task_started", weak=False)
    task_postrun.connect(_task_finished, dispatch_uid="audit_task_finished", weak=False)
