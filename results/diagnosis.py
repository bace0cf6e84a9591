"""The diagnosis of one unit in one published round: where it stands, what to improve first.

One function, ``diagnosis``, returns plain data (dicts, lists, numbers) that the API, the
dashboard page and the printable report all show; nothing here renders. What it holds:

- every indicator of the round's version: the unit's published value (interval, rank and
  rank interval, change since the previous round through the 2025 lineage) beside the
  national value, their difference with its 95% interval and two-sided p-value, and whether
  the difference is significant (Benjamini–Hochberg at 5% over the unit's indicators, the
  engine's rule for changes);
- strengths and weaknesses: indicators of the main index significantly above or below the
  nation, largest gap first;
- the citizens' expectation items (the stated importance), unit against nation;
- a priority matrix of the main index's items (service criteria, policy items): the unit's
  satisfaction against a key-driver importance, the weighted correlation across the unit's
  respondents of the item with their satisfaction on the other items, in four quadrants
  split at the medians;
- the other units of its region on the main index.

Formulas, with a worked example, in docs/diagnosis.md. Only aggregates leave this module:
no respondent-level figure is returned, and a suppressed value is returned as suppressed
(``None`` figures), as everywhere else.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings

from feedback.models import Answer, Response
from feedback.records import UnsupportedQuestion, satisfied_rule
from results import selectors
from results.cache import published_run_key, remember
from scoring.intervals import Z
from scoring.models import SCORE_FIELDS, ResponseWeight, Run, Score
from scoring.multiple_testing import benjamini_hochberg
from scoring.ranking import edge_size
from scoring.services import change_p_value, change_se, previous_run, unit_populations
from surveys.collation import vietnamese_key
from surveys.models import Indicator, Question, Round, Unit, UnitLineage

# Quadrants of the priority matrix (importance × satisfaction, each high or low).
CONCENTRATE = "concentrate"  # important, satisfaction low: improve first
KEEP_UP = "keep_up"  # important, satisfaction high: keep it so
LOW_PRIORITY = "low_priority"  # less important, satisfaction low
POSSIBLE_OVERKILL = "possible_overkill"  # less important, satisfaction high
QUADRANTS = (CONCENTRATE, KEEP_UP, LOW_PRIORITY, POSSIBLE_OVERKILL)
# The index of the citizens' expectation items in SIPAS (stated importance: the share of
# citizens expecting each area to improve).
EXPECTATIONS = "EXP"
TIE = 1e-9  # a figure this close to its cut is at the cut (equal correlations, computed apart)

# A suppressed value withholds its rank here too (a complementarily suppressed one keeps it).
ALSO_HIDDEN = ("rank",)


# --- Pure figures (hand-checked in tests/test_diagnosis.py) -------------------------------------


def difference_test(
    unit: Mapping[str, Any], national: Mapping[str, Any], *, unit_share: float
) -> dict[str, float | None]:
    """The unit's difference from the nation with its SE, 95% interval and p-value.

    d = V_u − V_n. The unit's respondents are part of the nation's, and the national value
    is Σ_u W_u·V_u over independent unit strata (W_u the unit's share: of the weights when
    pooled, of the population otherwise), so Cov(V_u, V_n) = W_u·S_u² and

        SE_d = √(S_u²·(1 − 2·W_u) + S_n²).

    S is the published SE, or at 0 or 100 the edge rule of the changes
    (``scoring.services.change_se``). The p-value is the engine's two-sided normal test
    (``change_p_value``), the interval d ± Z·SE_d with the engine's ``Z``.
    """
    empty = {"difference": None, "se": None, "low": None, "high": None, "p": None}
    if unit.get("value") is None or national.get("value") is None:
        return empty
    d = unit["value"] - national["value"]
    se_u = change_se(unit["value"], unit.get("se"), edge_size(unit.get("n"), unit.get("n_eff")))
    se_n = change_se(
        national["value"], national.get("se"), edge_size(national.get("n"), national.get("n_eff"))
    )
    if se_u is None or se_n is None:
        return {**empty, "difference": d}
    share = min(max(unit_share, 0.0), 1.0)
    se_d = math.sqrt(max(se_u**2 * (1 - 2 * share) + se_n**2, 0.0))
    return {
        "difference": d,
        "se": se_d,
        "low": d - Z * se_d,
        "high": d + Z * se_d,
        "p": change_p_value(d, se_d, 0.0),
    }


def weighted_correlation(
    x: Sequence[float], y: Sequence[float], w: Sequence[float]
) -> float | None:
    """Pearson's correlation of x and y with weights w; None when either does not vary."""
    total = sum(w)
    if total <= 0:
        return None
    mx = sum(wi * xi for wi, xi in zip(w, x, strict=True)) / total
    my = sum(wi * yi for wi, yi in zip(w, y, strict=True)) / total
    sxy = sum(wi * (xi - mx) * (yi - my) for wi, xi, yi in zip(w, x, y, strict=True))
    sxx = sum(wi * (xi - mx) ** 2 for wi, xi in zip(w, x, strict=True))
    syy = sum(wi * (yi - my) ** 2 for wi, yi in zip(w, y, strict=True))
    if sxx <= 1e-12 or syy <= 1e-12:
        return None
    return sxy / math.sqrt(sxx * syy)


