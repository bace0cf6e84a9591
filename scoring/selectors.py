"""Reads of scoring: which rounds to recompute, what a round's published run shows per unit."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from feedback.models import Response
from scoring.models import Run, Score
from surveys.models import Indicator, Round, Unit


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


def main_index(*, version_id: int) -> Indicator | None:
    """The version's main index: the first root of its tree, as the dashboard ranks on."""
    return (
        Indicator.objects.filter(version_id=version_id, parent__isnull=True)
        .order_by("position", "code")
        .first()
    )


@dataclass(frozen=True)
class UnitPublication:
    """One unit of a round: responses counted now (not excluded by review), and its main
    index in the published run."""

    code: str
    name: str
    responses: int
    needed: int  # MIN_PUBLISH_N
    respondents: int | None  # the published value's respondents; None: no value there
    value: float | None
    rank: int | None
    rank_of: int | None
    suppressed: bool | None

    @property
    def missing(self) -> int:
        """Responses still to collect before the unit can be published."""
        return max(0, self.needed - self.responses)

    @property
    def published(self) -> bool:
        return self.respondents is not None and not self.suppressed


def latest_runs(*, round_id: int) -> tuple[Run | None, Run | None]:
    """The round's published run and its newest run (the same one, often), or None."""
    runs = Run.objects.filter(round_id=round_id)
    return (
        runs.filter(status=Run.Status.PUBLISHED).first(),
        runs.order_by("-started_at", "-id").first(),
    )


def round_publication(*, survey_round: Round, run: Run | None) -> list[UnitPublication]:
    """Every unit of the round in code order: its responses against ``MIN_PUBLISH_N`` (those
    the next run counts: excluded by review left out), and the main index's value in ``run``
    (the published run). One query."""
    responses = (
        Response.objects.filter(round_id=survey_round.pk, unit_id=OuterRef("pk"))
        .exclude(review_state=Response.ReviewState.EXCLUDED)
        .order_by()
        .values("unit_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    units = Unit.objects.filter(rounds=survey_round).annotate(
        response_count=Coalesce(Subquery(responses, output_field=IntegerField()), Value(0))
    )
    index = main_index(version_id=survey_round.version_id) if run is not None else None
    scored: list[str] = []
    if run is not None and index is not None:
        score = Score.objects.filter(
            run_id=run.pk, scope=Score.Scope.UNIT, indicator_id=index.pk, unit_id=OuterRef("pk")
        )
        fields = ["n", "value", "rank", "rank_of", "suppressed"]
        units = units.annotate(**{f"score_{f}": Subquery(score.values(f)[:1]) for f in fields})
        scored = [f"score_{f}" for f in fields]
    rows = units.order_by("code").values("code", "name", "response_count", *scored)
    return [
        UnitPublication(
            code=row["code"],
            name=row["name"],
            responses=row["response_count"],
            needed=settings.MIN_PUBLISH_N,
            respondents=row.get("score_n"),
            value=row.get("score_value"),
            rank=row.get("score_rank"),
            rank_of=row.get("score_rank_of"),
            suppressed=row.get("score_suppressed"),
        )
        for row in rows
    ]
