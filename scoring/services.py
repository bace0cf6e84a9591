"""State changes of scoring runs: start, queue, fail, publish. One function per change.

A round has at most one running run (a partial unique index: a second start returns the
running one) and one published run. A worker that takes a run up records a heartbeat at each
step and, on PostgreSQL, holds a session advisory lock on the run while it computes: the
server releases that lock the moment the worker's connection dies, so the next start finds
the lock free and marks the run failed at once. Otherwise (SQLite, or a run queued but never
taken up) a run with no sign of life for ``SCORING_RUN_TIMEOUT_MINUTES`` is failed by the
next start.

A run is created only if its task could be queued (``queue_run`` deletes it otherwise), and
Celery beat queues again, every minute, a run that no worker computes
``STALLED_WORK_MINUTES`` after it was queued (``requeue_stalled_runs``): its message was lost
or its worker died. Publishing takes a lock on the round, supersedes the old published run
and publishes the new one in one transaction, so a reader never sees a mix of two runs.
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
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from config.queueing import BrokerUnavailable, enqueue
from feedback.models import Response
from scoring import raking
from scoring.intervals import Z as Z_95
from scoring.models import Run, Score
from scoring.ranking import competition_ranks
from surveys.models import Agency, Indicator, Round, UnitLineage

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


RUN_LOCK = 7002  # first key of the advisory lock a computing worker holds on its run


def claim_run(run_id: int) -> bool:
    """Take the run's liveness lock for this connection's session (PostgreSQL).

    False if another live session holds it: that worker computes the run already.
    """
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [RUN_LOCK, run_id])
        return bool(cursor.fetchone()[0])


def release_run(run_id: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [RUN_LOCK, run_id])


def _orphaned(run_ids: list[int]) -> list[int]:
    """Runs taken up by a worker whose database session is gone (their lock is free)."""
    if connection.vendor != "postgresql" or not run_ids:
        return []
    with connection.cursor() as cursor:
        # A transaction-level try-lock: free again when the caller's transaction ends.
        cursor.execute(
            "SELECT id FROM unnest(%s::bigint[]) AS id "
            "WHERE pg_try_advisory_xact_lock(%s, id::int)",
            [run_ids, RUN_LOCK],
        )
        return [row[0] for row in cursor]


def fail_stale_runs(*, round_id: int, now: dt.datetime | None = None) -> int:
    """Mark the round's running runs whose worker is gone as failed.

    Gone means: its liveness lock is free although a worker took the run up (PostgreSQL),
    or no sign of life (heartbeat, else start) for ``SCORING_RUN_TIMEOUT_MINUTES``.
    """
    now = now or timezone.now()
    running = Run.objects.filter(round_id=round_id, status=Run.Status.RUNNING)
    taken_up = list(running.filter(heartbeat_at__isnull=False).values_list("id", flat=True))
    failed = running.filter(id__in=_orphaned(taken_up)).update(
        status=Run.Status.FAILED,
        finished_at=now,
        error=_("The worker computing this run stopped (its database session ended)."),
    )
    limit = now - dt.timedelta(minutes=settings.SCORING_RUN_TIMEOUT_MINUTES)
    return failed + running.annotate(seen=Coalesce("heartbeat_at", "started_at")).filter(
        seen__lt=limit
    ).update(
        status=Run.Status.FAILED,
        finished_at=now,
        error=_("No sign of life for %(m)s minutes: the worker was stopped.")
        % {"m": settings.SCORING_RUN_TIMEOUT_MINUTES},
    )


def queue_run(*, run: Run) -> None:
    """Queue the computation of a run just started; if the broker refuses it, the run is
    deleted (it has no values yet) and ``BrokerUnavailable`` raised."""
    from scoring import tasks  # a task is an interface; it calls back into this module

    try:
        enqueue(tasks.compute_and_publish, run.pk)
    except BrokerUnavailable:
        Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING, heartbeat_at__isnull=True).delete()
        raise


def start_and_queue_run(*, round_code: str) -> tuple[Run, bool]:
    """``start_run``, and queue the run if it is new: ``(run, created)``."""
    run, created = start_run(round_code=round_code)
    if created:
        queue_run(run=run)
    return run, created


def requeue_stalled_runs(*, now: dt.datetime | None = None) -> list[int]:
    """Queue again the running runs that no worker computes, queued at least
    ``STALLED_WORK_MINUTES`` ago: never taken up (the message was lost) or taken up by a worker
    that died. A run started more than ``SCORING_RUN_TIMEOUT_MINUTES`` ago is failed instead.
    The ids queued again; a second copy of a task is harmless (``claim_run``)."""
    from scoring import tasks

    now = now or timezone.now()
    stalled_since = now - dt.timedelta(minutes=settings.STALLED_WORK_MINUTES)
    candidates = dict(
        Run.objects.filter(status=Run.Status.RUNNING)
        .annotate(queued=Coalesce("queued_at", "started_at"))
        .filter(queued__lt=stalled_since)
        .values_list("id", "heartbeat_at")
    )
    if connection.vendor == "postgresql":
        with transaction.atomic():
            idle = _orphaned(list(candidates))  # nobody holds the run's liveness lock
    else:
        idle = [pk for pk, seen in candidates.items() if seen is None or seen < stalled_since]
    timeout = now - dt.timedelta(minutes=settings.SCORING_RUN_TIMEOUT_MINUTES)
    expired = Run.objects.filter(pk__in=idle, started_at__lt=timeout)
    for run_id in expired.values_list("id", flat=True):
        fail_run(
            run_id=run_id,
            error=_("No worker completed this run within %(m)s minutes.")
            % {"m": settings.SCORING_RUN_TIMEOUT_MINUTES},
        )
    requeued = []
    for run in Run.objects.filter(pk__in=idle, status=Run.Status.RUNNING).order_by("pk"):
        Run.objects.filter(pk=run.pk).update(queued_at=now)
        try:
            enqueue(tasks.compute_and_publish, run.pk)
        except BrokerUnavailable:
            break  # the next sweep tries again
        requeued.append(run.pk)
    return requeued


def record_progress(run_id: int, message: str) -> None:
    """A step of a running run: its progress line and a heartbeat.

    Best effort: if someone holds the run's row (staff in the admin, say), the step is not
    recorded rather than waited for.
    """
    with transaction.atomic():
        free = Run.objects.select_for_update(skip_locked=True).filter(
            pk=run_id, status=Run.Status.RUNNING
        )
        Run.objects.filter(pk__in=list(free.values_list("pk", flat=True))).update(
            progress=message[:200], heartbeat_at=timezone.now()
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


def score_of(run: Run, v: Any, *, min_n: int, scope: str, **place: int | None) -> Score:
    """A Score row from one engine value; ``place`` names its unit and/or agency."""
    return Score(
        run=run,
        scope=scope,
        indicator_id=v.indicator_id,
        value=v.value,
        n=v.n,
        valid=v.valid,
        weight_sum=v.weight_sum,
        se=v.se,
        deff=v.deff,
        n_eff=v.n_eff,
        ci_low=v.ci_low,
        ci_high=v.ci_high,
        suppressed=v.n < min_n,
        **place,
    )


def build_scores(run: Run, values: list[Any], *, min_n: int) -> list[Score]:
    """Score rows of a run from the engine's node values: suppression, ranks, national mean.

    Works on the per-unit values (units × indicators rows), never on responses.
    """
    scores: list[Score] = []
    by_indicator: dict[int, list[Score]] = defaultdict(list)
    for v in values:
        scope = Score.Scope.UNIT if v.unit_id is not None else Score.Scope.NATIONAL
        score = score_of(run, v, min_n=min_n, scope=scope, unit_id=v.unit_id)
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


def previous_run(survey_round: Round) -> Run | None:
    """The published run of the latest earlier round of the same questionnaire."""
    return (
        Run.objects.filter(
            status=Run.Status.PUBLISHED,
            round__version__questionnaire_id=survey_round.version.questionnaire_id,
            round__closes_at__lte=survey_round.opens_at,
        )
        .exclude(round=survey_round)
        .select_related("round")
        .order_by("-round__closes_at", "-round_id")
        .first()
    )


def lineage_map(*, current_units: set[int], previous_units: set[int]) -> dict[int, int]:
    """Predecessor → successor for units of this round that the previous round did not cover."""
    return dict(
        UnitLineage.objects.filter(
            successor_id__in=current_units - previous_units, predecessor_id__in=previous_units
        ).values_list("predecessor_id", "successor_id")
    )


def compare_with_previous(
    run: Run, scores: list[Score], *, say: Callable[[str], None] = lambda message: None
) -> None:
    """Set ``change`` and ``change_significant`` of unit and national scores.

    The previous round is recomputed with merged units' predecessors pooled under the
    successor (2025 lineage), so a merged province compares with its own territory. Nodes
    are matched by indicator code, so a new questionnaire version still compares. A change
    is significant when |change| > 1.96 · √(SE² + SE_previous²) (independent samples).
    """
    from scoring import engine

    previous = previous_run(run.round)
    if previous is None:
        return
    current_units = set(run.round.units.values_list("id", flat=True))
    previous_units = set(previous.round.units.values_list("id", flat=True))
    unit_map = lineage_map(current_units=current_units, previous_units=previous_units)
    say(f"{run.round.code}: comparing with {previous.round.code} ({len(unit_map)} merged units)")
    before = {
        (v.indicator_code, v.unit_id): v
        for v in engine.compute_values(
            round_id=previous.round_id,
            version_id=previous.round.version_id,
            unit_map=unit_map,
            # the previous run's raked weights, if it raked: like is compared with like
            weights_run_id=previous.pk if previous.settings_used.get("raking") else None,
        )
    }
    codes = dict(
        Indicator.objects.filter(version_id=run.round.version_id).values_list("id", "code")
    )
    for score in scores:
        if score.scope not in (Score.Scope.UNIT, Score.Scope.NATIONAL) or score.value is None:
            continue
        old = before.get((codes[score.indicator_id], score.unit_id))
        if old is None or old.value is None:
            continue
        score.change = score.value - old.value
        if score.se is not None and old.se is not None:
            margin = Z_95 * (score.se**2 + old.se**2) ** 0.5
            score.change_significant = abs(score.change) > margin


def agency_scores(
    run: Run,
    *,
    min_n: int,
    say: Callable[[str], None] = lambda message: None,
    weights_run_id: int | None = None,
) -> list[Score]:
    """Values per agency, for rounds whose responses name agencies (one more engine pass)."""
    from scoring import engine

    agencies = dict(
        Agency.objects.filter(responses__round_id=run.round_id)
        .distinct()
        .values_list("id", "unit_id")
    )
    if not agencies:
        return []
    say(f"{run.round.code}: computing indicators of {len(agencies)} agencies")
    values = engine.compute_values(
        round_id=run.round_id,
        version_id=run.round.version_id,
        unit_level="agency",
        weights_run_id=weights_run_id,
    )
    return [
        score_of(
            run,
            v,
            min_n=min_n,
            scope=Score.Scope.AGENCY,
            agency_id=v.unit_id,
            unit_id=agencies[v.unit_id],
        )
        for v in values
        if v.unit_id is not None  # the national rows are the unit pass's
    ]


def prune_runs(*, round_id: int, keep: int) -> int:
    """Delete the round's superseded and failed runs beyond the newest ``keep``.

    Their scores, raking factors and response weights go with them (CASCADE).
    """
    old = list(
        Run.objects.filter(round_id=round_id, status__in=[Run.Status.SUPERSEDED, Run.Status.FAILED])
        .order_by("-started_at", "-id")
        .values_list("id", flat=True)[keep:]
    )
    if not old:
        return 0
    with transaction.atomic():
        Score.objects.filter(run_id__in=old).delete()
        Run.objects.filter(id__in=old).delete()
    return len(old)


def compute_run(*, run_id: int, progress: Callable[[str], None] | None = None) -> Run:
    """Compute a running run's values and mark it computed; a finished run is returned as is.

    Values are replaced wholesale, so a retried task starts over cleanly. Any error marks
    the run failed (the published run stays) and is raised again. A round with population
    margins has its weights raked first (``scoring.raking``): the values use them and the
    convergence report goes to ``settings_used["raking"]``.
    """
    from scoring import engine  # the computation core; see its docstring for the formulas

    run = Run.objects.select_related("round__version__questionnaire").get(pk=run_id)
    if run.status != Run.Status.RUNNING or not claim_run(run.pk):
        return run  # finished, or computed right now by another worker

    def say(message: str) -> None:
        record_progress(run.pk, message)
        if progress is not None:
            progress(message)

    try:
        version = run.round.version
        raking_report = raking.rake_run(run_id=run.pk, round_id=run.round_id, version_id=version.pk)
        weights_run_id = None if raking_report is None else run.pk
        if raking_report is not None:
            say(
                f"{run.round.code}: weights raked in {len(raking_report['units'])} units"
                f" ({'all' if raking_report['converged'] else 'not all'} converged)"
            )
        say(f"{run.round.code}: computing indicators of {version}")
        values = engine.compute_values(
            round_id=run.round_id, version_id=version.pk, weights_run_id=weights_run_id
        )
        scores = build_scores(run, values, min_n=settings.MIN_PUBLISH_N)
        compare_with_previous(run, scores, say=say)
        scores += agency_scores(
            run, min_n=settings.MIN_PUBLISH_N, say=say, weights_run_id=weights_run_id
        )
        response_count = Response.objects.filter(round_id=run.round_id).count()
        items = set(
            Indicator.objects.filter(
                version=version, aggregation=Indicator.Aggregation.SHARE
            ).values_list("id", flat=True)
        )
        # The valid answers the values rest on: each counts once, in its item's national value.
        answer_count = sum(v.valid for v in values if v.unit_id is None and v.indicator_id in items)
        with transaction.atomic():
            Score.objects.filter(run=run).delete()
            Score.objects.bulk_create(scores, batch_size=5000)
            Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
                status=Run.Status.COMPUTED,
                finished_at=timezone.now(),
                response_count=response_count,
                answer_count=answer_count,
                versions=[{"questionnaire": version.questionnaire.code, "number": version.number}],
                progress=f"{len(scores)} values",
                **(
                    {}
                    if raking_report is None
                    else {"settings_used": {**run.settings_used, "raking": raking_report}}
                ),
            )
        say(f"{run.round.code}: {len(scores)} values computed")
    except Exception as exc:
        fail_run(run_id=run.pk, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        release_run(run.pk)
    run.refresh_from_db()
    return run


def recompute_round(*, round_code: str, progress: Callable[[str], None] | None = None) -> Run:
    """Start (or join) the round's run, compute it and publish it, synchronously."""
    run, created = start_run(round_code=round_code)
    if not created:
        return run
    run = compute_run(run_id=run.pk, progress=progress)
    run = publish_run(run_id=run.pk)
    prune_runs(round_id=run.round_id, keep=settings.SCORING_KEEP_RUNS)
    return run
