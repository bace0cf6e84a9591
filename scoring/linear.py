"""The linearized sums of ``scoring.sql.linearized_sums`` computed from the compact records
in numpy, streaming: the same rows, the same meaning, another place for the arithmetic.

The SQL version evaluates, for every respondent, a few hundred expressions and aggregates
(one per node and figure); PostgreSQL spends about 80 µs per respondent on them. Here the
database only sorts the compact records (``feedback.records``) by (stratum, PSU, scope) and
streams them; numpy turns each chunk's bit masks into 0/1 matrices and each respondent's
linearized scores into two matrix products per scope (z = w·(Y·Aᵀ − X·Bᵀ), Y the satisfied,
X the valid answers, A and B the scope's coefficients a and b per node and question), then
sums them per PSU with ``np.add.reduceat``. Only the sums per (scope, stratum) and per
stratum are kept, so memory does not grow with the number of responses (a chunk, plus the
rows of one PSU carried over to the next chunk).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from scoring.sql import (
    BITS_PER_WORD,
    NATIONAL,
    ItemRow,
    NodeRow,
    SatisfiedRule,
    _respondents,
    _scope_sql,
)

CHUNK = 20_000  # respondents per fetch (a chunk's figures: CHUNK × ~6 per node floats)


def linearized_sums(
    *,
    round_id: int,
    version_id: int,
    unit_level: str,
    rules: Sequence[SatisfiedRule],
    question_ids: Sequence[int],
    coefficients: Sequence[tuple[int, int, int, float, float, float, float]],
    unit_map: Mapping[int, int] | None = None,
    weights_run_id: int | None = None,
    single_questions: Sequence[int] = (),
) -> tuple[list[NodeRow], list[ItemRow]]:
    """``scoring.sql.linearized_sums`` (same arguments, same rows) from the records."""
    if not coefficients and not single_questions:
        return [], []
    questions = sorted(set(question_ids))
    position = {q: i for i, q in enumerate(questions)}
    nodes = sorted({k for _s, k, _q, *_ in coefficients})
    node_index = {k: i for i, k in enumerate(nodes)}
    n_q, n_k = len(questions), len(nodes)
    # Per scope: A, B (unit) and NA, NB (national) as questions × nodes matrices
    # (the unit's beside the nation's: m[0] = [A | NA], m[1] = [B | NB], questions × 2K)
    matrices: dict[int, np.ndarray] = defaultdict(lambda: np.zeros((2, n_q, 2 * n_k)))
    member = np.zeros((n_q, n_k))
    for scope, node, q, a, b, na, nb in coefficients:
        m = matrices[scope]
        i, k = position[q], node_index[node]
        m[0, i, k], m[1, i, k], m[0, i, n_k + k], m[1, i, n_k + k] = a, b, na, nb
        member[i, k] = 1.0
    singles = [position[q] for q in single_questions]

    respondents, args = _respondents(
        scope_sql=_scope_sql(unit_level, unit_map),
        rules=rules,
        question_ids=question_ids,
        weights_run_id=weights_run_id,
        round_id=round_id,
        version_id=version_id,
    )
    words = max(1, -(-n_q // BITS_PER_WORD))
    masks = ", ".join(f"p.x{w}, p.y{w}" for w in range(words))
    sql = (
        f"SELECT p.stratum, CASE WHEN p.stratum = '' THEN p.unit_id ELSE 0 END, p.psu, "
        f"p.scope, p.w, {masks} FROM ({respondents}) p ORDER BY 1, 2, 3, 4"
    )
    n_s = len(singles)
    width = 6 * n_k + 4 * n_s  # per respondent: m, m·w, z, z², zn, zn² per node; singles
    unit: dict[tuple[int, str, int], np.ndarray] = {}
    nation: dict[tuple[str, int], np.ndarray] = {}
    shifts = np.arange(BITS_PER_WORD, dtype=np.int64)

    def process(rows: list[tuple]) -> None:
        st = np.array([r[0] for r in rows], dtype=object)
        su = np.array([r[1] for r in rows], dtype=np.int64)
        psu = np.array([r[2] for r in rows], dtype=object)
        scope = np.array([r[3] for r in rows], dtype=np.int64)
        w = np.array([r[4] for r in rows], dtype=float)
        bits = np.array([r[5:] for r in rows], dtype=np.int64).reshape(len(rows), 2 * words)
        x = np.zeros((len(rows), n_q))
        y = np.zeros((len(rows), n_q))
        for word in range(words):
            count = min(BITS_PER_WORD, n_q - word * BITS_PER_WORD)
            cols = slice(word * BITS_PER_WORD, word * BITS_PER_WORD + count)
            x[:, cols] = (bits[:, 2 * word, None] >> shifts[:count]) & 1
            y[:, cols] = (bits[:, 2 * word + 1, None] >> shifts[:count]) & 1
        # Respondents by scope (stable: within a scope still by stratum and PSU), so that
        # every scope is one slice and every (scope, stratum, PSU) group a run of rows.
        order = np.argsort(scope, kind="stable")
        x, y, w = x[order], y[order], w[order]
        st_o, su_o, psu_o, scope_o = st[order], su[order], psu[order], scope[order]
        figures = np.zeros((len(rows), width))
        bounds = np.flatnonzero(np.r_[True, scope_o[1:] != scope_o[:-1], True])
        for a, b in itertools.pairwise(bounds):
            m = matrices.get(int(scope_o[a]))
            ws = w[a:b, None]
            if m is not None:
                both = ws * (y[a:b] @ m[0] - x[a:b] @ m[1])  # z, then zn: n × 2K
                figures[a:b, 2 * n_k : 3 * n_k] = both[:, :n_k]
                figures[a:b, 4 * n_k : 5 * n_k] = both[:, n_k:]
            inside = (x[a:b] @ member > 0).astype(float)
            figures[a:b, 0:n_k] = inside
            figures[a:b, n_k : 2 * n_k] = inside * ws
        figures[:, 3 * n_k : 4 * n_k] = figures[:, 2 * n_k : 3 * n_k] ** 2
        figures[:, 5 * n_k : 6 * n_k] = figures[:, 4 * n_k : 5 * n_k] ** 2
        if n_s:
            base = 6 * n_k
            figures[:, base : base + n_s] = w[:, None] * y[:, singles]
            figures[:, base + n_s : base + 2 * n_s] = w[:, None] * x[:, singles]
            figures[:, base + 2 * n_s : base + 3 * n_s] = (w * w)[:, None] * y[:, singles]
            figures[:, base + 3 * n_s : base + 4 * n_s] = (w * w)[:, None] * x[:, singles]
        change = np.ones(len(rows), dtype=bool)
        change[1:] = (
            (st_o[1:] != st_o[:-1]) | (su_o[1:] != su_o[:-1]) | (psu_o[1:] != psu_o[:-1])
            | (scope_o[1:] != scope_o[:-1])
        )  # fmt: skip
        starts = np.flatnonzero(change)
        contributions = _unit_figures(
            np.add.reduceat(figures, starts, axis=0), n_k, n_s, psu_o[starts] == ""
        )
        # Groups of one (scope, stratum) are contiguous: sum them, then one dict update each.
        keys = np.ones(len(starts), dtype=bool)
        keys[1:] = (
            (scope_o[starts][1:] != scope_o[starts][:-1])
            | (st_o[starts][1:] != st_o[starts][:-1])
            | (su_o[starts][1:] != su_o[starts][:-1])
        )
        key_starts = np.flatnonzero(keys)
        for j, total in zip(
            key_starts, np.add.reduceat(contributions, key_starts, axis=0), strict=True
        ):
            start = starts[j]
            key = (int(scope_o[start]), str(st_o[start]), int(su_o[start]))
            if key in unit:
                unit[key] += total
            else:
                unit[key] = total
        # National: PSU totals across scopes, (st, su, psu) groups contiguous in the rows'
        # own order (sorted by stratum, PSU, scope).
        national = np.empty_like(figures)
        national[order] = figures
        national_change = np.ones(len(rows), dtype=bool)
        national_change[1:] = (st[1:] != st[:-1]) | (su[1:] != su[:-1]) | (psu[1:] != psu[:-1])
        national_starts = np.flatnonzero(national_change)
        contributions = _national_figures(
            np.add.reduceat(national, national_starts, axis=0),
            n_k,
            n_s,
            psu[national_starts] == "",
        )
        keys = np.ones(len(national_starts), dtype=bool)
        keys[1:] = (st[national_starts][1:] != st[national_starts][:-1]) | (
            su[national_starts][1:] != su[national_starts][:-1]
        )
        key_starts = np.flatnonzero(keys)
        for j, total in zip(
            key_starts, np.add.reduceat(contributions, key_starts, axis=0), strict=True
        ):
            start = national_starts[j]
            key = (str(st[start]), int(su[start]))
            if key in nation:
                nation[key] += total
            else:
                nation[key] = total

    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # No JIT (it compiles for longer than the sort runs), memory to sort.
                cursor.execute(
                    "SELECT set_config('jit', 'off', true), set_config('work_mem', %s, true)",
                    [settings.SCORING_WORK_MEM],
                )
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql, args)
            carry: list[tuple] = []
            while chunk := cursor.fetchmany(CHUNK):
                rows = carry + list(chunk)
                # A given PSU is summed whole (its total is squared): its rows at the end of
                # the chunk wait for the next one. Rows without PSU add up in any split.
                last = rows[-1][:3]
                cut = len(rows)
                if last[2] != "":
                    while cut > 0 and rows[cut - 1][:3] == last:
                        cut -= 1
                if cut == 0:
                    carry = rows
                    continue
                process(rows[:cut])
                carry = rows[cut:]
            if carry:
                process(carry)

    out: list[NodeRow] = []
    items: list[ItemRow] = []
    for (scope, st, su), acc in unit.items():
        for k, node in enumerate(nodes):
            n, w_sum, z, zz, psu_zz, nz, nzz = (float(v) for v in acc[7 * k : 7 * k + 7])
            if n:
                out.append((scope, st, su, node, int(n), w_sum, z, zz, psu_zz, nz, nzz))
        base = 7 * n_k
        for i, q in enumerate(single_questions):
            figures = tuple(float(v) for v in acc[base + 7 * i : base + 7 * i + 7])
            if any(figures):
                items.append((scope, st, su, q, *figures))  # type: ignore[arg-type]
    for (st, su), acc in nation.items():
        for k, node in enumerate(nodes):
            if acc[k]:
                out.append((NATIONAL, st, su, node, 0, 0.0, 0.0, 0.0, float(acc[k]), 0.0, 0.0))
        for i, q in enumerate(single_questions):
            moments = tuple(float(v) for v in acc[n_k + 3 * i : n_k + 3 * i + 3])
            if any(moments):
                items.append((NATIONAL, st, su, q, 0.0, 0.0, 0.0, 0.0, *moments))  # type: ignore[arg-type]
    return out, items


def _unit_figures(g: np.ndarray, n_k: int, n_s: int, own: np.ndarray) -> np.ndarray:
    """Per (scope, stratum, PSU) group, its share of its (scope, stratum) figures: per node
    n, Σw, Σz, Σz², Σ_p z_p², Σzn, Σzn²; per single question ΣY, ΣX, Σw²s, Σw², Σ_p Y_p²,
    Σ_p Y_p·X_p, Σ_p X_p². Responses without PSU are each their own PSU (``own``)."""
    own = own[:, None]
    m, mw, z, zz = (
        g[:, 0:n_k],
        g[:, n_k : 2 * n_k],
        g[:, 2 * n_k : 3 * n_k],
        g[:, 3 * n_k : 4 * n_k],
    )
    zn, znn = g[:, 4 * n_k : 5 * n_k], g[:, 5 * n_k : 6 * n_k]
    nodes = np.stack([m, mw, z, zz, np.where(own, zz, z * z), zn, znn], axis=2)
    parts = [nodes.reshape(len(g), 7 * n_k)]
    if n_s:
        base = 6 * n_k
        sy, sx = g[:, base : base + n_s], g[:, base + n_s : base + 2 * n_s]
        syy, sxx = g[:, base + 2 * n_s : base + 3 * n_s], g[:, base + 3 * n_s : base + 4 * n_s]
        singles = np.stack(
            [
                sy,
                sx,
                syy,
                sxx,
                np.where(own, syy, sy * sy),
                np.where(own, syy, sy * sx),
                np.where(own, sxx, sx * sx),
            ],
            axis=2,
        )
        parts.append(singles.reshape(len(g), 7 * n_s))
    return np.hstack(parts)


def _national_figures(g: np.ndarray, n_k: int, n_s: int, own: np.ndarray) -> np.ndarray:
    """Per PSU (its totals across scopes), its share of its stratum's national figures:
    Σ_p zn_p² per node; Σ_p Y_p², Σ_p Y_p·X_p, Σ_p X_p² per single question."""
    own = own[:, None]
    zn, znn = g[:, 4 * n_k : 5 * n_k], g[:, 5 * n_k : 6 * n_k]
    parts = [np.where(own, znn, zn * zn)]
    if n_s:
        base = 6 * n_k
        sy, sx = g[:, base : base + n_s], g[:, base + n_s : base + 2 * n_s]
        syy, sxx = g[:, base + 2 * n_s : base + 3 * n_s], g[:, base + 3 * n_s : base + 4 * n_s]
        moments = np.stack(
            [np.where(own, syy, sy * sy), np.where(own, syy, sy * sx), np.where(own, sxx, sx * sx)],
            axis=2,
        )
        parts.append(moments.reshape(len(g), 3 * n_s))
    return np.hstack(parts)


def item_totals(
    *,
    round_id: int,
    version_id: int,
    unit_level: str,
    rules: Sequence[SatisfiedRule],
    question_ids: Sequence[int],
    unit_map: Mapping[int, int] | None = None,
    weights_run_id: int | None = None,
) -> list[tuple[int, int, float, float, int]]:
    """``scoring.sql.item_totals`` (same rows) from the records, streamed: per chunk the
    masks as 0/1 matrices, Σ w·y, Σ w·x and Σ x per scope by one product each."""
    questions = sorted(set(question_ids))
    n_q = len(questions)
    respondents, args = _respondents(
        scope_sql=_scope_sql(unit_level, unit_map),
        rules=rules,
        question_ids=question_ids,
        weights_run_id=weights_run_id,
        round_id=round_id,
        version_id=version_id,
    )
    words = max(1, -(-n_q // BITS_PER_WORD))
    masks = ", ".join(f"p.x{w}, p.y{w}" for w in range(words))
    sql = f"SELECT p.scope, p.w, {masks} FROM ({respondents}) p"
    shifts = np.arange(BITS_PER_WORD, dtype=np.int64)
    totals: dict[int, np.ndarray] = {}
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(sql, args)
        while chunk := cursor.fetchmany(CHUNK):
            scope = np.array([r[0] for r in chunk], dtype=np.int64)
            w = np.array([r[1] for r in chunk], dtype=float)
            bits = np.array([r[2:] for r in chunk], dtype=np.int64).reshape(len(chunk), -1)
            x = np.zeros((len(chunk), n_q))
            y = np.zeros((len(chunk), n_q))
            for word in range(words):
                count = min(BITS_PER_WORD, n_q - word * BITS_PER_WORD)
                cols = slice(word * BITS_PER_WORD, word * BITS_PER_WORD + count)
                x[:, cols] = (bits[:, 2 * word, None] >> shifts[:count]) & 1
                y[:, cols] = (bits[:, 2 * word + 1, None] >> shifts[:count]) & 1
            scopes, index = np.unique(scope, return_inverse=True)
            one_hot = np.zeros((len(scopes), len(chunk)))
            one_hot[index, np.arange(len(chunk))] = 1.0
            sums = np.hstack([one_hot @ (w[:, None] * y), one_hot @ (w[:, None] * x), one_hot @ x])
            for s, row in zip(scopes, sums, strict=True):
                acc = totals.get(int(s))
                if acc is None:
                    totals[int(s)] = row
                else:
                    acc += row
    out = []
    for scope, row in sorted(totals.items()):
        for i, q in enumerate(questions):
            n = round(row[2 * n_q + i])
            if n:
                out.append((scope, q, float(row[i]), float(row[n_q + i]), n))
    return out
