"""Shared fixtures; PostgreSQL and Redis requirements that fail loudly in CI.

A test marked ``postgres`` or ``redis`` needs that server through ``DATABASE_URL`` or
``REDIS_URL``. Outside CI such a test is skipped with the reason printed (``-ra``); in CI
(``CI`` set) it fails, so a misconfigured run can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from tests.support.browser import PASSWORD, log_in
from tests.support.processes import (
    forget_queue,
    forget_routes,
    start_celery_worker,
    stop_celery_worker,
    worker_database_url,
)
from tests.support.requirements import redis_reachable, require

LONGEST_FIRST = ("simulation", "fault", "browser")  # markers of the modules that take longest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules holding simulations, then fault and browser tests, come first, each module's
    tests kept in their order. ``make test`` gives whole modules to its workers in this order
    (``--dist loadfile --no-loadscope-reorder``), so the long ones start early instead of one
    running alone at the end while the other worker idles."""

    def rank(item: pytest.Item) -> int:
        marked = (i for i, name in enumerate(LONGEST_FIRST) if item.get_closest_marker(name))
        return next(marked, len(LONGEST_FIRST))

    module_rank: dict[str, int] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        module_rank[module] = min(module_rank.get(module, len(LONGEST_FIRST)), rank(item))
    items.sort(key=lambda item: module_rank[item.nodeid.split("::")[0]])


@pytest.fixture(autouse=True)
def _required_services(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        require("this test needs PostgreSQL: set DATABASE_URL=postgres://…")
    if request.node.get_closest_marker("redis"):
        if not settings.REDIS_URL:
            require("this test needs Redis: set REDIS_URL=redis://…")
        elif not redis_reachable(settings.REDIS_URL):
            require(f"Redis at {settings.REDIS_URL} does not answer")


@pytest.fixture
def units(db: None) -> None:
    """The 63 provinces of 2022 and the units of the 2025 merger."""
    from surveys.loaders import load_units

    load_units()


@pytest.fixture
def sipas(units: None):
    """The built-in SIPAS questionnaire, published, with its rounds."""
    from django.utils import timezone

    from surveys.loaders import ensure_sipas_rounds, load_questionnaire

    version, _ = load_questionnaire()
    ensure_sipas_rounds(version, today=timezone.localdate())
    return version


@pytest.fixture
def english(settings: Any) -> None:
    """Pages in English (``LANGUAGE_CODE``), for a test or module that names this fixture."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def make_draft(db: None) -> Callable[..., object]:
    """A small draft questionnaire: a yes/no screener and a 1–5 scale that depends on it."""
    from tests.factories import small_draft

    return small_draft


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Each test starts with an empty cache (throttle counters live there, in Redis in CI)
    and no round or unit remembered by an earlier test's submissions."""
    from django.core.cache import cache

    from feedback.services import forget_targets
    from results.api.throttling import leases

    cache.clear()
    leases.clear()  # what this process leased of the counters just cleared
    forget_targets()  # rounds and units an earlier test's submissions read
    yield
    cache.clear()
    leases.clear()
    forget_targets()


CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium (Debian's, never a download), one per test module."""
    if not shutil.which(CHROMIUM):
        require(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django's ORM is still used
    # synchronously by the fixtures, which is safe here.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def admin_page(browser: Any, live_server: Any, sipas: Any, django_user_model: Any) -> Iterator[Any]:
    """A browser page logged in to the admin as the superuser ``admin`` (Vietnamese locale),
    with SIPAS and the units loaded."""
    django_user_model.objects.create_superuser("admin", "admin@example.org", PASSWORD)
    page = log_in(
        browser, live_server, "admin", locale="vi-VN", viewport={"width": 1280, "height": 900}
    )
    yield page
    page.context.close()


@pytest.fixture
def agency_round(units: None):
    """An open round ``swap`` over the 63 provinces of 2022 (a small questionnaire: USED,
    then SAT if used), the demo agencies, and the petition category ``road``."""
    from surveys.loaders import ensure_demo_agencies, provinces_2022
    from surveys.services import publish_version
    from tests.factories import PetitionCategoryFactory, RoundFactory, small_draft

    ensure_demo_agencies()
    version = publish_version(version_id=small_draft().pk)
    survey_round = RoundFactory(
        code="swap", name_vi="Vòng thử", version=version, units=provinces_2022()
    )
    PetitionCategoryFactory(code="road")
    return survey_round


@pytest.fixture
def start_worker(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], subprocess.Popen]]:
    """Starts a worker on a queue of its own that receives ``scoring.compute_and_publish``.

    Tasks sent before the worker starts wait in Redis. The worker is stopped afterwards.
    """
    from config.celery import app

    queue = f"test-scoring-{uuid.uuid4().hex[:8]}"
    # The test process runs tasks eagerly (config.settings.test); these go to the worker.
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setitem(app.conf, "task_routes", {"scoring.compute_and_publish": {"queue": queue}})
    forget_routes()
    processes: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        hostname = f"{queue}-{len(processes)}@%h"
        process = start_celery_worker(queue, database_url=worker_database_url(), hostname=hostname)
        processes.append(process)
        return process

    try:
        yield start
    finally:
        forget_routes()  # rebuilt lazily, once monkeypatch has put task_routes back
        for process in processes:
            stop_celery_worker(process)
        forget_queue(queue)


@pytest.fixture
def recompute_client(client: Client) -> Client:
    """A client logged in as an analyst allowed to start runs (``scoring.add_run``)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("analyst", password="x-long-password")
    user.user_permissions.add(Permission.objects.get(codename="add_run"))
    client.force_login(user)
    return client


@pytest.fixture
def demo_responses(sipas: Any) -> None:
    """Four SIPAS responses of the round ``demo``: three of Thái Nguyên (S01 = 5, 4, 2), one of
    Hà Nội (S01 = 1)."""
    from tests.support.responses import answer

    for s01 in (5, 4, 2):
        answer("19", S01=s01)
    answer("01", S01=1)


@pytest.fixture
def diagnosis_rounds(sipas: Any, settings: Any) -> dict[str, Any]:
    """The round ``demo`` (its ``run`` published) over ``DIAGNOSIS_UNITS``, four respondents each
    (``MIN_PUBLISH_N`` = 3), answered so that key drivers and quadrants can be worked by hand,
    and the earlier round ``sipas-2022`` of demo data over the same units for the changes."""
    from django.core.cache import cache

    from scoring.services import recompute_round
    from tests.support.responses import DIAGNOSIS_UNITS, answer
    from tests.support.sipas_rounds import narrowed_sipas_rounds

    settings.MIN_PUBLISH_N = 3
    cache.clear()
    _, demo = narrowed_sipas_rounds(DIAGNOSIS_UNITS, earlier_per_unit=4, seed=5)
    # Thái Nguyên: A all satisfied; B not with S01, S02; C not with S01; D all satisfied.
    answer("19")
    answer("19", S01=2, S02=2)
    answer("19", S01=2)
    answer("19")
    for _ in range(4):  # Lạng Sơn: no service criterion satisfied
        answer("20", **{f"S{n:02d}": 2 for n in range(1, 20)})
        answer("22")  # Quảng Ninh: everything satisfied
    run = recompute_round(round_code="demo")
    return {"run": run, "demo": demo}
