"""Input the database cannot store (NUL, lone surrogates, undecodable bytes, numbers and dates
out of range) is a 4xx naming the field, never a server error, and nothing is stored."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from feedback.models import (
    Answer,
    PaperImport,
    Petition,
    PetitionCategory,
    Response,
    ResponseDraft,
)
from tests.support.petitions import api_token, petition_desk

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
NUL = "ab\x00cd"
SURROGATE = "a\ud800b"


def sipas_answers(**changes: Any) -> dict[str, Any]:
    """A complete SIPAS answer set (a respondent who did an administrative procedure)."""
    answers: dict[str, Any] = {"A01": "nu", "A02": "35_49", "A08": "Quận 1"}
    answers |= {f"Q8_{n}": n in (2, 4) for n in range(1, 8)}
    answers |= {f"S{n:02d}": 4 for n in range(1, 20)}
    answers |= {f"P{n:02d}": 5 for n in range(1, 15) if n != 7}
    answers |= {"Q2": ["internet", "loa_xa"], "Q4": "khong_co", "Q11": "Tốt"}
    return answers | changes


def post_response(client: Client, answers: dict[str, Any], **envelope: Any) -> Any:
    body = {"round": "demo", "unit": "19", "client_id": str(uuid.uuid4()), "answers": answers}
    # json.dumps writes a lone surrogate as the escape \ud800: valid JSON that decodes to it.
    return client.post(
        "/api/v1/responses/", json.dumps(body | envelope), content_type="application/json"
    )


def field_errors(response: Any, *path: str) -> list[str]:
    """The messages of the API's 400 for the field at ``path``."""
    assert response.status_code == 400, response.content
    node = response.json()["fields"]
    for part in path:
        assert part in node, (path, response.json())
        node = node[part]
    assert node, path
    return node


