"""The reminder task, as beat schedules it by name, runs in a real Celery worker through
Redis against this test's PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from config.celery import app
from feedback.models import Petition
from feedback.petitions.calendar import add_working_days
from tests.support.petitions import petition_desk, submit
from tests.support.queues import one_worker, own_queue

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def reminder_worker(transactional_db: None) -> Iterator[str]:
    with one_worker(own_queue("petitions")) as queue:
        yield queue


def test_a_worker_runs_the_scheduled_reminder_task(
    reminder_worker: str, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    petition_desk(("SO-A", "Sở A"))
    today = timezone.localdate()
    due = submit("road", "T01", "SO-A")
    late = submit("road", "T01", "")
    later = submit("road", "T01", "SO-A")
    Petition.objects.filter(pk=due.pk).update(deadline=add_working_days(today, 1))
    Petition.objects.filter(pk=late.pk).update(deadline=today - timedelta(days=2))
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    task = settings.CELERY_BEAT_SCHEDULE["remind-petitions-near-deadline"]["task"]

    # Nobody handles these agencies yet, so no e-mail leaves; the petitions are marked.
    result = app.send_task(task, queue=reminder_worker)

    assert result.get(timeout=90) == 0
    reminded = dict(Petition.objects.values_list("pk", "reminded_on"))
    assert reminded == {due.pk: today, late.pk: today, later.pk: None}
