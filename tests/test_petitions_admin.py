"""Petitions handled in the admin (test client): who sees and changes what, a refused
change saves nothing and says why, the history in Vietnamese, the citizen's confirmation
e-mail on filing, and demo agencies for the units in effect after the 2025 merger."""

from __future__ import annotations

import uuid
from io import StringIO
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.core.management import call_command
from django.test import Client

from feedback.models import Petition, PetitionEvent
from surveys.models import Agency, Unit
from tests.support.petitions import (
    make_category,
    make_staff,
    submit,
    two_agency_desk,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
EMAIL = "lan.tran@example.vn"


@pytest.fixture
def desk(db: None) -> dict[str, Any]:
    """One unit with agencies A and B, a handler of each, a unit coordinator, petitions."""
    return two_agency_desk() | {
        "pa": submit("road", "T01", "SO-A", description="Đèn đường hỏng ở ngõ 12."),
        "pb": submit("road", "T01", "SO-B", description="Ổ gà trên đường 3."),
    }


def admin_client(user: Any, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def change_url(petition: Petition) -> str:
    return f"/admin/feedback/petition/{petition.pk}/change/"


def post_change(client: Client, petition: Petition, **fields: Any) -> Any:
    """A POST as the browser sends the change form: every field, blanks included."""
    data = {"new_status": "", "to_agency": "", "assign_to": "", "reply_text": "", "reason": ""}
    data |= {"note": "", "_save": "Save"}
    return client.post(change_url(petition), data | fields)


def state(petition: Petition) -> tuple[Any, ...]:
    petition.refresh_from_db()
    return (
        petition.status,
        petition.agency_id,
        petition.reply,
        PetitionEvent.objects.filter(petition=petition).count(),
        LogEntry.objects.filter(object_id=str(petition.pk)).count(),
    )


# --- Who may do what ---------------------------------------------------------------------


def test_handler_of_agency_a_neither_sees_nor_changes_a_petition_of_agency_b(desk) -> None:
    client = admin_client(desk["staff_a"])
    listing = client.get("/admin/feedback/petition/")
    assert listing.status_code == 200
    assert desk["pa"].tracking_code in listing.text
    assert desk["pb"].tracking_code not in listing.text
    assert client.get(change_url(desk["pb"])).status_code == 302  # "does not exist"
    before = state(desk["pb"])
    answer = post_change(client, desk["pb"], new_status="assigned", to_agency=desk["a"].pk)
    assert answer.status_code == 302
    assert state(desk["pb"]) == before


def test_coordinator_assigns_a_petition_to_any_agency_of_the_unit(desk) -> None:
    client = admin_client(desk["coordinator"])
    page = client.get(change_url(desk["pa"]))
    assert "Sở A (en)" in page.text and "Sở B (en)" in page.text  # both offered
    answer = post_change(
        client, desk["pa"], new_status="assigned", to_agency=desk["b"].pk, note="Thuộc Sở B."
    )
    assert answer.status_code == 302
    desk["pa"].refresh_from_db()
    assert (desk["pa"].status, desk["pa"].agency) == ("assigned", desk["b"])
    event = desk["pa"].events.last()
    assert (event.actor, event.agency, event.note) == (
        desk["coordinator"],
        desk["b"],
        "Thuộc Sở B.",
    )
    # Now B's handler has it, and A's no longer sees it.
    assert admin_client(desk["staff_b"]).get(change_url(desk["pa"])).status_code == 200
    assert admin_client(desk["staff_a"]).get(change_url(desk["pa"])).status_code == 302


def test_handler_cannot_route_to_another_agency_and_is_told_why(desk) -> None:
    before = state(desk["pa"])
    answer = post_change(
        admin_client(desk["staff_a"]), desk["pa"], new_status="assigned", to_agency=desk["b"].pk
    )
    assert answer.status_code == 200
    assert "Only the unit&#x27;s coordinators can send a petition to another agency." in (
        answer.text
    )
    assert state(desk["pa"]) == before


# --- Refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"new_status": "resolved", "reply_text": "Xong."}, "cannot become “resolved”"),
        ({"new_status": "rejected"}, "Give the reason for rejecting the petition."),
        ({"new_status": "bogus"}, "Select a valid choice."),
        ({"note": "chỉ ghi chú"}, "Choose the status to change to."),
    ],
)
def test_a_refused_change_saves_nothing_and_says_why(desk, fields, reason) -> None:
    before = state(desk["pa"])
    answer = post_change(admin_client(desk["staff_a"]), desk["pa"], **fields)
    assert answer.status_code == 200
    assert reason in answer.text
    assert state(desk["pa"]) == before


