"""Indicator values of a round, per unit and nationally, computed set-based in the database.

``compute_values(round_id=…, version_id=…)`` reads the responses of a round answered on
one questionnaire version and returns a ``NodeValue`` for every indicator node of that
version, for every unit with at least one response (``unit_id`` = the unit's id) and for
the nation (``unit_id`` None). It writes nothing: runs persist the values elsewhere.
Units without responses get no rows. Rows come unit by unit (ascending id), the nation
last, and within a scope in tree order (pre-order by position, then code).

Which rule applies to a node is data (``Indicator.aggregation`` and ``weight``,
``Question.indicator`` and ``satisfied_values``), never a SIPAS code:

``share`` (an item)
    100 × Σ w·[answer ∈ satisfied values] / Σ w over the valid answers of the questions
    feeding the item. A valid answer is a stored ``Answer`` row; a question not answered
    or hidden by its condition has no row and does not count. Satisfied membership is
    tested in SQL: scale, number and yes/no answers on ``number IN (…)`` (yes/no values
    true/false are 1/0), single choice on ``code IN (…)``. Multiple-choice questions are
    not supported: ``UnsupportedQuestion`` is raised rather than a silently wrong value.
    Questions tagged with a node that is not a ``share`` node are ignored.
``mean``
    The unweighted mean of the values of the children that have one.
``weighted_mean``
    Σ weight·value / Σ weight over the children that have a value (None if that Σ is 0).
``pooled``
    100 × Σ w·satisfied / Σ w over all valid answers of all ``share`` nodes below.

A node with no valid answer below it has value None. The national value applies the same
rules to all respondents of the round pooled, with their weights (respondents that name
no unit at the chosen level, e.g. no agency, count nationally only).

Precision: design-based standard errors by Taylor linearization, the ultimate-cluster
estimator of R ``svydesign(ids=~psu, strata=~stratum, weights=~w, nest=TRUE)``.

*Linearized scores.* Writing, for item j in a scope, p_j = Y_j/X_j with Y_j = Σ_i w_i·y_ij
and X_j = Σ_i w_i·x_ij (x_ij valid answers, y_ij satisfied ones of respondent i), a ``mean``
or ``weighted_mean`` node is Σ_j c_j·p_j, the c_j being the products of the (renormalized)
child coefficients along the path to each item: children without a value are left out and
the others' weights rescaled to sum 1. Its linearized score per respondent is
z_i = Σ_j c_j·w_i·(y_ij − p_j·x_ij)/X_j; a ``pooled`` node P = ΣY/ΣX over its items has
z_i = w_i·(Σ_j y_ij − P·Σ_j x_ij)/ΣX; a node below a mean combines its children's scores
with the same c. A respondent outside the scope, or without an answer under the node, has
z_i = 0 (domain estimation: the scope is a domain of the design).

*Design* (``feedback.design``). A response's stratum is its ``stratum`` code, or its unit
when it gives none; codes are global, so a given stratum may span units, and the nation is
stratified by the given strata (by unit in the default design). Its PSU is (stratum, psu),
nested in the stratum; without ``psu`` the response is its own PSU.

*Variance.* With z_hp the total of z over the respondents of PSU p of stratum h,

    v = Σ_h (1 − f_h) · n_h/(n_h − 1) · Σ_p (z_hp − z̄_h)²,    SE = 100·√v,

n_h the number of PSUs of stratum h among all responses of the round and version (with an
answer or not, of the scope or not: PSUs without members of the scope have z_hp = 0), and
f_h = n_h/N_h with N_h the stratum's population of PSUs (``StratumPopulation``), else 0
(1 − f_h is kept ≥ 0). Nationally the same with the national scores, PSU totals taken across
scopes (a village may hold respondents of several agencies). Single-PSU strata: those of
one home unit (the lowest unit id among a stratum's responses) are collapsed into one
stratum when there are two or more; a single one joins its home unit's stratum with the
most PSUs; without one it stays alone and adds no variance (a certainty PSU). Collapsed
strata have no finite population correction. SE is None when the value is None, when the
scope's responses lie in fewer than two PSUs, or when no stratum the node is answered in
has two PSUs after collapsing. In the default design (no PSU, no stratum) each unit is one
stratum of its respondents, so a unit's SE is the simple formula N/(N−1)·Σ(z − z̄)²; the
national SE is stratified by unit.

*Design effect.* deff = v / v_srs with v_srs = N/(N−1)·Σ_i (z_i − z̄)² over the scope's N
respondents (every response of the scope; the same z, each respondent its own PSU, the
scope one stratum, no finite population correction), None when v_srs = 0 (e.g. a value
of 0 or 100) or the SE is None; n_eff = n/deff (None when deff is None or 0).

*Interval.* ``scoring.intervals.interval``: the logit interval inside (0, 100) with the t
quantile on df = PSUs − strata holding the scope's responses (``NodeValue.df``; as R's
``svyciprop``), and at 0 or 100 Clopper–Pearson on n_eff, or on n when n_eff is None.

Other figures: ``n`` counts respondents with at least one valid answer under the node,
``valid`` their valid answers, ``weight_sum`` the weights of those ``n`` respondents.

Source: the compact response records (``feedback.records``: one row per response, the
scored answers as bit masks) unless ``source="answers"``; from the records the linearized
sums are computed in numpy, streamed (``scoring.linear``), and the rest in SQL as below.

Queries: a constant eight whatever the number of responses, units or nodes — the tree, the
scored questions, the design (responses and PSUs per scope and stratum; PSUs and home unit
per stratum), the units' codes and the round's stratum populations, the item totals per
(scope, question), and the linearized sums in one statement. ``sql.linearized_sums``
groups the answers per respondent into bit masks (answered, satisfied), computes from one
row per respondent the z of each block (the parent of items) and of each node, sums them
per PSU and then per (scope, stratum), and the national z per PSU across scopes; the
coefficients travel as one JSON parameter. Items fed by one question need no coefficient:
a respondent answers them once, so a PSU's z is a·Y_p − b·X_p and Σ_p z_p² =
a²ΣY_p² − 2abΣY_pX_p + b²ΣX_p², with Y_p and X_p summed from the masks in the same
statement. Only per-stratum and per-node figures reach Python, always summed in the same
order, so SQLite and PostgreSQL agree to 1e-9.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from feedback.design import effective_stratum, stratum_populations
from feedback.records import UnsupportedQuestion  # noqa: F401  (re-exported: the engine's error)
from feedback.records import satisfied_rule as _satisfied_rule
from scoring import linear, sql
from scoring.intervals import interval
from scoring.sql import NATIONAL, NO_SCOPE, SatisfiedRule
from surveys.models import Indicator, Question, Round, Unit


@dataclass(frozen=True, slots=True)
class NodeValue:
    """One node's value in one unit (``unit_id`` None: the nation), on a 0–100 scale."""

    indicator_id: int
    indicator_code: str
    unit_id: int | None
    value: float | None
    n: int
    valid: int
    weight_sum: float
    se: float | None
    ci_low: float | None
    ci_high: float | None
    deff: float | None = None  # design effect: design variance / simple-sample variance
    n_eff: float | None = None  # effective sample size, n / deff
    df: int | None = None  # the design's degrees of freedom in the scope: PSUs − strata


