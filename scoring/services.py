"""State changes of scoring runs: start, queue, fail, publish. One function per change.

A round has at most one running run (a partial unique index: a second start returns the
running one) and one published run. A worker that takes a run up records a heartbeat at each
step and, on PostgreSQL, holds a session advisory lock on the run while it computes: the
server releases that lock the moment the worker's connection dies, so the next start finds
the lock free and marks the run failed at once. Otherwise (SQLite, or a run queued but never
taken up) a run with no sign of life for ``SCORING_RUN_TIMEOUT_MINUTES`` is failed by the
next start.

A run is created only if its task could be queued (``request_recompute`` deletes it
otherwise), and Celery beat queues again, every minute, a run that no worker computes
``STALLED_WORK_MINUTES`` after it was queued (``requeue_stalled_runs``): its message was
lost or its worker died. Publishing takes a lock on the round, supersedes the old published
run and publishes the new one in one transaction, so a reader never sees a mix of two runs.
"""

from __future__ import annotations

import datetime as dt
import math
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

from config import status_moves, worker_locks
from config.queueing import BrokerUnavailable, enqueue
from feedback.models import Response
from feedback.review.selectors import excluded_per_unit
from scoring import raking, replicates, signals, suppression
from scoring.models import PopulationMargin, Run, Score
from scoring.multiple_testing import benjamini_hochberg
from scoring.ranking import competition_ranks, edge_size, rank_intervals, rank_seed
from surveys.mapping import correspondence
from surveys.models import Agency, Indicator, Round, Unit, UnitLineage, VersionMappingRow

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
    return worker_locks.claim(RUN_LOCK, run_id)


def release_run(run_id: int) -> None:
    worker_locks.release(RUN_LOCK, run_id)


def _orphaned(run_ids: list[int]) -> list[int]:
    """Runs taken up by a worker whose database session is gone (their lock is free)."""
    if connection.vendor != "postgresql" or not run_ids:
        return []
    return worker_locks.unheld(RUN_LOCK, run_ids)  # locked until the caller's transaction ends


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


def request_recompute(*, round_code: str) -> tuple[Run, bool]:
    """Start a run of the round (or join the one running) and queue its computation:
    ``(run, created)``. The run's row is committed before its task is queued; if the broker
    refuses the task, the new run is deleted (it has no values yet) and ``BrokerUnavailable``
    raised. The API, the admin and the nightly task all recompute through here."""
    from scoring import tasks  # a task is an interface; it calls back into this module

    run, created = start_run(round_code=round_code)
    if created:
        try:
            enqueue(tasks.compute_and_publish, run.pk)
        except BrokerUnavailable:
            Run.objects.filter(
                pk=run.pk, status=Run.Status.RUNNING, heartbeat_at__isnull=True
            ).delete()
            raise
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
                    settings_used={
                        "MIN_PUBLISH_N": settings.MIN_PUBLISH_N,
                        "national_value": survey_round.national_value,
                    },
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
        refusal = _("Run %(id)s is %(status)s, not computed.")
        if status_moves.already(
            run,
            Run.Status.PUBLISHED,
            allowed_from=Run.Status.COMPUTED,
            refusal=refusal % {"id": run.pk, "status": run.get_status_display()},
        ):
            return run
        Run.objects.filter(round_id=round_id, status=Run.Status.PUBLISHED).update(
            status=Run.Status.SUPERSEDED
        )
        status_moves.move(run, Run.Status.PUBLISHED, stamp="published_at")
        signals.run_published.send(sender=Run, run=run)
    return run


# The figures of an engine value a Score row stores as they are.
ENGINE_FIGURES = (
    "indicator_id",
    "value",
    "n",
    "valid",
    "weight_sum",
    "se",
    "deff",
    "n_eff",
    "ci_low",
    "ci_high",
)


def score_of(run: Run, v: Any, *, min_n: int, scope: str, **place: int | None) -> Score:
    """A Score row from one engine value; ``place`` names its unit and/or agency."""
    figures = {name: getattr(v, name) for name in ENGINE_FIGURES}
    return Score(run=run, scope=scope, **figures, suppressed=v.n < min_n, **place)


