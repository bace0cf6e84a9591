"""Configuration from the environment: safe defaults, SECRET_KEY required, the right database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.support.environment import printed, refused

ROOT = Path(__file__).resolve().parent.parent


class TestSecretKey:
    def test_production_refuses_to_start_without_secret_key(self) -> None:
        assert "SECRET_KEY is not set" in refused("config.settings.production")

    def test_debug_off_without_secret_key_refuses_in_base_settings_too(self) -> None:
        assert "SECRET_KEY" in refused("config.settings.base", DEBUG="false")

    def test_production_starts_with_a_secret_key(self) -> None:
        debug = printed(
            "from django.conf import settings; print(settings.DEBUG)",
            "config.settings.production",
            SECRET_KEY="x" * 60,
        )
        assert debug.strip() == "False"

    def test_local_development_runs_without_a_secret_key(self) -> None:
        debug = printed("from django.conf import settings; print(settings.DEBUG)")
        assert debug.strip() == "True"


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
            "ALLOWED_HOSTS": "sipas.example.gov.vn",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_an_empty_variable_counts_as_unset() -> None:
    values = printed(
        "from django.conf import settings; "
        "print(settings.MIN_PUBLISH_N, settings.SCORING_KEEP_RUNS, settings.DEBUG)",
        MIN_PUBLISH_N="",
        SCORING_KEEP_RUNS="",
        DEBUG="",
    )
    assert values.split() == ["30", "10", "True"]


def test_a_number_that_is_not_one_is_refused_naming_the_variable() -> None:
    assert "MIN_PUBLISH_N must be a whole number, not '3O'" in refused(MIN_PUBLISH_N="3O")


def test_unsupported_language_is_refused_with_a_clear_message() -> None:
    assert "LANGUAGE_CODE='fr' is not supported" in refused(LANGUAGE_CODE="fr")


LANGUAGE_AND_TIME_ZONE = (
    "from django.conf import settings; print(settings.LANGUAGE_CODE, settings.TIME_ZONE)"
)


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_defaults_are_vietnamese_and_ho_chi_minh_time(value: str | None) -> None:
    env = {} if value is None else {"LANGUAGE_CODE": value, "TIME_ZONE": value}
    assert printed(LANGUAGE_AND_TIME_ZONE, **env).split() == ["vi", "Asia/Ho_Chi_Minh"]


def test_english_and_another_time_zone_can_be_chosen() -> None:
    chosen = printed(LANGUAGE_AND_TIME_ZONE, LANGUAGE_CODE="en", TIME_ZONE="UTC")
    assert chosen.split() == ["en", "UTC"]


def test_embedded_default_is_sqlite_in_var_and_in_process_tasks() -> None:
    env = {k: "" for k in ("DATABASE_URL", "REDIS_URL")}
    engine, name, eager, cache = printed(
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], "
        "s.CELERY_TASK_ALWAYS_EAGER, s.CACHES['default']['BACKEND'])",
        **env,
    ).split()
    assert engine == "django.db.backends.sqlite3"
    assert Path(name) == ROOT / "var" / "db.sqlite3"
    assert (eager, cache) == ("True", "django.core.cache.backends.locmem.LocMemCache")


def test_redis_url_makes_redis_the_broker_backend_and_cache() -> None:
    values = printed(
        "from django.conf import settings as s; "
        "print(s.CELERY_BROKER_URL, s.CELERY_RESULT_BACKEND, s.CELERY_TASK_ALWAYS_EAGER, "
        "s.CACHES['default']['BACKEND'])",
        REDIS_URL="redis://127.0.0.1:6379/3",
    )
    assert values.split() == [
        "redis://127.0.0.1:6379/3",
        "redis://127.0.0.1:6379/3",
        "False",
        "config.cache.ResilientRedisCache",
    ]


def test_redis_calls_wait_at_most_redis_timeout_seconds() -> None:
    timeouts = printed(
        "from django.conf import settings as s; "
        "o = s.CACHES['default']['OPTIONS']; "
        "print(o['socket_connect_timeout'], o['socket_timeout'])",
        REDIS_URL="redis://127.0.0.1:6379/3",
        REDIS_TIMEOUT_SECONDS="0.25",
    )
    assert timeouts.split() == ["0.25", "0.25"]


@pytest.mark.django_db
def test_the_suite_runs_on_the_database_named_by_database_url() -> None:
    url = os.environ.get("DATABASE_URL", "")
    expected = "postgresql" if url.startswith(("postgres://", "postgresql://")) else "sqlite"
    assert connection.vendor == expected
    if expected == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)


def test_ci_sets_both_services() -> None:
    if os.environ.get("CI"):
        assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
        assert settings.REDIS_URL.startswith("redis://")
