"""Raking of response weights per unit to population margins (iterative proportional fitting).

A round may carry staff-supplied population margins per unit (``PopulationMargin``): a
joint sex × age band margin and an area margin. A run of such a round rakes the design
weights of each unit's responses to them, in three steps:

1. ``cell_totals``: one statement (the answers pivoted per response, then a GROUP BY)
   gives, per unit and demographic cell (the sex, age band and area answers; the questions
   are the setting ``RAKING_QUESTIONS``), the number of responses and the sum of their
   design weights.
2. ``rake``: per unit, bounded iterative proportional fitting of those cell totals to the
   unit's margins (the sex × age margin first, then area, one sweep per iteration), every
   factor kept within ``RAKING_FACTOR_BOUNDS`` (default 0.3–3), until every margin is met
   within ``RAKING_TOLERANCE`` (relative) or ``RAKING_MAX_ITERATIONS`` sweeps are done. The
   result is a factor per cell and a convergence report, to which ``rake_run`` adds Kish's
   design effect from weighting before and after raking (from Σw and Σw² per cell) and the
   unit's flags (a factor at a bound, a design effect above ``RAKING_DEFF_WARNING``, not
   converged), shown in the run's admin page.
3. ``write_weights``: the factors are stored (``RakingFactor``) and one ``INSERT …
   SELECT`` writes each raked response's weight (design weight × its cell's factor) to
   ``ResponseWeight`` under the run. The engine reads ``COALESCE(raked, design)`` weights.

Choices (settings and data, not SIPAS logic):

* Margins are proportions. Each unit's margins are rescaled to the sum of the design
  weights of its raked respondents, so raking changes the mix within a unit, not the
  unit's total weight: the national pooled value keeps each unit's share of the design
  weight, and units without margins or respondents without demographics stay comparable.
* A response missing a demographic answer the margins need (no answer, or blank) keeps its
  design weight (factor 1); the margins are met by the complete responses alone. The report
  counts these responses (``missing``) and their design weight.
* A complete response whose category has no margin row, or a population of 0, in a
  dimension of its unit keeps its design weight too (``outside`` in the report).
* A margin category with a positive population but no respondent in the unit cannot be
  met: it is reported (``empty_categories``) and left out, the other categories of that
  margin sharing the unit's total in proportion to their populations. No division by zero.
* Bounds: a cell whose factor reaches L or U is held there and the other cells of the
  margin category are re-raked; the limit is the raking calibration with bounds (formulas
  in ``rake`` and docs/scoring-method). Margins that cannot be met within the bounds (a
  category that needs a factor above U in all its cells, say) leave the unit not converged.
* A unit that does not converge within the iterations keeps the factors of its last sweep
  (the last margin, area, is then met exactly if the bounds allow) and is reported
  ``converged: false`` with its largest remaining relative gap (``max_deviation``).
* A unit with margins for only one dimension is raked (post-stratified) to that one.
* Taylor standard errors treat the raked weights as fixed (no calibration term in the
  linearization), which is usually slightly conservative; the jackknife
  (``scoring.replicates``) rakes each replicate again.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext as _

from feedback.models import Answer, Response
from scoring.models import PopulationMargin, RakingFactor, ResponseWeight
from scoring.sql import counted_response
from surveys.models import Question, Unit

ROLES = ("sex", "age", "area")
DIMENSIONS: dict[str, tuple[str, ...]] = {"sex_age": ("sex", "age"), "area": ("area",)}
SEPARATOR = "|"
# A factor within this relative distance of L or U counts as at the bound.
AT_BOUND = 1e-9
LATENT_RANGE = 1e6

# (sex, age band, area) choice codes; "" for a role no margin of the round uses, and
# None (in cell totals only) for an answer a response did not give.
Cell = tuple[str, ...]


class RakingError(ValueError):
    """The round's margins cannot be used (e.g. its questionnaire lacks a needed question)."""


def category(cell: Sequence[str | None], dimension: str) -> str:
    """A cell's category in a dimension: ``nam|18_25`` (sex_age), ``do_thi`` (area)."""
    return SEPARATOR.join(str(cell[ROLES.index(role)]) for role in DIMENSIONS[dimension])


def raking_questions(*, version_id: int, roles: Sequence[str] = ROLES) -> dict[str, int]:
    """Role → question id in the version, for the roles of ``RAKING_QUESTIONS`` it has."""
    codes = {role: settings.RAKING_QUESTIONS.get(role, "") for role in roles}
    ids = dict(
        Question.objects.filter(version_id=version_id, code__in=codes.values()).values_list(
            "code", "id"
        )
    )
    return {role: ids[code] for role, code in codes.items() if code in ids}