def suppression_nodes(*, version_id: int) -> list[suppression.Node]:
    """The version's indicator tree as ``scoring.suppression`` reads it (tree order)."""
    return [
        suppression.Node(pk, code, parent_id, aggregation, weight)
        for pk, code, parent_id, aggregation, weight in Indicator.objects.filter(
            version_id=version_id
        )
        .order_by("position", "code")
        .values_list("id", "code", "parent_id", "aggregation", "weight")
    ]


def withhold_complementary(run: Run, scores: list[Score]) -> None:
    """Mark suppressed, besides the values with too few respondents, the values that would
    give one of them back through the tree's relations or the national value
    (``scoring.suppression``). Unit and national scores of one run; three small queries."""
    nodes = suppression_nodes(version_id=run.round.version_id)
    by_key = {(s.unit_id, s.indicator_id): s for s in scores}
    cells = {
        key: suppression.Cell(n=s.n, weight_sum=s.weight_sum, primary=s.suppressed)
        for key, s in by_key.items()
    }
    population: dict[int, float] | None = None
    if run.round.national_value == Round.NationalValue.POPULATION:
        population = unit_populations(round_id=run.round_id) or None  # none: pooled
    codes = dict(
        Unit.objects.filter(pk__in={u for u, _i in by_key if u is not None}).values_list(
            "id", "code"
        )
    )
    withheld = suppression.complementary_suppression(
        nodes, cells, unit_codes=codes, population=population
    )
    for key in withheld:
        by_key[key].suppressed = True


def withhold_complementary_agencies(
    run: Run, unit_scores: list[Score], scores: list[Score]
) -> None:
    """Complementary suppression among a unit's agencies: within a unit the agencies play
    the units' part and the unit's own published values the nation's (a unit's value pools
    its agencies'; taking the relation as exact is conservative when some responses name no
    agency). The unit's values were decided by the unit pass and stay as they are: should
    the rule want one withheld, every agency value of that indicator in the unit is withheld
    instead, which leaves none to be worked back from it."""
    nodes = suppression_nodes(version_id=run.round.version_id)
    own = {(s.unit_id, s.indicator_id): s for s in unit_scores if s.scope == Score.Scope.UNIT}
    by_unit: dict[int, dict[tuple[int | None, int], Score]] = defaultdict(dict)
    for score in scores:
        by_unit[score.unit_id][(score.agency_id, score.indicator_id)] = score
    for unit_id, agencies in by_unit.items():
        cells = {
            key: suppression.Cell(n=s.n, weight_sum=s.weight_sum, primary=s.suppressed)
            for key, s in agencies.items()
        }
        for (unit, indicator), score in own.items():
            if unit == unit_id:
                cells[None, indicator] = suppression.Cell(
                    n=score.n, weight_sum=score.weight_sum, primary=score.suppressed
                )
        if not any(c.primary for k, c in cells.items() if k[0] is not None):
            continue
        codes = dict(
            Agency.objects.filter(pk__in=[a for a, _i in agencies]).values_list("id", "code")
        )
        withheld = suppression.complementary_suppression(nodes, cells, unit_codes=codes)
        for agency, indicator in withheld:
            if agency is not None:
                agencies[agency, indicator].suppressed = True
            elif not own[unit_id, indicator].suppressed:
                for (_agency, node), score in agencies.items():
                    if node == indicator:
                        score.suppressed = True


