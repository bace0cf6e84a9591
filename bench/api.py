"""Read API benchmark: requests/s and p99 of ``scores/`` and ``rankings/`` against a bare view.

Run from the project root, with PostgreSQL listening on loopback and wrk installed::

    uv run python bench/api.py                 # 6,300 responses, 4 workers, 16 connections
    uv run python bench/api.py --workers 2 --connections 32 --duration 15 --profile 300

It DROPS and re-creates the database of ``--database-url`` (whose name must contain
"bench"), migrates it, loads the units and the SIPAS questionnaire (``manage.py load_sipas``),
adds ``--responses`` demo responses to ``sipas-2022`` (63 provinces) and computes and
publishes its scores (``manage.py recompute_scores``). It then starts gunicorn (production
settings plus a bench-only URLconf with a bare Django view returning a small JSON document,
``bench/api_settings.py``; sync workers; throttle rates too high to refuse anything) and
measures each URL with wrk (``--connections`` connections, 2 threads) in turns, ``--rounds``
times: the URLs of one turn run back to back, so they share the machine's load of the moment
(other processes on a shared machine), and the figures reported are the medians over the
turns, the ratio the median of the turns' ratios. The cache is each worker's local memory, or
Redis with ``--redis-url``. The last line printed is ``ratio: <slower endpoint's requests/s /
bare view's requests/s>``. ``--profile K`` then profiles K requests of each endpoint
in-process (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import os
import pstats
import re
import secrets
import statistics
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from benchdb import (  # bench/ is on sys.path when run as a script
    free_port,
    manage,
    recreate_database,
    start_gunicorn,
    stop,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_api"
ROUND = "sipas-2022"
URLS = {
    "bare view": "/bench/bare/",
    "scores": f"/api/v1/scores/?round={ROUND}&indicator=SIPAS&page_size=100",
    "rankings": f"/api/v1/rankings/?round={ROUND}&indicator=SIPAS",
}
WRK = "/usr/bin/wrk"


def server_env(database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env |= {
        "DJANGO_SETTINGS_MODULE": "bench.api_settings",
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "DEBUG": "false",
        "CONN_MAX_AGE": "60",  # persistent connections, as any production deployment
        "RESULTS_ANON_RATE": "1000000000/minute",  # the throttle runs but never refuses
        "LOG_LEVEL": "WARNING",
    }
    if redis_url:
        env |= {"REDIS_URL": redis_url, "CACHE_KEY_PREFIX": "bench-api"}
    return env


def check(port: int, path: str) -> int:
    """The URL answers 200 with JSON; returns the body size."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200 or not body.startswith(b"{"):
        raise RuntimeError(f"{path}: {response.status} {body[:300]!r}")
    return len(body)


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(port: int, path: str, *, connections: int, seconds: int) -> tuple[float, float, int]:
    """(requests/s, p99 in ms, non-2xx responses) of one wrk run."""
    command = [
        WRK,
        "--threads",
        "2",
        "--connections",
        str(connections),
        "--duration",
        f"{seconds}s",
        "--latency",
        f"http://127.0.0.1:{port}{path}",
    ]
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    value, unit = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return rate, float(value) * UNITS[unit], int(errors.group(1)) if errors else 0


def profile_requests(env: dict[str, str], count: int) -> None:
    """cProfile of ``count`` requests of each endpoint through Django in this process."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(SERVER_NAME="127.0.0.1")
    for name in ("scores", "rankings"):
        assert client.get(URLS[name]).status_code == 200
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(count):
            client.get(URLS[name])
        profiler.disable()
        print(f"\nprofile of {count} {name} requests in-process (by cumulative time):")
        pstats.Stats(profiler).strip_dirs().sort_stats("cumulative").print_stats(25)
        with CaptureQueriesContext(connection) as queries:
            client.get(URLS[name])
        print(f"queries of one cached {name} request: {len(queries)}")
        for query in queries:
            print(f"  {query['sql'][:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default="", help="cache in Redis instead of local memory")
    parser.add_argument("--responses", type=int, default=63 * 100)
    parser.add_argument("--workers", type=int, default=4, choices=range(1, 9))
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=4, help="seconds of each wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="turns over the URLs")
    parser.add_argument("--profile", type=int, default=0, metavar="K")
    args = parser.parse_args()
    if not os.access(WRK, os.X_OK):
        sys.exit(f"wrk is needed at {WRK}")

    env = server_env(args.database_url, args.redis_url)
    print(f"database {urlsplit(args.database_url).path.lstrip('/')}: drop, create, migrate, load")
    recreate_database(args.database_url)
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "load_sipas")
    manage(env, "generate_demo_data", "--round", ROUND, "--responses", str(args.responses))
    manage(env, "recompute_scores", "--round", ROUND)

    port = free_port()
    server = start_gunicorn(
        env, port, args.workers, ready_path=URLS["bare view"], settings_module="bench.api_settings"
    )
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in URLS}
    ratios: list[float] = []
    try:
        for name, path in URLS.items():
            size = check(port, path)
            print(f"{name}: {path} ({size:,} bytes)")
            wrk(port, path, connections=args.connections, seconds=2)  # warm every worker
        for turn in range(args.rounds):
            for name, path in URLS.items():
                rate, p99, errors = wrk(
                    port, path, connections=args.connections, seconds=args.duration
                )
                print(f"  turn {turn + 1} {name:9}: {rate:8.1f} req/s, p99 {p99:.1f} ms")
                if errors:
                    raise RuntimeError(f"{name}: {errors} responses were not 2xx")
                results[name].append((rate, p99))
            turn_rates = {name: runs[-1][0] for name, runs in results.items()}
            ratios.append(
                min(turn_rates["scores"], turn_rates["rankings"]) / turn_rates["bare view"]
            )
            print(f"  turn {turn + 1} ratio    : {ratios[-1]:.3f}")
    finally:
        stop(server)

    cache = "Redis" if args.redis_url else "local memory"
    print(
        f"{args.responses:,} responses in {ROUND} (63 provinces), published; gunicorn "
        f"{args.workers} sync workers, CONN_MAX_AGE=60, cache in {cache}; wrk 2 threads, "
        f"{args.connections} connections, {args.duration} s per run, medians of {args.rounds} "
        "turns"
    )
    for name, runs in results.items():
        rate = statistics.median(r for r, _p99 in runs)
        p99 = statistics.median(p for _r, p in runs)
        print(f"{name:10} {rate:9.1f} req/s   p99 {p99:7.1f} ms")
    if args.profile:
        profile_requests(env, args.profile)
    print(f"ratio: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
