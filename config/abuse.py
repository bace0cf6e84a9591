"""Abuse control shared by every app: who the client is, rate limits, body size, honeypot.

**Client identity.** The client is the connection's address (``REMOTE_ADDR``). A client can
write any ``X-Forwarded-For`` it likes, so that header counts only when ``NUM_PROXIES`` (in
``REST_FRAMEWORK``) says how many proxies of ours stand in front of the service: each of them
appends the address it saw, and the client is the address ``NUM_PROXIES`` hops from the
right (with one proxy, the last one). Signed-in clients are their account.

**No address in clear.** Rate limit keys hold an HMAC-SHA256 of the address under
``IP_HASH_SALT`` (or, when that is empty, a key derived from ``SECRET_KEY``), never the
address itself, not even in the cache.

**Rate limits.** A fixed window per client, scope and period: one counter, one round trip to
Redis per request (INCR, atomic, so parallel requests cannot slip past the limit together).
The rate of a scope is ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope]``, read live. While
Redis is down (``config.cache``) each process counts on its own, so the limit holds per
process (with N web processes, a client may get up to N times the rate) until Redis is back.
Clients allowed to submit on behalf of citizens (partner apps, staff) are not throttled on
submission scopes.

**Body size.** ``body_within_limit`` refuses a body over a number of bytes before anything
parses it, with or without a ``Content-Length``.

**Honeypot.** Forms and API bodies carry a field ``website`` hidden from people; a request
that fills it is refused.
"""

from __future__ import annotations

import functools
import io
import time
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.http import HttpRequest
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from config.cache import ResilientRedisCache

SUBMIT_ON_BEHALF = "feedback.submit_on_behalf"
HONEYPOT_FIELD = "website"
READ_CHUNK_BYTES = 64 * 1024

# --- Who the client is ---------------------------------------------------------------------


def trusted_proxies() -> int:
    """How many proxies of ours append to X-Forwarded-For (``NUM_PROXIES``); 0 when unset."""
    return max(int(api_settings.NUM_PROXIES or 0), 0)


def client_address(request: HttpRequest | Request) -> str:
    """The client's address: ``REMOTE_ADDR``, or the X-Forwarded-For hop of our first proxy."""
    meta = request.META
    proxies = trusted_proxies()
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "") if proxies else ""
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if hops:
        return hops[-min(proxies, len(hops))]
    return meta.get("REMOTE_ADDR", "") or ""


def client_fingerprint(address: str) -> str:
    """A salted SHA-256 of a client address: stable per address, useless to recover it."""
    return _fingerprint(address, settings.IP_HASH_SALT or settings.SECRET_KEY)


@functools.lru_cache(maxsize=4096)  # an HMAC per request adds up on the results API
def _fingerprint(address: str, secret: str) -> str:
    # The key salt is the former module's name: changing it would reset every counter.
    digest = salted_hmac("feedback.api.throttling", address, secret=secret, algorithm="sha256")
    return digest.hexdigest()


