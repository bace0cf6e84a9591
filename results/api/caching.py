"""Conditional GET and the results cache for API documents that come from published runs.

A result document is a function of the published run(s) it reads, the path and query string,
the host (pagination links are absolute) and the language. Its ``ETag`` hashes exactly
these (``results.cache.run_key``), its ``Last-Modified`` is the publication time, so a
conditional GET is answered 304 before anything is read, and a new publication changes both
at once. The rendered body is kept in the results cache (``results.cache``) under the same
key. Documents that do not come from a run (units, rounds, indicators, runs) get an ``ETag``
hashed from their content.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from typing import Any, cast

from django.conf import settings
from django.core.handlers.wsgi import get_bytes_from_wsgi
from django.http import HttpRequest, HttpResponse, HttpResponseBase, QueryDict
from django.utils import translation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.conditional import ConditionalMixin, not_modified, validator_headers
from results.api.throttling import ResultsReadThrottle
from results.cache import cached_document, run_key, store_document
from results.selectors import Publication


def canonical_query(request: Request | HttpRequest) -> str:
    """The query string with its parameters sorted, so that equal queries share one key."""
    return _sorted_query(request.META.get("QUERY_STRING", ""))


@functools.lru_cache(maxsize=1024)
def _sorted_query(raw: str) -> str:
    return "&".join(sorted(raw.split("&")))


@functools.lru_cache(maxsize=1024)
def query_params(raw: bytes, encoding: str) -> QueryDict:
    """The parsed query string (immutable, so one parse serves every request that sends it):
    a cached document's request is answered without parsing its query again."""
    return QueryDict(raw, encoding=encoding)


def request_params(request: HttpRequest) -> QueryDict:
    """``request.GET``, parsed once per distinct query string in this process."""
    if "GET" in request.__dict__ or not hasattr(request, "environ"):  # parsed, or not WSGI
        return request.GET
    raw = get_bytes_from_wsgi(request.environ, "QUERY_STRING", "")
    return query_params(raw, request.encoding or settings.DEFAULT_CHARSET)


def document_key(
    request: Request | HttpRequest, name: str, publications: Sequence[Publication]
) -> str:
    """A digest of everything a result document depends on."""
    return run_key(
        name,
        publications,
        request.scheme or "",
        request.get_host(),
        request.path,
        canonical_query(request),
        translation.get_language() or "",
    )


def last_modified(publications: Sequence[Publication]) -> dt.datetime | None:
    return max((p.published_at for p in publications if p.published_at), default=None)


def is_anonymous_read(request: HttpRequest) -> bool:
    """A GET or HEAD with no token and no session: it can be answered before DRF runs."""
    return (
        request.method in ("GET", "HEAD")
        and "HTTP_AUTHORIZATION" not in request.META
        and settings.SESSION_COOKIE_NAME not in request.COOKIES
    )


class PublishedDocumentView(ConditionalMixin, APIView):
    """A GET whose document is a function of published runs: 304s and a keyed cache.

    Subclasses name the publications a request depends on (``publications``: a cheap look at
    the query parameters and one query; None when the request cannot be answered from a
    publication, e.g. a missing parameter or an unknown round) and build the document
    (``document``: validates every parameter, may raise 400s and 404s).

    Anonymous reads whose document is cached are answered before DRF's request handling
    (``dispatch``): throttled like any other, then one query for the publication, one cache
    read. Everything else goes through DRF and ``get``.
    """

    def publications(self, params: QueryDict, **kwargs: Any) -> Sequence[Publication] | None:
        raise NotImplementedError

    def document(self, request: Request, publications: Sequence[Publication], **kwargs: Any) -> Any:
        raise NotImplementedError

    def document_name(self) -> str:
        """What names the document besides the publications and the request."""
        return type(self).__name__

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if is_anonymous_read(request) and ResultsReadThrottle().allow_anonymous(request):
            request._results_throttled = True  # type: ignore[attr-defined]
            answer = self.cached(request, **kwargs)
            if answer is not None:
                return answer
        return super().dispatch(request, *args, **kwargs)

    def cached(self, request: HttpRequest, **kwargs: Any) -> HttpResponseBase | None:
        """The 304 or the cached document, or None when it must be built."""
        publications = self.publications(request_params(request), **kwargs)
        request._results_publications = publications  # type: ignore[attr-defined]
        if publications is None:
            return None
        return self.answer(request, publications, build=None)

    def answer(
        self,
        request: HttpRequest,
        publications: Sequence[Publication],
        build: Callable[[], Any] | None,
    ) -> HttpResponseBase | None:
        """The 304, or the document from the cache, else the one ``build`` makes (kept in
        the cache); None when it is not cached and there is nothing to build it."""
        key = document_key(request, self.document_name(), publications)
        answer = self.validated(request, key, publications)
        if answer.status_code == 304:
            return answer
        content = cached_document(key)
        if content is None:
            if build is None:
                return None
            content = JSONRenderer().render(build())
            store_document(key, content)
        answer.content = content
        return answer

    @staticmethod
    def validated(
        request: HttpRequest, key: str, publications: Sequence[Publication]
    ) -> HttpResponse:
        """An empty JSON response with the validators, or a 304 when the client has them."""
        modified = last_modified(publications)
        response = HttpResponse(
            content_type="application/json",
            headers=validator_headers(f'"{key}"', modified.timestamp() if modified else None),
        )
        return not_modified(request, response) or response

    def get(self, request: Request, **kwargs: Any) -> HttpResponseBase:
        if hasattr(request._request, "_results_publications"):  # looked up by ``cached``
            publications = request._request._results_publications
        else:
            publications = self.publications(request.query_params, **kwargs)
        if publications is None:
            return Response(self.document(request, [], **kwargs))
        return cast(  # built when not cached: never None
            HttpResponseBase,
            self.answer(
                request, publications, lambda: self.document(request, publications, **kwargs)
            ),
        )
