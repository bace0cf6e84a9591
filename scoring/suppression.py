"""Complementary suppression: withhold enough further values that no withheld one can be
computed back from the published ones.

Primary suppression withholds a value from fewer than ``MIN_PUBLISH_N`` respondents. That
alone does not protect it: the published values are tied by linear relations, and a
relation with a single withheld term gives that term back. In SIPAS, for one unit,

* a ``mean`` node is the mean of its children with a value, a ``weighted_mean`` node their
  weighted mean (weights public in the indicator tree): SIPAS = (POL + SVC)/2, so SVC =
  2·SIPAS − POL;
* a ``pooled`` node is Σ_j X_j·p_j / Σ_j X_j over the items j below it with a value, X_j the
  item's sum of weights of valid answers (with equal weights, its published ``valid``);
* nationally (pooled over respondents) an item is Σ_u X_uj·p_uj / Σ_u X_uj over the units,
  and every national node follows from the national items by the tree's rules; with
  ``population`` weights π_u the national node is Σ_u π_u·v_u / Σ_u π_u instead.

Model. Every value is a linear form in the unknown item values p_uj (unit u, item j with a
valid answer): the forms above, computed with the actual X (the coefficients are taken as
known to a reader: conservative, since only ``valid`` is published). A withheld value with
form a is *derivable* iff a lies in the span of the published forms. Derivability is
tested exactly (numerically, by SVD), unit by unit: the published forms of unit u fix p_u
up to its null space C_u; the published national forms, restricted to ⊕_u C_u, are the
only remaining equations; a withheld unit form a is derivable iff a·C_u lies in their row
space. This is more than "no relation with exactly one unknown": two relations with two
unknowns each can still give a value back (e.g. two units each withholding both items of a
mean while the nation publishes both items and, with proportional counts, one unit's mean
then gives the other's).

Rule (``complementary_suppression``): while a withheld value is derivable, take the first
(tree order, deepest node first, then unit code) and withhold one more value, chosen in
this order of preference, the first that makes it underivable (if none does alone, the
first of the list, and repeat):

1. a sibling in the same unit (the other terms of its parent's relation), smallest n
   first, then code;
2. a node below it in the same unit (its own relation), smallest n, then code;
3. the same node in another unit (the national relation), smallest n, then unit code;
4. its ancestors in the same unit, nearest first;
5. anything else published (a safety net: never needed in the cases tested).

Parents are withheld last so that the top-level indices (SIPAS, its fields) stay published
where possible; the national values are withheld only by the safety net. Each step adds a
withheld value and withholding never makes another one derivable, so the loop ends; the
result is the same for the same input.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

SHARE, MEAN, WEIGHTED_MEAN, POOLED = "share", "mean", "weighted_mean", "pooled"

Key = tuple[int | None, int]  # (unit id, or None for the nation; indicator id)
SCAN = 8  # how many candidates of a kind are tried for one that protects on its own
TOLERANCE = 1e-9  # relative: a residual below TOLERANCE·|a| means a is in the span


@dataclass(frozen=True, slots=True)
class Node:
    """An indicator node; ``nodes`` are passed in tree order (a parent before its children)."""

    id: int
    code: str
    parent_id: int | None
    aggregation: str
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Cell:
    """One value: respondents, weight sum (X for an item), and whether it is too small."""

    n: int
    weight_sum: float = 0.0
    primary: bool = False


@dataclass
class _Tree:
    nodes: dict[int, Node]
    order: list[int]
    children: dict[int | None, list[int]]
    depth: dict[int, int]
    items_below: dict[int, list[int]]

    @classmethod
    def of(cls, nodes: Sequence[Node]) -> _Tree:
        by_id = {node.id: node for node in nodes}
        children: dict[int | None, list[int]] = defaultdict(list)
        for node in nodes:
            children[node.parent_id if node.parent_id in by_id else None].append(node.id)
        depth: dict[int, int] = {}
        items_below: dict[int, list[int]] = {}
        order: list[int] = []

        def walk(node_id: int, level: int) -> list[int]:
            order.append(node_id)
            depth[node_id] = level
            below = [i for child in children[node_id] for i in walk(child, level + 1)]
            items_below[node_id] = [node_id] if by_id[node_id].aggregation == SHARE else below
            return items_below[node_id]

        for root in children[None]:
            walk(root, 0)
        return cls(by_id, order, dict(children), depth, items_below)

    def ancestors(self, node_id: int) -> list[int]:
        found, parent = [], self.nodes[node_id].parent_id
        while parent in self.nodes:
            found.append(parent)
            parent = self.nodes[parent].parent_id
        return found

    def descendants(self, node_id: int) -> list[int]:
        found: list[int] = []
        for child in self.children.get(node_id, []):
            found += [child, *self.descendants(child)]
        return found


def _forms(
    tree: _Tree, weight_of: Mapping[int, float], index: Mapping[int, int], size: int
) -> dict[int, np.ndarray]:
    """Each node's value as a linear form over the item values (one scope's rules).

    ``weight_of`` gives X per item (items with X > 0 have a value), ``index`` each item's
    column. Nodes without a value get no form (as the engine gives them None).
    """
    forms: dict[int, np.ndarray] = {}

    def visit(node_id: int) -> np.ndarray | None:
        node = tree.nodes[node_id]
        parts = [(child, visit(child)) for child in tree.children.get(node_id, [])]
        form: np.ndarray | None = None
        if node.aggregation == SHARE:
            if weight_of.get(node_id, 0.0) > 0:
                form = np.zeros(size)
                form[index[node_id]] = 1.0
        elif node.aggregation == POOLED:
            answered = [i for i in tree.items_below[node_id] if weight_of.get(i, 0.0) > 0]
            total = sum(weight_of[i] for i in answered)
            if total > 0:
                form = np.zeros(size)
                for item in answered:
                    form[index[item]] += weight_of[item] / total
        else:
            weighted = node.aggregation == WEIGHTED_MEAN
            terms = [
                (tree.nodes[child].weight if weighted else 1.0, f)
                for child, f in parts
                if f is not None
            ]
            total = sum(w for w, _f in terms)
            if total > 0:
                form = sum((w / total * f for w, f in terms), np.zeros(size))
        if form is not None:
            forms[node_id] = form
        return form

    for root in tree.children.get(None, []):
        visit(root)
    return forms


def _orthonormal(vectors: np.ndarray, basis: np.ndarray | None = None) -> np.ndarray:
    """``basis`` (orthonormal rows) extended by the parts of ``vectors`` outside its span.

    Gram–Schmidt, projected twice, with numpy vector operations only: LAPACK routines
    (SVD, QR) start threads whose start-up costs 50–100 times the work on matrices this
    small when the machine is busy. A vector whose part outside the span is below
    ``TOLERANCE`` times its length counts as inside it.
    """
    width = vectors.shape[1]
    start = 0 if basis is None else len(basis)
    found = np.zeros((start + len(vectors), width))
    if start:
        found[:start] = basis
    k = start
    for vector in vectors:
        length = float(np.sqrt(vector @ vector))
        if length == 0:
            continue
        rest = vector
        if k:
            for _ in range(2):
                rest = rest - found[:k].T @ (found[:k] @ rest)
        left = float(np.sqrt(rest @ rest))
        if left > TOLERANCE * length:
            found[k] = rest / left
            k += 1
    return found[:k]


def _null_space(rows: list[np.ndarray], size: int) -> np.ndarray:
    """An orthonormal basis (columns) of the vectors orthogonal to ``rows``."""
    row_basis = _orthonormal(np.array(rows).reshape(len(rows), size))
    return _orthonormal(np.eye(size), row_basis)[len(row_basis) :].T


def _row_basis(rows: np.ndarray) -> np.ndarray:
    """An orthonormal basis (rows) of the row space."""
    return _orthonormal(rows)


@dataclass
class _System:
    """The forms of every value and the derivability test for a set of withheld values."""

    tree: _Tree
    units: list[int]
    unit_forms: dict[int, dict[int, np.ndarray]]  # unit → node → form over its items
    national_nodes: list[int]  # the nodes with a national value, in the blocks' row order
    national_blocks: dict[int, np.ndarray]  # unit → national forms' part over its items
    withheld: set[Key]
    _null: dict[int, np.ndarray] = field(default_factory=dict)

    def has_value(self, key: Key) -> bool:
        unit, node = key
        if unit is None:
            return node in self.national_row
        return node in self.unit_forms.get(unit, {})

    @cached_property
    def national_row(self) -> dict[int, int]:
        return {node: i for i, node in enumerate(self.national_nodes)}

    def null_space(self, unit: int, withheld: set[Key]) -> np.ndarray:
        forms = self.unit_forms[unit]
        size = self.national_blocks[unit].shape[1]
        rows = [f for node, f in forms.items() if (unit, node) not in withheld]
        return _null_space(rows, size)

    def refresh(self, units: Iterable[int]) -> None:
        for unit in units:
            self._null[unit] = self.null_space(unit, self.withheld)

    @cached_property
    def national_norm(self) -> np.ndarray:
        squares = np.zeros(len(self.national_nodes))
        for block in self.national_blocks.values():
            squares += (block**2).sum(axis=1)
        return np.sqrt(squares)

    def locally_derivable(self, key: Key) -> bool:
        """Whether the unit's own published values give the (unit) value back."""
        unit, node = key
        if unit is None:
            return False
        form = self.unit_forms[unit][node]
        left = float(np.linalg.norm(form @ self._null[unit]))
        return left <= TOLERANCE * float(np.linalg.norm(form))

    def derivable(self, keys: Iterable[Key], *, extra: Key | None = None) -> list[Key]:
        """Which of ``keys`` (withheld values) follow from the published ones.

        ``extra``: test as if that value were withheld too.
        """
        withheld = self.withheld if extra is None else self.withheld | {extra}
        null = dict(self._null)
        if extra is not None and extra[0] is not None:
            null[extra[0]] = self.null_space(extra[0], withheld)
        offsets, width = {}, 0
        for u in self.units:
            offsets[u], width = width, width + null[u].shape[1]
        # National forms restricted to what the published unit values leave unknown.
        national = (
            np.hstack([self.national_blocks[u] @ null[u] for u in self.units])
            if self.units
            else np.zeros((len(self.national_nodes), 0))
        )
        row = self.national_row
        published = [row[n] for n in self.national_nodes if (None, n) not in withheld]
        basis = _row_basis(national[published] if published else np.zeros((0, width)))
        keys = list(keys)
        by_unit: dict[int | None, list[Key]] = defaultdict(list)
        for key in keys:
            by_unit[key[0]].append(key)
        found: set[Key] = set()
        for unit, group in by_unit.items():
            if unit is None:
                rows = [row[node] for _u, node in group]
                reduced, norms = national[rows], self.national_norm[rows]
            else:
                forms = np.array([self.unit_forms[unit][node] for _u, node in group])
                reduced = np.zeros((len(group), width))
                start = offsets[unit]
                reduced[:, start : start + null[unit].shape[1]] = forms @ null[unit]
                norms = np.sqrt((forms**2).sum(axis=1))
            residual = reduced - (reduced @ basis.T) @ basis if len(basis) else reduced
            left = np.sqrt((residual**2).sum(axis=1))
            found.update(
                k for k, r, n in zip(group, left, norms, strict=True) if r <= TOLERANCE * n
            )
        return [k for k in keys if k in found]


