"""Abuse control (config.abuse): who the client is for every rate limit, the limits of the
response API, web forms, petitions, results reads and Open311, the request size limit and
the honeypot field."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.test import Client, RequestFactory
from rest_framework.authtoken.models import Token

from config.abuse import client_address
from feedback.models import Petition, Response
from tests.support.petitions import make_category, make_unit
from tests.support.responses import payload, valid_answers

pytestmark = pytest.mark.django_db
URL = "/api/v1/responses/"
CLIENT_IP = "203.0.113.77"
OTHER_IP = "198.51.100.9"
PROXY_IP = "10.0.0.1"


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


def set_rates(settings: Any, **rates: str) -> None:
    """Set throttle rates (scope names with ``_`` for ``-``) for the test."""
    changed = {scope.replace("_", "-"): rate for scope, rate in rates.items()}
    merged = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] | changed
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"DEFAULT_THROTTLE_RATES": merged}


def set_num_proxies(settings: Any, proxies: int | None) -> None:
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"NUM_PROXIES": proxies}


@pytest.fixture
def submit_rate(settings) -> Callable[[str], None]:
    """Sets the anonymous submission rate for the test."""

    def set_rate(rate: str) -> None:
        set_rates(settings, response_submit=rate)

    return set_rate


def token_user(*permissions: str, username: str = "partner-app") -> str:
    user = get_user_model().objects.create_user(username=username, password="x")
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return Token.objects.create(user=user).key


# --- One client, whatever X-Forwarded-For says ------------------------------------------------


@dataclass
class Limit:
    """A rate-limited request: its scope, how to send it, and what it answers when allowed."""

    name: str
    scope: str
    allowed: int
    send: Callable[..., Any]

    def __str__(self) -> str:
        return self.name


def send_response(client: Client, world: dict[str, Any], **meta: str) -> Any:
    return client.post(URL, payload(), content_type="application/json", **meta)


def send_form_start(client: Client, world: dict[str, Any], **meta: str) -> Any:
    return client.post("/rounds/demo/", {"unit": "19"}, **meta)


def petition_fields() -> dict[str, str]:
    return {"category": "abuse", "unit": "T01", "description": "Đèn đường hỏng ở ngõ 12."}


def send_petition_web(client: Client, world: dict[str, Any], **meta: str) -> Any:
    fields = petition_fields() | {"client_id": str(uuid.uuid4())}
    return client.post("/petitions/new/", fields, **meta)


def send_petition_api(client: Client, world: dict[str, Any], **meta: str) -> Any:
    body = petition_fields() | {"client_id": str(uuid.uuid4())}
    return client.post("/api/v1/petitions/", body, content_type="application/json", **meta)


def send_results_read(client: Client, world: dict[str, Any], **meta: str) -> Any:
    return client.get("/api/v1/units/", **meta)


def send_open311(client: Client, world: dict[str, Any], *, key: str = "", **meta: str) -> Any:
    fields = {
        "api_key": key or world["open311_key"],
        "service_code": "abuse",
        "jurisdiction_id": "T01",
        "description": "Ổ gà trước cổng trường.",
    }
    return client.post("/open311/v2/requests.json", fields, **meta)


LIMITS = [
    Limit("response API", "response_submit", 201, send_response),
    Limit("web form start", "response_submit", 302, send_form_start),
    Limit("petition web form", "petition_submit", 302, send_petition_web),
    Limit("petition API", "petition_submit", 201, send_petition_api),
    Limit("results read", "results_anon", 200, send_results_read),
    Limit("Open311", "open311_submit", 200, send_open311),
]
ANONYMOUS_LIMITS = [limit for limit in LIMITS if limit.name != "Open311"]


@pytest.fixture
def world(sipas: Any) -> dict[str, Any]:
    """A SIPAS round, a unit and category for petitions, an Open311 partner's key."""
    make_unit("T01", "Tỉnh Thử")
    make_category("abuse", days=10)
    return {"open311_key": token_user("submit_petitions", username="open311-partner")}