@dataclass
class _Node:
    id: int
    code: str
    aggregation: str
    weight: float
    children: list[_Node]
    items: list[int]  # the share nodes at or below this node


# item id → (a, b): each valid answer of the item adds w·(a·s − b) to z_i
_Linear = dict[int, tuple[float, float]]


def compute_values(
    *,
    round_id: int,
    version_id: int,
    unit_level: str = "unit",
    unit_map: Mapping[int, int] | None = None,
    weights_run_id: int | None = None,
    source: str | None = None,
) -> list[NodeValue]:
    """Every indicator node's value per unit with responses and nationally (unit None).

    ``unit_map`` (unit id → unit id) pools units before computing, e.g. the predecessors of
    a merged province under the successor's id; unmapped units stay as they are.
    ``weights_run_id``: w is each response's raked weight in that run where it has one
    (``scoring.raking``), else its design weight.
    ``source``: ``sql.RECORDS`` reads the compact response records (``feedback.records``,
    the default whenever they hold the version's scored questions), ``sql.ANSWERS`` the
    answer table (the reference the records are tested against).
    """
    if unit_level not in sql.SCOPE_COLUMNS:
        raise ValueError(f"unit_level must be one of {sorted(sql.SCOPE_COLUMNS)}")
    roots = _indicator_tree(version_id=version_id)
    nodes = list(_walk(roots))
    items = {node.id for node in nodes if node.aggregation == Indicator.Aggregation.SHARE}
    questions_of, rules = _scored_questions(version_id=version_id, items=items)
    question_ids = sorted(q for qs in questions_of.values() for q in qs)
    source = source or sql.use_records(question_ids)

    read = sql.Reading(
        round_id, version_id, unit_level, rules, question_ids, unit_map, weights_run_id
    )
    design = _design(read, source=source)
    respondents = design.respondents
    groups = sorted(s for s in respondents if s != NATIONAL)  # the SQL's, NO_SCOPE included
    scopes = [*(s for s in groups if s != NO_SCOPE), NATIONAL]

    item_of = {q: item for item, qs in questions_of.items() for q in qs}
    totals: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(_zeros))
    if question_ids and respondents[NATIONAL]:
        rows = linear.item_totals(read) if source == sql.RECORDS else sql.item_totals(read)
        for scope, question, y, x, valid in sorted(rows):  # the same order anywhere
            for key in (scope, NATIONAL):
                figures = totals[key][item_of[question]]
                figures[0] += y
                figures[1] += x
                figures[2] += valid

    evaluated = {scope: _evaluate(roots, totals[scope]) for scope in [*groups, NATIONAL]}
    sums: dict[tuple[int, int], _Sums] = defaultdict(_Sums)
    # Items fed by one question: a respondent answers them at most once, so their linearized
    # sums follow from Y and X per PSU (no coefficient per respondent); n and Σw are their
    # valid answers and the weights of those.
    single = {qs[0]: item for item, qs in questions_of.items() if len(qs) == 1}
    for scope in groups:
        for item in sorted(single.values()):
            _y, x, valid = totals[scope].get(item, _zeros())
            if valid:
                sums[scope, item].add(valid, x, 0.0, 0.0)
                sums[NATIONAL, item].add(valid, x, 0.0, 0.0)

    # Other nodes: one row per (scope, node, question answered in the scope), the unit's
    # coefficients beside the nation's, so the answers are read once for both.
    single_items = set(single.values())
    coefficients = [
        (scope, node_id, q, a, b, *evaluated[NATIONAL][node_id][1][item])
        for scope in groups
        for node_id, (_value, linear) in evaluated[scope].items()
        if node_id not in single_items
        for item, (a, b) in sorted(linear.items())
        for q in questions_of[item]
    ]
    # A question's block: the parent of its item (see sql.linearized_sums).
    parent_of = {child.id: node.id for node in nodes for child in node.children}
    block_of = {
        q: parent_of[item] for item, qs in questions_of.items() for q in qs if item in parent_of
    }
    singles = sorted(single) if question_ids else []
    if source == sql.RECORDS:  # streamed from the records, summed in numpy
        node_rows, item_rows = linear.linearized_sums(
            read, coefficients=coefficients, single_questions=singles
        )
    else:
        node_rows, item_rows = sql.linearized_sums(
            read,
            coefficients=coefficients,
            block_of=block_of,
            scopes=groups,
            single_questions=singles,
        )
    for scope, st, su, node, *figures in sorted(node_rows):
        unit, nation = sums[scope, node], sums[NATIONAL, node]
        n, weight_sum, sum_z, sum_zz, psu_zz, national_z, national_zz = figures
        if scope == NATIONAL:
            nation.stratum((st, su), 0.0, psu_zz)
            continue
        unit.add(n, weight_sum, sum_z, sum_zz)
        unit.stratum((st, su), sum_z, psu_zz)
        nation.add(n, weight_sum, national_z, national_zz)
        nation.stratum((st, su), national_z, 0.0)
    for scope, st, su, question, y, x, yy, xx, py2, pyx, px2 in sorted(item_rows):
        # z = w·(a·s − b) per answer, s ∈ {0, 1}: per respondent Σz = aΣws − bΣw and
        # Σz² = (a² − 2ab)Σw²s + b²Σw²; per PSU z_p = a·Y_p − b·X_p, so
        # Σ_p z_p² = a²ΣY_p² − 2abΣY_pX_p + b²ΣX_p².
        item = single[question]
        na, nb = evaluated[NATIONAL][item][1][item]
        nation = sums[NATIONAL, item]
        if scope == NATIONAL:
            nation.stratum((st, su), 0.0, _quadratic(na, nb, py2, pyx, px2))
            continue
        a, b = evaluated[scope][item][1][item]
        unit = sums[scope, item]
        unit.add(0, 0.0, a * y - b * x, _quadratic(a, b, yy, yy, xx))
        unit.stratum((st, su), a * y - b * x, _quadratic(a, b, py2, pyx, px2))
        nation.add(0, 0.0, na * y - nb * x, _quadratic(na, nb, yy, yy, xx))
        nation.stratum((st, su), na * y - nb * x, 0.0)

    result = []
    for scope in scopes:
        for node in nodes:
            value = evaluated[scope][node.id][0]
            figures = sums.get((scope, node.id), _Sums())
            precision = _precision(value, figures, design, respondents[scope], design.psus[scope])
            se, deff, n_eff = precision
            df = design.psus[scope] - design.strata.get(scope, 0)
            df = df if df > 0 else None
            low, high = interval(
                None if value is None else 100 * value, se, n=int(figures.n), n_eff=n_eff, df=df
            )
            result.append(
                NodeValue(
                    indicator_id=node.id,
                    indicator_code=node.code,
                    unit_id=None if scope == NATIONAL else scope,
                    value=None if value is None else 100 * value,
                    n=int(figures.n),
                    valid=int(sum(totals[scope][item][2] for item in node.items)),
                    weight_sum=figures.weight_sum,
                    se=se,
                    ci_low=low,
                    ci_high=high,
                    deff=deff,
                    n_eff=n_eff,
                    df=df,
                )
            )
    return result


