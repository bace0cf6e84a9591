"""Abuse control of POST /api/v1/responses/: rate limit per hashed client address, request
size limit and the honeypot field."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.test import Client
from rest_framework.authtoken.models import Token

from feedback.models import Response
from tests.test_response_api import payload, valid_answers

pytestmark = pytest.mark.django_db
URL = "/api/v1/responses/"
CLIENT_IP = "203.0.113.77"


def post(client: Client, body: Any, **extra: Any) -> Any:
    extra.setdefault("REMOTE_ADDR", CLIENT_IP)
    return client.post(URL, body, content_type="application/json", **extra)


def cached_items() -> list[tuple[str, str]]:
    """Every key and value in the cache, as text, whatever the backend."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        redis = backend._cache.get_client()
        return [(k.decode(), repr(redis.get(k))) for k in redis.keys("*")]
    return [(key, repr(value)) for key, value in backend._cache.items()]


@pytest.fixture(autouse=True)
def _fresh_throttle() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def submit_rate(settings) -> Callable[[str], None]:
    """Sets the anonymous submission rate for the test."""

    def set_rate(rate: str) -> None:
        rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] | {"response-submit": rate}
        settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"DEFAULT_THROTTLE_RATES": rates}

    return set_rate


def token_user(*permissions: str) -> str:
    user = get_user_model().objects.create_user(username="partner-app", password="x")
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return Token.objects.create(user=user).key


class TestRateLimit:
    def test_the_rate_comes_from_response_submit_rate(self, settings) -> None:
        rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        assert rates["response-submit"] == settings.RESPONSE_SUBMIT_RATE

    def test_the_request_after_the_limit_is_refused_with_429(
        self, client: Client, sipas, submit_rate
    ) -> None:
        submit_rate("3/hour")
        for _attempt in range(3):
            assert post(client, payload()).status_code == 201
        refused = post(client, payload())
        assert refused.status_code == 429
        assert refused.json()["code"] == "throttled"
        assert refused.json()["detail"]
        assert int(refused["Retry-After"]) > 0
        assert Response.objects.count() == 3

    def test_each_client_address_has_its_own_budget(
        self, client: Client, sipas, submit_rate
    ) -> None:
        submit_rate("1/hour")
        assert post(client, payload()).status_code == 201
        assert post(client, payload()).status_code == 429
        assert post(client, payload(), REMOTE_ADDR="198.51.100.9").status_code == 201

    def test_the_web_form_shares_the_limit_and_stores_nothing_over_it(
        self, client: Client, sipas, submit_rate
    ) -> None:
        from feedback.models import ResponseDraft

        submit_rate("2/hour")
        assert post(client, payload()).status_code == 201  # the API counts too
        start = {"unit": "19"}
        assert client.post("/rounds/demo/", start, REMOTE_ADDR=CLIENT_IP).status_code == 302
        refused = client.post("/rounds/demo/", start, REMOTE_ADDR=CLIENT_IP)
        assert refused.status_code == 429
        assert ResponseDraft.objects.count() == 1
        other = client.post("/rounds/demo/", start, REMOTE_ADDR="198.51.100.9")
        assert other.status_code == 302

    def test_a_client_allowed_to_submit_on_behalf_is_never_throttled(
        self, client: Client, sipas, submit_rate
    ) -> None:
        submit_rate("2/hour")
        key = token_user("submit_on_behalf")
        for _attempt in range(5):
            response = post(client, payload(), HTTP_AUTHORIZATION=f"Token {key}")
            assert response.status_code == 201, response.json()
        assert post(client, payload()).status_code == 201  # anonymous budget untouched

    def test_an_authenticated_client_without_the_permission_is_throttled(
        self, client: Client, sipas, submit_rate
    ) -> None:
        submit_rate("1/hour")
        key = token_user()
        assert post(client, payload(), HTTP_AUTHORIZATION=f"Token {key}").status_code == 201
        assert post(client, payload(), HTTP_AUTHORIZATION=f"Token {key}").status_code == 429

    def test_no_client_address_is_kept_in_the_cache(
        self, client: Client, sipas, submit_rate
    ) -> None:
        submit_rate("5/hour")
        post(client, payload())
        post(client, payload(), REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.44")
        items = cached_items()
        throttle_keys = [key for key, _value in items if "throttle_response-submit" in key]
        assert len(throttle_keys) == 2
        for key, value in items:
            for address in (CLIENT_IP, "10.0.0.1", "192.0.2.44"):
                assert address not in key and address not in value


class TestSizeLimit:
    def test_a_body_over_the_limit_is_refused_with_413(
        self, client: Client, sipas, settings
    ) -> None:
        settings.FEEDBACK_MAX_BODY_BYTES = 4096
        body = payload(answers=valid_answers(Q11="x" * 5000))
        response = post(client, body)
        assert response.status_code == 413
        assert response.json()["code"] == "request_too_large"
        assert "4096" in response.json()["detail"]
        assert Response.objects.count() == 0

    def test_a_body_within_the_limit_is_accepted(self, client: Client, sipas, settings) -> None:
        body = json.dumps(payload()).encode()
        settings.FEEDBACK_MAX_BODY_BYTES = len(body)
        assert post(client, body).status_code == 201

    def chunked(self, client: Client, body: bytes) -> Any:
        # As a server hands on a chunked request: the decoded body, no Content-Length.
        return client.generic(
            "POST",
            URL,
            **{
                "CONTENT_TYPE": "application/json",
                "HTTP_TRANSFER_ENCODING": "chunked",
                "REMOTE_ADDR": CLIENT_IP,
                "wsgi.input": io.BytesIO(body),
            },
        )

    def test_a_body_without_content_length_over_the_limit_is_refused(
        self, client: Client, sipas, settings
    ) -> None:
        settings.FEEDBACK_MAX_BODY_BYTES = 4096
        body = json.dumps(payload(answers=valid_answers(Q11="x" * 5000))).encode()
        response = self.chunked(client, body)
        assert response.status_code == 413
        assert response.json()["code"] == "request_too_large"
        assert Response.objects.count() == 0

    def test_a_body_without_content_length_within_the_limit_is_stored(
        self, client: Client, sipas
    ) -> None:
        response = self.chunked(client, json.dumps(payload()).encode())
        assert response.status_code == 201, response.json()
        assert Response.objects.count() == 1


class TestHoneypot:
    def test_a_filled_website_field_is_refused_and_nothing_stored(
        self, client: Client, sipas
    ) -> None:
        response = post(client, payload(website="http://spam.example"))
        assert response.status_code == 400
        assert "website" in response.json()["fields"]
        assert Response.objects.count() == 0

    @pytest.mark.parametrize("website", ["", None])
    def test_an_empty_website_field_is_accepted(
        self, client: Client, sipas, website: str | None
    ) -> None:
        assert post(client, payload(website=website)).status_code == 201
