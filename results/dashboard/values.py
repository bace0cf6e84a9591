"""The published values as the dashboard's pages show them.

``results.selectors`` reads the rows; this module turns them into the small dataclasses the
templates and figures use (``Value`` withholds what a suppressed value must not show) and
keeps what one published run fully determines (its ranking on an indicator, a unit's
breakdown) and what a published questionnaire version determines (its indicator choices) in
the results cache (``results.cache``). The trend spans other rounds' runs and is not cached.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from results import selectors
from results.cache import published_run_key, remember, run_key
from results.selectors import Choice
from scoring.models import Run, Score
from surveys.collation import sorted_by_name, vietnamese_key
from surveys.models import Unit

name_key = vietnamese_key  # Vietnamese alphabetical order: letters first, then tones


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
    def of(cls, row: Mapping[str, Any] | None) -> Value | None:
        """A score row or a document's value as shown (None for none); a suppressed value's
        figures withheld, its respondents, rank and units ranked kept."""
        if row is None:
            return None
        hidden = bool(row["suppressed"])

        def figure(name: str) -> Any:
            return None if hidden else row.get(name)

        return cls(
            value=figure("value"),
            ci_low=figure("ci_low"),
            ci_high=figure("ci_high"),
            n=row["n"],
            rank=row.get("rank"),
            rank_of=row.get("rank_of"),
            suppressed=hidden,
            change=figure("change"),
            change_significant=figure("change_significant"),
            rank_low=figure("rank_low"),
            rank_high=figure("rank_high"),
            children_suppressed=bool(row.get("children_suppressed")),
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
class RoundName:
    """The round of a trend point, as its page names and links it."""

    code: str
    name_vi: str
    name_en: str


@dataclass(frozen=True)
class TrendPoint:
    round: RoundName
    unit: Value
    national: Value | None
    series_break: bool = False  # not comparable with the point before (docs/series.md)
    indicator_code: str = ""  # the indicator's code in this round's questionnaire version


@dataclass(frozen=True)
class Lineage:
    """The unit's place in the 2025 merger: what it was made of, what it became (each a
    ``{"code", "name", "effective_on"}``, by Vietnamese name)."""

    predecessors: list[dict[str, Any]] = field(default_factory=list)
    successors: list[dict[str, Any]] = field(default_factory=list)
    effective_on: dt.date | None = None


def indicator_choices(version_id: int) -> list[Choice]:
    """``selectors.indicator_choices`` through the cache (a published version never changes)."""
    return remember(
        run_key("indicator-choices", [], str(version_id)),
        lambda: selectors.indicator_choices(version_id),
    )


def ranking(run: Run, choice: Choice) -> Ranking:
    """The units of the run on one indicator with the national values, through the cache."""
    return remember(published_run_key("ranking", run, choice.key), lambda: ranking_of(run, choice))


def ranking_of(run: Run, choice: Choice) -> Ranking:
    """The units of the run on one indicator with the national values (one query)."""
    found = selectors.ranking(run_id=run.pk, indicator_code=choice.indicator_code)
    rows = [
        RankedUnit(row["unit__code"], row["unit__name"], Value.of(row))  # type: ignore[arg-type]
        for row in found["units"]
    ]
    rows.sort(key=_ranking_order)
    mean = found["national_mean"]
    return Ranking(
        choice, rows, Value.of(found["national"]), mean["value"] if mean is not None else None
    )


def _ranking_order(row: RankedUnit) -> tuple:
    v = row.value
    if v.shown:
        return (0, v.rank if v.rank is not None else 10**6, -(v.value or 0), name_key(row.name))
    return (1, 0, 0, name_key(row.name))


def unit_breakdown(run: Run, unit: Unit, choices: list[Choice]) -> list[BreakdownRow]:
    """``unit_breakdown_of`` through the cache, under the run and the unit."""
    return remember(
        published_run_key("breakdown", run, str(unit.pk)),
        lambda: unit_breakdown_of(run, unit, choices),
    )


def unit_breakdown_of(run: Run, unit: Unit, choices: list[Choice]) -> list[BreakdownRow]:
    """The unit's value and the national value on each choice (one query)."""
    scores = selectors.unit_and_national_scores(
        run_id=run.pk, unit_id=unit.pk, indicator_ids=sorted({c.indicator_id for c in choices})
    )
    found = {(row["indicator_id"], row["scope"]): Value.of(row) for row in scores}
    return [
        BreakdownRow(
            c,
            found.get((c.indicator_id, Score.Scope.UNIT)),
            found.get((c.indicator_id, Score.Scope.NATIONAL)),
        )
        for c in choices
    ]


def unit_trend(unit: Unit, indicator_code: str) -> list[TrendPoint]:
    """The unit's published values on an indicator across rounds, oldest first, with each
    round's national value (``selectors.unit_trend``)."""
    points = selectors.unit_trend(unit_id=unit.pk, indicator_code=indicator_code, national=True)
    return [
        TrendPoint(
            RoundName(p["run__round__code"], p["run__round__name_vi"], p["run__round__name_en"]),
            Value.of(p),  # type: ignore[arg-type]
            Value.of(p["national"]),
            series_break=p["series_break"],
            indicator_code=p["indicator__code"],
        )
        for p in points
    ]


def unit_lineage(unit: Unit) -> Lineage:
    """Predecessors and successors of the unit through the merger graph (one query)."""
    found = selectors.unit_lineage(unit_id=unit.pk)
    edges = sorted_by_name(
        [(e["name"], unit.name, e["effective_on"]) for e in found["predecessors"]]
        + [(unit.name, e["name"], e["effective_on"]) for e in found["successors"]],
        lambda edge: [edge[0], edge[1]],
    )
    return Lineage(
        predecessors=sorted_by_name(found["predecessors"], lambda e: e["name"]),
        successors=sorted_by_name(found["successors"], lambda e: e["name"]),
        effective_on=edges[0][2] if edges else None,
    )
