"""Agency results of a unit in a round (issue 17, item 5): who may see them, and what they are.

The engine computes each agency's values in every run whose responses name agencies
(``Score.Scope.AGENCY``); this module reads them for one unit of a round's published run,
with the unit's own value beside each indicator, and decides who may see them. The page
(``/results/<round>/units/<unit>/agencies/``) and the API
(``GET /api/v1/rounds/<code>/units/<unit>/agencies/``) both ask ``may_see`` and show
``agency_results``; nothing here renders.

Who may see (``may_see``, the one rule):

- national staff: superusers, and staff with ``scoring.view_score`` and no province
  (``surveys.scoping``);
- the staff of the unit's own province (with ``scoring.view_score``, which the group
  *Province staff* has), in national rounds and in their province's local rounds;
- anyone (the public) when the round is national and its setting
  ``Round.publish_agency_results`` is on. A local round's results are never public.

Everyone else gets a 404, as for an unknown page. A suppressed value is returned withheld
(``value``, ``se`` and the interval ``None``), as every published value is.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from results import selectors
from scoring.models import Run, Score
from surveys import scoping
from surveys.collation import vietnamese_key
from surveys.models import Agency, Indicator, Round, Unit

VALUE_FIELDS = ("value", "se", "ci_low", "ci_high", "n")
PERMISSION = "scoring.view_score"


# --- Who may see ---------------------------------------------------------------------------------


def is_public(survey_round: Round) -> bool:
    """Whether the round's agency results are public: a national round with the setting on."""
    return survey_round.owner_unit_id is None and survey_round.publish_agency_results


def staff_may_see(user: Any, survey_round: Round, unit: Unit) -> bool:
    """National staff, or the staff of the unit's province (their own local rounds too)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    if not (user.is_staff and user.has_perm(PERMISSION)):
        return False
    scope = scoping.scope_of(user)
    if scope.unit_id is not None:
        return unit.pk == scope.unit_id and survey_round.owner_unit_id in (None, scope.unit_id)
    return scope.national


def may_see(user: Any, survey_round: Round, unit: Unit) -> bool:
    """The one rule of the page and the API (see the module's docstring)."""
    return is_public(survey_round) or staff_may_see(user, survey_round, unit)


def viewable(user: Any, round_code: str, unit_code: str) -> tuple[Run, Unit] | None:
    """The round's published run and the unit, when the user may see its agency results;
    None otherwise, whatever the reason (unknown round or unit, no published run, a unit
    the round did not cover, or not allowed), so that a refusal reveals nothing."""
    run = selectors.published_run(round_code, national=False)
    if run is None:
        return None
    unit = selectors.unit_in_round(run, unit_code)
    if unit is None or not may_see(user, run.round, unit):
        return None
    return run, unit


def has_agency_results(run: Run, unit: Unit) -> bool:
    """Whether the run holds any agency value of the unit (for links to the page)."""
    return Score.objects.filter(run=run, unit=unit, scope=Score.Scope.AGENCY).exists()


# --- The values ----------------------------------------------------------------------------------


def _value(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return selectors.published_value(row, fields=VALUE_FIELDS)


def agency_results(run: Run, unit: Unit) -> dict[str, Any]:
    """The agencies of ``unit`` with their values per indicator in ``run``, and the unit's.

    ``indicators``: every indicator of the round's version depth-first, each with the
    unit's value (``unit``) and one entry per agency (``agencies``: code, name and value,
    ``None`` when the agency has no score on it); ``headline`` the main index's code;
    ``agencies`` the agencies with a value in the run, by Vietnamese name. Three queries.
    """
    survey_round = run.round
    nodes = selectors.indicator_nodes(survey_round.version_id)
    own = {
        row["indicator_id"]: row
        for row in selectors.unit_and_national_scores(run_id=run.pk, unit_id=unit.pk)
        if row["scope"] == Score.Scope.UNIT
    }
    agency_rows = selectors.with_children_suppressed(
        Score.objects.filter(run=run, scope=Score.Scope.AGENCY, unit=unit), agency=True
    ).values("agency_id", "indicator_id", "suppressed", "children_suppressed", *VALUE_FIELDS)
    by_agency: dict[int, dict[int, dict[str, Any]]] = {}
    for row in agency_rows:
        by_agency.setdefault(row["agency_id"], {})[row["indicator_id"]] = row
    agencies = sorted(
        Agency.objects.filter(pk__in=by_agency).values("pk", "code", "name_vi", "name_en", "kind"),
        key=lambda a: (vietnamese_key(a["name_vi"]), a["code"]),
    )
    indicators = [
        {
            "code": node.indicator.code,
            "name": {"vi": node.indicator.name_vi, "en": node.indicator.name_en},
            "kind": node.indicator.kind,
            "parent": node.parent,
            "unit": _value(own.get(node.indicator.pk)),
            "agencies": [
                {
                    "code": agency["code"],
                    "name": {"vi": agency["name_vi"], "en": agency["name_en"]},
                    "value": _value(by_agency[agency["pk"]].get(node.indicator.pk)),
                }
                for agency in agencies
            ],
        }
        for node in nodes
    ]
    return {
        "round": {
            "code": survey_round.code,
            "name": {"vi": survey_round.name_vi, "en": survey_round.name_en},
            "local": survey_round.owner_unit_id is not None,
            "public": is_public(survey_round),
        },
        "unit": {"code": unit.code, "name": unit.name},
        "run": {
            "id": run.pk,
            "published_at": run.published_at,
            "min_n": (run.settings_used or {}).get("MIN_PUBLISH_N", settings.MIN_PUBLISH_N),
        },
        "headline": nodes[0].indicator.code if nodes else None,
        "agencies": [
            {
                "code": a["code"],
                "name": {"vi": a["name_vi"], "en": a["name_en"]},
                "kind": a["kind"],
            }
            for a in agencies
        ],
        "indicators": indicators,
    }


def shown_indicators(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The indicators a page shows a table of: the headline, then the items."""
    return [
        row
        for row in doc["indicators"]
        if row["code"] == doc["headline"] or row["kind"] == Indicator.Kind.ITEM
    ]
