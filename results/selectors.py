"""Reads of published results: published runs, their scores, rankings, trends, the frame.

Only published runs are public: every score read here goes through a run whose status is
``published``, so a reader sees one run's values or the next one's, never a mix. Only
national rounds are public: a province's local round (``Round.owner_unit``, issue 17) is
left out of every read here (publications, rankings, trends, run lists), its results are
seen by its province's staff and national staff in the admin.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, router
from django.db.models import (
    BooleanField,
    Case,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    When,
)
from django.utils import timezone

from scoring.models import HIDDEN_WHEN_SUPPRESSED, SCORE_FIELDS, Run, Score
from surveys.mapping import COMPARABLE, Links, cached_links, neighbours, series_links
from surveys.models import (
    Indicator,
    Question,
    Round,
    Unit,
    UnitLineage,
    VersionMappingRow,
    localized,
)
from surveys.selectors import open_rounds

PUBLIC_SCOPES = (Score.Scope.UNIT, Score.Scope.NATIONAL)


@dataclass(frozen=True)
class Publication:
    """What a response about a round's results depends on: its published run."""

    run_id: int
    round_id: int
    version_id: int
    published_at: dt.datetime


# Every request for a round's results asks which run is published, so this read is one
# hand-written statement through Django's cursor (seen by query logs and counts); the partial
# unique index scoring_one_published_run_per_round answers it. Served documents rarely run it:
# ``results.publications`` keeps its answers in the process until a publication changes.
PUBLICATION_SQL = f"""
    SELECT run.id, run.round_id, round.version_id, run.published_at
    FROM {Run._meta.db_table} run JOIN {Round._meta.db_table} round ON round.id = run.round_id
    WHERE run.status = %s AND round.owner_unit_id IS NULL {{where}}
    ORDER BY run.published_at, run.id
"""


def _rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    connection = connections[router.db_for_read(Run)]  # the replica, if a results view reads
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def publication(*, round_code: str) -> Publication | None:
    """The published run of the round with this code (one query), or None."""
    sql = PUBLICATION_SQL.format(where="AND round.code = %s")
    rows = _rows(sql, [Run.Status.PUBLISHED.value, round_code])
    return publication_of(rows[0]) if rows else None


def publications() -> list[Publication]:
    """Every round's published run, oldest publication first (one query)."""
    rows = _rows(PUBLICATION_SQL.format(where=""), [Run.Status.PUBLISHED.value])
    return [publication_of(row) for row in rows]


def publication_of(row: tuple[Any, ...]) -> Publication:
    run_id, round_id, version_id, published_at = row
    if timezone.is_naive(published_at):  # SQLite gives the stored UTC time without a zone
        published_at = timezone.make_aware(published_at, dt.UTC)
    return Publication(run_id, round_id, version_id, published_at)


def published_run(round_code: str, *, national: bool = True) -> Run | None:
    """The round's published run with its round and version; a local round's too when
    ``national`` is False (its staff may see it)."""
    runs = Run.objects.filter(round__code=round_code, status=Run.Status.PUBLISHED)
    if national:
        runs = runs.filter(round__owner_unit__isnull=True)
    return runs.select_related("round__version").first()


def round_and_published_run(code: str) -> tuple[Round | None, Run | None]:
    """The national round and its published run; one query when it has one, two otherwise."""
    run = published_run(code)
    if run is not None:
        return run.round, run
    return Round.objects.filter(code=code, owner_unit__isnull=True).first(), None


def published_runs() -> list[Run]:
    """Published runs of national rounds with their rounds, latest round first (one query)."""
    return list(
        Run.objects.filter(status=Run.Status.PUBLISHED, round__owner_unit__isnull=True)
        .select_related("round")
        .order_by("-round__opens_at", "round__code")
    )


def latest_run_covering(code: str) -> Run | None:
    """The published run of the latest national round whose units include the unit ``code``."""
    return (
        Run.objects.filter(
            status=Run.Status.PUBLISHED, round__units__code=code, round__owner_unit__isnull=True
        )
        .select_related("round")
        .order_by("-round__opens_at", "round__code")
        .first()
    )


# --- Scores -----------------------------------------------------------------------------------

# A score row as the results API and the dashboard read it.
SCORE_ROW = ("unit__code", "indicator__code", *SCORE_FIELDS, "run_id", "children_suppressed")


