"""The API schema view, and the docs pages' own asset: Redoc's bundle from
drf-spectacular-sidecar, made to load nothing from another host (its side menu shows Redocly's
logo from cdn.redoc.ly) and to mark the style elements it adds with the page's CSP nonce (its
loader's nonce is otherwise unset)."""

from __future__ import annotations

import functools
import threading
from urllib.parse import quote

from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response

REDOC_BUNDLE = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
# The webpack runtime's nonce, which its style loader and styled-components put on each <style>:
# taken from the <script nonce> that loads the bundle (the page's CSP nonce).
WEBPACK_NONCE = "r.nc=void 0;"
PAGE_NONCE = "r.nc=document.currentScript&&document.currentScript.nonce||void 0;"
# A plain mark in its place, inline (img-src allows data: URIs, not other hosts).
LOCAL_LOGO = "data:image/svg+xml," + quote(
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect x="2" y="2" width="12" height="12" rx="2" fill="#8c8c8c"/></svg>'
)


@functools.cache
def redoc_bundle_source() -> bytes:
    """The sidecar's Redoc bundle: a local logo, and its styles under the page's nonce."""
    path = finders.find(REDOC_BUNDLE)
    if path is None:
        raise LookupError(f"{REDOC_BUNDLE} is missing: is drf_spectacular_sidecar installed?")
    with open(path, "rb") as bundle:
        source = bundle.read()
    for found, wanted in ((REDOCLY_LOGO, LOCAL_LOGO), (WEBPACK_NONCE, PAGE_NONCE)):
        if source.count(found.encode()) != 1:
            raise LookupError(f"{REDOC_BUNDLE} changed: {found!r} is not there once.")
        source = source.replace(found.encode(), wanted.encode())
    return source


@require_GET
@cache_control(public=True, max_age=24 * 3600)
def redoc_bundle(request: HttpRequest) -> HttpResponse:
    return HttpResponse(redoc_bundle_source(), content_type="text/javascript; charset=utf-8")


SCHEMA_LOCK = threading.Lock()


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema, generated for one request at a time in a process: drf-spectacular
    loads its extensions on first use in a way two threads can trip over (a 500)."""

    def _get_schema_response(self, request: Request) -> Response:
        with SCHEMA_LOCK:
            return super()._get_schema_response(request)
