"""Recompute benchmark: the full recompute of a round against one hand-written SQL query.

Run from the project root, with PostgreSQL listening on loopback::

    uv run python bench/recompute.py                       # 1,000,000 responses
    uv run python bench/recompute.py --responses 100000 --explain

It DROPS and re-creates the database of ``--database-url`` (whose name must contain
"bench"), migrates it, loads the SIPAS questionnaire (``manage.py load_sipas``) and N demo
responses of the round ``sipas-2022`` (``manage.py generate_demo_data``, about 59 answers
each), puts them in villages (``psu``: about 31 respondents of a unit per village, in
response order; strata are the units, i.e. no ``stratum`` given) so that the recompute
takes the design-based variance path (PSU totals within strata), then VACUUM ANALYZE.
In this process it then times:

- the floor: ONE SQL query computing every item index per unit, 100 × Σ w·satisfied / Σ w
  per (unit, scored question), the satisfied sets inlined as literals;
- the recompute: ``scoring.services.recompute_round`` (start, compute, publish), which reads
  the compact response records (``feedback.records``, one narrow row per response, built by
  ``generate_demo_data`` in each chunk's transaction, or by the migration that created them
  when ``--reuse`` meets an older database; the villages' UPDATE reaches them through the
  records' triggers), not the answers: PostgreSQL groups them by PSU and ships each group
  packed in one ``bytea`` that numpy reads as arrays (``scoring/linear.py``), with its
  peak memory measured by ``tracemalloc`` (Python allocations, result rows included, during
  the call only; C-level buffers of libpq are not counted), and the time of each SQL
  statement it runs.

The floor runs before (it also warms the page cache) and after the recompute, and the
recompute runs twice (two runs); on each side the faster of the two counts. ``--reuse`` keeps
a database that already holds N responses. ``--explain`` then prints EXPLAIN (ANALYZE,
BUFFERS) of the recompute's slowest statements. The last line printed is
``ratio: <floor time / recompute time>``.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from typing import Any
from urllib.parse import urlsplit

import psycopg
from benchdb import (  # bench/ is on sys.path when run as a script
    bench_env,
    manage,
    recreate_database,
    setup_django,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_recompute"
ROUND = "sipas-2022"
VILLAGE_SIZE = 31  # respondents per village (PSU), as in SIPAS 2024's samples

# Villages of ~31 respondents within each unit, numbered in response order; no stratum (the
# unit is the stratum). Run once: a database already holding villages is left as it is.
VILLAGES_SQL = f"""
UPDATE feedback_response r SET psu = v.psu, stratum = ''
FROM (
    SELECT id, 'v' || ((ROW_NUMBER() OVER (PARTITION BY unit_id ORDER BY id) - 1)
                       / {VILLAGE_SIZE}) AS psu
    FROM feedback_response
) v
WHERE v.id = r.id
  AND NOT EXISTS (SELECT 1 FROM feedback_response WHERE psu <> '')
