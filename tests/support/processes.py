"""Processes a test starts: Celery workers on a queue of their own, fresh interpreters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent.parent  # the project's directory


def worker_database_url() -> str:
    """The URL of the database this test uses (pytest's test database, not DATABASE_URL's)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"])
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{credentials}@{host}/{db['NAME']}"


def forget_routes() -> None:
    """Make Celery read ``task_routes`` again: it caches its router on first use, and only
    ``conf.update()`` rebuilds it, which would pin the routes for the tests that follow."""
    from config.celery import app

    app.amqp._rtable = None
    app.amqp.__dict__.pop("router", None)


def start_celery_worker(
    queue: str, *, database_url: str | None = None, hostname: str | None = None
) -> subprocess.Popen:
    """``celery -A config worker`` on a queue of its own, in a process of its own."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "REDIS_URL": settings.REDIS_URL,
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo"]
    command += ["--queues", queue, "--hostname", hostname or f"{queue}@%h", "--loglevel=INFO"]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_celery_worker(process: subprocess.Popen) -> None:
    """Stop a worker started by ``start_celery_worker`` (if it still runs); its log with
    CELERY_TEST_VERBOSE."""
    if process.poll() is None:
        process.terminate()
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    if os.environ.get("CELERY_TEST_VERBOSE"):
        print(output)


def forget_queue(queue: str) -> None:
    """Drop the queue's messages from Redis, the one a killed worker left unacknowledged too."""
    from config.celery import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        client = channel.client
        client.delete(queue)
        for tag, entry in client.hgetall(channel.unacked_key).items():
            if json.loads(entry)[2] == queue:  # [message, exchange, routing key]
                client.hdel(channel.unacked_key, tag)
                client.zrem(channel.unacked_index_key, tag)


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll ``condition`` every 0.1 s until it returns something true, at most ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def follow(client: Client, run_id: int, *, timeout: float = 120) -> dict[str, Any]:
    """Poll ``GET /api/v1/runs/<id>/`` until the run is published or failed."""

    def finished() -> dict[str, Any] | None:
        body = client.get(f"/api/v1/runs/{run_id}/").json()
        return body if body["status"] in ("published", "failed") else None

    return wait_for(finished, timeout=timeout, what=f"run {run_id} to finish")


def run_django(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Start a fresh interpreter with the given environment and run ``code`` after setup."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE", "LANGUAGE_CODE", "TIME_ZONE"}
    }
    clean.update(env)
    script = f"import django; django.setup(); {code}"
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
