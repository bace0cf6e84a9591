"""Webhooks (Standard Webhooks): subscriptions at /api/v1/webhooks/ and in the admin, the
events' payloads, signatures verified by a real HTTP receiver with ``standardwebhooks``,
retries, disabling, and targets on private addresses refused.

Deliveries run in this process here (tasks in-process, at commit); tests/test_webhooks_worker.py
runs them in a real Celery worker.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.db import transaction
from django.test import Client
from standardwebhooks.webhooks import WebhookVerificationError

from feedback.models import Response
from feedback.petitions import services as petitions
from feedback.services import submit_response
from scoring.models import Run
from scoring.services import publish_run
from surveys.models import Round
from tests.factories import RunFactory
from tests.support.paper import csv_bytes, row
from tests.support.petitions import make_agency, make_category, make_staff, make_unit, submit
from tests.support.responses import payload, post, valid_answers
from tests.support.webhooks import receiver
from webhooks import services
from webhooks.models import Delivery, DeliveryAttempt, Event, Subscription, new_secret

pytestmark = pytest.mark.django_db
URL = "/api/v1/webhooks/"
PASSWORD = "a-long-password-for-tests"


@pytest.fixture(autouse=True)
def _loopback_allowed(settings: Any) -> None:
    """The receivers of these tests listen on loopback; tests of refusal turn this off."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
    services.forget_wanted()


def staff(django_user_model: Any, username: str, *, view_responses: bool = False) -> Any:
    user = django_user_model.objects.create_user(
        username, email=f"{username}@example.gov.vn", password=PASSWORD, is_staff=True
    )
    if view_responses:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="feedback", codename="view_response")
        )
    return user


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def subscribe(client: Client, url: str, events: list[str], **fields: Any) -> Any:
    body = {"url": url, "events": events, **fields}
    return client.post(URL, body, content_type="application/json")


def submit_demo_response() -> Any:
    return submit_response(
        round_code="demo",
        unit_code="19",
        answers=valid_answers(),
        channel="api",
        client_id=uuid.uuid4(),
    ).response


# --- Subscriptions through the API ---------------------------------------------------------


def test_only_staff_manage_webhooks_and_each_sees_their_own(django_user_model: Any) -> None:
    body = {"url": "http://127.0.0.1:9/hook", "events": ["run.published"]}
    anonymous = Client()
    assert anonymous.get(URL).status_code in (401, 403)
    assert anonymous.post(URL, body, content_type="application/json").status_code in (401, 403)
    citizen = django_user_model.objects.create_user("citizen", password=PASSWORD)
    assert signed_in(citizen).get(URL).status_code == 403
    assert signed_in(citizen).post(URL, body, content_type="application/json").status_code == 403
    assert not Subscription.objects.exists()

    first, second = staff(django_user_model, "first"), staff(django_user_model, "second")
    created = subscribe(signed_in(first), **body)
    assert created.status_code == 201, created.content
    mine = created.json()
    assert mine["owner"] == "first" and mine["is_active"] is True
    assert signed_in(second).get(URL).json()["results"] == []
    assert signed_in(second).get(f"{URL}{mine['id']}/").status_code == 404
    assert signed_in(second).delete(f"{URL}{mine['id']}/").status_code == 404
    root = django_user_model.objects.create_superuser("root", password=PASSWORD)
    assert [s["id"] for s in signed_in(root).get(URL).json()["results"]] == [mine["id"]]

    changed = signed_in(first).patch(
        f"{URL}{mine['id']}/", {"is_active": False}, content_type="application/json"
    )
    assert changed.status_code == 200 and changed.json()["is_active"] is False
    assert signed_in(first).delete(f"{URL}{mine['id']}/").status_code == 204
    assert not Subscription.objects.exists()