def _demographics(
    round_id: int, version_id: int, question_ids: Mapping[str, int]
) -> tuple[str, list[Any]]:
    """One row per counted response of the round (``scoring.sql.counted_response``): id,
    unit_id, weight, c_sex, c_age, c_area.

    A role in ``question_ids`` reads as its answer's choice code (NULL when not answered or
    blank), any other role as ``''``. The answers of the roles' questions are read in one
    pass and pivoted per response (no join per role).
    """
    roles = [role for role in ROLES if role in question_ids]
    codes = ", ".join(
        f"MAX(CASE WHEN a.question_id = %s THEN NULLIF(a.code, '') END) AS c_{role}"
        if role in question_ids
        else f"'' AS c_{role}"
        for role in ROLES
    )
    answers = (
        f"LEFT JOIN {Answer._meta.db_table} a ON a.response_id = r.id "
        f"AND a.round_id = r.round_id "
        f"AND a.question_id IN ({', '.join(['%s'] * len(roles))}) "
        if roles
        else ""
    )
    sql = (
        f"SELECT r.id AS id, r.unit_id AS unit_id, r.weight AS weight, {codes} "
        f"FROM {Response._meta.db_table} r {answers}"
        f"WHERE r.round_id = %s AND r.version_id = %s AND {counted_response()} "
        f"GROUP BY r.id, r.unit_id, r.weight"
    )
    ids = [question_ids[role] for role in roles]
    return sql, [*ids, *ids, round_id, version_id]


