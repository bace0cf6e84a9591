"""Rate limit of anonymous submissions per client, keyed by a salted hash of the client's IP.

No IP address is ever stored in clear, not even in the cache: the key is an HMAC-SHA256 of the
address under ``IP_HASH_SALT`` (or, when that is empty, a key derived from ``SECRET_KEY``).
Clients allowed to submit on behalf of citizens (partner apps, staff) are not throttled.
Web forms (plain Django views) share the API's limits through ``allow_form_submission``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.crypto import salted_hmac
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

SUBMIT_ON_BEHALF = "feedback.submit_on_behalf"


def client_fingerprint(address: str) -> str:
    """A salted SHA-256 of a client address: stable per address, useless to recover it."""
    secret = settings.IP_HASH_SALT or settings.SECRET_KEY
    # The key salt is the module's former name: changing it would reset every counter.
    digest = salted_hmac("feedback.api.throttling", address, secret=secret, algorithm="sha256")
    return digest.hexdigest()


class ResponseSubmitThrottle(ScopedRateThrottle):
    """``ScopedRateThrottle`` with hashed client addresses and an exemption for partners."""

    def get_rate(self) -> str | None:
        # DRF binds THROTTLE_RATES at import; read them live so a changed setting applies.
        self.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
        return super().get_rate()

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        user = request.user
        if user and user.is_authenticated:
            if user.has_perm(SUBMIT_ON_BEHALF):
                return None
            ident = f"user-{user.pk}"
        else:
            ident = client_fingerprint(self.get_ident(request) or "")
        return self.cache_format % {"scope": self.scope, "ident": ident}


def allow_form_submission(request: HttpRequest, scope: str) -> bool:
    """Count a web form's submission against the API limit of ``scope``; False once over it."""
    view = SimpleNamespace(throttle_scope=scope)
    return ResponseSubmitThrottle().allow_request(Request(request), view)
