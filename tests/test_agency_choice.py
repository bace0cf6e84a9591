"""Agencies chosen right: codes unique in the country, lists narrowed to the unit chosen,
and an agency of another unit refused on every channel with nothing stored.

The case reported: the unit Hà Nội (``01``) sent with the service centre of Cà Mau
(``96-TTPVHCC``) was stored as Hà Nội's centre, because every centre had the code
``TTPVHCC`` and the code was looked up within the unit sent.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from feedback.invitations.services import generate_invitations
from feedback.models import PaperImport, Petition, Response, ResponseDraft
from surveys.loaders import ensure_demo_agencies
from surveys.models import Agency
from tests.support.petitions import api_token

pytestmark = pytest.mark.django_db

HANOI, CAMAU = "01", "96"  # provinces of 2022, covered by the round
CAMAU_NOW = "96-2025"  # Cà Mau after the 2025 merger (petitions go to current units)
HANOI_CENTRE, CAMAU_CENTRE = "01-TTPVHCC", "96-TTPVHCC"
CAMAU_NOW_CENTRE = "96-2025-TTPVHCC"


def option_values(html: str, select_id: str) -> list[str]:
    """The values of a select's options as the page sends them (not the script's template)."""
    select = re.search(rf'<select id="{select_id}".*?</select>', html, re.S).group(0)
    return [v for v in re.findall(r'<option value="([^"]*)"', select) if v]


def codes_of(unit: str) -> list[str]:
    return sorted(Agency.objects.filter(unit__code=unit).values_list("code", flat=True))


def nothing_stored() -> bool:
    return not (
        Response.objects.exists() or ResponseDraft.objects.exists() or Petition.objects.exists()
    )


def refused_in_english(client: Client, url: str, data: dict[str, str], status: int) -> str:
    """The form posted in English is shown again with ``status``, nothing stored; its HTML."""
    page = client.post(url, data, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == status
    assert nothing_stored()
    return page.content.decode()


# --- Codes -------------------------------------------------------------------------------


def test_demo_agencies_have_codes_unique_in_the_country(agency_round) -> None:
    codes = list(Agency.objects.values_list("code", flat=True))
    assert len(codes) == len(set(codes))
    assert Agency.objects.get(code=HANOI_CENTRE).unit.code == HANOI
    assert Agency.objects.get(code=CAMAU_CENTRE).unit.code == CAMAU
    assert Agency.objects.get(code="96-2025-SXD").unit.code == CAMAU_NOW
    assert ensure_demo_agencies().created == 0  # loading again finds them by code


@pytest.mark.django_db(transaction=True)
def test_the_migration_renames_shared_codes_and_keeps_unique_ones(units) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("surveys", "0003_question_personal_data")])
    old = executor.loader.project_state([("surveys", "0003_question_personal_data")]).apps
    OldAgency, OldUnit = old.get_model("surveys", "Agency"), old.get_model("surveys", "Unit")
    hanoi, camau = OldUnit.objects.get(code=HANOI), OldUnit.objects.get(code=CAMAU)
    for unit in (hanoi, camau):
        OldAgency.objects.create(unit=unit, code="TTPVHCC", name_vi=f"Trung tâm {unit.name}")
    OldAgency.objects.create(unit=hanoi, code="SO-GTVT-HN", name_vi="Sở Giao thông Hà Nội")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert dict(Agency.objects.values_list("code", "unit__code")) == {
        HANOI_CENTRE: HANOI,
        CAMAU_CENTRE: CAMAU,
        "SO-GTVT-HN": HANOI,  # already unique: a client using it goes on working
    }


# --- The web form ------------------------------------------------------------------------


class TestWebFormStart:
    URL = "/rounds/swap/"

    def test_the_swap_is_refused_naming_the_agency_and_nothing_is_stored(
        self, client: Client, agency_round
    ) -> None:
        swap = {"unit": HANOI, "agency": CAMAU_CENTRE, "agencies_of": HANOI}
        html = refused_in_english(client, self.URL, swap, 200)
        assert re.search(r'id="err-agency">[^<]*96-TTPVHCC[^<]*Cà Mau[^<]*Hà Nội', html), html
        assert 'href="#id_agency"' in html  # the error summary leads to the field
        assert sorted(option_values(html, "id_agency")) == codes_of(HANOI)

        # The same unit with its own centre starts, recording that centre.
        started = client.post(
            self.URL, {"unit": HANOI, "agency": HANOI_CENTRE, "agencies_of": HANOI}
        )
        assert started.status_code == 302
        assert ResponseDraft.objects.get().agency.code == HANOI_CENTRE

    def test_without_script_the_unit_is_chosen_first_then_one_of_its_agencies(
        self, client: Client, agency_round
    ) -> None:
        first = client.get(self.URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert option_values(first, "id_agency") == []  # nothing listed before a unit
        assert re.search(r'id="agency-field"[^>]*hidden', first)

        step = client.post(self.URL, {"unit": CAMAU, "agencies_of": ""})
        assert step.status_code == 200 and nothing_stored()  # a step, not a start
        html = step.content.decode()
        assert option_values(html, "id_agency") == [CAMAU_CENTRE]
        assert not re.search(r'id="agency-field"[^>]*hidden', html)
        assert 'name="agencies_of" value="96"' in html
        assert 'id="agency-step"' in html

        started = client.post(
            self.URL, {"unit": CAMAU, "agency": CAMAU_CENTRE, "agencies_of": CAMAU}
        )
        assert started.status_code == 302
        draft = ResponseDraft.objects.get()
        assert (draft.unit.code, draft.agency.code) == (CAMAU, CAMAU_CENTRE)

    def test_without_script_no_agency_after_the_list_rates_the_province(
        self, client: Client, agency_round
    ) -> None:
        assert client.post(self.URL, {"unit": CAMAU}).status_code == 200
        started = client.post(self.URL, {"unit": CAMAU, "agency": "", "agencies_of": CAMAU})
        assert started.status_code == 302
        assert ResponseDraft.objects.get().agency is None

    def test_changing_the_unit_on_the_second_step_lists_the_new_units_agencies(
        self, client: Client, agency_round
    ) -> None:
        page = client.post(self.URL, {"unit": HANOI, "agency": "", "agencies_of": CAMAU})
        assert page.status_code == 200 and nothing_stored()
        assert sorted(option_values(page.content.decode(), "id_agency")) == codes_of(HANOI)


# --- The petition form -------------------------------------------------------------------


def petition_form(**fields: str) -> dict[str, str]:
    return {
        "category": "road",
        "description": "Cống thoát nước bị tắc.",
        "client_id": str(uuid.uuid4()),
    } | fields


class TestPetitionForm:
    URL = "/petitions/new/"

    def test_the_swap_is_refused_naming_the_agency_and_nothing_is_stored(
        self, client: Client, agency_round
    ) -> None:
        swap = petition_form(unit=HANOI, agency=CAMAU_NOW_CENTRE, agencies_of=HANOI)
        html = refused_in_english(client, self.URL, swap, 400)
        assert re.search(r'id="err-agency">[^<]*96-2025-TTPVHCC[^<]*Cà Mau[^<]*Hà Nội', html)
        assert "Cống thoát nước bị tắc." in html  # what the citizen wrote is kept

    def test_without_script_the_agency_is_chosen_on_a_second_step(
        self, client: Client, agency_round
    ) -> None:
        data = petition_form(unit=CAMAU_NOW)
        step = client.post(self.URL, data)
        assert step.status_code == 200 and nothing_stored()
        html = step.content.decode()
        assert sorted(option_values(html, "id_agency")) == codes_of(CAMAU_NOW)
        assert "Cống thoát nước bị tắc." in html and data["client_id"] in html

        sent = client.post(self.URL, data | {"agency": "96-2025-SXD", "agencies_of": CAMAU_NOW})
        assert sent.status_code == 302
        assert Petition.objects.get().agency.code == "96-2025-SXD"


# --- The response API --------------------------------------------------------------------


def response_body(**fields: Any) -> dict[str, Any]:
    return {
        "round": "swap",
        "unit": HANOI,
        "client_id": str(uuid.uuid4()),
        "answers": {"USED": True, "SAT": 4},
    } | fields


class TestResponseApi:
    URL = "/api/v1/responses/"

    def post(self, client: Client, body: dict[str, Any]) -> Any:
        return client.post(self.URL, body, content_type="application/json")

    def test_the_swap_is_a_400_on_agency_and_nothing_is_stored(
        self, client: Client, agency_round
    ) -> None:
        answer = self.post(client, response_body(agency=CAMAU_CENTRE))
        assert answer.status_code == 400, answer.content
        assert set(answer.json()["fields"]) == {"agency"}
        assert "Cà Mau" in answer.json()["fields"]["agency"][0]
        assert nothing_stored()

        stored = self.post(client, response_body(agency=HANOI_CENTRE))
        assert stored.status_code == 201, stored.content
        assert Response.objects.get().agency.code == HANOI_CENTRE

    def test_an_old_unit_local_code_is_a_400_naming_the_new_code(
        self, client: Client, agency_round
    ) -> None:
        answer = self.post(client, response_body(agency="TTPVHCC"))
        assert answer.status_code == 400
        assert set(answer.json()["fields"]) == {"agency"}
        assert HANOI_CENTRE in answer.json()["fields"]["agency"][0]
        assert nothing_stored()

    def test_an_agency_other_than_the_invitations_is_refused_and_the_invitation_kept(
        self, client: Client, agency_round
    ) -> None:
        (invitation,) = generate_invitations(
            round_code="swap", unit_code=HANOI, agency_code=HANOI_CENTRE, count=1
        )
        Agency.objects.create(
            unit=invitation.unit, code="01-SXD-TEST", name_vi="Sở Xây dựng Hà Nội"
        )
        body = response_body(agency="01-SXD-TEST", token=invitation.token)
        answer = self.post(client, body)
        assert answer.status_code == 400
        assert set(answer.json()["fields"]) == {"agency"}
        invitation.refresh_from_db()
        assert invitation.used_at is None and nothing_stored()


# --- Paper import ------------------------------------------------------------------------


@pytest.fixture
def clerk(client: Client, db: None) -> Client:
    user = User.objects.create_user("clerk", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="import_paper_forms"))
    client.force_login(user)
    return client


def test_paper_import_reports_the_swap_as_a_row_error_and_stores_only_good_rows(
    clerk: Client, agency_round
) -> None:
    content = "\r\n".join(
        [
            "row_id,unit,agency,USED,SAT",
            f"F-1,{HANOI},{CAMAU_CENTRE},có,4",
            f"F-2,{HANOI},{HANOI_CENTRE},có,5",
        ]
    ).encode()
    answer = clerk.post(
        "/api/v1/paper-imports/",
        {"round": "swap", "file": SimpleUploadedFile("forms.csv", content)},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert (body["accepted_rows"], body["rejected_rows"]) == (1, 1)
    (rejected,) = [r for r in body["report"] if r["status"] == "rejected"]
    assert rejected["row"] == 2
    assert [e["field"] for e in rejected["errors"]] == ["agency"]
    assert "Cà Mau" in rejected["errors"][0]["message"]
    stored = Response.objects.get()  # only the good row
    assert (stored.agency.code, stored.paper_key != "") == (HANOI_CENTRE, True)
    assert PaperImport.objects.get().rejected_rows == 1


# --- Petitions: API and Open311 ----------------------------------------------------------


def test_the_petitions_api_refuses_the_swap_with_a_400_on_agency(
    client: Client, agency_round
) -> None:
    body = {
        "category": "road",
        "unit": HANOI,
        "agency": CAMAU_NOW_CENTRE,
        "description": "Đèn đường hỏng.",
        "client_id": str(uuid.uuid4()),
    }
    answer = client.post("/api/v1/petitions/", body, content_type="application/json")
    assert answer.status_code == 400, answer.content
    assert set(answer.json()["fields"]) == {"agency"}
    assert nothing_stored()


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_open311_refuses_the_swap_in_the_specifications_error_format(
    client: Client, agency_round, fmt: str
) -> None:
    partner = User.objects.create_user("partner-app", password="x")
    partner.user_permissions.add(Permission.objects.get(codename="submit_petitions"))
    fields = {
        "api_key": api_token(partner),
        "service_code": "road",
        "jurisdiction_id": HANOI,
        "attribute[agency]": CAMAU_NOW_CENTRE,
        "description": "Đèn đường hỏng.",
    }
    answer = client.post(f"/open311/v2/requests.{fmt}", fields, HTTP_ACCEPT_LANGUAGE="en")
    assert answer.status_code == 400
    text = answer.content.decode()
    if fmt == "json":
        (error,) = answer.json()
        assert error["code"] == 400
        assert error["description"].startswith("attribute[agency]: ")
        assert "Cà Mau" in error["description"]
    else:
        assert "<errors>" in text and "attribute[agency]: " in text
    assert nothing_stored()

    fields["attribute[agency]"] = HANOI_CENTRE
    assert client.post("/open311/v2/requests.json", fields).status_code == 200
    assert Petition.objects.get().agency.code == HANOI_CENTRE


def test_open311_lists_a_jurisdictions_agencies_by_their_country_wide_codes(
    client: Client, agency_round
) -> None:
    answer = client.get("/open311/v2/services/road.json", {"jurisdiction_id": CAMAU_NOW})
    (attribute,) = answer.json()["attributes"]
    assert {v["key"] for v in attribute["values"]} == {
        "96-2025-TTPVHCC",
        "96-2025-SXD",
        "96-2025-SNNMT",
    }