def _zeros() -> list[float]:
    return [0.0, 0.0, 0]  # Σ w·satisfied, Σ w, valid answers


def _indicator_tree(*, version_id: int) -> list[_Node]:
    rows = list(
        Indicator.objects.filter(version_id=version_id)
        .order_by("position", "code")
        .values_list("id", "code", "parent_id", "aggregation", "weight")
    )
    nodes = {pk: _Node(pk, code, agg, weight, [], []) for pk, code, _p, agg, weight in rows}
    roots = []
    for pk, _code, parent_id, _agg, _weight in rows:
        (nodes[parent_id].children if parent_id in nodes else roots).append(nodes[pk])

    def collect(node: _Node) -> list[int]:
        below = [item for child in node.children for item in collect(child)]
        node.items = [node.id] if node.aggregation == Indicator.Aggregation.SHARE else below
        return node.items

    for root in roots:
        collect(root)
    return roots


def _walk(nodes: list[_Node]) -> Iterator[_Node]:
    for node in nodes:
        yield node
        yield from _walk(node.children)


def _scored_questions(
    *, version_id: int, items: set[int]
) -> tuple[dict[int, list[int]], list[SatisfiedRule]]:
    """Questions per item, and the satisfied rules grouped by (column, values)."""
    questions_of: dict[int, list[int]] = {item: [] for item in items}
    grouped: dict[tuple[str, tuple], list[int]] = defaultdict(list)
    rows = (
        Question.objects.filter(
            version_id=version_id, indicator_id__in=items, excluded_from_indices=False
        )
        .order_by("id")
        .values_list("id", "code", "indicator_id", "type", "satisfied_values")
    )
    for pk, code, item, kind, satisfied in rows:
        questions_of[item].append(pk)
        grouped[_satisfied_rule(code, kind, satisfied)].append(pk)
    rules = [
        SatisfiedRule(column, values, tuple(ids))
        for (column, values), ids in sorted(grouped.items(), key=lambda kv: kv[1][0])
    ]
    return questions_of, rules


