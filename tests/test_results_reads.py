"""Reads of the results API at the speed of a bare view: leased throttle budgets, publications
known to each process (issue 14, item 2; docs/results-api.md, *Reads without round trips*).

Two gunicorn servers (separate processes) on the test database and the tests' Redis: together
they serve a client no more than its rate and then answer 429 with ``Retry-After``; a run
published by another process is served by both at once, without waiting for any timer.
In-process: a cached read with persistent connections asks the database nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from demo.responses import generate_demo_responses
from scoring.models import Run
from scoring.services import recompute_round
from tests.results_fixtures import MIN_N, RESPONSES, ROUND
from tests.support.faults import free_port
from tests.support.processes import worker_database_url
from tests.support.requirements import require

ROOT = Path(__file__).resolve().parent.parent
RATE = 40  # reads per anonymous client and minute in the servers under test
RANKINGS = "/api/v1/rankings/"
PARAMS = {"round": ROUND, "indicator": "SIPAS"}


def start_server(redis_url: str, index: int, log: Path) -> tuple[str, subprocess.Popen]:
    port = free_port(range(18100 + 50 * index, 18150 + 50 * index))  # one range per server
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": redis_url,
        "CONN_MAX_AGE": "60",  # persistent connections: publications are kept and watched
        "RESULTS_PUBLICATION_RECHECK_SECONDS": "3600",  # only a notification can refresh
        "RESULTS_ANON_RATE": f"{RATE}/minute",
        "NUM_PROXIES": "1",  # each test is a client of its own, by X-Forwarded-For
        "MIN_PUBLISH_N": str(MIN_N),
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "60"]
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    return f"http://127.0.0.1:{port}", process


@pytest.fixture
def two_servers(
    transactional_db: None, sipas: Any, settings: Any, tmp_path: Path
) -> Iterator[list[str]]:
    """Two gunicorn processes of one worker each, sharing the test database and Redis."""
    if connection.vendor != "postgresql" or not django_settings.REDIS_URL:
        require("two servers sharing a budget need PostgreSQL and Redis (REDIS_URL)")
    settings.MIN_PUBLISH_N = MIN_N
    generate_demo_responses(round_code=ROUND, responses=RESPONSES, seed=7)
    recompute_round(round_code=ROUND)
    logs = [tmp_path / f"server{index}.log" for index in range(2)]
    started = [start_server(django_settings.REDIS_URL, i, log) for i, log in enumerate(logs)]
    try:
        deadline = time.monotonic() + 240  # a loaded machine starts Django slowly
        for (url, process), log in zip(started, logs, strict=True):
            while True:
                assert process.poll() is None, log.read_text(errors="replace")
                try:
                    if requests.get(f"{url}/health/", timeout=30).status_code == 200:
                        break
                except requests.RequestException:  # not listening yet, or slow to start
                    pass
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.3)
        yield [url for url, _process in started]
    finally:
        for _url, process in started:
            process.terminate()
            process.wait(timeout=30)


def read(url: str, client: str) -> requests.Response:
    return requests.get(
        url + RANKINGS, params=PARAMS, headers={"X-Forwarded-For": client}, timeout=20
    )


@pytest.mark.postgres
def test_two_processes_share_one_budget_and_then_answer_429(two_servers: list[str]) -> None:
    client = "198.51.100.23"
    answers = [read(two_servers[i % 2], client) for i in range(2 * RATE)]
    served = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(served) + len(refused) == 2 * RATE
    # Never more than the rate; at most one lease (RATE // 16 = 2) a process left unspent.
    assert RATE - 2 * (RATE // 16 - 1) <= len(served) <= RATE
    assert all(a.status_code == 429 for a in answers[-RATE // 2 :])  # both servers refuse
    for answer in refused:
        assert answer.json()["code"] == "throttled"
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
    # Another client has a budget of its own, on either server.
    assert [read(url, "198.51.100.24").status_code for url in two_servers] == [200, 200]


@pytest.mark.postgres
def test_a_publication_is_served_by_every_process_at_once(
    two_servers: list[str], settings: Any
) -> None:
    before = [read(url, "198.51.100.31").json()["run"] for url in two_servers]
    again = [read(url, "198.51.100.31") for url in two_servers]  # known now, cached
    assert before == [a.json()["run"] for a in again]
    etags = [a.headers["ETag"] for a in again]
    generate_demo_responses(round_code=ROUND, responses=63, seed=8)
    later = recompute_round(round_code=ROUND)  # published, committed, in this process
    assert later.pk != before[0]
    for url, etag in zip(two_servers, etags, strict=True):
        fresh = requests.get(
            url + RANKINGS,
            params=PARAMS,
            headers={"X-Forwarded-For": "198.51.100.31", "If-None-Match": etag},
            timeout=20,
        )
        assert fresh.status_code == 200 and fresh.json()["run"] == later.pk
        assert fresh.headers["ETag"] != etag


@pytest.mark.postgres
def test_a_cached_read_on_a_persistent_connection_asks_the_database_nothing(
    transactional_db: None,
    client: Client,
    sipas: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.MIN_PUBLISH_N = MIN_N
    generate_demo_responses(round_code=ROUND, responses=RESPONSES, seed=7)
    first = recompute_round(round_code=ROUND)
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    assert client.get(RANKINGS, PARAMS).json()["run"] == first.pk  # built and cached
    with CaptureQueriesContext(connection) as queries:
        cached = client.get(RANKINGS, PARAMS)
    assert cached.status_code == 200 and cached.json()["run"] == first.pk
    assert len(queries) == 0
    generate_demo_responses(round_code=ROUND, responses=63, seed=8)
    later = recompute_round(round_code=ROUND)
    assert client.get(RANKINGS, PARAMS).json()["run"] == later.pk
    assert Run.objects.get(pk=first.pk).status == Run.Status.SUPERSEDED
