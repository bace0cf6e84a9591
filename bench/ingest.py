"""Ingest benchmark: responses/s through ``POST /api/v1/responses/`` against plain psycopg.

Run from the project root, with PostgreSQL listening on loopback::

    uv run python bench/ingest.py                      # 2000 responses, 8 clients, 8 workers
    uv run python bench/ingest.py -n 5000 --clients 16 --workers 2 \\
        --database-url postgres://postgres@127.0.0.1:5432/bench_ingest

It DROPS and re-creates the database of ``--database-url`` (whose name must contain
"bench"), migrates it and loads the SIPAS questionnaire (``manage.py load_sipas``). It then
starts gunicorn (production settings, loopback only, a throttle rate too high to interfere)
and ``--clients`` threads POST N responses of 40 answers each over keep-alive connections.
The floor is the same rows (one response + 40 answers, same columns) inserted by plain
psycopg, one transaction per response, with the same concurrency, into the same tables: as
many connections as clients, and by default as many gunicorn sync workers as clients (up to
8), so that both sides have the same number of transactions in flight.
The last line printed is ``ratio: <API rate / floor rate>``. ``--profile K`` then profiles K
requests in-process (cProfile) and prints where the time goes. Gunicorn is always stopped.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import http.client
import json
import pstats
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import benchdb  # bench/ is on sys.path when run as a script
import psycopg
from psycopg.types.json import Jsonb

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_ingest"
ROUND = "demo"
URL_PATH = "/api/v1/responses/"
RECEIPT_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
HTTP_TIMEOUT = 60


def answers_40() -> dict[str, Any]:
    """40 answers of one respondent: profile, screeners, the service grid and policy items."""
    answers: dict[str, Any] = {"A01": "nu", "A02": "35_49"}
    answers |= {f"Q8_{n}": n == 4 for n in range(1, 8)}  # did a procedure: S01–S19 shown
    answers |= {f"S{n:02d}": 1 + n % 5 for n in range(1, 20)}
    answers |= {f"P{n:02d}": 1 + n % 5 for n in range(1, 15) if n not in (6, 7)}  # P06/P07 hidden
    assert len(answers) == 40
    return answers


# --- Setup ------------------------------------------------------------------------------------


def server_env(database_url: str) -> dict[str, str]:
    return benchdb.bench_env(database_url) | {
        "CONN_MAX_AGE": "60",  # persistent connections, as any production deployment
        "RESPONSE_SUBMIT_RATE": "1000000/s",  # the throttle runs but never refuses
    }


def run_concurrently(items: list[Any], clients: int, work: Callable[[list[Any]], int]) -> float:
    """Split ``items`` over ``clients`` threads released together; seconds until all finish."""
    shares = [items[i::clients] for i in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def worker(share: list[Any]) -> int:
        barrier.wait()
        return work(share)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [pool.submit(worker, share) for share in shares]
        barrier.wait()
        started = time.perf_counter()
        failures = sum(f.result() for f in futures)
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{failures} of {len(items)} requests failed")
    return elapsed


def post_all(port: int) -> Callable[[list[bytes]], int]:
    def work(bodies: list[bytes]) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
        headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
        failures = 0
        for body in bodies:
            conn.request("POST", URL_PATH, body, headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 201:
                failures += 1
                print(f"  {response.status}: {payload[:300]!r}", file=sys.stderr)
        conn.close()
        return failures

    return work


def api_bodies(count: int, units: list[str]) -> list[bytes]:
    answers = answers_40()
    return [
        json.dumps(
            {
                "round": ROUND,
                "unit": units[i % len(units)],
                "client_id": str(uuid.uuid4()),
                "answers": answers,
            }
        ).encode()
        for i in range(count)
    ]


# --- Floor ------------------------------------------------------------------------------------


def floor_rows(database_url: str, count: int, units: list[str]) -> list[tuple[tuple, list]]:
    """The same response and answer rows the API stores, ready for INSERT."""
    with psycopg.connect(database_url) as conn:
        round_id, version_id = conn.execute(
            "SELECT id, version_id FROM surveys_round WHERE code = %s", [ROUND]
        ).fetchone()
        unit_ids = dict(conn.execute("SELECT code, id FROM surveys_unit").fetchall())
        question_ids = dict(
            conn.execute(
                "SELECT code, id FROM surveys_question WHERE version_id = %s", [version_id]
            ).fetchall()
        )
    answers = answers_40()
    rows = []
    for i in range(count):
        unit = units[i % len(units)]
        raw = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(10))
        canonical = json.dumps(
            {"round": ROUND, "unit": unit, "answers": answers},
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        response = (
            f"{raw[:5]}-{raw[5:]}",
            round_id,
            version_id,
            unit_ids[unit],
            uuid.uuid4(),
            digest,
        )
        answer_rows = [
            (
                question_ids[code],
                Jsonb(value),
                float(value) if not isinstance(value, str) else None,
                value if isinstance(value, str) else "",
            )
            for code, value in answers.items()
        ]
        rows.append((response, answer_rows))
    return rows


INSERT_RESPONSE = """
INSERT INTO feedback_response (receipt, round_id, version_id, unit_id, agency_id, channel,
    client_id, request_digest, invitation_id, submitted_at, weight, import_batch_id)