def _evaluate(
    roots: list[_Node], totals: dict[int, list[float]]
) -> dict[int, tuple[float | None, _Linear]]:
    """Each node's value (0–1) in one scope and its linearization coefficients per item.

    The coefficients cover every item below the node with a valid answer in the scope
    (zero where the node's rule gives the item no weight), so that the linearized query
    also counts the node's respondents.
    """
    out: dict[int, tuple[float | None, _Linear]] = {}

    def visit(node: _Node) -> tuple[float | None, _Linear]:
        answered = [item for item in node.items if totals.get(item, _zeros())[1] > 0]
        linear: _Linear = dict.fromkeys(answered, (0.0, 0.0))
        value: float | None = None
        if node.aggregation == Indicator.Aggregation.SHARE:
            for child in node.children:
                visit(child)  # a share node's children are evaluated but do not count
            if answered:
                y, x, _valid = totals[node.id]
                value = y / x
                linear[node.id] = (1 / x, value / x)
        elif node.aggregation == Indicator.Aggregation.POOLED:
            for child in node.children:
                visit(child)
            x = sum(totals[item][1] for item in answered)
            if x > 0:
                value = sum(totals[item][0] for item in answered) / x
                linear.update({item: (1 / x, value / x) for item in answered})
        else:
            weighted = node.aggregation == Indicator.Aggregation.WEIGHTED_MEAN
            parts = [(child, *visit(child)) for child in node.children]
            parts = [
                (child.weight if weighted else 1.0, v, lin)
                for child, v, lin in parts
                if v is not None
            ]
            total_weight = sum(w for w, _v, _lin in parts)
            if total_weight > 0:
                value = sum(w * v for w, v, _lin in parts) / total_weight
                for w, _v, lin in parts:
                    for item, (a, b) in lin.items():
                        a0, b0 = linear[item]
                        linear[item] = (a0 + w / total_weight * a, b0 + w / total_weight * b)
        out[node.id] = (value, linear)
        return value, linear

    for root in roots:
        visit(root)
    return out


