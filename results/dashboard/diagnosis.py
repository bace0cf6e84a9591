"""The diagnosis shown: ``results.diagnosis``'s document turned into page rows, charts and text.

The dashboard page and the printable report (PDF) render the same context, built here from
one cached document per published run and unit (a new run has a new id: nothing stale).
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from results import diagnosis as diagnoses
from results.dashboard import charts
from results.dashboard.figures import Figure, number, tick_text, value_domain, value_text
from results.dashboard.values import Value
from results.pdf import render_pdf
from scoring.models import Run
from surveys.models import Indicator, Unit

QUADRANT_NAMES = {
    diagnoses.CONCENTRATE: gettext_lazy("Act first"),
    diagnoses.KEEP_UP: gettext_lazy("Keep up"),
    diagnoses.LOW_PRIORITY: gettext_lazy("Lower priority"),
    diagnoses.POSSIBLE_OVERKILL: gettext_lazy("Possibly over-served"),
}


def _language() -> str:
    from django.utils import translation

    return (translation.get_language() or "vi")[:2]


def localized(texts: dict[str, str]) -> str:
    """The text of a document's ``{"vi": …, "en": …}`` in the active language (else vi)."""
    return texts.get(_language()) or texts.get("vi", "")


def _row(indicator: dict[str, Any], depth: int) -> dict[str, Any]:
    difference = indicator["difference"]
    return {
        "code": indicator["code"],
        "name": localized(indicator["name"]),
        "kind": indicator["kind"],
        "depth": depth,
        "unit": Value.of(indicator["unit"]),
        "national": Value.of(indicator["national"]),
        "deff": (indicator["unit"] or {}).get("deff"),
        "difference": difference["difference"],
        "difference_low": difference["low"],
        "difference_high": difference["high"],
        "p": difference["p"],
        "significant": indicator["significant"],
        "direction": indicator["direction"],
    }


def _depths(indicators: list[dict[str, Any]]) -> dict[str, int]:
    depth: dict[str, int] = {}
    for row in indicators:
        depth[row["code"]] = 0 if row["parent"] is None else depth.get(row["parent"], 0) + 1
    return depth


def context(run: Run, unit: Unit) -> dict[str, Any]:
    """Everything the page and the report show, in the active language."""
    doc = diagnoses.cached_diagnosis(run, unit)
    depths = _depths(doc["indicators"])
    rows = [_row(r, depths[r["code"]]) for r in doc["indicators"]]
    by_code = {r["code"]: r for r in rows}
    main = doc["main_indicator"]
    main_rows = [by_code[r["code"]] for r in doc["indicators"] if r["root"] == main]
    summary_rows = [r for r in main_rows if r["kind"] != Indicator.Kind.ITEM]
    main_codes = {r["code"] for r in main_rows}
    other_rows = [r for r in rows if r["code"] not in main_codes]
    headline = by_code.get(main) if main else None
    unit_name = unit.name
    priority = doc["priority"]
    items = [
        {
            **item,
            "name": localized(item["name"]),
            "quadrant_name": QUADRANT_NAMES[item["quadrant"]] if item["quadrant"] else "",
        }
        for item in priority["items"]
    ]
    region_rows = [
        {"code": r["code"], "name": r["name"], "this": r["this"], "value": Value.of(r)}
        for r in doc["region"]["units"]
    ]
    return {
        "doc": doc,
        "unit": unit,
        "round_name": localized(doc["round"]["name"]),
        "headline": headline,
        "rows": rows,
        "main_rows": main_rows,
        "other_rows": other_rows,
        "strengths": [by_code[c] for c in doc["strengths"]],
        "weaknesses": [by_code[c] for c in doc["weaknesses"]],
        "expectations": [by_code[c] for c in doc["expectations"]],
        "items": items,
        "quadrants": [
            {
                "key": key,
                "name": QUADRANT_NAMES[key],
                "codes": [i["code"] for i in items if i["quadrant"] == key],
            }
            for key in diagnoses.QUADRANTS
        ],
        "priority": priority,
        "region_rows": region_rows,
        "previous": doc["previous"],
        "previous_name": localized(doc["previous"]["name"]) if doc["previous"] else "",
        "summary_figure": summary_figure(summary_rows, unit_name),
        "matrix_figure": matrix_figure(priority, unit_name),
        "region_figure": region_figure(region_rows, headline, unit),
        "national_pooled": doc["run"]["national_value"] != "population",
        "min_n": doc["run"]["min_n"],
        "generated_at": timezone.now(),
    }


