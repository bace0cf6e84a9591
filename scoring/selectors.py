"""Reads of scoring: which rounds to recompute, published runs."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from surveys.models import Round


def rounds_to_recompute(*, now: dt.datetime | None = None) -> list[str]:
    """Codes of rounds open now or closed within ``SCORING_RECENT_DAYS``."""
    now = now or timezone.now()
    since = now - dt.timedelta(days=settings.SCORING_RECENT_DAYS)
    return list(
        Round.objects.filter(opens_at__lte=now, closes_at__gte=since)
        .order_by("code")
        .values_list("code", flat=True)
    )