def key_driver_importance(
    respondents: Sequence[tuple[float, Mapping[str, float]]], items: Sequence[str], *, min_n: int
) -> dict[str, dict[str, Any]]:
    """Each item's key-driver importance: the weighted correlation, across respondents who
    answered it and at least one other item, of the item (1 satisfied, 0 not) with their
    share satisfied over their other answered items (the rest score, so that an item is not
    correlated with itself). ``respondents``: (weight, {item: 0 or 1 for each answered
    item}). Fewer than ``min_n`` such respondents, or no variation: importance None."""
    found: dict[str, dict[str, Any]] = {}
    totals = [sum(answered.values()) for _weight, answered in respondents]
    for item in items:
        x: list[float] = []
        y: list[float] = []
        w: list[float] = []
        for (weight, answered), total in zip(respondents, totals, strict=True):
            if item not in answered or len(answered) < 2:
                continue
            x.append(answered[item])
            y.append((total - answered[item]) / (len(answered) - 1))
            w.append(weight)
        r = weighted_correlation(x, y, w) if len(x) >= min_n else None
        found[item] = {"importance": r, "respondents": len(x)}
    return found


def quadrant_of(
    satisfaction: float, importance: float, *, satisfaction_cut: float, importance_cut: float
) -> str:
    """The quadrant of an item: high means at or above the cut (the median), to rounding."""
    important = importance >= importance_cut - TIE
    satisfied = satisfaction >= satisfaction_cut - TIE
    if important:
        return KEEP_UP if satisfied else CONCENTRATE
    return POSSIBLE_OVERKILL if satisfied else LOW_PRIORITY


