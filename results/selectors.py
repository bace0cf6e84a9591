"""Reads of published results: a round's published run and its scores."""

from __future__ import annotations

from django.db.models import QuerySet

from scoring.models import Run, Score


def published_run(*, round_id: int) -> Run | None:
    """The round's published run, or None before its first publication."""
    return Run.objects.filter(round_id=round_id, status=Run.Status.PUBLISHED).first()


def published_scores(run: Run) -> QuerySet[Score]:
    """The scores of a published run with their indicator and unit joined in."""
    return Score.objects.filter(run=run).select_related("indicator", "unit", "agency")