def test_another_agency_is_taken_only_with_the_assigned_status(desk) -> None:
    client = admin_client(desk["coordinator"])
    before = state(desk["pa"])
    answer = post_change(
        client, desk["pa"], new_status="rejected", reason="x", to_agency=desk["b"].pk
    )
    assert answer.status_code == 200
    assert "Choose the status “assigned” to send the petition to another agency." in answer.text
    assert state(desk["pa"]) == before


def test_resolving_without_a_reply_is_refused_and_nothing_saved(desk) -> None:
    client = admin_client(desk["staff_a"])
    for step in ("assigned", "in_progress"):
        assert post_change(client, desk["pa"], new_status=step).status_code == 302
    before = state(desk["pa"])
    answer = post_change(client, desk["pa"], new_status="resolved", note="xong")
    assert answer.status_code == 200
    assert "Write the reply the citizen will read." in answer.text
    assert state(desk["pa"]) == before


def test_a_stale_page_gets_the_reason_when_the_petition_moved_meanwhile(desk) -> None:
    client = admin_client(desk["staff_a"])
    assert post_change(client, desk["pa"], new_status="rejected", reason="Trùng.").status_code
    before = state(desk["pa"])
    assert before[0] == "rejected"
    answer = post_change(client, desk["pa"], new_status="in_progress")
    assert answer.status_code == 200
    assert "A petition that is “rejected” cannot become “in progress”." in answer.text
    assert state(desk["pa"]) == before


def test_each_status_change_is_logged_once_in_the_admin_history(desk) -> None:
    client = admin_client(desk["staff_a"])
    post_change(client, desk["pa"], new_status="assigned")
    post_change(client, desk["pa"], new_status="in_progress")
    post_change(client, desk["pa"])  # saved without a change: nothing logged
    messages = LogEntry.objects.filter(object_id=str(desk["pa"].pk)).order_by("pk")
    assert [m.change_message for m in messages] == [
        "Status changed to “assigned”.",
        "Status changed to “in progress”.",
    ]


# --- The page in Vietnamese --------------------------------------------------------------


def test_history_is_shown_with_vietnamese_labels(desk) -> None:
    client = admin_client(desk["coordinator"], language="vi")
    post_change(client, desk["pa"], new_status="assigned", to_agency=desk["b"].pk, note="Chuyển.")
    page = client.get(change_url(desk["pa"]))
    assert page.status_code == 200
    history = page.text[page.text.index('id="petition-history"') :]
    history = history[: history.index("</table>")]
    assert "Quá trình xử lý" in history
    assert "Cơ quan" in history and "Agency" not in history
    assert "đã tiếp nhận (công dân gửi)" in history
    assert "đã tiếp nhận → đã giao xử lý" in history
    assert "Sở B" in history and "Chuyển." in history
    assert "∅" not in page.text and "received" not in history


# --- Confirmation to the citizen ---------------------------------------------------------


def web_petition(**extra: str) -> dict[str, str]:
    return {
        "category": "road",
        "unit": "T01",
        "agencies_of": "T01",  # as the page's script sends it: T01's agencies were listed
        "description": "Cống thoát nước bị tắc.",
        "client_id": str(uuid.uuid4()),
        "website": "",
    } | extra