def build_scores(run: Run, values: list[Any], *, min_n: int) -> list[Score]:
    """Score rows of a run from the engine's node values: suppression (primary, then
    complementary), ranks, national mean.

    Each ranked unit (not suppressed, with a value) gets its rank and the rank's 95%
    interval (``scoring.ranking.rank_intervals``, seeded by the run and the indicator, so
    computing the same run again gives the same intervals). Agency values are not ranked.
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
    withhold_complementary(run, scores)  # before ranks: withheld values are not ranked

    for indicator_id, unit_scores in by_indicator.items():
        ranked = {s.unit_id: s for s in unit_scores if not s.suppressed and s.value is not None}
        ranks, rank_of = competition_ranks({unit: s.value for unit, s in ranked.items()})
        intervals = rank_intervals(
            {unit: (s.value, s.se) for unit, s in ranked.items()},
            seed=rank_seed(run.pk, indicator_id),
            sizes={unit: edge_size(s.n, s.n_eff) for unit, s in ranked.items()},
        )
        for unit, s in ranked.items():
            s.rank, s.rank_of = ranks[unit], rank_of
            s.rank_low, s.rank_high = intervals[unit]
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
    """The published run of the latest earlier round of the same questionnaire and kind: a
    national round follows national rounds, a province's local round its own local rounds
    (a local round's values never reach a national change, nor another province's)."""
    return (
        Run.objects.filter(
            status=Run.Status.PUBLISHED,
            round__version__questionnaire_id=survey_round.version.questionnaire_id,
            round__owner_unit_id=survey_round.owner_unit_id,
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


def change_se(value: float, se: float | None, size: float | None) -> float | None:
    """The SE a value brings to a change: its own, or at 0 or 100 (where the design-based
    SE is 0) or without one, the binomial SE of the continuity-corrected share on its
    effective size (``scoring.ranking.logit_spread``'s rule, on the 0–100 scale)."""
    p = value / 100
    if 0 < p < 1 and se is not None and se > 0:
        return se
    if size is None or size <= 0:
        return se
    smoothed = (size * p + 0.5) / (size + 1)
    return 100 * math.sqrt(smoothed * (1 - smoothed) / size)


def change_p_value(change: float, se: float | None, se_before: float | None) -> float | None:
    """Two-sided normal p-value of a change between independent samples, ``None`` without SEs.

    p = erfc(|d| / (√(SE² + SE_previous²) · √2)) = 2·(1 − Φ(|d|/SE_d)).
    """
    if se is None or se_before is None:
        return None
    se_change = math.hypot(se, se_before)
    if se_change == 0:
        return 1.0 if change == 0 else 0.0
    return math.erfc(abs(change) / se_change / math.sqrt(2))


def flag_changes(scores: list[Score]) -> None:
    """Set ``change_significant`` from ``change_p`` by Benjamini–Hochberg at 5%.

    Families: the published unit scores of each indicator; and all national values of the
    round together (one headline table). Suppressed scores (their change is not published)
    and changes without a p-value are left out and not flagged.
    """
    tested = [
        (position, score)
        for position, score in enumerate(scores)
        if score.change_p is not None and not score.suppressed
    ]
    families: dict[object, dict[int, float]] = defaultdict(dict)
    for position, score in tested:
        family = score.indicator_id if score.scope == Score.Scope.UNIT else "national"
        families[family][position] = score.change_p
    significant: set[int] = set()
    for p_values in families.values():
        significant |= benjamini_hochberg(p_values)
    for position, score in tested:
        score.change_significant = position in significant


def compare_with_previous(
    run: Run, scores: list[Score], *, say: Callable[[str], None] = lambda message: None
) -> None:
    """Set ``change``, ``change_p`` and ``change_significant`` of unit and national scores.

    The previous round is recomputed with merged units' predecessors pooled under the
    successor (2025 lineage), so a merged province compares with its own territory. Nodes
    are matched by indicator code when both rounds use one questionnaire version; across
    versions only through the mapping between them (``surveys.mapping``): a node the mapping
    does not link (``none``, absent, or no mapping at all) gets no change. The
    p-value of a change d is two-sided normal on d/√(SE² + SE_previous²) (independent
    samples; at 0 or 100 the SE of ``change_se``); a change is significant when
    Benjamini–Hochberg at a false discovery rate of 5% calls it so within its family (the
    units of one indicator; the national values of the round), see ``flag_changes``.
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
    # Later code → earlier code across versions; None: one version, every code is itself.
    linked = correspondence(
        earlier_version_id=previous.round.version_id,
        later_version_id=run.round.version_id,
        kind=VersionMappingRow.Kind.INDICATOR,
    )
    if linked is not None:
        say(f"{run.round.code}: {len(linked)} indicators linked to the previous version")
    # A change over a value withheld in the previous run would give it back (previous =
    # value − change): such values get no change, nor do merged units with a withheld
    # predecessor.
    withheld = set(
        Score.objects.filter(
            run=previous, scope__in=[Score.Scope.UNIT, Score.Scope.NATIONAL], suppressed=True
        ).values_list("indicator__code", "unit_id")
    )
    parts: dict[int, set[int]] = defaultdict(set)
    for predecessor, successor in unit_map.items():
        parts[successor].add(predecessor)
    for score in scores:
        if score.scope not in (Score.Scope.UNIT, Score.Scope.NATIONAL) or score.value is None:
            continue
        code = (
            codes[score.indicator_id] if linked is None else linked.get(codes[score.indicator_id])
        )
        if code is None:
            continue  # no equivalent in the previous round's version: a series break
        old = before.get((code, score.unit_id))
        if old is None or old.value is None:
            continue
        earlier = parts.get(score.unit_id, set()) | (
            {score.unit_id} if score.unit_id is None or score.unit_id in previous_units else set()
        )
        if any((code, unit) in withheld for unit in earlier):
            continue
        score.change = score.value - old.value
        score.change_p = change_p_value(
            score.change,
            change_se(score.value, score.se, edge_size(score.n, score.n_eff)),
            change_se(old.value, old.se, edge_size(old.n, old.n_eff)),
        )
    flag_changes(scores)


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
        Agency.objects.filter(
            responses__round_id=run.round_id,
            responses__review_state=Response.ReviewState.ACCEPTED,
        )
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


class MissingPopulations(ValueError):
    """The round weights its national value by population, but units lack margins."""


def unit_populations(*, round_id: int) -> dict[int, float]:
    """Each unit's population in the round's margins (``PopulationMargin``): the sum of its
    sex × age margins, else of its area margins. Units with neither, or with 0, are absent."""
    from django.db.models import Sum

    totals: dict[int, dict[str, float]] = defaultdict(dict)
    rows = (
        PopulationMargin.objects.filter(round_id=round_id)
        .values("unit_id", "dimension")
        .annotate(total=Sum("population"))
        .order_by()
        .values_list("unit_id", "dimension", "total")
    )
    for unit_id, dimension, total in rows:
        totals[unit_id][dimension] = total
    populations = {
        unit_id: by_dimension.get(
            PopulationMargin.Dimension.SEX_AGE, by_dimension.get(PopulationMargin.Dimension.AREA)
        )
        for unit_id, by_dimension in totals.items()
    }
    return {unit_id: n for unit_id, n in populations.items() if n and n > 0}


def population_weighted_national(values: list[Any], populations: dict[int, float]) -> list[Any]:
    """The engine's values with each national value replaced by the population-weighted mean
    of the unit values: Σ N_u·value_u / Σ N_u over the units with a value for the node.

    Units are independent strata and the populations N_u are known constants, so
    SE = √(Σ (N_u/ΣN)²·SE_u²); it is None if a unit's SE is. The design effect is the
    variance over the same combination of the units' simple-sample variances SE_u²/deff_u
    (None if a unit has none), n_eff = n/deff; the interval is ``scoring.intervals.interval``.
    n, valid and weight_sum stay the pooled ones (they count respondents and answers).
    Every unit with a value must have a population (``KeyError`` otherwise).
    """
    import math
    from dataclasses import replace

    from scoring.intervals import interval

    by_node: dict[int, list[Any]] = defaultdict(list)
    for v in values:
        if v.unit_id is not None and v.value is not None:
            by_node[v.indicator_id].append(v)
    result = []
    for v in values:
        if v.unit_id is not None:
            result.append(v)
            continue
        units = by_node[v.indicator_id]
        total = sum(populations[u.unit_id] for u in units)
        if not units or total <= 0:
            result.append(replace(v, value=None, se=None, ci_low=None, ci_high=None))
            continue
        shares = [(populations[u.unit_id] / total, u) for u in units]
        value = sum(a * u.value for a, u in shares)
        se = deff = n_eff = None
        if all(u.se is not None for _a, u in shares):
            se = math.sqrt(sum((a * u.se) ** 2 for a, u in shares))
            if all(u.deff for _a, u in shares):
                simple = sum(a * a * u.se**2 / u.deff for a, u in shares)
                deff = se**2 / simple if simple > 0 else None
                n_eff = v.n / deff if deff else None
        low, high = interval(value, se, n=v.n, n_eff=n_eff, df=v.df)
        result.append(
            replace(v, value=value, se=se, ci_low=low, ci_high=high, deff=deff, n_eff=n_eff)
        )
    return result


def national_value(
    run: Run, values: list[Any], *, say: Callable[[str], None] = lambda message: None
) -> list[Any]:
    """The run's values with the national rows its round asks for (``settings_used``,
    ``national_value``): pooled over all respondents as the engine computed them, or
    weighted by the units' populations (``population_weighted_national``).

    Weighting by population needs every unit with responses to have margins: otherwise
    ``MissingPopulations`` names them and the run fails (the published run stays), rather
    than publish a national value by another method than the round chose.
    """
    if run.settings_used.get("national_value") != Round.NationalValue.POPULATION:
        return values
    from surveys.models import Unit

    populations = unit_populations(round_id=run.round_id)
    missing = {v.unit_id for v in values if v.unit_id is not None} - set(populations)
    if missing:
        codes = Unit.objects.filter(pk__in=missing).order_by("code").values_list("code", flat=True)
        raise MissingPopulations(
            _(
                "The national value is weighted by population, but these units have responses "
                "and no population margins in this round: %(units)s. Upload their margins or "
                "choose the pooled national value."
            )
            % {"units": ", ".join(codes)}
        )
    say(f"{run.round.code}: national value weighted by the population of {len(populations)} units")
    return population_weighted_national(values, populations)


def store_scores(scores: list[Score]) -> None:
    """Insert a run's scores: by COPY on PostgreSQL (a few thousand rows in milliseconds,
    where ``bulk_create`` spends about a second preparing them), else ``bulk_create``."""
    if connection.vendor != "postgresql":
        Score.objects.bulk_create(scores, batch_size=5000)
        return
    fields = [f for f in Score._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(Score._meta.db_table)

    def plain(value: Any) -> Any:
        return value.item() if hasattr(value, "item") else value  # numpy scalars

    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for score in scores:
            copy.write_row([plain(getattr(score, f.attname)) for f in fields])


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
        if run.round.variance_method == Round.Variance.JACKKNIFE:
            values, run.settings_used["variance"] = replicates.with_jackknife(values, run, say=say)
        values = national_value(run, values, say=say)
        scores = build_scores(run, values, min_n=settings.MIN_PUBLISH_N)
        compare_with_previous(run, scores, say=say)
        by_agency = agency_scores(
            run, min_n=settings.MIN_PUBLISH_N, say=say, weights_run_id=weights_run_id
        )
        withhold_complementary_agencies(run, scores, by_agency)
        scores += by_agency
        # Responses excluded by review count nowhere; the run reports them per unit.
        excluded = excluded_per_unit(round_id=run.round_id)
        response_count = (
            Response.objects.filter(round_id=run.round_id)
            .exclude(review_state=Response.ReviewState.EXCLUDED)
            .count()
        )
        items = set(
            Indicator.objects.filter(
                version=version, aggregation=Indicator.Aggregation.SHARE
            ).values_list("id", flat=True)
        )
        # The valid answers the values rest on: each counts once, in its item's national value.
        answer_count = sum(v.valid for v in values if v.unit_id is None and v.indicator_id in items)
        with transaction.atomic():
            Score.objects.filter(run=run).delete()
            store_scores(scores)
            Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
                status=Run.Status.COMPUTED,
                finished_at=timezone.now(),
                response_count=response_count,
                answer_count=answer_count,
                versions=[{"questionnaire": version.questionnaire.code, "number": version.number}],
                progress=f"{len(scores)} values",
                settings_used={
                    **run.settings_used,
                    **({} if raking_report is None else {"raking": raking_report}),
                    "excluded": {"responses": sum(excluded.values()), "units": excluded},
                },
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
    return compute_and_publish_run(run_id=run.pk, progress=progress)


def compute_and_publish_run(*, run_id: int, progress: Callable[[str], None] | None = None) -> Run:
    """Compute a started run, publish it and prune the round's old runs; a run finished
    already (a repeated task delivery) is returned as is."""
    run = compute_run(run_id=run_id, progress=progress)
    if run.status == Run.Status.COMPUTED:
        run = publish_run(run_id=run_id)
        prune_runs(round_id=run.round_id, keep=settings.SCORING_KEEP_RUNS)
    return run
