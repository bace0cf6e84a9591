"""Entries written explicitly, for changes made without the model signals auditlog listens
to (set-based updates, replaced sets of rows)."""

from __future__ import annotations

from typing import Any

from django.db import models


def record_change(
    instance: models.Model, changes: dict[str, list[Any]], *, action: int | None = None
) -> Any:
    """One entry for ``instance``: ``changes`` maps a field (or a named aspect) to
    ``[before, after]``. The actor is filled in as for any entry (``audit.context``)."""
    from auditlog.models import LogEntry

    return LogEntry.objects.log_create(
        instance,
        force_log=True,
        action=LogEntry.Action.UPDATE if action is None else action,
        changes={key: [_text(a), _text(b)] for key, (a, b) in changes.items()},
    )


def _text(value: Any) -> Any:
    """A value as auditlog stores one side of a change: text, or None."""
    return None if value is None else str(value)
