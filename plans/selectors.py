"""Reads of action plans: what an account may see and do (one scope, ``tasks_visible_to``,
used by every view and export), and each task beside its indicator's values in the round
that motivated it and the rounds after ("did it move?")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from plans.models import PlanStaff, Task, TaskNote
from scoring.models import Run, Score
from scoring.ranking import edge_size
from scoring.services import change_p_value, change_se
from surveys.mapping import Links, series_links
from surveys.models import Agency, Indicator, ProvinceStaff, Round, Unit, UnitLineage

VIEW_ALL = "plans.view_all_tasks"
ADD = "plans.add_task"
CHANGE = "plans.change_task"
# One pre-stated comparison per task (motivating round → later round): a plain two-sided
# test at 5%, no correction over units as in the published change (which tests all units).
ALPHA = 0.05

type User = AbstractBaseUser | AnonymousUser


def _active(user: User) -> bool:
    return bool(user.is_authenticated and user.is_active)


def _desks(user: User) -> QuerySet[PlanStaff]:
    return PlanStaff.objects.filter(user_id=user.pk)


def _coordinated_unit_ids(user: User) -> set[int]:
    """Units whose whole plan ``user`` coordinates: a ``PlanStaff`` row without agency, or
    the province the account is staff of (``surveys.ProvinceStaff``: a province's staff
    coordinate its plans)."""
    units = set(_desks(user).filter(agency__isnull=True).values_list("unit", flat=True))
    units.update(ProvinceStaff.objects.filter(user_id=user.pk).values_list("unit", flat=True))
    return units


def sees_every_plan(user: User) -> bool:
    return _active(user) and (user.is_superuser or user.has_perm(VIEW_ALL))


def tasks_visible_to(user: User) -> QuerySet[Task]:
    """Every task ``user`` may see: all for superusers and ``plans.view_all_tasks``; else
    the tasks of the agencies it is staff of, of the units it coordinates, and its own.

    Anonymous and inactive accounts see nothing. Every plan page, task page, evidence file
    and export reads through this scope.
    """
    if not _active(user):
        return Task.objects.none()
    if sees_every_plan(user):
        return Task.objects.all()
    desks = _desks(user)
    return Task.objects.filter(
        Q(agency__in=desks.filter(agency__isnull=False).values("agency"))
        | Q(unit__in=_coordinated_unit_ids(user))
        | Q(owner_id=user.pk)
    )


def coordinated_units(user: User) -> QuerySet[Unit]:
    """Units ``user`` may create tasks for: needs ``plans.add_task``, and coordinates the unit
    (a ``PlanStaff`` row without agency) unless it sees every plan."""
    if not _active(user) or not (user.is_superuser or user.has_perm(ADD)):
        return Unit.objects.none()
    if sees_every_plan(user):
        return Unit.objects.all()
    return Unit.objects.filter(pk__in=_coordinated_unit_ids(user))


def can_plan_for(user: User, unit: Unit) -> bool:
    return coordinated_units(user).filter(pk=unit.pk).exists()


def can_update(user: User, task: Task) -> bool:
    """Whether ``user`` may change the task's status and add notes: its owner, staff of its
    agency, coordinators of its unit, and (seeing every plan) holders of ``plans.change_task``."""
    if not _active(user):
        return False
    if user.is_superuser or (user.has_perm(CHANGE) and sees_every_plan(user)):
        return True
    if task.owner_id == user.pk:
        return True
    return _desks(user).filter(
        agency_id=task.agency_id
    ).exists() or task.unit_id in _coordinated_unit_ids(user)


def possible_owners(*, agency: Agency) -> QuerySet[Any]:
    """Active accounts that may own a task of ``agency``: its staff and its unit's coordinators."""
    desks = PlanStaff.objects.filter(
        Q(agency=agency) | Q(agency__isnull=True, unit_id=agency.unit_id)
    )
    province = ProvinceStaff.objects.filter(unit_id=agency.unit_id)
    return (
        get_user_model()
        .objects.filter(
            Q(pk__in=desks.values("user")) | Q(pk__in=province.values("user")), is_active=True
        )
        .order_by("username")
    )


def plans_visible_to(user: User) -> list[dict[str, Any]]:
    """The plans (round × unit) holding tasks ``user`` sees, with counts by status."""
    rows = (
        tasks_visible_to(user)
        .values("round__code", "round__name_vi", "round__name_en", "unit__code", "unit__name",
                "status")
        .order_by("-round__period_start", "unit__code")
    )  # fmt: skip
    plans: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["round__code"], row["unit__code"])
        plan = plans.setdefault(
            key,
            {
                "round": row["round__code"],
                "round_name": row["round__name_vi"],
                "unit": row["unit__code"],
                "unit_name": row["unit__name"],
                "counts": defaultdict(int),
                "total": 0,
            },
        )
        plan["counts"][row["status"]] += 1
        plan["total"] += 1
    return list(plans.values())