class TestClientIdentity:
    @pytest.mark.parametrize(
        ("proxies", "remote", "forwarded", "client"),
        [
            (None, CLIENT_IP, "", CLIENT_IP),
            (None, CLIENT_IP, "10.0.3.4", CLIENT_IP),
            (None, CLIENT_IP, "10.0.3.4, 10.0.4.5", CLIENT_IP),
            (0, CLIENT_IP, "10.0.3.4", CLIENT_IP),
            (1, PROXY_IP, "", PROXY_IP),
            (1, PROXY_IP, CLIENT_IP, CLIENT_IP),
            (1, PROXY_IP, f"10.0.3.4, {CLIENT_IP}", CLIENT_IP),
            (1, PROXY_IP, f"10.0.3.4 ,  {CLIENT_IP} ", CLIENT_IP),
            (2, PROXY_IP, f"10.0.3.4, {CLIENT_IP}, 10.0.0.2", CLIENT_IP),
            (2, PROXY_IP, CLIENT_IP, CLIENT_IP),  # fewer hops than proxies: the first one
        ],
    )
    def test_the_client_is_the_connection_unless_proxies_are_trusted(
        self, settings, proxies: int | None, remote: str, forwarded: str, client: str
    ) -> None:
        set_num_proxies(settings, proxies)
        meta = {"REMOTE_ADDR": remote} | ({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {})
        assert client_address(RequestFactory().get("/", **meta)) == client


class TestForgedForwardedFor:
    @pytest.mark.parametrize("limit", LIMITS, ids=str)
    def test_a_forged_x_forwarded_for_does_not_reset_the_limit(
        self, client: Client, world, settings, limit: Limit
    ) -> None:
        set_num_proxies(settings, None)
        set_rates(settings, **{limit.scope: "3/hour"})
        for i in range(3):
            forged = f"10.0.{i}.{i + 1}"
            answer = limit.send(client, world, REMOTE_ADDR=CLIENT_IP, HTTP_X_FORWARDED_FOR=forged)
            assert answer.status_code == limit.allowed, answer.content[:300]
        refused = limit.send(client, world, REMOTE_ADDR=CLIENT_IP, HTTP_X_FORWARDED_FOR="10.9.9.9")
        assert refused.status_code == 429
        if limit.name == "Open311":  # keyed on the API key's account: another key, own budget
            other = limit.send(client, world, key=token_user("submit_petitions", username="b"))
        else:
            other = limit.send(client, world, REMOTE_ADDR=OTHER_IP)
        assert other.status_code == limit.allowed  # a limit per client, not for everyone

    def test_forged_addresses_store_nothing_past_the_limit(self, client: Client, world, settings):
        set_rates(settings, response_submit="5/hour")
        answers = [
            send_response(client, world, REMOTE_ADDR=CLIENT_IP, HTTP_X_FORWARDED_FOR=f"10.0.{i}.1")
            for i in range(20)
        ]
        assert [a.status_code for a in answers] == [201] * 5 + [429] * 15
        assert Response.objects.count() == 5

    @pytest.mark.parametrize("limit", ANONYMOUS_LIMITS, ids=str)
    def test_behind_one_proxy_the_last_hop_is_the_client(
        self, client: Client, world, settings, limit: Limit
    ) -> None:
        set_num_proxies(settings, 1)
        set_rates(settings, **{limit.scope: "2/hour"})
        for forged in ("10.0.1.2", "10.0.2.3"):  # what the client wrote, then the proxy's hop
            meta = {"REMOTE_ADDR": PROXY_IP, "HTTP_X_FORWARDED_FOR": f"{forged}, {CLIENT_IP}"}
            assert limit.send(client, world, **meta).status_code == limit.allowed
        meta = {"REMOTE_ADDR": PROXY_IP, "HTTP_X_FORWARDED_FOR": f"10.0.3.4, {CLIENT_IP}"}
        assert limit.send(client, world, **meta).status_code == 429
        # Another client behind the same proxy, even one claiming to be the first: own budget.
        meta = {"REMOTE_ADDR": PROXY_IP, "HTTP_X_FORWARDED_FOR": f"{CLIENT_IP}, {OTHER_IP}"}
        assert limit.send(client, world, **meta).status_code == limit.allowed


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
        assert post(client, payload(), REMOTE_ADDR=OTHER_IP).status_code == 201

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

    @pytest.mark.parametrize("website", ["http://spam.example", 1, {"url": "x"}, ["x"]])
    def test_the_petition_api_refuses_a_filled_website_field(
        self, client: Client, world, website: Any
    ) -> None:
        body = petition_fields() | {"website": website}
        response = client.post("/api/v1/petitions/", body, content_type="application/json")
        assert response.status_code == 400
        assert "website" in response.json()["fields"]
        assert Petition.objects.count() == 0

    def test_the_petition_web_form_refuses_a_filled_website_field(
        self, client: Client, world
    ) -> None:
        fields = petition_fields() | {"website": "http://spam.example"}
        assert client.post("/petitions/new/", fields).status_code == 400
        assert Petition.objects.count() == 0
