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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
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

from scoring.models import Run, Score
from surveys.mapping import COMPARABLE, Links, cached_links, neighbours, series_links
from surveys.models import Indicator, Question, Round, UnitLineage, VersionMappingRow
from surveys.selectors import open_rounds

PUBLIC_SCOPES = (Score.Scope.UNIT, Score.Scope.NATIONAL)


@dataclass(frozen=True)
class Publication:
    """What a response about a round's results depends on: its published run."""

    run_id: int
    round_id: int
    version_id: int
    published_at: dt.datetime


# Every request for a round's results asks which run is published, so this read is
# hand-written SQL (the partial unique index scoring_one_published_run_per_round answers it).
# On PostgreSQL with persistent connections it runs as a server-side prepared statement,
# parsed and planned once per connection: measured 0.03 ms a query, against 0.13 ms through
# Django's cursor (client-side binding) and more through the ORM, which is most of what a
# cached result document costs.
PUBLICATION_SQL = """
    SELECT run.id, run.round_id, round.version_id, run.published_at
    FROM scoring_run run JOIN surveys_round round ON round.id = run.round_id
    WHERE run.status = %s AND round.owner_unit_id IS NULL {where}
    ORDER BY run.published_at, run.id
"""


def _rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    connection = connections[router.db_for_read(Run)]  # the replica, if a results view reads
    if connection.vendor == "postgresql" and connection.settings_dict.get("CONN_MAX_AGE"):
        connection.ensure_connection()
        raw = connection.connection
        if raw.prepare_threshold is None:
            # Django switches psycopg's statement preparation off; ``prepare=True`` needs it
            # on. Django's own cursors bind parameters client-side and are never prepared.
            raw.prepare_threshold = 5
        with psycopg.Cursor(raw) as cursor:
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchall()
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


# --- Scores -----------------------------------------------------------------------------------

SCORE_FIELDS = (
    "unit__code",
    "indicator__code",
    "value",
    "n",
    "valid",
    "se",
    "ci_low",
    "ci_high",
    "rank",
    "rank_of",
    "suppressed",
    "run_id",
    # issue 13: precision, rank interval, change
    "deff",
    "n_eff",
    "rank_low",
    "rank_high",
    "change",
    "change_p",
    "change_significant",
    "children_suppressed",  # annotated: see children_suppressed()
)


def children_suppressed() -> ExpressionWrapper:
    """Whether a published score rests on a child whose value is withheld.

    A child of the same run and place (unit, or the nation) that has a value but is
    suppressed, for too few respondents or complementarily (``scoring.suppression``):
    derived from the stored rows, so no column holds it.
    """
    withheld_child = Score.objects.filter(
        Q(unit_id=OuterRef("unit_id")) | Q(unit__isnull=True, scope=Score.Scope.NATIONAL),
        run_id=OuterRef("run_id"),
        scope=OuterRef("scope"),
        indicator__parent_id=OuterRef("indicator_id"),
        suppressed=True,
        value__isnull=False,
    )
    return ExpressionWrapper(
        Exists(withheld_child) & Q(suppressed=False), output_field=BooleanField()
    )


def with_children_suppressed(scores: QuerySet[Score]) -> QuerySet[Score]:
    return scores.annotate(children_suppressed=children_suppressed())


def public_scores(*, run_id: int) -> QuerySet[Score]:
    """Unit and national (pooled) scores of a published run, as rows of ``SCORE_FIELDS``.

    The national row is the one whose unit is null. Indicator order follows the tree
    (position), units their code, the national value first.
    """
    return (
        with_children_suppressed(Score.objects.filter(run_id=run_id, scope__in=PUBLIC_SCOPES))
        .order_by("indicator__position", "indicator__code", "-scope", "unit__code")
        .values(*SCORE_FIELDS)
    )


def ranking(*, run_id: int, indicator_code: str) -> list[dict[str, Any]]:
    """Unit scores of one indicator, best first; suppressed last, by code (their values hidden)."""
    return list(
        with_children_suppressed(
            Score.objects.filter(
                run_id=run_id, scope=Score.Scope.UNIT, indicator__code=indicator_code
            )
        )
        .order_by(
            "suppressed",
            F("rank").asc(nulls_last=True),
            Case(When(suppressed=False, then="value")).desc(nulls_last=True),
            "unit__code",
        )
        .values(*SCORE_FIELDS, "unit__name")
    )


def national_values(*, run_id: int, indicator_code: str) -> dict[str, dict[str, Any]]:
    """The national score and the mean of unit values, keyed by scope. The national row's
    ``method`` is how the run computed it (its ``settings_used``, ``national_value``)."""
    rows = with_children_suppressed(
        Score.objects.filter(
            run_id=run_id,
            indicator__code=indicator_code,
            scope__in=[Score.Scope.NATIONAL, Score.Scope.NATIONAL_MEAN],
        )
    ).values("scope", *SCORE_FIELDS, "run__settings_used")
    found = {row["scope"]: row for row in rows}
    for row in found.values():
        row["method"] = (row.pop("run__settings_used") or {}).get("national_value", "pooled")
    return found


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


