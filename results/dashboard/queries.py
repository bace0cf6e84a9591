"""Reads behind the public dashboard: published runs only, a few set-based queries per page.

Every function returns plain data (dataclasses, lists), never a lazy queryset, so a page's
query count is fixed by the calls its view makes. What one published run fully determines
(its ranking on an indicator, a unit's breakdown) and what a published questionnaire version
determines (its indicators) is cached under the run's or version's id: a new published run
has a new id, so it is read afresh at once and nothing stale is served. The trend spans
other rounds' runs and is never cached.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db.models import Q

from results.selectors import follow_series, series_scores, with_children_suppressed
from scoring.models import Run, Score
from surveys.collation import sorted_by_name, vietnamese_key
from surveys.models import Indicator, Round, Unit, UnitLineage, localized

CACHE_SECONDS = 24 * 3600
CACHE_VERSION = 2  # bump when the cached dataclasses change shape


def cached[T](key: str, compute: Callable[[], T]) -> T:
    """``compute()``, kept in the cache under ``dashboard:<key>``."""
    return cache.get_or_set(
        f"dashboard:{key}", compute, timeout=CACHE_SECONDS, version=CACHE_VERSION
    )


@dataclass(frozen=True)
class Choice:
    """An indicator a ranking can be drawn on: the index, a field, an element, a policy group."""

    key: str  # in URLs: the indicator's code, or the policy group's code
    indicator_id: int
    indicator_code: str
    kind: str  # "index", "field", "element" or "policy_group"
    name_vi: str
    name_en: str

    @property
    def name(self) -> str:
        return localized(self, "name")


@dataclass(frozen=True)
class Value:
    """A published value with its precision; ``shown`` is False when it must not be shown."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    rank: int | None = None
    rank_of: int | None = None
    suppressed: bool = False
    change: float | None = None
    change_significant: bool | None = None
    rank_low: int | None = None  # the 95% interval of the rank (issue 13)
    rank_high: int | None = None
    children_suppressed: bool = False  # published over a withheld child

    @property
    def shown(self) -> bool:
        return not self.suppressed and self.value is not None

    @property
    def rank_uncertain(self) -> bool:
        """Whether the rank's 95% interval spans more than one rank."""
        return (
            self.rank_low is not None
            and self.rank_high is not None
            and self.rank_high > self.rank_low
        )

    @classmethod
    def of(cls, score: Score) -> Value:
        hidden = score.suppressed
        return cls(
            value=None if hidden else score.value,
            ci_low=None if hidden else score.ci_low,
            ci_high=None if hidden else score.ci_high,
            n=score.n,
            rank=score.rank,
            rank_of=score.rank_of,
            suppressed=hidden,
            change=None if hidden else score.change,
            change_significant=None if hidden else score.change_significant,
            rank_low=None if hidden else score.rank_low,
            rank_high=None if hidden else score.rank_high,
            children_suppressed=bool(getattr(score, "children_suppressed", False)),
        )


@dataclass(frozen=True)
class RankedUnit:
    code: str
    name: str
    value: Value


@dataclass(frozen=True)
class Ranking:
    """Units of a round on one indicator, best first; suppressed units last, by name."""

    choice: Choice
    rows: list[RankedUnit]
    national: Value | None
    national_mean: float | None

    @property
    def ranks_with_intervals(self) -> bool:
        return any(row.value.rank_low is not None for row in self.rows)

    @property
    def indistinct_from_first(self) -> int | None:
        """The worst rank among units whose 95% rank interval includes first place, if
        that is more than 1: "units ranked 1–k cannot be told apart"; else None."""
        ranks = [
            row.value.rank
            for row in self.rows
            if row.value.shown and row.value.rank is not None and row.value.rank_low == 1
        ]
        worst = max(ranks, default=None)
        return worst if worst is not None and worst > 1 else None


@dataclass(frozen=True)
class BreakdownRow:
    choice: Choice
    unit: Value | None
    national: Value | None


@dataclass(frozen=True)
class TrendPoint:
    round: Round
    unit: Value
    national: Value | None
    series_break: bool = False  # not comparable with the point before (docs/series.md)
    indicator_code: str = ""  # the indicator's code in this round's questionnaire version


