"""The in-process scoring scheduler (no broker): open rounds with new responses are scored and
published by a thread of the serving process; nothing new, nothing scored."""

from __future__ import annotations

import time
import uuid

import pytest
from django.db import OperationalError
from django.test import Client

from scoring.models import Run
from scoring.scheduler import Scheduler, start_in_process_scheduler

ANSWERS = {"A01": "nu", "A02": "35_49"} | {f"Q8_{n}": n == 4 for n in range(1, 8)}


def submit(unit: str) -> int:
    body = {"round": "demo", "unit": unit, "client_id": str(uuid.uuid4()), "answers": ANSWERS}
    return Client().post("/api/v1/responses/", body, content_type="application/json").status_code


def published_run(*, responses: int, within: float = 30.0) -> Run:
    """The demo round's published run once it counts ``responses``; fails after ``within`` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            run = Run.objects.filter(round__code="demo", status=Run.Status.PUBLISHED).first()
        except OperationalError:  # SQLite's shared in-memory test database locks whole tables
            run = None
        if run is not None and run.response_count == responses:
            return run
        time.sleep(0.1)
    pytest.fail(f"no published run of {responses} responses within {within} s")


@pytest.mark.django_db(transaction=True)
def test_new_responses_to_an_open_round_are_scored_and_published(sipas) -> None:
    scheduler = Scheduler(period_seconds=0.2).start()
    try:
        time.sleep(0.6)  # a few passes over rounds without responses
        assert not Run.objects.exists()
        assert submit("19") == 201
        first = published_run(responses=1)
        time.sleep(1.0)  # passes with nothing new start no run
        assert Run.objects.count() == 1
        assert submit("01") == 201
        second = published_run(responses=2)
    finally:
        scheduler.stop()
    assert second.pk != first.pk
    assert second.published_at > first.published_at
    assert not Run.objects.filter(round__code="sipas-2022").exists()  # closed: never scored


def test_the_scheduler_starts_only_without_a_broker_and_with_a_period(settings) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER, settings.SCORING_AUTO_MINUTES = False, 1
    assert start_in_process_scheduler() is None  # Celery beat and a worker do it
    settings.CELERY_TASK_ALWAYS_EAGER, settings.SCORING_AUTO_MINUTES = True, 0
    assert start_in_process_scheduler() is None  # turned off
