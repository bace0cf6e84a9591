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
from collections import defaultdict
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from feedback.models import Answer, Response
from scoring.models import Run, Score
from scoring.ranking import competition_ranks
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


def build_scores(run: Run, values: list[Any], *, min_n: int) -> list[Score]:
    """Score rows of a run from the engine's node values: suppression, ranks, national mean.

    Works on the per-unit values (units × indicators rows), never on responses.
    """
    scores: list[Score] = []
    by_indicator: dict[int, list[Score]] = defaultdict(list)
    for v in values:
        score = Score(
            run=run,
            scope=Score.Scope.UNIT if v.unit_id is not None else Score.Scope.NATIONAL,
            indicator_id=v.indicator_id,
            unit_id=v.unit_id,
            value=v.value,
            n=v.n,
            valid=v.valid,
            weight_sum=v.weight_sum,
            se=v.se,
            ci_low=v.ci_low,
            ci_high=v.ci_high,
            suppressed=v.n < min_n,
        )
        scores.append(score)
        if score.scope == Score.Scope.UNIT:
            by_indicator[v.indicator_id].append(score)

    for indicator_id, unit_scores in by_indicator.items():
        ranked = {s.unit_id: s.value for s in unit_scores if not s.suppressed}
        ranks, rank_of = competition_ranks(ranked)
        for s in unit_scores:
            if s.unit_id in ranks:
                s.rank, s.rank_of = ranks[s.unit_id], rank_of
        shown = [s.value for s in unit_scores if not s.suppressed and s.value is not None]
        scores.append(
            Score(
                run=run,
                scope=Score.Scope.NATIONAL_MEAN,
                indicator_id=indicator_id,
                value=sum(shown) / len(shown) if shown else None,
                n=len(shown),
            )
        )
    return scores


def compute_run(*, run_id: int, progress: Callable[[str], None] | None = None) -> Run:
    """Compute a running run's values and mark it computed; a finished run is returned as is.

    Values are replaced wholesale, so a retried task starts over cleanly. Any error marks
    the run failed (the published run stays) and is raised again.
    """
    from scoring import engine  # the computation core; see its docstring for the formulas

    run = Run.objects.select_related("round__version__questionnaire").get(pk=run_id)
    if run.status != Run.Status.RUNNING:
        return run
    say = progress or (lambda message: None)
    try:
        version = run.round.version
        say(f"{run.round.code}: computing indicators of {version}")
        values = engine.compute_values(round_id=run.round_id, version_id=version.pk)
        scores = build_scores(run, values, min_n=settings.MIN_PUBLISH_N)
        responses = Response.objects.filter(round_id=run.round_id)
        with transaction.atomic():
            Score.objects.filter(run=run).delete()
            Score.objects.bulk_create(scores, batch_size=5000)
            Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
                status=Run.Status.COMPUTED,
                finished_at=timezone.now(),
                response_count=responses.count(),
                answer_count=Answer.objects.filter(response__round_id=run.round_id).count(),
                versions=[{"questionnaire": version.questionnaire.code, "number": version.number}],
                progress=f"{len(scores)} values",
            )
        say(f"{run.round.code}: {len(scores)} values computed")
    except Exception as exc:
        fail_run(run_id=run.pk, error=f"{type(exc).__name__}: {exc}")
        raise
    run.refresh_from_db()
    return run


def recompute_round(*, round_code: str, progress: Callable[[str], None] | None = None) -> Run:
    """Start (or join) the round's run, compute it and publish it, synchronously."""
    run, created = start_run(round_code=round_code)
    if not created:
        return run
    run = compute_run(run_id=run.pk, progress=progress)
    return publish_run(run_id=run.pk)
