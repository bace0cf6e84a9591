"""Open311 GeoReport v2: the ``georeport`` client from PyPI, used as-is against a live
server, lists services and reads requests; requests are created with the specification's
form-encoded POST and an ``api_key`` (a REST API token), then read back through the client."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone
from georeport import GeoReport

from feedback.models import Petition, PetitionCategory
from feedback.petitions import services
from tests.support.petitions import (
    api_token,
    make_agency,
    make_category,
    make_staff,
    make_unit,
    submit,
)

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def frame(transactional_db: None) -> dict[str, Any]:
    PetitionCategory.objects.all().delete()  # the defaults of migration 0003
    unit = make_unit("T01", "Tỉnh Thử")
    make_unit("T02", "Tỉnh Khác")
    agency = make_agency(unit, "SO-GTVT", "Sở Giao thông")
    make_category("road", days=10, group="Hạ tầng", keywords="đường,ổ gà")
    make_category("light", days=5, name_en="Street lights")
    partner = get_user_model().objects.create_user("partner-app", password="x")
    partner.user_permissions.add(Permission.objects.get(codename="submit_petitions"))
    return {"unit": unit, "agency": agency, "key": api_token(partner)}


def root(live_server: Any) -> str:
    return f"{live_server.url}/open311/v2"


def create(live_server: Any, fmt: str = "json", **fields: str) -> requests.Response:
    return requests.post(f"{root(live_server)}/requests.{fmt}", data=fields, timeout=10)


def test_georeport_lists_services_and_reads_a_definition(live_server, frame) -> None:
    client = GeoReport(root(live_server))
    services_list = client.get_service_list()
    assert [s["service_code"] for s in services_list] == ["light", "road"]
    road = services_list[1]
    assert (road["service_name"], road["group"], road["keywords"]) == (
        "Loại road",
        "Hạ tầng",
        "đường,ổ gà",
    )
    assert road["metadata"] is True and road["type"] == "realtime"

    scoped = GeoReport(root(live_server), jurisdiction="T01")
    definition = scoped.get_service_definition("road")
    assert definition["service_code"] == "road"
    [attribute] = definition["attributes"]
    assert (attribute["code"], attribute["datatype"], attribute["required"]) == (
        "agency",
        "singlevaluelist",
        False,
    )
    assert attribute["values"] == [{"key": "SO-GTVT", "name": "Sở Giao thông"}]
    with pytest.raises(requests.HTTPError) as missing:
        client.get_service_definition("nope")
    assert missing.value.response.status_code == 404
    assert missing.value.response.json() == [
        {"code": 404, "description": "service_code nope not found"}
    ]


def test_a_request_posted_with_an_api_key_is_read_back_through_georeport(
    live_server, frame
) -> None:
    answer = create(
        live_server,
        api_key=frame["key"],
        jurisdiction_id="T01",
        service_code="road",
        description="Ổ gà lớn trước số 10.",
        lat="21.028511",
        long="105.804817",
        address_string="10 Phố Huế",
        email="citizen@example.vn",
        first_name="Lan",
        last_name="Trần",
        phone="0900000001",
        **{"attribute[agency]": "SO-GTVT"},
    )
    assert answer.status_code == 200, answer.text
    [created] = answer.json()
    request_id = created["service_request_id"]
    petition = Petition.objects.get(pk=int(request_id))
    assert (petition.channel, petition.agency.code, petition.contact_email) == (
        "open311",
        "SO-GTVT",
        "citizen@example.vn",
    )
    assert petition.tracking_code in created["service_notice"]

    client = GeoReport(root(live_server))
    one = client.get_service_request(request_id)
    assert one["service_request_id"] == request_id
    assert (one["service_code"], one["status"], one["address"]) == ("road", "open", "10 Phố Huế")
    assert (one["lat"], one["long"]) == (21.028511, 105.804817)
    assert one["agency_responsible"] == "Sở Giao thông"
    assert one["requested_datetime"].startswith(timezone.localdate().isoformat())
    raw = requests.get(f"{root(live_server)}/requests/{request_id}.json", timeout=10).text
    for secret in ("citizen@example.vn", "Lan", "Trần", "0900000001", petition.tracking_code):
        assert secret not in raw

    listed = client.get_service_requests(service_code="road", status="open")
    assert [r["service_request_id"] for r in listed] == [request_id]


def test_georeport_filters_requests_like_the_specification(live_server, frame) -> None:
    old = submit("road", "T01", description="Cũ.")
    new = submit("light", "T01", description="Mới.")
    other = submit("road", "T02", description="Tỉnh khác.")
    done = submit("light", "T01", description="Đã xử lý.")
    Petition.objects.filter(pk=old.pk).update(submitted_at=timezone.now() - timedelta(days=40))
    admin = get_user_model().objects.create_superuser("root", "r@example.org", "x")
    services.change_petition_status(
        petition_id=done.pk, actor=admin, status="rejected", reason="Trùng."
    )
    client = GeoReport(root(live_server))

    def ids(**filters: str) -> set[int]:
        return {int(r["service_request_id"]) for r in client.get_service_requests(**filters)}

    assert ids() == {old.pk, new.pk, other.pk, done.pk}
    assert ids(service_code="light") == {new.pk, done.pk}
    assert ids(service_code="light,road") == {old.pk, new.pk, other.pk, done.pk}
    assert ids(status="closed") == {done.pk}
    assert ids(status="open") == {old.pk, new.pk, other.pk}
    assert ids(service_request_id=f"{old.pk},{other.pk}", status="closed") == {old.pk, other.pk}
    week_ago = (timezone.now() - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    two_months = (timezone.now() - timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(start_date=week_ago) == {new.pk, other.pk, done.pk}
    assert ids(start_date=two_months, end_date=week_ago) == {old.pk}
    assert {r["status_notes"] for r in client.get_service_requests(status="closed")} == {"Trùng."}
    scoped = GeoReport(root(live_server), jurisdiction="T02")
    assert {int(r["service_request_id"]) for r in scoped.get_service_requests()} == {other.pk}


def test_georeport_reads_the_xml_format(live_server, frame) -> None:
    petition = submit("road", "T01", "SO-GTVT", description="XML.")
    client = GeoReport(root(live_server), output_format="xml")
    services_xml = client.get_service_list()
    assert [s["service_code"] for s in services_xml] == ["light", "road"]
    one = client.get_service_request(str(petition.pk))
    assert (one["service_request_id"], one["status"], one["service_code"]) == (
        str(petition.pk),
        "open",
        "road",
    )
    assert client.get_service_requests()["service_request_id"] == str(petition.pk)
    created = create(
        live_server,
        "xml",
        api_key=frame["key"],
        jurisdiction_id="T01",
        service_code="light",
        description="Đèn tắt.",
    )
    assert created.status_code == 200
    assert "<service_request_id>" in created.text


def test_posting_without_a_valid_key_is_refused_in_the_spec_error_format(
    live_server, frame
) -> None:
    body = {"jurisdiction_id": "T01", "service_code": "road", "description": "x"}
    assert create(live_server, **body).status_code == 403
    wrong = create(live_server, api_key="not-a-key", **body)
    assert wrong.status_code == 403
    assert wrong.json() == [{"code": 403, "description": "api_key missing or not valid"}]
    staff = make_staff("staff", unit=frame["unit"], agency=frame["agency"])
    not_allowed = create(live_server, api_key=api_token(staff), **body)
    assert not_allowed.status_code == 403
    assert Petition.objects.count() == 0


def test_bad_parameters_answer_400_naming_the_parameter(frame) -> None:
    client = Client()

    def post(**fields: str) -> Any:
        return client.post("/open311/v2/requests.json", {"api_key": frame["key"]} | fields)

    missing = post(description="x")
    assert missing.status_code == 400
    assert [e["description"] for e in missing.json()] == [
        "service_code is required",
        "jurisdiction_id is required",
    ]
    unknown = post(service_code="nope", jurisdiction_id="T01", description="x")
    assert unknown.status_code == 400
    assert unknown.json()[0]["description"].startswith("service_code:")
    bad_lat = post(service_code="road", jurisdiction_id="T01", description="x", lat="north")
    assert bad_lat.json() == [{"code": 400, "description": "lat must be a number"}]
    too_long = post(service_code="road", jurisdiction_id="T01", description="x" * 4001)
    assert too_long.status_code == 400
    assert too_long.json()[0]["description"].startswith("description:")
    assert Petition.objects.count() == 0
    bad_status = client.get("/open311/v2/requests.json?status=pending")
    assert bad_status.status_code == 400
    assert bad_status.json()[0]["code"] == 400
    bad_date = client.get("/open311/v2/requests.json?start_date=yesterday")
    assert bad_date.status_code == 400
    assert client.get("/open311/v2/requests/99999999.json").json() == [
        {"code": 404, "description": "service_request_id 99999999 not found"}
    ]
    assert client.get("/open311/v2/services.json?jurisdiction_id=XX").status_code == 404


def test_descriptions_are_published_only_when_configured(frame, settings) -> None:
    petition = submit("road", "T01", description="<b>Ổ gà</b> trước nhà ông Bình")
    client = Client()
    url = f"/open311/v2/requests/{petition.pk}.json"
    assert client.get(url).json()[0]["description"] == ""
    settings.OPEN311_PUBLIC_DESCRIPTIONS = True
    assert client.get(url).json()[0]["description"] == "<b>Ổ gà</b> trước nhà ông Bình"
    xml = client.get(f"/open311/v2/requests/{petition.pk}.xml").text
    assert "&lt;b&gt;Ổ gà&lt;/b&gt;" in xml and "<b>" not in xml


def test_request_list_takes_one_query_whatever_its_length(frame, django_assert_num_queries) -> None:
    for n in range(12):
        submit("road" if n % 2 else "light", "T01", "SO-GTVT", description=f"số {n}")
    with django_assert_num_queries(1):
        assert len(Client().get("/open311/v2/requests.json").json()) == 12


def test_each_api_key_is_rate_limited(frame, settings) -> None:
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] | {"open311-submit": "2/hour"}
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"DEFAULT_THROTTLE_RATES": rates}
    body = {"api_key": frame["key"], "jurisdiction_id": "T01", "service_code": "road"}
    client = Client()
    for n in range(2):
        answer = client.post("/open311/v2/requests.json", body | {"description": f"số {n}"})
        assert answer.status_code == 200
    refused = client.post("/open311/v2/requests.json", body | {"description": "số 3"})
    assert refused.status_code == 429
    assert refused.json()[0]["code"] == 429
    assert Petition.objects.count() == 2
