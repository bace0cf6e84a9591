"""Concurrent submissions: repeats of one client_id store one response, and a single-use
invitation is claimed once, however many requests race for it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connections
from django.test import Client

from feedback.invitations.services import generate_invitations
from feedback.models import Invitation, Response
from surveys.models import Round
from tests.support.responses import payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
URL = "/api/v1/responses/"
THREADS = 20


@pytest.fixture(autouse=True)
def unthrottled(settings) -> Iterator[None]:
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] | {"response-submit": "1000/minute"}
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"DEFAULT_THROTTLE_RATES": rates}
    cache.clear()
    yield
    cache.clear()


def post_at_once(bodies: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """POST every body from its own thread, all released together; (status, JSON) each."""
    barrier = threading.Barrier(len(bodies))

    def send(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        client = Client()
        try:
            barrier.wait(timeout=30)
            response = client.post(URL, body, content_type="application/json")
            return response.status_code, response.json()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(send, bodies))


def test_one_client_id_sent_twenty_times_at_once_stores_one_response(sipas) -> None:
    body = payload()
    answers = post_at_once([body] * THREADS)
    assert [status for status, _json in answers] == [201] * THREADS, answers
    assert len({json["receipt"] for _status, json in answers}) == 1
    stored = Response.objects.get()
    assert stored.receipt == answers[0][1]["receipt"]
    assert str(stored.client_id) == body["client_id"]


def test_one_invitation_raced_by_twenty_clients_is_used_once(sipas) -> None:
    Round.objects.filter(code="demo").update(allow_open_link=False)
    (invitation,) = generate_invitations(round_code="demo", unit_code="19", count=1)
    make: Callable[[], dict[str, Any]] = lambda: payload(  # noqa: E731
        client_id=str(uuid.uuid4()), token=invitation.token
    )
    answers = post_at_once([make() for _ in range(THREADS)])
    statuses = sorted(status for status, _json in answers)
    assert statuses == [201] + [400] * (THREADS - 1), answers
    refused = [json for status, json in answers if status == 400]
    assert all("token" in json["fields"] for json in refused), refused
    stored = Response.objects.get()
    assert stored.invitation_id == invitation.pk
    assert Invitation.objects.get().used_at is not None
