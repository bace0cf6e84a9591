"""Read API benchmark: requests/s and p99 of ``scores/`` and ``rankings/`` against a bare view,
with the cache and throttle in Redis (production) and in local memory.

Run from the project root, with PostgreSQL and Redis listening on loopback::

    uv run python bench/api.py                 # 6,300 responses, 4 workers, 16 connections
    uv run python bench/api.py --redis-url redis://127.0.0.1:6379/5 --rounds 3
    uv run python bench/api.py --workers 2 --connections 32 --duration 15 --profile 300

It needs wrk (``/usr/bin/wrk``): when missing, it installs the Debian package ``wrk``
(``apt-get install -y wrk``) when run as root, and otherwise names what to install.

It DROPS and re-creates the database of ``--database-url`` (whose name must contain
"bench"), migrates it, loads the units and the SIPAS questionnaire (``manage.py load_sipas``),
adds ``--responses`` demo responses to ``sipas-2022`` (63 provinces) and computes and
publishes its scores (``manage.py recompute_scores``). It then starts two gunicorn servers
(``config.settings.production`` plus a bench-only URLconf with a bare Django view returning a
small JSON document, ``bench/api_settings.py``; sync workers; persistent database
connections; throttle rates too high to refuse anything): one with ``REDIS_URL`` (the cache
and the throttle counters in Redis, ``--redis-url``, default ``$REDIS_URL`` or
``redis://127.0.0.1:6379/0``; its keys are prefixed ``bench-api``), one without (both in each
worker's local memory). It measures each URL of each server with wrk (``--connections``
connections, 2 threads) in turns, ``--rounds`` times: the URLs of one turn run back to back,
so they share the machine's load of the moment (other processes on a shared machine), and
the figures reported are the medians over the turns, each ratio the median of the turns'
ratios (slower of ``scores/`` and ``rankings/`` over the same server's bare view). With Redis
it also measures ``rankings/`` read by a new client each request (a random
``X-Forwarded-For``, the server trusting one proxy): every request then claims its
throttle budget from Redis, the worst case of the leases (docs/results-api.md); printed, not
in the ratio. The last line printed is ``ratio: <the Redis server's ratio>``. ``--profile K``
then profiles K requests of each endpoint in-process (cProfile, Redis configuration).
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from urllib.parse import urlsplit

import benchdb  # bench/ is on sys.path when run as a script

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_api"
ROUND = "sipas-2022"
URLS = {
    "bare view": "/bench/bare/",
    "scores": f"/api/v1/scores/?round={ROUND}&indicator=SIPAS&page_size=100",
    "rankings": f"/api/v1/rankings/?round={ROUND}&indicator=SIPAS",
}
WRK = "/usr/bin/wrk"
DEFAULT_REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
# Each request from a new client: a random address in X-Forwarded-For (the server trusts one
# proxy, NUM_PROXIES=1), so each is the first of its client in the throttle window.
NEW_CLIENT_LUA = """
math.randomseed(os.time())
request = function()
  local address = math.random(1, 254) .. "." .. math.random(0, 255) .. "." ..
    math.random(0, 255) .. "." .. math.random(1, 254)
  return wrk.format(nil, nil, {["X-Forwarded-For"] = address})
