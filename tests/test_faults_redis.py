"""Redis killed under a running service: citizens are still served, nothing is lost.

A Redis of the tests' own (a port in 6390-6399) and gunicorn with ``REDIS_URL`` pointing at
it, on the test database. The Redis is killed (SIGKILL) or frozen (SIGSTOP), and then:
responses through the API and the web form, petitions on the web and through the API are
stored; results are read; ``/health/`` answers 503 naming the cache and the broker; the
submission limit still holds (per process); the outage is logged once. Restarted, Redis
holds the counters and the cache again.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from django.db import connection

from feedback.models import Petition, Response
from results.cache import CACHE_PREFIX
from scoring.services import recompute_round
from surveys.models import Question
from tests.support.faults import OwnRedis, free_port
from tests.support.petitions import make_category, make_unit
from tests.support.processes import worker_database_url
from tests.support.requirements import require
from tests.support.responses import payload, valid_answers

pytestmark = [pytest.mark.fault, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parent.parent
PORTS = range(6390, 6400)
SUBMIT_RATE = 4  # responses per client and hour in the server under test
UNREACHABLE = "is unreachable"
clients = itertools.count(1)


@pytest.fixture(scope="module")
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis(free_port(PORTS))
    server.start()
    yield server
    server.kill()


class Service:
    """gunicorn serving the project on loopback, its log in a file."""

    def __init__(self, url: str, process: subprocess.Popen, log: Path) -> None:
        self.url, self.process, self.log = url, process, log

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=20, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.post(self.url + path, timeout=20, **kwargs)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def service(
    own_redis: OwnRedis, django_db_setup: None, django_db_blocker: Any, tmp_path_factory: Any
) -> Iterator[Service]:
    # A module fixture is set up before the per-test check of the marker: check here too.
    if connection.vendor != "postgresql":
        require("the Redis fault tests serve the test database from gunicorn: PostgreSQL")
    with django_db_blocker.unblock():
        database_url = worker_database_url()
    port = free_port(range(18000, 18100))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_fault",
        "DATABASE_URL": database_url,
        "REDIS_URL": own_redis.url,
        "ALLOWED_HOSTS": "127.0.0.1",
        "NUM_PROXIES": "1",  # each test is a client of its own, by X-Forwarded-For
        "RESPONSE_SUBMIT_RATE": f"{SUBMIT_RATE}/hour",
        "LOG_LEVEL": "WARNING",
    }
    log = tmp_path_factory.mktemp("gunicorn") / "server.log"
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "60"]
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    server = Service(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, server.log_text()
        try:
            if server.get("/health/").status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.2)
    else:
        raise RuntimeError("gunicorn did not answer within 60 s:\n" + server.log_text())
    yield server
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture
def world(transactional_db: None, sipas: Any, settings: Any) -> dict[str, Any]:
    """The demo round with a published run, a unit and a category for petitions."""
    from demo.responses import generate_demo_responses

    settings.MIN_PUBLISH_N = 1
    generate_demo_responses(round_code="demo", responses=40, seed=3)
    run = recompute_round(round_code="demo")
    make_unit("T01", "Tỉnh Thử")
    make_category("road", days=10)
    return {"run": run}


@pytest.fixture
def client_address() -> str:
    """A client of this test's own (the server trusts one proxy: the last hop)."""
    number = next(clients)
    return f"198.51.{100 + number // 250}.{number % 250 + 1}"


@pytest.fixture
def redis_down(own_redis: OwnRedis, service: Service, world: Any) -> Iterator[OwnRedis]:
    """Redis killed for the test, restarted afterwards (and seen again by the service)."""
    assert service.get("/health/").status_code == 200  # the service uses Redis before
    own_redis.kill()
    yield own_redis
    own_redis.kill()
    own_redis.start()
    assert service.get("/health/").status_code == 200