def test_the_secret_is_shown_once_and_signs_every_delivery(
    django_user_model: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = signed_in(staff(django_user_model, "analyst"))
    with receiver() as hook:
        created = subscribe(client, hook.url, ["run.published"])
        secret = created.json()["secret"]
        assert secret.startswith("whsec_")
        pk = created.json()["id"]
        assert "secret" not in client.get(f"{URL}{pk}/").json()
        assert all("secret" not in s for s in client.get(URL).json()["results"])
        assert secret not in client.get(f"{URL}{pk}/").content.decode()

        with django_capture_on_commit_callbacks(execute=True):
            test = client.post(f"{URL}{pk}/test/")
        assert test.status_code == 202
        [payload] = hook.verified(secret)
        assert payload["type"] == "webhook.test"
        assert hook.requests[0].headers["webhook-id"] == test.json()["message_id"]
        with pytest.raises(WebhookVerificationError):
            hook.verified(new_secret())  # another secret does not verify it
    log = client.get(f"{URL}{pk}/deliveries/").json()["results"]
    assert log[0]["status"] == "delivered"
    assert [(a["number"], a["status_code"]) for a in log[0]["attempts"]] == [(1, 204)]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "http://240.0.0.1/",
        "http://224.0.0.1/",
    ],
)
def test_a_target_on_a_private_address_is_refused(
    url: str, django_user_model: Any, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    answer = subscribe(signed_in(staff(django_user_model, "a")), url, ["run.published"])
    assert answer.status_code == 400
    assert "url" in answer.json()["fields"], answer.json()
    assert not Subscription.objects.exists()


@pytest.mark.parametrize(
    ("url", "events", "field"),
    [
        ("ftp://example.org/x", ["run.published"], "url"),
        ("http://user:pw@127.0.0.1/", ["run.published"], "url"),
        ("http:///nohost", ["run.published"], "url"),
        ("http://127.0.0.1:99999/", ["run.published"], "url"),
        ("http://host.invalid/", ["run.published"], "url"),
        ("http://127.0.0.1/", [], "events"),
        ("http://127.0.0.1/", ["response.deleted"], "events"),
        ("http://127.0.0.1/", "run.published", "events"),
    ],
)
def test_bad_fields_are_a_400_naming_them(
    url: str, events: Any, field: str, django_user_model: Any
) -> None:
    answer = subscribe(signed_in(staff(django_user_model, "a")), url, events)
    assert answer.status_code == 400 and field in answer.json()["fields"], answer.content


def test_a_private_target_is_refused_at_delivery_too(
    django_user_model: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = signed_in(staff(django_user_model, "analyst"))
    with receiver() as hook:
        pk = subscribe(client, hook.url, ["run.published"]).json()["id"]
        settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False  # say, the name now resolves privately
        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"{URL}{pk}/test/")
        assert hook.requests == []
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code is None and not attempt.succeeded
    assert "127.0.0.1" in attempt.error and "loopback" in attempt.error


# --- Events --------------------------------------------------------------------------------


def test_response_created_carries_answers_only_to_owners_allowed_who_asked(
    sipas: Any, django_user_model: Any, django_capture_on_commit_callbacks: Any
) -> None:
    reader = staff(django_user_model, "reader", view_responses=True)
    other_reader = staff(django_user_model, "other", view_responses=True)
    outsider = staff(django_user_model, "outsider")
    with receiver() as allowed, receiver() as not_asked, receiver() as not_allowed:
        asked = subscribe(
            signed_in(reader), allowed.url, ["response.created"], include_answers=True
        )
        assert asked.status_code == 201, asked.content
        plain = subscribe(signed_in(other_reader), not_asked.url, ["response.created"])
        refused = subscribe(
            signed_in(outsider), not_allowed.url, ["response.created"], include_answers=True
        )
        assert refused.status_code == 400 and "include_answers" in refused.json()["fields"]
        # A subscription whose owner lost the permission after asking.
        lost = Subscription.objects.create(
            owner=outsider, url=not_allowed.url, events=["response.created"], include_answers=True
        )
        with django_capture_on_commit_callbacks(execute=True):
            answer = post(Client(), payload())
        assert answer.status_code == 201, answer.content
        receipt = answer.json()["receipt"]
        [with_answers] = allowed.verified(asked.json()["secret"])
        [without] = not_asked.verified(plain.json()["secret"])
        [withheld] = not_allowed.verified(lost.secret)

    assert with_answers["type"] == "response.created"
    data = with_answers["data"]
    assert data["receipt"] == receipt and data["round"] == "demo" and data["unit"] == "19"
    assert data["channel"] == "api" and data["version"] == sipas.number
    assert data["submitted_at"]
    assert data["answers"]["S01"] == 4 and data["answers"]["A01"] == "nu"
    assert "answers" not in without["data"] and "answers" not in withheld["data"]
    assert without["data"] == {k: v for k, v in data.items() if k != "answers"}
    ids = [r.headers["webhook-id"] for r in allowed.requests + not_asked.requests]
    assert len(set(ids)) == 2  # one message per subscription


def test_a_rolled_back_response_sends_nothing(
    sipas: Any, django_user_model: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with receiver() as hook:
        owner = staff(django_user_model, "a")
        Subscription.objects.create(owner=owner, url=hook.url, events=["response.created"])
        with (
            django_capture_on_commit_callbacks(execute=True),
            pytest.raises(RuntimeError),
            transaction.atomic(),
        ):
            submit_demo_response()
            assert Delivery.objects.count() == 1  # written with the response…
            raise RuntimeError("the caller fails after storing")
        assert not Event.objects.exists() and not Delivery.objects.exists()  # …and undone
        assert hook.requests == []
        with django_capture_on_commit_callbacks(execute=True):
            stored = submit_demo_response()
        [payload] = hook.verified(Subscription.objects.get().secret)
    assert payload["data"]["receipt"] == stored.receipt


def test_petition_events_carry_no_contact_details(
    django_user_model: Any, django_capture_on_commit_callbacks: Any
) -> None:
    unit = make_unit()
    agency = make_agency(unit, "SO-A", "Sở A")
    make_category("road")
    handler = make_staff("handler", unit=unit, agency=None)
    contact = {
        "contact_name": "Nguyễn Văn Riêng",
        "contact_email": "rieng@example.com",
        "contact_phone": "0912345678",
        "contact_consent": True,
        "address": "Số 7 ngõ Riêng",
        "description": "Đèn hỏng trước nhà Nguyễn Văn Riêng, gọi 0912345678.",
    }
    with receiver() as hook:
        owner = staff(django_user_model, "integrator", view_responses=True)
        secret = subscribe(
            signed_in(owner), hook.url, ["petition.created", "petition.status_changed"]
        ).json()["secret"]
        with django_capture_on_commit_callbacks(execute=True):
            petition = submit("road", "T01", "", **contact)
        with django_capture_on_commit_callbacks(execute=True):
            petitions.change_petition_status(
                petition_id=petition.pk, actor=handler, status="assigned", agency_id=agency.pk
            )
        created, changed = hook.verified(secret)
        bodies = b"".join(r.body for r in hook.requests).decode()

    assert created["type"] == "petition.created"
    assert created["data"]["tracking_code"] == petition.tracking_code
    assert created["data"]["status"] == "received" and created["data"]["category"] == "road"
    assert changed["type"] == "petition.status_changed"
    assert (changed["data"]["previous_status"], changed["data"]["status"]) == (
        "received",
        "assigned",
    )
    assert changed["data"]["agency"] == "SO-A"
    for private in ("Riêng", "rieng@", "0912345678", "contact", "Số 7", "Đèn"):
        assert private not in bodies


@pytest.mark.django_db(transaction=True)
def test_run_published_is_sent_when_a_run_is_published(sipas: Any, django_user_model: Any) -> None:
    with receiver() as hook:
        owner = staff(django_user_model, "a")
        subscription = Subscription.objects.create(
            owner=owner, url=hook.url, events=["run.published"]
        )
        survey_round = Round.objects.get(code="demo")
        run = RunFactory(round=survey_round, status=Run.Status.COMPUTED, response_count=7)
        publish_run(run_id=run.pk)
        [payload] = hook.verified(subscription.secret)
    assert payload["type"] == "run.published"
    assert payload["data"] == {
        "run": run.pk,
        "round": "demo",
        "published_at": payload["data"]["published_at"],
        "responses": 7,
    }
    assert payload["data"]["published_at"]


# --- Retries and disabling -----------------------------------------------------------------


def test_a_receiver_failing_three_times_gets_the_event_once_more(
    django_user_model: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Retries without a worker: the first attempt at commit, then ``deliver_webhooks``."""
    with receiver(statuses=[500, 503, 429]) as hook:
        owner = staff(django_user_model, "a")
        sub = Subscription.objects.create(owner=owner, url=hook.url, events=["petition.created"])
        make_unit()
        make_category("road")
        with django_capture_on_commit_callbacks(execute=True):
            submit("road", "T01")
        for _ in range(5):
            services.deliver_due_now()
        payloads = hook.verified(sub.secret)
    assert len(payloads) == 4 and len({r.headers["webhook-id"] for r in hook.requests}) == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 4, 204)
    log = list(delivery.log.values_list("number", "status_code", "succeeded"))
    assert log == [(1, 500, False), (2, 503, False), (3, 429, False), (4, 204, True)]


def test_a_subscription_failing_every_attempt_is_disabled_and_its_owner_told(
    django_user_model: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 2
    make_unit()
    make_category("road")
    with receiver(default=500) as hook:
        owner = staff(django_user_model, "owner")
        sub = Subscription.objects.create(owner=owner, url=hook.url, events=["petition.created"])
        for _ in range(2):
            with django_capture_on_commit_callbacks(execute=True):
                submit("road", "T01")
            with django_capture_on_commit_callbacks(execute=True):
                services.deliver_due_now()
        sub.refresh_from_db()
        assert not sub.is_active and sub.disabled_at is not None
        assert sub.consecutive_failures == 2 and sub.disabled_reason
        assert len(hook.requests) == 4  # two events, two attempts each
        [message] = mail.outbox
        assert message.to == ["owner@example.gov.vn"] and hook.url in message.body
        with django_capture_on_commit_callbacks(execute=True):
            submit("road", "T01")
        assert len(hook.requests) == 4 and Delivery.objects.count() == 2  # nothing more

        # Activated again, it starts from a clean count.
        answer = signed_in(owner).patch(
            f"{URL}{sub.pk}/", {"is_active": True}, content_type="application/json"
        )
        assert answer.json()["is_active"] is True and answer.json()["consecutive_failures"] == 0


# --- Admin ---------------------------------------------------------------------------------


def test_the_admin_shows_the_secret_once_and_sends_a_test_event(
    django_user_model: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = signed_in(staff(django_user_model, "analyst"))
    with receiver() as hook:
        added = client.post(
            "/admin/webhooks/subscription/add/",
            {"url": hook.url, "events": ["run.published", "petition.created"], "is_active": "on"},
            follow=True,
        )
        assert added.status_code == 200
        sub = Subscription.objects.get()
        assert sub.owner.username == "analyst" and sub.events == [
            "run.published",
            "petition.created",
        ]
        assert sub.secret in added.content.decode()
        page = client.get(f"/admin/webhooks/subscription/{sub.pk}/change/").content.decode()
        assert sub.secret not in page and "send-test-event" in page
        assert client.get(f"/admin/webhooks/subscription/{sub.pk}/send-test/").status_code == 405
        with django_capture_on_commit_callbacks(execute=True):
            sent = client.post(f"/admin/webhooks/subscription/{sub.pk}/send-test/", follow=True)
        assert sent.status_code == 200
        [payload] = hook.verified(sub.secret)
        assert payload["type"] == "webhook.test"
        log = client.get(f"/admin/webhooks/delivery/{Delivery.objects.get().pk}/change/")
        assert log.status_code == 200 and "204" in log.content.decode()

    refused = client.post(
        "/admin/webhooks/subscription/add/",
        {"url": "http://127.0.0.1/", "events": ["run.published"], "include_answers": "on"},
    )
    assert refused.status_code == 200 and Subscription.objects.count() == 1
    assert "include_answers" in json.dumps(list(refused.context["adminform"].form.errors))


def test_a_delivery_the_broker_refused_stays_pending_and_the_sweep_sends_it(
    django_user_model: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from kombu.exceptions import OperationalError

    from webhooks import tasks

    make_unit()
    make_category("road")

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with receiver() as hook:
        owner = staff(django_user_model, "a")
        sub = Subscription.objects.create(owner=owner, url=hook.url, events=["petition.created"])
        with monkeypatch.context() as patched:
            patched.setattr(tasks.deliver, "apply_async", broker_down)
            with django_capture_on_commit_callbacks(execute=True):
                petition = submit("road", "T01")  # stored all the same
        delivery = Delivery.objects.get()
        assert (delivery.status, delivery.attempts, hook.requests) == ("pending", 0, [])
        services._BROKER_DOWN_UNTIL[0] = 0.0  # the broker is back
        later = delivery.queued_at + dt.timedelta(seconds=61)
        assert services.queue_due_deliveries(now=later) == [delivery.pk]
        [payload] = hook.verified(sub.secret)
    assert payload["data"]["tracking_code"] == petition.tracking_code
    assert Delivery.objects.get().status == "delivered"


def test_old_events_are_deleted_once_no_delivery_is_pending(django_user_model: Any) -> None:
    owner = staff(django_user_model, "a")
    sub = Subscription.objects.create(owner=owner, url="http://127.0.0.1:9/", events=["x"])
    old, pending, recent = (
        Event.objects.create(type="response.created", data={}, answers={"S01": 4}) for _ in range(3)
    )
    Event.objects.filter(pk__in=[old.pk, pending.pk]).update(
        created_at=old.created_at - dt.timedelta(days=31)
    )
    Delivery.objects.create(event=old, subscription=sub, status="delivered")
    Delivery.objects.create(event=pending, subscription=sub, status="pending")
    Delivery.objects.create(event=recent, subscription=sub, status="failed")
    assert services.purge_old_events() == 1
    assert set(Event.objects.values_list("pk", flat=True)) == {pending.pk, recent.pk}
    assert Delivery.objects.count() == 2


def test_paper_forms_imported_send_one_event_each(
    sipas: Any, django_user_model: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    clerk = staff(django_user_model, "clerk", view_responses=True)
    clerk.user_permissions.add(Permission.objects.get(codename="import_paper_forms"))
    with receiver() as hook:
        secret = subscribe(
            signed_in(clerk), hook.url, ["response.created"], include_answers=True
        ).json()["secret"]
        content = csv_bytes([row("F-1"), row("F-2", S01="2"), row("F-3")])
        with django_capture_on_commit_callbacks(execute=True):
            upload = signed_in(clerk).post(
                "/api/v1/paper-imports/",
                {"round": "demo", "file": SimpleUploadedFile("forms.csv", content)},
            )
        assert upload.status_code == 201, upload.content
        payloads = hook.verified(secret)
    assert [p["data"]["channel"] for p in payloads] == ["paper"] * 3
    assert sorted(p["data"]["answers"]["S01"] for p in payloads) == [2, 4, 4]
    receipts = {p["data"]["receipt"] for p in payloads}
    assert receipts == set(
        Response.objects.filter(channel="paper").values_list("receipt", flat=True)
    )