def children_suppressed(*, agency: bool = False) -> ExpressionWrapper:
    """Whether a published score rests on a child whose value is withheld.

    A child of the same run and place (unit, the nation, or with ``agency`` the agency) that
    has a value but is suppressed, for too few respondents or complementarily
    (``scoring.suppression``): derived from the stored rows, so no column holds it.
    """
    place = (
        Q(agency_id=OuterRef("agency_id"))
        if agency
        else Q(unit_id=OuterRef("unit_id")) | Q(unit__isnull=True, scope=Score.Scope.NATIONAL)
    )
    withheld_child = Score.objects.filter(
        place,
        run_id=OuterRef("run_id"),
        scope=OuterRef("scope"),
        indicator__parent_id=OuterRef("indicator_id"),
        suppressed=True,
        value__isnull=False,
    )
    return ExpressionWrapper(
        Exists(withheld_child) & Q(suppressed=False), output_field=BooleanField()
    )


def with_children_suppressed(scores: QuerySet[Score], *, agency: bool = False) -> QuerySet[Score]:
    return scores.annotate(children_suppressed=children_suppressed(agency=agency))


def published_value(
    row: Mapping[str, Any] | None,
    *,
    fields: Sequence[str] = SCORE_FIELDS,
    also_hidden: Sequence[str] = (),
) -> dict[str, Any] | None:
    """A stored score row as published: its ``fields``, whether it is suppressed and rests on
    a withheld child; a suppressed value's figures ``None`` (``HIDDEN_WHEN_SUPPRESSED`` and
    ``also_hidden``, those among ``fields``)."""
    if row is None:
        return None
    found = {f: row[f] for f in fields}
    found["suppressed"] = row["suppressed"]
    found["children_suppressed"] = bool(row.get("children_suppressed"))
    if row["suppressed"]:
        found.update((f, None) for f in (*HIDDEN_WHEN_SUPPRESSED, *also_hidden) if f in found)
    return found


def public_scores(*, run_id: int) -> QuerySet[Score]:
    """Unit and national (pooled) scores of a published run, as rows of ``SCORE_ROW``.

    The national row is the one whose unit is null. Indicator order follows the tree
    (position), units their code, the national value first.
    """
    return (
        with_children_suppressed(Score.objects.filter(run_id=run_id, scope__in=PUBLIC_SCOPES))
        .order_by("indicator__position", "indicator__code", "-scope", "unit__code")
        .values(*SCORE_ROW)
    )


def ranking(*, run_id: int, indicator_code: str) -> dict[str, Any]:
    """The run's scores of one indicator, in one query: ``units``, best first, suppressed last
    by code (their values hidden by the readers); ``national`` and ``national_mean``, the
    national score and the mean of unit values (or None). The national row's ``method`` is
    how the run computed it (its ``settings_used``, ``national_value``)."""
    rows = (
        with_children_suppressed(
            Score.objects.filter(
                run_id=run_id,
                indicator__code=indicator_code,
                scope__in=[Score.Scope.UNIT, Score.Scope.NATIONAL, Score.Scope.NATIONAL_MEAN],
            )
        )
        .order_by(
            "suppressed",
            F("rank").asc(nulls_last=True),
            Case(When(suppressed=False, then="value")).desc(nulls_last=True),
            "unit__code",
        )
        .values("scope", *SCORE_ROW, "unit__name", "run__settings_used")
    )
    found: dict[str, Any] = {"units": [], "national": None, "national_mean": None}
    for row in rows:
        settings_used = row.pop("run__settings_used") or {}
        if row["scope"] == Score.Scope.UNIT:
            found["units"].append(row)
        elif row["scope"] == Score.Scope.NATIONAL:
            found["national"] = row | {"method": settings_used.get("national_value", "pooled")}
        else:
            found["national_mean"] = row
    return found