def forwarded(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def csrf_token(page: requests.Response) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def form_values(answers: dict[str, Any], codes: list[str]) -> dict[str, Any]:
    """Answers as a browser posts them."""
    data: dict[str, Any] = {}
    for code in codes:
        value = answers.get(code)
        if isinstance(value, bool):
            data[code] = "true" if value else "false"
        elif isinstance(value, list):
            data[code] = value
        elif value is not None:
            data[code] = str(value)
    return data


def browser_at(address: str) -> requests.Session:
    """A browser whose requests come from ``address`` (as the proxy in front says)."""
    browser = requests.Session()
    browser.headers.update(forwarded(address))
    return browser


def send_form(browser: requests.Session, url: str, data: dict[str, Any], **options: Any) -> Any:
    """Open the form at ``url``, then send ``data`` with the form's CSRF token."""
    form = browser.get(url, timeout=20)
    assert form.status_code == 200
    token = {"csrfmiddlewaretoken": csrf_token(form)}
    return browser.post(url, data=data | token, timeout=20, **options)


def fill_web_form(service: Service, address: str) -> requests.Response:
    """Start the demo round's form, answer every section; the last answer (the receipt)."""
    browser = browser_at(address)
    draft = send_form(browser, f"{service.url}/rounds/demo/", {"unit": "19"}, allow_redirects=False)
    assert draft.status_code == 302, draft.text[:500]
    path = service.url + draft.headers["Location"]
    answers = valid_answers()
    for _section in range(20):
        page = browser.get(path, timeout=20)
        assert page.status_code == 200, page.text[:500]
        section = re.search(r'name="section" value="([^"]+)"', page.text).group(1)
        codes = list(Question.objects.filter(section__code=section).values_list("code", flat=True))
        data = {"section": section, "action": "next", "csrfmiddlewaretoken": csrf_token(page)}
        reply = browser.post(path, data=data | form_values(answers, codes), timeout=20)
        assert reply.status_code == 200, reply.text[:500]
        if reply.url != path:
            return reply
    raise AssertionError("the web form never ended")


def petition_fields() -> dict[str, str]:
    return {"category": "road", "unit": "T01", "description": "Đèn đường hỏng ở ngõ 12."}


class TestRedisKilled:
    def test_a_response_through_the_api_is_stored(
        self, service: Service, redis_down: OwnRedis, client_address: str
    ) -> None:
        body = payload()
        answer = service.post("/api/v1/responses/", json=body, headers=forwarded(client_address))
        assert answer.status_code == 201, answer.text
        stored = Response.objects.get(client_id=body["client_id"])
        assert stored.receipt == answer.json()["receipt"]

    def test_the_web_form_takes_a_response_to_its_receipt(
        self, service: Service, redis_down: OwnRedis, client_address: str
    ) -> None:
        thanks = fill_web_form(service, client_address)
        receipt = thanks.url.rstrip("/").rsplit("/", 1)[-1]
        assert receipt in thanks.text
        assert Response.objects.filter(receipt=receipt, channel="web").exists()

    def test_petitions_are_filed_on_the_web_and_through_the_api(
        self, service: Service, redis_down: OwnRedis, client_address: str
    ) -> None:
        client_id = str(uuid.uuid4())
        through_api = service.post(
            "/api/v1/petitions/",
            json=petition_fields() | {"client_id": client_id},
            headers=forwarded(client_address),
        )
        assert through_api.status_code == 201, through_api.text
        browser = browser_at(client_address)
        filed = send_form(browser, f"{service.url}/petitions/new/", petition_fields())
        assert filed.status_code == 200 and "/petitions/track/" in filed.url, filed.text[:500]
        web_code = filed.url.split("/petitions/track/")[1].split("/")[0]
        assert Petition.objects.filter(client_id=client_id, channel="api").exists()
        assert Petition.objects.filter(tracking_code=web_code, channel="web").exists()

    def test_results_are_read(
        self, service: Service, redis_down: OwnRedis, client_address: str
    ) -> None:
        headers = forwarded(client_address)
        params = {"round": "demo", "indicator": "SIPAS"}
        for attempt in range(2):  # built, then (no cache now) built again
            scores = service.get("/api/v1/scores/", params=params, headers=headers)
            assert scores.status_code == 200, (attempt, scores.text[:500])
            assert scores.json()["results"], "the published run's scores"
        for path in ("/api/v1/rankings/", "/api/v1/units/", "/api/v1/rounds/"):
            assert service.get(path, params=params, headers=headers).status_code == 200, path
        assert service.get("/").status_code == 200

    def test_health_answers_503_naming_the_cache_and_the_broker(
        self, service: Service, redis_down: OwnRedis
    ) -> None:
        began = time.monotonic()
        health = service.get("/health/")
        assert health.status_code == 503
        body = health.json()
        assert body["down"] == ["broker", "cache"]
        assert body["checks"]["database"] == "ok"
        assert "ConnectionError" in body["checks"]["cache"]
        assert time.monotonic() - began < 10

    def test_the_limit_holds_per_process_and_the_outage_is_logged_once(
        self, service: Service, redis_down: OwnRedis, client_address: str
    ) -> None:
        log_before = len(service.log_text())
        statuses = []
        for _attempt in range(SUBMIT_RATE + 2):
            answer = service.post(
                "/api/v1/responses/", json=payload(), headers=forwarded(client_address)
            )
            statuses.append(answer.status_code)
        assert statuses == [201] * SUBMIT_RATE + [429, 429]
        other = service.post("/api/v1/responses/", json=payload(), headers=forwarded("192.0.2.7"))
        assert other.status_code == 201
        assert service.log_text()[log_before:].count(UNREACHABLE) == 1


class TestRedisBack:
    def test_after_a_restart_counters_and_documents_are_in_redis_again(
        self, service: Service, redis_down: OwnRedis, client_address: str
    ) -> None:
        headers = forwarded(client_address)

        def submit() -> int:
            return service.post("/api/v1/responses/", json=payload(), headers=headers).status_code

        assert submit() == 201
        redis_down.start()
        assert service.get("/health/").status_code == 200
        assert "answers again" in service.log_text()
        assert submit() == 201
        params = {"round": "demo", "indicator": "SIPAS"}
        assert service.get("/api/v1/scores/", params=params, headers=headers).status_code == 200
        keys = [key.decode() for key in redis_down.client().keys("*")]
        assert any("throttle_response-submit" in key for key in keys), keys
        assert any(CACHE_PREFIX in key for key in keys), keys


class TestRedisHung:
    def test_a_frozen_redis_holds_no_request_for_long(
        self, service: Service, redis_down: OwnRedis, client_address: str
    ) -> None:
        redis_down.start()
        assert service.get("/health/").status_code == 200
        redis_down.freeze()
        headers = forwarded(client_address)
        durations = []
        for _attempt in range(3):
            began = time.monotonic()
            answer = service.post("/api/v1/responses/", json=payload(), headers=headers)
            durations.append(time.monotonic() - began)
            assert answer.status_code == 201, answer.text
        # One socket timeout (REDIS_TIMEOUT_SECONDS) at most, then Redis is left alone.
        assert max(durations) < 3, durations
        assert sum(durations) < 4, durations


class TestResilientCache:
    """The cache backend itself, against a port where no Redis listens."""

    @pytest.fixture
    def dead_cache(self, monkeypatch: pytest.MonkeyPatch) -> Any:
        """Makes backends of one unreachable Redis, as Django does for each thread."""
        from config import cache as cache_module

        monkeypatch.setattr(cache_module, "RETRY_SECONDS", 0.0)  # try Redis at every call
        monkeypatch.setattr(cache_module, "_outages", {})  # no outage seen by this process yet
        port = free_port(PORTS)  # bound by nobody: refused at once
        options = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}

        def backend() -> Any:
            location = f"redis://127.0.0.1:{port}/0"
            return cache_module.ResilientRedisCache(location, {"OPTIONS": options})

        return backend

    def test_operations_degrade_to_a_miss_and_the_outage_is_logged_once(
        self, dead_cache: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level("WARNING", logger="config.cache")
        for _request in range(5):
            cache = dead_cache()  # a backend per thread (runserver: per request)
            assert cache.get("k", "default") == "default"
            cache.set("k", "v")
            assert cache.add("k", "v") is False
            assert cache.get_or_set("k", lambda: "computed") == "computed"
            assert cache.get_many(["k"]) == {}
            assert cache.count("counter", 60) is None
            with pytest.raises(ValueError):
                cache.incr("counter")
        warnings = [r for r in caplog.records if "is unreachable" in r.getMessage()]
        assert len(warnings) == 1

    def test_ping_raises_what_redis_did(self, dead_cache: Any) -> None:
        with pytest.raises(redis.ConnectionError):
            dead_cache().ping()

    def test_after_a_failure_redis_is_left_alone_for_a_while(
        self, dead_cache: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from config import cache as cache_module

        monkeypatch.setattr(cache_module, "RETRY_SECONDS", 60.0)
        assert dead_cache().get("k") is None  # fails, and opens the pause
        cache = dead_cache()
        calls: list[Any] = []
        monkeypatch.setattr(cache._cache, "get", lambda *a: calls.append(a))
        assert cache.get("k", "default") == "default"
        assert calls == []  # Redis was not asked
