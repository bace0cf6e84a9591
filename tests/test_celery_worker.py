"""A real Celery worker process takes tasks from Redis and returns their results."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from config.celery import app
from tests.support.processes import start_celery_worker, stop_celery_worker

pytestmark = pytest.mark.redis


@pytest.fixture
def worker_queue() -> Iterator[str]:
    """Start ``celery -A config worker`` on a queue of its own; stop it afterwards."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    process = start_celery_worker(queue)
    try:
        yield queue
    finally:
        stop_celery_worker(process)


def test_worker_runs_a_task_sent_through_redis(
    worker_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test process itself runs tasks eagerly (config.settings.test); this one goes out.
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    result = app.send_task("config.ping", queue=worker_queue)
    deadline = time.monotonic() + 60
    while not result.ready() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert result.get(timeout=1) == "pong"
    assert result.backend.__class__.__name__ == "RedisBackend"
