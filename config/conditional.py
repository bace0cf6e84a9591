"""Conditional GET for API views: ``ETag`` and ``Last-Modified`` validators and 304s.

Web plumbing shared by every app's API (the survey frame's round list, the results
documents and exports): ``ConditionalMixin`` gives a successful GET an ``ETag`` from its
content; ``set_validators``/``validator_headers`` set known validators; ``not_modified``
answers 304 when the request's validators match.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import get_conditional_response, patch_vary_headers
from django.utils.http import http_date, parse_http_date_safe
from rest_framework.request import Request
from rest_framework.response import Response

CONDITIONAL_HEADERS = (
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_MATCH",
    "HTTP_IF_UNMODIFIED_SINCE",
)


def set_validators(response: HttpResponseBase, etag: str, modified: dt.datetime | None) -> None:
    response.headers["ETag"] = etag
    if modified is not None:
        response.headers["Last-Modified"] = http_date(modified.timestamp())
    # Clients and proxies may keep a copy but must ask again each time (a 304 is cheap), so
    # a new publication is seen at once.
    response.headers["Cache-Control"] = "public, no-cache"
    patch_vary_headers(response, ("Accept",))  # as DRF's responses


@functools.lru_cache(maxsize=1024)
def validator_headers(etag: str, modified: float | None) -> dict[str, str]:
    """The headers ``set_validators`` gives a fresh response, worked out once per document
    (read-only: ``HttpResponse`` copies them)."""
    response = HttpResponse()
    set_validators(
        response, etag, dt.datetime.fromtimestamp(modified, dt.UTC) if modified else None
    )
    return {
        name: response.headers[name]
        for name in ("ETag", "Last-Modified", "Cache-Control", "Vary")
        if name in response.headers
    }


def not_modified(
    request: Request | HttpRequest, response: HttpResponseBase
) -> HttpResponseBase | None:
    """A 304 when the request's validators match the response's, else None."""
    meta = request.META
    if not any(h in meta for h in CONDITIONAL_HEADERS):
        return None
    modified = response.headers.get("Last-Modified")
    timestamp = parse_http_date_safe(modified) if modified else None
    answer = get_conditional_response(
        getattr(request, "_request", request),
        etag=response.headers["ETag"],
        last_modified=timestamp,
        response=response,
    )
    return None if answer is response else answer


class ConditionalMixin:
    """Give successful GET responses an ``ETag`` from their content unless they have one."""

    def finalize_response(
        self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        if (
            request.method in ("GET", "HEAD")
            and response.status_code == 200
            and isinstance(response, Response)
            and "ETag" not in response.headers
        ):
            response.render()
            digest = hashlib.blake2b(response.content, digest_size=16).hexdigest()
            set_validators(response, f'"{digest}"', None)
            return not_modified(request, response) or response
        return response
