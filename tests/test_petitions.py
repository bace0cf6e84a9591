"""Petitions: submitting, deadlines in working days, the handling workflow and who may do
what (citizen with the code, staff of agency A, staff of agency B, admin), tracking without
personal data, rating once after the answer, reminders and the indicators for scoring."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone, translation

from feedback.models import CalendarDay, Petition, PetitionEvent
from feedback.petitions import selectors, services
from feedback.petitions.calendar import add_working_days, is_working_day
from tests.support.petitions import (
    PASSWORD,
    api_token,
    make_category,
    make_staff,
    make_unit,
    submit,
    two_agency_desk,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
CONTACT = {
    "contact_name": "Nguyễn Văn Riêng",
    "contact_email": "rieng.nguyen@example.vn",
    "contact_phone": "0912 345 678",
    "contact_consent": True,
}


@pytest.fixture
def world(db: None) -> dict[str, Any]:
    """One unit with agencies A and B, their staff, a unit coordinator and an admin."""
    from django.contrib.auth import get_user_model

    desk = two_agency_desk()
    admin = get_user_model().objects.create_superuser("admin", "admin@example.org", PASSWORD)
    return desk | {
        "admin": admin,
        "pa": submit("road", "T01", "SO-A", **CONTACT),
        "pb": submit("road", "T01", "SO-B", description="Ổ gà trên đường 3."),
        "p_unit": submit("road", "T01", "", description="Không biết cơ quan nào."),
    }


def api(user: Any = None) -> Client:
    if user is None:
        return Client()
    return Client(HTTP_AUTHORIZATION=f"Token {api_token(user)}")


def move(user: Any, petition: Petition, **body: Any) -> Any:
    return api(user).post(
        f"/api/v1/petitions/{petition.pk}/transitions/", body, content_type="application/json"
    )


# --- Deadlines ---------------------------------------------------------------------------


def test_deadline_skips_the_weekend() -> None:
    friday = date(2026, 3, 6)
    assert add_working_days(friday, 1) == date(2026, 3, 9)
    assert add_working_days(friday, 5) == date(2026, 3, 13)
    assert add_working_days(friday, 6) == date(2026, 3, 16)
    assert add_working_days(friday, 0) == friday


@pytest.mark.django_db
def test_deadline_skips_tet_2026() -> None:
    # Tết Bính Ngọ: 16–20 February 2026 off, framed by two weekends.
    assert add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 23)
    assert add_working_days(date(2026, 2, 13), 3) == date(2026, 2, 25)
    assert not is_working_day(date(2026, 2, 18))


@pytest.mark.django_db
def test_deadline_skips_30_april_1_may_and_hung_kings_day() -> None:
    assert add_working_days(date(2026, 4, 29), 2) == date(2026, 5, 5)
    # Giỗ Tổ Hùng Vương falls on Sunday 26 April 2026 and is taken on Monday 27.
    assert add_working_days(date(2026, 4, 24), 1) == date(2026, 4, 28)


@pytest.mark.django_db
def test_deadline_skips_national_day() -> None:
    # 2/9/2026: 31 August to 2 September off.
    assert add_working_days(date(2026, 8, 28), 1) == date(2026, 9, 3)


@pytest.mark.django_db
def test_staff_table_adds_days_off_and_make_up_saturdays() -> None:
    assert add_working_days(date(2026, 4, 29), 2) == date(2026, 5, 5)
    CalendarDay.objects.create(day=date(2026, 5, 4), is_working_day=False, name="nghỉ bù")
    assert add_working_days(date(2026, 4, 29), 2) == date(2026, 5, 6)

    assert add_working_days(date(2026, 5, 8), 1) == date(2026, 5, 11)
    CalendarDay.objects.create(day=date(2026, 5, 9), is_working_day=True, name="làm bù")
    assert add_working_days(date(2026, 5, 8), 1) == date(2026, 5, 9)
    assert is_working_day(date(2026, 5, 9))


@pytest.mark.django_db
def test_staff_table_overrides_a_public_holiday() -> None:
    CalendarDay.objects.create(day=date(2026, 4, 30), is_working_day=True, name="trực")
    assert add_working_days(date(2026, 4, 29), 1) == date(2026, 4, 30)


def test_submitted_petition_gets_the_category_deadline_in_working_days(world) -> None:
    make_category("fast", days=2)
    petition = submit("fast", "T01")
    assert petition.deadline == add_working_days(timezone.localdate(), 2)
    assert petition.deadline > timezone.localdate()
    assert petition.status == Petition.Status.RECEIVED
    assert list(petition.events.values_list("status", "actor")) == [("received", None)]


def test_open_petition_past_its_deadline_is_flagged_overdue(world) -> None:
    pa = world["pa"]
    assert not pa.is_overdue
    Petition.objects.filter(pk=pa.pk).update(deadline=timezone.localdate() - timedelta(days=1))
    pa.refresh_from_db()
    assert pa.is_overdue
    overdue = selectors.with_overdue(Petition.objects.all()).filter(overdue=True)
    assert list(overdue.values_list("pk", flat=True)) == [pa.pk]
    listed = api(world["staff_a"]).get("/api/v1/petitions/?overdue=true").json()
    assert [p["tracking_code"] for p in listed["results"]] == [pa.tracking_code]
    assert listed["results"][0]["overdue"] is True
    assert api(world["staff_a"]).get("/api/v1/petitions/?overdue=false").json()["count"] == 0


# --- Submitting --------------------------------------------------------------------------


def form_data(**extra: Any) -> dict[str, str]:
    data = {
        "category": "road",
        "unit": "T01",
        "agency": "SO-A",
        "description": "Cống thoát nước bị tắc.",
        "address": "Ngõ 5, phường Một",
        "client_id": str(uuid.uuid4()),
        "website": "",
    }
    return data | extra


def test_web_form_files_a_petition_and_shows_its_tracking_page(world) -> None:
    client = Client()
    page = client.get("/petitions/new/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert 'for="id_description"' in page.text and "Sở A" in page.text
    data = form_data(contact_email="a@example.vn", contact_consent="yes")
    answer = client.post("/petitions/new/", data)
    petition = Petition.objects.get(client_id=data["client_id"])
    assert answer.status_code == 302
    assert answer["Location"] == f"/petitions/track/{petition.tracking_code}/?new=1"
    assert (petition.channel, petition.agency, petition.contact_email) == (
        "web",
        world["a"],
        "a@example.vn",
    )
    again = client.post("/petitions/new/", data)  # a double click
    assert again["Location"] == answer["Location"]
    assert Petition.objects.filter(client_id=data["client_id"]).count() == 1


def test_web_form_needs_consent_to_keep_contact_details(world) -> None:
    before = Petition.objects.count()
    with translation.override("en"):
        page = Client().post(
            "/petitions/new/", form_data(contact_phone="0912345678"), HTTP_ACCEPT_LANGUAGE="en"
        )
    assert page.status_code == 400
    assert 'id="err-contact_consent"' in page.text
    assert 'href="#id_contact_consent"' in page.text
    assert Petition.objects.count() == before


def test_web_form_reports_each_wrong_field(world) -> None:
    page = Client().post("/petitions/new/", form_data(category="nope", description="  "))
    assert page.status_code == 400
    assert 'id="err-category"' in page.text and 'id="err-description"' in page.text
    assert 'aria-invalid="true"' in page.text


def test_web_form_honeypot_stores_nothing(world) -> None:
    before = Petition.objects.count()
    page = Client().post("/petitions/new/", form_data(website="http://spam.example"))
    assert page.status_code == 400
    assert Petition.objects.count() == before


def test_api_submission_is_idempotent_per_client_id(world) -> None:
    body = {"category": "road", "unit": "T01", "description": "Rác thải chưa được thu gom."}
    body["client_id"] = str(uuid.uuid4())
    first = api().post("/api/v1/petitions/", body, content_type="application/json")
    assert first.status_code == 201, first.content
    code = first.json()["tracking_code"]
    assert first.json()["deadline"] == add_working_days(timezone.localdate(), 10).isoformat()
    repeat = api().post("/api/v1/petitions/", body, content_type="application/json")
    assert (repeat.status_code, repeat.json()["tracking_code"]) == (200, code)
    other = api().post(
        "/api/v1/petitions/", body | {"description": "khác"}, content_type="application/json"
    )
    assert other.status_code == 409
    assert other.json()["code"] == "client_id_conflict"
    assert Petition.objects.get(tracking_code=code).channel == "api"


def test_api_names_the_wrong_fields(world) -> None:
    body = {
        "category": "nope",
        "unit": "T01",
        "agency": "SO-X",
        "description": "x" * 4001,
        "lat": "10.5",
    }
    answer = api().post("/api/v1/petitions/", body, content_type="application/json")
    assert answer.status_code == 400
    assert set(answer.json()["fields"]) == {"category", "agency", "description", "long"}


def test_api_refuses_a_body_over_the_size_limit(world, settings) -> None:
    settings.FEEDBACK_MAX_BODY_BYTES = 2000
    body = {"category": "road", "unit": "T01", "description": "x" * 3000}
    answer = api().post("/api/v1/petitions/", body, content_type="application/json")
    assert answer.status_code == 413
    assert answer.json()["code"] == "request_too_large"


def test_api_and_web_submissions_share_one_rate_limit_per_client(world, settings) -> None:
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] | {"petition-submit": "2/hour"}
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"DEFAULT_THROTTLE_RATES": rates}
    body = {"category": "road", "unit": "T01", "description": "Lần gửi."}
    ip = {"REMOTE_ADDR": "203.0.113.9"}
    assert api().post("/api/v1/petitions/", body, "application/json", **ip).status_code == 201
    assert Client().post("/petitions/new/", form_data(), **ip).status_code == 302
    assert api().post("/api/v1/petitions/", body, "application/json", **ip).status_code == 429
    assert Client().post("/petitions/new/", form_data(), **ip).status_code == 429
    other = {"REMOTE_ADDR": "203.0.113.10"}
    assert api().post("/api/v1/petitions/", body, "application/json", **other).status_code == 201


def test_api_honeypot_is_refused(world) -> None:
    body = {"category": "road", "unit": "T01", "description": "x", "website": "spam"}
    answer = api().post("/api/v1/petitions/", body, content_type="application/json")
    assert answer.status_code == 400
    assert "website" in answer.json()["fields"]


def test_categories_are_listed_in_the_language_asked(world) -> None:
    answer = api().get("/api/v1/petition-categories/", HTTP_ACCEPT_LANGUAGE="en")
    assert answer.json() == [
        {
            "code": "road",
            "name": "Kind road",
            "description": "",
            "group": "",
            "deadline_days": 10,
        }
    ]


# --- Handling and permissions ------------------------------------------------------------


def codes(answer: Any) -> set[str]:
    return {p["tracking_code"] for p in answer.json()["results"]}


def test_each_role_lists_only_its_petitions(world) -> None:
    pa, pb, pu = world["pa"], world["pb"], world["p_unit"]
    assert codes(api(world["staff_a"]).get("/api/v1/petitions/")) == {pa.tracking_code}
    assert codes(api(world["staff_b"]).get("/api/v1/petitions/")) == {pb.tracking_code}
    everything = {pa.tracking_code, pb.tracking_code, pu.tracking_code}
    assert codes(api(world["coordinator"]).get("/api/v1/petitions/")) == everything
    assert codes(api(world["admin"]).get("/api/v1/petitions/")) == everything
    assert api().get("/api/v1/petitions/").status_code in (401, 403)


def test_staff_without_the_permissions_see_nothing(world) -> None:
    lurker = make_staff("lurker", unit=world["unit"], agency=world["a"], grouped=False)
    assert api(lurker).get("/api/v1/petitions/").json()["count"] == 0
    assert api(lurker).get(f"/api/v1/petitions/{world['pa'].pk}/").status_code == 404


def test_staff_of_another_agency_cannot_read_or_move_a_petition(world) -> None:
    pa = world["pa"]
    read = api(world["staff_b"]).get(f"/api/v1/petitions/{pa.pk}/")
    assert read.status_code == 404
    assert CONTACT["contact_email"] not in read.text
    moved = move(world["staff_b"], pa, status="assigned")
    assert moved.status_code == 404
    pa.refresh_from_db()
    assert pa.status == "received" and pa.events.count() == 1


def test_staff_read_contact_details_of_their_agency_petitions(world) -> None:
    detail = api(world["staff_a"]).get(f"/api/v1/petitions/{world['pa'].pk}/").json()
    assert detail["contact_email"] == CONTACT["contact_email"]
    assert detail["contact_phone"] == CONTACT["contact_phone"]


def test_workflow_records_who_and_when_at_each_step(world) -> None:
    pa, staff_a = world["pa"], world["staff_a"]
    assert move(staff_a, pa, status="assigned", assignee=staff_a.pk).status_code == 200
    assert move(staff_a, pa, status="in_progress", note="đã đi kiểm tra").status_code == 200
    missing = move(staff_a, pa, status="resolved")
    assert missing.status_code == 400 and "reply" in missing.json()["fields"]
    done = move(staff_a, pa, status="resolved", reply="Đã sửa đèn ngày 3/3.")
    assert done.status_code == 200, done.content
    pa.refresh_from_db()
    assert (pa.status, pa.reply, pa.assignee) == ("resolved", "Đã sửa đèn ngày 3/3.", staff_a)
    assert pa.closed_at is not None
    events = list(PetitionEvent.objects.filter(petition=pa).order_by("at", "id"))
    assert [(e.previous_status, e.status) for e in events] == [
        ("", "received"),
        ("received", "assigned"),
        ("assigned", "in_progress"),
        ("in_progress", "resolved"),
    ]
    assert [e.actor for e in events[1:]] == [staff_a] * 3
    assert all(a.at <= b.at for a, b in itertools.pairwise(events))
    assert events[2].note == "đã đi kiểm tra"
    history = done.json()["history"]
    assert [h["actor"] for h in history] == [None, "staff-a", "staff-a", "staff-a"]


def test_steps_cannot_be_skipped_and_closed_petitions_stay_closed(world) -> None:
    pa, staff_a = world["pa"], world["staff_a"]
    skipped = move(staff_a, pa, status="resolved", reply="xong")
    assert skipped.status_code == 409
    assert skipped.json()["code"] == "transition_not_allowed"
    assert move(staff_a, pa, status="rejected").json()["fields"].keys() == {"reason"}
    assert move(staff_a, pa, status="rejected", reason="Không thuộc thẩm quyền.").status_code == 200
    assert move(staff_a, pa, status="assigned").status_code == 409
    pa.refresh_from_db()
    assert (pa.status, pa.rejection_reason) == ("rejected", "Không thuộc thẩm quyền.")


def test_only_a_coordinator_routes_between_agencies(world) -> None:
    pa, pu = world["pa"], world["p_unit"]
    refused = move(world["staff_a"], pa, status="assigned", agency="SO-B")
    assert refused.status_code == 403
    assert refused.json()["code"] == "routing_not_allowed"
    no_agency = move(world["coordinator"], pu, status="assigned")
    assert no_agency.status_code == 400 and "agency" in no_agency.json()["fields"]
    routed = move(world["coordinator"], pu, status="assigned", agency="SO-A")
    assert routed.status_code == 200
    assert world["pa"].tracking_code in codes(api(world["staff_a"]).get("/api/v1/petitions/"))
    assert pu.tracking_code in codes(api(world["staff_a"]).get("/api/v1/petitions/"))
    assert pu.tracking_code not in codes(api(world["staff_b"]).get("/api/v1/petitions/"))
    by_admin = move(world["admin"], pu, status="assigned", agency="SO-B")
    assert by_admin.status_code == 200
    assert pu.tracking_code in codes(api(world["staff_b"]).get("/api/v1/petitions/"))


def test_assignee_must_handle_the_agency(world) -> None:
    answer = move(world["staff_a"], world["pa"], status="assigned", assignee=world["staff_b"].pk)
    assert answer.status_code == 400
    assert "assignee" in answer.json()["fields"]


def test_unknown_status_and_petition_answer_4xx(world) -> None:
    assert move(world["admin"], world["pa"], status="done").status_code == 400
    gone = api(world["admin"]).post(
        "/api/v1/petitions/999999999/transitions/",
        {"status": "assigned"},
        content_type="application/json",
    )
    assert gone.status_code == 404
    assert api().post(
        f"/api/v1/petitions/{world['pa'].pk}/transitions/", {"status": "assigned"}
    ).status_code in (401, 403)


# --- Admin -------------------------------------------------------------------------------


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_admin_lists_and_opens_only_the_agency_petitions(world) -> None:
    pa, pb = world["pa"], world["pb"]
    page = logged_in(world["staff_b"]).get("/admin/feedback/petition/")
    assert page.status_code == 200
    assert pb.tracking_code in page.text and pa.tracking_code not in page.text
    other = logged_in(world["staff_b"]).get(f"/admin/feedback/petition/{pa.pk}/change/")
    assert other.status_code == 302
    assert CONTACT["contact_email"] not in other.text
    own = logged_in(world["staff_a"]).get(f"/admin/feedback/petition/{pa.pk}/change/")
    assert own.status_code == 200 and CONTACT["contact_email"] in own.text
    everything = logged_in(world["admin"]).get("/admin/feedback/petition/")
    assert pa.tracking_code in everything.text and pb.tracking_code in everything.text


def test_admin_changes_status_through_the_workflow(world) -> None:
    pa, staff_a = world["pa"], world["staff_a"]
    client = logged_in(staff_a)
    url = f"/admin/feedback/petition/{pa.pk}/change/"
    skipped = client.post(url, {"new_status": "resolved", "reply_text": "x"})
    assert skipped.status_code == 200  # the form again, with the error
    pa.refresh_from_db()
    assert pa.status == "received"
    done = client.post(url, {"new_status": "assigned", "to_agency": world["a"].pk, "note": "nhận"})
    assert done.status_code == 302
    pa.refresh_from_db()
    assert pa.status == "assigned"
    assert pa.events.last().actor == staff_a and pa.events.last().note == "nhận"
    routed = client.post(url, {"new_status": "assigned", "to_agency": world["b"].pk})
    assert routed.status_code == 200
    pa.refresh_from_db()
    assert pa.agency == world["a"]
    forbidden = logged_in(world["staff_b"]).post(url, {"new_status": "in_progress"})
    assert forbidden.status_code == 302
    pa.refresh_from_db()
    assert pa.status == "assigned"


def test_admin_shows_descriptions_escaped(world) -> None:
    petition = submit("road", "T01", "SO-A", description="<script>alert('x')</script>")
    page = logged_in(world["staff_a"]).get(f"/admin/feedback/petition/{petition.pk}/change/")
    assert "<script>alert(" not in page.text
    assert "&lt;script&gt;alert(" in page.text


# --- Tracking ----------------------------------------------------------------------------


def test_tracking_page_shows_history_and_reply_but_no_personal_data(world) -> None:
    pa = world["pa"]
    move(world["staff_a"], pa, status="assigned", note="ghi chú nội bộ")
    move(world["staff_a"], pa, status="in_progress")
    move(world["staff_a"], pa, status="resolved", reply="Đã sửa xong.")
    with translation.override("en"):
        page = Client().get(f"/petitions/track/{pa.tracking_code}/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert "Đã sửa xong." in page.text
    assert page.text.count("<li><time") == 4
    for secret in ("Nguyễn Văn Riêng", "rieng.nguyen@example.vn", "0912 345 678", "staff-a"):
        assert secret not in page.text
    assert "ghi chú nội bộ" not in page.text
    public = Client().get(f"/api/v1/petitions/track/{pa.tracking_code}/")
    assert [h["status"] for h in public.json()["history"]] == [
        "received",
        "assigned",
        "in_progress",
        "resolved",
    ]
    for secret in ("Riêng", "rieng.nguyen", "0912 345 678", "staff-a", "nội bộ"):
        assert secret not in public.text


def test_tracking_lookup_forgives_case_and_dash(world) -> None:
    code = world["pb"].tracking_code
    loose = code.replace("-", "").lower()
    answer = Client().get(f"/petitions/track/?code={loose}")
    assert answer.status_code == 302
    assert answer["Location"] == f"/petitions/track/{code}/"
    assert Client().get("/petitions/track/?code=AAAAA-AAAAA").status_code == 404
    assert Client().get("/petitions/track/AAAAA-AAAAA/").status_code == 404
    assert Client().get("/api/v1/petitions/track/AAAAA-AAAAA/").status_code == 404


def test_tracking_page_escapes_html(world) -> None:
    petition = submit("road", "T01", "SO-A", description='<img src=x onerror="alert(1)">')
    move(world["staff_a"], petition, status="rejected", reason="<b>không</b> hợp lệ")
    page = Client().get(f"/petitions/track/{petition.tracking_code}/")
    assert "<img src=x" not in page.text and "&lt;img src=x" in page.text
    assert "<b>không</b>" not in page.text and "&lt;b&gt;không&lt;/b&gt;" in page.text


# --- Rating ------------------------------------------------------------------------------


def rate(code: str, rating: Any) -> Any:
    return Client().post(
        f"/api/v1/petitions/track/{code}/rating/", {"rating": rating}, "application/json"
    )


def resolve(world: dict[str, Any], petition: Petition) -> None:
    for body in ({"status": "assigned"}, {"status": "in_progress"}):
        assert move(world["admin"], petition, **body).status_code == 200
    assert move(world["admin"], petition, status="resolved", reply="Xong.").status_code == 200


def test_rating_only_after_resolution_and_only_once(world) -> None:
    pa = world["pa"]
    early = rate(pa.tracking_code, 5)
    assert early.status_code == 409 and early.json()["code"] == "rating_not_allowed"
    resolve(world, pa)
    assert rate(pa.tracking_code, 6).status_code == 400
    first = rate(pa.tracking_code, 4)
    assert first.status_code == 200
    assert (first.json()["rating"], first.json()["can_rate"]) == (4, False)
    second = rate(pa.tracking_code, 1)
    assert second.status_code == 409
    pa.refresh_from_db()
    assert pa.rating == 4


def test_rating_through_the_tracking_page(world) -> None:
    pa = world["pa"]
    page = Client().get(f"/petitions/track/{pa.tracking_code}/")
    assert 'id="rating-form"' not in page.text
    refused = Client().post(f"/petitions/track/{pa.tracking_code}/", {"rating": "5"})
    assert refused.status_code == 400
    resolve(world, pa)
    assert 'id="rating-form"' in Client().get(f"/petitions/track/{pa.tracking_code}/").text
    done = Client().post(f"/petitions/track/{pa.tracking_code}/", {"rating": "5"})
    assert done.status_code == 302
    again = Client().post(f"/petitions/track/{pa.tracking_code}/", {"rating": "1"})
    assert again.status_code == 400
    pa.refresh_from_db()
    assert pa.rating == 5


def test_a_rejected_petition_can_be_rated_too(world) -> None:
    pb = world["pb"]
    assert move(world["staff_b"], pb, status="rejected", reason="Trùng lặp.").status_code == 200
    assert rate(pb.tracking_code, 2).status_code == 200


# --- Reminders and e-mail ----------------------------------------------------------------


def test_reminder_mails_handlers_of_petitions_near_their_deadline_once_a_day(world) -> None:
    from feedback.tasks import remind_petitions_near_deadline

    today = timezone.localdate()
    soon = add_working_days(today, 1)
    pa, pb, pu = world["pa"], world["pb"], world["p_unit"]
    Petition.objects.filter(pk__in=[pa.pk, pu.pk]).update(deadline=soon)
    Petition.objects.filter(pk=pb.pk).update(deadline=today - timedelta(days=3))
    far = submit("road", "T01", "SO-B", description="Còn lâu.")
    closed = submit("road", "T01", "SO-B", description="Đã xong.")
    resolve(world, closed)
    Petition.objects.filter(pk=closed.pk).update(deadline=soon)
    assert far.deadline > add_working_days(today, 2)
    mail.outbox.clear()

    sent = remind_petitions_near_deadline.delay().get()

    assert sent == 3
    by_recipient = {m.to[0]: m.body for m in mail.outbox}
    assert set(by_recipient) == {
        "staff-a@example.gov.vn",
        "staff-b@example.gov.vn",
        "coordinator@example.gov.vn",
    }
    assert by_recipient["staff-a@example.gov.vn"].count("\n") == 0  # one line: pa
    assert pa.tracking_code in by_recipient["staff-a@example.gov.vn"]
    assert pb.tracking_code in by_recipient["staff-b@example.gov.vn"]
    assert far.tracking_code not in by_recipient["staff-b@example.gov.vn"]
    assert closed.tracking_code not in by_recipient["staff-b@example.gov.vn"]
    assert pu.tracking_code in by_recipient["coordinator@example.gov.vn"]
    mail.outbox.clear()
    assert remind_petitions_near_deadline.delay().get() == 0
    assert mail.outbox == []


def test_reminder_goes_to_the_assignee_only(world) -> None:
    pa = world["pa"]
    second = make_staff("staff-a2", unit=world["unit"], agency=world["a"])
    assert move(world["staff_a"], pa, status="assigned", assignee=second.pk).status_code == 200
    Petition.objects.filter(pk=pa.pk).update(deadline=timezone.localdate())
    mail.outbox.clear()
    assert services.remind_petitions_near_deadline() == 1
    assert mail.outbox[0].to == ["staff-a2@example.gov.vn"]


def test_reminder_task_is_scheduled_by_beat(settings) -> None:
    from feedback.tasks import remind_petitions_near_deadline

    entry = settings.CELERY_BEAT_SCHEDULE["remind-petitions-near-deadline"]
    assert entry["task"] == remind_petitions_near_deadline.name


def test_citizen_with_consent_is_mailed_the_answer(
    world, django_capture_on_commit_callbacks
) -> None:
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        resolve(world, world["pa"])
    assert [m.to for m in mail.outbox] == [[CONTACT["contact_email"]]]
    assert f"/petitions/track/{world['pa'].tracking_code}/" in mail.outbox[0].body


def test_staff_list_is_json_with_page_counts(world) -> None:
    answer = api(world["admin"]).get("/api/v1/petitions/?status=received")
    body = json.loads(answer.content)
    assert body["count"] == 3 and len(body["results"]) == 3


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/petitions/", ["not", "an", "object"]),
        (
            "post",
            "/api/v1/petitions/",
            {"category": "road", "unit": "T01", "description": "a\x00b"},
        ),
        ("post", "/api/v1/petitions/", {"category": {}, "unit": 7, "description": None}),
        ("post", "/api/v1/petitions/", {"category": "road", "unit": "T01", "lat": "NaN"}),
        ("post", "/api/v1/petitions/", {"client_id": "x", "contact_consent": "maybe"}),
        ("get", "/api/v1/petitions/99999999999999999999/", None),
        ("post", "/api/v1/petitions/99999999999999999999/transitions/", {"status": "assigned"}),
        ("post", "/api/v1/petitions/track/%00%00/rating/", {"rating": 3}),
        ("post", "/api/v1/petitions/track/AAAAA-AAAAA/rating/", {"rating": "5; drop"}),
        ("get", "/api/v1/petitions/track/" + "Z" * 300 + "/", None),
        ("get", "/api/v1/petitions/?page=999&status=bogus&overdue=maybe", None),
        ("get", "/open311/v2/requests.json?service_request_id=1,x&status=open", None),
        ("get", "/open311/v2/requests.json?start_date=2026-13-45T99:00:00Z", None),
        ("get", "/open311/v2/requests/99999999999999999999999.json", None),
        ("get", "/open311/v2/services/%00.json", None),
    ],
)
def test_odd_input_gets_a_4xx_never_a_5xx(world, method: str, path: str, body: Any) -> None:
    client = api(world["admin"])
    if method == "get":
        answer = client.get(path)
    else:
        answer = client.post(path, json.dumps(body), content_type="application/json")
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.content[:300])


def test_open311_post_with_a_nul_byte_or_huge_body_is_refused(world, settings) -> None:
    from django.contrib.auth.models import Permission

    world["staff_a"].user_permissions.add(Permission.objects.get(codename="submit_petitions"))
    key = api_token(world["staff_a"])
    fields = {"api_key": key, "service_code": "road", "jurisdiction_id": "T01"}
    odd = Client().post("/open311/v2/requests.json", fields | {"description": "\x00\x00"})
    assert odd.status_code == 400
    settings.FEEDBACK_MAX_BODY_BYTES = 500
    huge = Client().post("/open311/v2/requests.json", fields | {"description": "x" * 600})
    assert huge.status_code == 413
    assert huge.json() == [{"code": 413, "description": "request body too large"}]


def test_web_form_with_a_nul_byte_reports_the_field(world) -> None:
    page = Client().post("/petitions/new/", form_data(address="phố\x00Huế"))
    assert page.status_code == 400
    assert 'id="err-address"' in page.text
    assert Client().get("/petitions/track/?code=%00").status_code == 400  # names the parameter


def test_staff_list_takes_the_same_queries_for_3_or_13_petitions(
    world, django_assert_num_queries
) -> None:
    client = api(world["admin"])
    client.get("/api/v1/petitions/")  # warm up: content types, permissions
    # The token, the count, the page, its events: four, however long the page.
    with django_assert_num_queries(4):
        assert client.get("/api/v1/petitions/").json()["count"] == 3
    for n in range(10):
        petition = submit("road", "T01", "SO-A", description=f"số {n}")
        move(world["admin"], petition, status="assigned")
    with django_assert_num_queries(4):
        assert client.get("/api/v1/petitions/").json()["count"] == 13


def test_admin_filters_overdue_petitions(world) -> None:
    pa, pb = world["pa"], world["pb"]
    Petition.objects.filter(pk=pb.pk).update(deadline=timezone.localdate() - timedelta(days=1))
    page = logged_in(world["admin"]).get("/admin/feedback/petition/?overdue=yes")
    assert pb.tracking_code in page.text and pa.tracking_code not in page.text


def test_a_handler_row_cannot_name_an_agency_of_another_unit(world) -> None:
    from django.core.exceptions import ValidationError

    from feedback.models import PetitionStaff

    elsewhere = make_unit("T09", "Tỉnh Xa")
    row = PetitionStaff(user=world["staff_a"], unit=elsewhere, agency=world["b"])
    with pytest.raises(ValidationError) as problem:
        row.full_clean()
    assert "agency" in problem.value.message_dict
    PetitionStaff(user=world["staff_a"], unit=world["unit"], agency=world["b"]).full_clean()