end
"""


def ensure_wrk() -> None:
    """wrk at /usr/bin/wrk, installed from the Debian package ``wrk`` when run as root."""
    if os.access(WRK, os.X_OK):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: apt-get install -y wrk")
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        if subprocess.run(install, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], check=True)
            subprocess.run(install, check=True)
    if not os.access(WRK, os.X_OK):
        sys.exit(
            f"wrk is needed at {WRK}: install the Debian/Ubuntu package wrk "
            "(sudo apt-get install wrk), or build it from https://github.com/wg/wrk"
        )


def server_env(database_url: str, redis_url: str) -> dict[str, str]:
    env = benchdb.bench_env(database_url) | {
        "DJANGO_SETTINGS_MODULE": "bench.api_settings",
        "CONN_MAX_AGE": "60",  # persistent connections, as any production deployment
        "RESULTS_ANON_RATE": "1000000000/minute",  # the throttle runs but never refuses
        "NUM_PROXIES": "1",  # X-Forwarded-For names the client (the new-client run)
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


def wrk(
    port: int, path: str, *, connections: int, seconds: int, script: str = ""
) -> tuple[float, float, int]:
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
        *(["--script", script] if script else []),
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
    benchdb.setup_django(env)
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


def measure(
    servers: dict[str, int], args: argparse.Namespace, script: str
) -> tuple[dict[tuple[str, str], list[tuple[float, float]]], dict[str, list[float]]]:
    """Turns over every URL of every server; the runs of each (server, URL) and the ratios."""
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    ratios: dict[str, list[float]] = {cache: [] for cache in servers}
    for turn in range(args.rounds):
        for cache, port in servers.items():
            urls = [(name, path, "") for name, path in URLS.items()]
            if cache == "Redis":
                urls.append(("rankings, new client each request", URLS["rankings"], script))
            for name, path, lua in urls:
                rate, p99, errors = wrk(
                    port, path, connections=args.connections, seconds=args.duration, script=lua
                )
                print(f"  turn {turn + 1} {cache:12} {name:9}: {rate:8.1f} req/s, p99 {p99:.1f} ms")
                if errors:
                    raise RuntimeError(f"{cache} {name}: {errors} responses were not 2xx")
                runs.setdefault((cache, name), []).append((rate, p99))
            rate_of = {name: runs[cache, name][-1][0] for name in URLS}
            ratios[cache].append(min(rate_of["scores"], rate_of["rankings"]) / rate_of["bare view"])
            print(f"  turn {turn + 1} {cache:12} ratio    : {ratios[cache][-1]:.3f}")
    return runs, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--redis-url", default=DEFAULT_REDIS_URL, help="Redis of the production run"
    )
    parser.add_argument("--responses", type=int, default=63 * 100)
    parser.add_argument("--workers", type=int, default=4, choices=range(1, 9))
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=4, help="seconds of each wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="turns over the URLs")
    parser.add_argument("--profile", type=int, default=0, metavar="K")
    args = parser.parse_args()
    ensure_wrk()

    envs = {
        "Redis": server_env(args.database_url, args.redis_url),
        "local memory": server_env(args.database_url, ""),
    }
    print(f"database {urlsplit(args.database_url).path.lstrip('/')}: drop, create, migrate, load")
    benchdb.recreate_database(args.database_url)
    env = envs["local memory"]
    benchdb.manage(env, "migrate", "--noinput", "-v", "0")
    benchdb.manage(env, "load_sipas")
    benchdb.manage(env, "generate_demo_data", "--round", ROUND, "--responses", str(args.responses))
    benchdb.manage(env, "recompute_scores", "--round", ROUND)

    started: dict[str, subprocess.Popen] = {}
    servers: dict[str, int] = {}
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(NEW_CLIENT_LUA)
        script.flush()
        try:
            for cache, cache_env in envs.items():
                port = benchdb.free_port()
                started[cache] = benchdb.start_gunicorn(
                    cache_env,
                    port,
                    args.workers,
                    ready_path=URLS["bare view"],
                    settings_module="bench.api_settings",
                    ready_seconds=300,
                )
                servers[cache] = port
                for name, path in URLS.items():
                    size = check(port, path)
                    print(f"{cache}: {name}: {path} ({size:,} bytes)")
                    wrk(port, path, connections=args.connections, seconds=2)  # warm the workers
            runs, ratios = measure(servers, args, script.name)
        finally:
            for server in started.values():
                benchdb.stop(server)

    print(
        f"{args.responses:,} responses in {ROUND} (63 provinces), published; gunicorn "
        f"{args.workers} sync workers, config.settings.production, CONN_MAX_AGE=60; wrk 2 "
        f"threads, {args.connections} connections, {args.duration} s per run, medians of "
        f"{args.rounds} turns"
    )
    for (cache, name), measured in runs.items():
        rate = statistics.median(r for r, _p99 in measured)
        p99 = statistics.median(p for _r, p in measured)
        print(f"{cache:12} {name:34} {rate:9.1f} req/s   p99 {p99:7.1f} ms")
    for cache, turns in ratios.items():
        print(f"{cache:12} ratio (slower endpoint / bare view): {statistics.median(turns):.3f}")
    if args.profile:
        profile_requests(envs["Redis"], args.profile)
    print(f"ratio: {statistics.median(ratios['Redis']):.3f}")


if __name__ == "__main__":
    main()