# A stratum: (code as given or '', unit id when no code is given else 0); see sql.py.
_Stratum = tuple[str, int]
# A stratum after collapsing single-PSU strata: (0, code, unit) as is, (1, '', unit) for the
# single-PSU strata of one unit collapsed together.
_Collapsed = tuple[int, str, int]


class _Sums:
    """One node's figures in one scope: n, Σw, per-respondent Σz and Σz², and per stratum
    Σ_p z_p (= Σz over its respondents) and Σ_p z_p² over its PSUs."""

    __slots__ = ("n", "strata", "sum_z", "sum_zz", "weight_sum")

    def __init__(self) -> None:
        self.n, self.weight_sum, self.sum_z, self.sum_zz = 0.0, 0.0, 0.0, 0.0
        self.strata: dict[_Stratum, list[float]] = {}

    def add(self, n: float, weight_sum: float, sum_z: float, sum_zz: float) -> None:
        self.n += n
        self.weight_sum += weight_sum
        self.sum_z += sum_z
        self.sum_zz += sum_zz

    def stratum(self, key: _Stratum, total: float, squares: float) -> None:
        figures = self.strata.setdefault(key, [0.0, 0.0])
        figures[0] += total
        figures[1] += squares


@dataclass
class _DesignCounts:
    """The design of a round's responses on one version, as the variance needs it."""

    respondents: dict[int, int]  # per scope (NATIONAL: all)
    psus: dict[int, int]  # PSUs holding responses of the scope (NATIONAL: all)
    strata: dict[int, int]  # collapsed strata holding responses of the scope (NATIONAL: all)
    collapsed: dict[_Stratum, _Collapsed]  # each stratum's stratum after collapsing
    size: dict[_Collapsed, int]  # n_h: PSUs per collapsed stratum
    fpc: dict[_Collapsed, float]  # 1 − f_h (1 without population size, or collapsed)


def _design(read: sql.Reading, *, source: str = sql.ANSWERS) -> _DesignCounts:
    """Respondents and PSUs per scope, PSUs per stratum, the collapsing of single-PSU strata
    and the finite population corrections (three queries whatever the size)."""
    round_id, version_id = read.round_id, read.version_id
    unit_level, unit_map = read.unit_level, read.unit_map
    per_scope, per_stratum = sql.design_counts(
        round_id=round_id,
        version_id=version_id,
        unit_level=unit_level,
        unit_map=unit_map,
        source=source,
    )
    respondents: dict[int, int] = defaultdict(int, {NATIONAL: 0})
    psus: dict[int, int] = defaultdict(int)
    for scope, _st, _su, count, psu_count in sorted(per_scope):  # rows per unit and stratum
        respondents[scope] += count
        respondents[NATIONAL] += count
        psus[scope] += psu_count
    strata = {(st, su): (count, home) for st, su, count, home in per_stratum}
    psus[NATIONAL] = sum(count for count, _home in strata.values())
    codes = dict(
        Unit.objects.filter(pk__in={su for _st, su in strata if su}).values_list("pk", "code")
    )
    populations = stratum_populations(Round(pk=round_id))
    collapsed, size, fpc = _collapse(
        {
            key: (count, home, populations.get(effective_stratum(key[0], codes.get(key[1], ""))))
            for key, (count, home) in strata.items()
        }
    )
    held: dict[int, set[_Collapsed]] = defaultdict(set)
    for scope, st, su, _count, _psu_count in per_scope:
        held[scope].add(collapsed[st, su])
        held[NATIONAL].add(collapsed[st, su])
    strata_held = {scope: len(found) for scope, found in held.items()}
    return _DesignCounts(dict(respondents), dict(psus), strata_held, collapsed, size, fpc)


