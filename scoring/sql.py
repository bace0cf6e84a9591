"""The SQL of the scoring engine: scored answers, item totals per unit, linearized sums.

Every statement here is one set-based pass over the answers of a round; the engine
(``scoring.engine``) only builds the small inputs (satisfied rules, coefficients) and turns
the small outputs (one row per unit and question, or per unit, stratum and node or
single-question item) into values and design-based variances.

The design of a response is read as three columns (see ``feedback.design``): ``st`` its
stratum code as given ('' if none), ``su`` its unit id when it gives no stratum (the unit is
then its stratum) else 0, and ``psu`` its PSU code as given ('' if none: the response is its
own PSU). A stratum's key is (st, su); a PSU is (st, su, psu) when psu is given. Sums over a
stratum's PSUs are taken in two steps: first per (scope, stratum, psu), where every response
without a PSU of a (scope, stratum) falls into one group whose sums of squares are kept per
response, then per (scope, stratum): Σ_p z_p² adds a given PSU's squared total and, for the
group without PSU, its per-response Σ z². Neither step has a group per response.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from feedback.models import Answer, Response, ResponseRecord
from feedback.records import MAX_QUESTIONS
from scoring.models import ResponseWeight

# Scope keys in the SQL results: a unit's (or agency's) id, NO_SCOPE for responses that
# name no unit at the chosen level (they count nationally only), NATIONAL for the nation.
NATIONAL = 0
NO_SCOPE = -1

SCOPE_COLUMNS = {"unit": "unit_id", "agency": "agency_id"}

# A response's (d) stratum code as given, its unit when it gives none (else 0), its PSU code.
DESIGN_COLUMNS = (
    "d.stratum AS st, CASE WHEN d.stratum = '' THEN d.unit_id ELSE 0 END AS su, d.psu AS psu"
)


# Review (feedback.review.services): an excluded response stays stored but no run counts it, exactly
# as if it were deleted. Every read of a round's responses, from the response table or from
# the compact records, keeps only the counted ones through these two conditions (the
# excluded responses are few: an anti-join on the partial index ``response_excluded``).
EXCLUDED = Response.ReviewState.EXCLUDED.value


def counted_response(alias: str = "r") -> str:
    """SQL true for a counted response, ``alias`` being the response table."""
    return f"{alias}.review_state <> '{EXCLUDED}'"


def counted_record(alias: str = "r") -> str:
    """SQL true for a counted response, ``alias`` being the compact records."""
    # NOT IN an uncorrelated list, not NOT EXISTS: PostgreSQL hashes the excluded ids once (a
    # hashed SubPlan; every round's, still few), whatever its statistics say. A correlated
    # anti-join planned on tables not yet analysed (a round loaded a moment ago) could scan
    # the response table once per record.
    return (
        f"{alias}.response_id NOT IN (SELECT e.id FROM {Response._meta.db_table} e "
        f"WHERE e.review_state = '{EXCLUDED}')"
    )


# Sum of squares over PSUs from a (…, psu) group: a given PSU's squared total, or the
# per-response sum of squares of the responses without PSU (each its own PSU).
def _psu_squares(total: str, per_response: str) -> str:
    return f"SUM(CASE WHEN psu = '' THEN {per_response} ELSE {total} * {total} END)"


def _psu_products(first: str, second: str, per_response: str) -> str:
    return f"SUM(CASE WHEN psu = '' THEN {per_response} ELSE {first} * {second} END)"


@dataclass(frozen=True)
class SatisfiedRule:
    """Questions whose answer is satisfied when ``column`` (number or code) is in ``values``."""

    column: str
    values: tuple[Any, ...]
    question_ids: tuple[int, ...]


@dataclass(frozen=True)
class Reading:
    """What a computation reads: the counted responses of a round to a version, in scopes
    by ``unit_level`` (through ``unit_map``), their answers to ``question_ids`` satisfied by
    ``rules``, weighted by the raked weights of ``weights_run_id`` if given (else the design
    weights). ``item_totals`` and ``linearized_sums`` here and in ``scoring.linear`` take it."""

    round_id: int
    version_id: int
    unit_level: str
    rules: Sequence[SatisfiedRule]
    question_ids: Sequence[int]
    unit_map: Mapping[int, int] | None = None
    weights_run_id: int | None = None

    @property
    def scope_sql(self) -> str:
        return _scope_sql(self.unit_level, self.unit_map)


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def _scored_answers(read: Reading, *, stale_records: bool = False) -> tuple[str, list[Any]]:
    """One row per valid scored answer: response, scope, weight, question, satisfied 0/1.

    With ``weights_run_id`` a response's weight is its raked weight in that run
    (``ResponseWeight``), else its design weight. ``stale_records``: only the answers of
    responses whose compact record is stale, ``r`` being the records, with the design
    columns (stratum, unit_id, psu) added.
    """
    scope_sql, rules, question_ids = read.scope_sql, read.rules, read.question_ids
    weights_run_id = read.weights_run_id
    whens, params = [], []
    for rule in rules:
        if not rule.values:
            continue  # nothing counts as satisfied: the ELSE branch says so
        whens.append(
            f"WHEN a.question_id IN ({_placeholders(len(rule.question_ids))}) "
            f"AND a.{rule.column} IN ({_placeholders(len(rule.values))}) THEN 1"
        )
        params += [*rule.question_ids, *rule.values]
    satisfied = f"CASE {' '.join(whens)} ELSE 0 END" if whens else "0"
    weight, weights = "r.weight", ""
    if weights_run_id is not None:
        weight = "COALESCE(rw.weight, r.weight)"
        weights = (
            f"LEFT JOIN {ResponseWeight._meta.db_table} rw "
            f"ON rw.run_id = {int(weights_run_id)} AND rw.response_id = r.id "
        )
    if stale_records:
        weights = weights.replace("rw.response_id = r.id", "rw.response_id = r.response_id")
        sql = (
            f"SELECT r.response_id AS response_id, {scope_sql} AS scope, {weight} AS w, "
            f"r.stratum AS stratum, r.unit_id AS unit_id, r.psu AS psu, "
            f"a.question_id AS question_id, {satisfied} AS s "
            f"FROM {Answer._meta.db_table} a "
            f"JOIN {ResponseRecord._meta.db_table} r ON r.response_id = a.response_id "
            f"AND a.round_id = r.round_id AND r.stale {weights}"
            f"WHERE r.round_id = %s AND r.version_id = %s AND {counted_record()} "
            f"AND a.question_id IN ({_placeholders(len(question_ids))})"
        )
        return sql, params
    sql = (
        f"SELECT r.id AS response_id, {scope_sql} AS scope, {weight} AS w, "
        f"a.question_id AS question_id, {satisfied} AS s "
        f"FROM {Answer._meta.db_table} a "
        f"JOIN {Response._meta.db_table} r ON r.id = a.response_id "
        f"AND a.round_id = r.round_id {weights}"
        f"WHERE r.round_id = %s AND r.version_id = %s AND {counted_response()} "
        f"AND a.question_id IN ({_placeholders(len(question_ids))})"
    )
    return sql, params


RECORDS, ANSWERS = "records", "answers"  # where the engine reads the scored answers


def use_records(question_ids: Sequence[int]) -> str:
    """The source for a version with these scored questions: its compact records when they
    hold them all (``feedback.records``: the version's scored questions in id order), else
    the answers."""
    return RECORDS if len(set(question_ids)) <= MAX_QUESTIONS else ANSWERS


def _respondents(read: Reading) -> tuple[str, list[Any]]:
    """One row per respondent from the compact records: response_id, scope, w, stratum,
    unit_id, psu and the masks x0…, y0… (valid, satisfied) of its scored answers.

    A stale record (its answers changed outside ``feedback.records.refresh``) is replaced
    by masks grouped from its answers in the same layout (second branch, empty as a rule).
    """
    scope_sql, question_ids = read.scope_sql, read.question_ids
    round_id, version_id, weights_run_id = read.round_id, read.version_id, read.weights_run_id
    positions = {q: i for i, q in enumerate(sorted(set(question_ids)))}
    words = max(1, -(-len(positions) // BITS_PER_WORD))
    weight, weights = "r.weight", ""
    if weights_run_id is not None:
        weight = "COALESCE(rw.weight, r.weight)"
        weights = (
            f"LEFT JOIN {ResponseWeight._meta.db_table} rw "
            f"ON rw.run_id = {int(weights_run_id)} AND rw.response_id = r.response_id "
        )
    stored = ", ".join(
        f"COALESCE(r.valid_{w}, 0) AS x{w}, COALESCE(r.satisfied_{w}, 0) AS y{w}"
        for w in range(words)
    )
    fresh = (
        f"SELECT r.response_id AS response_id, {scope_sql} AS scope, {weight} AS w, "
        f"r.stratum AS stratum, r.unit_id AS unit_id, r.psu AS psu, {stored} "
        f"FROM {ResponseRecord._meta.db_table} r {weights}"
        f"WHERE r.round_id = %s AND r.version_id = %s AND NOT r.stale AND {counted_record()}"
    )
    scored, params = _scored_answers(read, stale_records=True)
    grouped = ", ".join(
        f"COALESCE(CAST(SUM(CASE WHEN q.word = {w} THEN q.bit END) AS BIGINT), 0) AS x{w}, "
        f"COALESCE(CAST(SUM(CASE WHEN q.word = {w} AND x.s = 1 THEN q.bit END) AS BIGINT), 0) "
        f"AS y{w}"
        for w in range(words)
    )
    bits = _json_rows([("question", "int"), ("word", "int"), ("bit", "int")])
    layout = [[q, *divmod(i, BITS_PER_WORD)] for q, i in sorted(positions.items())]
    stale = (
        f"SELECT x.response_id, MAX(x.scope), MAX(x.w), MAX(x.stratum), MAX(x.unit_id), "
        f"MAX(x.psu), {grouped} FROM ({scored}) x JOIN ({bits}) q ON q.question = x.question_id "
        f"GROUP BY x.response_id"
    )
    sql = f"{fresh} UNION ALL {stale}"
    args = [
        round_id,
        version_id,
        *params,
        round_id,
        version_id,
        *question_ids,
        json.dumps([[q, word, 1 << position] for q, word, position in layout]),
    ]
    return sql, args


def _scope_sql(unit_level: str, unit_map: Mapping[int, int] | None = None) -> str:
    """The scope of a response: its unit (or agency), renamed through ``unit_map``.

    ``unit_map`` pools units: e.g. the provinces merged in 2025 all map to their successor,
    so a previous round can be compared with the merged province. Ids are integers, inlined.
    """
    column = f"r.{SCOPE_COLUMNS[unit_level]}"
    if unit_map:
        cases = " ".join(f"WHEN {int(k)} THEN {int(v)}" for k, v in sorted(unit_map.items()))
        column = f"CASE {column} {cases} ELSE {column} END"
    return f"COALESCE({column}, {NO_SCOPE})"


NodeRow = tuple[int, str, int, int, int, float, float, float, float, float, float]
ItemRow = tuple[int, str, int, int, float, float, float, float, float, float, float]


def item_totals(
    read: Reading, *, source: str = "answers"
) -> list[tuple[int, int, float, float, int]]:
    """(scope, question, Σ w·s, Σ w, valid answers) per scope and question.

    s is 1 for a satisfied answer, else 0. (Per stratum and PSU figures come from
    ``linearized_sums``, which reads one row per respondent.) ``source`` RECORDS reads the
    compact records (one row per respondent, three sums per question from its bits),
    ANSWERS the answer table.
    """
    if source == RECORDS:
        return _item_totals_from_records(read)
    scored, params = _scored_answers(read)
    round_id, version_id, question_ids = read.round_id, read.version_id, read.question_ids
    sql = (
        f"SELECT x.scope, x.question_id, SUM(x.w * x.s), SUM(x.w), COUNT(*) "
        f"FROM ({scored}) x GROUP BY x.scope, x.question_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, round_id, version_id, *question_ids])
        return [(int(s), int(q), float(y), float(x), int(n)) for s, q, y, x, n in cursor]


def _item_totals_from_records(read: Reading) -> list[tuple[int, int, float, float, int]]:
    question_ids = read.question_ids
    respondents, args = _respondents(read)
    questions = sorted(set(question_ids))
    sums = []
    for i, _q in enumerate(questions):
        word, position = divmod(i, BITS_PER_WORD)
        bit = 1 << position
        sums.append(
            f"SUM(CASE WHEN (p.y{word} & {bit}) <> 0 THEN p.w ELSE 0 END), "
            f"SUM(CASE WHEN (p.x{word} & {bit}) <> 0 THEN p.w ELSE 0 END), "
            f"SUM(CASE WHEN (p.x{word} & {bit}) <> 0 THEN 1 ELSE 0 END)"
        )
    sql = f"SELECT p.scope, {', '.join(sums)} FROM ({respondents}) p GROUP BY p.scope"
    out = []
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        for scope, *figures in cursor.fetchall():
            for i, q in enumerate(questions):
                y, x, n = figures[3 * i : 3 * i + 3]
                if n:
                    out.append((int(scope), q, float(y), float(x), int(n)))
    return out


def design_counts(
    *,
    round_id: int,
    version_id: int,
    unit_level: str,
    unit_map: Mapping[int, int] | None,
    source: str = "answers",
) -> tuple[list[tuple[int, str, int, int, int]], list[tuple[str, int, int, int]]]:
    """The design as counts, from all counted responses of the round and version (answered
    or not; excluded by review: not counted).

    Two lists: (scope, st, su, responses, PSUs) per scope and stratum, the PSUs of the
    stratum holding responses of the scope; and (st, su, PSUs, home unit) per stratum, its
    home unit the lowest unit id among its responses. A response without PSU is one PSU.
    ``source`` RECORDS reads the design columns of the compact records (kept current by
    triggers), ANSWERS the response table.
    """
    table = ResponseRecord._meta.db_table if source == RECORDS else Response._meta.db_table
    counted = counted_record() if source == RECORDS else counted_response()
    su = "CASE WHEN r.stratum = '' THEN r.unit_id ELSE 0 END"
    # Responses grouped by (scope, stratum, PSU) with hashing (no COUNT(DISTINCT), which
    # sorts every response), then PSUs counted per scope and stratum, and per stratum. A
    # response without PSU is one PSU: its group counts each of its responses.
    grouped = (
        f"SELECT {_scope_sql(unit_level, unit_map)} AS scope, r.stratum AS st, {su} AS su, "
        f"r.psu AS psu, COUNT(*) AS n, MIN(r.unit_id) AS home FROM {table} r "
        f"WHERE r.round_id = %s AND r.version_id = %s AND {counted} GROUP BY 1, 2, 3, 4"
    )
    psus = "SUM(CASE WHEN psu = '' THEN n ELSE 1 END)"
    per_scope = f"SELECT scope, st, su, SUM(n), {psus} FROM ({grouped}) g GROUP BY scope, st, su"
    per_stratum = (
        f"SELECT st, su, {psus}, MIN(home) FROM (SELECT st, su, psu, SUM(n) AS n, "
        f"MIN(home) AS home FROM ({grouped}) g GROUP BY st, su, psu) s GROUP BY st, su"
    )
    with connection.cursor() as cursor:
        cursor.execute(per_scope, [round_id, version_id])
        scopes = [(int(a), str(b), int(c), int(d), int(e)) for a, b, c, d, e in cursor]
        cursor.execute(per_stratum, [round_id, version_id])
        strata = [(str(a), int(b), int(c), int(d)) for a, b, c, d in cursor]
    return scopes, strata


BITS_PER_WORD = 63  # answer bits per integer mask (a signed 64-bit integer in both databases)
ARRAY_SPAN_LIMIT = 65_536  # largest question id range read through an array (PostgreSQL)


def _json_rows(columns: Sequence[tuple[str, str]]) -> str:
    """A table read from one JSON parameter holding a list of rows (lists).

    One parameter whatever the number of rows: neither SQLite's nor PostgreSQL's limit on
    bound parameters applies. ``columns`` are (name, type) with type ``int`` or ``float``.
    """
    if connection.vendor == "postgresql":
        casts = {"int": "bigint", "float": "double precision"}
        cols = ", ".join(
            f"(e->>{i})::{casts[kind]} AS {name}" for i, (name, kind) in enumerate(columns)
        )
        return f"SELECT {cols} FROM json_array_elements(%s::json) AS e"
    casts = {"int": "INTEGER", "float": "REAL"}
    cols = ", ".join(
        f"CAST(json_extract(value, '$[{i}]') AS {casts[kind]}) AS {name}"
        for i, (name, kind) in enumerate(columns)
    )
    return f"SELECT {cols} FROM json_each(%s)"


@dataclass
class _LinearPlan:
    """How step 2 of ``linearized_sums`` builds each node's z from a respondent's masks.

    A *block* is the parent node of items (e.g. an element over its criteria). Where a
    node's coefficients on a block's questions are the block's own times one factor γ in
    every scope (true of any mean or weighted mean above the block), the node's z is
    Σ γ·z_block: each answer bit is then read once per block instead of once per node.
    Other (node, question) pairs are *direct* terms read from the masks.
    """

    terms: list[tuple[int, int]]  # (block or node, question): 4 values per scope
    links: list[tuple[int, int]]  # (node, block): 2 values (γ, national γ) per scope
    values: dict[int, list[float]]  # per scope: the terms' values, then the links'
    nodes: list[int]
    blocks: list[int]
    questions_of: dict[int, set[int]]  # per node, its questions answered in some scope


def _ratio(node_abn: Sequence[float], block_abn: Sequence[float]) -> tuple[float, float] | None:
    """(γ, γ_national) with node = γ·block for (a, b) and for (na, nb), or None."""
    gammas = []
    for pair in ((0, 1), (2, 3)):
        reference = max(pair, key=lambda i: abs(block_abn[i]))
        if block_abn[reference] == 0:
            if any(node_abn[i] != 0 for i in pair):
                return None
            gammas.append(0.0)
            continue
        gamma = node_abn[reference] / block_abn[reference]
        if any(abs(node_abn[i] - gamma * block_abn[i]) > 1e-12 * abs(node_abn[i]) for i in pair):
            return None
        gammas.append(gamma)
    return gammas[0], gammas[1]


def _same(x: tuple[float, float], y: tuple[float, float]) -> bool:
    return all(abs(u - v) <= 1e-12 * max(abs(u), abs(v)) for u, v in zip(x, y, strict=True))


def _scope_ratio(
    rows: Mapping[tuple[int, int, int], tuple[float, ...]],
    scope: int,
    node: int,
    block: int,
    questions: set[int],
) -> tuple[float, float] | None:
    """The node's γ on the block in one scope: one factor for all the block's questions."""
    found: tuple[float, float] | None = None
    for q in sorted(questions):
        node_abn, block_abn = rows.get((scope, node, q)), rows.get((scope, block, q))
        if node_abn is None and block_abn is None:
            continue  # not answered in this scope
        if node_abn is None or block_abn is None:
            return None
        gamma = _ratio(node_abn, block_abn)
        if gamma is None:
            return None
        if not any(block_abn):
            continue  # a question without weight in the block: it adds nothing either way
        if found is not None and not _same(found, gamma):
            return None
        found = found or gamma
    return found or (0.0, 0.0)


def _linear_plan(
    coefficients: Sequence[tuple[int, int, int, float, float, float, float]],
    block_of: Mapping[int, int],
    scopes: Sequence[int] = (),
) -> _LinearPlan:
    rows = {(s, k, q): tuple(map(float, abn)) for s, k, q, *abn in coefficients}
    scopes = sorted({s for s, _k, _q in rows} | set(scopes))
    nodes = sorted({k for _s, k, _q in rows})
    questions_of: dict[int, set[int]] = defaultdict(set)
    for _s, k, q in rows:
        questions_of[k].add(q)
    blocks = [b for b in nodes if all(block_of.get(q) == b for q in questions_of[b])]
    gammas: dict[tuple[int, int], dict[int, tuple[float, float] | None]] = {}
    for k in nodes:
        for b in blocks:
            if questions_of[b] <= questions_of[k]:
                found = {s: _scope_ratio(rows, s, k, b, questions_of[b]) for s in scopes}
                if all(g is not None for g in found.values()):
                    gammas[k, b] = found
    blocks = [b for b in blocks if (b, b) in gammas]  # always so: a block is 1 × itself
    links = sorted((k, b) for k, b in gammas if b in blocks)
    linked = {(k, q) for k, b in links for q in questions_of[b]}
    terms = [(b, q) for b in blocks for q in sorted(questions_of[b])]
    terms += sorted({(k, q) for _s, k, q in rows if (k, q) not in linked})
    values: dict[int, list[float]] = {}
    for s in scopes:
        row = [0.0] * (4 * len(terms) + 2 * len(links))
        for i, (owner, q) in enumerate(terms):
            if (s, owner, q) in rows:
                a, b, na, nb = rows[s, owner, q]
                row[4 * i : 4 * i + 4] = [a - b, -b, na - nb, -nb]
        for j, link in enumerate(links):
            row[4 * len(terms) + 2 * j : 4 * len(terms) + 2 * j + 2] = gammas[link][s] or (0, 0)
        values[s] = row
    return _LinearPlan(terms, links, values, nodes, blocks, dict(questions_of))


def linearized_sums(
    read: Reading,
    *,
    coefficients: Sequence[tuple[int, int, int, float, float, float, float]],
    block_of: Mapping[int, int] | None = None,
    scopes: Sequence[int] = (),
    single_questions: Sequence[int] = (),
    source: str = "answers",
) -> tuple[list[NodeRow], list[ItemRow]]:
    """Per scope, stratum (st, su) and node: (scope, st, su, node, n, Σ w, Σ z, Σ z²,
    Σ_p z_p², Σ z_nat, Σ z_nat²), z a respondent's linearized score, z_p the total of PSU p
    within the scope, z_nat the national score; then rows with scope ``NATIONAL`` per
    stratum and node carrying only Σ_p z_nat,p², the PSU totals of national scores taken
    across scopes (a PSU may span scopes), the other figures 0.

    ``coefficients`` rows are (scope, node, question, a, b, na, nb): each valid answer of
    the question by a respondent of the scope adds ``w·(a·s − b)`` to the respondent's
    linearized score z for the node, and ``w·(na·s − nb)`` to the national one.
    ``block_of`` maps a question to the parent node of its item (see ``_LinearPlan``).
    ``scopes``: every scope with respondents (a scope without coefficients still counts).

    Second list, for each of ``single_questions`` (the questions that alone feed an item,
    whose nodes need no coefficients): (scope, st, su, question, ΣY, ΣX, Σ w²·s, Σ w²,
    Σ_p Y_p², Σ_p Y_p·X_p, Σ_p X_p²) with Y = w·s and X = w summed over the valid answers,
    per PSU for Y_p and X_p; then rows with scope ``NATIONAL`` carrying only the last three,
    PSU totals taken across scopes. A single-question item's z_p is a·Y_p − b·X_p, so
    Σ_p z_p² = a²ΣY_p² − 2abΣY_pX_p + b²ΣX_p² (``scoring.engine``): these sums are read
    from the respondents' bit masks, with no coefficient.

    One statement in steps. (1) One row per respondent: its scope, design, weight and
    two bit masks per word of 63 questions, the questions it answered validly and those it
    answered satisfied (a GROUP BY over the answers; each question has one bit, and a
    respondent answers a question once, so OR and SUM of the bits agree). (2) For each
    respondent, every block's z and every node's direct terms from its masks and its
    scope's coefficients (one row per scope; each answer bit adds a − b when satisfied,
    −b when not), then (3) every node's z and national z. (4) Per (scope, stratum, PSU)
    the sums of z, z², national z and its square, the respondents without PSU of a
    stratum in one group (module docstring); (5) per (scope, stratum) the figures above,
    Σ_p z_p² taking a given PSU's squared total, and per stratum the squares of the
    national PSU totals across scopes. A respondent belongs to one scope, so national
    Σ z, counts and weights are the sums over scopes. Answers are never expanded by node:
    steps 2–5 work on one row per respondent or fewer.
    """
    if not coefficients and not single_questions:
        return [], []
    postgres = connection.vendor == "postgresql"
    positions = {q: i for i, q in enumerate(sorted(set(read.question_ids)))}
    words = max(1, -(-len(positions) // BITS_PER_WORD))
    plan = _linear_plan(coefficients, block_of or {}, scopes)
    nodes = plan.nodes
    term_index = {term: i for i, term in enumerate(plan.terms)}
    link_base = 4 * len(plan.terms)

    def bit(q: int) -> tuple[int, int]:
        return divmod(positions[q], BITS_PER_WORD)

    def coefficient(i: int) -> str:
        return f"c.v[{i + 1}]" if postgres else f"c.v{i}"

    def answered(word: int, value: int, column: str) -> str:
        return f"(p.{column}{word} & {value}) <> 0"

    def terms_sum(owner: int, offset: int) -> str:
        """Σ over a block's or a node's own terms (offset 0: unit, 2: national), unweighted."""
        cases = []
        for (who, q), i in term_index.items():
            if who != owner:
                continue
            word, position = bit(q)
            j = 4 * i + offset
            cases.append(
                f"CASE WHEN {answered(word, 1 << position, 'y')} THEN {coefficient(j)} "
                f"WHEN {answered(word, 1 << position, 'x')} THEN {coefficient(j + 1)} "
                f"ELSE 0 END"
            )
        return " + ".join(cases) if cases else "0"

    def member(node: int) -> str:
        masks: dict[int, int] = defaultdict(int)
        for q in plan.questions_of[node]:
            word, position = bit(q)
            masks[word] |= 1 << position
        return " OR ".join(answered(word, mask, "x") for word, mask in sorted(masks.items()))

    def direct(node: int, offset: int) -> str:
        """A node's terms not covered by its blocks (a block's own terms are its z)."""
        return "0" if node in plan.blocks else terms_sum(node, offset)

    def node_score(k: int, node: int, national: bool) -> str:
        parts = [f"d{'n' if national else 'u'}{k}"]
        for j, (linked, block) in enumerate(plan.links):
            if linked == node:
                gamma = coefficient(link_base + 2 * j + int(national))
                parts.append(f"{gamma} * b{'n' if national else 'u'}{plan.blocks.index(block)}")
        return " + ".join(parts)

    scored, params = _scored_answers(read)
    # Each answer's bit: on PostgreSQL read from an array indexed by question id (one array
    # per word, passed as parameters); elsewhere, or if the ids are spread too widely, from
    # a joined table of (question, word, bit).
    lowest = min(positions)
    span = max(positions) - lowest + 1
    if postgres and span <= ARRAY_SPAN_LIMIT:
        word_bits = [[0] * span for _ in range(words)]
        for q in positions:
            word, position = bit(q)
            word_bits[word][q - lowest] = 1 << position
        answer_bit = f"(%s::bigint[])[x.question_id - {lowest - 1}]"
        masks = ", ".join(
            f"COALESCE(BIT_OR({answer_bit}), 0) AS x{w}, "
            f"COALESCE(BIT_OR(CASE WHEN x.s = 1 THEN {answer_bit} END), 0) AS y{w}"
            for w in range(words)
        )
        mask_args: list[Any] = [bits for bits in word_bits for _twice in range(2)]
        bit_table, bit_join, bit_args = "", "", []
    else:
        bit_or = "BIT_OR" if postgres else "SUM"
        masks = ", ".join(
            f"COALESCE({bit_or}(CASE WHEN q.word = {w} THEN q.bit END), 0) AS x{w}, "
            f"COALESCE({bit_or}(CASE WHEN q.word = {w} AND x.s = 1 THEN q.bit END), 0) AS y{w}"
            for w in range(words)
        )
        mask_args = []
        bits = _json_rows([("question", "int"), ("word", "int"), ("bit", "int")])
        bit_table = f"q AS MATERIALIZED ({bits}), "
        bit_join = "JOIN q ON q.question = x.question_id "
        bit_args = [json.dumps([[q, bit(q)[0], 1 << bit(q)[1]] for q in sorted(positions)])]
    # Step 2: blocks' z and nodes' direct terms (both without the weight), members.
    per_block = [
        f"{terms_sum(block, offset)} AS b{tag}{i}"
        for i, block in enumerate(plan.blocks)
        for offset, tag in ((0, "u"), (2, "n"))
    ]
    per_node_direct = [
        f"CASE WHEN {member(node)} THEN 1 ELSE 0 END AS m{k}, "
        f"{direct(node, 0)} AS du{k}, {direct(node, 2)} AS dn{k}"
        for k, node in enumerate(nodes)
    ]
    # Step 3: every node's z (weighted) from its direct terms and its blocks.
    per_node = ", ".join(
        f"m{k}, y.w * ({node_score(k, node, False)}) AS z{k}, "
        f"y.w * ({node_score(k, node, True)}) AS n{k}"
        for k, node in enumerate(nodes)
    )
    count = range(len(nodes))
    per_psu = [
        f"SUM(m{k}) AS m{k}, SUM(m{k} * w) AS w{k}, SUM(z{k}) AS z{k}, "
        f"SUM(z{k} * z{k}) AS q{k}, SUM(n{k}) AS n{k}, SUM(n{k} * n{k}) AS r{k}"
        for k in count
    ]
    per_stratum = [
        f"SUM(m{k}), SUM(w{k}), SUM(z{k}), SUM(q{k}), {_psu_squares(f'z{k}', f'q{k}')}, "
        f"SUM(n{k}), SUM(r{k})"
        for k in count
    ]
    national = [f"0, 0, 0, 0, {_psu_squares(f'n{k}', f'r{k}')}, 0, 0" for k in count]
    national_psu = [f"SUM(n{k}) AS n{k}, SUM(r{k}) AS r{k}" for k in count]
    # Single-question items: Y = w·s, X = w per answer read from the masks, per PSU.
    for i, q in enumerate(single_questions):
        word, position = bit(q)
        y_bit, x_bit = answered(word, 1 << position, "y"), answered(word, 1 << position, "x")
        y_bit, x_bit = y_bit.replace("p.", ""), x_bit.replace("p.", "")
        per_psu.append(
            f"SUM(CASE WHEN {y_bit} THEN w ELSE 0 END) AS sy{i}, "
            f"SUM(CASE WHEN {x_bit} THEN w ELSE 0 END) AS sx{i}, "
            f"SUM(CASE WHEN {y_bit} THEN w * w ELSE 0 END) AS syy{i}, "
            f"SUM(CASE WHEN {x_bit} THEN w * w ELSE 0 END) AS sxx{i}"
        )
        moments = (
            f"{_psu_squares(f'sy{i}', f'syy{i}')}, {_psu_products(f'sy{i}', f'sx{i}', f'syy{i}')}, "
            f"{_psu_squares(f'sx{i}', f'sxx{i}')}"
        )
        per_stratum.append(f"SUM(sy{i}), SUM(sx{i}), SUM(syy{i}), SUM(sxx{i}), {moments}")
        national.append(f"0, 0, 0, 0, {moments}")
        national_psu.append(
            f"SUM(sy{i}) AS sy{i}, SUM(sx{i}) AS sx{i}, SUM(syy{i}) AS syy{i}, "
            f"SUM(sxx{i}) AS sxx{i}"
        )
    mask_columns = [f"{{t}}.x{w}, {{t}}.y{w}" for w in range(words)] if single_questions else []
    width = link_base + 2 * len(plan.links)
    if postgres:
        coef = (
            "SELECT (e->>0)::bigint AS scope, "
            "ARRAY(SELECT json_array_elements_text(e->1)::double precision) AS v "
            "FROM json_array_elements(%s::json) AS e"
        )
    else:  # one column per coefficient: SQLite has no arrays
        coef = (
            "SELECT "
            + ", ".join(
                ["CAST(json_extract(value, '$[0]') AS INTEGER) AS scope"]
                + [f"json_extract(value, '$[1][{i}]') AS v{i}" for i in range(width)]
            )
            + " FROM json_each(%s)"
        )
    # OFFSET 0 keeps PostgreSQL from inlining each column into every expression using it,
    # and lets it stream; SQLite materializes the per-respondent rows instead.
    fence = "OFFSET 0" if postgres else ""
    materialized = "" if postgres else "MATERIALIZED"

    def columns(*parts: str | list[str]) -> str:
        flat = [p for part in parts for p in ([part] if isinstance(part, str) else part)]
        return ", ".join(p for p in flat if p)

    if source == RECORDS:
        # One row per respondent read from the compact records, design columns included.
        respondents, respondent_args = _respondents(read)
        bit_table, bit_args, mask_args = "", [], []
        per_respondent = f"p AS {materialized} ({respondents}), "
        design_join, design = "", DESIGN_COLUMNS.replace("d.", "p.")
    else:
        respondent_args = [*params, read.round_id, read.version_id, *read.question_ids]
        per_respondent = (
            f"p AS {materialized} (SELECT x.response_id, MAX(x.scope) AS scope, MAX(x.w) AS w, "
            f"{masks} FROM ({scored}) x {bit_join}GROUP BY x.response_id), "
        )
        design_join = f"JOIN {Response._meta.db_table} d ON d.id = p.response_id "
        design = DESIGN_COLUMNS
    sql = (
        f"WITH {bit_table}c AS MATERIALIZED ({coef}), "
        + per_respondent
        + f"y AS {materialized} (SELECT "
        + columns(
            f"p.scope AS scope, p.w AS w, {design}",
            [m.format(t="p") for m in mask_columns],
            per_block,
            per_node_direct,
        )
        + f" FROM p JOIN c ON c.scope = p.scope "
        f"{design_join}{fence}), "
        f"z AS {materialized} (SELECT "
        + columns(
            "y.scope AS scope, y.w AS w, y.st AS st, y.su AS su, y.psu AS psu",
            [m.format(t="y") for m in mask_columns],
            per_node,
        )
        + f" FROM y JOIN c ON c.scope = y.scope {fence}), "
        f"g AS MATERIALIZED (SELECT {columns('scope, st, su, psu', per_psu)} "
        f"FROM z GROUP BY scope, st, su, psu) "
        f"SELECT {columns('scope, st, su', per_stratum)} FROM g GROUP BY scope, st, su "
        f"UNION ALL SELECT {columns(f'{NATIONAL}, st, su', national)} "
        f"FROM (SELECT {columns('st, su, psu', national_psu)} FROM g GROUP BY st, su, psu) n "
        f"GROUP BY st, su"
    )
    values = plan.values
    coef_rows = json.dumps([[scope, row] for scope, row in sorted(values.items())])
    args = [*bit_args, coef_rows, *mask_args, *respondent_args]
    if postgres:
        with transaction.atomic(), connection.cursor() as cursor:
            # For this statement only: no JIT (compiling its wide expressions costs more
            # than it saves), memory to group a million respondents without spilling, and
            # hashing rather than sorting them by scope for the last step.
            cursor.execute(
                "SELECT set_config('jit', 'off', true), set_config('work_mem', %s, true), "
                "set_config('enable_sort', 'off', true)",
                [settings.SCORING_WORK_MEM],
            )
            cursor.execute(sql, args)
            rows = cursor.fetchall()  # one row per scope
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            rows = cursor.fetchall()
    out: list[NodeRow] = []
    items: list[ItemRow] = []
    for scope, st, su, *figures in rows:
        key = (int(scope), str(st), int(su))
        for k, node in enumerate(nodes):
            n, w, z, zz, psu_zz, nz, nzz = map(float, figures[7 * k : 7 * k + 7])
            if n or (scope == NATIONAL and psu_zz):
                out.append((*key, node, int(n), w, z, zz, psu_zz, nz, nzz))
        base = 7 * len(nodes)
        for i, q in enumerate(single_questions):
            sums = tuple(map(float, figures[base + 7 * i : base + 7 * i + 7]))
            if any(sums):
                items.append((*key, q, *sums))  # type: ignore[arg-type]
    return out, items
