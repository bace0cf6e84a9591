"""Moves of a model's ``status`` that stamp a time (a version published or retired, a run
published): moving to the status it has is a no-op, moving from any but the one allowed is
refused."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone


def already(obj: Any, status: str, *, allowed_from: str, refusal: str) -> bool:
    """Whether ``obj`` has ``status`` already; any status but ``allowed_from`` is refused
    (``refusal``, on the ``status`` field)."""
    if obj.status == status:
        return True
    if obj.status != allowed_from:
        raise ValidationError({"status": [refusal]})
    return False


def move(obj: Any, status: str, *, stamp: str) -> None:
    """Give ``obj`` its new ``status`` and the time of the move in ``stamp``, and save both."""
    obj.status = status
    setattr(obj, stamp, timezone.now())
    obj.save(update_fields=["status", stamp])
