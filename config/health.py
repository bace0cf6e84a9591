"""``GET /health/``: 200 when every configured dependency answers, 503 naming what is down.

Checks the database always; Redis (cache) and the Celery broker only when ``REDIS_URL``
(or ``CELERY_BROKER_URL``) points to a real server. While Redis is down the service still
serves citizens (``config.cache``), and this page is where the outage shows.
django-health-check answers 500 on failure and checks workers rather than the broker, so
this small view is our own.
"""

from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache, caches
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.cache import ResilientRedisCache

TIMEOUT_SECONDS = 3


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:
    if isinstance(cache_backend := caches["default"], ResilientRedisCache):
        cache_backend.ping()  # the cache itself hides an outage from its callers
        return
    key = "health:probe"
    cache.set(key, "ok", timeout=10)
    if cache.get(key) != "ok":
        raise RuntimeError("cache did not return the value just written")


def check_broker() -> None:
    from config.celery import app

    with app.connection_for_write(url=settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)


def configured_checks() -> dict[str, Callable[[], None]]:
    checks: dict[str, Callable[[], None]] = {"database": check_database}
    if settings.REDIS_URL:
        checks["cache"] = check_cache
    if not settings.CELERY_BROKER_URL.startswith("memory://"):
        checks["broker"] = check_broker
    return checks


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for name, check in configured_checks().items():
        try:
            check()
        except Exception as exc:  # a health check reports every failure, whatever its type
            results[name] = f"down: {type(exc).__name__}: {exc}"[:300]
        else:
            results[name] = "ok"
    down = sorted(name for name, result in results.items() if result != "ok")
    body = {"status": "down" if down else "ok", "down": down, "checks": results}
    return JsonResponse(body, status=503 if down else 200)
