"""Recomputes run by a real Celery worker process; a worker killed mid-run publishes nothing.

The worker is ``celery -A config worker`` on a queue of its own, on this test's database
and on Redis. To stop a run in the middle without touching our code, the test holds the
run's row ``FOR UPDATE``: the worker computes the values, inserts its scores in its
transaction and then waits on that lock to mark the run computed. It is killed there.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from scoring import services
from scoring.models import Run, Score
from tests.support.processes import (
    follow,
    wait_for,
)
from tests.support.responses import answer

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

TASK = "scoring.compute_and_publish"


def published_values(round_code: str) -> dict[tuple[str, str | None, str], float | None]:
    """What readers are served: the scores of the round's published run."""
    rows = Score.objects.filter(run__round__code=round_code, run__status=Run.Status.PUBLISHED)
    return {
        (s.indicator.code, s.unit.code if s.unit else None, s.scope): s.value
        for s in rows.select_related("indicator", "unit")
    }


def blocked_backend(table: str) -> int | None:
    """The PostgreSQL backend waiting on a row lock to update ``table``, if any."""
    with connection.cursor() as cursor:
        # Activity is read once per transaction unless the snapshot is cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE %s",
            [f'UPDATE "{table}"%'],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


def relations_locked_by(pid: int) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE l.pid = %s AND l.mode = 'RowExclusiveLock'",
            [pid],
        )
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
@contextmanager
def worker_blocked_on(
    run_id: int, start_worker: Callable[[], subprocess.Popen]
) -> Iterator[tuple[subprocess.Popen, int]]:
    """Hold the run's row, then start the worker: it computes the values, inserts the scores
    in its transaction and blocks when it marks the run computed. Yields the worker and its
    database backend's pid; the row is let go at the end."""
    with transaction.atomic():
        Run.objects.select_for_update().get(pk=run_id)
        worker = start_worker()
        pid = wait_for(
            lambda: blocked_backend(Run._meta.db_table), timeout=90, what="the worker to block"
        )
        yield worker, pid


def test_a_worker_runs_a_recompute_started_through_the_api(
    start_worker: Callable[[], subprocess.Popen], demo_responses: None, recompute_client: Client
) -> None:
    start_worker()
    response = recompute_client.post("/api/v1/rounds/demo/recompute/")

    assert response.status_code == 202, response.content
    queued = response.json()
    assert queued["status"] == "running"
    body = follow(recompute_client, queued["id"])
    assert body["status"] == "published", body
    assert (body["responses"], body["round"]) == (4, "demo")
    run = Run.objects.get(pk=queued["id"])
    s01 = Score.objects.get(run=run, indicator__code="S01", unit__code="19")
    assert s01.value == pytest.approx(200 / 3)  # 5 and 4 satisfied of 5, 4, 2
    assert set(Score.objects.filter(run=run).values_list("scope", flat=True)) == {
        "unit",
        "national",
        "national_mean",
    }


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_run_leaves_the_published_values_and_the_next_run_publishes(
    start_worker: Callable[[], subprocess.Popen], demo_responses: None, recompute_client: Client
) -> None:
    first = services.recompute_round(round_code="demo")  # in this process
    assert first.status == Run.Status.PUBLISHED
    served = published_values("demo")
    assert served[("S01", "19", "unit")] == pytest.approx(200 / 3)
    for _ in range(3):
        answer("19", S01=1)  # new data the killed run would have published: 2 of 6

    killed_id = recompute_client.post("/api/v1/rounds/demo/recompute/").json()["id"]
    with worker_blocked_on(killed_id, start_worker) as (worker, pid):
        assert Score._meta.db_table in relations_locked_by(pid)  # it has written scores
        # Meanwhile readers get the published run, and none of the new scores.
        assert published_values("demo") == served
        assert not Score.objects.filter(run_id=killed_id).exists()
        worker.kill()  # SIGKILL: no clean-up of any kind
        assert worker.wait(timeout=20) == -9
    # The server notices the lost client once the lock is free, and rolls its work back.
    wait_for(lambda: not backend_alive(pid), timeout=30, what="the dead worker's session")

    killed = Run.objects.get(pk=killed_id)
    assert killed.status == Run.Status.RUNNING and killed.published_at is None
    assert not Score.objects.filter(run=killed).exists()
    assert Run.objects.get(round__code="demo", status=Run.Status.PUBLISHED) == first
    assert published_values("demo") == served
    # While it looks alive, another request joins the dead run rather than starting one.
    assert recompute_client.post("/api/v1/rounds/demo/recompute/").json()["id"] == killed_id
    assert recompute_client.get(f"/api/v1/runs/{killed_id}/").json()["status"] == "running"

    # Past the time-out the dead run is failed, and the next recompute publishes.
    stale = timezone.now() - dt.timedelta(minutes=settings.SCORING_RUN_TIMEOUT_MINUTES + 1)
    Run.objects.filter(pk=killed_id).update(started_at=stale)
    following = services.recompute_round(round_code="demo")

    assert following.status == Run.Status.PUBLISHED and following.pk not in (first.pk, killed_id)
    killed.refresh_from_db()
    # the error names the time-out (120 minutes without a sign of life), in the site's language
    assert killed.status == Run.Status.FAILED and "120" in killed.error
    first.refresh_from_db()
    assert first.status == Run.Status.SUPERSEDED
    assert published_values("demo")[("S01", "19", "unit")] == pytest.approx(200 / 6)


@pytest.mark.fault
@pytest.mark.django_db(transaction=True)
def test_a_run_whose_worker_died_is_taken_over_by_another_worker_at_the_next_sweep(
    start_worker: Callable[[], subprocess.Popen],
    demo_responses: None,
    recompute_client: Client,
    settings,
) -> None:
    settings.STALLED_WORK_MINUTES = 0  # production: 5, and beat sweeps every minute
    first = services.recompute_round(round_code="demo")
    for _ in range(3):
        answer("19", S01=1)
    killed_id = recompute_client.post("/api/v1/rounds/demo/recompute/").json()["id"]
    with worker_blocked_on(killed_id, start_worker) as (worker, pid):
        worker.kill()
        assert worker.wait(timeout=20) == -9
    wait_for(lambda: not backend_alive(pid), timeout=30, what="the dead worker's session")
    assert Run.objects.get(pk=killed_id).status == Run.Status.RUNNING

    start_worker()
    assert services.requeue_stalled_runs() == [killed_id]  # what beat runs every minute

    body = follow(recompute_client, killed_id)
    assert body["status"] == "published", body
    first.refresh_from_db()
    assert first.status == Run.Status.SUPERSEDED
    assert published_values("demo")[("S01", "19", "unit")] == pytest.approx(200 / 6)
