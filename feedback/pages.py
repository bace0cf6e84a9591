"""The small pages the public forms answer with when nothing can be done: a problem page
with a title, a message and a status, shared by the questionnaire and the petition form."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from config.abuse import allow_submission


def problem(request: HttpRequest, *, title: str, message: str, status: int) -> HttpResponse:
    """The page ``feedback/problem.html`` saying ``title`` and ``message``."""
    return render(
        request, "feedback/problem.html", {"title": title, "message": message}, status=status
    )


def fixed(title: Promise, message: Promise, status: int) -> Callable[[HttpRequest], HttpResponse]:
    """A problem page whose words never change, translated when it is shown."""

    def page(request: HttpRequest) -> HttpResponse:
        return problem(request, title=str(title), message=str(message), status=status)

    return page


# What a connection that sent too much in the last hour is told, per throttle scope.
_TOO_MANY = {
    "response-submit": (
        _("Too many questionnaires from this connection"),
        _("Please wait an hour and start the questionnaire again."),
    ),
    "petition-submit": (
        _("Too many petitions from this connection"),
        _("Please wait an hour and send your petition again."),
    ),
}


def refused_by_rate(request: HttpRequest, scope: str) -> HttpResponse | None:
    """The 429 page if the connection's budget of ``scope`` is spent (``config.abuse``),
    else ``None``; a submission allowed counts against the budget."""
    if allow_submission(request, scope):
        return None
    title, message = _TOO_MANY[scope]
    return problem(request, title=str(title), message=str(message), status=429)