@dataclass(frozen=True)
class Lineage:
    """The unit's place in the 2025 merger: what it was made of, what it became."""

    predecessors: list[Unit] = field(default_factory=list)
    successors: list[Unit] = field(default_factory=list)
    effective_on: dt.date | None = None


def published_runs() -> list[Run]:
    """Published runs with their rounds, latest round first (one query)."""
    return list(
        Run.objects.filter(status=Run.Status.PUBLISHED, round__owner_unit__isnull=True)
        .select_related("round")
        .order_by("-round__opens_at", "round__code")
    )


def round_and_published_run(code: str) -> tuple[Round | None, Run | None]:
    """The round and its published run; one query when it has one, two otherwise."""
    run = (
        Run.objects.filter(
            round__code=code, round__owner_unit__isnull=True, status=Run.Status.PUBLISHED
        )
        .select_related("round")
        .first()
    )
    if run is not None:
        return run.round, run
    return Round.objects.filter(code=code, owner_unit__isnull=True).first(), None


def indicator_choices(version_id: int) -> list[Choice]:
    """``indicator_choices_of`` through the cache (a published version never changes)."""
    return cached(f"choices:{version_id}", lambda: indicator_choices_of(version_id))


def indicator_choices_of(version_id: int) -> list[Choice]:
    """The main index, its fields and elements, then one choice per policy group (one query).

    The main index is the first root of the tree (SIPAS); a policy group's value is that of
    the item under the main index that names it (its policy-quality item, e.g. P05 for G1).
    """
    nodes = list(
        Indicator.objects.filter(version_id=version_id)
        .select_related("policy_group")
        .order_by("position", "code")
    )
    roots = [n for n in nodes if n.parent_id is None]
    if not roots:
        return []
    children: dict[int, list[Indicator]] = {}
    for node in nodes:
        children.setdefault(node.parent_id, []).append(node)

    choices: list[Choice] = []
    groups: list[tuple[int, Choice]] = []

    def walk(node: Indicator, depth: int) -> None:
        if depth <= 2 and node.kind != Indicator.Kind.ITEM:
            choices.append(Choice(node.code, node.pk, node.code, node.kind, *_names(node)))
        group = node.policy_group
        if group is not None:
            groups.append(
                (
                    group.position,
                    Choice(group.code, node.pk, node.code, "policy_group", *_names(group)),
                )
            )
        for child in children.get(node.pk, []):
            walk(child, depth + 1)

    walk(roots[0], 0)
    taken = {c.key for c in choices}
    choices += [c for _, c in sorted(groups, key=lambda g: (g[0], g[1].key)) if c.key not in taken]
    return choices


def _names(obj: object) -> tuple[str, str]:
    return obj.name_vi, obj.name_en  # type: ignore[attr-defined]


def ranking(run: Run, choice: Choice) -> Ranking:
    """``ranking_of`` through the cache, under the run's id."""
    return cached(f"ranking:{run.pk}:{choice.key}", lambda: ranking_of(run, choice))


def ranking_of(run: Run, choice: Choice) -> Ranking:
    """The units of the run on one indicator with the national values (one query)."""
    scores = with_children_suppressed(
        Score.objects.filter(
            run=run,
            indicator_id=choice.indicator_id,
            scope__in=[Score.Scope.UNIT, Score.Scope.NATIONAL, Score.Scope.NATIONAL_MEAN],
        )
    ).select_related("unit")
    rows: list[RankedUnit] = []
    national: Value | None = None
    national_mean: float | None = None
    for score in scores:
        if score.scope == Score.Scope.UNIT:
            rows.append(RankedUnit(score.unit.code, score.unit.name, Value.of(score)))
        elif score.scope == Score.Scope.NATIONAL:
            national = Value.of(score)
        else:
            national_mean = score.value
    rows.sort(key=_ranking_order)
    return Ranking(choice, rows, national, national_mean)


def _ranking_order(row: RankedUnit) -> tuple:
    v = row.value
    if v.shown:
        return (0, v.rank if v.rank is not None else 10**6, -(v.value or 0), name_key(row.name))
    return (1, 0, 0, name_key(row.name))


name_key = vietnamese_key  # Vietnamese alphabetical order: letters first, then tones


