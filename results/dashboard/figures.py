"""Figures of the dashboard pages: query results turned into chart rows and localized text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.template.defaultfilters import floatformat
from django.utils.formats import number_format
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from results.dashboard import charts
from results.dashboard.values import BreakdownRow, Ranking, TrendPoint, Value
from results.selectors import Choice
from surveys.models import localized


@dataclass(frozen=True)
class Figure:
    """A chart with the ids and texts that name and describe it on the page."""

    id: str
    caption: str
    summary: str
    svg: SafeString


def number(x: float | None) -> str:
    """A value as shown everywhere: two decimals in the active language's format."""
    return "" if x is None else floatformat(x, 2)


def rank_text(v: Value | None) -> str:
    """``2/63``, or empty for a value without a rank."""
    if v is None or v.rank is None or v.rank_of is None:
        return ""
    return f"{v.rank}/{v.rank_of}"


def value_text(v: Value | None) -> str:
    """The value, or the words standing for a value that is not shown."""
    if v is None:
        return _("no data")
    if v.suppressed:
        return _("suppressed")
    if v.value is None:
        return _("no data")
    return number(v.value)


def value_domain(
    values: Sequence[Value | None], extra: Sequence[float | None] = ()
) -> tuple[float, float]:
    numbers: list[float | None] = list(extra)
    for v in values:
        if v is not None and v.shown:
            numbers += [v.value, v.ci_low, v.ci_high]
    return charts.nice_domain(numbers)


def tick_text(domain: tuple[float, float]) -> dict[float, str]:
    return {t: number_format(t, 0) for t in charts.ticks(domain)}


def _bar(label: str, v: Value | None, reference: float | None = None) -> charts.Bar:
    shown = v is not None and v.shown
    return charts.Bar(
        label=label,
        value=v.value if shown else None,
        value_text=value_text(v),
        low=v.ci_low if shown else None,
        high=v.ci_high if shown else None,
        reference=reference if shown else None,
    )


def ranking_figure(ranking: Ranking, *, figure_id: str = "ranking") -> Figure:
    """Units as bars, best first, with whiskers and the national value as a dashed line."""
    national = ranking.national.value if ranking.national and ranking.national.shown else None
    bars = [_bar(f"{rank_text(row.value)} {row.name}".strip(), row.value) for row in ranking.rows]
    domain = value_domain([row.value for row in ranking.rows], [national])
    svg = charts.bar_chart(
        bars,
        domain=domain,
        labelled_by=f"{figure_id}-caption",
        described_by=f"{figure_id}-summary",
        reference=national,
        reference_label=_("national %(value)s") % {"value": number(national)}
        if national is not None
        else "",
        tick_text=tick_text(domain),
    )
    shown = [row for row in ranking.rows if row.value.shown]
    summary = _(
        "%(units)s units ranked from highest to lowest; %(suppressed)s not shown because too "
        "few people answered. Bars start at %(start)s; each line across a bar is its 95%% "
        "interval; the dashed line is the national value."
    ) % {
        "units": len(shown),
        "suppressed": sum(1 for row in ranking.rows if row.value.suppressed),
        "start": number_format(domain[0], 0),
    }
    if shown:
        extremes = _("Highest: %(best)s (%(best_value)s); lowest: %(worst)s (%(worst_value)s).")
        summary += " " + extremes % {
            "best": shown[0].name,
            "best_value": number(shown[0].value.value),
            "worst": shown[-1].name,
            "worst_value": number(shown[-1].value.value),
        }
    caption = _("%(indicator)s by unit") % {"indicator": ranking.choice.name}
    return Figure(figure_id, caption, summary, svg)


def _against_national(
    rows: Sequence[tuple[str, Value | None, Value | None]], figure_id: str
) -> tuple[SafeString, tuple[float, float]]:
    """The unit's value on each row (label, unit, national) as a bar, the national value
    marked on each row: the chart and its domain."""
    national = [n.value if n is not None and n.shown else None for _label, _unit, n in rows]
    bars = [
        _bar(label, unit, reference)
        for (label, unit, _national), reference in zip(rows, national, strict=True)
    ]
    domain = value_domain([unit for _label, unit, _national in rows], national)
    svg = charts.bar_chart(
        bars,
        domain=domain,
        labelled_by=f"{figure_id}-caption",
        described_by=f"{figure_id}-summary",
        tick_text=tick_text(domain),
    )
    return svg, domain


def breakdown_figure(
    rows: Sequence[BreakdownRow], *, figure_id: str, caption: str, unit_name: str
) -> Figure:
    """The unit's value on each indicator as a bar, the national value marked on each row."""
    svg, domain = _against_national(
        [(f"{row.choice.key} {row.choice.name}", row.unit, row.national) for row in rows],
        figure_id,
    )
    summary = _(
        "Values of %(unit)s on %(count)s indicators. Bars start at %(start)s; each line across "
        "a bar is its 95%% interval; the red mark on each row is the national value."
    ) % {"unit": unit_name, "count": len(rows), "start": number_format(domain[0], 0)}
    return Figure(figure_id, caption, summary, svg)


def trend_figure(
    points: Sequence[TrendPoint], *, figure_id: str, caption: str, unit_name: str
) -> Figure:
    """One bar per round, oldest first, the national value of that round marked."""
    svg, _bounds = _against_national(
        [
            (
                localized(p.round, "name") + (f" {_('(series break)')}" if p.series_break else ""),
                p.unit,
                p.national,
            )
            for p in points
        ],
        figure_id,
    )
    summary = _(
        "Values of %(unit)s in %(count)s rounds with published results, oldest first; the red "
        "mark on each row is that round's national value."
    ) % {"unit": unit_name, "count": len(points)}
    return Figure(figure_id, caption, summary, svg)


def choice_groups(choices: Sequence[Choice]) -> list[tuple[str, list[Choice]]]:
    """The choices grouped for a picker: the index, each field with its elements, policy groups."""
    groups: list[tuple[str, list[Choice]]] = []
    for choice in choices:
        if choice.kind == "index":
            groups.append((_("Overall index"), [choice]))
        elif choice.kind == "field" or not groups:
            groups.append((choice.name, [choice]))
        elif choice.kind == "policy_group" and groups[-1][1][-1].kind != "policy_group":
            groups.append((_("Policy groups"), [choice]))
        else:
            groups[-1][1].append(choice)
    return groups
