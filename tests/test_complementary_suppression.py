"""Complementary suppression (issue 13, item 4): no withheld value can be computed back.

Hand-worked cases show each relation's leak with its arithmetic and the value withheld to
close it; a property test draws trees, counts and primary patterns and checks, by an
independent rank argument over the tree's relations (not the module's item-space forms),
that no withheld value is determined by the published ones; an end-to-end test recomputes
a round on the database and tries the same from what the public API shows.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.models import Run
from scoring.suppression import Cell, Node, complementary_suppression
from tests import results_fixtures
from tests.results_fixtures import MIN_N, ROUND

published = results_fixtures.published

MEAN, WEIGHTED, POOLED, SHARE = "mean", "weighted_mean", "pooled", "share"


# --- An independent check: the relations between node values, and a rank argument ----------


def has_value(nodes: list[Node], cells: dict, unit: Any) -> dict[int, bool]:
    """Which nodes have a value in a scope: an item with X > 0, a parent with such an item."""
    found: dict[int, bool] = {}
    for node in reversed(nodes):  # children after parents in ``nodes``: visit them first
        children = [c for c in nodes if c.parent_id == node.id]
        if node.aggregation == SHARE:
            cell = cells.get((unit, node.id))
            found[node.id] = cell is not None and cell.weight_sum > 0
        else:
            found[node.id] = any(found[c.id] for c in children)
    return found


def relations(
    nodes: list[Node], cells: dict, units: list[int], population: dict | None
) -> tuple[list[tuple], list[dict[tuple, float]]]:
    """Every cell with a value, and every relation as {cell: coefficient} (= 0)."""
    x = {key: cell.weight_sum for key, cell in cells.items()}
    valued = {u: has_value(nodes, cells, u) for u in units}
    national_x = {
        n.id: sum(x.get((u, n.id), 0) for u in units) for n in nodes if n.aggregation == SHARE
    }
    valued[None] = {n.id: False for n in nodes}
    for node in reversed(nodes):
        children = [c for c in nodes if c.parent_id == node.id]
        if node.aggregation == SHARE:
            valued[None][node.id] = national_x[node.id] > 0
        elif population is None:
            valued[None][node.id] = any(valued[None][c.id] for c in children)
        else:
            valued[None][node.id] = any(valued[u][node.id] for u in units)
    cells_with_value = [
        (u, n.id) for u in [*units, None] for n in nodes if valued[u][n.id] and (u, n.id) in cells
    ]

    def items_below(node: Node) -> list[int]:
        if node.aggregation == SHARE:
            return [node.id]
        return [i for c in nodes if c.parent_id == node.id for i in items_below(c)]

    rows: list[dict[tuple, float]] = []
    scopes = units if population is not None else [*units, None]
    for u in scopes:
        weight_of = national_x if u is None else {i: x.get((u, i), 0) for i in national_x}
        for node in nodes:
            if node.aggregation == SHARE or not valued[u][node.id]:
                continue
            if node.aggregation == POOLED:
                terms = [(i, weight_of[i]) for i in items_below(node) if valued[u][i]]
            else:
                terms = [
                    (c.id, c.weight if node.aggregation == WEIGHTED else 1.0)
                    for c in nodes
                    if c.parent_id == node.id and valued[u][c.id]
                ]
            total = sum(Fraction(w) for _i, w in terms)
            row = {(u, node.id): Fraction(1)}
            for i, w in terms:
                row[u, i] = row.get((u, i), Fraction(0)) - Fraction(w) / total
            rows.append(row)
    for node in nodes:
        if not valued[None][node.id]:
            continue
        if population is None and node.aggregation == SHARE:
            terms = [
                (u, Fraction(x.get((u, node.id), 0)) / Fraction(national_x[node.id])) for u in units
            ]
        elif population is not None:
            having = [u for u in units if valued[u][node.id]]
            total = sum(Fraction(population[u]) for u in having)
            terms = [(u, Fraction(population[u]) / total) for u in having]
        else:
            continue  # national aggregates: the tree's relations above, over national cells
        row = {(None, node.id): Fraction(1)}
        for u, coefficient in terms:
            if coefficient:
                row[u, node.id] = -coefficient
        rows.append(row)
    return cells_with_value, rows


PRIME = 2**61 - 1  # exact arithmetic modulo a prime: ranks agree with the rationals' but
# for a chance of the order of (number of minors)/PRIME, and integers stay small (fast)


def modular(value: Any) -> int:
    fraction = Fraction(value)
    return fraction.numerator % PRIME * pow(fraction.denominator, -1, PRIME) % PRIME


def determined(cells_with_value: list[tuple], rows: list[dict], withheld: set) -> set:
    """The withheld cells that the relations fix once the published cells are known.

    Unknown: every cell not published (withheld, or not in the output at all). The relations
    restricted to the unknown cells form a matrix A; a cell k is determined iff its unit
    vector lies in the row space of A. Exactly (modulo a large prime), with sparse rows: in
    the reduced row echelon form of A, e_k is in the row space iff k is a pivot column whose
    row has no other non-zero entry.
    """
    published = {c for c in cells_with_value if c not in withheld}
    reduced: dict[Any, dict[Any, int]] = {}  # pivot cell → its row (pivot entry 1)

    def subtract(row: dict[Any, int], factor: int, other: dict[Any, int]) -> None:
        for c, v in other.items():
            left = (row.get(c, 0) - factor * v) % PRIME
            if left:
                row[c] = left
            else:
                row.pop(c, None)

    for relation in rows:
        row = {c: modular(v) for c, v in relation.items() if c not in published}
        row = {c: v for c, v in row.items() if v}
        for cell in [c for c in row if c in reduced]:  # eliminate the known pivots
            if cell in row:
                subtract(row, row[cell], reduced[cell])
        if not row:
            continue
        pivot = min(row, key=repr)
        inverse = pow(row[pivot], -1, PRIME)
        row = {c: v * inverse % PRIME for c, v in row.items()}
        for other in reduced.values():  # keep the form reduced: clear the new pivot column
            if pivot in other:
                subtract(other, other[pivot], row)
        reduced[pivot] = row
    return {cell for cell, row in reduced.items() if cell in withheld and len(row) == 1}


def leaks(nodes: list[Node], cells: dict, withheld: set, population: dict | None = None) -> set:
    units = sorted({u for u, _n in cells if u is not None})
    cells_with_value, rows = relations(nodes, cells, units, population)
    return determined(cells_with_value, rows, withheld)


def primary(cells: dict) -> set:
    return {key for key, cell in cells.items() if cell.primary}


# --- Hand-worked cases ----------------------------------------------------------------------


def one_parent(
    aggregation: str,
    code: str,
    n: int,
    items: dict[str, int],
    *,
    primary_item: str,
    weights: dict[str, float] | None = None,
) -> tuple[list[Node], dict]:
    """Unit 1's values of a node ``code`` (id 1, ``n`` respondents) over items (ids 2, 3, …
    in order) with their valid answers (X = n) and ``weights`` (else 1): ``primary_item``'s
    value is too small to publish."""
    nodes = [Node(1, code, None, aggregation)]
    cells = {(1, 1): Cell(n)}
    for node_id, (item, count) in enumerate(items.items(), start=2):
        nodes.append(Node(node_id, item, 1, SHARE, (weights or {}).get(item, 1.0)))
        cells[1, node_id] = Cell(count, float(count), primary=item == primary_item)
    return nodes, cells


def assert_closed(
    nodes: list[Node],
    cells: dict,
    leaked: set,
    withheld: set,
    population: dict | None = None,
    **options: Any,
) -> None:
    """Withholding the primary values only, ``leaked`` can be computed back; complementary
    suppression withholds ``withheld``, from which nothing withheld can be."""
    assert leaks(nodes, cells, primary(cells), population) == leaked
    found = complementary_suppression(nodes, cells, population=population, **options)
    assert found == withheld
    assert leaks(nodes, cells, found, population) == set()


def test_the_sipas_example_withholds_the_sibling_and_keeps_the_index() -> None:
    """Province 01: SIPAS = (POL + SVC)/2 published with n = 40, SVC withheld with n = 18.

    With SIPAS = 70 and POL = 80 published, SVC = 2·70 − 80 = 60 comes back. Withholding POL
    (the sibling) leaves one equation in two unknowns: (POL, SVC) = (80, 60) and (90, 50)
    both give SIPAS 70. The index stays published (it is what a ministry ranks on).
    """
    nodes, cells = one_parent(MEAN, "SIPAS", 40, {"POL": 40, "SVC": 18}, primary_item="SVC")
    assert 2 * 70 - 80 == 60 and (80 + 60) / 2 == (90 + 50) / 2 == 70
    # The leak (1, 3), as the issue found it.
    assert_closed(nodes, cells, leaked={(1, 3)}, withheld={(1, 3), (1, 2)})


def test_a_weighted_mean_withholds_the_smallest_sibling_first_by_code() -> None:
    """W = (2A + B + C + D)/5: B withheld (n = 12) is 5W − 2A − C − D.

    The siblings have n = 30 (A), 25 (C), 25 (D): the smallest n, tied, goes by code: C.
    Then 5W − 2A − D = B + C: two unknowns.
    """
    nodes, cells = one_parent(
        WEIGHTED,
        "W",
        40,
        {"A": 30, "B": 12, "C": 25, "D": 25},
        primary_item="B",
        weights={"A": 2.0},
    )
    assert_closed(nodes, cells, leaked={(1, 3)}, withheld={(1, 3), (1, 4)}, unit_codes={1: "01"})


def test_a_pooled_node_withholds_a_second_item() -> None:
    """P pools items with X = 30, 12, 50 valid answers: P·92 = 30·p1 + 12·p2 + 50·p3.

    So p2 = (92·P − 30·p1 − 50·p3)/12 while p2 alone is withheld; the next smallest item
    (p1, 30 answers) is withheld with it.
    """
    nodes, cells = one_parent(POOLED, "P", 60, {"I1": 30, "I2": 12, "I3": 50}, primary_item="I2")
    assert_closed(nodes, cells, leaked={(1, 3)}, withheld={(1, 3), (1, 2)})


def test_the_national_value_withholds_a_second_unit() -> None:
    """One item, four units with 40, 12, 25, 25 valid answers; the nation pools them.

    National value N over 102 answers: p2 = (102·N − 40·p1 − 25·p3 − 25·p4)/12 while unit 02
    alone is withheld. The next smallest unit (25 answers, 03 before 04 by code) joins it.
    """
    nodes = [Node(1, "I", None, SHARE)]
    counts = {1: 40, 2: 12, 3: 25, 4: 25}
    cells: dict[Any, Cell] = {(u, 1): Cell(n, float(n), primary=n < 20) for u, n in counts.items()}
    cells[None, 1] = Cell(102, 102.0)
    codes = {u: f"{u:02d}" for u in counts}
    assert_closed(nodes, cells, leaked={(2, 1)}, withheld={(2, 1), (3, 1)}, unit_codes=codes)


def test_two_unknowns_in_every_relation_can_still_leak() -> None:
    """M = (I1 + I2)/2; unit 1 (10 answers to each item) withholds I1, I2 and M.

    The nation publishes both items, so unit 2's items are withheld too (each national item
    has then two unknowns). Still, with X = 10 and 40 per item, 50·N_i = 10·p1i + 40·p2i
    gives M1 = (p11 + p12)/2 = 5·N_M − 4·M2: unit 2's published M gives unit 1's back, though
    no relation between items has a single unknown. M2 is withheld as well (the national
    rule applies to every indicator, not only to items; the exact check would catch it too).
    """
    nodes = [Node(1, "M", None, MEAN), Node(2, "I1", 1, SHARE), Node(3, "I2", 1, SHARE)]
    cells = {
        (1, 1): Cell(10, primary=True),
        (1, 2): Cell(10, 10.0, primary=True),
        (1, 3): Cell(10, 10.0, primary=True),
        (2, 1): Cell(40),
        (2, 2): Cell(40, 40.0),
        (2, 3): Cell(40, 40.0),
        (None, 1): Cell(50),
        (None, 2): Cell(50, 50.0),
        (None, 3): Cell(50, 50.0),
    }
    no_m2 = primary(cells) | {(2, 2), (2, 3)}
    assert leaks(nodes, cells, no_m2) == {(1, 1)}  # M1 = 5·N_M − 4·M2
    p11, p12, p21, p22 = 30.0, 70.0, 60.0, 90.0  # M1 = 50, M2 = 75
    n1, n2 = (10 * p11 + 40 * p21) / 50, (10 * p12 + 40 * p22) / 50
    assert 5 * (n1 + n2) / 2 - 4 * (p21 + p22) / 2 == pytest.approx((p11 + p12) / 2)
    withheld = complementary_suppression(nodes, cells)
    assert withheld == {(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)}
    assert leaks(nodes, cells, withheld) == set()


def test_population_weighted_national_value_withholds_a_second_unit() -> None:
    """National = Σ π_u·v_u / Σ π_u (populations 1, 2, 3 million): one withheld unit comes
    back as (6·N − 1·v1 − 3·v3)/2; the next smallest unit is withheld with it."""
    nodes = [Node(1, "I", None, SHARE)]
    cells: dict[Any, Cell] = {
        (1, 1): Cell(40, 40.0),
        (2, 1): Cell(12, 12.0, primary=True),
        (3, 1): Cell(30, 30.0),
        (None, 1): Cell(82, 82.0),
    }
    population = {1: 1e6, 2: 2e6, 3: 3e6}
    assert_closed(nodes, cells, leaked={(2, 1)}, withheld={(2, 1), (3, 1)}, population=population)


# --- Property: random trees, counts and primary patterns ------------------------------------


@st.composite
def rounds(draw: Any) -> tuple[list[Node], dict, dict | None]:
    """A tree of depth ≤ 3 (mean, weighted mean, pooled above items), 1–4 units, random
    valid-answer counts (0: no value) and an arbitrary primary pattern, national values."""
    nodes: list[Node] = []

    def grow(parent: int | None, depth: int) -> None:
        node_id = len(nodes) + 1
        leaf = depth == 3 or (depth > 0 and draw(st.booleans()))
        aggregation = SHARE if leaf else draw(st.sampled_from([MEAN, WEIGHTED, POOLED]))
        weight = float(draw(st.integers(1, 3)))
        nodes.append(Node(node_id, f"N{node_id:02d}", parent, aggregation, weight))
        if not leaf:
            for _ in range(draw(st.integers(1, 3))):
                grow(node_id, depth + 1)

    for _ in range(draw(st.integers(1, 2))):
        grow(None, 0)
    units = list(range(1, draw(st.integers(1, 4)) + 1))
    cells: dict[Any, Cell] = {}
    for u in units:
        for node in nodes:
            x = draw(st.integers(0, 40)) if node.aggregation == SHARE else 0
            n = draw(st.integers(1, 60))
            cells[u, node.id] = Cell(n, float(x), primary=draw(st.integers(0, 3)) == 0)
    for node in nodes:
        cells[None, node.id] = Cell(500, 0.0, primary=draw(st.integers(0, 19)) == 0)
    population = None
    if draw(st.booleans()):
        population = {u: float(draw(st.integers(1, 9))) for u in units}
    return nodes, cells, population


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds())
def test_no_withheld_value_is_derivable_from_the_published_ones(drawn: Any) -> None:
    nodes, cells, population = drawn
    withheld = complementary_suppression(nodes, cells, population=population)
    assert primary(cells) <= withheld
    assert leaks(nodes, cells, withheld, population) == set()


# --- End to end: a recomputed round, read through the public API --------------------------


def all_rows(client: Client, path: str, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    response = client.get(path, {"round": ROUND, "page_size": 500, **params})
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        rows += body["results"]
        if not body.get("next"):
            return rows
        response = client.get(body["next"])


@pytest.mark.django_db
def test_the_published_api_does_not_give_a_suppressed_value_back(
    client: Client, published: Run
) -> None:
    """``recompute_round`` on 630 demo responses (10 a province, MIN_PUBLISH_N = 8), then
    what anyone can read: the tree (``indicators/``) and every score with its valid answers
    (``scores/``; the demo's weights are 1, so X = valid). No suppressed value is determined
    by the published ones through the tree's relations and the national pooled values."""
    tree = all_rows(client, "/api/v1/indicators/")
    ids = {row["code"]: i + 1 for i, row in enumerate(tree)}
    nodes = [
        Node(ids[r["code"]], r["code"], ids.get(r["parent"]), r["aggregation"], r["weight"])
        for r in tree
    ]
    scores = all_rows(client, "/api/v1/scores/")
    units = {code: i + 1 for i, code in enumerate(sorted({r["unit"] for r in scores if r["unit"]}))}
    cells = {
        (units.get(r["unit"]), ids[r["indicator"]]): Cell(
            r["n"], float(r["valid"]), primary=r["suppressed"]
        )
        for r in scores
    }
    suppressed = {key for key, cell in cells.items() if cell.primary}
    too_few = {(units.get(r["unit"]), ids[r["indicator"]]) for r in scores if r["n"] < MIN_N}
    assert suppressed > too_few  # complementary values were withheld as well
    assert all(r["value"] is None for r in scores if r["suppressed"])
    assert leaks(nodes, cells, suppressed) == set()

    by_key = {(r["unit"], r["indicator"]): r for r in scores}
    for (unit, code), row in by_key.items():
        children = [by_key.get((unit, c["code"])) for c in tree if c["parent"] == code]
        withheld_child = any(c and c["suppressed"] and c["valid"] > 0 for c in children)
        assert row["children_suppressed"] == (withheld_child and not row["suppressed"])
    # The leak: where SVC is withheld and SIPAS published, POL is withheld too.
    for unit in units:
        svc, pol, sipas = (by_key[unit, c] for c in ("SVC", "POL", "SIPAS"))
        if svc["suppressed"] and svc["valid"] and not sipas["suppressed"]:
            assert pol["suppressed"] and sipas["children_suppressed"]