"""


def floor_sql(round_id: int, version_id: int) -> str:
    """The item indices per unit in one statement, satisfied sets inlined as literals."""
    from scoring.engine import _satisfied_rule  # the same reading of satisfied values
    from surveys.models import Indicator, Question

    groups: dict[tuple[str, tuple], list[int]] = {}
    rows = Question.objects.filter(
        version_id=version_id,
        excluded_from_indices=False,
        indicator__aggregation=Indicator.Aggregation.SHARE,
    ).values_list("id", "code", "type", "satisfied_values")
    for pk, code, kind, satisfied in rows:
        groups.setdefault(_satisfied_rule(code, kind, satisfied), []).append(pk)

    def literal(value: Any) -> str:
        return repr(float(value)) if isinstance(value, float) else "'" + str(value) + "'"

    whens = " ".join(
        f"WHEN a.question_id IN ({', '.join(map(str, ids))}) "
        f"AND a.{column} IN ({', '.join(map(literal, values))}) THEN r.weight"
        for (column, values), ids in groups.items()
        if values
    )
    questions = ", ".join(str(pk) for ids in groups.values() for pk in ids)
    return (
        f"SELECT r.unit_id, a.question_id, "
        f"100 * SUM(CASE {whens} ELSE 0 END) / SUM(r.weight) AS item_index, COUNT(*) "
        f"FROM feedback_answer a JOIN feedback_response r ON r.id = a.response_id "
        f"WHERE r.round_id = {round_id} AND r.version_id = {version_id} "
        f"AND a.question_id IN ({questions}) "
        f"GROUP BY r.unit_id, a.question_id"
    )


def held_responses(database_url: str) -> int | None:
    """Responses of the round already in the database, or None if there is none."""
    try:
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT count(*) FROM feedback_response r JOIN surveys_round o "
                "ON o.id = r.round_id WHERE o.code = %s",
                [ROUND],
            ).fetchone()
            return row[0] if row else None
    except psycopg.Error:
        return None


def time_floor(sql: str) -> tuple[float, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(sql)
        rows = cursor.fetchall()
        return time.perf_counter() - started, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--responses", type=int, default=1_000_000, metavar="N")
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE slow statements")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database if it already holds N responses (migrate it, load nothing)",
    )
    args = parser.parse_args()
    if not 1_000 <= args.responses <= 5_000_000:
        parser.error("N must be 1000..5000000")

    env = bench_env(args.database_url)
    name = urlsplit(args.database_url).path.lstrip("/")
    if args.reuse and held_responses(args.database_url) == args.responses:
        print(f"database {name}: reused with its {args.responses:,} responses")
        manage(env, "migrate", "--noinput", "-v", "0")
        load_seconds = float("nan")
    else:
        print(f"database {name}: drop, create, migrate, load_sipas, {args.responses:,} responses")
        recreate_database(args.database_url)
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "load_sipas")
        started = time.perf_counter()
        manage(env, "generate_demo_data", "--round", ROUND, "--responses", str(args.responses),
               "--seed", str(args.seed))  # fmt: skip
        load_seconds = time.perf_counter() - started
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(VILLAGES_SQL)
        villages = conn.execute(
            "SELECT count(DISTINCT (unit_id, psu)) FROM feedback_response"
        ).fetchone()[0]
        conn.execute("VACUUM ANALYZE feedback_response")
        conn.execute("VACUUM ANALYZE feedback_answer")
        answers = conn.execute("SELECT count(*) FROM feedback_answer").fetchone()[0]
        conn.execute("VACUUM ANALYZE feedback_responserecord")
        record_size = conn.execute(
            # every partition of the records (feedback.partitions) and the parent
            "SELECT pg_size_pretty((SELECT sum(pg_total_relation_size(relid)) "
            "FROM pg_partition_tree('feedback_responserecord'))), "
            "count(*) FILTER (WHERE stale) FROM feedback_responserecord"
        ).fetchone()
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        db_size = size.fetchone()[0]

    setup_django(env)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from scoring import services
    from scoring.models import Score
    from surveys.models import Round

    survey_round = Round.objects.get(code=ROUND)
    sql = floor_sql(survey_round.pk, survey_round.version_id)
    floor_before, floor_rows = time_floor(sql)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        run = services.recompute_round(round_code=ROUND)
        recompute_seconds = time.perf_counter() - started
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    floor_after, _rows = time_floor(sql)
    # A second recompute (a new run), so that both sides get the faster of two tries.
    started = time.perf_counter()
    services.recompute_round(round_code=ROUND)
    second_seconds = time.perf_counter() - started
    print(f"recompute_round: {recompute_seconds:.2f} s, then {second_seconds:.2f} s")
    recompute_seconds = min(recompute_seconds, second_seconds)
    floor_seconds = min(floor_before, floor_after)
    scores = Score.objects.filter(run=run).count()

    print(
        f"N={args.responses:,} responses, {answers:,} answers ({answers / args.responses:.1f} "
        f"each), {villages:,} villages (PSUs), database {db_size}; "
        + (
            f"loaded in {load_seconds:.1f} s ({args.responses / load_seconds:,.0f} responses/s)"
            if load_seconds == load_seconds  # not NaN: loaded in this run, not --reuse
            else "reused (--reuse)"
        )
    )
    print(f"compact records: {record_size[0]} ({record_size[1]} stale)")
    print(f"floor (1 query, {floor_rows} unit × item rows): {floor_before:.2f} s before, "
          f"{floor_after:.2f} s after the recompute")  # fmt: skip
    print(f"recompute_round: {recompute_seconds:.2f} s, run {run.pk} {run.status}, "
          f"{scores} scores, {len(queries)} queries")  # fmt: skip
    print(f"recompute peak memory: {peak / 2**20:.1f} MiB (tracemalloc, Python allocations "
          f"during the call); process max RSS {rss_before / 1024:.0f} → "
          f"{rss_after / 1024:.0f} MiB")  # fmt: skip
    slowest = sorted(queries.captured_queries, key=lambda q: -float(q["time"]))
    print("slowest statements of the recompute:")
    for query in slowest[:5]:
        print(f"  {float(query['time']):8.2f} s  {query['sql'][:110]}")
    if args.explain:
        for query in slowest[:2]:
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
                plan = "\n".join(f"    {line}" for (line,) in cursor.fetchall())
            print(f"\nEXPLAIN ANALYZE of {query['sql'][:80]}…\n{plan}")
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            plan = "\n".join(f"    {line}" for (line,) in cursor.fetchall())
        print(f"\nEXPLAIN ANALYZE of the floor\n{plan}")
    print(f"ratio: {floor_seconds / recompute_seconds:.3f}")


if __name__ == "__main__":
    main()