def test_web_filing_mails_a_confirmation_with_the_tracking_code(
    desk, django_capture_on_commit_callbacks
) -> None:
    mail.outbox.clear()
    data = web_petition(contact_email=EMAIL, contact_consent="yes")
    with django_capture_on_commit_callbacks(execute=True):
        answer = Client(HTTP_ACCEPT_LANGUAGE="en").post("/petitions/new/", data)
    assert answer.status_code == 302
    petition = Petition.objects.get(client_id=data["client_id"])
    assert [m.to for m in mail.outbox] == [[EMAIL]]
    assert petition.tracking_code in mail.outbox[0].subject
    assert f"/petitions/track/{petition.tracking_code}/" in mail.outbox[0].body


def test_api_filing_mails_a_confirmation_once_per_petition(
    desk, django_capture_on_commit_callbacks
) -> None:
    mail.outbox.clear()
    body = {
        "category": "road",
        "unit": "T01",
        "description": "Rác chưa thu gom.",
        "contact_email": EMAIL,
        "contact_consent": True,
        "client_id": str(uuid.uuid4()),
    }
    with django_capture_on_commit_callbacks(execute=True):
        first = Client().post("/api/v1/petitions/", body, content_type="application/json")
        repeat = Client().post("/api/v1/petitions/", body, content_type="application/json")
    assert (first.status_code, repeat.status_code) == (201, 200)
    code = first.json()["tracking_code"]
    assert [(m.to, code in m.body) for m in mail.outbox] == [([EMAIL], True)]


def test_no_confirmation_without_an_address(desk, django_capture_on_commit_callbacks) -> None:
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        answer = Client().post("/petitions/new/", web_petition())
    assert answer.status_code == 302
    assert mail.outbox == []


def test_a_mail_server_down_does_not_stop_the_filing(
    desk, settings, django_capture_on_commit_callbacks
) -> None:
    # A real SMTP backend towards a port where nothing listens: the send fails.
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},
        }
    }
    data = web_petition(contact_email=EMAIL, contact_consent="yes")
    with django_capture_on_commit_callbacks(execute=True):
        answer = Client().post("/petitions/new/", data)
    assert answer.status_code == 302
    petition = Petition.objects.get(client_id=data["client_id"])
    assert answer["Location"].startswith(f"/petitions/track/{petition.tracking_code}/")


# --- Agencies of the units in effect -----------------------------------------------------


def test_bootstrap_gives_every_current_unit_agencies(db) -> None:
    # Running it twice changes nothing: tests/test_sipas_loader.py.
    call_command("bootstrap", stdout=StringIO())
    current = Unit.objects.filter(valid_to__isnull=True)
    assert current.count() == 34
    codes = {
        unit: set(Agency.objects.filter(unit__code=unit).values_list("code", flat=True))
        for unit in current.values_list("code", flat=True)
    }
    assert all(
        found >= {f"{unit}-TTPVHCC", f"{unit}-SXD", f"{unit}-SNNMT"}
        for unit, found in codes.items()
    ), codes
    ended = Unit.objects.filter(valid_to__isnull=False)
    assert all(  # 2022 provinces keep theirs
        set(unit.agencies.values_list("code", flat=True)) == {f"{unit.code}-TTPVHCC"}
        for unit in ended
    )


def test_a_petition_in_a_merged_province_is_assigned_by_its_coordinator(db) -> None:
    from surveys.loaders import ensure_demo_agencies, load_units

    load_units()
    ensure_demo_agencies()
    make_category("road", days=10)
    merged = Unit.objects.get(code="08-2025")  # Tuyên Quang with Hà Giang
    petition = submit("road", merged.code, description="Đường vào bản sạt lở.")
    coordinator = make_staff("dieu-phoi", unit=merged, agency=None)
    construction = Agency.objects.get(unit=merged, code="08-2025-SXD")
    answer = post_change(
        admin_client(coordinator), petition, new_status="assigned", to_agency=construction.pk
    )
    assert answer.status_code == 302
    petition.refresh_from_db()
    assert (petition.status, petition.agency) == ("assigned", construction)
