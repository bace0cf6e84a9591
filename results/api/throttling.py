"""Throttle tiers of the results API: anonymous clients, signed-in users, API consumers.

Members of the group ``RESULTS_API_CONSUMER_GROUP`` (tokens of ministries, portals, the
press) get the ``results-consumer`` rate, other signed-in users ``results-user``, anonymous
clients ``results-anon`` (rates in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``). Anonymous
clients are keyed by a salted hash of their address (no IP is stored, not even in the
cache). Counting is a fixed window: one counter per client and period, two cache operations
per request whatever the rate, one round trip on Redis (DRF's sliding log keeps a list of
every request's time, which grows with high rates).
"""

from __future__ import annotations

import functools
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from feedback.throttling import client_fingerprint


def fingerprint(address: str) -> str:
    """``client_fingerprint``, remembered for recent addresses (an HMAC per request adds up)."""
    return _fingerprint(address, settings.IP_HASH_SALT or settings.SECRET_KEY)


@functools.lru_cache(maxsize=4096)
def _fingerprint(address: str, secret: str) -> str:
    return client_fingerprint(address)  # keyed on the secret too: a new salt, new hashes


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


def count(store: BaseCache, key: str, ttl: int) -> int:
    """Add one to the counter ``key`` (created with a lifetime of ``ttl`` s); the new count.

    On Redis this is one round trip (INCR and EXPIRE pipelined; the key names its window, so
    pushing its expiry back is harmless); elsewhere the cache API's add, then incr.
    """
    if isinstance(store, RedisCache):
        name = store.make_and_validate_key(key)
        pipeline = store._cache.get_client(name, write=True).pipeline(transaction=False)
        pipeline.incr(name)
        pipeline.expire(name, ttl)
        return int(pipeline.execute()[0])
    if store.add(key, 1, ttl):
        return 1
    try:
        return store.incr(key)
    except ValueError:  # expired between the two calls
        store.add(key, 1, ttl)
        return 1


class ResultsReadThrottle(SimpleRateThrottle):
    """Requests per client and period, the rate chosen by the client's tier."""

    cache = cache

    def __init__(self) -> None:  # the rate depends on the request: see allow_request
        pass

    def get_cache_key(self, request: Request | HttpRequest, view: Any) -> str:
        user = request.user
        if self.scope != "results-anon" and user and user.is_authenticated:
            ident = f"user-{user.pk}"
        else:
            ident = fingerprint(self.get_ident(request) or "")
        return f"throttle_{self.scope}_{ident}"

    def allow_anonymous(self, request: HttpRequest) -> bool:
        """``allow_request`` for a request known to carry no token and no session."""
        return self.allow_scope(request, None, "results-anon")

    def allow_request(self, request: Request | HttpRequest, view: Any) -> bool:
        if getattr(request, "_results_throttled", False):
            return True  # counted already, before DRF (results.api.caching)
        return self.allow_scope(request, view, tier(request.user))

    def allow_scope(self, request: Request | HttpRequest, view: Any, scope: str) -> bool:
        self.scope = scope
        self.rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        now = time.time()
        window = int(now // self.duration)
        self.window_end = (window + 1) * self.duration
        self.now = now
        key = f"{self.get_cache_key(request, view)}_{window}"
        return count(self.cache, key, self.duration + 1) <= self.num_requests

    def wait(self) -> float:
        return max(self.window_end - self.now, 1.0)
