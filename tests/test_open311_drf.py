"""Open311's DRF pieces on their own: the ``api_key`` authentication, the renderers chosen by
the URL's suffix, and the specification's error format for every error DRF raises (405,
415, 429, a chunked body over the limit, a service's errors by GeoReport parameter)."""

from __future__ import annotations

import io
import json
from typing import Any
from xml.etree import ElementTree

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError as DjangoValidationError
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from config.errors import DomainError
from config.parsers import FormParser
from feedback.models import Petition, PetitionCategory
from feedback.open311.authentication import ApiKeyAuthentication, CanSubmitPetitions
from feedback.open311.exceptions import exception_handler
from feedback.open311.renderers import GeoReportXMLRenderer
from feedback.open311.views import RequestList
from tests.support.petitions import api_token, make_category, make_unit

pytestmark = [pytest.mark.postgres]

REQUESTS = "/open311/v2/requests"


def partner(*, active: bool = True, allowed: bool = True) -> Any:
    user = get_user_model().objects.create_user("partner-app", password="x", is_active=active)
    if allowed:
        user.user_permissions.add(Permission.objects.get(codename="submit_petitions"))
    return user


def form_request(method: str, **fields: str) -> Request:
    body = "&".join(f"{name}={value}" for name, value in fields.items())
    form = "application/x-www-form-urlencoded"
    return Request(APIRequestFactory().generic(method, "/", body, form), parsers=[FormParser()])


@pytest.fixture
def frame(db: None) -> dict[str, Any]:
    PetitionCategory.objects.all().delete()  # the defaults of migration 0003
    make_unit("T01", "Tỉnh Thử")
    make_category("road")
    return {"key": api_token(partner())}


def petition_form(key: str) -> dict[str, str]:
    return {"api_key": key, "jurisdiction_id": "T01", "service_code": "road", "description": "x"}


class TestApiKeyAuthentication:
    def test_the_key_in_a_posted_form_is_its_accounts(self, db: None) -> None:
        user = partner()
        key = api_token(user)
        authenticated, token = ApiKeyAuthentication().authenticate(
            form_request("POST", api_key=f" {key} ")
        )
        assert authenticated == user and token.key == key

    def test_without_a_key_or_on_a_read_the_client_is_anonymous(self, db: None) -> None:
        key = api_token(partner())
        assert ApiKeyAuthentication().authenticate(form_request("POST", description="x")) is None
        assert ApiKeyAuthentication().authenticate(form_request("GET", api_key=key)) is None

    @pytest.mark.parametrize("active", [True, False])
    def test_an_unknown_key_or_an_inactive_accounts_is_refused(
        self, db: None, active: bool
    ) -> None:
        key = api_token(partner(active=active)) if not active else "not-a-key"
        with pytest.raises(AuthenticationFailed):
            ApiKeyAuthentication().authenticate(form_request("POST", api_key=key))

    def test_no_challenge_is_sent_since_the_key_is_no_header(self) -> None:
        assert ApiKeyAuthentication().authenticate_header(form_request("POST")) is None

    def test_only_posting_needs_the_permission(self, db: None) -> None:
        allowed, other = partner(), get_user_model().objects.create_user("other")
        permission = CanSubmitPetitions()
        for method, user, expected in [
            ("POST", allowed, True),
            ("POST", other, False),
            ("GET", other, True),
            ("DELETE", other, True),  # left to be a 405
        ]:
            request = form_request(method)
            request.user = user
            assert permission.has_permission(request, None) is expected, method


class TestXMLRenderer:
    def render(self, data: Any, *, root: str, failed: bool = False) -> ElementTree.Element:
        response = Response(data)
        response.exception = failed
        view = type("View", (), {"xml_root": root})()
        text = GeoReportXMLRenderer().render(data, None, {"view": view, "response": response})
        assert text.startswith("<?xml version='1.0' encoding='utf-8'?>")
        return ElementTree.fromstring(text)

    def test_list_items_take_the_specifications_element_names(self) -> None:
        body = {"service_code": "road", "attributes": [{"values": [{"key": "A"}]}]}
        element = self.render(body, root="service_definition")
        assert element.tag == "service_definition"
        assert element.find("attributes/attribute/values/value/key").text == "A"
        assert self.render([{"a": 1}], root="services").find("service/a").text == "1"
        assert self.render([{"a": 1}], root="service_requests").find("request/a").text == "1"

    def test_booleans_are_true_or_false_and_none_is_an_empty_element(self) -> None:
        element = self.render([{"metadata": True, "lat": None}], root="services")
        assert element.find("service/metadata").text == "true"
        assert element.find("service/lat").text is None

    def test_an_error_is_under_errors_whatever_the_document(self) -> None:
        element = self.render([{"code": 404, "description": "x"}], root="services", failed=True)
        assert element.tag == "errors"
        assert element.find("error/code").text == "404"


