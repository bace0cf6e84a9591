"""The linearized sums of ``scoring.sql.linearized_sums`` computed from the compact records
in numpy, streaming: the same rows, the same meaning, another place for the arithmetic.

The SQL version evaluates, for every respondent, a few hundred expressions and aggregates
(one per node and figure); PostgreSQL spends about 80 µs per respondent on them. Here the
database only groups the compact records (``feedback.records``) and ships them as numbers:
on PostgreSQL one row per *group* of records, its records' scope, weight and bit masks
packed in one ``bytea`` (``int8send``/``float8send``, big-endian) that numpy reads with
``np.frombuffer`` — no Python object per respondent. For the linearized sums a group is a
PSU (stratum, PSU, all its records across scopes), or a slice of a stratum's records
without PSU (each its own PSU, so they add up in any split); for the item totals any slice.
Strata are coded as integers on arrival (one dict look-up per group).

numpy turns each batch's bit masks into 0/1 matrices and each respondent's linearized
scores into two matrix products per scope (z = w·(Y·Aᵀ − X·Bᵀ), Y the satisfied, X the
valid answers, A and B the scope's coefficients a and b per node and question), then sums
them per (scope, PSU) and per PSU with ``np.add.reduceat``. Only the sums per (scope,
stratum) and per stratum are kept, so memory does not grow with the number of responses
(a batch of about ``CHUNK`` records, made of whole groups).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from scipy import sparse

from scoring.sql import (
    BITS_PER_WORD,
    NATIONAL,
    ItemRow,
    NodeRow,
    Reading,
    _respondents,
)

CHUNK = 20_000  # records per batch (a batch's figures: CHUNK × ~6 per node floats)
SLICE = 1_024  # records without PSU are grouped by response id // SLICE (PostgreSQL)
GROUPS = 256  # groups per fetch from the server-side cursor


@dataclass
class _Batch:
    """Whole groups of records, rows contiguous by group."""

    scope: np.ndarray  # int64 per record
    w: np.ndarray  # float64 per record
    bits: np.ndarray  # int64 (records × 2·words): x0, y0, x1, y1, …
    starts: np.ndarray  # first record of each group
    group: np.ndarray  # per record, its group's index in the batch
    stratum: np.ndarray  # int64 per group: its stratum's code (``_Strata``)
    own: np.ndarray  # bool per group: records without PSU (each its own PSU)


class _Strata:
    """Integer codes of the strata (st, su) in order of arrival."""

    def __init__(self) -> None:
        self.code: dict[tuple[str, int], int] = {}
        self.keys: list[tuple[str, int]] = []

    def __call__(self, st: str, su: int) -> int:
        key = (st, su)
        found = self.code.get(key)
        if found is None:
            found = self.code[key] = len(self.keys)
            self.keys.append(key)
        return found


def _row_dtype(words: int) -> np.dtype:
    return np.dtype([("scope", ">i8"), ("w", ">f8"), ("bits", ">i8", (2 * words,))])


def _batch(
    scope: np.ndarray,
    w: np.ndarray,
    bits: np.ndarray,
    sizes: Sequence[int],
    stratum: Sequence[int],
    own: Sequence[bool],
) -> _Batch:
    sizes_a = np.asarray(sizes, dtype=np.int64)
    starts = np.zeros(len(sizes_a), dtype=np.int64)
    np.cumsum(sizes_a[:-1], out=starts[1:])
    return _Batch(
        scope=scope,
        w=w,
        bits=bits,
        starts=starts,
        group=np.repeat(np.arange(len(sizes_a)), sizes_a),
        stratum=np.asarray(stratum, dtype=np.int64),
        own=np.asarray(own, dtype=bool),
    )


def _batches(
    respondents: str, args: list, words: int, strata: _Strata, *, by_psu: bool
) -> Iterator[_Batch]:
    """The records of ``respondents`` (``scoring.sql._respondents``) in batches of whole
    groups: PSUs when ``by_psu`` (see the module docstring), else any slices."""
    if connection.vendor == "postgresql":
        yield from _postgresql_batches(respondents, args, words, strata, by_psu=by_psu)
    else:
        yield from _fetched_batches(respondents, args, words, strata, by_psu=by_psu)


def _postgresql_batches(
    respondents: str, args: list, words: int, strata: _Strata, *, by_psu: bool
) -> Iterator[_Batch]:
    packed = " || ".join(
        ["int8send(p.scope::bigint)", "float8send(p.w::double precision)"]
        + [f"int8send(p.x{w}::bigint) || int8send(p.y{w}::bigint)" for w in range(words)]
    )
    if by_psu:
        sql = (
            f"SELECT p.stratum, CASE WHEN p.stratum = '' THEN p.unit_id ELSE 0 END, p.psu, "
            f"string_agg({packed}, ''::bytea) FROM ({respondents}) p "
            f"GROUP BY 1, 2, 3, CASE WHEN p.psu = '' THEN p.response_id / {SLICE} ELSE 0 END"
        )
    else:
        sql = (
            f"SELECT '', 0, '', string_agg({packed}, ''::bytea) FROM ({respondents}) p "
            f"GROUP BY p.response_id / {SLICE}"
        )
    dtype = _row_dtype(words)
    with transaction.atomic():
        with connection.cursor() as cursor:
            # No JIT (it compiles for longer than the query runs), memory to group, and
            # hashing the groups rather than sorting a row per record (several times slower).
            cursor.execute(
                "SELECT set_config('jit', 'off', true), set_config('work_mem', %s, true), "
                "set_config('enable_sort', 'off', true)",
                [settings.SCORING_WORK_MEM],
            )
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql, args)
            blobs: list[bytes] = []
            sizes: list[int] = []
            codes: list[int] = []
            own: list[bool] = []
            held = 0

            def flush() -> _Batch:
                rows = np.frombuffer(b"".join(blobs), dtype=dtype)
                return _batch(
                    rows["scope"].astype(np.int64),
                    rows["w"].astype(np.float64),
                    rows["bits"].astype(np.int64),
                    sizes,
                    codes,
                    own,
                )

            while fetched := cursor.fetchmany(GROUPS):
                for st, su, psu, blob in fetched:
                    blob = bytes(blob)
                    blobs.append(blob)
                    sizes.append(len(blob) // dtype.itemsize)
                    codes.append(strata(st, int(su)))
                    own.append(psu == "")
                    held += sizes[-1]
                    if held >= CHUNK:
                        yield flush()
                        blobs, sizes, codes, own, held = [], [], [], [], 0
            if held:
                yield flush()


def _fetched_batches(
    respondents: str, args: list, words: int, strata: _Strata, *, by_psu: bool
) -> Iterator[_Batch]:
    """The same batches from plain rows, sorted by PSU (SQLite: no ``bytea`` packing)."""
    masks = ", ".join(f"p.x{w}, p.y{w}" for w in range(words))
    sql = (
        f"SELECT p.stratum, CASE WHEN p.stratum = '' THEN p.unit_id ELSE 0 END, p.psu, "
        f"p.scope, p.w, {masks} FROM ({respondents}) p"
    )
    if by_psu:
        sql += " ORDER BY 1, 2, 3"

    def batch(rows: list[tuple]) -> _Batch:
        if by_psu:
            keys = [(r[0], int(r[1]), r[2]) for r in rows]
            sizes = [len(list(g)) for _k, g in itertools.groupby(keys)]
            firsts = np.cumsum([0, *sizes[:-1]])
            codes = [strata(keys[i][0], keys[i][1]) for i in firsts]
            own = [keys[i][2] == "" for i in firsts]
        else:
            sizes, codes, own = [len(rows)], [strata("", 0)], [True]
        return _batch(
            np.array([r[3] for r in rows], dtype=np.int64),
            np.array([r[4] for r in rows], dtype=np.float64),
            np.array([r[5:] for r in rows], dtype=np.int64).reshape(len(rows), 2 * words),
            sizes,
            codes,
            own,
        )

    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(sql, args)
        carry: list[tuple] = []
        while chunk := cursor.fetchmany(CHUNK):
            rows = carry + list(chunk)
            # A given PSU is summed whole (its total is squared): its rows at the end of the
            # chunk wait for the next one. Rows without PSU add up in any split.
            last = rows[-1][:3]
            cut = len(rows)
            if by_psu and last[2] != "":
                while cut > 0 and rows[cut - 1][:3] == last:
                    cut -= 1
            if cut == 0:
                carry = rows
                continue
            yield batch(rows[:cut])
            carry = rows[cut:]
        if carry:
            yield batch(carry)


_SHIFTS = np.arange(BITS_PER_WORD, dtype=np.int64)


def _unpack(bits: np.ndarray, n_q: int) -> tuple[np.ndarray, np.ndarray]:
    """The valid (x) and satisfied (y) 0/1 matrices (records × questions) of the masks."""
    n = len(bits)
    x = np.empty((n, n_q))
    y = np.empty((n, n_q))
    as_bytes = np.ascontiguousarray(bits.astype("<u8")).view(np.uint8).reshape(n, -1, 8)
    for word in range(bits.shape[1] // 2):
        count = min(BITS_PER_WORD, n_q - word * BITS_PER_WORD)
        if count <= 0:
            break
        cols = slice(word * BITS_PER_WORD, word * BITS_PER_WORD + count)
        x[:, cols] = np.unpackbits(as_bytes[:, 2 * word], axis=1, bitorder="little")[:, :count]
        y[:, cols] = np.unpackbits(as_bytes[:, 2 * word + 1], axis=1, bitorder="little")[:, :count]
    return x, y


def _segment_sums(
    segment: np.ndarray, count: int, weight: np.ndarray | None, values: np.ndarray
) -> np.ndarray:
    """Σ weight·values per segment (``segment``: each record's, 0…count − 1), records added
    in their order, by a sparse product (one C loop over the records' rows)."""
    n = len(segment)
    data = np.ones(n) if weight is None else weight
    matrix = sparse.csc_matrix((data, segment, np.arange(n + 1)), shape=(count, n))
    return np.asarray(matrix @ values)


def _sum_by(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows of ``keys``, the sums of ``values`` per distinct key)."""
    distinct, inverse = np.unique(keys, axis=0, return_inverse=True)
    order = np.argsort(inverse.reshape(-1), kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(inverse.reshape(-1)[order]) != 0])
    return distinct, np.add.reduceat(values[order], bounds, axis=0)


def linearized_sums(
    read: Reading,
    *,
    coefficients: Sequence[tuple[int, int, int, float, float, float, float]],
    single_questions: Sequence[int] = (),
) -> tuple[list[NodeRow], list[ItemRow]]:
    """``scoring.sql.linearized_sums`` (same arguments, same rows) from the records."""
    if not coefficients and not single_questions:
        return [], []
    questions = sorted(set(read.question_ids))
    position = {q: i for i, q in enumerate(questions)}
    nodes = sorted({k for _s, k, _q, *_ in coefficients})
    node_index = {k: i for i, k in enumerate(nodes)}
    n_q, n_k = len(questions), len(nodes)
    # Per scope: A, B (unit) and NA, NB (national) as questions × nodes matrices
    # (the unit's beside the nation's: m[0] = [A | NA], m[1] = [B | NB], questions × 2K)
    matrices: dict[int, np.ndarray] = {}
    member = np.zeros((n_q, n_k))
    for scope, node, q, a, b, na, nb in coefficients:
        m = matrices.get(scope)
        if m is None:
            m = matrices[scope] = np.zeros((2, n_q, 2 * n_k))
        i, k = position[q], node_index[node]
        m[0, i, k], m[1, i, k], m[0, i, n_k + k], m[1, i, n_k + k] = a, b, na, nb
        member[i, k] = 1.0
    singles = [position[q] for q in single_questions]
    all_singles = singles == list(range(n_q))

    respondents, args = _respondents(read)
    words = max(1, -(-n_q // BITS_PER_WORD))
    n_s = len(singles)
    width = 6 * n_k + 4 * n_s  # per respondent: m, m·w, z, z², zn, zn² per node; singles
    unit: dict[tuple[int, int], np.ndarray] = {}  # (scope, stratum code) → figures
    nation: dict[int, np.ndarray] = {}  # stratum code → figures
    strata = _Strata()

    def add(into: dict, key: object, total: np.ndarray) -> None:
        if key in into:
            into[key] += total
        else:
            into[key] = total.copy()

    def process(batch: _Batch) -> None:
        n = len(batch.scope)
        x, y = _unpack(batch.bits, n_q)
        w = batch.w
        ws = w[:, None]
        # Per record and node: m (a member: an answer under the node), m·w, z, z², zn, zn².
        nodes_ = np.empty((n, 6 * n_k))
        inside = (x @ member > 0).astype(float)
        nodes_[:, 0:n_k] = inside
        nodes_[:, n_k : 2 * n_k] = inside * ws
        scopes, scope_index = np.unique(batch.scope, return_inverse=True)
        order = np.argsort(scope_index, kind="stable")
        bounds = np.searchsorted(scope_index[order], np.arange(len(scopes) + 1))
        for s, (a, b) in enumerate(itertools.pairwise(bounds)):
            rows = order[a:b]
            m = matrices.get(int(scopes[s]))
            if m is None:
                nodes_[rows, 2 * n_k : 6 * n_k] = 0.0
                continue
            both = ws[rows] * (y[rows] @ m[0] - x[rows] @ m[1])  # z, then zn: n × 2K
            nodes_[rows, 2 * n_k : 3 * n_k] = both[:, :n_k]
            nodes_[rows, 4 * n_k : 5 * n_k] = both[:, n_k:]
        nodes_[:, 3 * n_k : 4 * n_k] = nodes_[:, 2 * n_k : 3 * n_k] ** 2
        nodes_[:, 5 * n_k : 6 * n_k] = nodes_[:, 4 * n_k : 5 * n_k] ** 2
        # Per (scope, group), a PSU's part in the scope or records each their own PSU: sums
        # as products with a sparse segments × records matrix (one entry per record: 1, w
        # or w²), so Σ w·y and the like need no records × questions array of their own.
        segments, segment = np.unique(
            scope_index * len(batch.starts) + batch.group, return_inverse=True
        )
        parts = [_segment_sums(segment, len(segments), None, nodes_)]
        if n_s:  # single-question items: Y = w·s, X = w, w²·s, w² per valid answer
            ys, xs = (y, x) if all_singles else (y[:, singles], x[:, singles])
            parts += [  # ΣY, ΣX, Σw²s, Σw²
                _segment_sums(segment, len(segments), weight, v)
                for weight in (w, w * w)
                for v in (ys, xs)
            ]
        sums = np.hstack(parts)  # (scope, group) × width, the columns of ``_unit_figures``
        groups = segments % len(batch.starts)
        contributions = _unit_figures(sums, n_k, n_s, batch.own[groups])
        keys = np.stack([scopes[segments // len(batch.starts)], batch.stratum[groups]], axis=1)
        for (scope, code), total in zip(*_sum_by(keys, contributions), strict=True):
            add(unit, (int(scope), int(code)), total)
        # National: PSU totals across scopes, the sums of the PSU's (scope, group) parts.
        totals = np.zeros((len(batch.starts), width))
        np.add.at(totals, groups, sums)
        contributions = _national_figures(totals, n_k, n_s, batch.own)
        for (code,), total in zip(*_sum_by(batch.stratum[:, None], contributions), strict=True):
            add(nation, int(code), total)

    for batch in _batches(respondents, args, words, strata, by_psu=True):
        process(batch)

    out: list[NodeRow] = []
    items: list[ItemRow] = []
    for (scope, code), acc in unit.items():
        st, su = strata.keys[code]
        for k, node in enumerate(nodes):
            n, w_sum, z, zz, psu_zz, nz, nzz = (float(v) for v in acc[7 * k : 7 * k + 7])
            if n:
                out.append((scope, st, su, node, int(n), w_sum, z, zz, psu_zz, nz, nzz))
        base = 7 * n_k
        for i, q in enumerate(single_questions):
            figures = tuple(float(v) for v in acc[base + 7 * i : base + 7 * i + 7])
            if any(figures):
                items.append((scope, st, su, q, *figures))  # type: ignore[arg-type]
    for code, acc in nation.items():
        st, su = strata.keys[code]
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


def item_totals(read: Reading) -> list[tuple[int, int, float, float, int]]:
    """``scoring.sql.item_totals`` (same rows) from the records, streamed: per batch the
    masks as 0/1 matrices, Σ w·y, Σ w·x and Σ x per scope by one product each."""
    questions = sorted(set(read.question_ids))
    n_q = len(questions)
    respondents, args = _respondents(read)
    words = max(1, -(-n_q // BITS_PER_WORD))
    totals: dict[int, np.ndarray] = {}
    for batch in _batches(respondents, args, words, _Strata(), by_psu=False):
        x, y = _unpack(batch.bits, n_q)
        scopes, index = np.unique(batch.scope, return_inverse=True)
        # Σ per scope as sparse products (scopes × records, one entry per record).
        weighted = _segment_sums(index, len(scopes), batch.w, np.hstack([y, x]))
        sums = np.hstack([weighted, _segment_sums(index, len(scopes), None, x)])
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
