"""Reads of scoring: which rounds to recompute, published runs."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from feedback.models import Response
from scoring.models import Run
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


def open_rounds_with_new_responses(*, now: dt.datetime | None = None) -> list[str]:
    """Codes of open rounds holding a response submitted since their last run started (any
    outcome), or holding responses and no run at all: what the in-process scheduler scores.

    Two ``EXISTS`` per open round, on the indexes of ``submitted_at`` and of the run's round.
    """
    now = now or timezone.now()
    last_started = (
        Run.objects.filter(round=OuterRef("pk")).order_by("-started_at").values("started_at")[:1]
    )
    responses = Response.objects.filter(round=OuterRef("pk"))
    return list(
        Round.objects.filter(opens_at__lte=now, closes_at__gt=now)
        .annotate(last_started=Subquery(last_started))
        .annotate(
            any_response=Exists(responses),
            newer_response=Exists(responses.filter(submitted_at__gte=OuterRef("last_started"))),
        )
        .filter(Q(last_started__isnull=True, any_response=True) | Q(newer_response=True))
        .order_by("code")
        .values_list("code", flat=True)
    )
