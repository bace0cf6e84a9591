"""The agency results shown: ``results.agencies``'s document turned into page tables."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from results import agencies
from results.dashboard.diagnosis import localized
from results.dashboard.values import Value
from scoring.models import Run
from surveys.models import Unit


def context(run: Run, unit: Unit) -> dict[str, Any]:
    """The page's tables, in the active language: one per shown indicator, the unit's
    value first, then each agency's."""
    doc = agencies.agency_results(run, unit)
    tables = [
        {
            "code": row["code"],
            "name": localized(row["name"]),
            "headline": row["code"] == doc["headline"],
            "unit": Value.of(row["unit"]),
            "agencies": [
                {"code": a["code"], "name": localized(a["name"]), "value": Value.of(a["value"])}
                for a in row["agencies"]
            ],
        }
        for row in agencies.shown_indicators(doc)
    ]
    return {
        "doc": doc,
        "unit": unit,
        "round": run.round,
        "run": run,
        "tables": tables,
        "agency_count": len(doc["agencies"]),
        "min_n": doc["run"]["min_n"] or settings.MIN_PUBLISH_N,
    }