def client_identity(request: HttpRequest | Request) -> str:
    """The key of a client's rate limits: its account when signed in, else its hashed address."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user-{user.pk}"
    return client_fingerprint(client_address(request))


# --- Rate limits ---------------------------------------------------------------------------

# Counters of this process, used while the shared cache (Redis) is down.
local_counters = LocMemCache("config.abuse.local_counters", {"OPTIONS": {"MAX_ENTRIES": 100_000}})


def _count_in(store: BaseCache, key: str, ttl: int, amount: int = 1) -> int:
    if store.add(key, amount, ttl):
        return amount
    try:
        return store.incr(key, amount)
    except ValueError:  # expired between the two calls
        store.add(key, amount, ttl)
        return amount


def count_request(key: str, ttl: int, amount: int = 1) -> int:
    """Add ``amount`` (one request, or a lease of several) to the counter ``key`` (kept
    ``ttl`` seconds); the new count.

    In the shared cache; in this process's memory while the shared cache is unreachable.
    """
    store = caches["default"]
    if isinstance(store, ResilientRedisCache):
        counted = store.count(key, ttl, amount)
        return counted if counted is not None else _count_in(local_counters, key, ttl, amount)
    return _count_in(store, key, ttl, amount)


@functools.lru_cache(maxsize=64)
def parse_rate(rate: str) -> tuple[int, int]:
    """``"30/hour"`` → (30, 3600); the period is s, m, h or d (or a word starting so)."""
    number, period = rate.split("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]
    return int(number), seconds


class ClientRateThrottle(BaseThrottle):
    """At most a number of requests per client, scope and fixed window.

    ``scope_for`` names the scope of a request (None: not limited); its rate is read from
    ``DEFAULT_THROTTLE_RATES`` at each request, so a changed setting applies at once.
    """

    window_end = 0.0
    now = 0.0

    def scope_for(self, request: HttpRequest | Request, view: Any) -> str | None:
        return getattr(view, "throttle_scope", None)

    def identity(self, request: HttpRequest | Request) -> str:
        return client_identity(request)

    def window(self, request: HttpRequest | Request, view: Any) -> tuple[str, int, int] | None:
        """The counter key of this client's current window, the limit and the period in
        seconds (None when the view is not throttled); sets ``now`` and ``window_end``."""
        scope = self.scope_for(request, view)
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope) if scope else None
        if rate is None:
            return None
        limit, period = parse_rate(rate)
        self.now = time.time()
        window = int(self.now // period)
        self.window_end = (window + 1) * period
        return f"throttle_{scope}_{self.identity(request)}_{window}", limit, period

    def allow_request(self, request: HttpRequest | Request, view: Any) -> bool:
        counted = self.window(request, view)
        if counted is None:
            return True
        key, limit, period = counted
        return count_request(key, period + 1) <= limit

    def wait(self) -> float:
        return max(self.window_end - self.now, 1.0)


class SubmissionThrottle(ClientRateThrottle):
    """The view's ``throttle_scope``, except for accounts allowed to submit for citizens."""

    def scope_for(self, request: HttpRequest | Request, view: Any) -> str | None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.has_perm(SUBMIT_ON_BEHALF):
            return None
        return super().scope_for(request, view)


def allow_submission(request: HttpRequest, scope: str) -> bool:
    """Count a plain view's submission against the limit of ``scope``; False once over it.

    Web forms and the API share a scope's budget.
    """
    return SubmissionThrottle().allow_request(request, SimpleNamespace(throttle_scope=scope))


# --- Body size -----------------------------------------------------------------------------


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = _("The request body is too large.")


def body_within_limit(request: HttpRequest | Request, limit: int) -> bool:
    """Whether the body fits in ``limit`` bytes, decided before anything parses it.

    The declared Content-Length decides. A body sent without one (chunked) is read here, at
    most one byte past the limit, and handed on to the parsers when it fits.
    """
    meta = request.META
    declared = meta.get("CONTENT_LENGTH") or ""
    if declared:
        try:
            length = int(declared)
        except ValueError:
            length = 0  # Django and DRF read such a body as empty
        return length <= limit
    stream = meta.get("wsgi.input")
    if stream is None:
        return True
    chunks: list[bytes] = []
    size = 0
    while size <= limit and (chunk := stream.read(min(READ_CHUNK_BYTES, limit + 1 - size))):
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        return False
    if size:
        django_request = getattr(request, "_request", request)
        django_request._stream = io.BytesIO(b"".join(chunks))
        meta["CONTENT_LENGTH"] = str(size)
    return True


def check_body_size(request: Request, limit: int | None = None) -> None:
    """Raise 413 for an API body over ``limit`` bytes (default ``FEEDBACK_MAX_BODY_BYTES``)."""
    limit = settings.FEEDBACK_MAX_BODY_BYTES if limit is None else limit
    if not body_within_limit(request, limit):
        raise RequestTooLarge(
            _("The request body is larger than %(limit)d bytes.") % {"limit": limit}
        )


# --- Honeypot ------------------------------------------------------------------------------


def is_filled(value: Any) -> bool:
    """Whether a honeypot value has content (blank text, null and absence do not count)."""
    return value is not None and str(value).strip() != ""


def honeypot_filled(request: HttpRequest) -> bool:
    """Whether a submitted web form filled its honeypot field."""
    return is_filled(request.POST.get(HONEYPOT_FIELD, ""))


class HoneypotField(serializers.JSONField):
    """An API body's ``website`` field: optional, and refused unless empty."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("default", "")
        kwargs.setdefault(
            "help_text", _("Leave empty. A form field hidden from people; only robots fill it.")
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if is_filled(data):
            raise serializers.ValidationError(_("This field must be left empty."))
        return super().to_internal_value(data)
