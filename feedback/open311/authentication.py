"""Who may create a GeoReport v2 request: the holder of an ``api_key`` with the permission
``feedback.submit_petitions``. The key is a REST API token (``rest_framework.authtoken``),
sent as a form field of the POST as the specification has it, not in a header."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

SUBMIT = "feedback.submit_petitions"


class ApiKeyAuthentication(TokenAuthentication):
    """The account of a POST's ``api_key``: anonymous without one (reads need none); an
    unknown key, or the key of an inactive account, is refused (403: no WWW-Authenticate
    challenge, since the key is not sent in a header)."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        if request.method != "POST":
            return None
        key = request.data.get("api_key", "")
        key = key.strip() if isinstance(key, str) else ""
        return self.authenticate_credentials(key) if key else None

    def authenticate_header(self, request: Request) -> None:
        return None


class CanSubmitPetitions(BasePermission):
    """Creating a request (POST) takes an account allowed to submit petitions; reads are
    public (and another method is left to be a 405)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method != "POST" or request.user.has_perm(SUBMIT)
