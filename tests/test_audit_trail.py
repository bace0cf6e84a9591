"""Audit trail (audit/, django-auditlog): who changed what, when, before and after; seen by
superusers only in the admin, filterable, exported as CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.utils import timezone

from audit.context import as_system
from feedback.models import Response
from scoring import services, tasks
from scoring.margins import replace_margins
from scoring.models import Run
from surveys.models import QuestionnaireVersion, Round
from surveys.services import start_draft
from tests.support.processes import follow
from tests.support.responses import post_responses
from tests.support.review import field_client, review, reviewer_client

pytestmark = pytest.mark.django_db
AUDIT = "/admin/auditlog/logentry/"


def entries_of(model: type, pk: Any = None) -> list[LogEntry]:
    found = LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(model))
    if pk is not None:
        found = found.filter(object_pk=str(pk))
    return list(found.select_related("actor").order_by("timestamp", "pk"))


def csv_of(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def superuser_client(django_user_model: Any) -> Client:
    root = django_user_model.objects.create_superuser("root", "root@example.org", "x")
    browser = Client()
    browser.force_login(root)
    return browser


def test_the_audit_trail_shows_who_excluded_a_response(
    sipas: Any, client: Client, django_user_model: Any
) -> None:
    """A reviewer excludes a response with the admin action; a superuser finds in the audit
    trail (the admin page, filtered by model and object) who did it, before and after."""
    post_responses(client, 2)
    target = Response.objects.order_by("pk").first()
    reviewer = django_user_model.objects.create_user("mai", password="x", is_staff=True)
    reviewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_response", "review_response"])
    )
    browser = Client()
    browser.force_login(reviewer)
    done = browser.post(
        "/admin/feedback/response/",
        {
            "action": "review_responses",
            "_selected_action": [target.pk],
            "apply": "1",
            "state": "excluded",
            "reason": "fraud",
            "note": "phiếu giả",
        },
    )
    assert done.status_code == 302
    [entry] = entries_of(Response, target.pk)
    assert entry.actor == reviewer and entry.action == LogEntry.Action.UPDATE
    assert entry.changes["review_state"] == ["accepted", "excluded"]
    assert entry.changes["review_reason"] == ["", "fraud"]

    root = superuser_client(django_user_model)
    content_type = ContentType.objects.get_for_model(Response).pk
    page = root.get(AUDIT, {"content_type__id__exact": content_type, "object_pk": target.pk})
    assert page.status_code == 200
    html = page.content.decode()
    assert "mai" in html and target.receipt in html and "review_state" in html
    detail = root.get(f"{AUDIT}{entry.pk}/change/").content.decode()
    assert "excluded" in detail and "accepted" in detail and "mai" in detail
    # by user, and by date
    by_user = root.get(AUDIT, {"actor": reviewer.pk}).content.decode()
    assert target.receipt in by_user
    other = root.get(AUDIT, {"actor": "system"}).content.decode()
    assert target.receipt not in other
    day = timezone.localtime(entry.timestamp)
    dated = {"timestamp__year": day.year, "timestamp__month": day.month, "timestamp__day": day.day}
    today = root.get(AUDIT, dated)
    assert target.receipt in today.content.decode()


def test_an_api_review_is_recorded_with_the_token_user(sipas: Any, client: Client) -> None:
    post_responses(client, 1)
    target = Response.objects.get()
    hoa, binh = reviewer_client("hoa"), reviewer_client("binh")
    assert review(hoa, target.receipt, state="excluded", reason="test").status_code == 200
    assert review(binh, target.receipt, state="accepted").status_code == 200
    entries = entries_of(Response, target.pk)
    assert [(e.actor.username, e.changes["review_state"]) for e in entries] == [
        ("hoa", ["accepted", "excluded"]),
        ("binh", ["excluded", "accepted"]),
    ]
    assert entries[0].additional_data["path"] == f"/api/v1/responses/{target.receipt}/review/"
    assert Response.objects.filter(pk=target.pk).exists()


def test_non_superusers_cannot_see_the_audit_trail(sipas: Any, django_user_model: Any) -> None:
    staff = django_user_model.objects.create_user("nam", password="x", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="auditlog"))
    browser = Client()
    browser.force_login(staff)
    assert browser.get(AUDIT).status_code == 403
    assert browser.get(AUDIT + "export.csv").status_code == 403
    assert "auditlog" not in browser.get("/admin/").content.decode()
    anonymous = Client().get(AUDIT + "export.csv")
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]


def test_the_csv_export_holds_the_filtered_entries_with_before_and_after(
    sipas: Any, django_user_model: Any
) -> None:
    """Changes to a round, its margins, a new draft version and a user's permissions; the
    export of the round's entries holds them, with who, when, before and after."""
    survey_round = Round.objects.get(code="demo")
    root = superuser_client(django_user_model)
    with as_system("test: round change"):
        survey_round.name_vi = "=HYPERLINK(1)"
        survey_round.save()
        replace_margins(
            round_code="demo", data="unit,dimension,category,population\n19,area,do_thi,10\n"
        )
        draft = start_draft(version_id=survey_round.version_id)
        user = django_user_model.objects.create_user("lan", password="x")
        user.user_permissions.add(Permission.objects.get(codename="review_response"))

    round_type = ContentType.objects.get_for_model(Round).pk
    rows = csv_of(root.get(AUDIT + "export.csv", {"content_type__id__exact": round_type}))
    assert {r["model"] for r in rows} == {"surveys.round"}
    named = [r for r in rows if "name_vi" in json.loads(r["changes"]) and r["action"] == "update"]
    assert len(named) == 1
    changes = json.loads(named[0]["changes"])
    assert changes["name_vi"][1] == "=HYPERLINK(1)"  # in the JSON, not at a cell's start
    assert named[0]["system"] == "test: round change" and named[0]["user"] == ""
    assert named[0]["object_pk"] == str(survey_round.pk) and named[0]["action"] == "update"
    margins = [r for r in rows if "population margins" in json.loads(r["changes"])]
    assert json.loads(margins[0]["changes"])["population margins"] == ["", "19,area,do_thi,10"]

    everything = csv_of(root.get(AUDIT + "export.csv"))
    models = {r["model"] for r in everything}
    assert {"surveys.round", "surveys.questionnaireversion", "auth.user"} <= models
    created = [r for r in everything if r["model"] == "surveys.questionnaireversion"]
    assert any(r["object_pk"] == str(draft.pk) and r["action"] == "create" for r in created)
    granted = [
        json.loads(r["changes"])
        for r in everything
        if r["model"] == "auth.user" and r["object_pk"] == str(user.pk)
    ]
    assert any("user_permissions" in c for c in granted), granted
    # The admin action exports the selected entries only.
    chosen = LogEntry.objects.filter(content_type_id=round_type).order_by("pk")[:1]
    picked = root.post(AUDIT, {"action": "export_csv", "_selected_action": [chosen[0].pk]})
    assert len(csv_of(picked)) == 1
    assert QuestionnaireVersion.objects.filter(pk=draft.pk).exists()


