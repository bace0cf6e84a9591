"""A real Celery worker process takes tasks from Redis and returns their results."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from config.celery import app

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.redis


@pytest.fixture
def worker_queue() -> Iterator[str]:
    """Start ``celery -A config worker`` on a queue of its own; stop it afterwards."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "REDIS_URL": settings.REDIS_URL,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--queues",
            queue,
            "--hostname",
            f"{queue}@%h",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield queue
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        if os.environ.get("CELERY_TEST_VERBOSE"):
            print(output)


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