class TestExceptionHandler:
    def described(self, exc: Exception) -> tuple[int, list[Any]]:
        response = exception_handler(exc, {"view": RequestList(), "request": None})
        assert response is not None
        return response.status_code, response.data

    def test_a_services_field_errors_name_the_georeport_parameters(self) -> None:
        problem = DjangoValidationError({"unit": ["unknown"], "contact_email": ["bad"]})
        assert self.described(problem) == (
            400,
            [
                {"code": 400, "description": "jurisdiction_id: unknown"},
                {"code": 400, "description": "email: bad"},
            ],
        )

    def test_a_domain_error_keeps_its_status(self) -> None:
        conflict = type("Conflict", (DomainError,), {"status_code": 409})("taken")
        assert self.described(conflict) == (409, [{"code": 409, "description": "taken"}])

    def test_a_throttled_request_is_told_in_the_specifications_words(self) -> None:
        status, body = self.described(Throttled(wait=30))
        assert (status, body[0]["description"]) == (429, "too many requests; try again later")

    def test_another_exception_is_left_to_be_a_server_error(self) -> None:
        assert exception_handler(RuntimeError("bug"), {"view": RequestList()}) is None


class TestEveryErrorInTheSpecificationsFormat:
    def test_another_method_is_a_405_in_the_format_of_the_suffix(self, frame) -> None:
        answer = Client().delete(f"{REQUESTS}.xml")
        assert answer.status_code == 405
        assert b"<errors><error><code>405</code>" in answer.content
        assert Client().post("/open311/v2/services.json").json()[0]["code"] == 405

    def test_a_body_that_is_no_form_is_a_415(self, frame) -> None:
        body = json.dumps(petition_form(frame["key"]))
        answer = Client().post(f"{REQUESTS}.json", body, content_type="application/json")
        assert answer.status_code == 415
        assert answer.json()[0]["code"] == 415
        assert not Petition.objects.exists()

    def test_bytes_that_are_not_utf8_are_a_400_naming_the_parameter(self, frame) -> None:
        body = f"api_key={frame['key']}&jurisdiction_id=T01&service_code=road&description=%FFx"
        form = "application/x-www-form-urlencoded"
        answer = Client().post(f"{REQUESTS}.json", body, content_type=form)
        assert answer.status_code == 400
        assert answer.json()[0]["description"].startswith("description: ")
        assert not Petition.objects.exists()

    def test_a_chunked_body_over_the_limit_is_a_413(self, frame, settings) -> None:
        settings.FEEDBACK_MAX_BODY_BYTES = 100
        body = "&".join(f"{k}={v}" for k, v in petition_form(frame["key"]).items()) + "x" * 200

        def chunked(payload: str) -> Any:
            return Client().generic(
                "POST",
                f"{REQUESTS}.xml",
                **{
                    "CONTENT_TYPE": "application/x-www-form-urlencoded",
                    "HTTP_TRANSFER_ENCODING": "chunked",
                    "wsgi.input": io.BytesIO(payload.encode()),
                },
            )

        refused = chunked(body)
        assert refused.status_code == 413
        assert b"<description>request body too large</description>" in refused.content
        settings.FEEDBACK_MAX_BODY_BYTES = 1000
        assert chunked(body).status_code == 200
        assert Petition.objects.count() == 1

    def test_a_throttled_post_says_when_to_come_back(self, frame, settings) -> None:
        rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] | {"open311-submit": "1/hour"}
        settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"DEFAULT_THROTTLE_RATES": rates}
        client = Client()
        assert client.post(f"{REQUESTS}.json", petition_form(frame["key"])).status_code == 200
        refused = client.post(f"{REQUESTS}.xml", petition_form(frame["key"]))
        assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
        assert b"too many requests; try again later" in refused.content


def test_the_suffix_alone_picks_the_format(frame) -> None:
    xml = Client().get("/open311/v2/services.xml", HTTP_ACCEPT="application/json")
    assert xml["Content-Type"] == "text/xml; charset=utf-8"
    as_json = Client().get("/open311/v2/services.json", HTTP_ACCEPT="text/xml")
    assert as_json["Content-Type"] == "application/json; charset=utf-8"
    assert Client().get("/open311/v2/services").status_code == 404


def test_the_views_stay_out_of_the_rest_apis_schema(db: None) -> None:
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert paths and not [path for path in paths if "open311" in path]
