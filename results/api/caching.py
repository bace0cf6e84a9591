"""Conditional GET and a response cache keyed on the published runs a document depends on.

A result document is a function of the published run(s) it reads, the path and query string,
the host (pagination links are absolute) and the language. Its ``ETag`` hashes exactly
these, its ``Last-Modified`` is the publication time, so a conditional GET is answered 304
before anything is read, and a new publication changes both at once. The rendered body is
cached under the same key: a new published run means a new key, so nothing stale is ever
served and no invalidation is needed. Documents that do not come from a run (units, rounds,
indicators, runs) get an ``ETag`` hashed from their content.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import translation
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import http_date, parse_http_date_safe, urlencode
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from results.selectors import Publication

CACHE_PREFIX = "results:v1:"


def canonical_query(request: Request | HttpRequest) -> str:
    """The query string with parameters sorted, so that equal queries share one key."""
    params = request.GET
    return urlencode(sorted((k, v) for k in params for v in params.getlist(k)))


def document_key(request: Request, name: str, publications: Sequence[Publication]) -> str:
    """A digest of everything a result document depends on."""
    runs = ",".join(str(p.run_id) for p in publications) or "none"
    parts = (
        name,
        runs,
        request.build_absolute_uri(request.path),
        canonical_query(request),
        translation.get_language() or "",
    )
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


def last_modified(publications: Sequence[Publication]) -> dt.datetime | None:
    return max((p.published_at for p in publications if p.published_at), default=None)


def set_validators(response: HttpResponseBase, etag: str, modified: dt.datetime | None) -> None:
    response.headers["ETag"] = etag
    if modified is not None:
        response.headers["Last-Modified"] = http_date(modified.timestamp())
    # Clients and proxies may keep a copy but must ask again each time (a 304 is cheap), so
    # a new publication is seen at once.
    patch_cache_control(response, public=True, no_cache=True)


def not_modified(request: Request, response: HttpResponseBase) -> HttpResponseBase | None:
    """A 304 when the request's validators match the response's, else None."""
    modified = response.headers.get("Last-Modified")
    timestamp = parse_http_date_safe(modified) if modified else None
    answer = get_conditional_response(
        request._request, etag=response.headers["ETag"], last_modified=timestamp, response=response
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


class PublishedDocumentView(ConditionalMixin, APIView):
    """A GET whose document is a function of published runs: 304s and a keyed cache.

    Subclasses name the publications a request depends on (``publications``; None when the
    request cannot be answered from one, e.g. an unknown round, which ``document`` then
    reports) and build the document (``document``; may raise 400s).
    """

    def publications(self, request: Request, **kwargs: Any) -> Sequence[Publication] | None:
        raise NotImplementedError

    def document(self, request: Request, publications: Sequence[Publication], **kwargs: Any) -> Any:
        raise NotImplementedError

    def get(self, request: Request, **kwargs: Any) -> HttpResponseBase:
        publications = self.publications(request, **kwargs)
        if publications is None:
            return Response(self.document(request, [], **kwargs))
        key = document_key(request, type(self).__name__, publications)
        headers = HttpResponse()
        set_validators(headers, f'"{key}"', last_modified(publications))
        if answer := not_modified(request, headers):
            return answer
        content = cache.get(CACHE_PREFIX + key)
        if content is None:
            content = JSONRenderer().render(self.document(request, publications, **kwargs))
            cache.set(CACHE_PREFIX + key, content, settings.RESULTS_CACHE_SECONDS)
        response = HttpResponse(content, content_type="application/json")
        for header in ("ETag", "Last-Modified", "Cache-Control"):
            if header in headers.headers:
                response.headers[header] = headers.headers[header]
        return response