def cell_sums(
    *, round_id: int, version_id: int, question_ids: Mapping[str, int]
) -> list[tuple[int, tuple[str | None, ...], int, float, float]]:
    """(unit, cell, responses, Σ design weight, Σ design weight²) per unit and cell.

    One statement. A role in ``question_ids`` reads as its answer's choice code (None when
    not answered); any other role as ``""``. Rows are sorted, so the caller sums in the same
    order anywhere. The sums of squares give Kish's design effect from weighting per unit
    without reading a response (``kish_deff``).
    """
    per_response, params = _demographics(round_id, version_id, question_ids)
    sql = (
        f"SELECT x.unit_id, x.c_sex, x.c_age, x.c_area, COUNT(*), SUM(x.weight), "
        f"SUM(x.weight * x.weight) "
        f"FROM ({per_response}) x GROUP BY x.unit_id, x.c_sex, x.c_age, x.c_area"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [(int(u), (s, a, r), int(n), float(w), float(w2)) for u, s, a, r, n, w, w2 in cursor]
    return sorted(rows, key=lambda row: (row[0], tuple((c is None, c or "") for c in row[1])))


def cell_totals(
    *, round_id: int, version_id: int, question_ids: Mapping[str, int]
) -> list[tuple[int, tuple[str | None, ...], int, float]]:
    """(unit, cell, responses, Σ design weight) per unit and cell: ``cell_sums`` without Σw²."""
    return [
        (unit, cell, n, w)
        for unit, cell, n, w, _squares in cell_sums(
            round_id=round_id, version_id=version_id, question_ids=question_ids
        )
    ]


def factor_bounds(bounds: tuple[float, float] | None = None) -> tuple[float, float]:
    """The (lower, upper) factor bounds: ``bounds`` if given, else ``RAKING_FACTOR_BOUNDS``."""
    lower, upper = settings.RAKING_FACTOR_BOUNDS if bounds is None else bounds
    return float(lower), float(upper)


def kish_deff(responses: float, weight_sum: float, square_sum: float) -> float | None:
    """Kish's design effect from weighting, 1 + cv²(w) = n·Σw² / (Σw)²; None without weight."""
    return responses * square_sum / weight_sum**2 if responses and weight_sum > 0 else None


def _step(
    weights: Sequence[float], latent: Sequence[float], target: float, lower: float, upper: float
) -> float:
    """The multiplier r > 0 with Σ_c d_c · clip(r · u_c, L, U) = target over one category.

    ``weights`` are the cells' design weights d_c, ``latent`` their unclipped factors u_c.
    h(r) = Σ d_c · clip(r · u_c, L, U) is continuous, nondecreasing and linear between the
    breakpoints L/u_c and U/u_c, so the root is found exactly: on the segment where h crosses
    the target, with the cells then at L and at U fixed, r = (target − Σ_L d·L − Σ_U d·U) /
    Σ_free d·u. A target below h's floor Σ d·L (above its ceiling Σ d·U) cannot be met
    within the bounds: r then puts every cell of the category at L (at U).
    """
    cells = [(d, u) for d, u in zip(weights, latent, strict=True) if d > 0]
    if not cells:
        return 1.0

    def h(r: float) -> float:
        return sum(d * min(max(r * u, lower), upper) for d, u in cells)

    breakpoints = sorted({b for d, u in cells for b in (lower / u, upper / u) if b < math.inf})
    low = 0.0
    for point in breakpoints:
        if h(point) >= target:
            high = point
            break
        low = point
    else:
        high = math.inf
    if high == low or (low == 0.0 and lower > 0):  # at or below the floor: every cell at L
        return high
    probe = low + 1.0 if high == math.inf else (low + high) / 2
    fixed = free = 0.0
    for d, u in cells:
        if probe * u <= lower:
            fixed += d * lower
        elif probe * u >= upper:
            fixed += d * upper
        else:
            free += d * u
    if free == 0.0:  # above the ceiling: every cell at U
        return low
    return (target - fixed) / free


def rake(
    cells: Mapping[Cell, float],
    margins: Mapping[str, Mapping[str, float]],
    *,
    max_iterations: int,
    tolerance: float,
    bounds: tuple[float, float] | None = None,
) -> tuple[dict[Cell, float], dict[str, Any]]:
    """Bounded IPF of one unit's complete cells (cell → Σ design weight) to its margins.

    ``margins`` maps a dimension (``sex_age``, ``area``) to {category: population}.
    ``bounds`` (L, U) keep every factor in [L, U] (default: the setting
    ``RAKING_FACTOR_BOUNDS``; ``(0, math.inf)`` rakes unbounded). Each cell carries an
    unclipped factor u_c, the product of one multiplier per margin category; its factor is
    g_c = clip(u_c, L, U). Margin by margin and category by category, the category's
    multiplier is solved exactly (``_step``) so that Σ d_c·g_c meets its target: cells at a
    bound stay there and the others are re-raked. The limit is the raking calibration with
    bounds (min Σ d_c (g_c log g_c − g_c + 1) subject to the margins and L ≤ g_c ≤ U),
    whose solution has exactly this form; unbounded, it is plain IPF.

    Returns a factor per cell (1 for cells outside the margins or without weight) and the
    unit's convergence report: converged, iterations (sweeps done), max_deviation (largest
    |raked − target| / target over the margins' categories after the last sweep), cells
    (the cells raked), min_factor, max_factor, cells_at_lower and cells_at_upper (cells
    whose factor is L or U), at_bound, empty_categories per dimension (with no weighted
    cell), outside (design weight left at factor 1).
    Margins that cannot be met within the bounds leave the unit not converged with its
    max_deviation (raking stops early once a sweep changes no factor).
    """
    lower, upper = factor_bounds(bounds)
    dimensions = [d for d in DIMENSIONS if d in margins]
    ordered = sorted(cells)

    def inside_margins(cell: Cell) -> bool:
        return all(margins[d].get(category(cell, d), 0) > 0 for d in dimensions)

    # A cell without weight (e.g. a jackknife replicate's dropped PSU) has nothing to rake.
    design = {cell: cells[cell] for cell in ordered if inside_margins(cell) and cells[cell] > 0}
    total = sum(design.values())
    targets: dict[str, dict[str, float]] = {}
    empty: dict[str, list[str]] = {}
    members: dict[str, dict[str, list[Cell]]] = {}
    for d in dimensions:
        members[d] = defaultdict(list)
        for cell in design:
            members[d][category(cell, d)].append(cell)
        kept = {k: p for k, p in sorted(margins[d].items()) if p > 0 and k in members[d]}
        empty[d] = sorted(k for k, p in margins[d].items() if p > 0 and k not in members[d])
        population = sum(kept.values())
        targets[d] = {k: total * p / population for k, p in kept.items()}

    latent = dict.fromkeys(design, 1.0)
    # Unclipped factors far outside [L, U] only arise from margins the bounds cannot meet,
    # which drive them towards 0 or ∞; kept within [L/10⁶, 10⁶·U] they stay finite.
    low = lower / LATENT_RANGE if lower > 0 else 1 / LATENT_RANGE**50
    high = upper * LATENT_RANGE if math.isfinite(upper) else LATENT_RANGE**50

    def factor(cell: Cell) -> float:
        return min(max(latent[cell], lower), upper)

    def deviation() -> float:
        return max(
            (
                abs(sum(design[c] * factor(c) for c in group) - targets[d][k]) / targets[d][k]
                for d in dimensions
                for k, group in members[d].items()
            ),
            default=0.0,
        )

    iterations = 0
    max_deviation = deviation() if design and total > 0 else None
    previous: list[float] = []
    while max_deviation is not None and max_deviation > tolerance and iterations < max_iterations:
        current = [factor(c) for c in design]
        if current == previous:
            break  # a sweep changed no factor: margins that the bounds do not let be met
        previous = current
        for d in dimensions:
            for k, group in members[d].items():
                r = _step(
                    [design[c] for c in group],
                    [latent[c] for c in group],
                    targets[d][k],
                    lower,
                    upper,
                )
                for c in group:
                    latent[c] = min(max(latent[c] * r, low), high)
        iterations += 1
        max_deviation = deviation()

    factors = {cell: factor(cell) if cell in latent else 1.0 for cell in ordered}
    raked = [factors[cell] for cell in design]
    at_lower = sum(1 for g in raked if math.isclose(g, lower, rel_tol=AT_BOUND))
    at_upper = sum(1 for g in raked if math.isclose(g, upper, rel_tol=AT_BOUND))
    report = {
        "dimensions": dimensions,
        "converged": max_deviation is not None and max_deviation <= tolerance,
        "iterations": iterations,
        "max_deviation": max_deviation,
        "cells": len(design),
        "min_factor": min(raked, default=1.0),
        "max_factor": max(raked, default=1.0),
        "cells_at_lower": at_lower,
        "cells_at_upper": at_upper,
        "at_bound": bool(at_lower or at_upper),
        "empty_categories": {d: cats for d, cats in empty.items() if cats},
        "outside": sum(cells[cell] for cell in ordered if cell not in design),
    }
    return factors, report


def write_weights(
    *, run_id: int, round_id: int, version_id: int, question_ids: Mapping[str, int]
) -> int:
    """One INSERT … SELECT: design weight × cell factor for every response with a factor.

    Responses, with their demographic answers pivoted, are joined to the run's
    ``RakingFactor`` rows; a response without a factor (missing answer, unit without
    margins) gets no row and keeps its design weight. Returns the number of rows written.
    """
    per_response, params = _demographics(round_id, version_id, question_ids)
    # Materialized: the responses' cells are computed once, then looked up in the few
    # factor rows (just written, so the planner has no statistics on them yet).
    sql = (
        f"INSERT INTO {ResponseWeight._meta.db_table} (run_id, response_id, weight) "
        f"WITH x AS MATERIALIZED ({per_response}) "
        f"SELECT f.run_id, x.id, x.weight * f.factor "
        f"FROM x JOIN {RakingFactor._meta.db_table} f "
        f"ON f.run_id = %s AND f.unit_id = x.unit_id "
        f"AND f.sex = x.c_sex AND f.age = x.c_age AND f.area = x.c_area"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, run_id])
        return cursor.rowcount


