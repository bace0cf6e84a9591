"""Throttle tiers of the results API: anonymous clients, signed-in users, API consumers.

Members of the group ``RESULTS_API_CONSUMER_GROUP`` (tokens of ministries, portals, the
press) get the ``results-consumer`` rate, other signed-in users ``results-user``, anonymous
clients ``results-anon`` (rates in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``). Who the
client is and how requests are counted is ``config.abuse``'s (the connection's address,
hashed; a fixed window, one round trip to Redis, per process while Redis is down).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework.request import Request

from config.abuse import ClientRateThrottle, client_address, client_fingerprint


def is_api_consumer(user: Any) -> bool:
    """Whether a signed-in user belongs to the API consumer group (once per request)."""
    if not user or not user.is_authenticated:
        return False
    if not hasattr(user, "_results_api_consumer"):
        user._results_api_consumer = user.groups.filter(
            name=settings.RESULTS_API_CONSUMER_GROUP
        ).exists()
    return user._results_api_consumer


def tier(user: Any) -> str:
    if is_api_consumer(user):
        return "results-consumer"
    if user and user.is_authenticated:
        return "results-user"
    return "results-anon"


class ResultsReadThrottle(ClientRateThrottle):
    """Requests per client and period, the rate chosen by the client's tier."""

    anonymous = False

    def scope_for(self, request: Request | HttpRequest, view: Any) -> str | None:
        return "results-anon" if self.anonymous else tier(request.user)

    def identity(self, request: Request | HttpRequest) -> str:
        if self.anonymous:  # not request.user: looking would read the session (Vary: Cookie)
            return client_fingerprint(client_address(request))
        return super().identity(request)

    def allow_anonymous(self, request: HttpRequest) -> bool:
        """``allow_request`` for a request known to carry no token and no session."""
        self.anonymous = True
        return self.allow_request(request, None)

    def allow_request(self, request: Request | HttpRequest, view: Any) -> bool:
        if getattr(request, "_results_throttled", False):
            return True  # counted already, before DRF (results.api.caching)
        return super().allow_request(request, view)