def priority_matrix(points: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Items with a satisfaction and an importance placed in quadrants split at the medians;
    items lacking either stay out of the quadrants (``quadrant`` None)."""
    placed = [
        p for p in points if p.get("satisfaction") is not None and p.get("importance") is not None
    ]
    if not placed:
        items = [{**p, "quadrant": None} for p in points]
        return {"satisfaction_cut": None, "importance_cut": None, "items": items}
    satisfaction_cut = statistics.median(p["satisfaction"] for p in placed)
    importance_cut = statistics.median(p["importance"] for p in placed)
    items = []
    for p in points:
        quadrant = None
        if p in placed:
            quadrant = quadrant_of(
                p["satisfaction"],
                p["importance"],
                satisfaction_cut=satisfaction_cut,
                importance_cut=importance_cut,
            )
        items.append({**p, "quadrant": quadrant})
    return {
        "satisfaction_cut": satisfaction_cut,
        "importance_cut": importance_cut,
        "items": items,
    }


# --- Reads --------------------------------------------------------------------------------------


def unit_shares(run: Run, unit: Unit, scores: list[dict[str, Any]]) -> dict[int, float]:
    """The unit's share W_u in each indicator's national value (see ``difference_test``)."""
    if (run.settings_used or {}).get("national_value", "pooled") == "population":
        populations = unit_populations(round_id=run.round_id)
        total = sum(populations.values())
        share = populations.get(unit.pk, 0.0) / total if total > 0 else 0.0
        return {row["indicator_id"]: share for row in scores}
    sums: dict[int, dict[str, float]] = defaultdict(dict)
    for row in scores:
        sums[row["indicator_id"]][row["scope"]] = row["weight_sum"] or 0.0
    return {
        indicator: (s.get(Score.Scope.UNIT, 0.0) / s[Score.Scope.NATIONAL])
        if s.get(Score.Scope.NATIONAL)
        else 0.0
        for indicator, s in sums.items()
    }


def respondent_items(run: Run, unit: Unit, item_codes: Sequence[str]) -> list[tuple[float, dict]]:
    """For each counted response of the unit in the run's round (submitted before the run
    started, not excluded by review): its weight in the run (raked if the run raked) and
    its answered items, 1 satisfied or 0 not. Read in three set-based queries; stays here."""
    questions = list(
        Question.objects.filter(
            version_id=run.round.version_id,
            indicator__code__in=item_codes,
            indicator__aggregation=Indicator.Aggregation.SHARE,
            excluded_from_indices=False,
        ).values_list("id", "code", "type", "satisfied_values", "indicator__code")
    )
    rules: dict[int, tuple[str, frozenset, str]] = {}
    for pk, code, kind, satisfied, item in questions:
        try:
            column, values = satisfied_rule(code, kind, satisfied)
        except UnsupportedQuestion:
            continue
        rules[pk] = (column, frozenset(values), item)
    counted = Response.objects.filter(
        round_id=run.round_id, unit=unit, submitted_at__lte=run.started_at
    ).exclude(review_state=Response.ReviewState.EXCLUDED)
    weights = dict(counted.values_list("id", "weight"))
    weights.update(
        ResponseWeight.objects.filter(run=run, response_id__in=counted.values("id")).values_list(
            "response_id", "weight"
        )
    )
    answers = Answer.objects.filter(
        round_id=run.round_id, response__in=counted.values("id"), question_id__in=list(rules)
    ).values_list("response_id", "question_id", "number", "code")
    per_response: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for response_id, question_id, number, code in answers:
        column, values, item = rules[question_id]
        answered = number if column == "number" else code
        per_response[response_id][item].append(int(answered is not None and answered in values))
    return [
        (weights.get(response_id, 1.0), {item: sum(v) / len(v) for item, v in items.items()})
        for response_id, items in sorted(per_response.items())
    ]


def region_units(run: Run, unit: Unit, indicator_id: int) -> list[dict[str, Any]]:
    """The units of the unit's region in the run on one indicator, best first."""
    if not unit.region:
        return []
    rows = (
        Score.objects.filter(
            run=run, scope=Score.Scope.UNIT, indicator_id=indicator_id, unit__region=unit.region
        )
        .values("unit__code", "unit__name", *SCORE_FIELDS)
        .order_by("unit__code")
    )
    found = [
        {"code": r["unit__code"], "name": r["unit__name"], "this": r["unit__code"] == unit.code}
        | _value(r)  # type: ignore[operator]
        for r in rows
    ]
    found.sort(
        key=lambda r: (
            r["value"] is None,
            r["rank"] if r["rank"] is not None else 10**6,
            vietnamese_key(r["name"]),
        )
    )
    return found


def previous_round(run: Run, unit: Unit) -> dict[str, Any] | None:
    """The round the changes compare with, and the units the unit's values there pool."""
    before = previous_run(run.round)
    if before is None:
        return None
    previous_units = set(before.round.units.values_list("pk", flat=True))
    if unit.pk in previous_units:
        compared = [{"code": unit.code, "name": unit.name}]
    else:
        compared = [
            {"code": code, "name": name}
            for code, name in UnitLineage.objects.filter(
                successor=unit, predecessor_id__in=previous_units
            )
            .order_by("predecessor__code")
            .values_list("predecessor__code", "predecessor__name")
        ]
    return {
        "round": before.round.code,
        "name": {"vi": before.round.name_vi, "en": before.round.name_en},
        "units": compared,
    }


