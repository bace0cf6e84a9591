"""Webhook deliveries made by a real Celery worker process through Redis, on this test's
PostgreSQL database: retries with the configured delays, and a worker killed in the middle of
an attempt loses nothing (the sweep hands the delivery to the next worker)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest

from tests.support.petitions import make_category, make_unit, submit
from tests.support.queues import Workers, routed_to_own_queue
from tests.support.webhooks import receiver, wait_until
from webhooks import services
from webhooks.models import Delivery, Subscription

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def webhook_queue(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> Iterator[str]:
    """Deliveries of this process go through Redis to this test's own queue; the workers it
    starts allow loopback receivers and retry after half a second."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    services.forget_wanted()
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "0.5,0.5,0.5,0.5")
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "2")
    with routed_to_own_queue(monkeypatch, "webhooks", "webhooks.deliver") as queue:
        yield queue


def subscribed(django_user_model: Any, url: str) -> Subscription:
    owner = django_user_model.objects.create_user("owner", email="o@example.gov.vn")
    make_unit()
    make_category("road")
    return Subscription.objects.create(owner=owner, url=url, events=["petition.created"])


def delivered() -> Delivery:
    """The delivery, once a worker has recorded it delivered."""
    return wait_until(
        lambda: Delivery.objects.filter(status="delivered").first(),
        what="the delivery to be recorded",
    )


@pytest.mark.django_db(transaction=True)
def test_a_receiver_failing_three_times_gets_the_event_a_fourth_time(
    webhook_queue: str, django_user_model: Any
) -> None:
    with Workers(webhook_queue) as workers:
        workers.start()
        with receiver(statuses=[500, 502, 503]) as hook:
            subscription = subscribed(django_user_model, hook.url)
            petition = submit("road", "T01")  # committed: its delivery goes to the worker
            hook.wait_for(4, timeout=60)
            delivery = delivered()
            payloads = hook.verified(subscription.secret)
    assert len(payloads) == 4
    assert {p["data"]["tracking_code"] for p in payloads} == {petition.tracking_code}
    assert {r.headers["webhook-id"] for r in hook.requests} == {delivery.message_id}
    log = list(delivery.log.values_list("number", "status_code", "succeeded"))
    assert log == [(1, 500, False), (2, 502, False), (3, 503, False), (4, 204, True)]
    times = list(delivery.log.values_list("at", flat=True))
    assert all((later - earlier).total_seconds() >= 0.5 for earlier, later in pairwise(times))


@pytest.mark.django_db(transaction=True)
@pytest.mark.fault
def test_a_worker_killed_during_an_attempt_loses_no_delivery(
    webhook_queue: str, django_user_model: Any, settings: Any
) -> None:
    settings.WEBHOOK_REQUEUE_SECONDS = 0  # the sweep queues at once what no worker holds
    with Workers(webhook_queue) as workers:
        workers.start()
        with receiver(hold_first=True) as hook:
            subscription = subscribed(django_user_model, hook.url)
            submit("road", "T01")
            assert hook.holding.wait(60), "the worker never made its first attempt"
            # The next worker starts now: the message the first one holds is not for it.
            workers.start()
            workers[0].send_signal(signal.SIGKILL)  # mid-attempt: no clean-up of any kind
            assert workers[0].wait(timeout=20) == -signal.SIGKILL
            hook.release.set()
            delivery = Delivery.objects.get()
            assert delivery.status == "pending" and delivery.attempts == 1
            assert len(hook.requests) == 1

            # Beat's sweep, every minute in production: once the lost attempt's lease is over.
            wait_until(
                lambda: services.queue_due_deliveries() == [delivery.pk],
                timeout=20,
                what="the sweep to queue the delivery again",
            )
            hook.wait_for(2, timeout=30)
            done = delivered()
            payloads = hook.verified(subscription.secret)
    assert [p["type"] for p in payloads] == ["petition.created"] * 2
    assert {r.headers["webhook-id"] for r in hook.requests} == {done.message_id}
    log = list(done.log.values_list("number", "status_code", "succeeded"))
    assert log == [(1, None, False), (2, 204, True)]  # the lost attempt is logged as such