def build_system(
    nodes: Sequence[Node],
    cells: Mapping[Key, Cell],
    *,
    population: Mapping[int, float] | None = None,
) -> _System:
    """The linear forms of every value with a value (see the module docstring)."""
    tree = _Tree.of(nodes)
    units = sorted({unit for unit, _node in cells if unit is not None})
    unit_forms: dict[int, dict[int, np.ndarray]] = {}
    index: dict[int, dict[int, int]] = {}
    weights: dict[int, dict[int, float]] = {}
    for unit in units:
        weights[unit] = {
            node.id: cells[unit, node.id].weight_sum
            for node in nodes
            if node.aggregation == SHARE
            and (unit, node.id) in cells
            and cells[unit, node.id].weight_sum > 0
        }
        index[unit] = {item: i for i, item in enumerate(weights[unit])}
        unit_forms[unit] = _forms(tree, weights[unit], index[unit], len(index[unit]))

    national: dict[int, dict[int, np.ndarray]] = {}  # node → unit → part of its form
    wanted = [node.id for node in nodes if (None, node.id) in cells]
    if population is None:
        # Pooled: the nation's items weigh each unit's items by X; nodes follow the tree.
        national_x: dict[int, float] = defaultdict(float)
        for u in units:
            for item, x in weights[u].items():
                national_x[item] += x
        item_index = {item: i for i, item in enumerate(sorted(national_x))}
        over_items = _forms(tree, national_x, item_index, len(item_index))
        for node_id in wanted:
            if node_id in over_items:
                national[node_id] = {
                    u: np.array(
                        [
                            over_items[node_id][item_index[item]] * x / national_x[item]
                            for item, x in weights[u].items()
                        ]
                    )
                    for u in units
                }
    else:
        for node_id in wanted:
            having = [u for u in units if node_id in unit_forms[u] and population.get(u, 0) > 0]
            total = sum(population[u] for u in having)
            if total > 0:
                national[node_id] = {
                    u: (
                        population[u] / total * unit_forms[u][node_id]
                        if u in having
                        else np.zeros(len(index[u]))
                    )
                    for u in units
                }
    national_nodes = list(national)
    blocks = {
        u: np.array([national[n][u] for n in national_nodes]).reshape(
            len(national_nodes), len(index[u])
        )
        for u in units
    }
    system = _System(tree, units, unit_forms, national_nodes, blocks, set())
    system.withheld = {k for k, cell in cells.items() if cell.primary and system.has_value(k)}
    system.refresh(units)
    return system