def unit_and_national_scores(
    *, run_id: int, unit_id: int, indicator_ids: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """The unit's and the national (pooled) scores of the run, of every indicator or of
    ``indicator_ids`` (one query): ``indicator_id``, ``scope``, ``weight_sum`` and the
    score's fields."""
    scores = Score.objects.filter(
        Q(scope=Score.Scope.UNIT, unit_id=unit_id) | Q(scope=Score.Scope.NATIONAL), run_id=run_id
    )
    if indicator_ids is not None:
        scores = scores.filter(indicator_id__in=indicator_ids)
    return list(
        with_children_suppressed(scores).values(
            "indicator_id", "scope", "weight_sum", "children_suppressed", *SCORE_FIELDS
        )
    )


def series_codes(indicator_code: str, links: Links) -> set[str]:
    """The code and every code a version mapping links to it, directly or through others:
    the codes whose scores may belong to its series."""
    codes = {indicator_code}
    while True:
        more = {
            other
            for pairs in links.pairs.values()
            for later, earlier in pairs.items()
            for code, other in ((later, earlier), (earlier, later))
            if code in codes and other not in codes
        }
        if not more:
            return codes
        codes |= more


def series_scores(
    scores: QuerySet[Score], indicator_code: str, version_of: Callable[[Any], int]
) -> tuple[list[Any], Links]:
    """The rows of ``scores`` on the series of ``indicator_code``, and the links that decide
    it; ``version_of`` gives a row's questionnaire version.

    One query in the common case: with the links cached, on every code they link to it;
    otherwise on the code and the codes one mapping row links to it (a subquery), and the
    links are read (and cached) only if the rows span several versions. Should they link
    more codes than that (renamed twice), the scores are read again on all of them.
    """
    links = cached_links()
    if links is not None:
        return list(scores.filter(indicator__code__in=series_codes(indicator_code, links))), links
    linked = VersionMappingRow.objects.filter(
        kind=VersionMappingRow.Kind.INDICATOR, relation__in=COMPARABLE
    )
    rows = list(
        scores.filter(
            Q(indicator__code=indicator_code)
            | Q(indicator__code__in=linked.filter(to_code=indicator_code).values("from_code"))
            | Q(indicator__code__in=linked.filter(from_code=indicator_code).values("to_code"))
        )
    )
    if len({version_of(row) for row in rows}) <= 1:
        return rows, Links({}, "")  # one version: every code is itself
    links = series_links()
    codes = series_codes(indicator_code, links)
    if codes != neighbours(indicator_code, links):
        rows = list(scores.filter(indicator__code__in=codes))
    return rows, links


def follow_series[T](
    rounds: list[tuple[int, dict[str, T]]], *, indicator_code: str, links: Links
) -> list[tuple[T, bool]]:
    """The points of a series and whether each is a break: ``rounds`` oldest first, each
    its version and its entries by indicator code.

    From the newest round back, each round's code is the one the version mapping links to
    the code of the point after it (the same code within one version); a round where none
    is linked takes the same code if it has it, and the later point is then a series break
    (``True``): it cannot be compared with the one before. Oldest first.
    """
    chosen: list[list[Any]] = []
    last: tuple[int, str] | None = None  # version and code of the point after
    for version, by_code in reversed(rounds):
        earlier: str | None = None
        if last is None:
            code = indicator_code
        else:
            earlier = links.earlier_code(earlier=version, later=last[0], code=last[1])
            code = earlier if earlier is not None else last[1]
        entry = by_code.get(code)
        if entry is None:
            continue
        if chosen:
            chosen[-1][1] = earlier is None
        chosen.append([entry, False])
        last = (version, code)
    return [(entry, broken) for entry, broken in reversed(chosen)]


def unit_trend(
    *, unit_id: int, indicator_code: str, national: bool = False
) -> list[dict[str, Any]]:
    """The unit's score of one indicator in every national round with a published run, oldest
    first (one query while the rounds share a version or the version mappings are cached).

    Rounds of other questionnaire versions count through the version mappings
    (``follow_series``): each point carries the code it has in its round (``indicator__code``)
    and ``series_break``, true when it cannot be compared with the point before. With
    ``national``, each point also carries the national score of its round (``national``,
    None when there is none), read in the same query from the rounds covering the unit.
    """
    place = Q(scope=Score.Scope.UNIT, unit_id=unit_id)
    if national:
        covering = Round.units.through.objects.filter(
            round_id=OuterRef("run__round_id"), unit_id=unit_id
        )
        place |= Q(scope=Score.Scope.NATIONAL) & Q(Exists(covering))
    rows, links = series_scores(
        with_children_suppressed(
            Score.objects.filter(
                place, run__status=Run.Status.PUBLISHED, run__round__owner_unit__isnull=True
            )
        )
        .order_by("run__round__period_start", "run__round__code")
        .values(
            "scope",
            *SCORE_ROW,
            "run__round__code",
            "run__round__name_vi",
            "run__round__name_en",
            "run__round__period_start",
            "run__round__period_end",
            "run__round__version_id",
            "run__published_at",
        ),
        indicator_code,
        lambda row: row["run__round__version_id"],
    )
    rounds: dict[int, tuple[int, dict[str, dict[str, Any]]]] = {}
    nationals: dict[tuple[int, str], dict[str, Any]] = {}
    for row in rows:
        if row["scope"] == Score.Scope.NATIONAL:
            nationals[row["run_id"], row["indicator__code"]] = row
            continue
        _version, by_code = rounds.setdefault(row["run_id"], (row["run__round__version_id"], {}))
        by_code[row["indicator__code"]] = row
    points = follow_series(list(rounds.values()), indicator_code=indicator_code, links=links)
    return [
        {
            **row,
            "series_break": broken,
            "national": nationals.get((row["run_id"], row["indicator__code"])),
        }
        for row, broken in points
    ]


def indicator_code_exists(code: str, *, version_id: int | None = None) -> bool:
    """Whether any indicator (of the version, if given) has this code."""
    indicators = Indicator.objects.filter(code=code)
    if version_id is not None:
        indicators = indicators.filter(version_id=version_id)
    return indicators.exists()


# --- The frame: units, rounds, indicators, runs ---------------------------------------------


def lineage_of(*, unit_ids: list[int]) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """Each unit's predecessors and successors (code, name, effective date), by code, in one
    query."""
    found: dict[int, dict[str, list[dict[str, Any]]]] = {
        pk: {"predecessors": [], "successors": []} for pk in unit_ids
    }
    edges = (
        UnitLineage.objects.filter(Q(successor_id__in=unit_ids) | Q(predecessor_id__in=unit_ids))
        .order_by("predecessor__code", "successor__code")
        .values_list(
            "predecessor_id",
            "predecessor__code",
            "predecessor__name",
            "successor_id",
            "successor__code",
            "successor__name",
            "effective_on",
        )
    )
    for predecessor, p_code, p_name, successor, s_code, s_name, day in edges:
        if successor in found:
            found[successor]["predecessors"].append(
                {"code": p_code, "name": p_name, "effective_on": day}
            )
        if predecessor in found:
            found[predecessor]["successors"].append(
                {"code": s_code, "name": s_name, "effective_on": day}
            )
    return found


def unit_lineage(*, unit_id: int) -> dict[str, list[dict[str, Any]]]:
    return lineage_of(unit_ids=[unit_id])[unit_id]


def round_by_code(code: str) -> Round | None:
    """A national round (local rounds are not public results), or None."""
    return (
        Round.objects.select_related("version__questionnaire")
        .filter(code=code, owner_unit__isnull=True)
        .first()
    )


def unit_by_code(code: str) -> Unit | None:
    return Unit.objects.filter(code=code).first()


def round_covers(run: Run, unit: Unit) -> bool:
    """Whether the run's round covers the unit."""
    return run.round.units.filter(pk=unit.pk).exists()


def unit_in_round(run: Run, unit_code: str) -> Unit | None:
    """The unit with this code when the run's round covers it (or it has a value there)."""
    unit = unit_by_code(unit_code)
    if unit is None:
        return None
    covered = (
        round_covers(run, unit)
        or Score.objects.filter(run=run, unit=unit, scope=Score.Scope.UNIT).exists()
    )
    return unit if covered else None


# --- The indicator tree -----------------------------------------------------------------------


@dataclass(frozen=True)
class TreeNode:
    """An indicator of a version's tree with its place: its parent's and its root's code."""

    indicator: Indicator
    parent: str | None
    root: str
    depth: int


def indicator_nodes(version_id: int) -> list[TreeNode]:
    """The version's indicators depth-first, roots and siblings in their order (one query)."""
    nodes = (
        Indicator.objects.filter(version_id=version_id)
        .select_related("policy_group")
        .order_by("position", "code")
    )
    children: dict[int | None, list[Indicator]] = defaultdict(list)
    for node in nodes:
        children[node.parent_id].append(node)
    found: list[TreeNode] = []

    def walk(node: Indicator, parent: str | None, root: str, depth: int) -> None:
        found.append(TreeNode(node, parent, root, depth))
        for child in children[node.pk]:
            walk(child, node.code, root, depth + 1)

    for root in children[None]:
        walk(root, None, root.code, 0)
    return found


def _value_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def indicator_tree(*, version_id: int) -> list[dict[str, Any]]:
    """The version's indicator nodes depth-first, each with the questions under it.

    ``questions`` lists the codes of every question feeding the node or a node below it, in
    questionnaire order; ``satisfied_values`` the answer values those questions count as
    satisfied. Two queries, whatever the tree's size.
    """
    nodes = indicator_nodes(version_id)
    questions = (
        Question.objects.filter(version_id=version_id, indicator__isnull=False)
        .order_by("section__position", "position", "id")
        .values_list("code", "indicator_id", "satisfied_values")
    )
    fed: dict[int | None, list[tuple[str, list[Any]]]] = defaultdict(list)
    for code, indicator_id, satisfied in questions:
        fed[indicator_id].append((code, satisfied or []))
    under: dict[int, list[tuple[str, list[Any]]]] = {}
    for tree_node in reversed(nodes):  # children before their parent, each in its order
        node = tree_node.indicator
        under[node.pk] = fed[node.pk] + under.get(node.pk, [])
        if node.parent_id is not None:
            under[node.parent_id] = under[node.pk] + under.get(node.parent_id, [])
    found = []
    for tree_node in nodes:
        node = tree_node.indicator
        values: dict[str, Any] = {}
        for _code, satisfied in under[node.pk]:
            values.update((_value_key(v), v) for v in satisfied)
        found.append(
            {
                "code": node.code,
                "name": {"vi": node.name_vi, "en": node.name_en},
                "kind": node.kind,
                "parent": tree_node.parent,
                "aggregation": node.aggregation,
                "weight": node.weight,
                "policy_group": node.policy_group.code if node.policy_group else None,
                "satisfied_values": [values[k] for k in sorted(values)],
                "questions": [code for code, _satisfied in under[node.pk]],
            }
        )
    return found


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


def indicator_choices(version_id: int) -> list[Choice]:
    """The main index, its fields and elements, then one choice per policy group (one query).

    The main index is the first root of the tree (SIPAS); a policy group's value is that of
    the item under the main index that names it (its policy-quality item, e.g. P05 for G1).
    """
    nodes = indicator_nodes(version_id)
    if not nodes:
        return []
    choices: list[Choice] = []
    groups: list[tuple[int, Choice]] = []
    for tree_node in nodes:
        node = tree_node.indicator
        if tree_node.root != nodes[0].root:
            break  # depth-first: the main index's tree comes first
        if tree_node.depth <= 2 and node.kind != Indicator.Kind.ITEM:
            choices.append(
                Choice(node.code, node.pk, node.code, node.kind, node.name_vi, node.name_en)
            )
        if (group := node.policy_group) is not None:
            choice = Choice(
                group.code, node.pk, node.code, "policy_group", group.name_vi, group.name_en
            )
            groups.append((group.position, choice))
    taken = {c.key for c in choices}
    choices += [c for _, c in sorted(groups, key=lambda g: (g[0], g[1].key)) if c.key not in taken]
    return choices


def runs() -> QuerySet[Run]:
    """Scoring runs of every round, newest first, with their round."""
    return (
        Run.objects.filter(round__owner_unit__isnull=True)
        .select_related("round")
        .order_by("-started_at", "-id")
    )


def with_published_run(rounds: QuerySet[Round]) -> QuerySet[Round]:
    """Rounds annotated with their published run (``published_run_id``, ``published_run_at``);
    a local round's results are not public: none."""
    published = Run.objects.filter(
        round=OuterRef("pk"), status=Run.Status.PUBLISHED, round__owner_unit__isnull=True
    )
    return rounds.annotate(
        published_run_id=Subquery(published.values("pk")[:1]),
        published_run_at=Subquery(published.values("published_at")[:1]),
    )


def rounds(*, state: str) -> QuerySet[Round]:
    """Rounds open now (``open``), with published results (``published``) or all (``all``).

    Open rounds include a province's local rounds (its citizens answer them, through apps
    too); the other states are about results, and list national rounds only.
    """
    if state == "open":
        chosen = open_rounds()
    else:
        chosen = (
            Round.objects.filter(owner_unit__isnull=True)
            .select_related("version__questionnaire")
            .order_by("-opens_at", "code")
        )
    chosen = with_published_run(chosen)
    if state == "published":
        chosen = chosen.filter(published_run_id__isnull=False)
    return chosen.prefetch_related("units")