def weighting_deffs(
    sums: Mapping[tuple[str | None, ...], tuple[int, float, float]],
    factors: Mapping[Cell, float],
) -> tuple[float | None, float | None]:
    """A unit's Kish design effect from weighting before and after raking, from cell sums.

    ``sums`` maps each of the unit's cells (complete or not) to (responses, Σw, Σw²) of its
    design weights; a cell raked by factor g has raked sums g·Σw and g²·Σw² (every response
    of a cell gets the same factor), the others keep theirs. 1 + cv²(w) = n·Σw² / (Σw)².
    """
    n = sum(responses for responses, _w, _w2 in sums.values())
    before = kish_deff(
        n, sum(w for _n, w, _w2 in sums.values()), sum(w2 for _n, _w, w2 in sums.values())
    )
    scale = {cell: factors.get(cell, 1.0) for cell in sums}
    after = kish_deff(
        n,
        sum(scale[cell] * w for cell, (_n, w, _w2) in sums.items()),
        sum(scale[cell] ** 2 * w2 for cell, (_n, _w, w2) in sums.items()),
    )
    return before, after


def unit_flags(unit: Mapping[str, Any]) -> list[str]:
    """Why a unit's raking needs a look: ``at_bound``, ``deff`` (above the warning), or
    ``not_converged`` (margins not met within the bounds and iterations)."""
    return [
        flag
        for flag, raised in (
            ("at_bound", unit["at_bound"]),
            ("deff", unit["deff_above_warning"]),
            ("not_converged", not unit["converged"]),
        )
        if raised
    ]


