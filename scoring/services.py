"""State changes of scoring runs: start, fail, publish. One function per change.

A round has at most one running run (a partial unique index: a second start returns the
running one) and one published run. A run whose worker died stays ``running``; after
``SCORING_RUN_TIMEOUT_MINUTES`` it is taken for dead and marked failed when the next run
starts. Publishing takes a lock on the round, supersedes the old published run and
publishes the new one in one transaction, so a reader never sees a mix of two runs.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from functools import cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from scoring.models import Run
from surveys.models import Round

ROOT = Path(__file__).resolve().parent.parent


@cache
def code_version() -> str:
    """The git commit the code runs from, or ``unknown`` outside a checkout."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def lock_round(round_id: int) -> None:
    """Serialize state changes of one round's runs until the transaction ends."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7001, round_id])
    else:  # SQLite has one writer at a time: a no-op write takes that lock now.
        Round.objects.filter(pk=round_id).update(code=F("code"))


def fail_stale_runs(*, round_id: int, now: dt.datetime | None = None) -> int:
    """Mark runs of the round still ``running`` after the time-out as failed."""
    now = now or timezone.now()
    limit = now - dt.timedelta(minutes=settings.SCORING_RUN_TIMEOUT_MINUTES)
    return Run.objects.filter(
        round_id=round_id, status=Run.Status.RUNNING, started_at__lt=limit
    ).update(
        status=Run.Status.FAILED,
        finished_at=now,
        error=_("No sign of life for %(m)s minutes: the worker was stopped.")
        % {"m": settings.SCORING_RUN_TIMEOUT_MINUTES},
    )


def start_run(*, round_code: str) -> tuple[Run, bool]:
    """A new running run of the round, or the one already running: ``(run, created)``."""
    survey_round = Round.objects.filter(code=round_code).first()
    if survey_round is None:
        raise ValidationError(
            {"round": [_("There is no survey round %(code)s.") % {"code": round_code}]}
        )
    with transaction.atomic():
        lock_round(survey_round.pk)
        fail_stale_runs(round_id=survey_round.pk)
        running = Run.objects.filter(round=survey_round, status=Run.Status.RUNNING).first()
        if running is not None:
            return running, False
        try:
            with transaction.atomic():
                run = Run.objects.create(
                    round=survey_round,
                    code_version=code_version(),
                    settings_used={"MIN_PUBLISH_N": settings.MIN_PUBLISH_N},
                )
        except IntegrityError:  # another start won the race
            return Run.objects.get(round=survey_round, status=Run.Status.RUNNING), False
    return run, True


def fail_run(*, run_id: int, error: str) -> None:
    """Record why a run failed; the published run of the round stays in place."""
    Run.objects.filter(pk=run_id, status=Run.Status.RUNNING).update(
        status=Run.Status.FAILED, finished_at=timezone.now(), error=error[:5000]
    )


def publish_run(*, run_id: int) -> Run:
    """Publish a computed run; publishing it twice is a no-op."""
    with transaction.atomic(durable=True):
        round_id = Run.objects.values_list("round_id", flat=True).get(pk=run_id)
        lock_round(round_id)
        run = Run.objects.get(pk=run_id)
        if run.status == Run.Status.PUBLISHED:
            return run
        if run.status != Run.Status.COMPUTED:
            raise ValidationError(
                {
                    "status": [
                        _("Run %(id)s is %(status)s, not computed.")
                        % {"id": run.pk, "status": run.get_status_display()}
                    ]
                }
            )
        Run.objects.filter(round_id=round_id, status=Run.Status.PUBLISHED).update(
            status=Run.Status.SUPERSEDED
        )
        run.status, run.published_at = Run.Status.PUBLISHED, timezone.now()
        run.save(update_fields=["status", "published_at"])
    return run
