"""A large paper-form file is imported by a real Celery worker, with progress visible."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from feedback.models import Response
from feedback.paper.services import batch_rows
from tests.support.paper import csv_bytes, row
from tests.support.queues import one_worker, routed_to_own_queue

pytestmark = [pytest.mark.redis, pytest.mark.postgres]
URL = "/api/v1/paper-imports/"


@pytest.fixture
def import_worker(transactional_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Paper imports of this process go to a worker on a queue of its own, on this test's
    database (the test process runs tasks eagerly: config.settings.test); stopped afterwards."""
    task = "feedback.import_paper_forms"
    with routed_to_own_queue(monkeypatch, "paper", task) as queue, one_worker(queue):
        yield queue


@pytest.fixture
def slow_batches(transactional_db: None) -> Iterator[None]:
    """Every statement storing responses takes a second: the state between two batches,
    committed by the worker, stays visible long enough to be seen by polling (with COPY,
    a batch of 100 forms otherwise commits in milliseconds)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_slow_batch() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER test_slow_batch AFTER INSERT ON feedback_response "
            "FOR EACH STATEMENT EXECUTE FUNCTION test_slow_batch()"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS test_slow_batch ON feedback_response")
            cursor.execute("DROP FUNCTION IF EXISTS test_slow_batch()")


@pytest.mark.django_db(transaction=True)
def test_a_file_over_the_sync_limit_is_imported_by_a_worker_with_visible_progress(
    import_worker: str,
    slow_batches: None,
    sipas,
    client: Client,
    settings,
) -> None:
    settings.PAPER_IMPORT_SYNC_MAX_ROWS = 10
    clerk = User.objects.create_user("clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="import_paper_forms"))
    client.force_login(clerk)
    # 150 forms, every 10th with an answer out of range: progress is saved after 100 rows
    # (feedback.paper.services.BATCH_ROWS) and at the end.
    assert batch_rows(150) < 150  # the file is committed in more than one batch
    lines = [row(f"F-{n}", S01="9" if n % 10 == 0 else "4") for n in range(150)]

    response = client.post(
        URL, {"round": "demo", "file": SimpleUploadedFile("forms.csv", csv_bytes(lines))}
    )

    assert response.status_code == 202, response.content
    queued = response.json()
    assert (queued["status"], queued["total_rows"], queued["processed_rows"]) == ("pending", 150, 0)
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        body = client.get(f"{URL}{queued['id']}/").json()
        seen.append((body["status"], body["processed_rows"]))
        if body["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert body["status"] == "done", (body, seen[-5:])
    assert (body["processed_rows"], body["accepted_rows"], body["rejected_rows"]) == (150, 135, 15)
    assert any(status == "running" and 0 < done < 150 for status, done in seen), seen
    assert {entry["row"] for entry in body["report"] if entry["status"] == "rejected"} == {
        n + 2 for n in range(0, 150, 10)
    }
    assert Response.objects.filter(import_batch_id=queued["id"], channel="paper").count() == 135
