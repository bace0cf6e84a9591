"""/health/ reports each dependency; /api/v1/ uses tokens, sessions and JSON errors."""

from __future__ import annotations

import socket
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, override_settings
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TestHealth:
    def test_healthy_service_answers_200_with_each_check(self, client: Client) -> None:
        response = client.get("/health/")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok" and body["down"] == []
        assert body["checks"]["database"] == "ok"
        assert response["Cache-Control"].startswith("max-age=0")

    @pytest.mark.redis
    def test_with_redis_configured_cache_and_broker_are_checked(self, client: Client) -> None:
        body = client.get("/health/").json()
        assert body["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}

    def test_unreachable_redis_gives_503_naming_cache_and_broker(self, client: Client) -> None:
        url = f"redis://127.0.0.1:{closed_port()}/0"
        caches = {
            "default": {
                "BACKEND": "config.cache.ResilientRedisCache",
                "LOCATION": url,
                "OPTIONS": {"socket_connect_timeout": 1},
            }
        }
        with override_settings(REDIS_URL=url, CACHES=caches, CELERY_BROKER_URL=url):
            response = client.get("/health/")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "down"
        assert body["down"] == ["broker", "cache"]
        assert body["checks"]["database"] == "ok"
        assert "Connection" in body["checks"]["cache"]

    def test_only_get_is_allowed(self, client: Client) -> None:
        assert client.post("/health/").status_code == 405


class TestApiBasics:
    @pytest.mark.parametrize(
        ("path", "headers", "status", "field", "value"),
        [
            ("/api/v1/", {}, 200, "version", "v1"),
            (
                "/api/v1/me/",
                {"HTTP_AUTHORIZATION": "Token not-a-token"},
                401,
                "code",
                "authentication_failed",
            ),
            ("/api/v1/no-such-thing/", {}, 404, "code", "not_found"),
        ],
        ids=["the-root-is-public", "a-wrong-token-is-refused", "an-unknown-path-is-a-404"],
    )
    def test_the_api_answers_json(
        self,
        client: Client,
        path: str,
        headers: dict[str, str],
        status: int,
        field: str,
        value: str,
    ) -> None:
        response = client.get(path, **headers)
        assert response.status_code == status
        assert response.json()[field] == value

    def test_anonymous_caller_gets_a_json_error_with_a_code(self, client: Client) -> None:
        response = client.get("/api/v1/me/")
        assert response.status_code in (401, 403)
        body = response.json()
        assert body["code"] == "not_authenticated"
        assert body["detail"]

    def test_drf_create_token_gives_a_staff_client_its_token(self, client: Client) -> None:
        get_user_model().objects.create_user("analyst", password="x-long-password", is_staff=True)
        out = StringIO()
        call_command("drf_create_token", "analyst", stdout=out)
        key = Token.objects.get(user__username="analyst").key
        assert key in out.getvalue()
        response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {key}")
        assert response.status_code == 200
        assert response.json() == {"username": "analyst", "is_staff": True}

    def test_browser_session_authenticates_too(self, client: Client) -> None:
        user = get_user_model().objects.create_user("clerk", password="x-long-password")
        client.force_login(user)
        assert client.get("/api/v1/me/").json()["username"] == "clerk"

    def test_unknown_page_is_an_html_404(self, client: Client) -> None:
        response = client.get("/no-such-page/")
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")
