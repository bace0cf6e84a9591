"""Replicate variance of a round's values: the jackknife by PSU within strata (JKn).

A round whose ``variance_method`` is ``jackknife`` gets its standard errors from
replicates instead of Taylor linearization (``scoring.engine``). For each stratum h with
n_h ≥ 2 PSUs and each PSU i of it, replicate (h, i) drops PSU i, multiplies the design
weights of the other PSUs of stratum h by n_h/(n_h − 1) and keeps every other weight; when
the run rakes (the round has population margins), each unit the replicate touches is raked
again to its margins by the very routine the full sample uses (``raking.rake``), so that
raking's effect on precision is counted. Every node value θ_(hi) of the touched units and of
the nation is recomputed from the replicate's item totals through the engine's tree
(``engine.node_values``), and

    v(θ) = Σ_h (1 − f_h) · (n_h − 1)/n_h · Σ_i (θ_(hi) − θ)²,    SE = 100 · √v (0–100),

f_h = n_h/N_h when the round gives the stratum's population N_h in PSUs
(``StratumPopulation``), else 0 (and 0 for collapsed strata).

Design (``feedback.design``): stratum = the response's stratum, or its unit when empty;
PSU = (stratum, psu), the response itself when its psu is empty. A stratum with one PSU
gives no replicate; the rule is the Taylor estimator's: a stratum's home unit is the lowest
unit id among its responses; two or more single-PSU strata of one home unit are collapsed
into one stratum; a lone one joins the home unit's stratum with the most PSUs (ties: the
first code); one left over (no other stratum in its home unit) is a certainty PSU and adds
nothing. A scope (unit, nation) that no replicate touches, or whose node loses its value in
some replicate (all its answers in the dropped PSU), gets no SE (None), as R's ``survey``
gives NA.

Only units touching stratum h change in replicate (h, i), so the national (pooled) value
of the replicate comes from the full national item totals minus the touched units' full
totals plus their replicate totals.

Data: three set-based reads, kept only as numpy arrays: the responses with their design
codes and design weight; their raking cells (``raking``'s per-response pivot of the
sex/age/area answers); the scored answers grouped per response into bit masks (one row per
response), unpacked into two responses × items matrices (valid, satisfied answers). Per
replicate the work is a few numpy products over the touched units' responses, one IPF per
touched raked unit and two tree evaluations: R = Σ_h n_h replicates cost about
R × (IPF + 2 evaluations); docs/scoring-method gives the measured figures.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection

from feedback.design import stratum_populations, with_design
from feedback.models import Answer, Response
from scoring import engine, intervals, raking
from scoring.models import PopulationMargin
from scoring.sql import SatisfiedRule, counted_response
from surveys.models import Indicator, Round

BITS_PER_WORD = 63  # answer bits per integer mask (a signed 64-bit integer in both databases)
SEPARATOR = "\x1f"  # joins a cell's codes (never inside a choice code)
Margins = dict[str, dict[str, float]]


@dataclass
class _Unit:
    """One unit's responses (a slice of the sample) and what its replicates need."""

    id: int
    rows: slice
    cells: list[raking.Cell]  # the round's complete cells; a response's cell indexes them
    margins: Margins | None  # None: the unit is not raked
    factor: np.ndarray  # full-sample raking factor per response (1 if not raked)
    y: np.ndarray  # full-sample Σ w·satisfied per item
    x: np.ndarray  # full-sample Σ w·valid per item


@dataclass
class _Sample:
    """The round's responses as arrays, sorted by unit (each unit a contiguous slice)."""

    weight: np.ndarray  # design weight
    stratum: np.ndarray  # collapsed stratum index
    psu: np.ndarray  # PSU index (distinct per (stratum, psu) pair)
    cell: np.ndarray  # index into the round's complete cells, −1 for an incomplete one
    satisfied: np.ndarray  # responses × items: satisfied answers
    valid: np.ndarray  # responses × items: valid answers
    units: list[_Unit]


@dataclass(frozen=True)
class JackknifeResult:
    """Jackknife SEs (0–100 scale) by (unit id or None for the nation, indicator id)."""

    se: dict[tuple[int | None, int], float | None]
    replicates: int
    strata: int  # strata with replicates, after collapsing
    certainty: int  # single-PSU strata left over (no replicate)
    values: dict[tuple[int | None, int], float | None] = dataclasses.field(default_factory=dict)
    # the full-sample values θ (0–100) the replicates are centred on


