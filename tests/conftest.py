"""Shared fixtures; PostgreSQL and Redis requirements that fail loudly in CI.

A test marked ``postgres`` or ``redis`` needs that server through ``DATABASE_URL`` or
``REDIS_URL``. Outside CI such a test is skipped with the reason printed (``-ra``); in CI
(``CI`` set) it fails, so a misconfigured run can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require(reason: str) -> None:
    if in_ci():
        pytest.fail(f"CI requires this: {reason}", pytrace=False)
    pytest.skip(reason)


def redis_reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


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


def forget_routes() -> None:
    """Make Celery read ``task_routes`` again: it caches its router on first use, and only
    ``conf.update()`` rebuilds it, which would pin the routes for the tests that follow."""
    from config.celery import app

    app.amqp._rtable = None
    app.amqp.__dict__.pop("router", None)


def start_celery_worker(queue: str, *, database_url: str | None = None) -> subprocess.Popen:
    """``celery -A config worker`` on a queue of its own, in a process of its own."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "REDIS_URL": settings.REDIS_URL,
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo"]
    command += ["--queues", queue, "--hostname", f"{queue}@%h", "--loglevel=INFO"]
    return subprocess.Popen(
        command,
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_celery_worker(process: subprocess.Popen) -> None:
    """Stop a worker started by ``start_celery_worker``; its log with CELERY_TEST_VERBOSE."""
    process.terminate()
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    if os.environ.get("CELERY_TEST_VERBOSE"):
        print(output)


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


ADMIN_PASSWORD = "a-long-password-for-tests"


@pytest.fixture
def admin_page(browser: Any, live_server: Any, sipas: Any, django_user_model: Any) -> Iterator[Any]:
    """A browser page logged in to the admin as the superuser ``admin`` (Vietnamese locale),
    with SIPAS and the units loaded."""
    django_user_model.objects.create_superuser("admin", "admin@example.org", ADMIN_PASSWORD)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    yield page
    context.close()


@pytest.fixture
def agency_round(units: None):
    """An open round ``swap`` over the 63 provinces of 2022 (a small questionnaire: USED,
    then SAT if used), the demo agencies, and the petition category ``road``."""
    import datetime as dt

    from django.utils import timezone

    from surveys.loaders import ensure_demo_agencies, provinces_2022
    from surveys.models import Round
    from surveys.services import publish_version
    from tests.factories import small_draft
    from tests.petition_support import make_category

    ensure_demo_agencies()
    version = publish_version(version_id=small_draft().pk)
    now = timezone.now()
    survey_round = Round.objects.create(
        code="swap",
        name_vi="Vòng thử",
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 6, 30),
        opens_at=now - dt.timedelta(days=1),
        closes_at=now + dt.timedelta(days=30),
        version=version,
    )
    survey_round.units.set(provinces_2022())
    make_category("road", days=10)
    return survey_round