def _value(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return selectors.published_value(row, also_hidden=ALSO_HIDDEN)


def cached_diagnosis(run: Run, unit: Unit) -> dict[str, Any]:
    """``diagnosis`` through the results cache, under the published run and the unit."""
    key = published_run_key("diagnosis", run, str(unit.pk))
    return remember(key, lambda: diagnosis(run, unit))


def diagnosis(run: Run, unit: Unit) -> dict[str, Any]:
    """The diagnosis document of ``unit`` in the published ``run`` (plain data)."""
    survey_round: Round = run.round
    min_n = (run.settings_used or {}).get("MIN_PUBLISH_N", settings.MIN_PUBLISH_N)
    nodes = selectors.indicator_nodes(survey_round.version_id)
    scores = selectors.unit_and_national_scores(run_id=run.pk, unit_id=unit.pk)
    shares = unit_shares(run, unit, scores)
    by_place = {(row["indicator_id"], row["scope"]): row for row in scores}
    main = nodes[0].indicator.code if nodes else None

    indicators: list[dict[str, Any]] = []
    for tree_node in nodes:
        node = tree_node.indicator
        own = _value(by_place.get((node.pk, Score.Scope.UNIT)))
        national = _value(by_place.get((node.pk, Score.Scope.NATIONAL)))
        test = difference_test(own or {}, national or {}, unit_share=shares.get(node.pk, 0.0))
        indicators.append(
            {
                "code": node.code,
                "name": {"vi": node.name_vi, "en": node.name_en},
                "kind": node.kind,
                "parent": tree_node.parent,
                "root": tree_node.root,
                "unit": own,
                "national": national,
                "difference": test,
                "significant": None,
                "direction": None,
            }
        )
    p_values = {
        row["code"]: row["difference"]["p"]
        for row in indicators
        if row["difference"]["p"] is not None
    }
    significant = benjamini_hochberg(p_values)
    for row in indicators:
        if row["code"] in p_values:
            row["significant"] = row["code"] in significant
            if row["significant"]:
                row["direction"] = "above" if row["difference"]["difference"] > 0 else "below"

    def gap(row: dict[str, Any]) -> tuple[float, str]:
        return (-abs(row["difference"]["difference"]), row["code"])

    satisfaction_rows = [r for r in indicators if r["root"] == main]
    strengths = sorted((r for r in satisfaction_rows if r["direction"] == "above"), key=gap)
    weaknesses = sorted((r for r in satisfaction_rows if r["direction"] == "below"), key=gap)

    item_rows = [r for r in satisfaction_rows if r["kind"] == Indicator.Kind.ITEM]
    headline = indicators[0] if indicators else None
    unit_withheld = headline is None or headline["unit"] is None or headline["unit"]["suppressed"]
    importance: dict[str, dict[str, Any]] = {}
    if not unit_withheld and item_rows:
        respondents = respondent_items(run, unit, [r["code"] for r in item_rows])
        importance = key_driver_importance(respondents, [r["code"] for r in item_rows], min_n=min_n)
    points = []
    for row in item_rows:
        shown = row["unit"] is not None and not row["unit"]["suppressed"]
        found = importance.get(row["code"], {})
        points.append(
            {
                "code": row["code"],
                "name": row["name"],
                "parent": row["parent"],
                "satisfaction": row["unit"]["value"] if shown else None,
                "national": row["national"]["value"] if row["national"] else None,
                "importance": found.get("importance") if shown else None,
                "respondents": found.get("respondents", 0),
            }
        )
    expectations = [
        r for r in indicators if r["root"] == EXPECTATIONS and r["kind"] == Indicator.Kind.ITEM
    ]
    return {
        "round": {
            "code": survey_round.code,
            "name": {"vi": survey_round.name_vi, "en": survey_round.name_en},
        },
        "unit": {"code": unit.code, "name": unit.name, "region": unit.region},
        "run": {
            "id": run.pk,
            "published_at": run.published_at,
            "responses": run.response_count,
            "national_value": (run.settings_used or {}).get("national_value", "pooled"),
            "min_n": min_n,
        },
        "main_indicator": main,
        "headline": headline,
        "previous": previous_round(run, unit),
        "indicators": indicators,
        "strengths": [r["code"] for r in strengths],
        "weaknesses": [r["code"] for r in weaknesses],
        "expectations": [r["code"] for r in expectations],
        "priority": priority_matrix(points),
        "region": {
            "name": unit.region,
            "indicator": main,
            "units": region_units(run, unit, nodes[0].indicator.pk) if nodes else [],
        },
    }
