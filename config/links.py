"""Absolute links to the service (resume, invitation and petition tracking links, e-mails).

**Where a link points.** ``PUBLIC_BASE_URL``, when set, is the base of every link. Without
it, a link is built from the request being answered: its scheme, host and port, as the
citizen reached us. Behind proxies of ours (``NUM_PROXIES`` > 0, read through
``config.abuse.trusted_proxies`` like the client address) the scheme and host come from
``X-Forwarded-Proto`` and ``X-Forwarded-Host``, taking the value ``NUM_PROXIES`` hops from the
right as ``X-Forwarded-For`` does; with ``NUM_PROXIES`` unset or 0 those headers are ignored
(a client can write anything there).

**The Host header stays guarded.** Every host a link is built from, sent or forwarded,
must match ``ALLOWED_HOSTS`` (Django's ``request.get_host()`` rule); another one is refused with
``DisallowedHost`` (a 400), so a forged header never ends up in a link sent to a citizen.

**Work without a request** (a Celery task, a management command) passes ``None``: the base
is then ``PUBLIC_BASE_URL``, else ``http://HOST:PORT`` of the environment (what ``make run``
serves, default ``http://127.0.0.1:8000``). Work started by a request should carry the base
of that request along (``public_base_url(request)``) rather than rely on this fallback.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host

from config.abuse import trusted_proxies

FORWARDED_SCHEMES = ("http", "https")


def public_base_url(request: HttpRequest | None = None) -> str:
    """``scheme://host[:port]`` that links start with (no trailing slash)."""
    configured = (settings.PUBLIC_BASE_URL or "").strip().rstrip("/")
    if configured:
        return configured
    if request is None:
        return fallback_base_url()
    host = request.get_host()  # checks the Host header against ALLOWED_HOSTS
    scheme = request.scheme
    proxies = trusted_proxies()
    if proxies:
        forwarded_host = _forwarded(request, "HTTP_X_FORWARDED_HOST", proxies)
        if forwarded_host:
            host = _allowed(forwarded_host)
        forwarded_scheme = _forwarded(request, "HTTP_X_FORWARDED_PROTO", proxies).lower()
        if forwarded_scheme in FORWARDED_SCHEMES:
            scheme = forwarded_scheme
    return f"{scheme}://{host}"


def absolute_url(request: HttpRequest | None, path: str) -> str:
    """The absolute link to ``path`` (e.g. from ``reverse()``) on the public base."""
    return public_base_url(request) + "/" + path.lstrip("/")


def fallback_base_url() -> str:
    """The base when there is neither ``PUBLIC_BASE_URL`` nor a request: where ``make run``
    serves (``HOST``/``PORT`` of the environment)."""
    host = os.environ.get("HOST", "").strip() or "127.0.0.1"
    port = os.environ.get("PORT", "").strip() or "8000"
    return f"http://{host}:{port}"


def _forwarded(request: HttpRequest, header: str, proxies: int) -> str:
    """The hop of a forwarded header appended by our outermost proxy, or ''."""
    hops = [hop.strip() for hop in request.META.get(header, "").split(",") if hop.strip()]
    return hops[-min(proxies, len(hops))] if hops else ""


def _allowed(host: str) -> str:
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:  # as HttpRequest.get_host() does
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    domain, _port = split_domain_port(host)
    if domain and validate_host(domain, allowed_hosts):
        return host
    raise DisallowedHost(f"Invalid X-Forwarded-Host: {host!r}; add it to ALLOWED_HOSTS.")