class TestResponseApi:
    @pytest.mark.parametrize("text", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
    def test_an_answer_that_cannot_be_stored_is_a_400_naming_the_question(
        self, client: Client, sipas, text: str
    ) -> None:
        response = post_response(client, sipas_answers(A08=text))
        assert field_errors(response, "answers", "A08")
        assert not Response.objects.exists() and not Answer.objects.exists()

    @pytest.mark.parametrize("field", ["round", "unit", "agency", "token", "website"])
    def test_an_envelope_field_with_a_nul_or_surrogate_is_a_400_naming_it(
        self, client: Client, sipas, field: str
    ) -> None:
        for text in (NUL, SURROGATE):
            response = post_response(client, sipas_answers(), **{field: text})
            assert field_errors(response, field)
        assert not Response.objects.exists()

    def test_a_question_code_with_a_nul_is_a_400_naming_it_escaped(
        self, client: Client, sipas
    ) -> None:
        response = post_response(client, sipas_answers() | {"A\x0008": "x"})
        assert field_errors(response, "answers", "A\\u000008")
        assert not Response.objects.exists()

    def test_a_number_too_large_for_a_float_is_a_400_naming_the_question(
        self, client: Client, sipas
    ) -> None:
        body = json.dumps(
            {"round": "demo", "unit": "19", "client_id": str(uuid.uuid4()), "answers": {}}
        ).replace('"answers": {}', '"answers": {"S01": 1e400, "A02": 1' + "0" * 400 + "}")
        response = client.post("/api/v1/responses/", body, content_type="application/json")
        assert field_errors(response, "answers", "S01")
        assert not Response.objects.exists()


def start_draft(client: Client) -> str:
    started = client.post("/rounds/demo/", {"unit": "19"})
    assert started.status_code == 302, started.content
    return started["Location"]


class TestWebForm:
    def test_a_nul_in_an_answer_is_shown_beside_the_question_and_nothing_is_saved(
        self, client: Client, sipas
    ) -> None:
        path = start_draft(client)
        posted = {"section": "A", "action": "next", "A01": "nu", "A02": "35_49", "A08": NUL}
        refused = client.post(path, posted)
        assert refused.status_code == 400
        page = refused.content.decode()
        assert 'class="question has-error" id="q-A08"' in page and "NUL" in page
        assert 'id="id_A01_nu" name="A01" value="nu" checked' in page  # the rest is kept
        assert ResponseDraft.objects.get().answers == {}
        assert not Response.objects.exists()

    def test_bytes_that_are_not_utf8_are_a_400_not_a_replacement_character(
        self, client: Client, sipas
    ) -> None:
        path = start_draft(client)
        body = "section=A&action=save&A01=nu&A08=Qu%E1n%FF1"
        refused = client.post(path, body, content_type="application/x-www-form-urlencoded")
        assert refused.status_code == 400
        assert "A08" in refused.content.decode()
        assert ResponseDraft.objects.get().answers == {}

    def test_saving_a_draft_with_a_nul_keeps_the_saved_answers(self, client: Client, sipas) -> None:
        path = start_draft(client)
        saved = client.post(path, {"section": "A", "action": "save", "A01": "nu", "A08": "Q1"})
        assert saved.status_code == 302
        refused = client.post(path, {"section": "A", "action": "save", "A08": NUL})
        assert refused.status_code == 400
        assert ResponseDraft.objects.get().answers == {"A01": "nu", "A08": "Q1"}

    def test_a_nul_in_the_unit_chosen_to_start_is_a_400(self, client: Client, sipas) -> None:
        refused = client.post("/rounds/demo/", {"unit": "1\x009"})
        assert refused.status_code == 400 and "unit" in refused.content.decode()
        assert not ResponseDraft.objects.exists()


class TestPaths:
    @pytest.mark.parametrize(
        "path",
        [
            "/rounds/a%00b/",
            "/d/a%00b/",
            "/d/a%00b/saved/",
            "/i/a%00b/",
            "/thanks/%00'/",
            "/results/%E2%80%AE%00x/",
            "/results/units/a%00/",
            "/petitions/track/a%00b/",
            "/api/v1/petitions/track/a%00b/",
            "/api/v1/rounds/a%00b/questionnaire/",
            "/open311/v2/services/a%00b.json",
            "/rounds/%ED%A0%80/",  # a surrogate written in UTF-8: not UTF-8
            "/d/%FF/",
        ],
    )
    def test_a_nul_or_undecodable_byte_in_the_path_is_a_404(
        self, client: Client, db: None, path: str
    ) -> None:
        assert client.get(path).status_code == 404
        assert client.post(path, {"unit": "19"}).status_code in (403, 404)  # CSRF may come first

    def test_an_api_path_with_a_nul_answers_json(self, client: Client, db: None) -> None:
        response = client.get("/api/v1/petitions/track/a%00b/")
        assert response.status_code == 404 and response.json()["code"] == "not_found"


class TestHeadersAndCookies:
    def test_a_session_cookie_holding_a_nul_is_ignored(self, client: Client, db: None) -> None:
        client.cookies.load('sessionid="abcdefghij\\000kl"')
        assert client.get("/api/v1/me/").status_code in (200, 401, 403)
        assert client.get("/admin/").status_code == 302  # to the login page, as with no session

    def test_an_authorization_header_holding_a_nul_is_a_400_naming_it(
        self, client: Client, db: None
    ) -> None:
        response = client.get("/api/v1/me/", HTTP_AUTHORIZATION="Token ab\x00cd")
        assert field_errors(response, "Authorization")


class TestQueryStrings:
    def test_a_nul_in_a_query_value_is_a_400_naming_the_parameter(
        self, client: Client, db: None
    ) -> None:
        page = client.get("/petitions/track/", {"code": NUL})
        assert page.status_code == 400 and "code" in page.content.decode()
        api = client.get("/api/v1/rounds/", {"state": NUL})
        assert field_errors(api, "state")

    def test_undecodable_bytes_in_a_query_are_a_400_naming_the_parameter(
        self, client: Client, db: None
    ) -> None:
        response = client.get("/api/v1/rounds/?state=%FFopen")
        assert field_errors(response, "state")


@pytest.fixture
def petition_frame(db: None) -> dict[str, Any]:
    petition_desk()
    partner = get_user_model().objects.create_user("partner-app", password="x")
    partner.user_permissions.add(Permission.objects.get(codename="submit_petitions"))
    return {"key": api_token(partner)}


PETITION = {"category": "road", "unit": "T01", "description": "Đèn đường hỏng."}


class TestPetitions:
    @pytest.mark.parametrize("field", ["description", "address", "contact_name", "agency"])
    def test_the_api_refuses_a_nul_or_surrogate_naming_the_field(
        self, client: Client, petition_frame, field: str
    ) -> None:
        for text in (NUL, SURROGATE):
            body = json.dumps(PETITION | {field: text})
            response = client.post("/api/v1/petitions/", body, content_type="application/json")
            assert field_errors(response, field)
        assert not Petition.objects.exists()

    def test_the_web_form_refuses_a_nul_naming_the_field(
        self, client: Client, petition_frame
    ) -> None:
        refused = client.post("/petitions/new/", PETITION | {"description": NUL})
        assert refused.status_code == 400 and "description" in refused.content.decode()
        assert not Petition.objects.exists()


class TestOpen311:
    def post(self, client: Client, frame: dict[str, Any], **fields: str) -> Any:
        data = {"api_key": frame["key"], "service_code": "road", "jurisdiction_id": "T01"}
        data |= {"description": "Ổ gà trước số 5."}
        return client.post("/open311/v2/requests.json", data | fields)

    @pytest.mark.parametrize("lat", ["1e400", "-1e400", "1e30", "NaN", "Infinity"])
    def test_a_latitude_out_of_any_range_is_a_400_naming_lat(
        self, client: Client, petition_frame, lat: str
    ) -> None:
        response = self.post(client, petition_frame, lat=lat, long="105.8")
        assert response.status_code == 400, response.content
        assert response.json()[0]["description"].startswith("lat")
        assert not Petition.objects.exists()

    @pytest.mark.parametrize(
        "query",
        [
            {"start_date": "0001-01-01T00:00:00+23:59"},
            {"end_date": "9999-12-31T23:59:59-23:59"},
            {"start_date": "0001-01-01"},
            {"start_date": "2026-02-30T00:00:00Z"},
        ],
    )
    def test_a_date_outside_the_calendar_is_a_400_naming_it(
        self, client: Client, petition_frame, query: dict[str, str]
    ) -> None:
        response = client.get("/open311/v2/requests.json", query)
        assert response.status_code == 400, response.content
        assert response.json()[0]["description"].startswith(next(iter(query)))

    @pytest.mark.parametrize(
        ("parameter", "value"),
        [
            ("email", "a\x00b@example.vn"),
            ("description", NUL),
            ("first_name", NUL),
            ("api_key", NUL),
            ("attribute[agency]", NUL),
        ],
    )
    def test_a_nul_is_refused_naming_the_parameter_not_removed(
        self, client: Client, petition_frame, parameter: str, value: str
    ) -> None:
        response = self.post(client, petition_frame, **{parameter: value})
        assert response.status_code == 400, response.content
        assert response.json()[0]["description"].startswith(f"{parameter}:")
        assert not Petition.objects.exists()

    def test_a_nul_in_a_query_is_refused_in_the_georeport_format(
        self, client: Client, petition_frame
    ) -> None:
        for url in ("/open311/v2/services.xml", "/open311/v2/requests.xml"):
            response = client.get(url, {"jurisdiction_id": "T0\x001"})
            assert response.status_code == 400
            assert b"<errors><error><code>400</code>" in response.content
            assert b"jurisdiction_id" in response.content


class TestPaperImport:
    @pytest.fixture
    def clerk(self, client: Client, db: None) -> Client:
        user = get_user_model().objects.create_user("clerk", password="x", is_staff=True)
        user.user_permissions.add(Permission.objects.get(codename="import_paper_forms"))
        client.force_login(user)
        return client

    def test_a_text_cell_with_a_nul_rejects_its_row_naming_the_question(
        self, clerk: Client, sipas
    ) -> None:
        answers = sipas_answers(A08=NUL)
        codes = list(answers)
        cells = {True: "có", False: "không"}

        def cell(value: Any) -> str:
            return ";".join(value) if isinstance(value, list) else cells.get(value, str(value))

        lines = [["row_id", "unit", *codes], ["F-1", "19", *(cell(answers[c]) for c in codes)]]
        content = "\r\n".join(",".join(f'"{v}"' for v in line) for line in lines).encode()
        upload = SimpleUploadedFile("forms.csv", content)
        response = clerk.post("/api/v1/paper-imports/", {"round": "demo", "file": upload})
        assert response.status_code == 201, response.content
        done = PaperImport.objects.get()
        assert (done.accepted_rows, done.rejected_rows) == (0, 1)
        assert "A08" in json.dumps(done.report)
        assert not Response.objects.exists()

    def test_a_nul_in_the_round_field_is_a_400_naming_it(self, clerk: Client, sipas) -> None:
        upload = SimpleUploadedFile("forms.csv", b"row_id,unit\r\n")
        response = clerk.post("/api/v1/paper-imports/", {"round": "de\x00mo", "file": upload})
        assert field_errors(response, "round")
        assert not PaperImport.objects.exists()


def test_the_admin_refuses_a_nul_in_a_form_field(client: Client, db: None) -> None:
    admin = get_user_model().objects.create_superuser("root", password="x")
    client.force_login(admin)
    response = client.post(
        "/admin/feedback/petitioncategory/add/",
        {"code": "x", "name_vi": NUL, "name_en": "y", "deadline_days": "5"},
    )
    assert response.status_code == 400 and "name_vi" in response.content.decode()
    assert not PetitionCategory.objects.filter(code="x").exists()