def notes_of(task: Task) -> QuerySet[TaskNote]:
    return task.notes.select_related("author").order_by("created_at", "pk")


# --- Did it move? ------------------------------------------------------------------------


@dataclass
class Reading:
    """The indicator of a task in one round: the unit's value beside the national value,
    and (rounds after the motivating one) the change since it and its significance."""

    round_code: str
    round_name: str
    unit_code: str  # the task's unit, or its successor after a merger
    through_lineage: bool
    published: bool
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    suppressed: bool = False
    national: float | None = None
    gap: float | None = None  # value − national value
    change: float | None = None  # value − value in the motivating round
    change_p: float | None = None
    change_significant: bool | None = None
    target_met: bool | None = None
    motivating: bool = False
    # The round's questionnaire version has no equivalent of the task's indicator (the
    # version mapping says none, or there is no mapping): nothing is compared.
    series_break: bool = False


def later_rounds(survey_round: Round) -> list[Round]:
    """The round and the later rounds of the same questionnaire, oldest first; national
    rounds follow a national round, a province's local rounds its local round."""
    return list(
        Round.objects.filter(
            version__questionnaire_id=survey_round.version.questionnaire_id,
            owner_unit_id=survey_round.owner_unit_id,
            period_start__gte=survey_round.period_start,
        )
        .filter(Q(pk=survey_round.pk) | Q(period_start__gt=survey_round.period_start))
        .order_by("period_start", "code")
    )


def _successors(unit_ids: Iterable[int]) -> dict[int, list[int]]:
    """Each unit's successors, following the lineage through later mergers too."""
    edges: dict[int, list[int]] = defaultdict(list)
    for predecessor, successor in UnitLineage.objects.values_list("predecessor_id", "successor_id"):
        edges[predecessor].append(successor)
    found: dict[int, list[int]] = {}
    for unit in unit_ids:
        chain, frontier = [], list(edges.get(unit, []))
        while frontier:
            nxt = frontier.pop(0)
            if nxt not in chain:
                chain.append(nxt)
                frontier.extend(edges.get(nxt, []))
        found[unit] = chain
    return found


def progress(tasks: list[Task]) -> dict[int, list[Reading]]:
    """Each task's readings: its motivating round, then every later round of the same
    questionnaire, from their published runs (a round without one is listed as such).

    A later round that does not cover the task's unit reads its successor (the 2025 merger):
    the change then compares the merged province with the one the task was made for. The
    change's p-value is the scoring engine's (``scoring.services.change_p_value`` on
    ``change_se``), significant below ``ALPHA``. Suppressed values give no figures.
    """
    if not tasks:
        return {}
    base_rounds = {task.round_id: task.round for task in tasks}
    rounds_after = {pk: later_rounds(r) for pk, r in base_rounds.items()}
    round_ids = {r.pk for chain in rounds_after.values() for r in chain}
    published = dict(
        Run.objects.filter(round_id__in=round_ids, status=Run.Status.PUBLISHED).values_list(
            "round_id", "pk"
        )
    )
    successors = _successors({task.unit_id for task in tasks})
    unit_ids = {task.unit_id for task in tasks} | {u for c in successors.values() for u in c}
    # The task's indicator as coded in each round (another questionnaire version: through the
    # version mapping, as changes and trends are; None: no equivalent, a series break).
    spans_versions = any(
        r.version_id != task.round.version_id for task in tasks for r in rounds_after[task.round_id]
    )
    links = series_links() if spans_versions else None
    code_of = {
        (task.pk, r.pk): code_in_version(
            links, base=task.round.version_id, version=r.version_id, code=task.indicator_code
        )
        for task in tasks
        for r in rounds_after[task.round_id]
    }
    codes = {code for code in code_of.values() if code is not None}
    scores = Score.objects.filter(
        Q(scope=Score.Scope.UNIT, unit_id__in=unit_ids) | Q(scope=Score.Scope.NATIONAL),
        run_id__in=published.values(),
        indicator__code__in=codes,
    ).values("run_id", "scope", "unit_id", "indicator__code", "value", "se", "n", "n_eff",
             "ci_low", "ci_high", "suppressed")  # fmt: skip
    by_key: dict[tuple[int, str, int | None], dict[str, Any]] = {}
    for row in scores:
        unit = row["unit_id"] if row["scope"] == Score.Scope.UNIT else None
        by_key[(row["run_id"], row["indicator__code"], unit)] = row
    unit_codes = dict(Unit.objects.filter(pk__in=unit_ids).values_list("pk", "code"))
    readings: dict[int, list[Reading]] = {}
    for task in tasks:
        chain: list[Reading] = []
        base: dict[str, Any] | None = None
        for survey_round in rounds_after[task.round_id]:
            motivating = survey_round.pk == task.round_id
            run_id = published.get(survey_round.pk)
            code = code_of[task.pk, survey_round.pk]
            unit_id, through = task.unit_id, False
            if run_id is not None and code and (run_id, code, unit_id) not in by_key:
                for successor in successors[task.unit_id]:
                    if (run_id, code, successor) in by_key:
                        unit_id, through = successor, True
                        break
            reading = Reading(
                round_code=survey_round.code,
                round_name=survey_round.name_vi,
                unit_code=unit_codes[unit_id],
                through_lineage=through,
                published=run_id is not None,
                motivating=motivating,
                series_break=code is None,
            )
            row = by_key.get((run_id, code, unit_id)) if run_id and code else None
            national = by_key.get((run_id, code, None)) if run_id and code else None
            if national and not national["suppressed"]:
                reading.national = national["value"]
            if row is not None:
                reading.n = row["n"]
                reading.suppressed = row["suppressed"]
            if row is not None and not row["suppressed"] and row["value"] is not None:
                reading.value, reading.ci_low, reading.ci_high = (
                    row["value"],
                    row["ci_low"],
                    row["ci_high"],
                )
                if reading.national is not None:
                    reading.gap = reading.value - reading.national
                if motivating:
                    base = row
                elif base is not None:
                    reading.change = row["value"] - base["value"]
                    reading.change_p = change_p_value(
                        reading.change,
                        change_se(row["value"], row["se"], edge_size(row["n"], row["n_eff"])),
                        change_se(base["value"], base["se"], edge_size(base["n"], base["n_eff"])),
                    )
                    if reading.change_p is not None:
                        reading.change_significant = reading.change_p < ALPHA
                reading.target_met = target_met(task, reading)
            chain.append(reading)
        readings[task.pk] = chain
    return readings


