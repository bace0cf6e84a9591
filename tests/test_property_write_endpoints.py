"""Property: whatever text, number or date reaches a field of a write endpoint, the answer is
a 2xx or a 4xx, never a server error, and a 400 names the field.

Hypothesis varies one field at a time (the others valid), with any Unicode text, lone
surrogates included, NUL, numbers too large for a float and dates outside the calendar.
JSON carries a lone surrogate as the escape ``\\ud800``; a form carries its UTF-8-like
bytes, which are not UTF-8. Requests go through Django's test client, in process.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote_plus

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from hypothesis import example, given, settings
from hypothesis import strategies as st

from config.input_guard import printable
from feedback.models import Invitation, ResponseDraft
from feedback.petitions import services as petitions
from surveys.models import Round, Unit
from tests.support.hostile_input import (
    FORM_VALUES,
    JSON_VALUES,
    PROPERTY,
    STRINGS,
    Raw,
    assert_handled,
    form_body,
    fresh_limits,
    post_form,
    post_json,
)
from tests.support.petitions import (
    api_token,
    make_staff,
    petition_desk,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


# --- POST /api/v1/responses/ ------------------------------------------------------------

VALID_ANSWERS: dict[str, Any] = {"A01": "nu", "A02": "35_49", "A08": "Quận 1", "Q11": "Tốt"}
VALID_ANSWERS |= {f"Q8_{n}": n in (2, 4) for n in range(1, 8)}
VALID_ANSWERS |= {f"S{n:02d}": 4 for n in range(1, 20)}
VALID_ANSWERS |= {f"P{n:02d}": 5 for n in range(1, 15) if n != 7}
VALID_ANSWERS |= {"Q2": ["internet"], "Q4": "khong_co"}
ENVELOPE = ["round", "unit", "agency", "client_id", "token", "website"]
ANSWERED = ["A01", "A08", "Q11", "S01", "Q2", "Q8_4"]


@PROPERTY
@given(field=st.sampled_from(ENVELOPE + ANSWERED), value=JSON_VALUES, key=STRINGS)
@example(field="A08", value="ab\x00cd", key="A09")
@example(field="A08", value="a\ud800b", key="A09")
@example(field="S01", value=Raw("1e400"), key="A09")
@example(field="client_id", value=False, key="A09")
def test_response_api_answers_any_field_without_a_server_error(
    client: Client, sipas, field: str, value: Any, key: str
) -> None:
    fresh_limits()
    body = {"round": "demo", "unit": "19", "client_id": str(uuid.uuid4())}
    answers = dict(VALID_ANSWERS)
    if field in ENVELOPE:
        body[field] = value
    else:
        answers[field] = value
    answers.setdefault(key, "x")  # a question code of any text
    body["answers"] = answers
    assert_handled(post_json(client, "/api/v1/responses/", body), field, printable(key))


# --- Petitions: API, web form, rating, staff transitions, Open311 -------------------------


@pytest.fixture
def petition_frame(db: None) -> dict[str, Any]:
    unit, (agency,) = petition_desk(("SO-A", "Sở A"))
    partner = get_user_model().objects.create_user("partner-app", password="x")
    partner.user_permissions.add(Permission.objects.get(codename="submit_petitions"))
    staff = make_staff("staff-a", unit=unit, agency=agency)
    return {"unit": unit, "key": api_token(partner), "staff": api_token(staff)}


PETITION = {
    "category": "road",
    "unit": "T01",
    "agency": "SO-A",
    "description": "Đèn đường hỏng ở ngõ 12.",
    "address": "Ngõ 12",
    "lat": "21.028511",
    "long": "105.804817",
    "contact_name": "Nguyễn Văn A",
    "contact_email": "a@example.vn",
    "contact_phone": "+84 912 345 678",
}


@PROPERTY
@given(field=st.sampled_from([*PETITION, "client_id", "contact_consent"]), value=JSON_VALUES)
@example(field="description", value="ab\x00cd")
@example(field="lat", value=Raw("1e400"))
@example(field="client_id", value=0)
def test_petition_api_answers_any_field_without_a_server_error(
    client: Client, petition_frame, field: str, value: Any
) -> None:
    fresh_limits()
    body = PETITION | {"contact_consent": True, "client_id": str(uuid.uuid4()), field: value}
    assert_handled(post_json(client, "/api/v1/petitions/", body), field)


@PROPERTY
@given(field=st.sampled_from([*PETITION, "client_id"]), value=FORM_VALUES)
@example(field="description", value="ab\x00cd")
@example(field="contact_email", value="a\ud800b@example.vn")
def test_petition_web_form_answers_any_field_without_a_server_error(
    client: Client, petition_frame, field: str, value: str
) -> None:
    fresh_limits()
    data = PETITION | {"contact_consent": "yes", "client_id": str(uuid.uuid4()), field: value}
    assert_handled(post_form(client, "/petitions/new/", data), field)


@PROPERTY
@given(code=STRINGS, rating=JSON_VALUES)
@example(code="ab\x00cd", rating=5)
def test_petition_rating_answers_any_code_and_rating_without_a_server_error(
    client: Client, petition_frame, code: str, rating: Any
) -> None:
    fresh_limits()
    petition = petitions.submit_petition(
        data=petitions.PetitionInput(category="road", unit="T01", description="Ổ gà."),
        channel="web",
    )[0]
    for tracking_code in (petition.tracking_code, code):
        segment = quote_plus(tracking_code.encode("utf-8", "surrogatepass"))
        path = f"/api/v1/petitions/track/{segment}/rating/"
        assert_handled(post_json(client, path, {"rating": rating}), "rating")


TRANSITION = ["status", "note", "reply", "reason", "agency", "assignee"]


@PROPERTY
@given(field=st.sampled_from(TRANSITION), value=JSON_VALUES)
@example(field="note", value="a\ud800b")
@example(field="assignee", value=10**400)
def test_petition_transitions_answer_any_field_without_a_server_error(
    petition_frame, field: str, value: Any
) -> None:
    staff = Client(HTTP_AUTHORIZATION=f"Token {petition_frame['staff']}")
    petition = petitions.submit_petition(
        data=petitions.PetitionInput(category="road", unit="T01", agency="SO-A", description="x"),
        channel="web",
    )[0]
    body = {"status": "assigned", "note": "ok", "agency": "SO-A", field: value}
    assert_handled(post_json(staff, f"/api/v1/petitions/{petition.pk}/transitions/", body), field)


OPEN311 = {
    "service_code": "road",
    "jurisdiction_id": "T01",
    "attribute[agency]": "SO-A",
    "description": "Ổ gà trước số 5.",
    "address_string": "Số 5",
    "lat": "21.0285",
    "long": "105.8048",
    "email": "a@example.vn",
    "first_name": "An",
    "phone": "0912345678",
}


@PROPERTY
@given(field=st.sampled_from([*OPEN311, "api_key"]), value=FORM_VALUES)
@example(field="lat", value="1e400")
@example(field="email", value="a\x00b@example.vn")
@example(field="description", value="a\ud800b")
def test_open311_post_answers_any_parameter_without_a_server_error(
    client: Client, petition_frame, field: str, value: str
) -> None:
    fresh_limits()
    data = OPEN311 | {"api_key": petition_frame["key"], field: value}
    assert_handled(post_form(client, "/open311/v2/requests.json", data), field)


OPEN311_FILTERS = [
    "start_date",
    "end_date",
    "status",
    "service_code",
    "service_request_id",
    "jurisdiction_id",
]


@PROPERTY
@given(field=st.sampled_from(OPEN311_FILTERS), value=FORM_VALUES)
@example(field="start_date", value="0001-01-01T00:00:00+23:59")
@example(field="end_date", value="9999-12-31T23:59:59-23:59")
def test_open311_filters_answer_any_value_without_a_server_error(
    client: Client, petition_frame, field: str, value: str
) -> None:
    query = form_body({field: value})
    assert_handled(client.get(f"/open311/v2/requests.json?{query}"), field)


# --- The web form: starting, answering, saving; invitations ---------------------------------


@PROPERTY
@given(field=st.sampled_from(["unit", "agency"]), value=FORM_VALUES)
@example(field="unit", value="1\x009")
def test_starting_the_web_form_answers_any_unit_without_a_server_error(
    client: Client, sipas, field: str, value: str
) -> None:
    fresh_limits()
    data = {"unit": "19", "agency": "", field: value}
    assert_handled(post_form(client, "/rounds/demo/", data), field)


@PROPERTY
@given(
    field=st.sampled_from(["A01", "A02", "A03", "A08", "A09", "A10", "section", "action"]),
    value=FORM_VALUES,
    action=st.sampled_from(["save", "next", "back"]),
)
@example(field="A08", value="ab\x00cd", action="save")
@example(field="A08", value="a\ud800b", action="next")
def test_a_draft_step_answers_any_field_without_a_server_error(
    client: Client, sipas, field: str, value: str, action: str
) -> None:
    fresh_limits()
    draft = ResponseDraft.objects.first()
    if draft is None:
        assert client.post("/rounds/demo/", {"unit": "19"}).status_code == 302
        draft = ResponseDraft.objects.get()
    data = {"section": "A", "action": action, "A01": "nu", "A02": "35_49", field: value}
    assert_handled(post_form(client, f"/d/{draft.token}/", data), field)


@PROPERTY
@given(text=STRINGS)
@example(text="a\x00b")
@example(text="\u202e\x00x")
@example(text="%00'")
def test_pages_named_by_any_text_answer_without_a_server_error(
    client: Client, sipas, text: str
) -> None:
    fresh_limits()
    invitation = Invitation.objects.create(
        round=Round.objects.get(code="demo"), unit=Unit.objects.get(code="19")
    )
    segment = quote_plus(text.encode("utf-8", "surrogatepass")) or "x"
    for path in ("rounds", "i", "d", "thanks", "results", "petitions/track"):
        assert_handled(client.get(f"/{path}/{segment}/"), "")
        assert_handled(post_form(client, f"/{path}/{segment}/", {"unit": "19"}), "")
    honeypot = post_form(client, f"/i/{invitation.token}/", {"website": text})
    assert_handled(honeypot, "website", "")


# --- Paper import API ------------------------------------------------------------------------


@pytest.fixture
def clerk(client: Client, sipas) -> Client:
    user = get_user_model().objects.create_user("clerk", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="import_paper_forms"))
    client.force_login(user)
    return client


def import_one_row(clerk: Client, column: str, cell: str) -> Any:
    """Upload a CSV file of one valid row whose ``column`` holds ``cell``."""
    row = {"row_id": f"F-{uuid.uuid4().hex[:8]}", "unit": "19", "weight": "1"}
    row |= {code: str(value) for code, value in VALID_ANSWERS.items()}
    row |= {f"Q8_{n}": "có" if n in (2, 4) else "không" for n in range(1, 8)} | {"Q2": "internet"}
    row[column] = cell
    lines = [list(row), list(row.values())]
    text = "\r\n".join(",".join('"' + v.replace('"', '""') + '"' for v in line) for line in lines)
    upload = SimpleUploadedFile("forms.csv", text.encode("utf-8", "surrogatepass"))
    return clerk.post("/api/v1/paper-imports/", {"round": "demo", "file": upload})


@settings(PROPERTY, max_examples=25)
@given(cell=STRINGS, column=st.sampled_from(["unit", "weight", "agency", "A08", "S01", "A01"]))
@example(cell="ab\x00cd", column="A08")
@example(cell="a\ud800b", column="A08")
@example(cell="1\x009", column="unit")
def test_paper_import_answers_any_cell_without_a_server_error(
    clerk: Client, cell: str, column: str
) -> None:
    assert_handled(import_one_row(clerk, column, cell), "file", "round")


@settings(PROPERTY, max_examples=10)
@given(cell=STRINGS)
@example(cell="F\x001")
def test_paper_import_answers_any_row_id_without_a_server_error(clerk: Client, cell: str) -> None:
    assert_handled(import_one_row(clerk, "row_id", cell), "file", "round")