def jackknife(
    *,
    round_id: int,
    version_id: int,
    rerake: bool = True,
    say: Callable[[str], None] = lambda message: None,
) -> JackknifeResult:
    """The JKn standard error of every node value per unit and nationally (see module).

    ``rerake`` False keeps the full sample's raking factors in every replicate (raked
    weights treated as fixed), for comparison only.
    """
    roots = engine._indicator_tree(version_id=version_id)
    nodes = list(engine._walk(roots))
    item_ids = sorted(n.id for n in nodes if n.aggregation == Indicator.Aggregation.SHARE)
    questions_of, rules = engine._scored_questions(version_id=version_id, items=set(item_ids))
    sample, strata_psus, fpc, certainty = _read_sample(
        round_id=round_id,
        version_id=version_id,
        item_ids=item_ids,
        questions_of=questions_of,
        rules=rules,
    )
    node_ids = [n.id for n in nodes]

    def values(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        totals = {item: (float(y[k]), float(x[k])) for k, item in enumerate(item_ids)}
        out = engine.node_values(roots, totals)
        return np.array([np.nan if out[n] is None else out[n] for n in node_ids])

    national_y = sum((u.y for u in sample.units), np.zeros(len(item_ids)))
    national_x = sum((u.x for u in sample.units), np.zeros(len(item_ids)))
    theta = {u.id: values(u.y, u.x) for u in sample.units}
    theta[None] = values(national_y, national_x)
    variance = {scope: np.zeros(len(node_ids)) for scope in theta}
    lost = {scope: np.zeros(len(node_ids), dtype=bool) for scope in theta}
    touched: set[int | None] = set()

    units_of_stratum: dict[int, list[_Unit]] = defaultdict(list)
    for unit in sample.units:
        for h in np.unique(sample.stratum[unit.rows]):
            units_of_stratum[int(h)].append(unit)

    total = sum(len(psus) for psus in strata_psus.values())
    step = max(1, total // 10)
    done = 0
    for h, psus in sorted(strata_psus.items()):
        n_h = len(psus)
        scale, c_h = n_h / (n_h - 1), fpc[h] * (n_h - 1) / n_h
        affected = units_of_stratum[h]
        for psu in psus:
            dy, dx = np.zeros(len(item_ids)), np.zeros(len(item_ids))
            for unit in affected:
                y, x = _replicate_totals(sample, unit, h, psu, scale, rerake=rerake)
                dy += y - unit.y
                dx += x - unit.x
                _accumulate(values(y, x), theta[unit.id], c_h, variance[unit.id], lost[unit.id])
                touched.add(unit.id)
            _accumulate(
                values(national_y + dy, national_x + dx),
                theta[None],
                c_h,
                variance[None],
                lost[None],
            )
            touched.add(None)
            done += 1
            if done % step == 0 or done == total:
                say(f"jackknife: replicate {done} of {total}")

    se: dict[tuple[int | None, int], float | None] = {}
    full: dict[tuple[int | None, int], float | None] = {}
    for scope, v in variance.items():
        for k, node in enumerate(node_ids):
            known = not math.isnan(theta[scope][k])
            full[scope, node] = 100 * float(theta[scope][k]) if known else None
            ok = known and scope in touched and not lost[scope][k]
            se[scope, node] = 100 * math.sqrt(v[k]) if ok else None
    return JackknifeResult(
        se=se, replicates=total, strata=len(strata_psus), certainty=certainty, values=full
    )


def _accumulate(
    replicate: np.ndarray, full: np.ndarray, c_h: float, variance: np.ndarray, lost: np.ndarray
) -> None:
    """variance += c_h·(θ_(hi) − θ)²; a value the replicate lost is marked."""
    diff = replicate - full
    lost |= np.isnan(replicate) & ~np.isnan(full)
    variance += c_h * np.nan_to_num(diff, nan=0.0) ** 2


def _replicate_totals(
    sample: _Sample, unit: _Unit, h: int, psu: int, scale: float, *, rerake: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The unit's item totals (Σ w·s, Σ w·x) in replicate (h, psu)."""
    rows = unit.rows
    weight = sample.weight[rows].copy()
    weight[sample.stratum[rows] == h] *= scale
    weight[sample.psu[rows] == psu] = 0.0
    factor = unit.factor
    if rerake and unit.margins is not None:
        factor = _factors(unit, sample.cell[rows], weight)
    w = weight * factor
    return w @ sample.satisfied[rows], w @ sample.valid[rows]


def _factors(unit: _Unit, cell: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per response of the unit, its cell's raking factor for these design weights."""
    complete = cell >= 0
    sums = np.bincount(cell[complete], weights=weight[complete], minlength=len(unit.cells))
    cells = {c: float(s) for c, s in zip(unit.cells, sums, strict=True) if s > 0}
    factors = _rake(cells, unit.margins or {})
    lookup = np.array([factors.get(c, 1.0) for c in unit.cells] + [1.0])
    return lookup[cell]  # cell −1 reads the last entry, 1


def _rake(cells: dict[raking.Cell, float], margins: Margins) -> dict[raking.Cell, float]:
    """The full sample's raking routine and settings (``raking.rake_run``): bounded IPF."""
    factors, _report = raking.rake(
        cells,
        margins,
        max_iterations=settings.RAKING_MAX_ITERATIONS,
        tolerance=settings.RAKING_TOLERANCE,
        bounds=raking.factor_bounds(),
    )
    return factors


def _round_margins(round_id: int) -> dict[int, Margins]:
    margins: dict[int, Margins] = defaultdict(lambda: defaultdict(dict))
    rows = (
        PopulationMargin.objects.filter(round_id=round_id)
        .order_by("unit_id", "dimension", "category")
        .values_list("unit_id", "dimension", "category", "population")
    )
    for unit_id, dimension, key, population in rows:  # units × categories
        margins[unit_id][dimension][key] = population
    return {u: dict(m) for u, m in margins.items()}


def _read_sample(
    *,
    round_id: int,
    version_id: int,
    item_ids: Sequence[int],
    questions_of: dict[int, list[int]],
    rules: Sequence[SatisfiedRule],
) -> tuple[_Sample, dict[int, list[int]], dict[int, float], int]:
    """The sample as arrays; the collapsed strata with ≥ 2 PSUs (stratum → its PSUs), their
    finite population corrections 1 − f_h; the number of single-PSU strata left over."""
    responses = Response.objects.filter(round_id=round_id, version_id=version_id).exclude(
        review_state=Response.ReviewState.EXCLUDED
    )
    rows = list(
        with_design(responses)
        .order_by("unit_id", "id")
        .values_list("id", "unit_id", "weight", "design_stratum", "design_psu")
    )
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    unit_of = np.array([r[1] for r in rows], dtype=np.int64)
    weight = np.array([r[2] for r in rows], dtype=float)
    stratum_codes, stratum = np.unique([r[3] for r in rows], return_inverse=True)
    _psu_codes, psu = np.unique([f"{r[3]}\x1f{r[4]}" for r in rows], return_inverse=True)
    del rows
    populations = stratum_populations(Round.objects.get(pk=round_id))
    stratum, strata_psus, fpc, certainty = _collapse(
        stratum, psu, unit_of, stratum_codes, populations
    )

    by_id = np.argsort(ids)  # rows sorted by unit; lookups by response id go through this
    item_index = {q: k for k, item in enumerate(item_ids) for q in questions_of[item]}
    satisfied = np.zeros((len(ids), len(item_ids)))
    valid = np.zeros((len(ids), len(item_ids)))
    if item_index and len(ids):
        _read_answers(round_id, version_id, rules, item_index, ids, by_id, satisfied, valid)

    margins = _round_margins(round_id)
    cell = np.full(len(ids), -1, dtype=np.int64)
    cells: list[raking.Cell] = []
    if margins and len(ids):
        cells = _read_cells(round_id, version_id, margins, ids, by_id, cell)

    units = []
    starts = np.flatnonzero(np.r_[True, unit_of[1:] != unit_of[:-1]]) if len(ids) else []
    bounds = [*map(int, starts), len(ids)]
    for a, b in itertools.pairwise(bounds):
        unit_id = int(unit_of[a])
        unit = _Unit(
            id=unit_id,
            rows=slice(a, b),
            cells=cells,
            margins=margins.get(unit_id),
            factor=np.ones(b - a),
            y=np.zeros(len(item_ids)),
            x=np.zeros(len(item_ids)),
        )
        if unit.margins is not None:
            unit.factor = _factors(unit, cell[a:b], weight[a:b])
        w = weight[a:b] * unit.factor
        unit.y, unit.x = w @ satisfied[a:b], w @ valid[a:b]
        units.append(unit)
    sample = _Sample(weight, stratum, psu, cell, satisfied, valid, units)
    return sample, strata_psus, fpc, certainty


def _collapse(
    stratum: np.ndarray,
    psu: np.ndarray,
    unit_of: np.ndarray,
    codes: np.ndarray,
    populations: dict[str, int],
) -> tuple[np.ndarray, dict[int, list[int]], dict[int, float], int]:
    """Collapse single-PSU strata within their home unit (see module): the responses'
    collapsed strata, each stratum's PSUs (those with ≥ 2), its 1 − f_h, and the number of
    single-PSU strata left over. Loops over strata and PSUs, not responses."""
    pairs = np.unique(np.c_[stratum, psu], axis=0)
    psus_of: dict[int, list[int]] = defaultdict(list)
    for h, i in pairs:
        psus_of[int(h)].append(int(i))
    home: dict[int, int] = {}  # a stratum's home unit: the lowest unit id among its responses
    for h, u in np.unique(np.c_[stratum, unit_of], axis=0):
        home.setdefault(int(h), int(u))
    strata_of_unit: dict[int, list[int]] = defaultdict(list)
    for h, u in sorted(home.items()):
        strata_of_unit[u].append(h)
    into = {h: h for h in psus_of}
    for strata in strata_of_unit.values():
        singles = [h for h in strata if len(psus_of[h]) == 1]
        others = [h for h in strata if len(psus_of[h]) > 1]
        if len(singles) >= 2:
            for h in singles:
                into[h] = singles[0]
        elif singles and others:
            largest = max(others, key=lambda h: (len(psus_of[h]), -h))  # ties: first code
            into[singles[0]] = largest
    mapping = np.array([into[h] for h in range(len(codes))], dtype=np.int64)
    collapsed: dict[int, list[int]] = defaultdict(list)
    members: dict[int, int] = defaultdict(int)
    for h, psus in psus_of.items():
        collapsed[into[h]] += psus
        members[into[h]] += 1
    strata_psus = {h: sorted(p) for h, p in collapsed.items() if len(p) > 1}
    fpc = {}
    for h, psus in strata_psus.items():
        size = populations.get(str(codes[h])) if members[h] == 1 else None
        fpc[h] = max(0.0, 1 - len(psus) / size) if size else 1.0  # collapsed: none
    certainty = sum(1 for p in collapsed.values() if len(p) == 1)
    return mapping[stratum], strata_psus, fpc, certainty


def _satisfied_sql(rules: Sequence[SatisfiedRule]) -> tuple[str, list[Any]]:
    """CASE … THEN 1 ELSE 0: the engine's satisfied rules (``engine._scored_questions``)."""
    whens, params = [], []
    for rule in rules:
        if rule.values:
            whens.append(
                f"WHEN a.question_id IN ({', '.join(['%s'] * len(rule.question_ids))}) "
                f"AND a.{rule.column} IN ({', '.join(['%s'] * len(rule.values))}) THEN 1"
            )
            params += [*rule.question_ids, *rule.values]
    return (f"CASE {' '.join(whens)} ELSE 0 END" if whens else "0"), params


def _read_answers(
    round_id: int,
    version_id: int,
    rules: Sequence[SatisfiedRule],
    item_index: dict[int, int],
    ids: np.ndarray,
    by_id: np.ndarray,
    satisfied: np.ndarray,
    valid: np.ndarray,
) -> None:
    """Count each response's valid and satisfied answers per item, in one statement.

    The answers are grouped per response into bit masks (one bit per scored question, 63
    per integer word; a response answers a question once, so the SUM of the bits is their
    OR): one short row per response reaches Python, where numpy unpacks the bits and sums
    them per item.
    """
    questions = sorted(item_index)
    case, params = _satisfied_sql(rules)
    words = []
    for start in range(0, len(questions), BITS_PER_WORD):
        chunk = questions[start : start + BITS_PER_WORD]
        bit = " ".join(f"WHEN {int(q)} THEN {1 << k}" for k, q in enumerate(chunk))
        bit = f"CASE a.question_id {bit} ELSE 0 END"
        words += [f"SUM({bit})", f"SUM(({case}) * {bit})"]
    sql = (
        f"SELECT a.response_id, {', '.join(words)} "
        f"FROM {Answer._meta.db_table} a "
        f"JOIN {Response._meta.db_table} r ON r.id = a.response_id "
        f"AND a.round_id = r.round_id "  # the round's partition only (PostgreSQL)
        f"WHERE r.round_id = %s AND r.version_id = %s AND {counted_response()} "
        f"AND a.question_id IN ({', '.join(['%s'] * len(questions))}) "
        f"GROUP BY a.response_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*(params * (len(words) // 2)), round_id, version_id, *questions])
        masks = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 1 + len(words))
    rows = by_id[np.searchsorted(ids[by_id], masks[:, 0])]
    shifts = np.arange(BITS_PER_WORD, dtype=np.int64)
    item_of = np.array([item_index[q] for q in questions], dtype=np.int64)
    for w in range(len(words) // 2):
        chunk = item_of[w * BITS_PER_WORD : (w + 1) * BITS_PER_WORD]
        one_hot = np.zeros((len(chunk), valid.shape[1]))  # question → its item
        one_hot[np.arange(len(chunk)), chunk] = 1.0
        for column, target in ((1 + 2 * w, valid), (2 + 2 * w, satisfied)):
            bits = (masks[:, column, None] >> shifts[: len(chunk)]) & 1
            target[rows] += bits @ one_hot


def _read_cells(
    round_id: int,
    version_id: int,
    margins: dict[int, Margins],
    ids: np.ndarray,
    by_id: np.ndarray,
    cell: np.ndarray,
) -> list[raking.Cell]:
    """Each response's raking cell (as ``raking.rake_run`` reads it): the round's distinct
    complete cells, and per response its index in them (−1 when incomplete)."""
    roles = [
        role
        for d in raking.DIMENSIONS
        if any(d in m for m in margins.values())
        for role in raking.DIMENSIONS[d]
    ]
    question_ids = raking.raking_questions(version_id=version_id, roles=roles)
    per_response, params = raking._demographics(
        round_id=round_id, version_id=version_id, question_ids=question_ids
    )
    sql = (
        f"SELECT d.id, d.c_sex, d.c_age, d.c_area FROM ({per_response}) d "
        f"WHERE d.c_sex IS NOT NULL AND d.c_age IS NOT NULL AND d.c_area IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()  # one short row per complete response
    if not rows:
        return []
    codes, index = np.unique(
        np.array([SEPARATOR.join(r[1:]) for r in rows], dtype=object), return_inverse=True
    )
    found = np.array([r[0] for r in rows], dtype=np.int64)
    cell[by_id[np.searchsorted(ids[by_id], found)]] = index
    return [tuple(code.split(SEPARATOR)) for code in codes]


def apply(values: list[engine.NodeValue], result: JackknifeResult) -> list[engine.NodeValue]:
    """The engine's values with jackknife SEs, intervals, and the design effect rescaled.

    deff_jk = deff · (SE_jk / SE_taylor)² where both exist; n_eff = n / deff_jk.
    """
    out = []
    for v in values:
        se = result.se.get((v.unit_id, v.indicator_id))
        deff = None
        if se is not None and v.deff is not None and v.se:
            deff = v.deff * (se / v.se) ** 2
        n_eff = v.n / deff if deff else None
        low, high = intervals.interval(v.value, se, n=v.n, n_eff=n_eff, df=v.df)
        out.append(dataclasses.replace(v, se=se, deff=deff, n_eff=n_eff, ci_low=low, ci_high=high))
    return out


def with_jackknife(
    values: list[engine.NodeValue], run: Any, *, say: Callable[[str], None]
) -> tuple[list[engine.NodeValue], dict[str, Any]]:
    """A run's unit and national values with jackknife SEs, and what ``settings_used``
    records of it. Agency values keep their Taylor SEs."""
    code = run.round.code
    result = jackknife(
        round_id=run.round_id,
        version_id=run.round.version_id,
        say=lambda message: say(f"{code}: {message}"),
    )
    used = {
        "method": "jackknife",
        "replicates": result.replicates,
        "strata": result.strata,
        "certainty_strata": result.certainty,
    }
    return apply(values, result), used
