"""The small pages a public view answers with when nothing can be done: a title, a message,
a way back and a status, on the layout of the part of the site the visitor is in (the
questionnaire and petition forms, the results). Every app renders them through ``problem``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.functional import Promise


def problem(
    request: HttpRequest,
    *,
    title: str | Promise,
    message: str | Promise,
    status: int,
    layout: str = "base.html",
    back: tuple[str, str | Promise] | None = None,
) -> HttpResponse:
    """``problem.html`` on ``layout`` saying ``title`` and ``message``, with a link ``back``
    (address, label); without one, back to the home page."""
    context = {"title": title, "message": message, "layout": layout, "back": back}
    return render(request, "problem.html", context, status=status)


def fixed(title: Promise, message: Promise, status: int) -> Callable[[HttpRequest], HttpResponse]:
    """A problem page whose words never change, translated when it is shown."""

    def page(request: HttpRequest) -> HttpResponse:
        return problem(request, title=str(title), message=str(message), status=status)

    return page
