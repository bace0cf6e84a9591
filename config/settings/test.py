"""Settings for the test suite: the same environment variables, quicker hashing."""

import os

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")


def _redis_of_this_worker() -> None:
    """With pytest-xdist (``make test`` runs two workers), each worker gets its own Redis
    database: the cache is flushed between tests and real Celery workers started by a test
    take tasks from its broker, so two test processes must never share one. The shifted URL
    is written back to the environment, which servers and workers started by a test inherit
    (they must not shift it again)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    url = os.environ.get("REDIS_URL", "")
    if not worker.startswith("gw") or not url or os.environ.get("TEST_REDIS_PER_WORKER"):
        return
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    database = (base + 1 + int(worker[2:])) % 16
    os.environ["REDIS_URL"] = urlunsplit(parts._replace(path=f"/{database}"))
    os.environ["TEST_REDIS_PER_WORKER"] = "1"


_redis_of_this_worker()

from config.settings.base import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Tests run tasks in-process unless a test starts a real worker (tests/test_celery_worker.py).
CELERY_TASK_ALWAYS_EAGER = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 (WhiteNoise warns when it is missing)
# Servers started by tests (gunicorn on config.wsgi) score nothing behind the tests' back;
# tests of the in-process scheduler start their own (scoring.scheduler.Scheduler).
SCORING_AUTO_MINUTES = 0