def rake_run(*, run_id: int, round_id: int, version_id: int) -> dict[str, Any] | None:
    """Rake the round's weights for a run: factors and weights stored, the report returned.

    None (and nothing written) when the round has no margins. Any earlier factors and
    weights of the run are replaced, so a retried run starts over.
    """
    margins: dict[int, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    rows = (
        PopulationMargin.objects.filter(round_id=round_id)
        .order_by("unit_id", "dimension", "category")
        .values_list("unit_id", "dimension", "category", "population")
    )
    for unit_id, dimension, key, population in rows:  # units × categories, not responses
        margins[unit_id][dimension][key] = population
    if not margins:
        return None
    roles = [
        role for d in DIMENSIONS if any(d in m for m in margins.values()) for role in DIMENSIONS[d]
    ]
    question_ids = raking_questions(version_id=version_id, roles=roles)
    if absent := [r for r in roles if r not in question_ids]:
        raise RakingError(
            _(
                "The questionnaire of the round has no question for %(roles)s "
                "(RAKING_QUESTIONS: %(questions)s) to rake its weights to the margins."
            )
            % {"roles": ", ".join(absent), "questions": settings.RAKING_QUESTIONS}
        )
    max_iterations, tolerance = settings.RAKING_MAX_ITERATIONS, settings.RAKING_TOLERANCE
    bounds, deff_warning = factor_bounds(), float(settings.RAKING_DEFF_WARNING)

    complete: dict[int, dict[Cell, float]] = defaultdict(dict)
    cell_responses: dict[tuple[int, Cell], int] = {}
    # Per unit and cell: (responses, Σw, Σw²), for the design effects (cells, not responses).
    sums: dict[int, dict[tuple[str | None, ...], tuple[int, float, float]]] = defaultdict(dict)
    counts: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for unit_id, cell, responses, weight, squares in cell_sums(
        round_id=round_id, version_id=version_id, question_ids=question_ids
    ):
        sums[unit_id][cell] = (responses, weight, squares)
        count = counts[unit_id]
        count["responses"] += responses
        if any(code is None for code in cell):
            count["missing"] += responses
            count["missing_weight"] += weight
        else:
            complete[unit_id][cell] = weight
            cell_responses[unit_id, cell] = responses
    codes = dict(Unit.objects.filter(id__in=counts).values_list("id", "code"))

    factors: list[RakingFactor] = []
    units: dict[str, dict[str, Any]] = {}
    flagged: dict[str, list[str]] = {}
    for unit_id in sorted(counts, key=lambda u: codes[u]):
        if unit_id not in margins:
            continue
        unit_factors, report = rake(
            complete[unit_id],
            margins[unit_id],
            max_iterations=max_iterations,
            tolerance=tolerance,
            bounds=bounds,
        )
        factors += [
            RakingFactor(
                run_id=run_id,
                unit_id=unit_id,
                sex=cell[0],
                age=cell[1],
                area=cell[2],
                responses=cell_responses[unit_id, cell],
                design_weight=complete[unit_id][cell],
                factor=factor,
            )
            for cell, factor in unit_factors.items()
        ]
        count = counts[unit_id]
        before, after = weighting_deffs(sums[unit_id], unit_factors)
        units[codes[unit_id]] = {
            "responses": int(count["responses"]),
            "missing": int(count["missing"]),
            "missing_weight": count["missing_weight"],
            **report,
            "deff_before": before,
            "deff_after": after,
            "deff_above_warning": after is not None and after > deff_warning,
        }
        if flags := unit_flags(units[codes[unit_id]]):
            flagged[codes[unit_id]] = flags
    with transaction.atomic():
        ResponseWeight.objects.filter(run_id=run_id).delete()
        RakingFactor.objects.filter(run_id=run_id).delete()
        RakingFactor.objects.bulk_create(factors, batch_size=2000)
        written = write_weights(
            run_id=run_id, round_id=round_id, version_id=version_id, question_ids=question_ids
        )
    return {
        "questions": {role: settings.RAKING_QUESTIONS[role] for role in question_ids},
        "max_iterations": max_iterations,
        "tolerance": tolerance,
        "factor_bounds": [bound if math.isfinite(bound) else None for bound in bounds],
        "deff_warning": deff_warning,
        "converged": all(u["converged"] for u in units.values()),
        "flagged": flagged,
        "raked_responses": written,
        "units": units,
        "units_without_margins": sorted(codes[u] for u in counts if u not in margins),
    }