def summary_figure(rows: list[dict[str, Any]], unit_name: str) -> Figure:
    """The main index, its fields and elements: the unit's bars, the national value marked."""
    bars = [
        charts.Bar(
            label=f"{row['code']} {row['name']}",
            value=row["unit"].value if row["unit"] and row["unit"].shown else None,
            value_text=value_text(row["unit"]),
            low=row["unit"].ci_low if row["unit"] and row["unit"].shown else None,
            high=row["unit"].ci_high if row["unit"] and row["unit"].shown else None,
            reference=row["national"].value
            if row["national"] and row["national"].shown and row["unit"] and row["unit"].shown
            else None,
        )
        for row in rows
    ]
    domain = value_domain(
        [row["unit"] for row in rows],
        [r["national"].value for r in rows if r["national"] and r["national"].shown],
    )
    svg = charts.bar_chart(
        bars,
        domain=domain,
        labelled_by="summary-caption",
        described_by="summary-summary",
        tick_text=tick_text(domain),
    )
    caption = _("%(unit)s against the nation: index, fields and elements") % {"unit": unit_name}
    summary = _(
        "Values of %(unit)s on %(count)s indicators. Bars start at %(start)s; each line across "
        "a bar is its 95%% interval; the red mark on each row is the national value."
    ) % {"unit": unit_name, "count": len(rows), "start": number(domain[0])}
    return Figure("summary", caption, summary, svg)


def matrix_figure(priority: dict[str, Any], unit_name: str) -> Figure | None:
    """The priority matrix, or None when no item has both figures."""
    placed = [i for i in priority["items"] if i["quadrant"] is not None]
    if not placed:
        return None
    x_domain = charts.nice_domain([i["satisfaction"] for i in placed])
    y_domain = charts.importance_domain([i["importance"] for i in placed])
    svg = charts.matrix_chart(
        [charts.Point(i["code"], i["satisfaction"], i["importance"]) for i in placed],
        x_domain=x_domain,
        y_domain=y_domain,
        x_cut=priority["satisfaction_cut"],
        y_cut=priority["importance_cut"],
        labelled_by="matrix-caption",
        described_by="matrix-summary",
        x_title=_("Satisfaction (%)"),
        y_title=_("Importance (correlation)"),
        quadrant_titles=(
            str(QUADRANT_NAMES[diagnoses.CONCENTRATE]),
            str(QUADRANT_NAMES[diagnoses.KEEP_UP]),
            str(QUADRANT_NAMES[diagnoses.LOW_PRIORITY]),
            str(QUADRANT_NAMES[diagnoses.POSSIBLE_OVERKILL]),
        ),
    )
    act_first = [i["code"] for i in placed if i["quadrant"] == diagnoses.CONCENTRATE]
    summary = _(
        "%(count)s items of %(unit)s placed by satisfaction (across) and importance (up), "
        "split at the medians (%(satisfaction)s%%, %(importance)s). Items to act on first "
        "(important, less satisfied, top left): %(items)s."
    ) % {
        "count": len(placed),
        "unit": unit_name,
        "satisfaction": number(priority["satisfaction_cut"]),
        "importance": number(priority["importance_cut"]),
        "items": ", ".join(act_first) or "—",
    }
    caption = _("%(unit)s: priority matrix of the items") % {"unit": unit_name}
    return Figure("matrix", caption, summary, svg)


def region_figure(
    rows: list[dict[str, Any]], headline: dict[str, Any] | None, unit: Unit
) -> Figure | None:
    """The units of the region on the main index, best first, the national value dashed."""
    if not rows or headline is None:
        return None
    national = headline["national"]
    national_value = national.value if national and national.shown else None
    bars = [
        charts.Bar(
            label=f"{r['name']}{' ◀' if r['this'] else ''}",
            value=r["value"].value if r["value"].shown else None,
            value_text=value_text(r["value"]),
            low=r["value"].ci_low if r["value"].shown else None,
            high=r["value"].ci_high if r["value"].shown else None,
        )
        for r in rows
    ]
    domain = value_domain([r["value"] for r in rows], [national_value])
    svg = charts.bar_chart(
        bars,
        domain=domain,
        labelled_by="region-caption",
        described_by="region-summary",
        reference=national_value,
        reference_label=_("national %(value)s") % {"value": number(national_value)}
        if national_value is not None
        else "",
        tick_text=tick_text(domain),
    )
    caption = _("%(indicator)s in the region %(region)s") % {
        "indicator": headline["name"],
        "region": unit.region,
    }
    summary = _(
        "%(count)s units of the region, highest first; %(unit)s is marked ◀. Each line "
        "across a bar is its 95%% interval; the dashed line is the national value."
    ) % {"count": len(rows), "unit": unit.name}
    return Figure("region", caption, summary, svg)


def diagnosis_pdf(run: Run, unit: Unit) -> bytes:
    """The printable report of the diagnosis, in the active language."""
    return render_pdf("results/print/diagnosis.html", context(run, unit))
