"""Refuse what the database cannot store before a view sees it (``config.input_guard``).

``UnstorableInputMiddleware`` answers:

* 404 for a URL path holding a NUL character (``/rounds/a%00b/``) or bytes that are not
  UTF-8: no page has such a name;
* 400 naming the parameter for such a query string name or value (every view);
* 400 naming the field for such a posted form field (plain Django views: the web form,
  petitions, the admin; a multipart form's text is decoded by Django, so only NUL is
  looked for there). API views check their bodies in their parsers (``config.parsers``);
  a view marked ``checks_own_input`` (Open311) checks its query string itself, with the
  same function, and answers in its own format;
* 400 naming the header for a header holding NUL (``Authorization: Token a\\x00b``); a
  cookie holding one (a session key) is dropped, as an unknown session key would be.

It comes before the session middleware, which would look the session cookie up; its
``process_view`` runs, like every middleware's, once the language is chosen.

Django would otherwise re-quote bytes that are not UTF-8 in the path and replace them with
U+FFFD in query strings and forms; a lone surrogate cannot be written in UTF-8 at all, and
arrives only through JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.handlers.wsgi import WSGIRequest, get_bytes_from_wsgi
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from config.input_guard import FORM_TYPES, form_problems, query_problems, text_problem


class UnstorableInputMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if text_problem(request.path) or not _path_is_utf8(request):
            raise Http404(_("No page has this address."))
        if headers := {
            name.removeprefix("HTTP_").replace("_", "-").title(): [problem]
            for name, value in request.META.items()
            if name.startswith("HTTP_")
            and isinstance(value, str)
            and (problem := text_problem(value))
        }:
            return refused(request, headers)
        # A cookie is the browser's, not the client's choice: one that cannot be looked up
        # (a session key holding NUL, written "\000" in a quoted cookie) is as good as absent.
        request.COOKIES = {
            name: value
            for name, value in request.COOKIES.items()
            if not text_problem(name) and not text_problem(value)
        }
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        if getattr(view, "checks_own_input", False):
            return None
        if errors := query_problems(request):
            return refused(request, errors)
        is_api_view = hasattr(view, "cls")  # DRF's as_view(): its parsers check the body
        if (
            request.method == "POST"
            and not is_api_view
            and request.content_type in FORM_TYPES
            and (errors := form_problems(request))
        ):
            return refused(request, errors)
        return None


def _path_is_utf8(request: HttpRequest) -> bool:
    # Under WSGI the path's bytes are at hand; Django re-quotes those that are not UTF-8.
    if not isinstance(request, WSGIRequest):
        return True
    try:
        get_bytes_from_wsgi(request.META, "PATH_INFO", "").decode()
    except UnicodeError:
        return False
    return True


def refused(request: HttpRequest, errors: dict[str, Any]) -> HttpResponse:
    """400: JSON in the API's error shape under /api/, a page naming the fields elsewhere."""
    if request.path.startswith("/api/"):
        body = {"code": "invalid", "detail": _("Invalid input."), "fields": errors}
        return JsonResponse(body, status=400)
    return render(
        request,
        "input_refused.html",
        {"fields": [(name, _messages(problem)) for name, problem in errors.items()]},
        status=400,
    )


def _messages(problem: Any) -> list[str]:
    if isinstance(problem, dict):
        return [m for nested in problem.values() for m in _messages(nested)]
    return list(problem)