def unit_by_code(code: str) -> Unit | None:
    return Unit.objects.filter(code=code).first()


def unit_breakdown(run: Run, unit: Unit, choices: list[Choice]) -> list[BreakdownRow]:
    """``unit_breakdown_of`` through the cache, under the run's id."""
    return cached(f"breakdown:{run.pk}:{unit.pk}", lambda: unit_breakdown_of(run, unit, choices))


def unit_breakdown_of(run: Run, unit: Unit, choices: list[Choice]) -> list[BreakdownRow]:
    """The unit's value and the national value on each choice (one query)."""
    scores = with_children_suppressed(
        Score.objects.filter(
            Q(scope=Score.Scope.UNIT, unit=unit) | Q(scope=Score.Scope.NATIONAL),
            run=run,
            indicator_id__in={c.indicator_id for c in choices},
        )
    )
    found: dict[tuple[int, str], Value] = {(s.indicator_id, s.scope): Value.of(s) for s in scores}
    return [
        BreakdownRow(
            c,
            found.get((c.indicator_id, Score.Scope.UNIT)),
            found.get((c.indicator_id, Score.Scope.NATIONAL)),
        )
        for c in choices
    ]


def unit_in_round(run: Run, unit: Unit) -> bool:
    return run.round.units.filter(pk=unit.pk).exists()


def unit_trend(unit: Unit, indicator_code: str) -> list[TrendPoint]:
    """The unit's published values on an indicator code across rounds, oldest first (one
    query while the rounds share a version or the version mappings are cached).

    Rounds of other questionnaire versions count through the version mappings (the codes
    they link, ``results.selectors.follow_series``); a point the mapping does not link to
    the one before is a series break. Only rounds in which the unit itself has a value
    appear.
    """
    scores, links = series_scores(
        with_children_suppressed(
            Score.objects.filter(
                Q(scope=Score.Scope.UNIT, unit=unit) | Q(scope=Score.Scope.NATIONAL),
                run__status=Run.Status.PUBLISHED,
                run__round__owner_unit__isnull=True,
                run__round__units=unit,
            )
        )
        .select_related("run__round", "indicator")
        .order_by("run__round__opens_at", "run__round__code"),
        indicator_code,
        lambda score: score.run.round.version_id,
    )
    by_round: dict[int, tuple[int, dict[str, dict[str, object]]]] = {}
    for score in scores:
        survey_round = score.run.round
        _version, by_code = by_round.setdefault(survey_round.pk, (survey_round.version_id, {}))
        entry = by_code.setdefault(score.indicator.code, {"round": survey_round})
        entry[score.scope] = Value.of(score)
    rounds = [
        (version, {code: e for code, e in by_code.items() if Score.Scope.UNIT in e})
        for version, by_code in by_round.values()
    ]
    return [
        TrendPoint(
            e["round"],  # type: ignore[arg-type]
            e[Score.Scope.UNIT],  # type: ignore[arg-type]
            e.get(Score.Scope.NATIONAL),  # type: ignore[arg-type]
            series_break=broken,
            indicator_code=code,
        )
        for (code, e), broken in follow_series(
            [(version, {c: (c, e) for c, e in by_code.items()}) for version, by_code in rounds],
            indicator_code=indicator_code,
            links=links,
        )
    ]


def unit_lineage(unit: Unit) -> Lineage:
    """Predecessors and successors of the unit through the merger graph (one query)."""
    edges = sorted_by_name(
        UnitLineage.objects.filter(Q(successor=unit) | Q(predecessor=unit)).select_related(
            "predecessor", "successor"
        ),
        lambda e: [e.predecessor.name, e.successor.name],
    )
    return Lineage(
        predecessors=[e.predecessor for e in edges if e.successor_id == unit.pk],
        successors=[e.successor for e in edges if e.predecessor_id == unit.pk],
        effective_on=edges[0].effective_on if edges else None,
    )


def latest_run_covering(code: str) -> Run | None:
    """The published run of the latest round whose units include the unit ``code``."""
    return (
        Run.objects.filter(
            status=Run.Status.PUBLISHED, round__units__code=code, round__owner_unit__isnull=True
        )
        .select_related("round")
        .order_by("-round__opens_at", "round__code")
        .first()
    )