VALUES (%s, %s, %s, %s, NULL, 'api', %s, %s, NULL, now(), 1.0, NULL)
RETURNING id
"""
INSERT_ANSWER = """
INSERT INTO feedback_answer (response_id, round_id, question_id, value, number, code)
VALUES (%s, %s, %s, %s, %s, %s)
"""


def insert_all(database_url: str) -> Callable[[list[tuple[tuple, list]]], int]:
    def work(rows: list[tuple[tuple, list]]) -> int:
        with psycopg.connect(database_url) as conn, conn.cursor() as cur:
            for response, answer_rows in rows:
                with conn.transaction():
                    (response_id,) = cur.execute(INSERT_RESPONSE, response).fetchone()
                    cur.executemany(
                        INSERT_ANSWER, [(response_id, response[1], *a) for a in answer_rows]
                    )
        return 0

    return work


def stored(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        responses = conn.execute("SELECT count(*) FROM feedback_response").fetchone()[0]
        answers = conn.execute("SELECT count(*) FROM feedback_answer").fetchone()[0]
    return responses, answers


# --- Profile ----------------------------------------------------------------------------------


def profile_requests(env: dict[str, str], bodies: list[bytes]) -> None:
    """cProfile of the requests through Django in this process, then one request's queries."""
    benchdb.setup_django(env)
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(SERVER_NAME="127.0.0.1")
    warm, *profiled, last = bodies

    def post(body: bytes) -> None:
        response = client.post(URL_PATH, body, content_type="application/json")
        assert response.status_code == 201, response.content

    post(warm)
    profiler = cProfile.Profile()
    profiler.enable()
    for body in profiled:
        post(body)
    profiler.disable()
    print(f"\nprofile of {len(profiled)} requests in-process (by cumulative time):")
    pstats.Stats(profiler).strip_dirs().sort_stats("cumulative").print_stats(40)
    with CaptureQueriesContext(connection) as queries:
        post(last)
    print(f"queries of one request: {len(queries)}")
    for query in queries:
        print(f"  {query['sql'][:150]}")


# --- Main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("-n", "--responses", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--workers",
        type=int,
        choices=range(1, 9),
        help="gunicorn workers (default: --clients, ≤ 8)",
    )
    parser.add_argument("--profile", type=int, default=0, metavar="K")
    args = parser.parse_args()
    if not 1 <= args.responses <= 100_000 or not 1 <= args.clients <= 64:
        parser.error("N must be 1..100000 and --clients 1..64")
    if args.workers is None:
        args.workers = min(args.clients, 8)

    env = server_env(args.database_url)
    print(f"database {urlsplit(args.database_url).path.lstrip('/')}: drop, create, migrate, load")
    benchdb.recreate_database(args.database_url)
    benchdb.manage(env, "migrate", "--noinput", "-v", "0")
    benchdb.manage(env, "load_sipas")
    with psycopg.connect(args.database_url) as conn:
        units = [
            code
            for (code,) in conn.execute(
                "SELECT u.code FROM surveys_unit u JOIN surveys_round_units ru ON ru.unit_id = u.id"
                " JOIN surveys_round r ON r.id = ru.round_id WHERE r.code = %s ORDER BY u.code",
                [ROUND],
            )
        ]

    port = benchdb.free_port()
    server = benchdb.start_gunicorn(env, port, args.workers)
    try:
        warmup = api_bodies(4 * args.workers, units)
        run_concurrently(warmup, min(args.clients, len(warmup)), post_all(port))
        before = stored(args.database_url)
        bodies = api_bodies(args.responses, units)
        api_seconds = run_concurrently(bodies, args.clients, post_all(port))
    finally:
        benchdb.stop(server)
    after = stored(args.database_url)
    assert after[0] - before[0] == args.responses, (before, after)
    assert after[1] - before[1] == 40 * args.responses, (before, after)

    rows = floor_rows(args.database_url, args.responses, units)
    floor_seconds = run_concurrently(rows, args.clients, insert_all(args.database_url))
    final = stored(args.database_url)
    assert final[0] - after[0] == args.responses and final[1] - after[1] == 40 * args.responses

    api_rate = args.responses / api_seconds
    floor_rate = args.responses / floor_seconds
    print(
        f"N={args.responses} responses x 40 answers, {args.clients} clients, "
        f"{args.workers} gunicorn workers (sync), CONN_MAX_AGE=60, PostgreSQL on loopback"
    )
    print(f"API   (gunicorn):  {api_rate:8.1f} responses/s ({api_seconds:.2f} s)")
    print(f"floor (psycopg):   {floor_rate:8.1f} responses/s ({floor_seconds:.2f} s)")
    if args.profile:
        profile_requests(env, api_bodies(args.profile + 2, units))
    print(f"ratio: {api_rate / floor_rate:.3f}")


if __name__ == "__main__":
    main()
