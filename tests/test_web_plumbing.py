"""Web plumbing shared by every app (``config/``): conditional GET, whatever view uses it.

The views of the results API are tested through their URLs elsewhere; these tests pin the
shared pieces on a view of their own, so that any app's view gets the same answers.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.http import HttpResponse
from django.utils.http import http_date
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from config.conditional import ConditionalMixin, not_modified, set_validators, validator_headers

factory = APIRequestFactory()


class Greeting(ConditionalMixin, APIView):
    authentication_classes: list = []
    permission_classes: list = []
    body = {"greeting": "xin chào"}

    def get(self, request):  # type: ignore[no-untyped-def]
        return Response(self.body)

    def post(self, request):  # type: ignore[no-untyped-def]
        return Response(self.body)


def get(**headers: str):  # type: ignore[no-untyped-def]
    response = Greeting.as_view()(factory.get("/greeting/", **headers))
    return response.render() if hasattr(response, "render") else response


class TestConditionalMixin:
    def test_a_get_carries_an_etag_from_its_content_and_asks_caches_to_revalidate(self) -> None:
        response = get()
        assert response.status_code == 200
        assert response["ETag"].startswith('"') and response["ETag"].endswith('"')
        assert response["Cache-Control"] == "public, no-cache"
        assert "Accept" in response["Vary"]
        assert get()["ETag"] == response["ETag"]

    def test_the_same_etag_answers_304_without_a_body(self) -> None:
        etag = get()["ETag"]
        response = get(HTTP_IF_NONE_MATCH=etag)
        assert response.status_code == 304
        assert response.content == b""
        assert response["ETag"] == etag

    def test_other_content_gets_another_etag_and_a_stale_one_gets_the_document(self) -> None:
        etag = get()["ETag"]
        Greeting.body = {"greeting": "hello"}
        try:
            response = get(HTTP_IF_NONE_MATCH=etag)
        finally:
            Greeting.body = {"greeting": "xin chào"}
        assert response.status_code == 200
        assert response["ETag"] != etag
        assert response.data == {"greeting": "hello"}

    def test_a_post_gets_no_validators(self) -> None:
        response = Greeting.as_view()(factory.post("/greeting/", {}, format="json"))
        assert response.status_code == 200
        assert "ETag" not in response


class TestValidators:
    modified = dt.datetime(2026, 12, 6, 8, 30, tzinfo=dt.UTC)

    def document(self) -> HttpResponse:
        response = HttpResponse("document")
        set_validators(response, '"v1"', self.modified)
        return response

    def test_known_validators_are_set_with_an_http_date(self) -> None:
        response = self.document()
        assert response["ETag"] == '"v1"'
        assert response["Last-Modified"] == "Sun, 06 Dec 2026 08:30:00 GMT"

    @pytest.mark.parametrize(
        ("headers", "status"),
        [
            ({"HTTP_IF_NONE_MATCH": '"v1"'}, 304),
            ({"HTTP_IF_NONE_MATCH": '"v0"'}, None),
            ({"HTTP_IF_NONE_MATCH": '"v0", "v1"'}, 304),
            ({"HTTP_IF_MODIFIED_SINCE": "Sun, 06 Dec 2026 08:30:00 GMT"}, 304),
            ({"HTTP_IF_MODIFIED_SINCE": "Sat, 05 Dec 2026 08:30:00 GMT"}, None),
            ({"HTTP_IF_MODIFIED_SINCE": "not a date"}, None),
            ({"HTTP_IF_MATCH": '"v0"'}, 412),
            ({}, None),
        ],
    )
    def test_not_modified_follows_the_request_validators(
        self, headers: dict[str, str], status: int | None
    ) -> None:
        answer = not_modified(factory.get("/document/", **headers), self.document())
        assert (answer.status_code if answer is not None else None) == status

    def test_validator_headers_equal_those_set_on_a_response(self) -> None:
        headers = validator_headers('"v1"', self.modified.timestamp())
        response = self.document()
        for name in ("ETag", "Last-Modified", "Cache-Control", "Vary"):
            assert headers[name] == response[name]
        assert validator_headers('"v1"', None).get("Last-Modified") is None
        assert http_date(self.modified.timestamp()) == headers["Last-Modified"]