def complementary_suppression(
    nodes: Sequence[Node],
    cells: Mapping[Key, Cell],
    *,
    unit_codes: Mapping[int, str] | None = None,
    population: Mapping[int, float] | None = None,
) -> set[Key]:
    """Every value to withhold: the primary ones (``Cell.primary``) and the complementary.

    ``cells`` holds the values of one round: per unit (and nationally, unit None) and
    indicator. Values without a value (no valid answer) are returned if primary but take
    no part in the relations. See the module docstring for the rule.
    """
    codes = {u: (unit_codes or {}).get(u, f"{u:>12}") for u, _node in cells if u is not None}
    system = build_system(nodes, cells, population=population)
    tree = system.tree
    position = {node_id: i for i, node_id in enumerate(tree.order)}

    def published(keys: Iterable[Key]) -> list[Key]:
        return [k for k in keys if k not in system.withheld and system.has_value(k)]

    def by_size(keys: Iterable[Key]) -> list[Key]:
        return sorted(
            published(keys),
            key=lambda k: (cells[k].n, codes.get(k[0], ""), tree.nodes[k[1]].code),  # type: ignore[index]
        )

    def target_order(key: Key) -> tuple:
        unit, node = key
        return (-tree.depth[node], position[node], unit is None, codes.get(unit, ""))  # type: ignore[arg-type]

    def single(terms: list[Key]) -> bool:
        """Whether the relation over ``terms`` has the one withheld term (the target)."""
        present = [k for k in terms if system.has_value(k)]
        return sum(k in system.withheld for k in present) == 1 and len(present) > 1

    def candidates(key: Key) -> tuple[list[Key], list[Key], Key | None]:
        """The values sharing a relation with ``key`` by preference, its ancestors, and the
        value to withhold at once if a relation has ``key`` as its only withheld term."""
        unit, node = key
        parent = tree.nodes[node].parent_id
        own = tree.children.get(node, [])
        if tree.nodes[node].aggregation == POOLED:
            own = tree.items_below[node]
        elif tree.nodes[node].aggregation == SHARE:
            own = []
        mates = [c for c in tree.children.get(parent, []) if c != node] if parent else []
        if parent is not None and tree.nodes[parent].aggregation == POOLED:
            mates = [i for i in tree.items_below[parent] if i != node]
        units = [u for u in (None, *system.units) if u != unit]
        relations = [
            ([(unit, c) for c in own], [key, *((unit, c) for c in own)]),
            ([(unit, m) for m in mates], [key, (unit, parent), *((unit, m) for m in mates)]),
            ([(u, node) for u in units if u is not None], [key, *((u, node) for u in units)]),
        ]
        if unit is None:  # the nation: its own relation, then the units' relation
            relations = [relations[0], relations[2], relations[1]]
        groups = [by_size(terms) for terms, _relation in relations]
        singles = [single(relation) for _terms, relation in relations]
        # A relation where the value is the only withheld term is broken first.
        first = [g for g, one in zip(groups, singles, strict=True) if one]
        ordered = [*first, *(g for g, one in zip(groups, singles, strict=True) if not one)]
        ancestors = [] if unit is None else published((unit, a) for a in tree.ancestors(node))
        urgent = next((g[0] for g in first if g), None)
        if urgent is None and any(singles):  # parent = its only child: withhold the parent
            urgent = ancestors[0] if ancestors else None
        return [k for g in ordered for k in dict.fromkeys(g)], ancestors, urgent

    def fallback(key: Key) -> list[Key]:
        unit = key[0]
        same = [(unit, n) for n in tree.order] if unit is not None else []
        rest = [(u, n) for u in system.units if u != unit for n in tree.order]
        national = [(None, n) for n in tree.order]
        ordered = sorted(published(same), key=lambda k: -tree.depth[k[1]])
        return ordered + by_size(rest) + published(national)

    def fixes(target: Key, candidate: Key) -> bool:
        return not system.derivable([target], extra=candidate)

    # 1. Local: while a relation has exactly one withheld term, withhold a second one.
    changed = True
    while changed:
        changed = False
        touched: set[int | None] = set()
        for target in sorted(system.withheld, key=target_order):
            urgent = candidates(target)[2]
            if urgent is not None:
                system.withheld.add(urgent)
                touched.add(urgent[0])
                changed = True
        system.refresh(u for u in touched if u is not None)
    # 2. Exact: while a withheld value is a combination of published ones, withhold another.
    while True:
        found = system.derivable(sorted(system.withheld, key=target_order))
        if not found:
            break
        target = found[0]
        related, ancestors, _urgent = candidates(target)
        if system.locally_derivable(target):  # only a value of the same unit can help
            tried = [c for c in related if c[0] == target[0]]
        else:  # the nearest few of each kind
            tried = [c for c in related if c[0] == target[0]][:SCAN]
            tried += [c for c in related if c[0] != target[0]][:SCAN]
        chosen = next((c for c in tried if fixes(target, c)), None)
        if chosen is None:
            options = related or ancestors or fallback(target)
            chosen = next((c for c in options if fixes(target, c)), options[0])
        system.withheld.add(chosen)
        if chosen[0] is not None:
            system.refresh([chosen[0]])
    primary_without_value = {k for k, c in cells.items() if c.primary}
    return system.withheld | primary_without_value