def _collapse(
    strata: Mapping[_Stratum, tuple[int, int, int | None]],
) -> tuple[dict[_Stratum, _Collapsed], dict[_Collapsed, int], dict[_Collapsed, float]]:
    """Collapse single-PSU strata; ``strata`` maps a stratum to (PSUs, home unit, population).

    A stratum's home unit is the lowest unit id among its responses (its unit in the default
    design). The single-PSU strata of one home unit are collapsed into one stratum when there
    are two or more; a single one left joins the stratum of its home unit with the most PSUs
    (ties: the first in code order); without such a stratum it stays alone and adds no
    variance (a certainty PSU). Collapsed strata have no finite population correction;
    otherwise f_h = n_h/N_h with N_h the stratum's population of PSUs (1 − f_h at least 0).
    """
    collapsed: dict[_Stratum, _Collapsed] = {key: (0, *key) for key in strata}
    lone: dict[int, list[_Stratum]] = defaultdict(list)
    largest: dict[int, _Stratum] = {}
    for key in sorted(strata):
        count, home, _population = strata[key]
        if count == 1:
            lone[home].append(key)
        elif home not in largest or count > strata[largest[home]][0]:
            largest[home] = key
    merged: set[_Collapsed] = set()
    for home, keys in lone.items():
        if len(keys) > 1:
            for key in keys:
                collapsed[key] = (1, "", home)
            merged.add((1, "", home))
        elif home in largest:
            collapsed[keys[0]] = collapsed[largest[home]]
            merged.add(collapsed[largest[home]])
    size: dict[_Collapsed, int] = defaultdict(int)
    for key in sorted(strata):
        size[collapsed[key]] += strata[key][0]
    fpc = {}
    for key in sorted(strata):
        count, _home, population = strata[key]
        target = collapsed[key]
        if target in merged or not population:
            fpc[target] = 1.0
        else:
            fpc[target] = max(0.0, 1 - count / population)
    return collapsed, dict(size), fpc


def _quadratic(a: float, b: float, yy: float, yx: float, xx: float) -> float:
    """Σ(a·Y − b·X)² from ΣY², ΣYX and ΣX²."""
    return a * a * yy - 2 * a * b * yx + b * b * xx


def _precision(
    value: float | None, figures: _Sums, design: _DesignCounts, respondents: int, psus: int
) -> tuple[float | None, float | None, float | None]:
    """(SE on 0–100, design effect, effective sample size) of one node in one scope.

    v = Σ_h (1 − f_h)·n_h/(n_h − 1)·(Σ_p z_p² − (Σ_p z_p)²/n_h) over the collapsed strata,
    n_h all PSUs of stratum h (PSUs without respondents of the scope have z_p = 0). None
    when there is no value, the scope's responses lie in fewer than two PSUs, or no stratum
    it answers in has two PSUs. deff = v / v_srs with v_srs = N/(N−1)·(Σz² − (Σz)²/N) over
    the scope's N respondents (each its own PSU, one stratum, no correction); None when
    v_srs is 0. n_eff = n/deff, None when deff is None or 0.
    """
    if value is None or psus < 2:
        return None, None, None
    merged: dict[_Collapsed, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for key in sorted(figures.strata):
        total, squares = figures.strata[key]
        target = merged[design.collapsed[key]]
        target[0] += total
        target[1] += squares
    variance, estimable = 0.0, False
    for key in sorted(merged):
        n_h = design.size[key]
        if n_h < 2:
            continue  # a single PSU left alone: a certainty unit, no variance
        estimable = True
        total, squares = merged[key]
        variance += design.fpc[key] * n_h / (n_h - 1) * max(squares - total * total / n_h, 0.0)
    if not estimable:
        return None, None, None
    se = 100 * math.sqrt(variance)
    deff = n_eff = None
    if respondents >= 2:
        n = respondents
        simple = n / (n - 1) * max(figures.sum_zz - figures.sum_z * figures.sum_z / n, 0.0)
        if simple > 0:
            deff = variance / simple
            n_eff = figures.n / deff if deff > 0 else None
    return se, deff, n_eff


def node_values(
    roots: list[_Node], totals: Mapping[int, tuple[float, float]]
) -> dict[int, float | None]:
    """Each node's value (0–1) from item totals {item: (Σ w·satisfied, Σ w)}, by the same
    tree rules as ``compute_values`` (used by ``scoring.replicates`` for its replicates)."""
    evaluated = _evaluate(roots, {item: [y, x, 0] for item, (y, x) in totals.items()})
    return {node: value for node, (value, _linear) in evaluated.items()}