def test_a_publication_by_the_worker_task_is_recorded_as_the_system(sipas: Any) -> None:
    post_responses(field_client(), 3)
    run, created = services.start_run(round_code="demo")
    assert created
    tasks.compute_and_publish.apply(args=[run.pk])
    run = Run.objects.get(pk=run.pk)
    assert run.status == Run.Status.PUBLISHED
    published = [e for e in entries_of(Run, run.pk) if "status" in (e.changes or {})]
    assert published[-1].changes["status"] == ["computed", "published"]
    assert published[-1].actor is None
    assert published[-1].additional_data["system"] == "celery:scoring.compute_and_publish"


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_publication_by_a_real_worker_is_recorded_as_its_task(
    start_worker: Any,
    demo_responses: None,
    recompute_client: Client,
) -> None:
    """A recompute asked through the API by a user, computed and published by a Celery
    worker process: the run's creation is the user's, its publication the task's."""
    start_worker()
    queued = recompute_client.post("/api/v1/rounds/demo/recompute/")
    assert queued.status_code == 202, queued.content
    body = follow(recompute_client, queued.json()["id"])
    assert body["status"] == "published", body
    entries = entries_of(Run, body["id"])
    assert entries[0].action == LogEntry.Action.CREATE
    assert entries[0].actor.username == "analyst"
    published = [e for e in entries if (e.changes or {}).get("status", [None])[-1] == "published"]
    assert len(published) == 1 and published[0].actor is None
    assert published[0].additional_data["system"] == "celery:scoring.compute_and_publish"


def test_a_petition_is_tracked_without_its_citizens_contact_details() -> None:
    from feedback.models import Petition
    from tests.support.petitions import make_category, make_unit, submit

    make_unit()
    make_category()
    petition = submit(
        "road",
        "T01",
        contact_name="Nguyễn Văn An",
        contact_phone="0912345678",
        contact_email="an@example.org",
        contact_consent=True,
    )
    petition.status = "assigned"
    petition.reply = "Đã chuyển xử lý."
    petition.save()
    entries = entries_of(Petition, petition.pk)
    assert [e.action for e in entries] == [LogEntry.Action.CREATE, LogEntry.Action.UPDATE]
    assert entries[1].changes["status"][1] == "assigned"
    stored = json.dumps([e.changes for e in entries], ensure_ascii=False)
    for secret in ("Nguyễn Văn An", "0912345678", "an@example.org", "Đèn đường hỏng"):
        assert secret not in stored
