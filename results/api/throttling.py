"""Throttle tiers of the results API: anonymous clients, signed-in users, API consumers.

Members of the group ``RESULTS_API_CONSUMER_GROUP`` (tokens of ministries, portals, the
press) get the ``results-consumer`` rate, other signed-in users ``results-user``, anonymous
clients ``results-anon`` (rates in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``). Who the
client is and how requests are counted is ``config.abuse``'s (the connection's address,
hashed; a fixed window, per process while Redis is down).

**Leases of the shared budget.** A read does not go to Redis each time. Each process takes
a client's requests from the window's shared counter in leases: the first request of a
client in a window claims 1, each later claim twice the one before, up to ``LEASE_MAX`` and
a sixteenth of the rate. A claim is one ``INCRBY`` (pipelined with its ``EXPIRE``): the
counter hands out the range of requests it reached, and only the part of that range under
the limit is granted, so all processes together never serve more than the rate in a window
(exact, as one ``INCR`` per request was). A process spends its lease in memory; once a claim
is granted less than it asked, the window's budget is spent and the process refuses the
client until the window ends, again without asking Redis. The price: a client may be refused
while another process still holds requests it leased (at most one lease per process), and a
client's first read in a window still costs one round trip. See docs/results-api.md.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework.request import Request

from config.abuse import (
    ClientRateThrottle,
    client_address,
    client_fingerprint,
    count_request,
)

# Largest lease a process claims at once (and never more than a sixteenth of the rate).
LEASE_MAX = 1024


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


class Lease:
    """What this process holds of one client's budget in one window."""

    __slots__ = ("left", "next_claim", "spent")

    def __init__(self) -> None:
        self.left = 0  # requests claimed and not served yet
        self.next_claim = 1
        self.spent = False  # the window's shared budget is gone


class Leases:
    """This process's leases, by counter key, for the windows not yet ended."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.windows: dict[float, dict[str, Lease]] = {}

    def take(self, key: str, limit: int, ttl: int, window_end: float, now: float) -> bool:
        """Serve one request of ``key`` from its lease, claiming more from the shared counter
        when it is used up; False once the window's budget is spent."""
        with self.lock:
            if len(self.windows) > 1 or window_end not in self.windows:
                for end in [end for end in self.windows if end <= now]:
                    del self.windows[end]
            leases = self.windows.setdefault(window_end, {})
            lease = leases.get(key)
            if lease is None:
                lease = leases[key] = Lease()
            if lease.left > 0:
                lease.left -= 1
                return True
            if lease.spent:
                return False
            want = lease.next_claim
            lease.next_claim = min(want * 2, LEASE_MAX, max(limit // 16, 1))
        # The round trip, outside the lock. The counter says which requests of the window
        # were handed out before this claim: those under the limit are granted.
        reached = count_request(key, ttl, want)
        granted = max(0, min(want, limit - (reached - want)))
        with self.lock:
            if granted < want:
                lease.spent = True
            if granted == 0:
                return False
            lease.left += granted - 1
            return True

    def clear(self) -> None:
        with self.lock:
            self.windows.clear()


leases = Leases()


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
        counted = self.window(request, view)
        if counted is None:
            return True
        key, limit, period = counted
        return leases.take(key, limit, period + 1, self.window_end, self.now)
