"""Shared fixtures; PostgreSQL and Redis requirements that fail loudly in CI.

A test marked ``postgres`` or ``redis`` needs that server through ``DATABASE_URL`` or
``REDIS_URL``. Outside CI such a test is skipped with the reason printed (``-ra``); in CI
(``CI`` set) it fails, so a misconfigured run can never pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

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
    """Each test starts with an empty cache (throttle counters live there, in Redis in CI)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def forget_routes() -> None:
    """Make Celery read ``task_routes`` again: it caches its router on first use, and only
    ``conf.update()`` rebuilds it, which would pin the routes for the tests that follow."""
    from config.celery import app

    app.amqp._rtable = None
    app.amqp.__dict__.pop("router", None)
