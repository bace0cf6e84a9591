"""Celery for tests: the broker this process publishes to, tasks routed to a queue of the
test's own, and real workers on that queue (``tests.support.processes`` starts them)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from config.celery import app
from tests.support.processes import (
    forget_queue,
    forget_routes,
    start_celery_worker,
    stop_celery_worker,
    worker_database_url,
)


def own_queue(name: str) -> str:
    """A queue name no other test uses."""
    return f"test-{name}-{uuid.uuid4().hex[:8]}"


def use_broker(url: str) -> None:
    """Make this process publish to ``url`` from now on (Celery caches its connections)."""
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def publishing_to(url: str) -> Iterator[None]:
    """Tasks of this process are published to the broker at ``url`` (not run in-process);
    afterwards the settings' broker and eagerness are back."""
    previous, eager = app.conf.broker_url, app.conf.task_always_eager
    app.conf.task_always_eager = False
    use_broker(url)
    try:
        yield
    finally:
        app.conf.task_always_eager = eager
        use_broker(previous)


@contextmanager
def routed_to_own_queue(monkeypatch: pytest.MonkeyPatch, name: str, task: str) -> Iterator[str]:
    """The task named ``task`` goes through Redis (not run in-process) to a queue of its own,
    whose name is yielded; afterwards its messages are dropped."""
    queue = own_queue(name)
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setitem(app.conf, "task_routes", {task: {"queue": queue}})
    forget_routes()
    try:
        yield queue
    finally:
        forget_routes()  # rebuilt lazily, once monkeypatch has put task_routes back
        forget_queue(queue)


class Workers:
    """Celery workers on ``queue``, on this test's database, started one by one with
    ``start()`` (``workers[0]`` the first) and all stopped when the ``with`` block ends."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.processes: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        process = start_celery_worker(self.queue, database_url=worker_database_url())
        self.processes.append(process)
        return process

    def __getitem__(self, index: int) -> subprocess.Popen:
        return self.processes[index]

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for process in self.processes:
            stop_celery_worker(process)


@contextmanager
def one_worker(queue: str) -> Iterator[str]:
    """A worker on ``queue`` (yielded), on this test's database; stopped afterwards."""
    with Workers(queue) as workers:
        workers.start()
        yield queue