def unit_trend(*, unit_id: int, indicator_code: str) -> list[dict[str, Any]]:
    """The unit's score of one indicator in every round with a published run, oldest first.

    Rounds of other questionnaire versions count through the version mappings
    (``follow_series``): each point carries the code it has in its round (``indicator__code``)
    and ``series_break``, true when it cannot be compared with the point before.
    """
    rows, links = series_scores(
        with_children_suppressed(
            Score.objects.filter(
                run__status=Run.Status.PUBLISHED,
                run__round__owner_unit__isnull=True,
                scope=Score.Scope.UNIT,
                unit_id=unit_id,
            )
        )
        .order_by("run__round__period_start", "run__round__code")
        .values(
            *SCORE_FIELDS,
            "run__round__code",
            "run__round__period_start",
            "run__round__period_end",
            "run__round__version_id",
            "run__published_at",
        ),
        indicator_code,
        lambda row: row["run__round__version_id"],
    )
    rounds: dict[int, tuple[int, dict[str, dict[str, Any]]]] = {}
    for row in rows:
        _version, by_code = rounds.setdefault(row["run_id"], (row["run__round__version_id"], {}))
        by_code[row["indicator__code"]] = row
    points = follow_series(list(rounds.values()), indicator_code=indicator_code, links=links)
    return [{**row, "series_break": broken} for row, broken in points]


def indicator_code_exists(code: str, *, version_id: int | None = None) -> bool:
    """Whether any indicator (of the version, if given) has this code."""
    indicators = Indicator.objects.filter(code=code)
    if version_id is not None:
        indicators = indicators.filter(version_id=version_id)
    return indicators.exists()


# --- The frame: units, rounds, indicators, runs ---------------------------------------------


def lineage_of(*, unit_ids: list[int]) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """Each unit's predecessors and successors (code, effective date), in one query."""
    found: dict[int, dict[str, list[dict[str, Any]]]] = {
        pk: {"predecessors": [], "successors": []} for pk in unit_ids
    }
    edges = (
        UnitLineage.objects.filter(Q(successor_id__in=unit_ids) | Q(predecessor_id__in=unit_ids))
        .order_by("predecessor__code", "successor__code")
        .values_list(
            "predecessor_id", "predecessor__code", "successor_id", "successor__code", "effective_on"
        )
    )
    for predecessor, predecessor_code, successor, successor_code, day in edges:
        if successor in found:
            found[successor]["predecessors"].append({"code": predecessor_code, "effective_on": day})
        if predecessor in found:
            found[predecessor]["successors"].append({"code": successor_code, "effective_on": day})
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


def _value_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def indicator_tree(*, version_id: int) -> list[dict[str, Any]]:
    """The version's indicator nodes depth-first, each with the questions under it.

    ``questions`` lists the codes of every question feeding the node or a node below it, in
    questionnaire order; ``satisfied_values`` the answer values those questions count as
    satisfied. Two queries, whatever the tree's size.
    """
    nodes = list(
        Indicator.objects.filter(version_id=version_id)
        .select_related("policy_group")
        .order_by("position", "code")
    )
    questions = (
        Question.objects.filter(version_id=version_id, indicator__isnull=False)
        .order_by("section__position", "position", "id")
        .values_list("code", "indicator_id", "satisfied_values")
    )
    own: dict[int, list[tuple[str, list[Any]]]] = defaultdict(list)
    for code, indicator_id, satisfied in questions:
        own[indicator_id].append((code, satisfied or []))
    children: dict[int | None, list[Indicator]] = defaultdict(list)
    for node in nodes:
        children[node.parent_id].append(node)

    def under(node: Indicator) -> list[tuple[str, list[Any]]]:
        found = list(own[node.pk])
        for child in children[node.pk]:
            found += under(child)
        return found

    def walk(parent_id: int | None, parent_code: str | None) -> Iterator[dict[str, Any]]:
        for node in children[parent_id]:
            fed = under(node)
            values: dict[str, Any] = {}
            for _code, satisfied in fed:
                values.update((_value_key(v), v) for v in satisfied)
            yield {
                "code": node.code,
                "name": {"vi": node.name_vi, "en": node.name_en},
                "kind": node.kind,
                "parent": parent_code,
                "aggregation": node.aggregation,
                "weight": node.weight,
                "policy_group": node.policy_group.code if node.policy_group else None,
                "satisfied_values": [values[k] for k in sorted(values)],
                "questions": [code for code, _satisfied in fed],
            }
            yield from walk(node.pk, node.code)

    return list(walk(None, None))


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