def code_in_version(links: Links | None, *, base: int, version: int, code: str) -> str | None:
    """The code in ``version`` of indicator ``code`` of version ``base``: the same within one
    version, else the one the version mapping links to it (``same`` or ``reworded``), else
    None (``none``, or no mapping: not comparable)."""
    if version == base:
        return code
    if links is None:
        return None
    forward = links.pairs.get((base, version))
    if forward is not None:  # pairs[(from, to)][to_code] = from_code
        return next((later for later, earlier in forward.items() if earlier == code), None)
    return links.pairs.get((version, base), {}).get(code)


def target_met(task: Task, reading: Reading) -> bool | None:
    """Whether the reading meets the task's target (on the point estimates); ``None`` when
    it cannot say (no value, no national value, or no change in the motivating round)."""
    kind = Task.TargetKind
    if reading.value is None:
        return None
    if task.target_kind == kind.ABOVE_NATIONAL:
        return None if reading.national is None else reading.value > reading.national
    if task.target_kind == kind.AT_LEAST:
        return None if task.target_value is None else reading.value >= task.target_value
    if task.target_kind == kind.RAISE_BY:
        if reading.motivating or reading.change is None or task.target_value is None:
            return None
        return reading.change >= task.target_value
    return None


def indicator_names(*, version_id: int, codes: Iterable[str]) -> dict[str, Indicator]:
    return {
        indicator.code: indicator
        for indicator in Indicator.objects.filter(version_id=version_id, code__in=set(codes))
    }


def plan_of(user: User, *, round_code: str, unit_code: str) -> dict[str, Any] | None:
    """The plan of a unit for a round as ``user`` sees it: its tasks (within the scope), each
    with its readings and notes; ``None`` when the round or unit is unknown, or the account
    neither sees a task of it nor may plan for the unit."""
    survey_round = Round.objects.select_related("version").filter(code=round_code).first()
    unit = Unit.objects.filter(code=unit_code).first()
    if survey_round is None or unit is None:
        return None
    tasks = list(
        tasks_visible_to(user)
        .filter(round=survey_round, unit=unit)
        .select_related("round__version", "agency", "owner", "unit")
        .order_by("indicator_code", "deadline", "pk")
    )
    may_plan = can_plan_for(user, unit) and survey_round.units.filter(pk=unit.pk).exists()
    if not tasks and not may_plan:
        return None
    readings = progress(tasks)
    notes: dict[int, list[TaskNote]] = defaultdict(list)
    for note in TaskNote.objects.filter(task__in=tasks).select_related("author"):
        notes[note.task_id].append(note)
    names = indicator_names(
        version_id=survey_round.version_id, codes=[task.indicator_code for task in tasks]
    )
    return {
        "round": survey_round,
        "unit": unit,
        "may_plan": may_plan,
        "rows": [
            {
                "task": task,
                "indicator": names.get(task.indicator_code),
                "readings": readings[task.pk],
                "notes": notes[task.pk],
            }
            for task in tasks
        ],
    }
